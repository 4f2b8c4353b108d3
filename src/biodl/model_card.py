"""Model cards: ``model/README.md`` with Hugging Face-style YAML front matter, written from a run.

The card is Markdown (the report's Jinja2 environment escapes for HTML, which would garble Markdown), built from
``config.yaml`` (incl. its ``card:`` section), ``metrics.json``, ``splits.json`` and ``model/bundle.json`` of a run::

    ---
    library_name: biodl
    license: mit
    tags: [biodl, sequence, binary, ...]
    datasets: [...]
    task: binary-classification
    metrics: [auroc, ...]
    model-index: [{name, results: [{task, dataset, metrics: [{type, value, split}]}]}]
    biodl: {name, version, data_type, kind, model, format_version, parent}
    ---
    # NAME ... Intended use / Training data and split / Evaluation / Limitations / How to use / Reproduce / Citation
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from biodl.io_utils import atomic_write_text
from biodl.metrics import format_difference

CARD = "README.md"
#: Metrics where smaller is better (the baseline comparison flips for them).
LOWER_IS_BETTER = ("rmse", "mae", "mse", "loss", "hamming_loss", "one_error", "coverage", "ranking_loss", "brier")
_HEADLINE = {
    "binary": ("auroc", "accuracy"),
    "multiclass": ("accuracy", "balanced_accuracy", "auroc"),
    "multilabel": ("micro_f1", "macro_auroc", "auroc", "hamming_loss"),
    "regression": ("rmse", "r2", "pearson"),
    "segmentation": ("dice", "iou", "f1", "pixel_accuracy"),
    "positions": ("accuracy",),
}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def read_yaml_or_none(path: Path) -> Any:
    """The parsed YAML file, or ``None`` when it is missing or unreadable."""
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _scalars(block: Any) -> dict[str, float]:
    if not isinstance(block, Mapping):
        return {}
    return {k: float(v) for k, v in block.items() if isinstance(v, int | float) and not isinstance(v, bool) and k != "n"}


def task_label(kind: str, data_type: str) -> str:
    """The card's task tag, e.g. ``binary-classification``."""
    return {
        "binary": "binary-classification",
        "multiclass": "multiclass-classification",
        "multilabel": "multi-label-classification",
        "regression": "regression",
        "segmentation": "image-segmentation" if data_type == "image" else "segmentation",
        "positions": "per-position-labelling",
        "reconstruction": "reconstruction",
    }.get(kind, kind)


def headline_metric(kind: str, metrics: Mapping[str, Any]) -> str | None:
    """The metric the card puts first: the baseline's ``main_metric`` if recorded, else one by task."""
    base = metrics.get("baseline")
    if isinstance(base, Mapping) and isinstance(base.get("main_metric"), str):
        name = str(base["main_metric"])
        if name in _scalars(metrics.get("val")) or name in _scalars(metrics.get("test")):
            return name
    have = _scalars(metrics.get("val")) or _scalars(metrics.get("test"))
    for name in _HEADLINE.get(kind, ()):
        if name in have:
            return name
    return next(iter(have), None)


def baseline_comparison(metrics: Mapping[str, Any], metric: str | None) -> dict[str, Any] | None:
    """Network vs classical baseline on ``metric``: split, values, margin (positive = the network is better), verdict.

    The run's own verdict (``baseline_comparison`` of ``metrics.json``: the validation split, with its standard
    error where recorded) when it is on ``metric``; else computed from the test split (validation when the
    run has no test split). Values, margin and verdict always come from the same split.
    """
    base = metrics.get("baseline")
    if not isinstance(base, Mapping) or metric is None:
        return None
    recorded = metrics.get("baseline_comparison")
    if isinstance(recorded, Mapping) and recorded.get("metric") == metric and isinstance(recorded.get("margin"), int | float):
        out = {k: recorded.get(k) for k in ("metric", "split", "network", "baseline", "margin")}
        out["baseline_name"] = recorded.get("baseline_name") or base.get("name")
        out["network_beats_baseline"] = bool(metrics.get("network_beats_baseline", recorded["margin"] >= 0))
        for key in ("standard_error", "within_noise"):
            if recorded.get(key) is not None:
                out[key] = recorded[key]
        return out
    for split in ("test", "val"):
        net, ref = _scalars(metrics.get(split)).get(metric), _scalars(base.get(split)).get(metric)
        if net is not None and ref is not None:
            break
    else:
        return None
    sign = -1.0 if any(metric.endswith(s) or metric == s for s in LOWER_IS_BETTER) else 1.0
    margin = sign * (net - ref)
    return {"metric": metric, "split": split, "network": net, "baseline": ref, "baseline_name": base.get("name"),
            "margin": margin, "network_beats_baseline": margin > 0}  # fmt: skip


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _front_matter(info: dict[str, Any]) -> str:
    return "---\n" + yaml.safe_dump(info, sort_keys=False, allow_unicode=True, width=1000) + "---\n"


def render_card(
    run_dir: str | Path,
    *,
    name: str | None = None,
    version: str | None = None,
    command: str | None = None,
    parent: Mapping[str, Any] | None = None,
    bundle: str = "model",
) -> str:
    """The model card of a run (or of a bare ``model/`` folder) as Markdown with YAML front matter.

    Parameters
    ----------
    run_dir
        The run directory (``config.yaml``, ``metrics.json``, ``model/``) or a bundle folder.
    name, version
        Zoo name and version (default: ``card.name`` of the config, else the folder name; version 1).
    command
        The command that reproduces the model (default: ``biodl train --config RUN/config.yaml``).
    parent
        The model this one was fine-tuned from (default: ``parent`` recorded in ``transfer.json``).
    bundle
        Which bundle of the run the card describes: ``model`` (the run's model) or ``model_heldout`` (the measured
        model of a run whose ``model/`` was trained again on its test rows, ``train.refit``).
    """
    run = Path(run_dir)
    model_dir = run / bundle if (run / bundle / "bundle.json").is_file() else run
    meta = _read_json(model_dir / "bundle.json") or {}
    cfg = read_yaml_or_none(run / "config.yaml") or read_yaml_or_none(model_dir / "config.yaml") or {}
    metrics = _read_json(run / "metrics.json") or meta.get("metrics") or {}
    splits = _read_json(run / "splits.json") or {}
    transfer = _read_json(run / "transfer.json") or {}
    card = cfg.get("card") or {}
    data = cfg.get("data") or meta.get("data") or {}
    parent = parent or transfer.get("parent")
    kind, data_type = str(meta.get("kind", "")), str(data.get("type", ""))
    model_name = (meta.get("model") or {}).get("name", "")
    name = name or card.get("name") or (run.name if run.name != "model" else run.parent.name)
    task = task_label(kind, data_type)
    headline = headline_metric(kind, metrics)
    comparison = baseline_comparison(metrics, headline)
    results = []
    for split, label in (("val", "validation"), ("test", "test")):
        for m, v in _scalars(metrics.get(split)).items():
            results.append({"type": m, "value": round(v, 6), "split": label})
    datasets = list(card.get("datasets") or []) or [str(Path(p).name) for p in (data.get("path") or [])]
    tags = ["biodl", data_type, kind, model_name, *(card.get("tags") or [])]
    info: dict[str, Any] = {
        "library_name": "biodl",
        "license": card.get("license") or "other",
        "tags": list(dict.fromkeys(t for t in tags if t)),
        "datasets": datasets,
        "task": task,
        "metrics": sorted({r["type"] for r in results}),
        "model-index": [{
            "name": name,
            "results": [{"task": {"type": task}, "dataset": {"name": datasets[0] if datasets else "", "type": data_type},
                         "metrics": results}],
        }],
        "biodl": {
            "name": name, "version": str(version or "1"), "data_type": data_type, "kind": kind, "model": model_name,
            "headline_metric": headline, "format_version": meta.get("format_version"),
            "biodl_version": meta.get("biodl_version"), "parent": dict(parent) if parent else None,
        },
    }  # fmt: skip
    if comparison is not None:
        info["biodl"]["network_beats_baseline"] = comparison["network_beats_baseline"]
    out = [_front_matter(info), f"# {name}\n"]
    if card.get("description"):
        out.append(f"{card['description']}\n")
    out.append(
        f"A biodl `{model_name}` model for {task.replace('-', ' ')} of `{data_type}` data"
        + (f" (targets: {', '.join(meta.get('target_names') or [])})" if meta.get("target_names") else "")
        + (f"; classes: {', '.join(str(c) for c in meta['classes'])}" if meta.get("classes") else "")
        + ".\n"
    )
    out.append("## Intended use\n")
    out.append((card.get("intended_use") or f"Research use: {task.replace('-', ' ')} of new {data_type} records read "
                "with the same columns and preprocessing as the training data.") + "\n")  # fmt: skip
    if parent:
        out.append("## Fine-tuned from\n")
        named = f" ({parent.get('name')})" if parent.get("name") else ""
        frozen = f", first {parent.get('frozen_layers')} layers frozen" if parent.get("frozen_layers") else ""
        n_reinit = len(parent.get("reinitialised") or [])
        out.append(
            f"Initialised from `{parent.get('source')}`{named}: {parent.get('loaded', '?')} tensors loaded, "
            f"{n_reinit} re-initialised (output head: the labels differ){frozen}.\n"
            if n_reinit
            else f"Initialised from `{parent.get('source')}`{named}: {parent.get('loaded', '?')} tensors loaded{frozen}.\n"
        )
    refit: Mapping[str, Any] = metrics["refit"] if isinstance(metrics.get("refit"), Mapping) else {}
    refitted = refit.get("shipped") == "refit" and bundle == "model"
    out.append("## Training data and split\n")
    sizes = splits.get("sizes") or {s: (metrics.get(s) or {}).get("n") for s in ("train", "val", "test")}
    sizes_text = ", ".join(f"{k} {v}" for k, v in sizes.items() if v)
    method = splits.get("method") or data.get("split")
    out.append(
        f"- Data: {', '.join(datasets) or 'see config'}"
        + (f" (terms: {card['data_license']})" if card.get("data_license") else "")
        + f"\n- Split: {method or 'see config'}" + (f" ({sizes_text})" if sizes_text else "")
        + (f", seed {splits['seed']}" if "seed" in splits else "")
        + "\n- Preprocessing is fitted on the "
        + ("training and test rows (the refit below)" if refitted else "training split only")
        + " and stored in the bundle.\n"
    )  # fmt: skip
    if refitted:
        out.append(
            f"- **Trained again on {refit.get('rows')} rows** (training + test, `train.refit`) once measured: the test "
            "figures below are those of the same recipe trained without the test rows (`model_heldout/` of the run); "
            "do not score this model on the run's test rows.\n"
        )
    out.append("## Evaluation\n")
    if results:
        names = sorted({str(r["type"]) for r in results}, key=lambda m: (m != headline, m))
        base: Mapping[str, Any] = metrics["baseline"] if isinstance(metrics.get("baseline"), Mapping) else {}
        bname = base.get("name")
        head = ["metric", "validation", "test"] + (
            [f"baseline ({bname}) validation", f"baseline ({bname}) test"] if bname else []
        )
        table = ["| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"]
        for m in names:
            row: list[str] = [m, _fmt(_scalars(metrics.get("val")).get(m, "–")), _fmt(_scalars(metrics.get("test")).get(m, "–"))]
            if bname:
                row += [_fmt(_scalars(base.get("val")).get(m, "–")), _fmt(_scalars(base.get("test")).get(m, "–"))]
            table.append("| " + " | ".join(row) + " |\n")
        out.append("".join(table))
    if comparison is not None:
        verdict = "beats" if comparison["network_beats_baseline"] else "does **not** beat"
        out.append(
            f"On the {'test' if comparison['split'] == 'test' else 'validation'} split the network {verdict} the classical "
            f"baseline ({comparison['baseline_name']}) on {comparison['metric']}: {comparison['network']:.4f} vs "
            f"{comparison['baseline']:.4f} (margin {format_difference(comparison['margin'], sign=True)}, "
            "positive = network better"
            + (
                f"; standard error {format_difference(comparison['standard_error'])}, "
                + ("within" if comparison.get("within_noise") else "beyond")
                + " the noise of the split's rows"
                if comparison.get("standard_error") is not None
                else ""
            )
            + ").\n"
        )
    else:
        out.append("No classical baseline was fitted for this run.\n")
    out.append("## Limitations\n")
    lims = list(card.get("limitations") or [])
    lims.append("Scores are for the split above; data from another source, protocol or population can score lower.")
    out.append("".join(f"- {item}\n" for item in lims))
    out.append("## How to use\n")
    ref = f"zoo:{name}" if version is not None else str(run)
    out.append("```\n" + f"biodl predict --model-path {ref} --data-path NEW_DATA --output predictions.csv\n"
               + f"biodl train --config MY_CONFIG.yaml --init-from {ref}    # fine-tune on your data\n" + "```\n")  # fmt: skip
    out.append("## Reproduce\n")
    out.append(
        "```\n" + (command or f"biodl train --config {shlex.quote(str(run / 'config.yaml'))} --output-dir RUN") + "\n```\n"
    )
    out.append(f"Trained with biodl {meta.get('biodl_version', '?')} (bundle format {meta.get('format_version', '?')}).\n")
    out.append("## Citation\n")
    out.append((card.get("citation") or "Cite the training data's source and biodl.") + "\n")
    return "\n".join(s.rstrip("\n") + "\n" for s in out).replace("\n\n\n", "\n\n")


def write_card(run_dir: str | Path, **kwargs: Any) -> Path:
    """Write the card to ``model/README.md`` of a run (see :func:`render_card`); returns the file."""
    run = Path(run_dir)
    model_dir = run / "model" if (run / "model").is_dir() else run
    path = model_dir / CARD
    atomic_write_text(path, render_card(run, **kwargs))
    return path


def read_card(model_dir: str | Path) -> dict[str, Any] | None:
    """``{"front_matter": {...}, "markdown": text}`` of a bundle folder's card, or ``None`` without one."""
    f = Path(model_dir) / CARD
    if not f.is_file():
        return None
    text = f.read_text(encoding="utf-8")
    front: dict[str, Any] = {}
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end > 0:
            loaded = yaml.safe_load(text[4:end])
            front = loaded if isinstance(loaded, dict) else {}
    return {"front_matter": front, "markdown": text}
