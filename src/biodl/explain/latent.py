"""Explanations of the two-step multi-label learner (:class:`~biodl.multilabel.twostep.TwoStepLearner`).

The learner lives with the models (:mod:`biodl.multilabel`); explaining it needs LIME, so it lives here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from biodl.errors import DataError
from biodl.explain.lime import LimeImage
from biodl.multilabel.twostep import TwoStepLearner

__all__ = ["explain_image_latent"]


def explain_image_latent(
    learner: TwoStepLearner, image: np.ndarray | torch.Tensor, *, unit: int | None = None, **lime_kwargs: Any
) -> tuple[int, np.ndarray]:
    """LIME superpixel weights ``(H, W)`` for the latent unit ``unit`` (default: the largest predicted) of one image.

    Reuses :class:`biodl.explain.lime.LimeImage` on the step-2 network, whose outputs are the
    latent labels; pair the unit with :func:`biodl.multilabel.hierarchy.unit_labels` to name the
    label set the highlighted superpixels support.
    """
    if learner.regressor is None:
        raise RuntimeError("fit() first")
    x = torch.as_tensor(np.asarray(image, dtype=np.float32))
    if x.ndim != 3:
        raise DataError(f"expected one image (C, H, W), got shape {tuple(x.shape)}")
    if unit is None:
        unit = int(np.argmax(learner.predict_latent(x[None].numpy())[0]))
    weights = LimeImage(learner.regressor, **lime_kwargs).attribute(x[None], target=unit)
    return unit, weights[0, 0].numpy()
