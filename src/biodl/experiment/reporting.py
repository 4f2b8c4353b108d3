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
    from biodl.experiment.yardstick import baseline_findings

    auto = "model_selection" in metrics
    training = metrics.get("training") or {}
    kept = (
        (int(training["best_epoch"]), str(training["best_epoch_by"]))
        if training.get("best_epoch") is not None and training.get("best_epoch_by")
        else None
    )
    findings = _level_findings(config, split, targets, history, metrics) + diagnose(history, kept)
    findings += baseline_findings(metrics, auto=auto)
    found = [f.to_dict() for f in findings]
    atomic_write_text(out / "diagnostics.json", json.dumps(found, indent=1))
    metric, _ = main_metric(targets.kind)
    figures: dict[str, Path] = {}
    if config.evaluate.plots:
        figures = _figures(out, targets, y_pred, split, history, metric)
    figures.update(extra_figures or {})
    chosen = (metrics.get("model_selection") or {}).get("selected")  # model.name auto: what it chose
    name = f"auto: {chosen}" if chosen else config.model.name
    print_metrics_table(metrics, title=f"{name} on {', '.join(Path(p).name for p in config.data.path)}")
    print(format_findings(findings))
    from biodl.experiment.yardstick import verdict

    said = verdict(metrics)
    if said:
        print(("" if metrics.get("network_beats_baseline") else "WARNING: ") + said)
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
            sections=_selection_sections(metrics)
            + _interpretation_sections(out, config, data, split)
            + _deployment_sections(out),
        )
        print(f"report: {report.resolve()}")
    return found


_LOSS_NAMES = {"binary": "binary cross-entropy", "multiclass": "cross-entropy", "regression": "MSE (standardised targets)"}


def _level_findings(
    config: ExperimentConfig, split: Split, targets: Targets, history: dict[str, list[float]], metrics: dict[str, Any]
) -> list[Any]:
    """Loss-level findings (:mod:`biodl.training.loss_level`): above the chance-level loss, non-finite, metric at chance."""
    from biodl.training.loss_level import chance_loss, check_loss_level

    # the chance level is that of biodl's loss on the targets: not with an L1 term added, nor for two-step models
    comparable = config.train.l1 == 0 and config.train.loss == "mse" and "label_encoder" not in metrics
    chance = chance_loss(targets.kind, targets.y[split.train], targets.num_outputs) if comparable else None
    majority = None
    if targets.kind == "multiclass" and len(split.val):
        lab = targets.y[split.val]
        lab = lab[lab >= 0].astype(np.int64)
        majority = float(np.bincount(lab).max() / len(lab)) if len(lab) else None
    val_metrics = metrics.get("val") if isinstance(metrics.get("val"), dict) else None
    return check_loss_level(
        history,
        chance=chance,
        val_metrics=val_metrics,
        majority_share=majority,
        loss_name=_LOSS_NAMES.get(targets.kind, "loss"),
    )


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
        pass  # overlays come from biodl.explain.run_figures (image figures)
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


def _selection_sections(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """The report's "Network vs baseline" verdict and, for ``model.name: auto``, every candidate's validation score."""
    from biodl.experiment.selection_report import selection_html

    html = selection_html(metrics)
    return [("Network vs baseline, model selection", html)] if html else []


def _deployment_sections(out: Path) -> list[tuple[str, str]]:
    """The report's "Deployment" section (how to predict with, export and serve the saved model)."""
    from biodl.experiment.deployment import deployment_section

    section = deployment_section(out)
    return [section] if section is not None else []


def _interpretation_sections(out: Path, config: ExperimentConfig, data: LoadedData, split: Split) -> list[tuple[str, str]]:
    """Sequence models: mutation maps of a few test sequences and filter motifs with their JASPAR matches."""
    if config.data.type != "sequence" or config.data.per_position or not config.evaluate.plots:
        return []
    from biodl.explain.report import report_sections

    return report_sections(out, data=data, split=split)


def write_transfer_report(model: Any, out: Path) -> dict[str, Any] | None:
    """Print and write ``transfer.json``: which pretrained weights were loaded, skipped or missing,
    and which encoder stages / parameters are frozen (models with ``transfer_report()``; only when
    weights were loaded or something is frozen)."""
    report_fn = getattr(model, "transfer_report", None)
    if not callable(report_fn):
        return None
    rep: dict[str, Any] = report_fn()
    if not rep.get("pretrained") and not rep.get("frozen_parameters"):
        return None
    lines = []
    pre = rep.get("pretrained")
    if pre:
        skipped = pre.get("skipped", [])
        shown = "; ".join(skipped[:3]) + ("..." if len(skipped) > 3 else "")
        lines.append(
            f"transfer learning: loaded {pre['loaded']} tensor(s) from {pre.get('weights')}; "
            f"skipped {len(skipped)} (shape mismatch){': ' + shown if skipped else ''}; "
            f"{len(pre.get('missing', []))} not in the file (freshly initialised); "
            f"{len(pre.get('unused', []))} in the file unused"
        )
    n_frozen = len(rep["frozen_stages"])
    lines.append(
        f"frozen: the first {n_frozen} of {rep['encoder_stages']} encoder stage(s), {rep['frozen_parameters']:,} "
        f"parameter(s) (batch-norm statistics fixed); trainable: {rep['trainable_parameters']:,} parameter(s)"
    )
    from biodl.training.fit import is_rank_zero

    if is_rank_zero():
        atomic_write_text(out / "transfer.json", json.dumps(rep, indent=1, default=str))
        print("\n".join(lines) + f" (details in {out / 'transfer.json'})")
    return rep


def write_parent_report(model: Any, cfg: Any, targets: Any, out: Path) -> dict[str, Any]:
    """Fine-tuning (``train.init_from``): load the parent's matching weights into ``model``, freeze layers, print
    a summary and record the parent under ``parent`` in ``transfer.json`` (read by the model card)."""
    from biodl.training.fit import is_rank_zero
    from biodl.training.init_from import init_from

    rep = init_from(model, str(cfg.train.init_from), target_names=targets.names, classes=targets.classes,
                    freeze_layers=cfg.train.freeze_layers)  # fmt: skip
    if is_rank_zero():
        f = out / "transfer.json"
        old = json.loads(f.read_text()) if f.is_file() else {}
        atomic_write_text(f, json.dumps({**old, "parent": rep}, indent=1, default=str))
        head = f"; head re-initialised ({len(rep['reinitialised'])} tensors: labels differ)" if rep["reinitialised"] else ""
        print(f"fine-tuning from {rep['source']}: loaded {rep['loaded']} tensor(s), skipped {len(rep['skipped'])} "
              f"(shape mismatch){head}; frozen {rep['frozen_layers']} layer(s); trainable {rep['trainable_parameters']:,} "
              f"parameter(s) (details in {f})")  # fmt: skip
    return rep
