"""Segmentation metrics: pixel confusion counts, 16×16-patch F1 and instance AP@0.5.

Inputs are whole mask stacks rather than one task's vector:

* ``y_true`` ``(N, H, W)`` integer masks: class indices, ``-1`` = unlabelled (ignored). For
  binary segmentation 0 is background and every value ``>= 1`` foreground, so instance label
  masks (0 background, 1..M objects) score as binary masks and additionally give ``ap50``.
* ``y_pred`` ``(N, 1, H, W)`` foreground probabilities (binary) or ``(N, K, H, W)`` class
  probabilities (``K >= 3``); ``(N, H, W)`` is read as binary probabilities.

Binary scores are those of the foreground class; multi-class scores are macro means over
the foreground classes ``1..K-1``. ``per_class`` holds the pixel scores of every class
(background included, e.g. the membrane class of ISBI 2012 EM data).

``*_per_image`` values are means over images whose ground truth contains the class (images
without it are skipped, as MONAI's ``ignore_empty``). ``patch_f1`` follows the EPFL road
benchmark: masks are cut into 16×16 patches, a patch is positive when the mean of its mask is
above 0.25, and F1 is computed over patches. ``ap50`` is the Data Science Bowl 2018 average
precision at IoU 0.5, ``TP / (TP + FP + FN)`` per image (predicted objects are the connected
components of the predicted foreground), averaged over images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from biodl.data.image.io import as_hard
from biodl.errors import DataError
from biodl.metrics.base import METRICS, Kind, Metric, quiet

__all__ = [
    "PATCH_SIZE",
    "PATCH_THRESHOLD",
    "SegmentationStats",
    "instance_ap",
    "patch_f1",
    "patch_labels",
    "segmentation_metrics",
]

#: Patch side of the EPFL road benchmark.
PATCH_SIZE = 16
#: A patch is foreground when the mean of its mask exceeds this.
PATCH_THRESHOLD = 0.25


def _safe_div(a: float, b: float) -> float:
    return float(a) / float(b) if b > 0 else float("nan")


def _scores(tp: float, fp: float, fn: float, tn: float) -> dict[str, float]:
    """Pixel scores of one class from its one-vs-rest confusion counts."""
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    return {
        "pixel_precision": precision,
        "pixel_recall": recall,
        "pixel_specificity": _safe_div(tn, tn + fp),
        "pixel_f1": f1,
        "iou": _safe_div(tp, tp + fp + fn),
        "dice": f1,
    }


@dataclass
class SegmentationStats:
    """Confusion counts shared by all segmentation metrics of one call.

    Attributes
    ----------
    truth, pred
        ``(N, H, W)`` class indices (truth ``-1`` = unlabelled; binary truth clipped to 0/1).
    instances
        ``(N, H, W)`` instance ids when the truth has values above 1 in binary mode, else ``None``.
    n_classes
        Number of classes ``K`` (2 for binary).
    confusion
        ``(K, K)`` pixel counts, rows = truth, columns = prediction.
    per_image
        ``(N, K, K)`` confusion counts of each image.
    """

    truth: np.ndarray
    pred: np.ndarray
    instances: np.ndarray | None
    n_classes: int
    confusion: np.ndarray
    per_image: np.ndarray
    cache: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_arrays(cls, y_true: np.ndarray, y_pred: np.ndarray) -> SegmentationStats:
        """Validate shapes and count (see the module docstring for the layouts)."""
        yt = np.asarray(y_true)
        yp = np.asarray(y_pred, dtype=np.float32)
        if yt.ndim == 4 and yp.ndim in (4, 5):  # volumes (N, D, H, W): every plane is scored as an image
            yp = yp[:, None] if yp.ndim == 4 else yp
            n, k, d = yp.shape[:3]
            yt = yt.reshape(n * d, *yt.shape[2:])
            yp = np.moveaxis(yp, 2, 1).reshape(n * d, k, *yp.shape[3:])
        if yp.ndim == 3:
            yp = yp[:, None]
        if yt.ndim != 3 or yp.ndim != 4 or yt.shape[0] != yp.shape[0] or yt.shape[1:] != yp.shape[2:]:
            raise DataError(
                f"segmentation metrics need masks (N, H, W) and predictions (N, K, H, W); got {yt.shape} and {yp.shape}"
            )
        if yt.dtype.kind == "f":
            yt = np.where(np.isnan(yt), -1, yt)
        yt = yt.astype(np.int64)
        k = 2 if yp.shape[1] == 1 else int(yp.shape[1])
        instances = None
        if k == 2:
            if yt.max(initial=0) > 1:
                instances = np.where(yt > 0, yt, 0)
            truth = np.where(yt < 0, -1, (yt > 0).astype(np.int64))
        else:
            if yt.max(initial=0) >= k:
                raise DataError(f"mask class index {int(yt.max())} out of range for {k} predicted classes")
            truth = yt
        pred = as_hard(yp)
        n = yt.shape[0]
        per_image = np.zeros((n, k, k), dtype=np.int64)
        for i in range(n):
            valid = truth[i] >= 0
            codes = truth[i][valid] * k + pred[i][valid]
            per_image[i] = np.bincount(codes, minlength=k * k).reshape(k, k)
        return cls(truth, pred, instances, k, per_image.sum(axis=0), per_image)

    def class_counts(self, c: int, confusion: np.ndarray | None = None) -> tuple[int, int, int, int]:
        """``(tp, fp, fn, tn)`` of class ``c`` (one vs rest)."""
        m = self.confusion if confusion is None else confusion
        tp = int(m[c, c])
        fp = int(m[:, c].sum() - tp)
        fn = int(m[c, :].sum() - tp)
        tn = int(m.sum() - tp - fp - fn)
        return tp, fp, fn, tn

    def foreground(self) -> list[int]:
        """The classes averaged in headline scores: 1 (binary) or 1..K-1."""
        return list(range(1, self.n_classes))

    def micro(self, name: str) -> float:
        """A pixel score pooled over all images (macro over foreground classes)."""
        vals = [_scores(*self.class_counts(c))[name] for c in self.foreground()]
        return _nanmean(vals)

    def per_image_mean(self, name: str) -> float:
        """Mean over images of a pixel score (images without the class in the truth skipped)."""
        vals = []
        for c in self.foreground():
            for m in self.per_image:
                if m[c, :].sum() == 0:
                    continue
                vals.append(_scores(*self.class_counts(c, m))[name])
        return _nanmean(vals)


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def patch_labels(
    mask: np.ndarray, valid: np.ndarray | None = None, patch: int = PATCH_SIZE, threshold: float = PATCH_THRESHOLD
) -> np.ndarray:
    """Patch labels of a 2-D 0/1 ``mask``: 1 where the patch mean exceeds ``threshold``.

    Border patches smaller than ``patch`` use the pixels they have; patches without any valid
    pixel are ``-1``. Returns ``(ceil(H / patch), ceil(W / patch))``.
    """
    m = np.asarray(mask, dtype=np.float64)
    v = np.ones_like(m) if valid is None else np.asarray(valid, dtype=np.float64)
    h, w = m.shape
    ph, pw = -(-h // patch), -(-w // patch)
    pad = ((0, ph * patch - h), (0, pw * patch - w))
    ms = np.pad(m * v, pad).reshape(ph, patch, pw, patch).sum(axis=(1, 3))
    vs = np.pad(v, pad).reshape(ph, patch, pw, patch).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = ms / vs
    out = (mean > threshold).astype(np.int64)
    out[vs == 0] = -1
    return out


def patch_f1(truth: np.ndarray, pred: np.ndarray, patch: int = PATCH_SIZE, threshold: float = PATCH_THRESHOLD) -> float:
    """F1 over ``patch``×``patch`` patches of binary masks ``(N, H, W)`` (truth ``-1`` ignored)."""
    tp = fp = fn = 0
    for t, p in zip(truth, pred):
        valid = t >= 0
        lt = patch_labels(np.clip(t, 0, 1), valid, patch, threshold)
        lp = patch_labels(p, valid, patch, threshold)
        keep = lt >= 0
        tp += int(((lt == 1) & (lp == 1) & keep).sum())
        fp += int(((lt == 0) & (lp == 1) & keep).sum())
        fn += int(((lt == 1) & (lp == 0) & keep).sum())
    return _safe_div(2 * tp, 2 * tp + fp + fn)


def instance_ap(instances: np.ndarray, pred: np.ndarray, iou_threshold: float = 0.5) -> float:
    """Mean over images of ``TP / (TP + FP + FN)`` at ``iou_threshold`` (DSB 2018 convention).

    Parameters
    ----------
    instances
        ``(N, H, W)`` true object ids (0 background).
    pred
        ``(N, H, W)`` predicted foreground (0/1); objects are its 4-connected components.
    """
    from skimage.measure import label

    scores = []
    for t, p in zip(instances, pred):
        pl = label(p > 0, connectivity=1)
        ids_t = np.unique(t[t > 0])
        n_t, n_p = len(ids_t), int(pl.max())
        if n_t == 0 and n_p == 0:
            continue
        if n_t == 0 or n_p == 0:
            scores.append(0.0)
            continue
        remap = np.zeros(int(t.max()) + 1, dtype=np.int64)
        remap[ids_t] = np.arange(1, n_t + 1)
        tt = remap[t.clip(0)]
        inter = np.bincount(tt.ravel() * (n_p + 1) + pl.ravel(), minlength=(n_t + 1) * (n_p + 1)).reshape(n_t + 1, n_p + 1)
        area_t = inter.sum(axis=1)[1:, None]
        area_p = inter.sum(axis=0)[None, 1:]
        overlap = inter[1:, 1:]
        iou = overlap / np.maximum(area_t + area_p - overlap, 1)
        tp = int((iou > iou_threshold).sum())  # IoU > 0.5 matches are unique
        scores.append(tp / (n_t + n_p - tp))
    return float(np.mean(scores)) if scores else float("nan")


class SegmentationMetric(Metric):
    """A metric of whole mask stacks (see the module docstring for the layouts)."""

    kinds: ClassVar[tuple[Kind, ...]] = ("segmentation",)

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        """Score ``(N, H, W)`` masks against ``(N, K, H, W)`` probabilities."""
        stats = SegmentationStats.from_arrays(y_true, y_pred)
        with quiet():
            return float(self.from_stats(stats))

    def from_stats(self, stats: SegmentationStats) -> float:
        """The score from shared confusion counts."""
        raise NotImplementedError


def _pixel_metric(metric: str, per_image: bool, doc: str) -> type[SegmentationMetric]:
    class _M(SegmentationMetric):
        __doc__ = doc

        def from_stats(self, stats: SegmentationStats) -> float:
            return stats.per_image_mean(metric) if per_image else stats.micro(metric)

    return _M


for _name in ("pixel_precision", "pixel_recall", "pixel_specificity", "pixel_f1", "iou", "dice"):
    for _per in (False, True):
        if _per and _name in ("pixel_precision", "pixel_recall", "pixel_specificity"):
            continue
        _full = f"{_name}_per_image" if _per else _name
        _cls = _pixel_metric(_name, _per, f"{_name.replace('_', ' ')} ({'mean per image' if _per else 'pooled pixels'}).")
        _cls.name = _full
        _cls.__name__ = _cls.__qualname__ = "".join(p.title() for p in _full.split("_"))
        METRICS.register(_full)(_cls)


@METRICS.register("pixel_accuracy")
class PixelAccuracy(SegmentationMetric):
    """Fraction of labelled pixels whose class is predicted correctly."""

    name = "pixel_accuracy"

    def from_stats(self, stats: SegmentationStats) -> float:
        return _safe_div(float(np.trace(stats.confusion)), float(stats.confusion.sum()))


@METRICS.register("patch_f1")
class PatchF1(SegmentationMetric):
    """F1 over 16×16 patches labelled by the 0.25 rule (binary segmentation only)."""

    name = "patch_f1"

    def from_stats(self, stats: SegmentationStats) -> float:
        if stats.n_classes != 2:
            return float("nan")
        if "patch_f1" not in stats.cache:
            stats.cache["patch_f1"] = patch_f1(stats.truth, stats.pred)
        return float(stats.cache["patch_f1"])


@METRICS.register("ap50")
class AP50(SegmentationMetric):
    """Object-level average precision at IoU 0.5 (instance masks only; NaN otherwise)."""

    name = "ap50"

    def from_stats(self, stats: SegmentationStats) -> float:
        if stats.instances is None:
            return float("nan")
        return instance_ap(stats.instances, stats.pred)


_PER_CLASS = ("pixel_precision", "pixel_recall", "pixel_specificity", "pixel_f1", "iou", "dice")


def segmentation_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    metrics: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """All (or the chosen) segmentation metrics of a mask stack.

    Parameters
    ----------
    y_true
        ``(N, H, W)`` masks, ``-1`` = unlabelled.
    y_pred
        ``(N, 1, H, W)`` foreground probabilities or ``(N, K, H, W)`` class probabilities.
    metrics
        Metric names (default: every segmentation metric; ``ap50`` only for instance masks).
    class_names
        Names of the ``K`` classes (2 for binary), keys of ``per_class``.

    Returns
    -------
    dict
        ``{metric: float}``, ``n`` (images with labelled pixels), ``pixels`` (labelled pixels)
        and, when all metrics are asked for, ``per_class`` pixel scores.
    """
    stats = SegmentationStats.from_arrays(y_true, y_pred)
    names = list(metrics) if metrics is not None else [n for n in METRICS.names() if "segmentation" in METRICS[n].kinds]
    if metrics is None and stats.instances is None:
        names = [n for n in names if n != "ap50"]
    if metrics is None and stats.n_classes != 2:
        names = [n for n in names if n != "patch_f1"]
    out: dict[str, Any] = {}
    with quiet():
        for name in names:
            metric = METRICS[name]("segmentation")
            assert isinstance(metric, SegmentationMetric)
            out[name] = float(metric.from_stats(stats))
        out["n"] = int((stats.truth >= 0).reshape(len(stats.truth), -1).any(axis=1).sum())
        out["pixels"] = int(stats.confusion.sum())
        if metrics is None:
            labels = list(class_names) if class_names is not None and len(class_names) == stats.n_classes else None
            labels = labels or [str(c) for c in range(stats.n_classes)]
            out["per_class"] = {
                labels[c]: {k: v for k, v in _scores(*stats.class_counts(c)).items() if k in _PER_CLASS}
                for c in range(stats.n_classes)
            }
    return out
