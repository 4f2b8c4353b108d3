"""Segmentation metrics: pixel scores (micro and per image), 16×16-patch F1 with the 0.25 rule, AP@0.5."""

from __future__ import annotations

import numpy as np
import pytest

from biodl.errors import ConfigError
from biodl.metrics import METRICS, compute_metrics, main_metric
from biodl.metrics.segmentation import instance_ap, patch_f1, patch_labels


def test_pixel_scores() -> None:
    y = np.zeros((2, 8, 8), int)
    y[:, :4] = 1  # 32 foreground pixels per image
    p = np.zeros((2, 1, 8, 8))
    p[0, 0, :4] = 0.9  # image 0 perfect
    p[1, 0, :2] = 0.9  # image 1: half the foreground, no false positive
    m = compute_metrics("segmentation", y, p, target_names=["membrane", "cell"])
    assert m["pixel_precision"] == 1.0 and m["pixel_recall"] == pytest.approx(48 / 64)
    assert m["pixel_specificity"] == 1.0
    assert m["dice"] == pytest.approx(2 * 48 / (2 * 48 + 16)) == m["pixel_f1"]
    assert m["iou"] == pytest.approx(48 / 64)
    assert m["iou_per_image"] == pytest.approx((1.0 + 0.5) / 2)
    assert set(m["per_class"]) == {"membrane", "cell"}
    assert m["per_class"]["membrane"]["pixel_recall"] == 1.0
    assert main_metric("segmentation") == ("dice", True)


def test_unlabelled_pixels_are_ignored() -> None:
    y = np.full((1, 4, 4), -1)
    y[0, 0, 0] = 1
    p = np.ones((1, 1, 4, 4))
    m = compute_metrics("segmentation", y, p)
    assert m["pixel_precision"] == 1.0 and m["pixels"] == 1


def test_multiclass_macro_over_foreground() -> None:
    y = np.array([[[0, 1], [2, 2]]])
    p = np.zeros((1, 3, 2, 2))
    p[0, 0, 0, 0] = p[0, 1, 0, 1] = p[0, 2, 1, 0] = 1.0
    p[0, 1, 1, 1] = 1.0  # one class-2 pixel predicted as class 1
    m = compute_metrics("segmentation", y, p)
    assert m["pixel_accuracy"] == 0.75
    assert m["dice"] == pytest.approx(np.mean([2 / 3, 2 / 3]))
    assert "patch_f1" not in m


def test_patch_rule() -> None:
    mask = np.zeros((32, 32))
    mask[:16, :16][:, :4] = 1  # exactly 0.25 of the patch: NOT road
    mask[:16, 16:][:, :5] = 1  # above 0.25: road
    assert patch_labels(mask).tolist() == [[0, 1], [0, 0]]
    truth = mask[None].astype(int)
    assert patch_f1(truth, truth) == 1.0
    pred = np.zeros_like(truth)
    pred[0, :16, :16] = 1
    assert patch_f1(truth, pred) == 0.0


def test_instance_ap() -> None:
    inst = np.zeros((1, 20, 20), int)
    inst[0, 1:5, 1:5] = 1
    inst[0, 10:15, 10:15] = 2
    pred = np.zeros((1, 20, 20), int)
    pred[0, 1:5, 1:5] = 1  # matches object 1
    pred[0, 17:19, 17:19] = 1  # a false positive; object 2 missed
    assert instance_ap(inst, pred) == pytest.approx(1 / 3)
    probs = pred[:, None].astype(float)
    assert compute_metrics("segmentation", inst, probs)["ap50"] == pytest.approx(1 / 3)


def test_segmentation_metrics_are_registered_by_kind() -> None:
    assert "patch_f1" in METRICS and METRICS["patch_f1"].kinds == ("segmentation",)
    with pytest.raises(ConfigError, match="cannot score"):
        compute_metrics("segmentation", np.zeros((1, 2, 2)), np.zeros((1, 1, 2, 2)), metrics=["auroc"])
    assert list(compute_metrics("segmentation", np.zeros((1, 2, 2)), np.zeros((1, 1, 2, 2)), metrics=["iou"])) == [
        "iou",
        "n",
        "pixels",
    ]
