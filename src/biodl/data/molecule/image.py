"""Molecules drawn as images on a fixed grid (Chemception, Goh et al., 2017).

Every molecule is laid out in 2-D by RDKit (:func:`rdkit.Chem.rdDepictor.Compute2DCoords`),
centred on the middle of its bounding box and drawn on a ``size × size`` grid of
``resolution`` Å per pixel (80 × 80 at 0.5 Å: a 40 Å window). The "engineered" 4-channel
image has

====  ===============================================================================
0     bond order on the pixels of each bond's line (1, 1.5 aromatic, 2, 3)
1     atomic number at each atom's pixel
2     Gasteiger partial charge at each atom's pixel
3     hybridisation at each atom's pixel (1 sp, 2 sp², 3 sp³, 4 sp³d, 5 sp³d², 0 other)
====  ===============================================================================

Atom ``a`` with centred coordinates ``(x, y)`` sits at pixel
``(row, col) = (round(y / resolution) + size // 2, round(x / resolution) + size // 2)``.

Molecules wider than the grid are drawn scaled down to fit (the scale is returned, and the
molecule type lists such rows in ``changed_rows.csv``) or refused, as
``data.molecule.grid_oversize`` says. Layouts are deterministic (fixed RDKit settings), so the
same SMILES always gives the same image: a saved model re-draws its inputs from SMILES.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from biodl.errors import DataError

#: Image channels, in order.
CHANNELS: tuple[str, ...] = ("bond_order", "atomic_number", "gasteiger_charge", "hybridization")
_HYBRID = {"SP": 1.0, "SP2": 2.0, "SP3": 3.0, "SP3D": 4.0, "SP3D2": 5.0}


@dataclass(frozen=True)
class GridSpec:
    """The drawing grid: ``size`` pixels a side, ``resolution`` Å per pixel."""

    size: int = 80
    resolution: float = 0.5

    @property
    def centre(self) -> int:
        """Pixel index of the origin."""
        return self.size // 2

    @property
    def max_extent(self) -> float:
        """Largest centred half-width (Å) that still lands on the grid on both sides."""
        return (self.size // 2 - 1) * self.resolution


def layout(mol: Any) -> np.ndarray:
    """Centred 2-D coordinates ``(n_atoms, 2)`` in Å (RDKit depiction; bounding-box centre at 0)."""
    from rdkit import Chem
    from rdkit.Chem import rdDepictor

    m = Chem.Mol(mol)
    rdDepictor.SetPreferCoordGen(False)
    rdDepictor.Compute2DCoords(m, canonOrient=True)
    xy = np.asarray(m.GetConformer().GetPositions(), dtype=np.float64)[:, :2]
    if len(xy) == 0:
        return xy
    return xy - (xy.min(axis=0) + xy.max(axis=0)) / 2.0


def fit_scale(xy: np.ndarray, grid: GridSpec) -> float:
    """1.0 when the centred coordinates fit the grid, else the factor that shrinks them to fit."""
    extent = float(np.abs(xy).max()) if len(xy) else 0.0
    return 1.0 if extent <= grid.max_extent else grid.max_extent / extent


def atom_pixels(xy: np.ndarray, grid: GridSpec, scale: float = 1.0) -> np.ndarray:
    """``(n_atoms, 2)`` integer ``(row, col)`` pixel of each atom."""
    p = np.rint(xy * scale / grid.resolution).astype(np.int64) + grid.centre
    return p[:, ::-1].copy()


def _line(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    n = int(np.abs(q - p).max()) + 1
    t = np.linspace(0.0, 1.0, max(n, 2) * 2)
    return np.unique(np.rint(p[None, :] + t[:, None] * (q - p)[None, :]).astype(np.int64), axis=0)


def atom_values(mol: Any) -> np.ndarray:
    """``(n_atoms, 3)``: atomic number, Gasteiger charge (non-finite → 0), hybridisation code."""
    from rdkit.Chem import rdPartialCharges

    from biodl.data.molecule.parse import quiet_rdkit

    with quiet_rdkit():
        rdPartialCharges.ComputeGasteigerCharges(mol)
    out = np.zeros((mol.GetNumAtoms(), 3), dtype=np.float32)
    for a in mol.GetAtoms():
        q = float(a.GetDoubleProp("_GasteigerCharge")) if a.HasProp("_GasteigerCharge") else 0.0
        out[a.GetIdx()] = (a.GetAtomicNum(), q if np.isfinite(q) else 0.0, _HYBRID.get(str(a.GetHybridization()), 0.0))
    return out


def draw(mol: Any, grid: GridSpec, *, oversize: str = "scale") -> tuple[np.ndarray, float, np.ndarray]:
    """One molecule → ``(image (4, size, size) float32, scale, atom pixels (n_atoms, 2))``.

    ``oversize="error"`` raises :class:`DataError` for a molecule wider than the grid.
    """
    xy = layout(mol)
    scale = fit_scale(xy, grid)
    if scale < 1.0 and oversize == "error":
        from rdkit import Chem

        raise DataError(
            f"molecule {Chem.MolToSmiles(mol)} spans {2 * np.abs(xy).max():.1f} Å, more than the "
            f"{grid.size * grid.resolution:g} Å grid (data.molecule.grid_oversize=scale draws it scaled down)"
        )
    px = atom_pixels(xy, grid, scale)
    img = np.zeros((len(CHANNELS), grid.size, grid.size), dtype=np.float32)
    for b in mol.GetBonds():
        order = float(b.GetBondTypeAsDouble())
        pts = _line(px[b.GetBeginAtomIdx()], px[b.GetEndAtomIdx()])
        img[0, pts[:, 0], pts[:, 1]] = np.maximum(img[0, pts[:, 0], pts[:, 1]], order)
    vals = atom_values(mol)
    for c in range(3):
        img[1 + c, px[:, 0], px[:, 1]] = vals[:, c]
    return img, scale, px


def draw_many(mols: Sequence[Any], grid: GridSpec, *, oversize: str = "scale", dtype: Any = np.float16) -> np.ndarray:
    """Molecules → images ``(N, 4, size, size)`` (float16 by default: half the memory; the model casts)."""
    out = np.zeros((len(mols), len(CHANNELS), grid.size, grid.size), dtype=dtype)
    for i, m in enumerate(mols):
        out[i] = draw(m, grid, oversize=oversize)[0]
    return out


def oversized(mols: Sequence[Any], grid: GridSpec) -> list[tuple[int, float]]:
    """``[(index, scale), ...]`` of the molecules wider than the grid."""
    out = []
    for i, m in enumerate(mols):
        s = fit_scale(layout(m), grid)
        if s < 1.0:
            out.append((i, s))
    return out


class RandomRotation:
    """Training augmentation: every image rotated by its own random angle about the grid centre.

    Nearest-pixel sampling keeps the channel values exact (no blending of atomic numbers);
    input ``(N, 4, H, W)`` → float32 ``(N, 4, H, W)``.
    """

    def __init__(self, max_degrees: float = 180.0) -> None:
        self.max_degrees = float(max_degrees)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = x.float()
        n = x.shape[0]
        theta = (torch.rand(n, generator=generator) * 2 - 1) * np.deg2rad(self.max_degrees)
        c, s = torch.cos(theta), torch.sin(theta)
        zero = torch.zeros_like(c)
        mat = torch.stack([torch.stack([c, -s, zero], 1), torch.stack([s, c, zero], 1)], 1).to(x.device)
        grid = torch.nn.functional.affine_grid(mat, list(x.shape), align_corners=False)
        return torch.nn.functional.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
