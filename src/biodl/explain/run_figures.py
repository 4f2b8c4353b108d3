"""Data-type specific figures of a run's report: explanations of the trained model on evaluation rows.

One function per data type in :data:`RUN_FIGURES` (atom attributions of molecules; first-layer filters,
predicted masks and a feature embedding of images). They live here, not in the data readers, because
they run the model: the data layer stays free of models and explanations. A data type without an entry
falls back to its modality's own :meth:`~biodl.data.base.Modality.report_figures` (default: none).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from biodl.data.base import LoadedData, Modality
from biodl.data.molecule.parse import mols_from_smiles

__all__ = ["RUN_FIGURES", "image_figures", "molecule_figures", "run_figures"]

FigureFn = Callable[[Any, torch.nn.Module, np.ndarray, LoadedData, np.ndarray, np.ndarray, Path], dict[str, Path]]


def run_figures(
    modality: Modality,
    model: torch.nn.Module,
    X_model: np.ndarray,
    data: LoadedData,
    rows: np.ndarray,
    y_pred: np.ndarray,
    figdir: Path,
) -> dict[str, Path]:
    """Report figures (caption → PNG) of ``model`` on the evaluation ``rows`` for ``modality``'s data type.

    Parameters
    ----------
    X_model
        ``(N, ...)`` all rows as the model takes them.
    rows
        Indices of the evaluation rows (test, else validation).
    y_pred
        ``(N, ...)`` predictions of every row.
    """
    fn = RUN_FIGURES.get(getattr(modality, "name", ""))
    if fn is None:
        return modality.report_figures(model, X_model, data, rows, y_pred, figdir)
    return fn(modality, model, X_model, data, rows, y_pred, figdir)


def molecule_figures(
    modality: Any,
    model: torch.nn.Module,
    X_model: np.ndarray,
    data: LoadedData,
    rows: np.ndarray,
    y_pred: np.ndarray,
    figdir: Path,
) -> dict[str, Path]:
    """Per-atom attributions of the first target for four evaluation molecules."""
    from biodl.explain.molecule import draw_attributions, mixed_graph_attributions, vector_attributions

    pick = np.asarray(rows)[:4]
    if len(pick) == 0:
        return {}
    try:
        mols = mols_from_smiles(list(data.X[pick]))
        if getattr(modality, "uses_image", False):
            from biodl.explain.molecule_image import image_attributions

            weights = image_attributions(model, X_model[pick], mols, modality.grid, 0)
        elif modality.uses_graph:  # D-MPNNs, and dense networks on the graphs' descriptor slots (auto's average)
            weights = [w for w, _ in mixed_graph_attributions(model, X_model[pick], mols, modality.featurizers, 0)]
        else:
            weights = [w for w, _ in vector_attributions(model, X_model[pick], mols, modality.featurizers, 0)]
        paths = [draw_attributions(m, w, figdir / f"atoms_{i}.png", size=300) for i, (m, w) in enumerate(zip(mols, weights))]
        return {"Atom attributions, first target (green raises, red lowers the output)": tile_images(paths, figdir / "atoms.png")}
    except Exception as exc:  # drawing must never fail a finished run
        print(f"note: atom attribution figure skipped ({type(exc).__name__}: {exc})")
        return {}


def image_figures(
    modality: Any,
    model: torch.nn.Module,
    X_model: np.ndarray,
    data: LoadedData,
    rows: np.ndarray,
    y_pred: np.ndarray,
    figdir: Path,
) -> dict[str, Path]:
    """Overlays of a few predicted masks (segmentation), first-layer filters and a 2-D embedding
    of penultimate-layer features coloured by label (classification)."""
    from biodl.explain import visual

    figs: dict[str, Path] = {}
    rows = np.asarray(rows)
    if len(rows) == 0:
        return figs
    try:
        figs["First-layer filters"] = visual.plot_first_layer_filters(model, figdir / "first_layer_filters.png")
    except (StopIteration, AttributeError, RuntimeError):
        pass
    if modality.segmentation:
        pick = rows[:4]
        truth = data.targets.y[pick] if data.targets is not None else None
        figs["Predicted masks (evaluation images)"] = visual.plot_segmentation_overlays(
            data.X[pick], truth, y_pred[pick], figdir / "segmentation_overlays.png", ids=[str(i) for i in data.ids[pick]]
        )
        return figs
    if hasattr(model, "embed") and data.targets is not None and data.targets.kind in ("binary", "multiclass"):
        pick = rows[:1000]
        feats = visual.penultimate_features(model, X_model[pick])
        coords, method = visual.embed_2d(feats)
        t = data.targets
        classes = t.classes or ["0", "1"]
        if t.kind == "multiclass":
            labels = [classes[int(v)] if v >= 0 else "?" for v in t.y[pick]]
        else:
            labels = [classes[int(v)] if not np.isnan(v) else "?" for v in t.y[pick, 0]]
        figs[f"Penultimate-layer features ({method}, evaluation images)"] = visual.plot_embedding(
            coords, labels, figdir / "embedding.png", method=method
        )
    return figs


def tile_images(paths: list[Path], out: Path) -> Path:
    """Side-by-side montage of PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(paths), figsize=(3 * len(paths), 3), squeeze=False)
    for ax, p in zip(axes[0], paths):
        ax.imshow(mpimg.imread(p))
        ax.set_axis_off()
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


#: Report figures by data type name.
RUN_FIGURES: dict[str, FigureFn] = {"molecule": molecule_figures, "image": image_figures}
