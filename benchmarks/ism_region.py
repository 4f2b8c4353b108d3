"""Long-region ISM benchmark: biodl's ``region_mutagenesis`` vs tangermeme on the same 10 kb region, one run.

A random 10 kb one-hot region is tiled by the model's window (start every ``L // 2`` bases, the
last window ending at the region's end) and every position is mutated to every letter once, in
the window where it is most central. biodl runs :func:`biodl.explain.region_mutagenesis` (fast
modes: the fused DeepBind kernel; layer-wise Fast-ISM for the two-convolution CNN). tangermeme
runs ``saturation_mutagenesis`` on exactly the same windows and position spans (grouped by
span, as biodl does), at its defaults and with a large batch (DeepBind) or its fastISM forced
(CNN); the faster is the reference. Both give the same ``3 × R`` effects (checked within 1e-5);
mutants/s counts those. Medians of ``--repeats`` runs for both tools, CPU, ``--threads`` threads.

Run: ``.venv/bin/python benchmarks/ism_region.py``; writes ``benchmarks/results/ism_region.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_results
from ism import _model


def _median(fn: Any, repeats: int) -> tuple[float, list[float], Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def _tangermeme_region(tm: Any, model: Any, x: Any, L: int, step: int, **kw: Any) -> Any:
    """tangermeme's ISM on the same windows and spans as biodl's region_mutagenesis: effects ``(T, A, R)``."""
    import numpy as np
    import torch

    from biodl.explain.region_mutagenesis import region_tiles

    R = x.shape[-1]
    starts, window_of = region_tiles(R, L, step)
    first = np.searchsorted(window_of, np.arange(len(starts)), side="left")
    last = np.searchsorted(window_of, np.arange(len(starts)), side="right")
    groups: dict[tuple[int, int], list[int]] = {}
    for w, (s, e) in enumerate(zip((first - starts).tolist(), (last - starts).tolist(), strict=True)):
        if e > s:
            groups.setdefault((s, e), []).append(w)
    effects = None
    for (s, e), ws in groups.items():
        xb = torch.stack([x[:, int(starts[w]) : int(starts[w]) + L] for w in ws])
        y0, y_hat = tm.saturation_mutagenesis(model, xb, start=s, end=e, raw_outputs=True, device="cpu", **kw)
        y_hat = y_hat.float()  # (n, A, span, T)
        if y_hat.shape[2] == L:
            y_hat = y_hat[:, :, s:e]
        eff = (y_hat - y0.float()[:, None, None, :]).permute(0, 3, 1, 2)  # (n, T, A, span)
        if effects is None:
            effects = torch.zeros((eff.shape[1], x.shape[0], R))
        for j, w in enumerate(ws):
            a = int(starts[w])
            effects[:, :, a + s : a + e] = eff[j]
    assert effects is not None
    return effects.masked_fill(x[None] == 1, 0.0)


def run_case(arch: str, L: int, region: int, args: Any) -> dict[str, Any]:
    import tangermeme.saturation_mutagenesis as tm
    import torch

    from biodl.explain import region_mutagenesis

    torch.manual_seed(args.seed)
    model = _model(arch, L)
    g = torch.Generator().manual_seed(args.seed)
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (region,), generator=g), 4).T.float().contiguous()
    step = L // 2
    region_mutagenesis(model, x[:, : 2 * L], step=step, length=L)  # warm-up (numba kernel load)
    t_ours, runs_ours, ours = _median(lambda: region_mutagenesis(model, x, step=step, length=L), args.repeats)
    assert ours.fast
    settings: dict[str, dict[str, Any]] = {"tangermeme defaults": {}}
    settings["tangermeme batch_size=1024" if arch == "deepbind" else "tangermeme fastISM forced"] = (
        {"batch_size": 1024} if arch == "deepbind" else {"force": True}
    )
    tm_times: dict[str, float] = {}
    tm_runs: dict[str, list[float]] = {}
    diffs: dict[str, float] = {}
    for label, kwargs in settings.items():
        kw = dict(kwargs)
        old = tm._FAST_MIN_SECONDS
        if kw.pop("force", False):
            tm._FAST_MIN_SECONDS = 0.0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t, runs, eff = _median(lambda kw=kw: _tangermeme_region(tm, model, x, L, step, **kw), args.tm_repeats)
        finally:
            tm._FAST_MIN_SECONDS = old
        tm_times[label], tm_runs[label] = t, runs
        diffs[label] = float((eff - ours.effects).abs().max())
    best = min(tm_times, key=lambda k: tm_times[k])
    mutants = 3 * region
    return {
        "model": arch, "window": L, "region": region, "step": step, "windows": len(ours.starts), "mutants": mutants,
        "biodl_s": t_ours, "biodl_runs_s": runs_ours, "tangermeme_s": tm_times, "tangermeme_runs_s": tm_runs,
        "tangermeme_best": best, "ratio": tm_times[best] / t_ours, "biodl_mutants_per_s": mutants / t_ours,
        "tangermeme_mutants_per_s": mutants / tm_times[best], "max_abs_diff": diffs,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="biodl: median of this many runs")
    parser.add_argument("--tm-repeats", type=int, default=3, help="tangermeme: median of this many runs per setting")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import tangermeme
    import torch

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    names = {"deepbind": "DeepBind default, 101 bp window", "cnn": "two-conv CNN + max pool, 1000 bp window"}
    cases, rows = [], []
    for arch, L in (("deepbind", 101), ("cnn", 1000)):
        case = run_case(arch, L, args.region, args)
        cases.append(case)
        print(case, flush=True)
        rows.append([
            f"{names[arch]}, {args.region} bp region", case["windows"], case["mutants"], round(case["biodl_s"], 2),
            "; ".join(f"{k.replace('tangermeme ', '')}: {v:.2f}" for k, v in case["tangermeme_s"].items()),
            f"{case['biodl_mutants_per_s']:.0f}", f"{case['tangermeme_mutants_per_s']:.0f}", f"{case['ratio']:.1f}x",
            f"{max(case['max_abs_diff'].values()):.1e}",
        ])  # fmt: skip
    notes = (
        f"CPU, {args.threads} thread(s), tangermeme {tangermeme.__version__}; medians of {args.repeats} (biodl) and "
        f"{args.tm_repeats} (tangermeme, per setting) runs in one process. Windows start every L/2 bases; each position "
        "is mutated once, in its most central window, by both tools (same windows, same spans). Ratio = the faster "
        "tangermeme setting / biodl. "
    )
    load_end = os.getloadavg()
    command = "PYTHONPATH=src .venv/bin/python benchmarks/ism_region.py " + " ".join(sys.argv[1:] if argv is None else argv)
    notes += (
        f"Load average (1, 5, 15 min) at the start {', '.join(f'{v:.1f}' for v in load_start)}, at the end "
        f"{', '.join(f'{v:.1f}' for v in load_end)} (a shared 2-core machine; other jobs ran under nice). "
        f"Command: `{command}`."
    )
    write_results(
        "ism_region", {"settings": vars(args), "cases": cases, "loadavg_start": load_start, "loadavg_end": load_end,
                       "command": command},
        ["case", "windows", "mutants", "biodl (s)", "tangermeme (s)", "biodl mutants/s", "tangermeme mutants/s",
         "speed-up", "max |diff|"],
        rows, notes,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
