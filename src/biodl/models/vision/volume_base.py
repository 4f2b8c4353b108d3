"""Shared machinery of the 3-D architectures (``--data-type volume``).

Every 3-D model takes the uniform constructor ``Model(in_shape, num_outputs, params)`` with
``in_shape = (C, D, H, W)``; classifiers return logits ``(N, num_outputs)``, segmentation models
per-voxel logits ``(N, num_outputs, D, H, W)`` and, in gradient-free evaluation, predict volumes
larger than their inference window in overlapping 3-D windows (:func:`sliding_window_3d`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from biodl.data.image.tiling import window_starts
from biodl.errors import ConfigError
from biodl.models.base import BiodlModel, ModelParams


def conv_init_3d(module: nn.Module) -> None:
    """torchvision's scheme in 3-D: He-normal (fan-out) convolutions, N(0, 0.01) linear layers, BN = (1, 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d, nn.Conv2d, nn.Conv1d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm3d, nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def conv3d_bn_relu(cin: int, cout: int, batch_norm: bool = True, kernel: int = 3) -> list[nn.Module]:
    """``Conv3d(k³, same) [→ BN] → ReLU`` as a list of modules."""
    layers: list[nn.Module] = [nn.Conv3d(cin, cout, kernel, padding=kernel // 2, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm3d(cout))
    layers.append(nn.ReLU(inplace=True))
    return layers


class VolumeModel(BiodlModel):
    """Base class of 3-D architectures (see the module docstring)."""

    data_types: ClassVar[tuple[str, ...]] = ("volume",)
    tasks: ClassVar[tuple[str, ...]] = ("classification", "multilabel", "regression")
    #: Volumes per forward call in gradient-free evaluation (bounds memory).
    eval_chunk: ClassVar[int] = 32

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        if len(self.in_shape) != 4:
            raise ConfigError(f"3-D models take (C, D, H, W) inputs, got in_shape {self.in_shape}")
        self.in_channels = self.in_shape[0]

    def first_conv(self) -> nn.Module:
        """The first convolution."""
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.Conv2d)):
                return m
        raise RuntimeError("no convolution")

    def gradcam_layer(self) -> nn.Module:
        """The layer 3-D Grad-CAM uses by default."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate representation ``(N, F)``."""
        raise NotImplementedError

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The network itself (subclasses)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for ``(N, C, D, H, W)`` inputs (chunked in gradient-free evaluation)."""
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ConfigError(f"{type(self).__name__} takes (N, {self.in_channels}, D, H, W) volumes, got {tuple(x.shape)}")
        fn = self.forward_tta if not self.training else self.forward_logits
        if not self.training and not torch.is_grad_enabled() and len(x) > self.eval_chunk:
            return torch.cat([fn(x[i : i + self.eval_chunk]) for i in range(0, len(x), self.eval_chunk)])
        return fn(x)

    def forward_tta(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward_logits`, averaged over views of the volume in evaluation (``params.tta``):
        ``flip`` the 8 flips of depth/height/width; ``dihedral`` the 16 in-plane rotations by 90° ×
        in-plane flips × depth flip (the 8 flips when the planes are not square). Views are exportable
        ONNX ops (flip, transpose)."""
        tta = getattr(self.params, "tta", "none")
        if tta == "none":
            return self.forward_logits(x)
        views = tta_views(self.in_shape, dihedral=tta == "dihedral")  # the static shape: no traced branch
        total = self.forward_logits(x)
        for view in views[1:]:
            total = total + self.forward_logits(view(x))
        return total / len(views)


_FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-3,), (-2, -1), (-3, -1), (-3, -2), (-3, -2, -1))


def tta_views(shape: Sequence[int], dihedral: bool = False) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """Test-time views of ``(N, C, D, H, W)`` volumes of ``shape`` (``(..., H, W)``), the identity first.

    ``dihedral=False``: the 8 flips of depth, height and width. ``dihedral=True`` (square planes): the
    8 symmetries of the square in-plane (the 4 rotations by 90°, each with and without a mirror
    image), each with and without a depth flip — 16 views, the group the ``flip rot90`` training augmentation
    draws from; for non-square planes the 8 flips.
    """

    def flip(dims: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda v: torch.flip(v, dims=dims) if dims else v

    if not dihedral or int(shape[-1]) != int(shape[-2]):
        return [flip(d) for d in _FLIPS]

    def view(transpose: bool, dims: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
        def fn(v: torch.Tensor) -> torch.Tensor:
            v = v.transpose(-2, -1) if transpose else v
            return torch.flip(v, dims=dims) if dims else v

        return fn

    # the square's 8 symmetries = {height, width flips} × {transpose} (a 90° rotation is a transpose and a flip);
    # flips and transposes export to ONNX (torch.rot90 does not)
    return [view(t, d) for t in (False, True) for d in _FLIPS]


def blend_weights_3d(shape: Sequence[int]) -> torch.Tensor:
    """``(d, h, w)`` weights: 1 inside, falling towards the window borders (never 0)."""

    def ramp(n: int) -> torch.Tensor:
        pos = torch.arange(n, dtype=torch.float32)
        return torch.clamp(torch.minimum(pos + 1, n - pos) / max(1.0, n / 4), max=1.0)

    d, h, w = shape
    return ramp(d)[:, None, None] * ramp(h)[None, :, None] * ramp(w)[None, None, :] + 1e-3


def sliding_window_3d(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    window: Sequence[int],
    overlap: float = 0.25,
    batch_size: int = 2,
) -> torch.Tensor:
    """Apply a dense predictor ``fn`` to ``(N, C, D, H, W)`` in overlapping 3-D windows and blend.

    Parameters
    ----------
    fn
        Maps ``(B, C, d, h, w)`` to ``(B, K, d, h, w)``.
    x
        Volumes ``(N, C, D, H, W)``.
    window
        ``(d, h, w)``; volumes not larger are predicted whole (then identical to ``fn(x)``).
    overlap
        Fraction of a window shared with its neighbour along each axis.
    batch_size
        Windows per call of ``fn``.

    Returns
    -------
    torch.Tensor
        ``(N, K, D, H, W)`` blended outputs.
    """
    size = tuple(int(s) for s in x.shape[-3:])
    win = tuple(min(int(w), s) for w, s in zip(window, size))
    if win == size:
        return torch.cat([fn(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    starts = [window_starts(s, w, overlap) for s, w in zip(size, win)]
    boxes = list(itertools.product(*starts))
    weight = blend_weights_3d(win).to(x.device)
    norm = torch.zeros(size, device=x.device)
    for i, j, k in boxes:
        norm[i : i + win[0], j : j + win[1], k : k + win[2]] += weight
    out: torch.Tensor | None = None
    for b in range(len(x)):
        for s in range(0, len(boxes), batch_size):
            chunk = boxes[s : s + batch_size]
            tiles = torch.cat([x[b : b + 1, :, i : i + win[0], j : j + win[1], k : k + win[2]] for i, j, k in chunk])
            pred = fn(tiles)
            if out is None:
                out = torch.zeros(len(x), pred.shape[1], *size, dtype=pred.dtype, device=x.device)
            for (i, j, k), p in zip(chunk, pred):
                out[b, :, i : i + win[0], j : j + win[1], k : k + win[2]] += p * weight
    assert out is not None
    return out / norm


def pad_to_multiple_3d(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Pad ``(N, C, D, H, W)`` at the far ends so D, H, W are multiples of ``multiple``; returns the original size."""
    d, h, w = (int(s) for s in x.shape[-3:])
    pads = [(-s) % multiple for s in (d, h, w)]
    if not any(pads):
        return x, (d, h, w)
    return F.pad(x, (0, pads[2], 0, pads[1], 0, pads[0]), mode="replicate"), (d, h, w)


class VolumeSegmentationModel(VolumeModel):
    """Base class of per-voxel 3-D models: pads to :attr:`stride`, tiles large volumes in evaluation."""

    tasks: ClassVar[tuple[str, ...]] = ("segmentation",)
    eval_chunk: ClassVar[int] = 2

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        self.stride = 1
        self.window: tuple[int, int, int] | None = None
        self.overlap = 0.25

    def set_inference_window(self, window: Sequence[int] | None, overlap: float = 0.25) -> None:
        """Predict volumes larger than ``window`` ``(d, h, w)`` in overlapping windows (evaluation only)."""
        self.window = tuple(int(s) for s in window) if window is not None else None  # type: ignore[assignment]
        self.overlap = overlap

    def forward_net(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a stride-aligned batch (subclasses)."""
        raise NotImplementedError

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        z, (d, h, w) = pad_to_multiple_3d(x, self.stride)
        return self.forward_net(z)[..., :d, :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-voxel logits ``(N, K, D, H, W)``; large volumes are tiled in gradient-free evaluation."""
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ConfigError(f"{type(self).__name__} takes (N, {self.in_channels}, D, H, W) volumes, got {tuple(x.shape)}")
        exporting = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        covered = self.window is None or all(int(n) <= int(w) for n, w in zip(x.shape[-3:], self.window))
        if not self.training and not torch.is_grad_enabled() and not (exporting and covered):
            # (a traced graph of a volume the window covers is the network itself: no batch chunks fixed in it)
            window = self.window or tuple(int(s) for s in x.shape[-3:])
            out = sliding_window_3d(self.forward_logits, x, window=window, overlap=self.overlap, batch_size=self.eval_chunk)
        else:
            out = self.forward_logits(x)
        threshold = float(getattr(self.params, "threshold", 0.5))
        if self.num_outputs == 1 and threshold != 0.5:
            out = out - math.log(threshold / (1.0 - threshold))
        return out

    def embed(self, x: torch.Tensor) -> Any:
        raise NotImplementedError
