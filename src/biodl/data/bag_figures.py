"""Figures of instance weights: overlays on the images of image bags, bar charts for table bags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from biodl.data.bag_images import paste_weights, read_bag_image
from biodl.io_utils import atomic_write_bytes

#: Bags drawn per figure.
MAX_BAGS = 6


def instance_weights(model: torch.nn.Module, X_model: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray] | None:
    """``(weights (N, M), instance scores (N, M, K))`` of a model with ``instance_outputs``, else ``None``."""
    fn = getattr(model, "instance_outputs", None)
    if fn is None:
        return None
    model.eval()
    ws, ss = [], []
    with torch.no_grad():
        for i in range(0, len(X_model), batch_size):
            w, s = fn(torch.from_numpy(np.ascontiguousarray(X_model[i : i + batch_size], dtype=np.float32)))
            ws.append(w.numpy())
            ss.append(s.numpy())
    return np.concatenate(ws), np.concatenate(ss)


def _save(fig: Any, path: Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return path


def tiles_canvas(tiles: np.ndarray, positions: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` grey image rebuilt from ``(K, C, t, t)`` tiles at their positions (0 elsewhere)."""
    out = np.zeros(shape, dtype=np.float32)
    t = tiles.shape[-1]
    for tile, (y, x) in zip(tiles, positions):
        out[y : y + t, x : x + t] = tile.mean(axis=0)[: shape[0] - y, : shape[1] - x]
    return out


def overlay_figure(image: np.ndarray, weights_map: np.ndarray, path: Path, *, title: str = "") -> Path:
    """Save ``image`` (grey ``(H, W)`` or ``(C, H, W)``) with the instance-weight map on top."""
    from matplotlib.figure import Figure

    img = image if image.ndim == 2 else (image.mean(axis=0) if image.shape[0] != 3 else np.moveaxis(image, 0, -1))
    fig = Figure(figsize=(4, 4))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
    im = ax.imshow(np.ma.masked_invalid(weights_map), cmap="inferno", alpha=0.5)
    fig.colorbar(im, ax=ax, fraction=0.046, label="instance weight")
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    return _save(fig, path)


def bag_figures(
    modality: Any, model: torch.nn.Module, X_model: np.ndarray, data: Any, rows: np.ndarray, figdir: Path
) -> dict[str, Path]:
    """Instance weights of up to :data:`MAX_BAGS` evaluation bags (caption → PNG)."""
    rows = np.asarray(rows)[:MAX_BAGS]
    if not len(rows):
        return {}
    got = instance_weights(model, X_model[rows])
    if got is None:
        return {}
    weights, _ = got
    mask = X_model[rows][:, :, -1]
    while mask.ndim > 2:
        mask = mask[..., 0]
    out: dict[str, Path] = {}
    if modality.kind == "image" and modality.positions:
        size = int(X_model.shape[-1])
        for j, r in enumerate(rows):
            pos = modality.positions[r]
            shape = modality.image_sizes[r]
            img = read_bag_image(modality.files[r]) if modality.files else None
            if img is None:
                raw = data.X[r][: len(pos), :-1]
                img = tiles_canvas(raw, pos, shape)
            wmap = paste_weights(pos, weights[j][: len(pos)], size, shape)
            name = str(data.ids[r])
            p = overlay_figure(img, wmap, figdir / f"bag_weights_{j}.png", title=name)
            out[f"instance weights on bag {name}"] = p
        return out
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 1.4 * len(rows) + 0.5))
    for j, r in enumerate(rows):
        ax = fig.add_subplot(len(rows), 1, j + 1)
        k = int(mask[j].sum())
        ax.bar(np.arange(1, k + 1), weights[j][:k], color="#4c72b0")
        ax.set_ylabel(str(data.ids[r])[:12], fontsize=7)
        ax.tick_params(labelsize=6)
    fig.axes[-1].set_xlabel("instance")
    out["instance weights of evaluation bags"] = _save(fig, figdir / "bag_weights.png")
    return out
