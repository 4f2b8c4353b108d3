"""Model base class and registry.

Every architecture is one registered :class:`BiodlModel` subclass with a nested pydantic
``Params`` class (its typed hyper-parameters) and the uniform constructor
``Model(in_shape, num_outputs, params)``. Models return raw scores (logits for
classification) of shape ``(N, num_outputs)``; the task head (sigmoid, softmax, identity)
is applied by the training module and at prediction time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from biodl.registry import Registry


class ModelParams(BaseModel):
    """Base class of architecture parameters (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")
    #: Parameters added after bundles of this model were first saved, with the value that reproduces those
    #: bundles' networks; a saved bundle whose parameters lack such a key is rebuilt with it (a new default
    #: never changes how an older bundle loads).
    saved_before: ClassVar[Mapping[str, object]] = {}


class BiodlModel(nn.Module):
    """Base class of registered architectures.

    Parameters
    ----------
    in_shape
        Shape of one input example without the batch axis, e.g. ``(F,)`` for feature
        vectors or ``(4, L)`` for one-hot DNA.
    num_outputs
        Number of output units (tasks, or classes for multi-class classification).
    params
        The architecture's validated ``Params``.
    """

    Params: ClassVar[type[ModelParams]] = ModelParams
    #: Data types the architecture accepts.
    data_types: ClassVar[tuple[str, ...]] = ("tabular",)
    #: Experiment settings this architecture recommends (its paper's training recipe), as
    #: dotted config keys (``"train.optimizer": "rmsprop"``). They replace the schema's defaults
    #: only for keys the user did not set, and are validated like user values.
    config_defaults: ClassVar[Mapping[str, object]] = {}

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.num_outputs = int(num_outputs)
        self.params = params


MODELS: Registry[type[BiodlModel]] = Registry("model")

_DEFAULTS: dict[str, str] = {
    "tabular": "mlp",
    "sequence": "deepbind",
    "image": "cnn",
    "image:segmentation": "unet",
    "volume": "cnn3d",
    "volume:segmentation": "unet3d",
    "sequence:positions": "dilated-cnn",
    "molecule": "ffn",
    "tabular:reconstruction": "autoencoder",
    "cpg": "deepcpg",
    "multi": "deepcpg",
    "sequence:reconstruction": "conv_autoencoder",
    "image:reconstruction": "conv_autoencoder",
}


def default_model_name(data_type: str, task: str | None = None) -> str:
    """The architecture used when ``model.name`` is not given (``"type:task"`` entries win)."""
    return _DEFAULTS.get(f"{data_type}:{task}", _DEFAULTS.get(data_type, "mlp"))


def build_model(name: str, in_shape: tuple[int, ...], num_outputs: int, params: dict[str, Any] | None = None) -> BiodlModel:
    """Instantiate a registered architecture from plain parameters (validated)."""
    cls = MODELS[name]
    model = cls(in_shape, num_outputs, cls.Params.model_validate(params or {}))
    return model


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def example_input(model: BiodlModel, batch_size: int = 2) -> torch.Tensor:
    """A zero input of the model's shape, for tracing and shape checks."""
    return torch.zeros((batch_size, *model.in_shape))
