"""Collect every ``benchmarks/results/*.json`` headline into ``results/summary.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _stream_ratios(d: dict) -> str:
    """Streamed predict / bare engine: the streaming loop's ratio, and the whole process's where recorded."""
    whole = d.get("ratio_whole_process_vs_bare_median")
    return f"loop {d['ratio_streaming_loop_vs_bare_median']:.2f}" + ("" if whole is None else f", whole process {whole:.2f}")


#: benchmark name → (headline label, function of the JSON payload giving the headline value)
HEADLINES: dict[str, tuple[str, Any]] = {
    "onehot": (
        "biodl / tangermeme one-hot throughput, each with its defaults (target ≥ 2)",
        lambda d: (
            f"{d['speedup_biodl_over_tangermeme_defaults']:.2f} "
            f"(one thread each: {d['speedup_biodl_over_tangermeme_1_thread']:.2f})"
        ),
    ),
    "serve_load": (
        "biodl / bare FastAPI reference requests/s, median of paired rounds (target ≥ 0.7)",
        lambda d: ", ".join(f"{c['payload'].split()[0]} c={c['concurrency']} {c['ratio']:.2f}" for c in d["cells"]),
    ),
    "serve_load_workers2": (
        "as serve_load, two workers per server (target ≥ 0.7)",
        lambda d: ", ".join(f"{c['payload'].split()[0]} c={c['concurrency']} {c['ratio']:.2f}" for c in d["cells"]),
    ),
    "predict_stream_deepbind": (
        "streamed predict / bare engine rows/s, fresh processes (target ≥ 0.8)",
        _stream_ratios,
    ),
    "predict_stream_image": (
        "streamed predict / bare engine rows/s, fresh processes (target ≥ 0.8)",
        _stream_ratios,
    ),
    "predict_stream_same_process": (
        "streamed / bare engine rows/s, same process (target ≥ 0.8)",
        lambda d: f"{d['same_process_ratio_median']:.2f}",
    ),
    "predict_stream_image_same_process": (
        "streamed / bare engine rows/s, same process (target ≥ 0.8)",
        lambda d: f"{d['same_process_ratio_median']:.2f}",
    ),
    "predict_stream_tabular": (
        "peak-RSS growth 10^5 → 10^7 rows (target ≤ 20%)",
        lambda d: f"{d['peak_rss_growth']:.1%}",
    ),
    "predict_stream_tabular_trim": (
        "peak-RSS growth 10^5 → 10^6 rows, per-chunk malloc_trim (target ≤ 20%)",
        lambda d: f"{d['peak_rss_growth']:.1%}",
    ),
    "streaming": ("peak-RSS spread 1×–16× (target ≤ 20%)", lambda d: f"{d['rss_spread']:.1%}"),
    "training_loop": (
        "biodl / bare-loop throughput (target ≥ 0.97)",
        lambda d: ", ".join(
            f"{k} {v['overhead_ratio']:.2f}" for k, v in d.items() if isinstance(v, dict) and "overhead_ratio" in v
        ),
    ),
}


def main() -> None:
    rows = []
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        name = data.get("benchmark", path.stem)
        label, fn = HEADLINES.get(name, ("see the file", lambda d: d.get("headline", "")))
        try:
            value = fn(data)
        except (KeyError, TypeError, ValueError):
            value = "n/a"
        machine = data.get("machine")
        date = machine.get("date", "") if isinstance(machine, dict) else ""
        rows.append(f"| {name} | {label} | {value} | [{path.stem}.md]({path.stem}.md) | {date} |")
    text = "# Benchmark summary\n\n| benchmark | headline | value | details | measured |\n|---|---|---|---|---|\n"
    text += "\n".join(rows) + "\n"
    (RESULTS / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
