"""Gradient × input saliency for one input, and a PNG picture of it.

The attribution of model input element ``x_i`` to output ``k`` is ``x_i · ∂s_k/∂x_i`` where
``s_k`` is the network's raw score (logit) for output ``k``, computed by PyTorch autograd on
the preprocessed input. It works for any data type: 1-D inputs (feature rows) are drawn as a
bar chart of the largest attributions, 2-D inputs (one-hot sequences ``(A, L)``) as a heat
map over positions, 3-D inputs (images ``(C, H, W)``) as a heat map of the channel sum.

Other methods (e.g. in-silico mutation maps for sequences) plug in through :data:`EXPLAINERS`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from biodl.registry import Registry

#: Bars shown for 1-D inputs.
TOP_FEATURES = 20


@dataclass
class Saliency:
    """Attributions for one input.

    Attributes
    ----------
    values
        Gradient × input, shaped like one model input.
    target
        The output index explained.
    score
        The raw score (logit) of that output.
    """

    values: np.ndarray
    target: int
    score: float


def gradient_x_input(model: nn.Module, x: np.ndarray, target: int) -> Saliency:
    """Gradient × input of output ``target`` for one preprocessed input ``x`` (no batch axis)."""
    model.eval()
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None].requires_grad_(True)
    with torch.enable_grad():
        scores = model(xt)
        score = scores[0, target]
        (grad,) = torch.autograd.grad(score, xt)
    values = (grad * xt).detach()[0].numpy().astype(np.float32)
    return Saliency(values, target, float(score.detach()))


#: A function giving attributions of one output for one preprocessed input: ``(model, x, target) -> Saliency``.
Explainer = Callable[[nn.Module, np.ndarray, int], Saliency]

#: Explanation methods offered by ``POST /explain`` (a data type can register more, e.g. mutation maps).
EXPLAINERS: Registry[Explainer] = Registry("explanation method")
EXPLAINERS.register("gradient_x_input")(gradient_x_input)


def _bar_chart(ax: object, values: np.ndarray, names: Sequence[str] | None) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    order = np.argsort(-np.abs(values))[:TOP_FEATURES][::-1]
    labels = [names[i] if names is not None and i < len(names) else f"feature {i}" for i in order]
    colours = ["#c0392b" if values[i] > 0 else "#2471a3" for i in order]
    ax.barh(range(len(order)), values[order], color=colours)
    ax.set_yticks(range(len(order)), labels, fontsize=7)
    ax.axvline(0.0, color="#555", linewidth=0.6)
    ax.set_xlabel("gradient × input")


def _heat_map(ax: object, values: np.ndarray, row_labels: Sequence[str] | None) -> object:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    lim = float(np.abs(values).max()) or 1.0
    image = ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    if row_labels is not None and len(row_labels) == values.shape[0]:
        ax.set_yticks(range(values.shape[0]), list(row_labels))
    ax.set_xlabel("position")
    return image


def saliency_png(
    saliency: Saliency, *, title: str, feature_names: Sequence[str] | None = None, row_labels: Sequence[str] | None = None
) -> bytes:
    """A PNG picture of the attributions (bar chart for 1-D, heat map for 2-D and 3-D inputs)."""
    from matplotlib.figure import Figure

    values = saliency.values
    fig = Figure(figsize=(7.0, 4.2 if values.ndim == 1 else 3.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if values.ndim <= 1:
        _bar_chart(ax, values.reshape(-1), feature_names)
    else:
        grid = values if values.ndim == 2 else values.reshape(values.shape[0], *values.shape[-2:]).sum(axis=0)
        image = _heat_map(ax, grid, row_labels if values.ndim == 2 else None)
        fig.colorbar(image, ax=ax, label="gradient × input")  # type: ignore[arg-type]
    ax.set_title(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
