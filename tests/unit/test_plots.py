"""Tests of the PNG figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biodl import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path: Path, *, min_width: int = 200) -> None:
    assert path.is_file()
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - fall back to matplotlib
        import matplotlib.image as mpimg

        height, width = mpimg.imread(path).shape[:2]
    else:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            width, height = image.size
    assert width >= min_width
    assert height >= 100
    # No leftover temporary files from the atomic write.
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_learning_curves_with_metric(tmp_path: Path) -> None:
    history: dict[str, list[float | None]] = {
        "epoch": [1, 2, 3, 4, 5],
        "train_loss": [0.9, 0.6, 0.5, 0.45, 0.42],
        "val_loss": [1.0, 0.7, float("nan"), 0.65, 0.7],
        "train_auroc": [0.6, 0.7, 0.75, 0.8, 0.82],
        "val_auroc": [0.55, 0.65, None, 0.7, 0.69],
    }
    out = plots.plot_learning_curves(history, tmp_path / "curves.png", metric="auroc")
    assert out == tmp_path / "curves.png"
    _assert_png(out, min_width=700)  # two panels, 8 in at 100 dpi


def test_learning_curves_without_val_or_metric(tmp_path: Path) -> None:
    out = plots.plot_learning_curves({"train_loss": [1.0, 0.5, 0.4]}, str(tmp_path / "sub" / "c.png"), metric="r2")
    _assert_png(out)


def test_learning_curves_require_a_loss(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="train_loss"):
        plots.plot_learning_curves({"epoch": [1, 2]}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_roc_pr_multitask_with_missing_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n, t = 200, 3
    y = rng.integers(0, 2, size=(n, t)).astype(float)
    score = np.clip(y * 0.5 + rng.normal(0.25, 0.25, size=(n, t)), 0, 1)
    y[rng.random((n, t)) < 0.3] = np.nan
    y[:, 2] = np.where(np.isnan(y[:, 2]), np.nan, 1.0)  # one class only: n/a
    out = plots.plot_roc_pr(y, score, tmp_path / "roc.png", names=["a", "b", "c"])
    _assert_png(out, min_width=700)


def test_roc_pr_single_task_and_many_tasks(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=50).astype(float)
    _assert_png(plots.plot_roc_pr(y, rng.random(50), tmp_path / "one.png", names=["x"]))
    many = rng.integers(0, 2, size=(40, 25)).astype(float)
    names = [f"t{i}" for i in range(25)]
    _assert_png(plots.plot_roc_pr(many, rng.random((40, 25)), tmp_path / "m.png", names=names))


def test_roc_pr_rejects_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="task names"):
        plots.plot_roc_pr(np.zeros((4, 2)), np.zeros((4, 2)), tmp_path / "r.png", names=["a"])
    with pytest.raises(ValueError, match="shape"):
        plots.plot_roc_pr(np.zeros((4, 2)), np.zeros((4, 3)), tmp_path / "r.png", names=["a"])


def test_confusion_masks_missing_labels(tmp_path: Path) -> None:
    y_true = np.array([0, 1, 2, -1, 2, 1, -1, 0])
    y_pred = np.array([0, 2, 2, 1, 2, 1, 0, 1])
    out = plots.plot_confusion(y_true, y_pred, tmp_path / "cm.png", classes=["A", "B", "<C>"])
    _assert_png(out)


def test_confusion_rejects_out_of_range_classes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside"):
        plots.plot_confusion(np.array([0, 3]), np.array([0, 1]), tmp_path / "cm.png", classes=["a", "b"])


def test_residuals_with_nan_and_many_tasks(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=(100, 8))
    pred = y + rng.normal(scale=0.3, size=y.shape)
    y[rng.random(y.shape) < 0.2] = np.nan
    y[:, 1] = np.nan  # a task without any observed value
    out = plots.plot_residuals(y, pred, tmp_path / "res.png", names=[f"task{i}" for i in range(8)])
    _assert_png(out, min_width=700)
    one = plots.plot_residuals(y[:, 0], pred[:, 0], tmp_path / "one.png", names=["y"])
    _assert_png(one)
