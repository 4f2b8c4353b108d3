"""Reading 3-D stacks: multi-page TIFF, NPY arrays and folders of 2-D slices; channel-first inside.

Every stack becomes a float32 array ``(C, D, H, W)`` (intensities scaled as for 2-D images:
8-bit / 255, 16-bit / 65535). ``D`` is depth (z-slices) or, with ``time_axis``, time (frames).
What the planes of a TIFF file are is decided from its metadata (tifffile axes, ImageJ/OME
metadata) and reported in :attr:`Stack.note`; pages without metadata are read as planes of the
stack (never as channels). Each reader checks the float32 size against a memory budget before
reading any pixels, and with a target ``size`` it streams TIFF planes one at a time, resizing
each, so a long time axis never has to fit in memory at full resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from biodl.data.image.io import (
    TiffLayout,
    is_image_file,
    list_images,
    read_image,
    read_raw,
    read_tiff_array,
    scale_intensity,
    tiff_layout,
)
from biodl.errors import DataError

#: File name endings read as one stack each.
STACK_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".npy")
_GIB = 1024**3


@dataclass
class Stack:
    """One stack read from a file or folder.

    Attributes
    ----------
    array
        ``(C, D, H, W)`` float32 (or the raw integer mask values ``(D, H, W)`` for masks).
    spacing
        ``(z, y, x)`` voxel spacing where the file records it, else ``None``.
    note
        How the planes were read, e.g. ``"8 z-slices (ImageJ metadata, axes ZYX)"``.
    """

    array: np.ndarray
    spacing: tuple[float, float, float] | None
    note: str


def is_stack_path(path: Path) -> bool:
    """A stack file (TIFF/NPY) or a folder holding 2-D slices."""
    if path.is_dir():
        return bool(list_images(path))
    return path.suffix.lower() in STACK_SUFFIXES and not path.name.startswith(".")


def resize_volume(vol: np.ndarray, size: tuple[int, int, int], *, order: int = 1) -> np.ndarray:
    """``(C, D, H, W)`` resized to ``size`` (trilinear; ``order=0`` nearest for masks)."""
    if tuple(vol.shape[-3:]) == tuple(size):
        return vol
    t = torch.from_numpy(np.ascontiguousarray(vol, dtype=np.float32))[None]
    mode = "nearest" if order == 0 else "trilinear"
    out = F.interpolate(t, size=size, mode=mode, **({} if order == 0 else {"align_corners": False}))
    return out[0].numpy()


def check_budget(shape: tuple[int, ...], name: str, max_gib: float, *, what: str = "planes") -> None:
    """A :class:`DataError` when a float32 array of ``shape`` exceeds ``max_gib``."""
    gib = float(np.prod(shape, dtype=np.float64)) * 4 / _GIB
    if gib > max_gib:
        raise DataError(
            f"{name}: {shape[-3]} {what} of {shape[-2]}×{shape[-1]} need {gib:.1f} GiB as float32, more than "
            f"data.volume.max_gib = {max_gib:g}; set --volume-size D H W to read it resized plane by plane, or crop it"
        )


def _planes_first(arr: np.ndarray, layout: TiffLayout, name: str) -> tuple[np.ndarray, str]:
    """``(C, D, H, W)`` from a TIFF array of ``layout.axes``; the plane kind (z/t/?)."""
    axes = layout.axes
    if layout.plane_axis == "zt":
        raise DataError(
            f"{name}: has both z and time axes ({axes}); save one time point per file (z-stacks) or one z (time-lapse)"
        )
    planes = [i for i, a in enumerate(axes) if a not in "YXSC"]
    chans = [i for i, a in enumerate(axes) if a in "SC"]
    if len(planes) > 1:  # e.g. QQYX: several unnamed page axes → one plane axis
        keep = [i for i in range(arr.ndim) if i not in planes]
        arr = np.moveaxis(arr, planes, range(len(planes))).reshape(-1, *[arr.shape[i] for i in keep])
        axes = "Q" + "".join(axes[i] for i in keep)
        planes = [0]
        chans = [i for i, a in enumerate(axes) if a in "SC"]
    if len(chans) > 1:
        raise DataError(f"{name}: has several channel axes ({layout.axes}); save one channel axis")
    y, x = axes.index("Y"), axes.index("X")
    order = [*chans, *planes, y, x]
    out = np.transpose(arr, order)
    if not chans:
        out = out[None]
    if not planes:
        out = out[:, None]
    return out, layout.plane_axis or "z"


def read_tiff_stack(path: Path, *, size: tuple[int, int, int] | None, max_gib: float) -> Stack:
    """A multi-page TIFF as ``(C, D, H, W)`` (see the module docstring)."""
    name = str(path)
    layout = tiff_layout(path, name)
    shape = layout.shape
    hw = (shape[layout.axes.index("Y")], shape[layout.axes.index("X")])
    n_planes = layout.planes
    n_chan = int(np.prod([n for a, n in zip(layout.axes, shape) if a in "SC"], dtype=np.int64))
    kind = "time frames" if layout.plane_axis == "t" else "planes"
    if size is None:
        check_budget((n_chan, n_planes, *hw), name, max_gib, what=kind)
        arr = read_tiff_array(path, name, layout)
        vol, _ = _planes_first(arr, layout, name)
        vol = scale_intensity(vol, name)
    else:
        check_budget((n_chan, n_planes, size[1], size[2]), name, max_gib, what=kind)
        vol = _stream_resized(path, layout, size, name)
    note = layout.describe() if layout.plane_axis not in (None, "?") else f"{n_planes} pages read as planes ({layout.source})"
    return Stack(np.ascontiguousarray(vol, dtype=np.float32), layout.spacing, note)


def _stream_resized(path: Path, layout: TiffLayout, size: tuple[int, int, int], name: str) -> np.ndarray:
    """Planes read one page at a time, each resized in-plane, then the plane axis resized."""
    import tifffile

    if any(a in "SC" for a in layout.axes):
        arr = read_tiff_array(path, name, layout)  # multi-channel stacks: read whole, then resize
        vol, _ = _planes_first(arr, layout, name)
        return resize_volume(scale_intensity(vol, name), size)
    planes = []
    try:
        with tifffile.TiffFile(path) as tf:
            for page in tf.pages:
                img = scale_intensity(np.asarray(page.asarray()), name)  # type: ignore[union-attr]
                t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None, None]
                planes.append(F.interpolate(t, size=size[1:], mode="bilinear", align_corners=False, antialias=True)[0, 0].numpy())
    except DataError:
        raise
    except Exception as exc:  # tifffile raises many exception types for corrupt files
        raise DataError(f"{name}: cannot read the TIFF file ({type(exc).__name__}: {exc})") from None
    return resize_volume(np.stack(planes)[None], size)


def read_npy_stack(path: Path, *, size: tuple[int, int, int] | None, max_gib: float) -> Stack:
    """A ``(D, H, W)`` or ``(D, H, W, C)`` (C ≤ 4) NPY array as ``(C, D, H, W)``."""
    name = str(path)
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise DataError(f"{name}: cannot read the array ({exc})") from None
    vol = as_channel_first_volume(np.asarray(arr.shape), name)
    check_budget(tuple(int(s) for s in vol), name, max_gib)
    out = scale_intensity(_npy_channel_first(np.asarray(arr)), name)
    return Stack(resize_volume(out, size) if size else out, None, f"{out.shape[1]} planes (NPY array {tuple(arr.shape)})")


def as_channel_first_volume(shape: np.ndarray, name: str) -> tuple[int, int, int, int]:
    """``(C, D, H, W)`` shape of a stored ``(D, H, W)`` or ``(D, H, W, C)`` array (``C`` ≤ 4)."""
    s = tuple(int(v) for v in shape)
    if len(s) == 3:
        return (1, *s)
    if len(s) == 4 and s[-1] <= 4:
        return (s[-1], *s[:3])
    raise DataError(f"{name}: expected a (D, H, W) or (D, H, W, C≤4) stack, got shape {s}")


def _npy_channel_first(arr: np.ndarray) -> np.ndarray:
    return arr[None] if arr.ndim == 3 else np.moveaxis(arr, -1, 0)


def read_slice_folder(folder: Path, *, size: tuple[int, int, int] | None, max_gib: float) -> Stack:
    """A folder of 2-D slices (natural file-name order) as ``(C, D, H, W)``; slices must be equal-sized."""
    files = list_images(folder)
    if not files:
        raise DataError(f"{folder}: no image slices in this folder")
    first = read_image(files[0])
    check_budget((first.shape[0], len(files), *(size[1:] if size else first.shape[-2:])), str(folder), max_gib)
    slices = []
    for f in files:
        img = read_image(f)
        if img.shape != first.shape:
            raise DataError(
                f"{f}: slice is {img.shape} (C, H, W) but {files[0].name} is {first.shape}; slices of a stack must match"
            )
        if size is not None:
            t = torch.from_numpy(img)[None]
            img = F.interpolate(t, size=size[1:], mode="bilinear", align_corners=False, antialias=True)[0].numpy()
        slices.append(img)
    vol = np.stack(slices, axis=1)
    return Stack(resize_volume(vol, size) if size else vol, None, f"{len(files)} slices (folder of 2-D images)")


def read_stack(path: str | Path, *, size: tuple[int, int, int] | None = None, max_gib: float = 8.0) -> Stack:
    """A stack from a TIFF/NPY file or a folder of slices (see the module docstring)."""
    p = Path(path)
    if p.is_dir():
        return read_slice_folder(p, size=size, max_gib=max_gib)
    if not p.is_file():
        raise DataError(f"{p}: no such file or folder")
    suffix = p.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return read_tiff_stack(p, size=size, max_gib=max_gib)
    if suffix == ".npy":
        return read_npy_stack(p, size=size, max_gib=max_gib)
    if is_image_file(p):
        raise DataError(f"{p}: a single 2-D image, not a stack; give a multi-page TIFF, an NPY array or a folder of slices")
    raise DataError(f"{p}: unsupported stack format {suffix!r}; use a multi-page TIFF, an NPY array or a folder of slices")


def read_mask_stack(path: str | Path) -> np.ndarray:
    """Raw integer mask values ``(D, H, W)`` of a mask stack (TIFF/NPY or a folder of 2-D masks)."""
    from biodl.data.image.io import read_mask

    p = Path(path)
    if p.is_dir():
        files = list_images(p)
        if not files:
            raise DataError(f"{p}: no mask slices in this folder")
        masks = [read_mask(f) for f in files]
        if len({m.shape for m in masks}) > 1:
            raise DataError(f"{p}: mask slices differ in size ({sorted({m.shape for m in masks})})")
        return np.stack(masks)
    if p.suffix.lower() in (".tif", ".tiff"):
        layout = tiff_layout(p, str(p))
        arr = read_tiff_array(p, str(p), layout)
    else:
        arr, _ = read_raw(p)
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise DataError(f"{p}: a mask stack must be (D, H, W) labels, got shape {a.shape}")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DataError(f"{p}: the mask has NaN or infinite values")
    return a
