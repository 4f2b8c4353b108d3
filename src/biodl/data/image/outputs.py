"""Files written for segmentation predictions: mask PNGs and probability-map TIFFs at the original image sizes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from biodl.data.image.io import as_hard, save_mask_png


def _file_name(ident: str, suffix: str) -> str:
    return Path(str(ident).replace("/", "__").replace("\\", "__")).with_suffix(suffix).name


def write_mask_pngs(
    probs: np.ndarray,
    out_dir: Path,
    ids: Sequence[str],
    sizes: Sequence[tuple[int, int]],
    values: np.ndarray,
    threshold: float = 0.5,
) -> list[Path]:
    """Write predicted masks ``probs`` ``(N, K, H, W)`` cropped to ``sizes`` with pixel ``values`` per class."""
    hard = as_hard(probs, threshold)
    written = []
    for i, ident in enumerate(ids):
        h, w = sizes[i] if i < len(sizes) else hard.shape[-2:]
        path = out_dir / _file_name(ident, ".png")
        save_mask_png(values[hard[i, :h, :w]], path)
        written.append(path)
    return written


def write_probability_tiffs(probs: np.ndarray, out_dir: Path, ids: Sequence[str], sizes: Sequence[tuple[int, int]]) -> list[Path]:
    """Write probability maps as float32 TIFF files cropped to ``sizes``; returns their paths.

    One output map (binary masks): ``(H, W)``, the probability of the foreground class; else
    ``(K, H, W)``, one map per class in the order of the model's classes.
    """
    import tifffile

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, ident in enumerate(ids):
        h, w = sizes[i] if i < len(sizes) else probs.shape[-2:]
        p = np.asarray(probs[i, :, :h, :w], dtype=np.float32)
        path = out_dir / _file_name(ident, ".tif")
        tifffile.imwrite(path, p[0] if p.shape[0] == 1 else p)
        written.append(path)
    return written
