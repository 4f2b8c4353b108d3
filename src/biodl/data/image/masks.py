"""Segmentation mask values → classes: the class list of the training masks and each mask's integer target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from biodl.errors import DataError

#: Distinct mask values accepted without ``mask_type`` (more need multiclass/instance/threshold).
_AUTO_MAX_VALUES = 2


def _value_name(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _fmt_values(values: Sequence[float]) -> str:
    return ", ".join(_value_name(v) for v in values)


def find_mask_classes(masks: Sequence[np.ndarray | None], names: list[str], opts: Any) -> list[str]:
    """Class names (mask values as text) of the training masks (``opts``: the ``data.image`` options)."""
    if opts.mask_threshold is not None or opts.mask_type == "instance":
        return ["0", "1"]
    values: set[float] = set()
    for m, name in zip(masks, names):
        if m is None:
            continue
        u = np.unique(m)
        if m.dtype.kind == "f" and not np.all(u == np.round(u)):
            raise DataError(
                f"{name}: mask has non-integer values {u[:6].tolist()}; set data.image.mask_threshold (--mask-threshold)"
            )
        values.update(float(v) for v in u)
        if opts.mask_type in ("auto", "binary") and len(values) > _AUTO_MAX_VALUES:
            shown = sorted(values)[:8]
            raise DataError(
                f"{name}: masks have more than two values ({_fmt_values(shown)}{'...' if len(values) > 8 else ''}); "
                "set data.image.mask_threshold (--mask-threshold, binary), or mask_type: multiclass (label masks) "
                "or instance (object ids, 0 = background)"
            )
    ordered = sorted(values)
    if len(ordered) == 1:
        v = ordered[0]
        ordered = [0.0, v] if v > 0 else [v, 1.0 if v == 0 else 0.0]
        ordered = sorted(ordered)
    if opts.mask_type == "multiclass" and len(ordered) > 256:
        raise DataError(f"label masks have {len(ordered)} distinct values; more than 256 classes looks like instance masks")
    return [_value_name(v) for v in ordered]


def encode_mask(m: np.ndarray, name: str, opts: Any, classes: list[str] | None) -> np.ndarray:
    """Integer ``(H, W)`` training target of one raw mask (see :mod:`biodl.data.targets`).

    ``classes`` are the mask classes of :func:`find_mask_classes` (needed unless thresholded or instance masks).
    """
    if opts.mask_threshold is not None:
        return (m > opts.mask_threshold).astype(np.int32)
    if opts.mask_type == "instance":
        if m.dtype.kind == "f" or m.min(initial=0) < 0:
            raise DataError(f"{name}: instance masks must hold non-negative integer ids (0 = background)")
        return m.astype(np.int32)
    assert classes is not None
    lut = {float(c): i for i, c in enumerate(classes)}
    u, inv = np.unique(m, return_inverse=True)
    unknown = [float(v) for v in u if float(v) not in lut]
    if unknown:
        raise DataError(
            f"{name}: mask has unexpected value(s) {_fmt_values(unknown[:6])}; the classes are {classes} "
            "(set data.image.mask_threshold for binary masks, or mask_type multiclass)"
        )
    codes = np.array([lut[float(v)] for v in u], dtype=np.int32)
    return codes[inv].reshape(m.shape)


def mask_pixel_values(classes: list[str] | None) -> np.ndarray:
    """Pixel value written for each class index in predicted masks."""
    classes = classes or ["0", "1"]
    if classes == ["0", "1"]:
        return np.array([0, 255])
    try:
        return np.array([int(float(c)) for c in classes])
    except ValueError:
        return np.arange(len(classes))
