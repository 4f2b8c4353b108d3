"""ISM benchmark: biodl's fast saturation mutagenesis vs tangermeme's, same model and sequences, one run.

Models: biodl's default sequence model (DeepBind: 32 filters of width 24, global max + average
pooling, a dense layer of 32, strand averaging) at the input lengths of the DeepBind ENCODE (101 bp)
and janggu Oct4/MafK (200 bp) data; a two-convolution CNN with max pooling (64 filters of width 19 →
max-pool 4 → 64 filters of width 11 → max-pool 4 → dense) on 1 kb; and Basset with the paper's
layers (300/200/200 filters, widths 19/11/7, pools 3/4/4, two dense layers of 1000, strand averaging)
on 600 bp. The sequences are random one-hot DNA. Both tools return the raw outputs of every
single-base mutant (checked to agree); tangermeme runs with its defaults (its own fastISM path
included, which it attempts only for jobs it expects to take over 30 s), with a large batch
(DeepBind) and with its fastISM forced on (the CNNs), and the fastest is the reference. Everything
runs on the CPU with the same number of threads (``--threads``, default 1: on a shared machine more
threads mostly measure the neighbours); biodl's time is the median of ``--repeats`` runs.

biodl and each tangermeme setting are timed in alternating rounds (a change of the shared machine's
load hits both alike); the load average and the command are written with the results.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/ism.py --sequences 100`` (a few minutes); writes
``benchmarks/results/ism.{json,md}``.
tangermeme is installed from PyPI by this script when missing (it is not a biodl dependency).
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
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


def _median(fn: Any, repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _model(arch: str, length: int) -> Any:
    import torch
    from torch import nn

    from biodl.models import build_model

    if arch == "deepbind":
        return build_model("deepbind", (4, length), 1, {}).eval()
    if arch == "basset":
        return build_model("basset", (4, length), 1, {}).eval()
    return nn.Sequential(
        nn.Conv1d(4, 64, 19, padding=9), nn.ReLU(), nn.MaxPool1d(4),
        nn.Conv1d(64, 64, 11, padding=5), nn.ReLU(), nn.MaxPool1d(4),
        nn.Flatten(), nn.Linear(64 * (length // 16), 1),
    ).eval().to(torch.float32)  # fmt: skip


def run_case(arch: str, length: int, n: int, repeats: int, seed: int, plain_max: int = 0, tm_repeats: int = 1) -> dict[str, Any]:
    import torch

    from biodl.explain import saturation_mutagenesis

    tm = _tangermeme()
    torch.manual_seed(seed)
    model = _model(arch, length)
    g = torch.Generator().manual_seed(seed)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (n, length), generator=g), 4).permute(0, 2, 1).float()
    saturation_mutagenesis(model, X[:2], raw_outputs=True)  # warm-up: loads (or compiles, once) the numba kernel
    t_plain = None
    if arch == "deepbind" and length <= plain_max:
        t_plain, _ = _median(lambda: saturation_mutagenesis(model, X, raw_outputs=True, fast=False), 1)
    settings: dict[str, dict[str, Any]] = {"tangermeme defaults": {}}
    if arch == "deepbind":
        settings["tangermeme batch_size=1024"] = {"batch_size": 1024}
    else:
        settings["tangermeme fastISM forced"] = {"force": True}

    def tangermeme_run(kwargs: dict[str, Any]) -> tuple[float, Any]:
        kw = dict(kwargs)
        old_min = tm._FAST_MIN_SECONDS
        if kw.pop("force", False):
            tm._FAST_MIN_SECONDS = 0.0  # skip its "only for jobs over 30 s" heuristic
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return _median(lambda: tm.saturation_mutagenesis(model, X, raw_outputs=True, device="cpu", **kw), 1)
        finally:
            tm._FAST_MIN_SECONDS = old_min

    # rounds: biodl, then each tangermeme setting, so that a change of the machine's load hits both tools alike
    ours_runs: list[float] = []
    tm_runs: dict[str, list[float]] = {label: [] for label in settings}
    tm_out: dict[str, Any] = {}
    ours = None
    for r in range(max(repeats, tm_repeats)):
        if r < repeats:
            t, ours = _median(lambda: saturation_mutagenesis(model, X, raw_outputs=True), 1)
            ours_runs.append(t)
        if r < tm_repeats:
            for label, kwargs in settings.items():
                t, tm_out[label] = tangermeme_run(kwargs)
                tm_runs[label].append(t)
    assert ours is not None and ours.fast, "the fast mode was not used"
    t_fast = statistics.median(ours_runs)
    tm_times = {label: statistics.median(v) for label, v in tm_runs.items()}
    diffs: dict[str, float] = {}
    for label, (y0, y_hat) in tm_out.items():
        diffs[label] = float((y_hat.permute(0, 3, 1, 2).float() - ours.mutants).abs().max())
        assert torch.allclose(y0.float(), ours.reference, atol=1e-4)
    best_label = min(tm_times, key=lambda k: tm_times[k])
    return {
        "model": arch,
        "length": length,
        "sequences": n,
        "mutants": n * length * 3,
        "biodl_fast_s": t_fast,
        "biodl_runs_s": ours_runs,
        "biodl_plain_s": t_plain,
        "tangermeme_s": tm_times,
        "tangermeme_runs_s": tm_runs,
        "tangermeme_best": best_label,
        "ratio": tm_times[best_label] / t_fast,
        "mutants_per_s": n * length * 3 / t_fast,
        "max_abs_diff_vs_tangermeme": diffs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=300, help="random sequences per DeepBind length")
    parser.add_argument("--lengths", type=int, nargs="+", default=[101, 200], help="DeepBind input lengths")
    parser.add_argument("--cnn", type=int, nargs=2, default=[1000, 2], metavar=("LENGTH", "N"), help="two-conv CNN case")
    parser.add_argument("--basset", type=int, nargs=2, default=[600, 1], metavar=("LENGTH", "N"), help="Basset case")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="biodl fast mode: median of this many runs")
    parser.add_argument("--tm-repeats", type=int, default=3, help="tangermeme: median of this many runs per setting")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain-max", type=int, default=101, help="also time biodl's plain mode up to this DeepBind length")
    args = parser.parse_args(argv)
    import tangermeme
    import torch

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    jobs = [("deepbind", length, args.sequences) for length in args.lengths]
    jobs += [("cnn", args.cnn[0], args.cnn[1]), ("basset", args.basset[0], args.basset[1])]
    names = {"deepbind": "DeepBind default", "cnn": "two-conv CNN + max pool", "basset": "Basset (paper layers)"}
    targets = {"deepbind": 10.0, "cnn": 3.0, "basset": 3.0}
    rows, cases = [], []
    for arch, length, n in jobs:
        case = run_case(arch, length, n, args.repeats, args.seed, args.plain_max, args.tm_repeats)
        case["target"] = targets[arch]
        cases.append(case)
        print(case, flush=True)
        tm = case["tangermeme_s"]
        plain = case["biodl_plain_s"]
        tm_cell = "; ".join(f"{k.replace('tangermeme ', '')}: {v:.2f}" for k, v in tm.items())
        rows.append([
            f"{names[arch]}, {length} bp", case["sequences"], case["mutants"], round(case["biodl_fast_s"], 2),
            "-" if plain is None else round(plain, 2), tm_cell,
            f"{case['mutants_per_s']:.0f}", f"{case['ratio']:.1f}x (target {targets[arch]:.0f}x)",
            f"{max(case['max_abs_diff_vs_tangermeme'].values()):.1e}",
        ])  # fmt: skip
    passed = all(c["ratio"] >= c["target"] for c in cases)
    ratios = ", ".join(f"{c['ratio']:.1f}x" for c in cases)
    load_end = os.getloadavg()
    command = "PYTHONPATH=src .venv/bin/python benchmarks/ism.py " + " ".join(sys.argv[1:] if argv is None else argv)
    notes = (
        f"CPU, {args.threads} thread(s), tangermeme {tangermeme.__version__}, biodl median of {args.repeats}, tangermeme median "
        f"of {args.tm_repeats} per setting, in one process, timed in alternating rounds (biodl, then each tangermeme "
        "setting). Ratio = the fastest tangermeme setting / biodl fast mode. "
        "Targets (>= 10x DeepBind, >= 3x the "
        f"CNNs): {'PASS' if passed else 'FAIL'} ({ratios}). Both return every "
        "mutant's raw output; the last column is the largest difference between them. "
        f"Load average (1, 5, 15 min) at the start {', '.join(f'{v:.1f}' for v in load_start)}, at the end "
        f"{', '.join(f'{v:.1f}' for v in load_end)} (a shared 2-core machine; other jobs ran under nice). "
        f"Command: `{command}`."
    )
    write_results(
        "ism",
        {"settings": vars(args), "cases": cases, "passed": passed, "loadavg_start": load_start, "loadavg_end": load_end,
         "command": command},
        ["case", "sequences", "mutants", "biodl fast (s)", "biodl plain (s)", "tangermeme (s)", "biodl mutants/s",
         "speed-up", "max |diff|"],
        rows,
        notes,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
