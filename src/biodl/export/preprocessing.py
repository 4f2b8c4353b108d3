"""The input preprocessing of a bundle as plain JSON, and a NumPy reference interpreter of it.

An exported graph takes *preprocessed* inputs; a consumer outside Python reproduces the
preprocessing from the ``preprocessing`` block of the export manifest:

``steps``
    Ordered operations on a batch of raw inputs, each ``{"op": NAME, ...}``. The operations
    biodl itself emits and :func:`apply_steps` interprets are:

    ``select_features``  a row is the listed ``columns`` in this order (float32)
    ``log1p``            ``x = log(1 + x)`` element-wise
    ``subtract``         ``x = x - values`` (broadcast over the last axis)
    ``divide``           ``x = x / values`` (broadcast over the last axis)
    ``multiply``         ``x = x * values`` (a scaling with zeros: features constant in training)
    ``clip``             ``x = min(max(x, low), high)`` element-wise (winsorised z-scores, ``normalize.clip``)
    ``matmul``           ``x = x @ matrix`` (row vectors)
    ``cast``             to ``dtype``

``state``
    The data type's complete fitted state (JSON metadata plus every array with shape and
    dtype), for anything the steps do not spell out.

A data type describes its own steps by defining ``export_preprocessing() -> dict`` (returning
at least ``{"steps": [...]}``); tables are described here from their normaliser. A data type
without either still gets its ``state`` recorded, with ``steps`` set to ``None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from biodl.bundle import Bundle

#: Operations :func:`apply_steps` can run.
KNOWN_OPS = frozenset({"select_features", "log1p", "subtract", "divide", "multiply", "clip", "matmul", "cast"})


def _array_json(a: np.ndarray) -> dict[str, Any]:
    arr = np.asarray(a)
    return {"dtype": str(arr.dtype), "shape": list(arr.shape), "data": arr.tolist()}


def _tabular_steps(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    norm = meta.get("normalize", {})
    steps: list[dict[str, Any]] = []
    if meta.get("feature_columns"):
        steps.append({"op": "select_features", "columns": list(meta["feature_columns"])})
    if norm.get("log1p"):
        steps.append({"op": "log1p"})
    if "mean" in arrays:
        steps.append({"op": "subtract", "values": np.asarray(arrays["mean"], np.float32).tolist()})
    if "std" in arrays:
        steps.append(_scale(arrays["std"]))
    if norm.get("clip") is not None:  # winsorised z-scores, standardised again with normalize.rescale
        steps.append({"op": "clip", "low": -float(norm["clip"]), "high": float(norm["clip"])})
        if "rescale_mean" in arrays:
            steps.append({"op": "subtract", "values": np.asarray(arrays["rescale_mean"], np.float32).tolist()})
            steps.append(_scale(arrays["rescale_std"]))
    if "whitening" in arrays:
        steps.append({"op": "matmul", "matrix": np.asarray(arrays["whitening"], np.float32).tolist()})
    steps.append({"op": "cast", "dtype": "float32"})
    return steps


def _scale(std: np.ndarray) -> dict[str, Any]:
    """``divide`` by ``std``; ``multiply`` by its reciprocal when some are infinite (features constant in training
    map to 0, and JSON has no infinity)."""
    v = np.asarray(std, np.float64)
    if np.isfinite(v).all():
        return {"op": "divide", "values": v.astype(np.float32).tolist()}
    return {"op": "multiply", "values": np.where(np.isfinite(v), 1.0 / v, 0.0).astype(np.float32).tolist()}


def describe_preprocessing(bundle: Bundle) -> dict[str, Any]:
    """The ``preprocessing`` block of an export manifest (plain JSON types only)."""
    modality = bundle.modality
    meta, arrays = modality.state()
    block: dict[str, Any] = {
        "data_type": modality.name,
        "model_input_shape": ["batch", *(int(s) for s in bundle.meta["model"]["in_shape"])],
        "model_input_dtype": "float32",
        "steps": None,
    }
    hook = getattr(modality, "export_preprocessing", None)
    if callable(hook):
        block.update(hook())
    elif modality.name == "tabular" and meta:
        block["steps"] = _tabular_steps(meta, arrays)
    if block.get("steps") is None:
        block["note"] = (
            f"data type {modality.name!r} does not spell out its steps; reproduce them from 'state' "
            "(its fitted settings and arrays)"
        )
    block["state"] = {"meta": meta, "arrays": {k: _array_json(v) for k, v in arrays.items()}}
    return block


def interpretable(block: dict[str, Any]) -> bool:
    """Whether :func:`apply_steps` can run every step of ``block``."""
    steps = block.get("steps")
    return isinstance(steps, list) and all(isinstance(s, dict) and s.get("op") in KNOWN_OPS for s in steps)


def apply_steps(block: dict[str, Any], raw: np.ndarray) -> np.ndarray:
    """Run the recorded steps on raw inputs, as a consumer outside biodl would (NumPy reference).

    Parameters
    ----------
    block
        The ``preprocessing`` block from :func:`describe_preprocessing` (or a parsed manifest).
    raw
        Raw inputs ``(N, ...)``; for tables the selected feature columns in order.

    Raises
    ------
    ValueError
        If a step is not one of :data:`KNOWN_OPS`.
    """
    x: np.ndarray = np.asarray(raw, dtype=np.float32)
    for step in block.get("steps") or []:
        op = step.get("op")
        if op == "select_features":
            if x.shape[-1] != len(step["columns"]):
                raise ValueError(f"expected {len(step['columns'])} feature columns, got {x.shape[-1]}")
        elif op == "log1p":
            x = np.log1p(x)
        elif op == "subtract":
            x = x - np.asarray(step["values"], dtype=np.float32)
        elif op == "divide":
            x = x / np.asarray(step["values"], dtype=np.float32)
        elif op == "multiply":
            x = x * np.asarray(step["values"], dtype=np.float32)
        elif op == "clip":
            x = np.clip(x, np.float32(step["low"]), np.float32(step["high"]))
        elif op == "matmul":
            x = x @ np.asarray(step["matrix"], dtype=np.float32)
        elif op == "cast":
            x = x.astype(step.get("dtype", "float32"))
        else:
            raise ValueError(f"unknown preprocessing op {op!r}")
    return x.astype(np.float32, copy=False)
