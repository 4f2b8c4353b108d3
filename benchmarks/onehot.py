"""One-hot encoding throughput: biodl vs tangermeme's ``one_hot_encode``, same sequence, same run.

A random DNA sequence as long as human chr1 (248,956,422 bp; ACGT plus 1 % N, upper case so
both encoders accept it) is encoded ``--repeats`` times by each encoder, interleaved: each with
its defaults (tangermeme: one thread; biodl: ``n_threads=None``, one thread per available core),
and both pinned to one thread. The best time of each is reported, with the throughput ratios,
to ``benchmarks/results/onehot.{json,md}``. Both outputs are checked to be the same one-hot matrix.

tangermeme is installed here with pip when missing (it is not a biodl dependency).

Run: ``.venv/bin/python benchmarks/onehot.py`` (about a minute; needs ~3 GB of memory).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CHR1 = 248_956_422


def ensure_tangermeme() -> Any:
    """Import tangermeme, installing it with pip first if needed."""
    try:
        return importlib.import_module("tangermeme.utils")
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "tangermeme"])
        importlib.invalidate_caches()
        return importlib.import_module("tangermeme.utils")


def random_dna(length: int, seed: int) -> str:
    """ACGT with 1 % N, as one Python string."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=length, dtype=np.uint8)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)[codes]
    letters[rng.random(length) < 0.01] = ord("N")
    return letters.tobytes().decode("ascii")


def best_time(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=CHR1)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    tm = ensure_tangermeme()
    from biodl.data.sequence.alphabet import available_cores, one_hot_encode

    cores = available_cores()

    seq = random_dna(args.length, args.seed)
    # warm-up (numba compilation, page cache) and an equality check on a slice
    probe = seq[:1_000_000]
    ours = one_hot_encode(probe)
    theirs = tm.one_hot_encode(probe).numpy()
    if not np.array_equal(ours, theirs.astype(np.uint8)):
        raise SystemExit("the two encoders disagree")
    runs: dict[str, Callable[[], Any]] = {
        "biodl (n_threads=1)": lambda: one_hot_encode(seq, n_threads=1),
        "tangermeme (one thread, its only mode)": lambda: tm.one_hot_encode(seq),
        f"biodl (default: {cores} threads on {cores} cores)": lambda: one_hot_encode(seq),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            t, out = best_time(fn)
            times[name].append(t)
            del out
    best = {k: min(v) for k, v in times.items()}
    names = list(runs)
    ratio = best[names[1]] / best[names[0]]
    ratio_default = best[names[1]] / best[names[2]]
    import tangermeme

    result = {
        "length": args.length,
        "repeats": args.repeats,
        "best_seconds": best,
        "all_seconds": times,
        "throughput_mbp_per_s": {k: args.length / v / 1e6 for k, v in best.items()},
        "speedup_biodl_over_tangermeme_1_thread": ratio,
        "speedup_biodl_over_tangermeme_defaults": ratio_default,
        "tangermeme_version": tangermeme.__version__ if hasattr(tangermeme, "__version__") else "unknown",
        "numpy_version": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": cores,
        "output": {"biodl": "numpy uint8 (4, L), contiguous", "tangermeme": "torch int8 (4, L), a transposed (L, 4) buffer"},
        "note": "timings on a shared machine; both encoders run interleaved in one process so they see the same load",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "onehot.json").write_text(json.dumps(result, indent=1))
    md = [
        "# One-hot encoding of a chr1-sized sequence",
        "",
        f"Random DNA, {args.length:,} bp (1 % N), best of {args.repeats} interleaved runs each, same process.",
        "",
        "| encoder | best time (s) | throughput (Mbp/s) |",
        "|---|---:|---:|",
    ]
    for k in names:
        md.append(f"| {k} | {best[k]:.3f} | {args.length / best[k] / 1e6:.0f} |")
    md += [
        "",
        f"biodl / tangermeme throughput with each one's defaults: **{ratio_default:.2f}×** ({cores} cores); "
        f"both on one thread: **{ratio:.2f}×** (tangermeme {result['tangermeme_version']}, numpy {np.__version__}).",
        "",
    ]
    (RESULTS / "onehot.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
