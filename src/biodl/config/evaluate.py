"""The ``evaluate`` section (metrics, baselines, report) and the ``card`` section (model card texts)."""

from __future__ import annotations

from pydantic import Field

from biodl.config.base import _Section


class EvaluateConfig(_Section):
    """What is measured and reported."""

    metrics: list[str] | None = Field(default=None, description="metrics to compute (null: all that fit the task)")
    baselines: list[str] = Field(
        default_factory=lambda: ["linear", "random_forest"], description="classical baselines fitted on the same split"
    )
    report: bool = Field(default=True, description="write report.html")
    plots: bool = Field(default=True, description="write figures (learning curves, ROC/PR, confusion matrix ...)")
    select_threshold: str | None = Field(
        default=None,
        description="binary segmentation: choose the foreground probability threshold (0.2-0.8) that maximises this "
        "metric (dice, patch_f1, ...) on the validation split; null = 0.5 (model.threshold)",
    )


class CardConfig(_Section):
    """What the model card (``model/README.md``) says beyond what the run measures (all optional)."""

    name: str | None = Field(default=None, description="model name in a zoo (null: the run directory's name)")
    description: str | None = Field(default=None, description="one sentence: what the model predicts")
    license: str | None = Field(default=None, description="licence of the weights (SPDX id, e.g. cc-by-4.0, mit)")
    datasets: list[str] = Field(default_factory=list, description="names of the training data sets")
    data_license: str | None = Field(default=None, description="licence / terms of the training data")
    tags: list[str] = Field(default_factory=list, description="extra tags of the card's front matter")
    intended_use: str | None = Field(default=None, description="what the model is for (null: a sentence from the task)")
    limitations: list[str] = Field(default_factory=list, description="known limitations, one per item")
    citation: str | None = Field(default=None, description="how to cite the data / method")
    validation_rows: bool = Field(
        default=False,
        description="biodl zoo push/build: ship the validation split's inputs with the model (only when the data's "
        "licence allows redistribution), so anyone can check the card's validation metric",
    )
