"""Chemception (Goh et al., 2017): an Inception-ResNet network on molecules drawn as images.

Goh, Siegel, Vishnu, Hodas & Baker, "Chemception: a deep neural network with minimal chemistry
knowledge matches the performance of expert-developed QSAR/QSPR models", arXiv:1706.06689 (2017).

Input: the 4-channel molecule images of :mod:`biodl.data.molecule.image`, ``(N, 4, S, S)``
(80 × 80 at 0.5 Å per pixel). Layout, with ``F = params.filters`` and the paper's block types:

====================  ==========================================  =================
stem                  4×4 convolution, stride ``stem_stride``     ``(N, F, S/st, S/st)`` (default 2, as the paper)
Inception-ResNet A    ``blocks[0]`` ×: 1×1 | 1×1→3×3 | 1×1→3×3→3×3, 1×1 back to the input width, residual
reduction A           max-pool | 3×3 s2 | 1×1→3×3→3×3 s2           ``(N, 4F, S/2st, S/2st)``
Inception-ResNet B    ``blocks[1]`` ×: 1×1 | 1×1→1×7→7×1, residual
reduction B           max-pool | 1×1→3×3 s2 | 1×1→3×3 s2 | 1×1→3×3→3×3 s2  ``(N, 8F, S/4st, S/4st)``
Inception-ResNet C    ``blocks[2]`` ×: 1×1 | 1×1→1×3→3×1, residual
head                  global average pooling, dropout, linear     ``(N, num_outputs)``
====================  ==========================================  =================

Each convolution is followed by batch normalisation (``batch_norm``; the paper used none) and
ReLU; residual branches are scaled by ``residual_scale`` before the addition (Szegedy et al.).
The pixel values (bond order, atomic number, Gasteiger charge, hybridisation) are rescaled by
fixed per-channel factors (``INPUT_SCALE``) so they start on a similar range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from biodl.errors import ConfigError
from biodl.models.base import MODELS, BiodlModel, ModelParams
from biodl.models.init import InitName, initialize

#: Per-channel factors applied to the raw pixel values (bond order, atomic number, charge, hybridisation).
INPUT_SCALE: tuple[float, ...] = (0.5, 0.1, 2.0, 0.33)


class ChemceptionParams(ModelParams):
    """Hyper-parameters of :class:`Chemception`."""

    filters: int = Field(default=16, ge=2, description="base width F (the paper's best: 16 or 32)")
    stem_stride: int = Field(
        default=2, ge=1, le=8,
        description="stride (and kernel size, at least 4) of the stem convolution (the paper's 2; 4 costs a quarter of "
        "the compute but learned ESOL worse: validation RMSE 1.43 vs 1.20)",
    )  # fmt: skip
    blocks: list[int] = Field(
        default_factory=lambda: [1, 1, 1], min_length=3, max_length=3,
        description="Inception-ResNet blocks of type A, B, C (the paper's T)",
    )  # fmt: skip
    batch_norm: bool = Field(default=True, description="batch normalisation after each convolution")
    residual_scale: float = Field(default=0.3, gt=0.0, le=1.0, description="scale of each residual branch")
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0, description="dropout before the output layer")
    init: InitName = "he_uniform"
    tta: Literal["none", "rot90"] = Field(
        default="none",
        description="evaluation and prediction: none = the upright image; rot90 = the mean of the network's outputs for "
        "the image turned by 0, 90, 180 and 270 degrees (views the random-rotation augmentation trains on; exported to "
        "ONNX as transposes and flips)",
    )


#: The four rotations by 90 degrees of ``(..., S, S)`` images as (transpose, flipped dims): exportable ONNX ops.
ROT90_VIEWS: tuple[tuple[bool, tuple[int, ...]], ...] = ((False, ()), (True, (-2,)), (False, (-2, -1)), (True, (-1,)))


def rotate90(x: torch.Tensor, transpose: bool, dims: tuple[int, ...]) -> torch.Tensor:
    """One view of :data:`ROT90_VIEWS`: ``x`` transposed in its last two axes if asked, then flipped on ``dims``."""
    x = x.transpose(-2, -1) if transpose else x
    return torch.flip(x, dims=dims) if dims else x


def conv(c_in: int, c_out: int, k: int | tuple[int, int], stride: int = 1, bn: bool = True) -> nn.Sequential:
    """Convolution (``same`` padding for stride 1) + optional batch norm + ReLU."""
    kh, kw = (k, k) if isinstance(k, int) else k
    pad = (kh // 2, kw // 2) if stride == 1 else ((kh - 1) // 2, (kw - 1) // 2)
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, (kh, kw), stride=stride, padding=pad, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _Residual(nn.Module):
    """Parallel branches, concatenated, projected back to ``channels`` by a 1×1 convolution and added."""

    def __init__(self, channels: int, branches: Sequence[nn.Module], branch_out: int, scale: float) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.project = nn.Conv2d(branch_out, channels, 1)
        self.scale = scale
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` → ``(N, C, H, W)``."""
        mixed = torch.cat([b(x) for b in self.branches], dim=1)
        return self.act(x + self.scale * self.project(mixed))


def block_a(c: int, f: int, scale: float, bn: bool) -> _Residual:
    """Inception-ResNet A: 1×1 | 1×1→3×3 | 1×1→3×3→3×3 (widths f, f, 1.5f→2f)."""
    f15, f2 = (3 * f) // 2, 2 * f
    return _Residual(
        c,
        [
            conv(c, f, 1, bn=bn),
            nn.Sequential(conv(c, f, 1, bn=bn), conv(f, f, 3, bn=bn)),
            nn.Sequential(conv(c, f, 1, bn=bn), conv(f, f15, 3, bn=bn), conv(f15, f2, 3, bn=bn)),
        ],
        f + f + f2,
        scale,
    )


def block_b(c: int, f: int, scale: float, bn: bool) -> _Residual:
    """Inception-ResNet B: 1×1 | 1×1→1×7→7×1."""
    f15 = (3 * f) // 2
    return _Residual(
        c,
        [conv(c, f, 1, bn=bn), nn.Sequential(conv(c, f, 1, bn=bn), conv(f, f15, (1, 7), bn=bn), conv(f15, f, (7, 1), bn=bn))],
        2 * f,
        scale,
    )


def block_c(c: int, f: int, scale: float, bn: bool) -> _Residual:
    """Inception-ResNet C: 1×1 | 1×1→1×3→3×1."""
    f15 = (3 * f) // 2
    return _Residual(
        c,
        [conv(c, f, 1, bn=bn), nn.Sequential(conv(c, f, 1, bn=bn), conv(f, f15, (1, 3), bn=bn), conv(f15, f, (3, 1), bn=bn))],
        2 * f,
        scale,
    )


class _Reduction(nn.Module):
    """Max-pool and strided convolution branches, concatenated (halves height and width)."""

    def __init__(self, branches: Sequence[nn.Module]) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` → ``(N, C + branches, H/2, W/2)``."""
        return torch.cat([self.pool(x), *[b(x) for b in self.branches]], dim=1)


def reduction_a(c: int, f: int, bn: bool) -> tuple[_Reduction, int]:
    """Reduction A; returns the module and its output width (``c + 3f``)."""
    f15 = (3 * f) // 2
    return _Reduction(
        [
            conv(c, f15, 3, stride=2, bn=bn),
            nn.Sequential(conv(c, f, 1, bn=bn), conv(f, f, 3, bn=bn), conv(f, f15, 3, stride=2, bn=bn)),
        ]
    ), c + 2 * f15


def reduction_b(c: int, f: int, bn: bool) -> tuple[_Reduction, int]:
    """Reduction B; returns the module and its output width (``c + 4f``)."""
    return _Reduction(
        [
            nn.Sequential(conv(c, f, 1, bn=bn), conv(f, f, 3, stride=2, bn=bn)),
            nn.Sequential(conv(c, f, 1, bn=bn), conv(f, f, 3, stride=2, bn=bn)),
            nn.Sequential(conv(c, f, 1, bn=bn), conv(f, f, 3, bn=bn), conv(f, 2 * f, 3, stride=2, bn=bn)),
        ]
    ), c + 4 * f


@MODELS.register("chemception")
class Chemception(BiodlModel):
    """Inception-ResNet on molecule images ``(N, 4, S, S)``; output ``(N, num_outputs)``."""

    Params: ClassVar[type[ModelParams]] = ChemceptionParams
    data_types: ClassVar[tuple[str, ...]] = ("molecule",)
    #: The featuriser this model asks for when ``data.molecule.featurizer`` is not given.
    default_featurizer: ClassVar[tuple[str, ...]] = ("chemception",)
    #: Training recipe (chosen for CPU budgets: Adam at 1e-3, 32 images a batch, early stopping on validation).
    #: Small sets train for more epochs (``min_samples``: ESOL's 677 training molecules 119 epochs, Tox21's 4,694
    #: the 40 of ``max_epochs``), the learning rate decaying on a cosine to 1 % over them (docs/chemception.md).
    config_defaults: ClassVar[Mapping[str, object]] = {
        "train.lr": 1e-3,
        "train.batch_size": 32,
        "train.max_epochs": 40,
        "train.min_samples": 80_000,
        "train.lr_schedule": "cosine",
        "train.early_stopping": False,  # the cosine runs its course (its low-rate end is where ESOL gains); best epoch kept
    }

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, ChemceptionParams)
        if len(self.in_shape) != 3 or self.in_shape[1] < 8 or self.in_shape[1] != self.in_shape[2]:
            raise ConfigError(
                f"model 'chemception' takes square molecule images (C, S, S), got inputs of shape {self.in_shape}; "
                "use the 'chemception' featuriser (data.molecule.featurizer: [chemception])"
            )
        f, bn, s = params.filters, params.batch_norm, params.residual_scale
        c_in = self.in_shape[0]
        st = params.stem_stride
        k = max(4, st)
        scale = list(INPUT_SCALE[:c_in]) + [1.0] * max(0, c_in - len(INPUT_SCALE))
        self.register_buffer("input_scale", torch.tensor(scale, dtype=torch.float32).view(1, c_in, 1, 1))
        stem: list[nn.Module] = [nn.Conv2d(c_in, f, k, stride=st, padding=(k - st + 1) // 2, bias=not bn)]
        self.stem = nn.Sequential(*stem, *([nn.BatchNorm2d(f)] if bn else []), nn.ReLU(inplace=True))
        na, nb, nc = params.blocks
        self.stage_a = nn.Sequential(*[block_a(f, f, s, bn) for _ in range(na)])
        self.reduce_a, c = reduction_a(f, f, bn)
        self.stage_b = nn.Sequential(*[block_b(c, 2 * f, s, bn) for _ in range(nb)])
        self.reduce_b, c = reduction_b(c, 2 * f, bn)
        self.stage_c = nn.Sequential(*[block_c(c, 2 * f, s, bn) for _ in range(nc)])
        self.out_channels = c
        self.dropout = nn.Dropout(params.dropout)
        self.head = nn.Linear(c, num_outputs)
        initialize(self, params.init)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Last convolutional maps ``(N, C, S/4st, S/4st)`` (the Grad-CAM layer)."""
        scale: torch.Tensor = self.input_scale  # type: ignore[assignment]
        x = x.float() * scale
        x = self.stage_a(self.stem(x))
        x = self.stage_b(self.reduce_a(x))
        return self.stage_c(self.reduce_b(x))

    def classify(self, maps: torch.Tensor) -> torch.Tensor:
        """Scores ``(N, num_outputs)`` from :meth:`feature_maps`."""
        return self.head(self.dropout(maps.mean(dim=(2, 3))))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(N, C)`` before the output layer."""
        return self.feature_maps(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(N, num_outputs)`` for images ``(N, C, S, S)`` (any float dtype).

        In evaluation with ``params.tta: rot90`` the mean of the scores of the four 90-degree
        rotations of each image; in training (random rotations) and with ``tta: none`` the image's own.
        """
        if self.training or getattr(self.params, "tta", "none") == "none":
            return self.classify(self.feature_maps(x))
        total = self.classify(self.feature_maps(x))
        for transpose, dims in ROT90_VIEWS[1:]:
            total = total + self.classify(self.feature_maps(rotate90(x, transpose, dims)))
        return total / len(ROT90_VIEWS)
