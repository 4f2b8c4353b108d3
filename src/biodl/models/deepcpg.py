"""Multi-input networks: one branch per named input plus a joint module (DeepCpG, Angermueller et al. 2017).

The input is the flat row of a multi-input data type (:mod:`biodl.data.multi_input`); ``params.inputs`` names
each input with its type and shape, and the network cuts the row back into one tensor per input. The branch of
an input follows its type (or, for other types, its shape):

``cpg-neighbours`` ``(cells, 2k, 3)``
    DeepCpG's CpG module: a dense layer shared by the cells embeds each cell's neighbour states and distances,
    a bidirectional GRU runs over the cells; its last states are the branch output.
``dna-window`` / any ``(channels, length)`` input
    DeepCpG's DNA module: two convolution + max-pool blocks, global max pool, a dense layer.
other (any shape)
    A dense layer on the flattened values (BED overlaps, table features).

The joint module concatenates the branch outputs and applies dense layers (``joint_hidden``) and one output
per task (per cell). ``modules`` trains a subset of the inputs (``[cpg]``: the CpG module alone; the others are
read but not used).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from biodl.errors import ConfigError
from biodl.models.base import MODELS, BiodlModel, ModelParams


class MultiInputParams(ModelParams):
    """Hyper-parameters of :class:`MultiInputNet` (defaults chosen on validation, docs/methylation.md)."""

    inputs: dict[str, dict[str, Any]] | None = Field(
        default=None, description="set from the data: {input name: {type, shape}} (not a user setting)"
    )
    modules: list[str] | None = Field(
        default=None, description="the inputs (modules) the network uses, e.g. [cpg] or [dna] (null: all of them)"
    )
    cpg_embed: int = Field(default=32, ge=1, description="CpG module: per-cell embedding of the neighbour states")
    gru_hidden: int = Field(default=64, ge=1, description="CpG module: bidirectional GRU units per direction")
    dna_filters: int = Field(default=64, ge=1, description="DNA module: convolution filters")
    dna_width: int = Field(default=11, ge=1, description="DNA module: first filter width")
    dense_hidden: int = Field(default=32, ge=1, description="dense branch (annotations, tables): units")
    joint_hidden: list[int] = Field(default_factory=lambda: [64], description="joint module: dense layer widths")
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0, description="dropout in the branches and the joint module")


class CpgBranch(nn.Module):
    """``(B, cells, 2k, F)`` → per-cell dense → bidirectional GRU over cells → ``(B, 2 * hidden)``."""

    def __init__(self, shape: tuple[int, ...], embed: int, hidden: int, dropout: float) -> None:
        super().__init__()
        if len(shape) != 3:
            raise ConfigError(f"cpg-neighbours input shape {list(shape)}: (cells, neighbours, features) expected")
        self.embed = nn.Sequential(nn.Linear(shape[1] * shape[2], embed), nn.ReLU(), nn.Dropout(dropout))
        self.gru = nn.GRU(embed, hidden, batch_first=True, bidirectional=True)
        self.out_features = 2 * hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.flatten(2))  # (B, cells, embed)
        _, last = self.gru(h)  # (2, B, hidden)
        return torch.cat([last[0], last[1]], dim=1)


class DnaBranch(nn.Module):
    """``(B, C, L)`` → [conv → ReLU → max-pool] × 2 → global max pool → dense → ``(B, filters)``."""

    def __init__(self, shape: tuple[int, ...], filters: int, width: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(shape[0], filters, width, padding=width // 2), nn.ReLU(), nn.MaxPool1d(4, ceil_mode=True),
            nn.Conv1d(filters, filters, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(),
            nn.Dropout(dropout), nn.Linear(filters, filters), nn.ReLU(),
        )  # fmt: skip
        self.out_features = filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DenseBranch(nn.Module):
    """Flattened values → dense → ReLU."""

    def __init__(self, shape: tuple[int, ...], hidden: int) -> None:
        super().__init__()
        size = 1
        for s in shape:
            size *= int(s)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(size, hidden), nn.ReLU())
        self.out_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@MODELS.register("deepcpg")
class MultiInputNet(BiodlModel):
    """One branch per named input + a joint module (concatenation → dense layers → one output per task)."""

    Params: ClassVar[type[ModelParams]] = MultiInputParams
    data_types: ClassVar[tuple[str, ...]] = ("cpg", "multi")
    tasks: ClassVar[tuple[str, ...]] = ("classification", "regression")
    #: early stopping after 5 epochs without a better validation loss (the recipe measured in docs/methylation.md)
    config_defaults: ClassVar[Mapping[str, object]] = {"train.patience": 5}

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        p = params
        assert isinstance(p, MultiInputParams)
        if not p.inputs:
            raise ConfigError("model 'deepcpg' needs named inputs (a multi-input data type: --data-type cpg, or data.inputs)")
        names = list(p.inputs)
        used = list(p.modules) if p.modules else names
        unknown = [m for m in used if m not in p.inputs]
        if unknown:
            raise ConfigError(f"model.modules: {', '.join(unknown)} not among the inputs ({', '.join(names)})")
        self.names = names
        self.shapes = [tuple(int(s) for s in p.inputs[n]["shape"]) for n in names]
        self.used = [n for n in names if n in used]
        self.branches = nn.ModuleDict()
        for name, shape in zip(names, self.shapes, strict=True):
            if name not in self.used:
                continue
            kind = p.inputs[name].get("type")
            branch: nn.Module
            if kind == "cpg-neighbours":
                branch = CpgBranch(shape, p.cpg_embed, p.gru_hidden, p.dropout)
            elif kind == "dna-window" or len(shape) == 2:
                branch = DnaBranch(shape, p.dna_filters, p.dna_width, p.dropout)
            else:
                branch = DenseBranch(shape, p.dense_hidden)
            self.branches[name] = branch
        width = sum(int(getattr(b, "out_features", 0)) for b in self.branches.values())
        layers: list[nn.Module] = []
        for h in p.joint_hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(p.dropout)]
            width = h
        layers.append(nn.Linear(width, num_outputs))
        self.joint = nn.Sequential(*layers)

    def split_inputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The flat rows ``(B, F)`` as one tensor per input ``(B, *shape)``."""
        out, start = {}, 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            size = 1
            for s in shape:
                size *= s
            out[name] = x[:, start : start + size].reshape(x.shape[0], *shape)
            start += size
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.split_inputs(x.reshape(x.shape[0], -1))
        h = torch.cat([self.branches[n](parts[n]) for n in self.used], dim=1)
        return self.joint(h)
