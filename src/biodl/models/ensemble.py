"""Ensembles: ``K`` independently trained copies of one architecture, predictions averaged.

Built by the experiment when ``train.ensemble_size > 1`` (``--ensemble-size``); each member is
trained with its own seed (``seed + k``) and early stopping. The ensemble is a registered model
(``ensemble``), so a bundle rebuilds it from its parameters like any other architecture.

Averaging happens on the output scale: probabilities for classification (returned as logits of
the mean probability, so the usual sigmoid/softmax head recovers the mean), values for regression.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from biodl.models.base import MODELS, BiodlModel, ModelParams, build_model

_EPS = 1e-6


class EnsembleParams(ModelParams):
    """What the ensemble is made of."""

    member: str = Field(description="registered architecture of every member")
    size: int = Field(default=2, ge=1)
    member_params: dict[str, Any] = Field(default_factory=dict)
    kind: Literal["binary", "multiclass", "regression", "positions", "segmentation"] = "regression"
    members: list[dict[str, Any]] = Field(
        default_factory=list,
        description="a blend of different networks on the same inputs: each member's {name, params}; "
        "empty = size copies of member",
    )
    threshold: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="binary masks: foreground threshold of the mean probability; the output logits are shifted by "
        "-logit(threshold) so that every consumer's 0.5 cut means this threshold (set by evaluate.select_threshold)",
    )


@MODELS.register("ensemble")
class Ensemble(BiodlModel):
    """Mean of ``size`` member networks; output ``(N, num_outputs)`` scores."""

    Params: ClassVar[type[ModelParams]] = EnsembleParams
    data_types: ClassVar[tuple[str, ...]] = ("tabular", "sequence", "molecule", "image")

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, EnsembleParams)
        if params.members:  # a blend (``model.name: auto`` averaging its candidates)
            built = [build_model(m["name"], in_shape, num_outputs, m.get("params")) for m in params.members]
        else:
            built = [build_model(params.member, in_shape, num_outputs, params.member_params) for _ in range(params.size)]
        self.members = torch.nn.ModuleList(built)

    @classmethod
    def from_members(cls, members: list[BiodlModel], name: str, params: dict[str, Any], kind: str) -> Ensemble:
        """Wrap trained members (their weights are kept)."""
        first = members[0]
        spec = EnsembleParams(member=name, size=len(members), member_params=params, kind=kind)  # type: ignore[arg-type]
        ens = cls(first.in_shape, first.num_outputs, spec)
        ens.members = torch.nn.ModuleList(members)
        return ens

    @classmethod
    def blend(cls, models: list[BiodlModel], specs: list[tuple[str, dict[str, Any]]], kind: str) -> Ensemble:
        """Average trained networks of different architectures or recipes that take the same inputs.

        ``specs`` are each model's ``(registered name, params)`` (an ensemble may be a member of a blend).
        """
        first = models[0]
        members = [{"name": n, "params": p} for n, p in specs]
        spec = EnsembleParams(member="blend", size=len(models), kind=kind, members=members)  # type: ignore[arg-type]
        ens = cls(first.in_shape, first.num_outputs, spec)
        ens.members = torch.nn.ModuleList(models)
        return ens

    def spec(self) -> tuple[str, dict[str, Any]]:
        """``(registered name, params)`` that rebuild this ensemble."""
        return "ensemble", self.params.model_dump(mode="json")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(N, num_outputs)`` (per position ``(N, C, L)``, per pixel ``(N, K, H, W)``) whose head gives
        the mean member output."""
        p = self.params
        assert isinstance(p, EnsembleParams)
        outs = torch.stack([m(x) for m in self.members])
        if p.kind == "binary":
            prob = torch.sigmoid(outs).mean(0).clamp(_EPS, 1 - _EPS)
            return torch.log(prob) - torch.log1p(-prob)
        if p.kind == "multiclass":
            return torch.log(torch.softmax(outs, dim=-1).mean(0).clamp_min(_EPS))
        if p.kind == "positions" or (p.kind == "segmentation" and outs.shape[2] > 1):
            # per-position / per-pixel class scores (N, C, ...): average the class probabilities
            return torch.log(torch.softmax(outs, dim=2).mean(0).clamp_min(_EPS))
        if p.kind == "segmentation":  # one foreground logit per pixel, shifted to the ensemble's threshold
            prob = torch.sigmoid(outs).mean(0).clamp(_EPS, 1 - _EPS)
            logit = torch.log(prob) - torch.log1p(-prob)
            return logit if p.threshold == 0.5 else logit - math.log(p.threshold / (1.0 - p.threshold))
        return outs.mean(0)

    def member_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Raw scores of every member ``(size, N, num_outputs)`` (for spread / uncertainty)."""
        return torch.stack([m(x) for m in self.members])
