"""Model registry; importing this package registers every architecture."""

from biodl.models import mlp as _mlp  # noqa: F401  (registers "mlp")
from biodl.models.base import (
    MODELS,
    BiodlModel,
    ModelParams,
    build_model,
    count_parameters,
    default_model_name,
)

__all__ = ["MODELS", "BiodlModel", "ModelParams", "build_model", "count_parameters", "default_model_name"]
