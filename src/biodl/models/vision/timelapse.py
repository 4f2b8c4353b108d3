"""Time-lapse clips: a shared 2-D CNN per frame, then a temporal convolution or GRU across frames.

Input ``(N, C, T, H, W)`` (``--data-type volume --time-axis``). Every frame passes through the same
2-D encoder (``[Conv 3×3 → BN → ReLU] × 2 → MaxPool`` blocks, global average pooling) giving
``(N, T, F)``; a temporal model (``temporal: conv`` — two "same" 1-D convolutions over time — or
``gru`` — a bidirectional GRU) mixes neighbouring frames into per-frame states ``(N, T, hidden)``;
one linear head scores every frame.

* ``output: clip`` (per-clip classification): logits ``(N, num_outputs)`` = the mean over frames
  of the per-frame logits, so :meth:`frame_scores` ``(N, T, num_outputs)`` says which frames carry
  the clip's label.
* ``output: frame`` (per-frame classification): one output per frame, ``num_outputs = T``
  (labels ``frame_0 .. frame_{T-1}``, binary or regression); logits ``(N, T)``.
* ``output: auto`` (the default): an experiment resolves it from the labels before building the
  network — ``frame`` for per-frame labels (an NPZ ``labels`` array ``(N, T)``), else ``clip``
  (:func:`biodl.experiment.load.resolve_frame_output`); the bundle stores the resolved value. A
  network built directly with ``auto`` is per clip.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from biodl.errors import ConfigError
from biodl.models.base import MODELS, ModelParams
from biodl.models.vision.volume_base import VolumeModel, conv_init_3d


class TimelapseParams(ModelParams):
    """Hyper-parameters of :class:`TimelapseNet`."""

    output: Literal["auto", "clip", "frame"] = Field(
        default="auto",
        description="one prediction per clip, or one per frame; auto: per frame when the labels are per frame, else per clip",
    )
    channels: list[int] = Field(
        default_factory=lambda: [16, 32, 64], min_length=1, description="2-D frame encoder filters per block"
    )
    temporal: Literal["conv", "gru"] = Field(default="conv", description="temporal model across frames")
    hidden: int = Field(default=64, ge=1, description="temporal model width")
    kernel_size: int = Field(default=3, ge=1, description="temporal convolution kernel (frames)")
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)


@MODELS.register("timelapse")
class TimelapseNet(VolumeModel):
    """Per-frame 2-D CNN + temporal model (module docstring)."""

    Params: ClassVar[type[ModelParams]] = TimelapseParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, TimelapseParams)
        frames = self.in_shape[1]
        if params.output == "frame" and num_outputs != frames:
            raise ConfigError(
                f"timelapse output 'frame' needs one label per frame ({frames} frames), got {num_outputs} outputs; "
                "give per-frame labels (an NPZ labels array of shape (N, T)) or use output: clip"
            )
        layers: list[nn.Module] = []
        c = self.in_channels
        for width in params.channels:
            for _ in range(2):
                layers += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                c = width
            layers.append(nn.MaxPool2d(2))
        self.frame_encoder = nn.Sequential(*layers)
        self.frame_pool = nn.AdaptiveAvgPool2d(1)
        if params.temporal == "conv":
            k = params.kernel_size
            self.temporal: nn.Module = nn.Sequential(
                nn.Conv1d(c, params.hidden, k, padding=k // 2),
                nn.ReLU(inplace=True),
                nn.Conv1d(params.hidden, params.hidden, k, padding=k // 2),
                nn.ReLU(inplace=True),
            )
            out = params.hidden
        else:
            self.temporal = nn.GRU(c, params.hidden, batch_first=True, bidirectional=True)
            out = 2 * params.hidden
        self.dropout = nn.Dropout(params.dropout)
        self.head = nn.Linear(out, 1 if params.output == "frame" else num_outputs)
        conv_init_3d(self)

    def gradcam_layer(self) -> nn.Module:
        return self.frame_encoder[-2]

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame temporal states ``(N, T, hidden)`` of clips ``(N, C, T, H, W)``."""
        n, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(n * t, c, h, w)
        f = self.frame_pool(self.frame_encoder(frames)).reshape(n, t, -1)
        if isinstance(self.temporal, nn.GRU):
            return self.temporal(f)[0]
        return self.temporal(f.transpose(1, 2)).transpose(1, 2)

    def frame_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame logits ``(N, T, K)`` (``K = 1`` for ``output: frame``)."""
        return self.head(self.dropout(self.frame_features(x)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Time-averaged frame states ``(N, hidden)``."""
        return self.frame_features(x).mean(dim=1)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.frame_scores(x)
        if isinstance(self.params, TimelapseParams) and self.params.output == "frame":
            return scores[..., 0]
        return scores.mean(dim=1)
