"""Images as bags of tiles: a grid of square tiles per image, optionally only tiles with foreground,
or one square crop per object (cell, nucleus: a connected component of the image's foreground).

One image is one bag with the image's label (class folders, a table of image paths with label
columns, or MedMNIST-style NPZ arrays). Images may differ in size: a larger image is a larger bag.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biodl.data.image import sources
from biodl.data.targets import Targets, encode_targets
from biodl.errors import DataError


@dataclass
class ImageBags:
    """Tiles of each image and where they came from.

    Attributes
    ----------
    tiles
        Per image ``(K_i, C, t, t)`` float32 tiles.
    positions
        Per image ``(K_i, 2)`` top-left corners ``(y, x)`` of the tiles.
    ids, files
        Image identifiers and files (empty strings for NPZ rows).
    image_sizes
        ``(H, W)`` of each image.
    """

    tiles: list[np.ndarray]
    positions: list[np.ndarray]
    ids: list[str]
    files: list[str]
    image_sizes: list[tuple[int, int]]
    targets: Targets | None
    groups: np.ndarray | None
    parts: np.ndarray | None


def otsu_foreground(img: np.ndarray) -> np.ndarray:
    """``(H, W)`` foreground of a ``(C, H, W)`` image: the minority side of Otsu's threshold of the
    channel mean (bright nuclei on a dark background, or dark objects on a bright one)."""
    from skimage.filters import threshold_otsu

    grey = img.mean(axis=0)
    if float(grey.max()) == float(grey.min()):
        return np.zeros(grey.shape, dtype=bool)
    above = grey > threshold_otsu(grey)
    return above if above.mean() <= 0.5 else ~above


def tile_image(
    img: np.ndarray, size: int, stride: int | None = None, foreground: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``(C, H, W)`` into a grid of ``size`` × ``size`` tiles.

    Images smaller than a tile are padded (edge values) to one tile; a last partial row/column of
    tiles is shifted inwards so the whole image is covered. With ``foreground`` only tiles whose
    foreground fraction (:func:`otsu_foreground`) is at least that are kept.

    Returns
    -------
    tiles, positions
        ``(K, C, size, size)`` and ``(K, 2)`` top-left corners.
    """
    c, h, w = img.shape
    if h < size or w < size:
        ph, pw = max(0, size - h), max(0, size - w)
        img = np.pad(img, ((0, 0), (0, ph), (0, pw)), mode="edge")
        h, w = img.shape[1:]
    step = stride or size

    def starts(n: int) -> list[int]:
        s = list(range(0, n - size + 1, step))
        if s[-1] + size < n:
            s.append(n - size)
        return s

    pos = np.array([(y, x) for y in starts(h) for x in starts(w)], dtype=np.int64)
    if foreground is not None:
        fg = otsu_foreground(img)
        frac = np.array([fg[y : y + size, x : x + size].mean() for y, x in pos])
        pos = pos[frac >= foreground - 1e-9] if foreground > 0 else pos
    tiles = np.stack([img[:, y : y + size, x : x + size] for y, x in pos]) if len(pos) else np.zeros((0, c, size, size))
    return tiles.astype(np.float32, copy=False), pos


def object_crops(img: np.ndarray, size: int, min_area: int = 1) -> tuple[np.ndarray, np.ndarray, int]:
    """One ``size`` × ``size`` crop per object of ``(C, H, W)``: the connected components (8-connected)
    of :func:`otsu_foreground`, touching objects split by a watershed of the distance transform (seeds
    at least ``size // 4`` pixels apart), each crop centred on the object's centroid and shifted
    inwards at the image border (images smaller than a crop are edge-padded first).

    Returns
    -------
    crops, positions, small
        ``(K, C, size, size)``, ``(K, 2)`` top-left corners (in reading order of the centroids), and
        the number of objects skipped for having fewer than ``min_area`` pixels.
    """
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.measure import label, regionprops
    from skimage.segmentation import watershed

    c, h, w = img.shape
    if h < size or w < size:
        img = np.pad(img, ((0, 0), (0, max(0, size - h)), (0, max(0, size - w))), mode="edge")
        h, w = img.shape[1:]
    fg = otsu_foreground(img)
    components = label(fg, connectivity=2)
    dist = ndimage.distance_transform_edt(fg)
    peaks = peak_local_max(dist, min_distance=max(1, size // 4), labels=components, exclude_border=False)
    markers = np.zeros_like(components)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    regions = regionprops(watershed(-dist, markers, mask=fg) if len(peaks) else components)
    kept = [r for r in regions if r.area >= min_area]
    centres = sorted((float(cy), float(cx)) for cy, cx in (r.centroid for r in kept))
    half = size // 2
    pos = np.array(
        [(min(max(round(cy) - half, 0), h - size), min(max(round(cx) - half, 0), w - size)) for cy, cx in centres], dtype=np.int64
    ).reshape(-1, 2)
    crops = np.stack([img[:, y : y + size, x : x + size] for y, x in pos]) if len(pos) else np.zeros((0, c, size, size))
    return crops.astype(np.float32, copy=False), pos, len(regions) - len(kept)


def cut_instances(img: np.ndarray, opts: Any, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """The instances of one ``(C, H, W)`` image as ``data.bags`` asks (grid tiles or object crops):
    ``(K, C, t, t)``, ``(K, 2)`` corners and the number of objects skipped as too small.

    Raises :class:`DataError` naming the image when it yields no instance (an empty bag).
    """
    if opts.crops == "objects":
        t, p, small = object_crops(img, opts.tile_size, opts.min_object_area)
        if not len(t):
            raise DataError(
                f"{name}: no foreground object of at least {opts.min_object_area} pixels (an empty bag; {small} smaller "
                "object(s)); lower data.bags.min_object_area or use data.bags.crops: grid"
            )
        return t, p, small
    t, p = tile_image(img, opts.tile_size, opts.tile_stride, opts.foreground)
    if not len(t):
        raise DataError(
            f"{name}: no tile of {opts.tile_size}×{opts.tile_size} has a foreground fraction of "
            f"{opts.foreground} (an empty bag); lower data.bags.foreground (--bag-foreground)"
        )
    return t, p, 0


def load_image_bags(
    image: Any, paths: list[str], *, require_targets: bool, classes: list[str] | None, opts: Any
) -> tuple[ImageBags, dict[str, Any]]:
    """Read images (through the ``image`` data type's sources and readers) and tile them.

    Raises :class:`DataError` naming an image that yields no tile (an empty bag).
    """
    cfg = image.cfg
    layout = image.opts.layout if image.opts.layout != "auto" else sources.detect_layout(paths, None)
    if layout == "npz":
        src = sources.npz_arrays(image._single(paths, "an NPZ file"), image._npz_parts(paths[0], classes))
    elif layout == "table":
        src = sources.path_table(
            image._single(paths, "a table"), image.opts.image_column, list(cfg.target_columns), cfg.group_column
        )
    elif layout == "folders":
        src = sources.class_folders(image._single(paths, "a folder of class folders"))
    elif layout == "files":
        files, ids = sources.image_files(paths)
        if require_targets:
            raise DataError(f"{paths[0]}: images without labels; give class folders, a table of image paths, or an NPZ file")
        import pandas as pd

        src = sources.Source(files, ids, pd.DataFrame(index=range(len(files))), [], "files")
    else:
        raise DataError(f"image bags cannot read layout {layout!r}")
    image.layout = layout
    images = image._images(src)
    if image.opts.size is not None:
        images = [image._fit_size(img, image._name(src, i)) for i, img in enumerate(images)]
    tiles, positions, small = [], [], 0
    for i, img in enumerate(images):
        t, p, n_small = cut_instances(img, opts, image._name(src, i))
        tiles.append(t)
        positions.append(p)
        small += n_small
    targets = None
    labels = src.label_columns
    has_labels = bool(labels) and all(c in src.frame.columns for c in labels)
    if require_targets or has_labels:
        if not has_labels:
            raise DataError("no labels found (class folders, a label column, or NPZ labels)")
        targets = encode_targets(src.frame, labels, cfg.task or "classification", source=image._source_name(src), classes=classes)
    bags = ImageBags(
        tiles,
        positions,
        [str(i) for i in src.ids],
        [str(f) for f in src.files] or [""] * len(images),
        [(int(img.shape[1]), int(img.shape[2])) for img in images],
        targets,
        src.groups,
        src.parts,
    )
    info = {"layout": layout, "images (bags)": len(images), "tile size": opts.tile_size, "tiles": int(sum(len(t) for t in tiles))}
    padded = sum(min(img.shape[1:]) < opts.tile_size for img in images)
    if padded:  # tile_image / object_crops pad such images (edge values) to one tile
        side = f"{opts.tile_size}×{opts.tile_size}"
        note = f"{padded} of {len(images)} image(s) smaller than a {side} tile, padded with edge values"
        info["padded images"] = note
        print(f"note: {note} (a smaller --bag-tile-size keeps several instances per image)", file=sys.stderr)
    if opts.crops == "objects":
        info["instances"] = f"one crop per foreground object (Otsu); {small} object(s) under {opts.min_object_area} px skipped"
    return bags, info


def paste_weights(positions: np.ndarray, weights: Sequence[float], size: int, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` map of instance weights: each pixel the largest weight of the tiles covering it
    (NaN where no kept tile covers it)."""
    out = np.full(shape, np.nan, dtype=np.float32)
    for (y, x), wgt in zip(positions, weights):
        region = out[y : y + size, x : x + size]
        np.fmax(region, np.float32(wgt), out=region)
    return out


def read_bag_image(path: str) -> np.ndarray | None:
    """The ``(C, H, W)`` image of a bag for overlays, or ``None`` for NPZ rows."""
    if not path or not Path(path).is_file():
        return None
    from biodl.data.image.io import read_image

    return read_image(Path(path))
