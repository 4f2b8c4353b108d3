"""The ``mil`` model: instance encoder → masked pooling → bag classifier.

Input: packed bags from the ``bags`` data type, ``(B, M, F + 1)`` (table rows) or
``(B, M, C + 1, t, t)`` (image tiles), whose last feature/channel is the instance mask. Table
instances go through a dense network, image tiles through a small CNN (no batch
normalisation, so padded instances cannot change any statistic); the embeddings ``(B, M, D)``
are pooled over the real instances (:mod:`biodl.models.mil.pooling`) and a linear layer scores
the bag. With ``noisy_and`` the linear layer scores every instance and the noisy-AND pools the
instance probabilities (Kraus et al. 2016).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from biodl.models.base import MODELS, BiodlModel, ModelParams
from biodl.models.init import initialize
from biodl.models.mil.pooling import AttentionPool, NoisyAnd, masked_max, masked_mean
from biodl.models.numeric_encoding import PiecewiseLinearEncoding

Pooling = Literal["mean", "max", "attention", "gated_attention", "noisy_and"]


class MILParams(ModelParams):
    """Hyper-parameters of :class:`MIL` (defaults chosen by 10-fold CV on MUSK1, Elephant, Fox and Tiger)."""

    #: bundles saved before the piecewise-linear encoding became the default encode nothing
    saved_before: ClassVar[Mapping[str, object]] = {"numeric_encoding": "none"}

    pooling: Pooling = Field(default="mean", description="bag pooling of the instance embeddings")
    hidden_sizes: list[int] = Field(
        default_factory=lambda: [128, 64], description="table instances: widths of the dense instance encoder"
    )
    conv_channels: list[int] = Field(
        default_factory=lambda: [32, 64],
        description="image instances: channels of the 3×3 conv blocks (each then 2×2 max-pooled)",
    )
    embedding_size: int = Field(default=64, ge=1, description="image instances: size of the tile embedding")
    attention_size: int = Field(default=64, ge=1, description="attention pooling: hidden size L")
    dropout: float = Field(default=0.25, ge=0.0, lt=1.0, description="dropout on instance embeddings")
    noisy_and_slope: float = Field(default=10.0, gt=0.0, description="noisy-AND: slope a")
    numeric_encoding: Literal["none", "ple"] = Field(
        default="none",
        description="table instances: ple encodes every instance feature piecewise-linearly on quantile bins of the "
        "training bags' instances before the dense encoder (biodl.models.numeric_encoding; better on the Corel "
        "image sets Elephant / Fox / Tiger, worse on MUSK1, MUSK2 and UCSB breast cancer, docs/mil.md); image tiles: "
        "ignored",
    )
    encoding_bins: int = Field(default=16, ge=1, le=128, description="bins per feature of numeric_encoding: ple")
    members: int = Field(
        default=5,
        ge=1,
        le=64,
        description="independently initialised networks trained side by side, each on its own loss; "
        "bag scores averaged (a seed ensemble in one model)",
    )


def _dense(n_in: int, sizes: list[int], params: MILParams) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    if params.numeric_encoding == "ple":
        layers.append(PiecewiseLinearEncoding(n_in, params.encoding_bins))
        n_in *= params.encoding_bins
    for width in sizes:
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        n_in = width
    return nn.Sequential(*layers), n_in


def _conv(channels: int, sizes: list[int], embedding: int) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for width in sizes:
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
        channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, embedding), nn.ReLU()]
    return nn.Sequential(*layers), embedding


class _Network(nn.Module):
    """One member: instance encoder → dropout → masked pooling → linear bag classifier."""

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: MILParams) -> None:
        super().__init__()
        self.pooling = params.pooling
        if len(in_shape) == 4:
            self.encoder, dim = _conv(in_shape[1] - 1, params.conv_channels, params.embedding_size)
        else:
            self.encoder, dim = _dense(in_shape[1] - 1, params.hidden_sizes, params)
        self.embedding_dim = dim
        self.drop = nn.Dropout(params.dropout)
        self.attention = (
            AttentionPool(dim, params.attention_size, gated=params.pooling == "gated_attention")
            if params.pooling in ("attention", "gated_attention")
            else None
        )
        self.noisy_and = NoisyAnd(num_outputs, params.noisy_and_slope) if params.pooling == "noisy_and" else None
        self.head = nn.Linear(dim, num_outputs)
        self.num_outputs = num_outputs

    def embed(self, inst: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Instance embeddings ``(B, M, D)`` of instances ``(B, M, *S)``.

        With ``mask`` ``(B, M)`` only the real instances are encoded and the padded slots' embeddings are 0
        (pooling masks them either way, so no score changes): a file whose largest bag holds a thousand
        instances no longer costs a thousand encodings per bag. Dropout is drawn for all ``(B, M, D)`` slots
        as before. While tracing for export every slot is encoded (the graph must take any bag size).
        """
        b, m = inst.shape[0], inst.shape[1]
        if mask is None or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return self.drop(self.encoder(inst.reshape(b * m, *inst.shape[2:])).reshape(b, m, -1))
        real = mask.detach() > 0
        encoded = self.encoder(inst[real])  # (real instances, D)
        h = encoded.new_zeros(b, m, encoded.shape[-1])
        h[real] = encoded
        return self.drop(h)

    def pool(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bag scores ``(B, K)`` and instance weights ``(B, M)`` from embeddings."""
        if self.noisy_and is not None:
            p = torch.sigmoid(self.head(h))
            bag = self.noisy_and(p, mask).clamp(1e-6, 1 - 1e-6)
            score = p.mean(dim=-1) * mask
            w = score / score.sum(dim=1, keepdim=True).clamp_min(1e-12)
            logits = torch.log(bag) - torch.log1p(-bag) if self.num_outputs == 1 else torch.log(bag)
            return logits, w
        z, w = self.represent(h, mask)
        return self.head(z), w

    def represent(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bag representation ``(B, D)`` and instance weights (attention/max/mean; noisy-AND: mean)."""
        if self.attention is not None:
            return self.attention(h, mask)
        if self.pooling == "max":
            return masked_max(h, mask)
        return masked_mean(h, mask)


@MODELS.register("mil")
class MIL(BiodlModel):
    """Multiple-instance network (Ilse et al., ICML 2018; Kraus et al., Bioinformatics 2016).

    Input ``(B, M, F + 1)`` or ``(B, M, C + 1, t, t)`` (last feature/channel: instance mask),
    output bag scores ``(B, num_outputs)``: the mean of ``model.members`` networks' scores. The
    members start from different random weights and, in training, each is fitted to its own loss
    (:meth:`member_scores`), so the model is a seed ensemble trained in one pass.
    """

    Params: ClassVar[type[ModelParams]] = MILParams
    data_types: ClassVar[tuple[str, ...]] = ("bags",)
    #: What to give instead of another data type (the model-type check in ``biodl.wiring`` appends it).
    data_type_hints: ClassVar[Mapping[str, str]] = {
        "tabular": "for a table whose rows are instances of bags, add --bag-column COLUMN (the bag identifier column; "
        "data.bag_column), one label per bag",
        "image": "for images as bags of tiles (one label per image), use --data-type bags --bag-instances image "
        "(data.type: bags, data.bags.instances: image)",
    }
    tasks: ClassVar[tuple[str, ...]] = ("classification", "regression", "multilabel")
    #: Chosen by 10-fold CV (MIDatasets' 2nd repetition) on MUSK1, Elephant, Fox and Tiger: early stopping
    #: on the handful of validation bags these sets leave cost ~2 points of accuracy, so the network trains
    #: a fixed 50 epochs on all training bags (no validation split) with weight decay; ``model.members``
    #: (5 networks averaged) added 0.3 points of mean CV accuracy over one network at about the same cost;
    #: instance dropout 0.3 (training on random sub-bags, ``data.bags.instance_dropout``) added 1.6 points,
    #: on every set. The piecewise-linear encoding of the instance features (``numeric_encoding: ple``) added
    #: 2.5 points on these four sets but lost 5–6 on two of five held-out sets (MUSK2, UCSB breast cancer) and
    #: 2.5 on their mean, so it is an option, not the default (docs/mil.md).
    config_defaults: ClassVar[Mapping[str, object]] = {
        "data.split_sizes": (0.7, 0.0, 0.3),
        "train.optimizer": "adam",
        "train.lr": 5e-4,
        "train.weight_decay": 1e-3,
        "train.batch_size": 8,
        "train.max_epochs": 50,
        "train.early_stopping": False,
        "data.bags.instance_dropout": 0.3,
        "evaluate.baselines": ["linear"],
    }

    #: Exported graphs take bags of any size (ONNX: a free instance axis).
    onnx_dynamic_axes: ClassVar[Mapping[int, str]] = {1: "instances"}

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, MILParams)
        self.image = len(self.in_shape) == 4
        if len(self.in_shape) not in (2, 4):
            raise ValueError(f"mil takes packed bags (M, F + 1) or (M, C + 1, H, W), got {self.in_shape}")
        members = [_Network(self.in_shape, num_outputs, params) for _ in range(params.members)]
        self.embedding_dim = members[0].embedding_dim * params.members
        self.nets = nn.ModuleList(members)
        initialize(self, "glorot_uniform")

    def fit_inputs(self, x: np.ndarray) -> None:
        """Fit the instance encoders' piecewise-linear bins (``numeric_encoding: ple``) on the real instances of
        the training bags ``x`` ``(B, M, F + 1)`` (padding left out)."""
        encoders = [m for m in self.modules() if isinstance(m, PiecewiseLinearEncoding)]
        if encoders:
            x = np.asarray(x)
            instances = x[..., :-1][x[..., -1] > 0]
            for enc in encoders:
                enc.fit(instances)

    # ----------------------------------------------------------------- pieces
    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(instances, mask)``: ``(B, M, *S)`` without the mask feature/channel, and ``(B, M)``."""
        if self.image:
            return x[:, :, :-1], x[:, :, -1, 0, 0]
        return x[..., :-1], x[..., -1]

    def networks(self) -> list[_Network]:
        """The members."""
        return [net for net in self.nets if isinstance(net, _Network)]

    def member_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's bag scores ``(members, B, num_outputs)`` (the training loss is their sum)."""
        inst, mask = self.split(x.float())
        return torch.stack([net.pool(net.embed(inst, mask), mask)[0] for net in self.networks()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Bag scores ``(B, num_outputs)``: the members' mean."""
        return self.member_scores(x).mean(dim=0)

    @torch.no_grad()
    def instance_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Instance weights ``(B, M)`` (attention, or each pooling's share; 0 on padding) and instance
        scores ``(B, M, K)`` (the bag classifier applied to each instance alone; raw scores), both
        averaged over the members."""
        inst, mask = self.split(x)
        weights, scores = [], []
        for net in self.networks():
            h = net.embed(inst)
            weights.append(net.pool(h, mask)[1])
            scores.append(net.head(h) * mask.unsqueeze(-1))
        return torch.stack(weights).mean(dim=0), torch.stack(scores).mean(dim=0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Bag representation ``(B, members × D)``: the members' pooled embeddings side by side."""
        inst, mask = self.split(x)
        return torch.cat([net.represent(net.embed(inst, mask), mask)[0] for net in self.networks()], dim=-1)
