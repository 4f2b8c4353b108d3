"""Figures of image models for reports: first-layer filters, 2-D embeddings, overlays, attribution maps.

Review (Angermueller et al. 2016): interpretation by looking at the weights of the first
layer, by hiding image parts (occlusion) and by projecting learned features into two
dimensions to see which inputs the network maps together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from biodl.io_utils import atomic_write_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(w: float, h: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    return atomic_write_figure(fig, path)


def _display(img: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` → ``(H, W)`` or ``(H, W, 3)`` in [0, 1] (min-max per image)."""
    a = np.asarray(img, dtype=np.float32)
    a = a[:3] if a.shape[0] >= 3 else a[:1]
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / max(hi - lo, 1e-8)
    return a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, -1)


def plot_first_layer_filters(model: nn.Module, path: Path, max_filters: int = 64) -> Path:
    """Grid of the first convolution's kernels (RGB for 3 input channels, else the first channel)."""
    getter = getattr(model, "first_conv", None)
    conv = getter() if callable(getter) else next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert isinstance(conv, nn.Conv2d)
    w = conv.weight.detach().cpu().float().numpy()[:max_filters]
    n = len(w)
    cols = min(8, n)
    rows = math.ceil(n / cols)
    fig = _figure(cols * 0.9 + 0.5, rows * 0.9 + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < n:
            ax.imshow(_display(w[k]), cmap="gray", interpolation="nearest")
    fig.suptitle(
        f"first-layer filters ({conv.weight.shape[0]} × {conv.weight.shape[1]}×{conv.weight.shape[2]}×{conv.weight.shape[3]})",
        fontsize=9,
    )
    return _save(fig, path)


@torch.no_grad()
def penultimate_features(model: nn.Module, X: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """``model.embed`` of model inputs ``(N, C, H, W)`` → ``(N, F)``."""
    model.eval()
    outs = []
    for i in range(0, len(X), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(X[i : i + batch_size], dtype=np.float32))
        outs.append(model.embed(xb).float().cpu().numpy())  # type: ignore[operator]
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def embed_2d(features: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D coordinates of ``(N, F)`` features: UMAP when installed (``auto``/``umap``), else PCA."""
    if method in ("auto", "umap") and len(features) >= 10:
        try:
            import umap  # type: ignore[import-not-found]

            coords = umap.UMAP(n_components=2, random_state=seed).fit_transform(features)
            return np.asarray(coords), "UMAP"
        except ImportError:
            if method == "umap":
                raise
    from sklearn.decomposition import PCA

    k = min(2, features.shape[1], len(features))
    coords = PCA(n_components=k, random_state=seed).fit_transform(features)
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords, "PCA"


def plot_embedding(coords: np.ndarray, labels: Sequence[str], path: Path, *, method: str, title: str = "") -> Path:
    """Scatter of 2-D coordinates coloured by label."""
    fig = _figure(5.0, 4.0)
    ax = fig.add_subplot()
    labs = np.asarray([str(v) for v in labels])
    for lab in sorted(set(labs.tolist())):
        sel = labs == lab
        ax.scatter(coords[sel, 0], coords[sel, 1], s=8, alpha=0.7, label=lab)
    ax.set_xlabel(f"{method} 1")
    ax.set_ylabel(f"{method} 2")
    ax.set_title(title or f"penultimate-layer features ({method})", fontsize=9)
    if len(set(labs.tolist())) <= 20:
        ax.legend(fontsize=7, markerscale=2)
    return _save(fig, path)


def plot_segmentation_overlays(
    images: np.ndarray, truth: np.ndarray | None, probs: np.ndarray, path: Path, *, ids: Sequence[str] = ()
) -> Path:
    """Rows of image | truth | prediction (foreground probability or class map) for a few images."""
    from biodl.metrics.segmentation import as_hard

    n = len(images)
    cols = 3 if truth is not None else 2
    fig = _figure(cols * 2.6, n * 2.6 + 0.3)
    axes = fig.subplots(n, cols, squeeze=False)
    hard = as_hard(probs)
    for i in range(n):
        base = _display(images[i])
        panels: list[tuple[str, np.ndarray | None]] = [("image", None)]
        if truth is not None:
            t = np.where(truth[i] < 0, np.nan, (truth[i] > 0) if probs.shape[1] == 1 else truth[i]).astype(float)
            panels.append(("truth", t))
        panels.append(("prediction", hard[i].astype(float)))
        for j, (name, mask) in enumerate(panels):
            ax = axes[i, j]
            ax.set_axis_off()
            ax.imshow(base, cmap="gray")
            if mask is not None:
                ax.imshow(
                    np.ma.masked_where(~(mask > 0), mask),
                    cmap="autumn",
                    alpha=0.45,
                    vmin=0,
                    vmax=max(1.0, float(np.nanmax(mask))),
                )
            label = f"{ids[i]}: {name}" if i < len(ids) and j == 0 else name
            ax.set_title(label, fontsize=8)
    return _save(fig, path)


def plot_attributions(images: np.ndarray, maps: np.ndarray, path: Path, *, titles: Sequence[str] = (), method: str = "") -> Path:
    """Image and attribution heat-map side by side for each image (``maps`` ``(N, 1, H, W)``)."""
    n = len(images)
    fig = _figure(5.2, n * 2.6 + 0.3)
    axes = fig.subplots(n, 2, squeeze=False)
    for i in range(n):
        base = _display(images[i])
        m = np.asarray(maps[i]).reshape(maps[i].shape[-2:])
        lim = float(np.abs(m).max()) or 1.0
        axes[i, 0].imshow(base, cmap="gray")
        axes[i, 0].set_title(titles[i] if i < len(titles) else "image", fontsize=8)
        axes[i, 1].imshow(base, cmap="gray")
        axes[i, 1].imshow(m, cmap="bwr", vmin=-lim, vmax=lim, alpha=0.6)
        axes[i, 1].set_title(method or "attribution", fontsize=8)
        for ax in axes[i]:
            ax.set_axis_off()
    return _save(fig, path)
