"""Step 6: save the model bundle, ``metrics.json``, figures and ``report.html`` of a trained run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from biodl.config import ExperimentConfig
from biodl.data import LoadedData
from biodl.data.splits import Split
from biodl.experiment.results import Evaluation, Inputs, Prepared, RunResult, Trained
from biodl.explain.run_figures import run_figures
from biodl.io_utils import atomic_write_text
from biodl.training.fit import is_rank_zero


def write_run(
    cfg: ExperimentConfig,
    inputs: Inputs,
    split: Split,
    prepared: Prepared,
    trained: Trained,
    evaluation: Evaluation,
    out: Path,
    *,
    final: Trained | None = None,
) -> RunResult:
    """Write ``model/``, ``metrics.json``, model artifacts, figures, history, diagnostics and the report.

    ``final``: the model trained again on training + test rows (``train.refit``), saved as ``model/``; the
    measured ``trained`` (whose figures these are) is then saved as ``model_heldout/``.
    """
    from biodl.experiment.reporting import finish_run

    model, metrics = trained.model, evaluation.metrics
    targets = inputs.targets
    if final is not None:
        trained.bundle.save(out / "model_heldout")
        final.bundle.meta["metrics"] = trained.bundle.meta.get("metrics", {})  # the recipe's, measured without test rows
        record = metrics.get("refit", {})
        final.bundle.meta["refit"] = {k: record.get(k) for k in ("rows", "added_test_rows", "test_figures")}
    (final or trained).bundle.save(out / "model")
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1, allow_nan=False))
    artifacts = write_model_artifacts(model, out, targets.names, plots=cfg.evaluate.plots)
    extra_figures = {}
    if cfg.evaluate.plots and prepared.X is not None:
        rows = split.test if len(split.test) else split.val
        extra_figures = run_figures(inputs.modality, model, prepared.X, inputs.data, rows, evaluation.preds, out / "figures")
    extra_figures.update({f"model: {p.stem.replace('_', ' ')}": p for p in artifacts if p.suffix == ".png"})
    findings = finish_run(
        out,
        config=cfg,
        data=inputs.data,
        split=split,
        targets=targets,
        y_pred=evaluation.preds,
        history=trained.history,
        metrics=metrics,
        extra_figures=extra_figures,
    )
    from biodl.model_card import write_card

    try:
        write_card(out)  # model/README.md, after config.yaml and metrics.json exist
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a card never costs the trained model
        print(f"warning: model card not written ({type(exc).__name__}: {exc}); biodl zoo push writes it later")
    return RunResult(out, metrics, trained.history, findings, (final or trained).bundle)


def write_model_artifacts(model: Any, out: Path, names: list[str], *, plots: bool) -> list[Path]:
    """Model-specific run outputs (the ``dnae`` label hierarchy), for models that have any; returns the files."""
    writer = getattr(model, "write_run_artifacts", None)
    if callable(writer) and is_rank_zero():
        return list(writer(out, names, plots=plots))
    return []


def write_skipped_rows(out: Path, data: LoadedData) -> None:
    """``skipped_rows.csv`` / ``changed_rows.csv`` and label warnings (:mod:`biodl.data.row_report`)."""
    from biodl.data.row_report import write_row_reports

    write_row_reports(out, data, write=is_rank_zero())
