"""Where images come from: class folders, tables of paths, NPZ arrays, image + mask folders.

Each function returns a :class:`Source`: the image files (or arrays) and their raw labels,
without reading any pixels, so layout mistakes are reported before slow reading starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from biodl.data.columns import not_found
from biodl.data.image.io import is_image_file, list_images, natural_key
from biodl.errors import DataError

_PATH_COLUMNS = ("path", "image", "file", "filename", "image_path", "filepath")
_MASK_SUFFIXES = ("", "_mask", "_masks", "_label", "_labels", "_gt", "-mask", "_seg")


@dataclass
class Source:
    """Images to read and their labels.

    Attributes
    ----------
    files
        Image files (empty for NPZ sources).
    ids
        One identifier per image (relative path or array index).
    frame
        Label table with one row per image (may have no columns).
    label_columns
        Columns of ``frame`` holding targets.
    masks
        Mask file of each image (segmentation), ``None`` where absent.
    arrays
        ``(N, ...)`` pixel arrays of NPZ sources.
    mask_arrays
        ``(N, H, W)`` masks of NPZ sources with a ``masks`` array.
    parts
        Predefined split of each row, or ``None``.
    groups
        Group labels (table ``group_column``), or ``None``.
    layout
        ``folders``, ``table``, ``npz``, ``masks`` or ``files``.
    """

    files: list[Path]
    ids: list[str]
    frame: pd.DataFrame
    label_columns: list[str]
    layout: str
    masks: list[Path | None] = field(default_factory=list)
    arrays: np.ndarray | None = None
    mask_arrays: np.ndarray | None = None
    parts: np.ndarray | None = None
    groups: np.ndarray | None = None


def detect_layout(paths: list[str], mask_dir: str | None) -> str:
    """``masks`` / ``npz`` / ``table`` / ``folders`` / ``files`` from the given paths."""
    if mask_dir:
        return "masks"
    if len(paths) == 1:
        p = Path(paths[0])
        suffix = p.suffix.lower()
        if suffix == ".npz":
            return "npz"
        if suffix in (".csv", ".tsv", ".txt"):
            return "table"
        if p.is_dir():
            subdirs = [d for d in p.iterdir() if d.is_dir() and not d.name.startswith(".")]
            if subdirs and not list_images(p):
                return "folders"
    return "files"


def image_files(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Image files of folders and/or single files (natural order), with ids."""
    files: list[Path] = []
    ids: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise DataError(f"{p}: no image files in this folder (looked for PNG, JPEG, TIFF, BMP, GIF, NPY)")
            files += found
            ids += [f.name if len(paths) == 1 else f"{p.name}/{f.name}" for f in found]
        elif p.is_file():
            if not is_image_file(p):
                raise DataError(f"{p}: not an image file (PNG, JPEG, TIFF, BMP, GIF, NPY)")
            files.append(p)
            ids.append(p.name)
        else:
            raise DataError(f"{p}: no such file or folder")
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"two images share the name {dup!r}; give them distinct names")
    return files, ids


def class_folders(root: str, *, lister: Callable[[Path], list[Path]] = list_images, what: str = "image files") -> Source:
    """One sub-folder per class (``root/<class>/*.png``); an empty class folder is an error.

    ``lister`` lists the files of one folder (volumes: their stacks), ``what`` names them in errors.
    """
    base = Path(root)
    files: list[Path] = []
    labels: list[str] = []
    ids: list[str] = []
    for sub in sorted(
        (d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: natural_key(d.name)
    ):
        found = lister(sub)
        if not found:
            raise DataError(f"{sub}: class folder '{sub.name}' has no {what}")
        files += found
        labels += [sub.name] * len(found)
        ids += [f"{sub.name}/{f.name}" for f in found]
    if not files:
        raise DataError(f"{base}: no class sub-folders with {what}")
    return Source(files, ids, pd.DataFrame({"label": labels}), ["label"], "folders")


def path_table(table: str, image_column: str | None, target_columns: list[str], group_column: str | None) -> Source:
    """A CSV/TSV with a column of image paths (relative to the table's folder) and label columns."""
    p = Path(table)
    if not p.is_file():
        raise DataError(f"{p}: table not found")
    sep = "\t" if p.suffix.lower() in (".tsv", ".txt") else ","
    try:
        frame = pd.read_csv(p, sep=sep)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{p}: cannot read the table ({exc})") from None
    column = image_column
    if column is None:
        lower = {c.lower(): c for c in frame.columns}
        column = next((lower[c] for c in _PATH_COLUMNS if c in lower), None)
        if column is None:
            raise DataError(f"{p}: no image path column; name it one of {list(_PATH_COLUMNS)} or set data.image.image_column")
    if column not in frame.columns:
        raise not_found(str(p), "image", column, list(frame.columns))
    files = []
    for i, v in enumerate(frame[column].tolist()):
        if not isinstance(v, str) or not v.strip():
            raise DataError(f"{p}: row {i + 1} has no image path in column {column!r}")
        f = Path(v.strip())
        files.append(f if f.is_absolute() else p.parent / f)
    labels = target_columns or (["label"] if "label" in frame.columns else [])
    groups = None
    if group_column is not None:
        if group_column not in frame.columns:
            raise DataError(f"{p}: group column {group_column!r} not found")
        groups = frame[group_column].astype(str).to_numpy()
    ids = [str(v) for v in frame[column].tolist()]
    return Source(files, ids, frame, labels, "table", groups=groups)


def npz_arrays(path: str, parts_wanted: list[str] | None = None) -> Source:
    """MedMNIST layout (``train_images``, ``train_labels``, ``val_*``, ``test_*``; predefined split)
    or plain ``images`` (+ ``labels`` and/or ``masks``) arrays.

    ``parts_wanted`` restricts a MedMNIST file to some of its parts (an error if one is absent).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    try:
        with np.load(p, allow_pickle=False) as z:
            keys = set(z.files)
            parts = [s for s in ("train", "val", "test") if f"{s}_images" in keys]
            if parts and parts_wanted is not None:
                absent = [s for s in parts_wanted if s not in parts]
                if absent:
                    raise DataError(f"{p}: no {absent[0]}_images array (the file has: {', '.join(parts)})")
                parts = [s for s in parts if s in parts_wanted]
            if parts:
                images = [z[f"{s}_images"] for s in parts]
                labels = [z[f"{s}_labels"] if f"{s}_labels" in keys else None for s in parts]
                masks = [z[f"{s}_masks"] if f"{s}_masks" in keys else None for s in parts]
                split = np.concatenate([[s] * len(a) for s, a in zip(parts, images)])
            else:
                img_key = next((k for k in ("images", "x", "X", "imgs") if k in keys), None)
                if img_key is None:
                    raise DataError(f"{p}: no image array; expected MedMNIST keys (train_images, ...) or 'images'")
                images = [z[img_key]]
                lab_key = next((k for k in ("labels", "y", "Y") if k in keys), None)
                labels = [z[lab_key] if lab_key else None]
                masks = [z["masks"] if "masks" in keys else None]
                split = None
    except (ValueError, OSError) as exc:
        raise DataError(f"{p}: cannot read the NPZ file ({exc})") from None
    if len({a.shape[1:] for a in images}) != 1:
        raise DataError(f"{p}: the image arrays of the splits differ in shape: {[a.shape for a in images]}")
    arr = np.concatenate(images)
    frame = pd.DataFrame(index=range(len(arr)))
    cols: list[str] = []
    if all(lab is not None for lab in labels):
        lab = np.concatenate([np.asarray(x).reshape(len(x), -1) for x in labels if x is not None])
        if lab.shape[0] != len(arr):
            raise DataError(f"{p}: {lab.shape[0]} labels for {len(arr)} images")
        cols = ["label"] if lab.shape[1] == 1 else [f"label_{j}" for j in range(lab.shape[1])]
        for j, c in enumerate(cols):
            frame[c] = lab[:, j]
    mask_arr = None
    if all(m is not None for m in masks):
        mask_arr = np.concatenate([m for m in masks if m is not None])
    ids = [f"{s}/{i}" for s, i in zip(split, _counts(split))] if split is not None else [str(i) for i in range(len(arr))]
    return Source([], ids, frame, cols, "npz", arrays=arr, mask_arrays=mask_arr, parts=split)


def npz_image_keys(path: str, parts_wanted: list[str] | None = None) -> list[tuple[str, str]]:
    """``(array name, id prefix)`` of the image arrays :func:`npz_arrays` reads, in its order (no data read).

    The id prefix is ``"train/"`` etc. for MedMNIST parts and ``""`` for a plain ``images`` array.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: cannot read the NPZ file ({exc})") from None
    parts = [s for s in ("train", "val", "test") if f"{s}_images" in keys]
    if parts:
        return [(f"{s}_images", f"{s}/") for s in parts if parts_wanted is None or s in parts_wanted]
    img_key = next((k for k in ("images", "x", "X", "imgs") if k in keys), None)
    if img_key is None:
        raise DataError(f"{path}: no image array; expected MedMNIST keys (train_images, ...) or 'images'")
    return [(img_key, "")]


def npz_row_blocks(path: str, key: str, block_rows: int) -> Iterator[np.ndarray]:
    """Array ``key`` of an NPZ file, ``block_rows`` rows at a time, read from the (compressed or stored) member.

    A zip member cannot be memory-mapped; it is decompressed as a stream, so memory holds one block.
    An array saved in Fortran order is read whole and then handed out in blocks.
    """
    import zipfile

    fmt = np.lib.format
    try:
        with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
            version = fmt.read_magic(fh)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = read_header(fh)
            if fortran or dtype.hasobject or not shape:
                whole = fmt.read_array(fh, allow_pickle=False) if not fortran else np.load(path, allow_pickle=False)[key]
                for start in range(0, len(whole), block_rows):
                    yield whole[start : start + block_rows]
                return
            row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
            for start in range(0, shape[0], block_rows):
                n = min(block_rows, shape[0] - start)
                buf = fh.read(n * row)
                if len(buf) != n * row:
                    raise DataError(f"{path}: {key} ends after {start + len(buf) // max(row, 1)} of {shape[0]} rows")
                yield np.frombuffer(buf, dtype=dtype).reshape(n, *shape[1:])
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path}: cannot read {key} of the NPZ file ({exc})") from None


def _counts(split: np.ndarray) -> list[int]:
    seen: dict[str, int] = {}
    out = []
    for s in split.tolist():
        out.append(seen.get(s, 0))
        seen[s] = out[-1] + 1
    return out


def find_mask(image: Path, mask_dir: Path, by_stem: dict[str, Path]) -> Path | None:
    """The mask of ``image`` in ``mask_dir``: same file name, same stem, or stem + _mask/_label/_gt..."""
    same = mask_dir / image.name
    if same.is_file():
        return same
    for suffix in _MASK_SUFFIXES:
        hit = by_stem.get(image.stem + suffix)
        if hit is not None:
            return hit
    return None


def image_mask_pairs(paths: list[str], mask_dir: str, *, require_masks: bool) -> Source:
    """Images of ``paths`` paired with masks in ``mask_dir`` by file name."""
    files, ids = image_files(paths)
    mdir = Path(mask_dir)
    masks: list[Path | None] = []
    if mdir.is_dir():
        by_stem = {f.stem: f for f in list_images(mdir)}
        masks = [find_mask(f, mdir, by_stem) for f in files]
    elif require_masks:
        raise DataError(f"{mdir}: mask folder not found (--mask-dir)")
    else:
        masks = [None] * len(files)
    missing = [f for f, m in zip(files, masks) if m is None]
    if require_masks and missing:
        raise DataError(
            f"{missing[0]}: no mask with the same name in {mdir} ({len(missing)} of {len(files)} images have none; "
            "masks are paired by file name, optionally with a _mask/_label/_gt suffix)"
        )
    return Source(files, ids, pd.DataFrame(index=range(len(files))), [], "masks", masks=masks)
