"""The ``model`` section: the architecture name and its own parameters (checked against the model's ``Params``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ModelConfig(BaseModel):
    """Architecture name plus that architecture's own typed parameters.

    The parameters are validated against the registered model's ``Params`` class, so
    ``model.hidden_sizes`` is checked for ``mlp`` and rejected (with a suggestion) for a model
    that has no such parameter. ``name: null`` picks the data type's default model: ``auto`` (a small
    portfolio of candidate networks chosen on validation) for data types that declare one, else one
    architecture. ``name: auto`` trains the data type's candidates within ``train.time_budget``.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=False)

    name: str | None = None

    def params(self) -> dict[str, Any]:
        """The architecture parameters (everything but ``name``)."""
        return dict(self.model_extra or {})


#: ``model.name`` of the portfolio of candidate networks chosen on validation (:mod:`biodl.experiment.portfolio`).
AUTO = "auto"
