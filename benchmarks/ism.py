"""ISM benchmark: biodl's fast saturation mutagenesis vs tangermeme's, same model and sequences, one run.

The model is biodl's default sequence model (DeepBind: 32 filters of width 24, global max + average
pooling, a dense layer of 32, strand averaging) at the input lengths of the DeepBind ENCODE (101 bp)
and janggu Oct4/MafK (200 bp) data; the sequences are random one-hot DNA. Both tools return the raw
outputs of every single-base mutant (checked to agree); tangermeme runs with its defaults (its
fastISM path included, which it attempts only for jobs it expects to take over 30 s) and with a large
batch, and the faster of the two is the reference. Everything runs on the CPU with the same number of
threads (``--threads``, default 1: on a shared machine more threads mostly measure the neighbours).

Run: ``.venv/bin/python benchmarks/ism.py`` (a few minutes); writes ``benchmarks/results/ism.{json,md}``.
tangermeme is installed from PyPI by this script when missing (it is not a biodl dependency).
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_results


def _tangermeme() -> Any:
    try:
        return importlib.import_module("tangermeme.saturation_mutagenesis")
    except ImportError:
        print("installing tangermeme (benchmark only)...", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "tangermeme"], check=True)
        return importlib.import_module("tangermeme.saturation_mutagenesis")


def _best(fn: Any, repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_case(length: int, n: int, repeats: int, seed: int) -> dict[str, Any]:
    import torch

    from biodl.explain import saturation_mutagenesis
    from biodl.models import build_model

    tm = _tangermeme()
    torch.manual_seed(seed)
    model = build_model("deepbind", (4, length), 1, {}).eval()
    g = torch.Generator().manual_seed(seed)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (n, length), generator=g), 4).permute(0, 2, 1).float()
    t_fast, ours = _best(lambda: saturation_mutagenesis(model, X, raw_outputs=True), repeats)
    assert ours.fast, "the fast mode was not used"
    t_plain, _ = _best(lambda: saturation_mutagenesis(model, X, raw_outputs=True, fast=False), 1)
    tm_times: dict[str, float] = {}
    diffs: dict[str, float] = {}
    for label, kwargs in (("tangermeme defaults", {}), ("tangermeme batch_size=1024", {"batch_size": 1024})):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t, (y0, y_hat) = _best(lambda kw=kwargs: tm.saturation_mutagenesis(model, X, raw_outputs=True, device="cpu", **kw), 1)
        tm_times[label] = t
        diffs[label] = float((y_hat.permute(0, 3, 1, 2).float() - ours.mutants).abs().max())
        assert torch.allclose(y0.float(), ours.reference, atol=1e-4)
    best_label = min(tm_times, key=lambda k: tm_times[k])
    return {
        "length": length,
        "sequences": n,
        "mutants": n * length * 3,
        "biodl_fast_s": t_fast,
        "biodl_plain_s": t_plain,
        "tangermeme_s": tm_times,
        "tangermeme_best": best_label,
        "ratio": tm_times[best_label] / t_fast,
        "max_abs_diff_vs_tangermeme": diffs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=1000, help="random sequences per length")
    parser.add_argument("--lengths", type=int, nargs="+", default=[101, 200])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="biodl fast mode: best of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import tangermeme
    import torch

    torch.set_num_threads(args.threads)
    rows, cases = [], []
    for length in args.lengths:
        case = run_case(length, args.sequences, args.repeats, args.seed)
        cases.append(case)
        print(case, flush=True)
        tm = case["tangermeme_s"]
        rows.append([
            f"DeepBind default, {length} bp", case["sequences"], case["mutants"], round(case["biodl_fast_s"], 2),
            round(case["biodl_plain_s"], 2), round(tm["tangermeme defaults"], 2), round(tm["tangermeme batch_size=1024"], 2),
            f"{case['ratio']:.1f}x", f"{max(case['max_abs_diff_vs_tangermeme'].values()):.1e}",
        ])  # fmt: skip
    worst = min(c["ratio"] for c in cases)
    notes = (
        f"CPU, {args.threads} thread(s), tangermeme {tangermeme.__version__}. Ratio = the faster tangermeme setting / biodl fast "
        f"mode. Target >= 3x: {'PASS' if worst >= 3 else 'FAIL'} (worst {worst:.1f}x). Both return every mutant's raw "
        "output; the last column is the largest difference between them."
    )
    write_results(
        "ism",
        {"settings": vars(args), "cases": cases, "worst_ratio": worst},
        ["case", "sequences", "mutants", "biodl fast (s)", "biodl plain (s)", "tangermeme defaults (s)",
         "tangermeme batch 1024 (s)", "speed-up", "max |diff|"],
        rows,
        notes,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
