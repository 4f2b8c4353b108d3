"""End-of-run outputs: learning curves, diagnostics, figures, console table and ``report.html``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from biodl.io_utils import atomic_write_text
from biodl.metrics import main_metric

if TYPE_CHECKING:
    from biodl.config import ExperimentConfig
    from biodl.data.base import LoadedData
    from biodl.data.splits import Split
    from biodl.data.targets import Targets


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def print_metrics_table(metrics: dict[str, Any], *, title: str = "metrics") -> None:
    """Print network train/val/test and baseline test metrics side by side."""
    from rich.console import Console
    from rich.table import Table

    parts = [p for p in ("train", "val", "test") if metrics.get(p)]
    baseline = metrics.get("baseline") or {}
    names: list[str] = []
    for p in parts:
        names += [k for k, v in metrics[p].items() if k not in names and not isinstance(v, dict) and k != "n"]
    table = Table(title=title)
    table.add_column("metric")
    for p in parts:
        table.add_column(f"network {p}", justify="right")
    if baseline.get("test"):
        table.add_column(f"baseline test ({baseline.get('name')})", justify="right")
    for name in names:
        row = [name] + [_fmt(metrics[p].get(name)) for p in parts]
        if baseline.get("test"):
            row.append(_fmt(baseline["test"].get(name)))
        table.add_row(*row)
    Console().print(table)


def finish_run(
    out: Path,
    *,
    config: ExperimentConfig,
    data: LoadedData,
    split: Split,
    targets: Targets,
    y_pred: np.ndarray,
    history: dict[str, list[float]],
    metrics: dict[str, Any],
    extra_figures: dict[str, Path] | None = None,
) -> list[dict[str, Any]]:
    """Write history, plots, diagnostics and the HTML report; print the summary. Returns findings.

    ``extra_figures`` (caption → PNG, e.g. a data type's own figures) are added to the report.
    """
    from biodl.training.diagnostics import diagnose, format_findings

    atomic_write_text(out / "history.json", json.dumps(history, indent=1).replace("NaN", "null"))
    findings = diagnose(history)
    found = [f.to_dict() for f in findings]
    atomic_write_text(out / "diagnostics.json", json.dumps(found, indent=1))
    metric, _ = main_metric(targets.kind)
    figures: dict[str, Path] = {}
    if config.evaluate.plots:
        figures = _figures(out, targets, y_pred, split, history, metric)
    figures.update(extra_figures or {})
    print_metrics_table(metrics, title=f"{config.model.name} on {', '.join(Path(p).name for p in config.data.path)}")
    print(format_findings(findings))
    if config.evaluate.report:
        from biodl.report import write_report

        summary = dict(data.summary)
        summary.update(task=config.data.task, kind=targets.kind, targets=", ".join(targets.names))
        if targets.classes:
            summary["classes"] = ", ".join(targets.classes)
        summary["model"] = config.model.name
        report = write_report(
            out / "report.html",
            title=f"biodl run: {out.name}",
            config=config.to_dict(),
            data_summary=summary,
            split_sizes=split.sizes(),
            metrics=metrics,
            baseline=metrics.get("baseline"),
            findings=findings,
            figures=figures,
            sections=_interpretation_sections(out, config, data, split) + _deployment_sections(out),
        )
        print(f"report: {report.resolve()}")
    return found


def _figures(
    out: Path, targets: Targets, y_pred: np.ndarray, split: Split, history: dict[str, list[float]], metric: str
) -> dict[str, Path]:
    from biodl import plots

    figdir = out / "figures"
    figdir.mkdir(exist_ok=True)
    figs: dict[str, Path] = {}
    if history.get("epoch"):
        figs["Learning curves"] = plots.plot_learning_curves(history, figdir / "learning_curves.png", metric=metric)
    idx = split.test if len(split.test) else split.val
    if len(idx) == 0:
        return figs
    y = targets.y[idx]
    p = y_pred[idx]
    if targets.kind == "binary":
        figs["ROC and precision-recall curves (test)"] = plots.plot_roc_pr(y, p, figdir / "roc_pr.png", names=targets.names)
    elif targets.kind == "multiclass":
        figs["Confusion matrix (test)"] = plots.plot_confusion(
            y, p.argmax(axis=1), figdir / "confusion.png", classes=list(targets.classes or [])
        )
    elif targets.kind == "segmentation":
        pass  # overlays come from the image data type's report_figures
    elif targets.kind == "positions":
        from biodl.metrics.positions import per_sequence_accuracy

        counted = y >= 0
        hard = p[..., : y.shape[1]].argmax(axis=1)
        part = "test" if len(split.test) else "validation"
        figs[f"Confusion matrix of counted positions ({part})"] = plots.plot_confusion(
            y[counted], hard[counted], figdir / "confusion.png", classes=list(targets.classes or [])
        )
        figs[f"Per-sequence accuracy ({part})"] = plots.plot_histogram(
            per_sequence_accuracy(y, p), figdir / "per_sequence_accuracy.png", xlabel="accuracy of the sequence's positions"
        )
    else:
        figs["Predicted vs observed (test)"] = plots.plot_residuals(y, p, figdir / "residuals.png", names=targets.names)
    return figs


def _deployment_sections(out: Path) -> list[tuple[str, str]]:
    """The report's "Deployment" section (how to predict with, export and serve the saved model)."""
    from biodl.serve.report_section import deployment_section

    section = deployment_section(out)
    return [section] if section is not None else []


def _interpretation_sections(out: Path, config: ExperimentConfig, data: LoadedData, split: Split) -> list[tuple[str, str]]:
    """Sequence models: mutation maps of a few test sequences and filter motifs with their JASPAR matches."""
    if config.data.type != "sequence" or config.data.per_position or not config.evaluate.plots:
        return []
    from biodl.explain.report import report_sections

    return report_sections(out, data=data, split=split)
