"""Label hierarchies of a DNAE and explanations of two-step predictions.

Latent unit ``u`` of layer ``l`` is a non-negative combination of labels with weights
``(H_1 ⋯ H_l)[:, u]``; its top labels name it ("H1, Label 64: garlic, onion, chicken stock" in
the paper's Fig. 5). A prediction is explained by the latent units of the last layer that
contribute most to its top labels, each with its label set and its parent units one layer down.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.multilabel.dnae import DeepNonNegativeAutoencoder


def unit_labels(
    model: DeepNonNegativeAutoencoder, names: Sequence[str], layer: int, unit: int, top: int = 5
) -> list[tuple[str, float]]:
    """The ``top`` labels of latent ``unit`` in ``layer`` (1-based) with their weights."""
    w = model.cumulative()[layer - 1][:, unit]
    order = np.argsort(-w, kind="stable")[:top]
    return [(str(names[j]), float(w[j])) for j in order if w[j] > 0]


def hierarchy_table(model: DeepNonNegativeAutoencoder, names: Sequence[str], top: int = 5) -> pd.DataFrame:
    """One row per latent unit of every layer: ``layer, unit, top_labels, weights, parents``.

    ``parents`` are the 3 strongest units of the layer below (from ``H_l``), which makes the table
    a hierarchy: layer-2 units are built from layer-1 units, and so on.
    """
    if len(names) != model.n_labels:
        raise ValueError(f"{len(names)} label names for {model.n_labels} labels")
    cum = model.cumulative()
    hs = [h.detach().cpu().numpy() for h in model.weights()]
    rows: list[dict[str, Any]] = []
    for li, mat in enumerate(cum, start=1):
        for u in range(mat.shape[1]):
            col = mat[:, u]
            order = np.argsort(-col, kind="stable")[:top]
            parents = ""
            if li > 1:
                p = hs[li - 1][:, u]
                parents = ", ".join(f"H{li - 1}:{int(j)}" for j in np.argsort(-p, kind="stable")[:3] if p[j] > 0)
            rows.append(
                {
                    "layer": li,
                    "unit": u,
                    "top_labels": ", ".join(str(names[j]) for j in order if col[j] > 0),
                    "weights": ", ".join(f"{col[j]:.3g}" for j in order if col[j] > 0),
                    "active": int((col > 1e-6).sum()),
                    "parents": parents,
                }
            )
    return pd.DataFrame(rows)


def plot_hierarchy(model: DeepNonNegativeAutoencoder, names: Sequence[str], path: str | Path, max_labels: int = 60) -> Path:
    """Heat maps of ``H_1, H_1 H_2, ...`` (labels × units), one panel per layer; returns the PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cum = model.cumulative()
    shown = min(len(names), max_labels)
    order = np.argsort(-cum[0].sum(axis=1), kind="stable")[:shown]
    fig, axes = plt.subplots(1, len(cum), figsize=(3 + 2.5 * len(cum), 2 + 0.18 * shown), squeeze=False)
    for li, (ax, mat) in enumerate(zip(axes[0], cum), start=1):
        m = mat[order]
        im = ax.imshow(m / max(float(m.max()), 1e-12), aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"H1{'·…·H' + str(li) if li > 1 else ''} ({mat.shape[1]} units)", fontsize=9)
        ax.set_xlabel("latent unit")
        ax.set_yticks(range(shown))
        ax.set_yticklabels([str(names[j]) for j in order] if li == 1 else [], fontsize=7)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.6, label="weight (scaled per layer)")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


def explain_prediction(
    model: DeepNonNegativeAutoencoder, latent: np.ndarray, names: Sequence[str], *, top_labels: int = 5, top_units: int = 3
) -> dict[str, Any]:
    """Why a sample got its top labels: the last-layer units that drove them.

    Parameters
    ----------
    latent
        Predicted latent labels ``(k_L,)`` of one sample.

    Returns
    -------
    dict
        ``labels``: the top predicted ``(name, score)``; ``units``: per driving unit of layer ``L``
        its contribution to those labels, its label set and its parent units' label sets.
    """
    import torch

    z = np.asarray(latent, dtype=np.float32).reshape(1, -1)
    with torch.no_grad():
        scores = model.decode(torch.from_numpy(z)).numpy()[0]
    cum = model.cumulative()
    last = cum[-1]  # (p, k_L): decoded score = sum_u z_u * last[:, u]
    top = np.argsort(-scores, kind="stable")[:top_labels]
    contrib = (z[0][None, :] * last[top]).sum(axis=0)  # (k_L,)
    units = np.argsort(-contrib, kind="stable")[:top_units]
    L = len(cum)
    hs = [h.detach().cpu().numpy() for h in model.weights()]
    out_units = []
    for u in units:
        if contrib[u] <= 0:
            continue
        parents = []
        if L > 1:
            p = hs[L - 1][:, u]
            for j in np.argsort(-p, kind="stable")[:3]:
                if p[j] > 0:
                    parents.append({"layer": L - 1, "unit": int(j), "labels": unit_labels(model, names, L - 1, int(j))})
        out_units.append(
            {
                "layer": L,
                "unit": int(u),
                "contribution": float(contrib[u]),
                "labels": unit_labels(model, names, L, int(u)),
                "parents": parents,
            }
        )
    return {"labels": [(str(names[j]), float(scores[j])) for j in top], "units": out_units}


def format_explanation(expl: dict[str, Any]) -> str:
    """Readable text of :func:`explain_prediction` (the paper's "H1, Label 64: garlic, onion, ..." lines)."""
    lines = ["predicted: " + ", ".join(f"{n} ({s:.2f})" for n, s in expl["labels"])]
    for u in expl["units"]:
        lines.append(
            f"  H{u['layer']}, unit {u['unit']} (contribution {u['contribution']:.2f}): " + ", ".join(n for n, _ in u["labels"])
        )
        for p in u["parents"]:
            lines.append(f"    H{p['layer']}, unit {p['unit']}: " + ", ".join(n for n, _ in p["labels"]))
    return "\n".join(lines)
