"""Where volumes come from: NPZ arrays (MedMNIST 3-D), class folders of stacks, tables of stack
paths, stack files, and stacks paired with mask stacks — without reading any voxels.

A stack is a multi-page TIFF, an NPY array, or a folder of 2-D slices. A folder of TIFF files
is one stack of slices when its first file is a single plane, and a folder of stacks when it
holds several planes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from biodl.data.image import sources as image_sources
from biodl.data.image.io import list_images, natural_key, tiff_layout
from biodl.data.image.sources import Source
from biodl.data.volume.io import STACK_SUFFIXES
from biodl.errors import DataError

#: Parts of a MedMNIST NPZ file a saved model evaluates, most held-out first.
EVAL_PART_ORDER: tuple[str, ...] = ("test", "val", "train")


def is_slice_folder(folder: Path) -> bool:
    """A folder whose images are the 2-D slices of one stack (not a folder of stacks)."""
    files = list_images(folder)
    if not files:
        return False
    first = files[0]
    if first.suffix.lower() in (".tif", ".tiff"):
        return tiff_layout(first, str(first)).planes == 1
    if first.suffix.lower() == ".npy":
        return np.load(first, mmap_mode="r", allow_pickle=False).ndim == 2
    return True


def stacks_in(folder: Path) -> list[Path]:
    """Stacks inside ``folder``: stack files and sub-folders of slices (natural order)."""
    found = [
        p
        for p in folder.iterdir()
        if not p.name.startswith(".")
        and ((p.is_file() and p.suffix.lower() in STACK_SUFFIXES) or (p.is_dir() and is_slice_folder(p)))
    ]
    return sorted(found, key=lambda p: natural_key(p.name))


def detect_layout(paths: list[str], mask_dir: str | None) -> str:
    """``masks`` / ``npz`` / ``table`` / ``folders`` (classes) / ``files`` from the given paths."""
    if mask_dir:
        return "masks"
    if len(paths) == 1:
        p = Path(paths[0])
        suffix = p.suffix.lower()
        if suffix == ".npz":
            return "npz"
        if suffix in (".csv", ".tsv", ".txt"):
            return "table"
        if p.is_dir() and not is_slice_folder(p):
            subdirs = [d for d in p.iterdir() if d.is_dir() and not d.name.startswith(".")]
            if subdirs and all(not is_slice_folder(d) for d in subdirs) and not list_images(p):
                return "folders"
    return "files"


def stack_files(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Stacks given as files, slice folders or folders of stacks, with ids."""
    files: list[Path] = []
    ids: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir() and is_slice_folder(p):
            files.append(p)
            ids.append(p.name)
        elif p.is_dir():
            found = stacks_in(p)
            if not found:
                raise DataError(f"{p}: no stacks in this folder (multi-page TIFF, NPY, or sub-folders of 2-D slices)")
            files += found
            ids += [f.name if len(paths) == 1 else f"{p.name}/{f.name}" for f in found]
        elif p.is_file():
            if p.suffix.lower() not in STACK_SUFFIXES:
                raise DataError(f"{p}: not a stack (multi-page TIFF, NPY array, or a folder of 2-D slices)")
            files.append(p)
            ids.append(p.name)
        else:
            raise DataError(f"{p}: no such file or folder")
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"two stacks share the name {dup!r}; give them distinct names")
    return files, ids


def class_folders(root: str) -> Source:
    """One sub-folder per class holding that class's stacks; an empty class folder is an error."""
    return image_sources.class_folders(root, lister=stacks_in, what="stacks (multi-page TIFF, NPY, or folders of slices)")


def npz_parts_for_model(path: str) -> tuple[list[str] | None, str | None]:
    """Parts of a MedMNIST file a saved model reads: the most held-out one present (test, else val,
    else train); ``(None, None)`` for plain ``images`` files (all rows)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            present = [s for s in EVAL_PART_ORDER if f"{s}_images" in z.files]
    except (OSError, ValueError):
        return None, None  # reported by the reader
    if not present:
        return None, None
    return [present[0]], f"{present[0]}_images"


def stack_mask_pairs(paths: list[str], mask_dir: str, *, require_masks: bool) -> Source:
    """Stacks of ``paths`` paired with mask stacks in ``mask_dir`` by name (same name, or + _mask/_label/_gt)."""
    files, ids = stack_files(paths)
    mdir = Path(mask_dir)
    masks: list[Path | None] = [None] * len(files)
    if mdir.is_dir():
        if is_slice_folder(mdir) and len(files) == 1:
            masks = [mdir]  # one stack of slices: the mask folder is its mask stack
        else:
            by_stem = {f.stem if f.is_file() else f.name: f for f in stacks_in(mdir)}
            masks = [image_sources.find_mask(f, mdir, by_stem) if f.is_file() else by_stem.get(f.name) for f in files]
    elif require_masks:
        raise DataError(f"{mdir}: mask folder not found (--mask-dir)")
    missing = [f for f, m in zip(files, masks) if m is None]
    if require_masks and missing:
        raise DataError(
            f"{missing[0]}: no mask stack with the same name in {mdir} ({len(missing)} of {len(files)} stacks have none)"
        )
    return Source(files, ids, pd.DataFrame(index=range(len(files))), [], "masks", masks=masks)
