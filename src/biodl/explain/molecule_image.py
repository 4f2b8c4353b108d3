"""Per-atom explanations of networks on molecule images (Chemception): Grad-CAM on the grid, mapped to atoms.

Grad-CAM (Selvaraju et al., ICCV 2017) on the network's last convolutional maps ``A`` (``(C, h, w)``):
the map ``sum_c mean(dy/dA_c) · A_c`` is upsampled (bilinear) to the image grid. It is kept signed
(no ReLU), so that atoms lowering the output show as negative. Every drawn pixel (atom or bond) belongs
to the nearest atom; an atom's score is the sum of the map over its pixels, so bonds share their
weight between their two ends. The scores are drawn on the molecule with RDKit's similarity maps by
:func:`biodl.explain.molecule.draw_attributions`.

Example
-------
>>> from biodl.bundle import load
>>> res = explain_molecules(load("runs/tox21_chemception"), ["c1ccccc1O"], target="SR-p53", out_dir="figs")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from biodl.data.molecule.image import GridSpec, draw
from biodl.errors import ConfigError
from biodl.explain._common import undo_view
from biodl.models.chemception import ROT90_VIEWS, rotate90


def _members(model: nn.Module) -> list[nn.Module]:
    members = getattr(model, "members", None)
    return list(members) if members is not None else [model]


def gradcam_maps(model: nn.Module, X: np.ndarray, target: int) -> np.ndarray:
    """Signed Grad-CAM maps ``(N, S, S)`` at the image resolution (averaged over ensemble members and,
    for ``tta: rot90`` networks, over the four rotations, each map turned back onto the image).

    Parameters
    ----------
    model
        A network with ``feature_maps(x)`` and ``classify(maps)`` (:class:`biodl.models.chemception.Chemception`).
    X
        ``(N, 4, S, S)`` molecule images.
    """
    x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    total: np.ndarray | None = None
    members = _members(model)
    for m in members:
        feature_maps, classify = getattr(m, "feature_maps", None), getattr(m, "classify", None)
        if not (callable(feature_maps) and callable(classify)):
            raise ConfigError("Grad-CAM on molecule images needs a network with feature maps (model 'chemception')")
        m.eval()
        # with ``tta: rot90`` the score is the mean over the four rotations: so is its map, each view's
        # map turned back onto the upright image
        views = ROT90_VIEWS if getattr(getattr(m, "params", None), "tta", "none") == "rot90" else ROT90_VIEWS[:1]
        for transpose, dims in views:

            def view(v: torch.Tensor, transpose: bool = transpose, dims: tuple[int, ...] = dims) -> torch.Tensor:
                return rotate90(v, transpose, dims)

            with torch.enable_grad():
                maps = feature_maps(view(x)).detach().requires_grad_(True)
                out = classify(maps)
                (grad,) = torch.autograd.grad(out[:, target].sum(), maps)
            cam = (grad.mean(dim=(2, 3), keepdim=True) * maps).sum(dim=1, keepdim=True)
            cam = F.interpolate(cam, size=tuple(X.shape[-2:]), mode="bilinear", align_corners=False)
            arr = undo_view(view, cam.detach())[:, 0].numpy().astype(np.float64) / len(views)
            total = arr if total is None else total + arr
    assert total is not None
    return total / len(members)


def pixel_owners(image: np.ndarray, atom_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drawn pixels of one image and the atom each belongs to (nearest atom pixel).

    Returns ``(pixels (P, 2) row/col, owner (P,) atom index)``; atom pixels always belong to their atom.
    """
    drawn = np.argwhere(np.abs(image).sum(axis=0) > 0)
    pts = np.unique(np.concatenate([drawn, atom_px]), axis=0) if len(drawn) else atom_px
    d = ((pts[:, None, :] - atom_px[None, :, :]) ** 2).sum(axis=2)
    return pts, d.argmin(axis=1)


def atom_scores(cam: np.ndarray, image: np.ndarray, atom_px: np.ndarray) -> np.ndarray:
    """Sum of the map ``cam`` ``(S, S)`` over each atom's pixels → ``(n_atoms,)``."""
    pts, owner = pixel_owners(image, atom_px)
    w = np.zeros(len(atom_px))
    np.add.at(w, owner, cam[pts[:, 0], pts[:, 1]])
    return w


def image_attributions(model: nn.Module, X: np.ndarray, mols: Sequence[Any], grid: GridSpec, target: int) -> list[np.ndarray]:
    """Per-atom Grad-CAM scores ``[(n_atoms,), ...]`` of molecule images ``X`` drawn from ``mols``."""
    cams = gradcam_maps(model, X, target)
    out = []
    for i, mol in enumerate(mols):
        _, _, px = draw(mol, grid)
        out.append(atom_scores(cams[i], np.asarray(X[i], dtype=np.float32), px))
    return out
