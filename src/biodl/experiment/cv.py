"""Cross-validation summary: mean and spread of the folds' scores; the best fold's model is kept."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from biodl.config import ExperimentConfig
from biodl.experiment.results import RunResult
from biodl.experiment.write import write_model_artifacts
from biodl.experiment.yardstick import compare_to_baseline
from biodl.io_utils import atomic_write_text
from biodl.metrics import main_metric, to_jsonable


def write_cv_summary(cfg: ExperimentConfig, results: list[RunResult], out: Path) -> RunResult:
    """Write the cross-validation ``metrics.json`` (fold means, ``*_std``) and the best fold's ``model/``."""
    summary: dict[str, Any] = {"cv": {"folds": len(results), "column": cfg.data.cv_column}}
    for part in ("train", "val", "test"):
        summary[part], summary["cv"][f"{part}_std"] = mean_std([r.metrics.get(part, {}) for r in results])
    base = [r.metrics.get("baseline", {}) for r in results]
    if base and all(b for b in base):
        mean, std = mean_std([b.get("test", {}) for b in base])
        val, _ = mean_std([b.get("val", {}) for b in base])
        summary["baseline"] = {"name": base[0].get("name"), "val": val, "test": mean, "test_std": std}
    summary["cv"]["per_fold"] = [{"test": r.metrics.get("test", {}), "dir": f"fold_{i}"} for i, r in enumerate(results)]
    metric, higher = main_metric(results[0].bundle.kind if results[0].bundle else "regression")
    if cfg.data.task == "multilabel" and metric not in results[0].metrics.get("val", {}):
        metric, higher = main_metric("multilabel")  # evaluate.metrics left out the per-label AUROC
    compare_to_baseline(summary, results[0].bundle.kind if results[0].bundle else "regression")  # on the fold means
    if any("network_beats_baseline" in r.metrics for r in results):
        summary["cv"]["network_beats_baseline_per_fold"] = [r.metrics.get("network_beats_baseline") for r in results]
    best = best_fold(results, metric, higher)
    if best.bundle is not None:
        best.bundle.save(out / "model")
        summary["cv"]["model_from_fold"] = results.index(best)
        write_model_artifacts(best.bundle.model, out, best.bundle.target_names, plots=cfg.evaluate.plots)
    atomic_write_text(out / "metrics.json", json.dumps(to_jsonable(summary), indent=1, allow_nan=False))
    if best.bundle is not None:
        from biodl.model_card import write_card

        write_card(out)
    from biodl.experiment.reporting import print_metrics_table

    print_metrics_table(summary, title=f"{len(results)}-fold cross-validation (mean)")
    return RunResult(out, summary, bundle=best.bundle)


def mean_std(blocks: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-metric mean and standard deviation over folds (non-finite values left out; ``None`` if none)."""
    keys = [k for k, v in (blocks[0] if blocks else {}).items() if isinstance(v, (int, float)) or v is None]
    mean: dict[str, Any] = {}
    std: dict[str, Any] = {}
    for k in keys:
        vals = [b.get(k) for b in blocks]
        nums = [float(v) for v in vals if isinstance(v, (int, float)) and math.isfinite(float(v))]
        mean[k] = float(np.mean(nums)) if nums else None
        std[k] = float(np.std(nums)) if nums else None
    tasks = [b.get("per_task") for b in blocks]
    per_task = [t for t in tasks if isinstance(t, dict)]
    if per_task and len(per_task) == len(blocks):  # e.g. one block per cell (CpG methylation)
        names = [n for n in per_task[0] if all(isinstance(t.get(n), dict) for t in per_task)]
        pairs = {n: mean_std([t[n] for t in per_task]) for n in names}
        mean["per_task"] = {n: m for n, (m, _) in pairs.items()}
        std["per_task"] = {n: s for n, (_, s) in pairs.items()}
    return mean, std


def best_fold(results: list[RunResult], metric: str, higher: bool) -> RunResult:
    """The fold with the best validation ``metric``."""

    def score(r: RunResult) -> float:
        v = r.metrics.get("val", {}).get(metric)
        if v is None:
            return -math.inf
        return float(v) if higher else -float(v)

    return max(results, key=score)
