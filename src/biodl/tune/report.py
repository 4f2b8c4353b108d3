"""Outputs of a study: ``trials.csv``, ``best_config.yaml``, figures and ``tune_report.html``.

Every file is written atomically, so several workers finishing at different times leave the
outputs of whoever finished last, each file complete. Figures are drawn with matplotlib on
standalone figures; parameter importances are computed with :mod:`optuna.importance` (fANOVA,
seeded) and drawn here, so no plotly is needed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd
import yaml
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from biodl.config import ExperimentConfig
from biodl.io_utils import atomic_write_figure, atomic_write_text
from biodl.report import format_value, html_frame, render, write_report

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from biodl.training.diagnostics import Finding
    from biodl.tune.results import StudyTarget, TuneResult
    from biodl.tune.space import SearchSpace

__all__ = [
    "best_trial",
    "param_importances",
    "plot_history",
    "plot_importances",
    "plot_intermediate",
    "trials_frame",
    "write_best_config",
    "write_outputs",
]

_COLOURS = {"COMPLETE": "#1f77b4", "PRUNED": "#ff7f0e", "FAIL": "#d62728", "RUNNING": "#7f7f7f", "WAITING": "#7f7f7f"}


# ------------------------------------------------------------------------------------ tables
def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial with a finite value, or ``None``."""
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    if not done:
        return None
    pick = max if study.direction == StudyDirection.MAXIMIZE else min
    return pick(done, key=lambda t: float(t.value or 0.0))


def trials_frame(study: optuna.Study, space: SearchSpace, metric: str) -> pd.DataFrame:
    """One row per trial: number, state, value, every searched key, epochs, seed, duration, dir."""
    rows: list[dict[str, Any]] = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        row: dict[str, Any] = {"number": t.number, "state": t.state.name, f"val_{metric}": t.value}
        decoded = space.decoded(t.params)
        for key in space.keys:
            value = decoded.get(key)
            row[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
        row["epochs"] = t.user_attrs.get("epochs")
        row["pruned_at_epoch"] = t.user_attrs.get("pruned_at_epoch")
        row["varied"] = t.user_attrs.get("varied")
        row["seed"] = t.user_attrs.get("seed")
        row["duration_s"] = round(t.duration.total_seconds(), 3) if t.duration is not None else None
        row["started"] = t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else None
        row["dir"] = t.user_attrs.get("dir")
        row["error"] = t.user_attrs.get("error")
        rows.append(row)
    columns = ["number", "state", f"val_{metric}", *space.keys, "epochs", "pruned_at_epoch", "varied", "seed"]
    columns += ["duration_s", "started", "dir", "error"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.drop(columns=[c for c in ("varied", "pruned_at_epoch", "error") if frame[c].isna().all()])


def write_best_config(path: Path, cfg: ExperimentConfig, trial: FrozenTrial, *, metric: str, study_name: str) -> Path:
    """Write the best trial's config as a YAML file that ``biodl train --config`` re-runs."""
    raw = cfg.to_dict()
    raw.pop("tune", None)
    header = (
        f"# Best trial {trial.number} of study {study_name!r}: val {metric} = {trial.value:.6g}\n"
        f"# biodl train --config {path.name} --output-dir runs/best\n"
    )
    atomic_write_text(path, header + yaml.safe_dump(raw, sort_keys=False))
    return path


# ------------------------------------------------------------------------------------ figures
def _figure(size: tuple[float, float] = (7.0, 3.8)) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=100, layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    return atomic_write_figure(fig, path)


def plot_history(study: optuna.Study, path: Path, *, metric: str) -> Path:
    """Optimisation history: each finished trial's value by trial number, and the best so far."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    for state in (TrialState.COMPLETE, TrialState.PRUNED):
        pts = [(t.number, _last_value(t)) for t in trials if t.state == state]
        pts = [(n, v) for n, v in pts if v is not None and math.isfinite(v)]
        if pts:
            label = "complete" if state == TrialState.COMPLETE else "pruned (last reported)"
            xs, ys = zip(*pts)
            ax.scatter(xs, ys, s=22, color=_COLOURS[state.name], label=label, zorder=3)
    best_x: list[int] = []
    best_y: list[float] = []
    better = max if study.direction == StudyDirection.MAXIMIZE else min
    current: float | None = None
    for t in trials:
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value):
            current = t.value if current is None else better(current, t.value)
        if current is not None:
            best_x.append(t.number)
            best_y.append(current)
    if best_x:
        ax.step(best_x, best_y, where="post", color="#2ca02c", label="best so far")
    failed = [t.number for t in trials if t.state == TrialState.FAIL]
    if failed:
        for n in failed:
            ax.axvline(n, color=_COLOURS["FAIL"], alpha=0.25, linewidth=1)
        ax.plot([], [], color=_COLOURS["FAIL"], alpha=0.5, label="failed")
    ax.set_xlabel("trial")
    _integer_ticks(ax)
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(f"Optimisation history ({study.direction.name.lower()})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _save(fig, path)


def _integer_ticks(ax: Axes) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _last_value(t: FrozenTrial) -> float | None:
    if t.value is not None:
        return t.value
    if t.intermediate_values:
        return t.intermediate_values[max(t.intermediate_values)]
    return None


def plot_intermediate(study: optuna.Study, path: Path, *, monitor: str) -> Path | None:
    """Per-epoch reported values of every trial (pruned trials dashed); ``None`` if none reported."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.intermediate_values]
    if not trials:
        return None
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for t in trials:
        steps = sorted(t.intermediate_values)
        pruned = t.state == TrialState.PRUNED
        ax.plot(
            [s + 1 for s in steps],
            [t.intermediate_values[s] for s in steps],
            color=_COLOURS.get(t.state.name, "#7f7f7f"),
            linestyle="--" if pruned else "-",
            alpha=0.7,
            linewidth=1,
        )
    ax.plot([], [], color=_COLOURS["COMPLETE"], label="complete")
    ax.plot([], [], color=_COLOURS["PRUNED"], linestyle="--", label="pruned")
    ax.set_xlabel("epoch")
    _integer_ticks(ax)
    ax.set_ylabel(monitor)
    ax.set_title("Values reported to the pruner")
    ax.legend(fontsize=8)
    return _save(fig, path)


def param_importances(study: optuna.Study) -> dict[str, float] | None:
    """fANOVA importances of the searched keys (seeded), or ``None`` with fewer than 2 varied trials."""
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    if len(done) < 2:
        return None
    try:
        result = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    except (RuntimeError, ValueError, ZeroDivisionError):
        return None
    clean = {k: float(v) for k, v in result.items() if math.isfinite(float(v))}
    return clean or None


def plot_importances(importances: Mapping[str, float], path: Path) -> Path:
    """Horizontal bars of parameter importances, most important on top."""
    items = sorted(importances.items(), key=lambda kv: kv[1])
    fig = _figure((7.0, 0.9 + 0.45 * max(1, len(items))))
    ax = fig.add_subplot(1, 1, 1)
    ax.barh([k for k, _ in items], [v for _, v in items], color="#1f77b4")
    for i, (_, v) in enumerate(items):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax.set_xlabel("importance (fANOVA, normalised)")
    ax.set_xlim(0, max(1.0, max((v for _, v in items), default=1.0)) * 1.12)
    ax.set_title("Hyper-parameter importances")
    return _save(fig, path)


# ------------------------------------------------------------------------------------ report
def _html_table(frame: pd.DataFrame) -> str:
    return html_frame(frame)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _findings(run_dir: Path | None) -> list[Finding]:
    from biodl.training.diagnostics import Finding

    raw = _read_json(run_dir / "diagnostics.json") if run_dir is not None else None
    if not isinstance(raw, list):
        return []
    out: list[Finding] = []
    for item in raw:
        if isinstance(item, dict) and "kind" in item and "message" in item:
            out.append(Finding(item["kind"], str(item["message"]), dict(item.get("evidence") or {})))
    return out


def _state_counts(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def write_outputs(
    study: optuna.Study,
    output_dir: Path,
    *,
    space: SearchSpace,
    target: StudyTarget,
    best_config: Callable[[FrozenTrial], ExperimentConfig],
    storage: str,
    sampler: str,
    pruner: str,
    report: bool = True,
    plots: bool = True,
) -> TuneResult:
    """Write ``trials.csv``, ``best_config.yaml``, ``figures/`` and ``tune_report.html``.

    Parameters
    ----------
    best_config
        Builds the config of a trial (the base config with its values and seed).
    report, plots
        Whether to write the HTML report and the figures.
    """
    from biodl.tune.results import TuneResult

    frame = trials_frame(study, space, target.metric)
    table = output_dir / "trials.csv"
    atomic_write_text(table, frame.to_csv(index=False))
    best = best_trial(study)
    best_path: Path | None = None
    best_cfg: ExperimentConfig | None = None
    if best is not None:
        best_cfg = best_config(best)
        best_path = write_best_config(
            output_dir / "best_config.yaml", best_cfg, best, metric=target.metric, study_name=study.study_name
        )
    figures: dict[str, Path] = {}
    if plots and len(frame):
        figdir = output_dir / "figures"
        figures["Optimisation history"] = plot_history(study, figdir / "optimisation_history.png", metric=target.metric)
        inter = plot_intermediate(study, figdir / "intermediate_values.png", monitor=target.monitor or target.metric)
        if inter is not None:
            figures["Per-epoch values reported to the pruner"] = inter
        importances = param_importances(study)
        if importances:
            figures["Hyper-parameter importances"] = plot_importances(importances, figdir / "param_importances.png")
    report_path: Path | None = None
    if report:
        report_path = _write_report(
            study, output_dir, frame, best, best_cfg, figures, space=space, target=target,
            storage=storage, sampler=sampler, pruner=pruner,
        )  # fmt: skip
    _print_summary(study, best, space, target, best_path, report_path)
    return TuneResult(study, output_dir, best_path, table, report_path)


def _write_report(
    study: optuna.Study,
    output_dir: Path,
    frame: pd.DataFrame,
    best: FrozenTrial | None,
    best_cfg: ExperimentConfig | None,
    figures: dict[str, Path],
    *,
    space: SearchSpace,
    target: StudyTarget,
    storage: str,
    sampler: str,
    pruner: str,
) -> Path:
    run_dir = output_dir / str(best.user_attrs["dir"]) if best is not None and "dir" in best.user_attrs else None
    counts = _state_counts(study)
    summary: dict[str, Any] = {
        "study": study.study_name,
        "storage": storage,
        "sampler": sampler,
        "pruner": pruner,
        "objective": f"{study.direction.name.lower()} validation {target.metric}",
        "trials": ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) or "none",
    }
    if best is not None:
        summary["best trial"] = best.number
        summary[f"best val {target.metric}"] = best.value
        summary["best trial directory"] = str(best.user_attrs.get("dir", ""))
    metrics: dict[str, Any] = {}
    split_sizes: dict[str, int] = {}
    if run_dir is not None:
        metrics = _read_json(run_dir / "metrics.json") or {}
        splits = _read_json(run_dir / "splits.json") or {}
        sizes = splits.get("sizes") if isinstance(splits, dict) else None
        split_sizes = {str(k): int(v) for k, v in sizes.items()} if isinstance(sizes, dict) else {}
        curve = run_dir / "figures" / "learning_curves.png"
        if curve.is_file():
            figures = {**figures, f"Learning curves of the best trial ({best.number if best else ''})": curve}
    sections: list[tuple[str, str]] = []
    if best is not None:
        params = space.decoded(best.params)
        best_frame = pd.DataFrame({"key": list(params), "value": [format_value(v) for v in params.values()]})
        sections.append(("Best hyper-parameters", _html_table(best_frame)))
    space_yaml = yaml.safe_dump(space.to_dict(), sort_keys=False)
    sections.append(("Search space", render("pre.html.j2", text=space_yaml)))
    sections.append(("Trials", _html_table(frame) if len(frame) else '<p class="note">no trials yet</p>'))
    config = best_cfg.to_dict() if best_cfg is not None else {}
    config.pop("tune", None)
    return write_report(
        output_dir / "tune_report.html",
        title=f"biodl tune: {study.study_name}",
        config=config,
        data_summary=summary,
        split_sizes=split_sizes,
        metrics=metrics,
        baseline=None,
        findings=_findings(run_dir),
        figures=figures,
        sections=sections,
    )


def _print_summary(
    study: optuna.Study,
    best: FrozenTrial | None,
    space: SearchSpace,
    target: StudyTarget,
    best_path: Path | None,
    report_path: Path | None,
) -> None:
    counts = _state_counts(study)
    print("trials: " + (", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) or "none"))
    if best is not None:
        params = ", ".join(f"{k}={v}" for k, v in _plain(space.decoded(best.params)).items())
        print(f"best trial {best.number}: val {target.metric} = {best.value:.4g} [{params}]")
    if best_path is not None:
        print(f"best config: {best_path.resolve()}")
    if report_path is not None:
        print(f"report: {report_path.resolve()}")


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in values.items()}
