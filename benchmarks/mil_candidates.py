"""Tables of the ``mil`` default candidates scored by ``mil_nested.py`` (no rep1 test fold used).

Reads ``results/mil_dev_rep2.jsonl`` (10-fold outer CV on MIDatasets' ``rep2_test_fold``, the
development folds) and ``results/mil_nested.jsonl`` (nested inner CV inside ``rep1_test_fold``'s
training folds) and writes ``results/mil_candidates.md``: one row per configuration, one column
per set, the mean only where all four sets finished. The replica scores a bag by the members' mean
probability; the row "members averaged in logit space" scores the same trained networks as biodl's
``mil`` forward does (mean logit, then the sigmoid).

    python benchmarks/mil_candidates.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SETS = ("musk1", "elephant", "fox", "tiger")
LABELS = {
    "instdrop30": "defaults (instance dropout 0.3, 5 members, 50 epochs)",
    "id50": "instance dropout 0.5",
    "m10": "10 members",
    "ep100": "100 epochs",
    "wd5e3": "weight decay 5e-3 (Ilse et al.)",
    "ilse": "weight decay 5e-3 + encoder [256, 128, 64] (Ilse et al.)",
    "gated": "gated-attention pooling (Ilse et al.)",
    "attention": "attention pooling (Ilse et al.)",
    "max": "max pooling",
    "wd1e4": "weight decay 1e-4",
}
#: Rows scored from the ``*_logit`` fields of a configuration's records: ``{row: (config, label)}``.
LOGIT_ROWS = {"instdrop30_logit": ("instdrop30", "defaults, members averaged in logit space (biodl's forward)")}


def scores(path: Path, key: str) -> dict[str, dict[str, float]]:
    """``{config: {set: score}}`` (the last record of a pair wins), plus the logit-space rows of :data:`LOGIT_ROWS`."""
    out: dict[str, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if r.get(key) is not None:
            out.setdefault(r["cfg"], {})[r["set"]] = float(r[key])
        for row, (cfg, _) in LOGIT_ROWS.items():
            if r["cfg"] == cfg and r.get(f"{key}_logit") is not None:
                out.setdefault(row, {})[r["set"]] = float(r[f"{key}_logit"])
    return out


def table(title: str, got: dict[str, dict[str, float]]) -> list[str]:
    lines = [f"| {title} | MUSK1 | Elephant | Fox | Tiger | mean |", "|---|---|---|---|---|---|"]
    labels = {**LABELS, **{row: label for row, (_, label) in LOGIT_ROWS.items()}}
    for cfg, label in labels.items():
        v = [got.get(cfg, {}).get(s) for s in SETS]
        cells = [f"{x:.3f}" if x is not None else "–" for x in v]
        done = [x for x in v if x is not None]
        mean = f"{sum(done) / len(SETS):.3f}" if len(done) == len(SETS) else "–"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {mean} |")
    return lines


def main() -> None:
    dev = scores(RESULTS / "mil_dev_rep2.jsonl", "outer_mean")
    nested = scores(RESULTS / "mil_nested.jsonl", "inner_mean")
    lines = ["# mil: default candidates (bag accuracy; no rep1 test fold used)", ""]
    lines += [*table("rep2 outer 10-fold (development folds)", dev), ""]
    lines += [*table("rep1 nested inner CV (outer folds 1, 4, 7)", nested), ""]
    lines.append("From `benchmarks/mil_nested.py` (see docs/mil.md); a dash: the run did not finish.")
    (RESULTS / "mil_candidates.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
