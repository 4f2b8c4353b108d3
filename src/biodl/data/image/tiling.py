"""Tiles for training and overlapping sliding windows for prediction.

A 4k × 4k image never has to pass through the network at once: :func:`sliding_window`
cuts it into overlapping windows, runs them in small batches and blends the outputs back with
weights that fall off towards window borders (where fully convolutional networks see the least
context). An image that fits in one window is predicted in one piece, so the result is then
identical to whole-image prediction.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Start offsets of windows of ``window`` covering ``length`` with at least ``overlap`` overlap."""
    if length <= window:
        return [0]
    step = max(1, int(window * (1.0 - overlap)))
    starts = list(range(0, length - window + 1, step))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def blend_weights(h: int, w: int, *, mode: str = "triangular") -> torch.Tensor:
    """``(h, w)`` weights: 1 in the middle falling to a small positive value at the borders."""
    if mode == "constant":
        return torch.ones(h, w)

    def ramp(n: int) -> torch.Tensor:
        pos = torch.arange(n, dtype=torch.float32)
        dist = torch.minimum(pos + 1, n - pos)
        return torch.clamp(dist / max(1.0, n / 4), max=1.0)

    return ramp(h)[:, None] * ramp(w)[None, :] + 1e-3


def pad_to_multiple(x: torch.Tensor, multiple: int, *, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(N, C, H, W)`` at the bottom/right so H and W are multiples of ``multiple``.

    Returns the padded tensor and the original ``(H, W)``.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    use = mode if (mode != "reflect" or (ph < h and pw < w)) else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=use), (h, w)


def sliding_window(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    window: int,
    overlap: float = 0.25,
    batch_size: int = 4,
    blend: str = "triangular",
) -> torch.Tensor:
    """Apply a dense predictor ``fn`` to ``(N, C, H, W)`` in overlapping windows and stitch.

    Parameters
    ----------
    fn
        Maps ``(B, C, h, w)`` to ``(B, K, h, w)`` (scores of every pixel).
    x
        Input images ``(N, C, H, W)``.
    window
        Window side; images not larger than it are predicted whole.
    overlap
        Fraction of a window shared with its neighbour.
    batch_size
        Windows per call of ``fn``.
    blend
        ``triangular`` (down-weights window borders) or ``constant`` (plain average).

    Returns
    -------
    torch.Tensor
        ``(N, K, H, W)`` blended outputs.
    """
    n, _, h, w = x.shape
    if h <= window and w <= window:
        if n <= batch_size or torch.jit.is_tracing():  # a traced graph must not fix the batch chunks
            return fn(x)
        return torch.cat([fn(x[i : i + batch_size]) for i in range(0, n, batch_size)])
    wh, ww = min(window, h), min(window, w)
    boxes = [(i, j) for i in window_starts(h, wh, overlap) for j in window_starts(w, ww, overlap)]
    weight = blend_weights(wh, ww, mode=blend).to(x.device)
    out: torch.Tensor | None = None
    norm = torch.zeros(1, 1, h, w, device=x.device)
    for i, j in boxes:
        norm[..., i : i + wh, j : j + ww] += weight
    for b in range(n):
        img = x[b : b + 1]
        for start in range(0, len(boxes), batch_size):
            chunk = boxes[start : start + batch_size]
            tiles = torch.cat([img[..., i : i + wh, j : j + ww] for i, j in chunk])
            pred = fn(tiles)
            if out is None:
                out = torch.zeros(n, pred.shape[1], h, w, dtype=pred.dtype, device=x.device)
            for (i, j), p in zip(chunk, pred):
                out[b, :, i : i + wh, j : j + ww] += p * weight
    assert out is not None
    return out / norm


def random_crops(
    x: torch.Tensor, y: torch.Tensor | None, size: int, per_image: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``per_image`` random ``size``×``size`` crops of each image (and the same crops of its mask).

    Images smaller than ``size`` are padded (reflect; masks with -1, i.e. unlabelled).
    """
    n, _, h, w = x.shape
    if h < size or w < size:
        ph, pw = max(0, size - h), max(0, size - w)
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
        if y is not None:
            y = F.pad(y, (0, pw, 0, ph), value=-1)
        h, w = x.shape[-2:]
    ii = torch.randint(0, h - size + 1, (n, per_image), generator=generator)
    jj = torch.randint(0, w - size + 1, (n, per_image), generator=generator)
    xs, ys = [], []
    for b in range(n):
        for k in range(per_image):
            i, j = int(ii[b, k]), int(jj[b, k])
            xs.append(x[b, :, i : i + size, j : j + size])
            if y is not None:
                ys.append(y[b, i : i + size, j : j + size])
    return torch.stack(xs), (torch.stack(ys) if y is not None else None)


def tile_array(img: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Top-left corners of non-overlapping ``size`` tiles covering ``(C, H, W)`` (last ones shifted in)."""
    h, w = img.shape[-2:]
    return [(i, j) for i in window_starts(h, size, 0.0) for j in window_starts(w, size, 0.0)]
