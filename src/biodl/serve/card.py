"""Model card, input descriptions and prediction records (plain functions, no web framework)."""

from __future__ import annotations

import base64
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from biodl._version import __version__

if TYPE_CHECKING:
    from biodl.bundle import Bundle

#: What one request input is, per data type (types without an entry get a generic hint).


def input_hint(data_type: str) -> str:
    """What one request input of ``data_type`` is (the data type's ``input_hint``)."""
    from biodl.data import DATA_TYPES

    cls = DATA_TYPES[data_type] if data_type in DATA_TYPES else None
    return getattr(cls, "input_hint", "") or f"one {data_type} record"


def _finite(value: float) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


def mask_values(bundle: Bundle) -> np.ndarray:
    """Pixel value of each class index in predicted masks (the training masks' values, e.g. 0/255)."""
    values = getattr(bundle.modality, "mask_values", None)
    if callable(values):
        return np.asarray(values())
    return np.arange(max(2, len(bundle.classes or [])))


def segmentation_record(bundle: Bundle, probs: np.ndarray, *, probability_maps: bool = False) -> dict[str, Any]:
    """The JSON record of one segmented image from its probabilities ``(K, H, W)``.

    ``mask_png_base64`` is the predicted label mask as a base64 PNG whose pixel values are the
    training masks' values (0/255 for thresholded binary masks; 16-bit when a value exceeds 255)
    — the file ``biodl predict`` writes. ``class_fractions`` are the shares of pixels predicted
    per class. With ``probability_maps``, ``probability_maps_png_base64`` maps each class (the
    foreground class only, for one output map) to an 8-bit PNG of ``round(255 · p)``.
    """
    from biodl.data.image.io import mask_png_bytes, probability_png_bytes
    from biodl.metrics.segmentation import as_hard

    p = np.asarray(probs, dtype=np.float32)
    classes = list(bundle.classes or ["0", "1"])
    hard = as_hard(p[None])[0]
    h, w = hard.shape
    counts = np.bincount(hard.ravel(), minlength=len(classes))[: len(classes)]
    record: dict[str, Any] = {
        "mask_png_base64": base64.b64encode(mask_png_bytes(mask_values(bundle)[hard])).decode("ascii"),
        "height": int(h),
        "width": int(w),
        "class_fractions": {c: float(n) / max(1, h * w) for c, n in zip(classes, counts)},
    }
    if probability_maps:
        names = [classes[-1]] if p.shape[0] == 1 else classes
        record["probability_maps_png_base64"] = {
            c: base64.b64encode(probability_png_bytes(p[j])).decode("ascii") for j, c in enumerate(names)
        }
    return record


def position_record(bundle: Bundle, probs: np.ndarray, length: int) -> dict[str, Any]:
    """Per-position outputs ``(C, L)`` of one sequence of ``length`` positions → label string and probabilities."""
    classes = list(bundle.classes or [str(c) for c in range(probs.shape[0])])
    p = np.asarray(probs[:, :length], dtype=np.float64)
    hard = p.argmax(axis=0) if length else np.zeros(0, np.int64)
    sep = "" if all(len(c) == 1 for c in classes) else " "
    return {
        "label": sep.join(classes[int(k)] for k in hard),
        "length": int(length),
        "position_probabilities": {c: [_finite(round(float(v), 5)) for v in p[j]] for j, c in enumerate(classes)},
    }


def prediction_records(
    bundle: Bundle, outputs: np.ndarray, *, probability_maps: bool = False, lengths: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """One JSON record per row of engine outputs ``(N, K)``.

    Single-column classification gives ``{"label", "probabilities": {class: p}}``; several binary
    tasks give ``{"probabilities": {task: p}}``; regression gives ``{"values": {target: v}}``;
    segmentation (outputs ``(N, K, H, W)``) gives a mask per image (:func:`segmentation_record`).
    Non-finite numbers become ``null``.
    """
    kind, classes, names = bundle.kind, bundle.classes, bundle.target_names
    if kind == "segmentation":
        return [segmentation_record(bundle, p, probability_maps=probability_maps) for p in np.asarray(outputs)]
    if kind == "positions":  # outputs (N, C, L); lengths (N,) of the sequences (default: L)
        out = np.asarray(outputs)
        ls = lengths if lengths is not None else np.full(len(out), out.shape[-1])
        return [position_record(bundle, p, int(n)) for p, n in zip(out, ls, strict=True)]
    values = np.asarray(outputs, dtype=np.float64)
    if kind == "multiclass" and classes and values.ndim == 2 and values.shape[1] and np.isfinite(values).all():
        # the common case in one vectorised pass: plain floats, no per-value finiteness checks
        labels = values.argmax(axis=1).tolist()
        return [
            {"label": classes[k], "probabilities": dict(zip(classes, row))}
            for k, row in zip(labels, values.tolist(), strict=True)
        ]
    records: list[dict[str, Any]] = []
    for row in values:
        if kind == "multiclass" and classes:
            probs = {c: _finite(p) for c, p in zip(classes, row)}
            records.append({"label": classes[int(np.nanargmax(row))] if np.isfinite(row).any() else None, "probabilities": probs})
        elif kind == "binary" and classes is not None and len(row) == 1:
            p = float(row[0])
            label = (classes[1] if p >= 0.5 else classes[0]) if math.isfinite(p) else None
            records.append({"label": label, "probabilities": {classes[0]: _finite(1.0 - p), classes[1]: _finite(p)}})
        elif kind == "binary":
            records.append({"probabilities": {n: _finite(p) for n, p in zip(names, row)}})
        else:
            records.append({"values": {n: _finite(v) for n, v in zip(names, row)}})
    return records


def describe_inputs(bundle: Bundle, example: Any = None) -> dict[str, Any]:
    """What ``POST /predict`` accepts for this model."""
    modality = bundle.modality
    describe = getattr(modality, "input_description", None)  # a description of this model's inputs (bags: rows or images)
    info: dict[str, Any] = {
        "data_type": modality.name,
        "description": describe() if callable(describe) else input_hint(modality.name),
        "model_input_shape": [int(s) for s in bundle.meta["model"]["in_shape"]],
    }
    features = getattr(modality, "feature_names", None)
    if features and not callable(features):  # tables list their columns; molecules take SMILES (a method there)
        info["feature_columns"] = list(features)
    if example is not None:
        info["example"] = example
    return info


def example_input(bundle: Bundle, raw: np.ndarray | None) -> Any:
    """A request input built from one raw data row, where the data type allows it (tables)."""
    if raw is None or len(raw) == 0 or bundle.modality.name != "tabular":
        return None
    return [float(v) for v in np.asarray(raw[0], dtype=np.float64)]


def model_card(
    bundle: Bundle, *, engine: dict[str, Any] | None = None, example: Any = None, limits: dict[str, int] | None = None
) -> dict[str, Any]:
    """The ``GET /model`` document: task, model, inputs, labels, metrics, versions."""
    from biodl.model_card import read_card

    meta = bundle.meta
    spec = meta.get("model", {})
    name = bundle.path.parent.name if bundle.path is not None and bundle.path.name == "model" else spec.get("name")
    card = read_card(bundle.path) if bundle.path is not None else None
    if card is not None:  # the model card (model/README.md): its zoo name, front matter and Markdown
        name = (card["front_matter"].get("biodl") or {}).get("name") or name
    return {
        "name": str(name),
        "task": meta.get("task"),
        "kind": bundle.kind,
        "model": {
            "architecture": spec.get("name"),
            "input_shape": spec.get("in_shape"),
            "outputs": spec.get("num_outputs"),
            "trainable_parameters": spec.get("trainable_parameters"),
        },
        "inputs": describe_inputs(bundle, example),
        "labels": bundle.classes,
        "target_names": bundle.target_names,
        "metrics": meta.get("metrics", {}),
        "version": {
            "biodl": __version__,
            "bundle_biodl": meta.get("biodl_version"),
            "bundle_format_version": meta.get("format_version"),
        },
        "engine": engine,
        "limits": limits or {},
        "card": card,
    }
