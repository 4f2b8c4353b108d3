"""Request and response bodies of the REST API (they make up the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

InputRecord = str | list[Any] | dict[str, Any]


class PredictRequest(BaseModel):
    """``POST /predict`` body."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"inputs": ["ACGTACGTAC"]}, {"inputs": [[0.1, 2.0, 3.5]]}]},
    )

    inputs: list[InputRecord] = Field(
        min_length=1,
        description="records of the model's data type: sequence or SMILES strings, feature rows "
        "(lists or column → value objects) or base64-encoded images",
    )
    probability_maps: bool = Field(
        default=False, description="segmentation models: also return per-class probability maps (8-bit PNG, base64)"
    )


class Prediction(BaseModel):
    """The prediction for one input."""

    label: str | None = Field(default=None, description="predicted class (single-column classification)")
    probabilities: dict[str, float | None] | None = Field(default=None, description="class or task → probability")
    values: dict[str, float | None] | None = Field(default=None, description="target → predicted value (regression)")
    mask_png_base64: str | None = Field(
        default=None,
        description="segmentation: the predicted label mask, a PNG (base64) of the input's height × width whose pixel "
        "values are the training masks' values (0/255 for thresholded binary masks)",
    )
    height: int | None = Field(default=None, description="segmentation: mask height (the input image's)")
    width: int | None = Field(default=None, description="segmentation: mask width (the input image's)")
    class_fractions: dict[str, float] | None = Field(default=None, description="segmentation: share of pixels per class")
    length: int | None = Field(default=None, description="per-position models: the sequence's length")
    position_probabilities: dict[str, list[float | None]] | None = Field(
        default=None,
        description="per-position models: class → one probability per position (``label`` is then the predicted "
        "label string, one class symbol per position)",
    )
    probability_maps_png_base64: dict[str, str] | None = Field(
        default=None,
        description="segmentation, when requested: class → probability map as an 8-bit grey PNG (pixel = round(255 · p))",
    )
    instances: list[str] | None = Field(
        default=None,
        description="multiple-instance models: the bag's instances (image bags: tile/crop corners 'y,x'; tables: 1, 2, ...)",
    )
    instance_weights: list[float] | None = Field(
        default=None, description="multiple-instance models: each instance's weight in the bag prediction (pooling share)"
    )
    notes: list[str] | None = Field(
        default=None,
        description="what was changed about this input before prediction (e.g. a molecule wider than Chemception's "
        "image grid, drawn scaled down as in training); absent when nothing was",
    )


class PredictResponse(BaseModel):
    """``POST /predict`` answer: one prediction per input, in order."""

    predictions: list[Prediction]


class ExplainRequest(BaseModel):
    """``POST /explain`` body."""

    model_config = ConfigDict(extra="forbid")

    input: InputRecord = Field(description="one record, as in /predict")
    target: int | str | None = Field(
        default=None, description="output to explain: class name or output index (default: the predicted class, else 0)"
    )
    method: str = Field(default="gradient_x_input", description="explanation method (see biodl.serve.explain.EXPLAINERS)")


class ExplainResponse(BaseModel):
    """``POST /explain`` answer: gradient × input saliency of one input."""

    method: str = Field(description="attribution method")
    target: str = Field(description="the explained output (class or target name)")
    target_index: int
    score: float = Field(description="raw score (logit) of the explained output")
    prediction: Prediction
    shape: list[int] = Field(description="shape of the attribution array (one model input)")
    attributions: list[Any] = Field(description="nested lists shaped like one model input")
    features: list[str] | None = Field(default=None, description="names of the input features (feature rows)")
    image_png_base64: str = Field(description="a picture of the attributions, PNG, base64-encoded")


class Health(BaseModel):
    """``GET /health`` answer."""

    status: str
    model: str
    engine: str
    requests: int
    model_calls: int
    rows: int
    largest_batch: int


class ErrorBody(BaseModel):
    """Body of every 4xx answer."""

    detail: str | list[Any]
