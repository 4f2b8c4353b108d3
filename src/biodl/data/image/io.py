"""Reading images and masks: PNG/JPEG/BMP/GIF (Pillow), TIFF (tifffile), NPY; channel-first inside.

Every image becomes a float32 array ``(C, H, W)``: 8-bit data are divided by 255, 16-bit by
65535, booleans become 0/1 and float data keep their values. Masks become integer arrays
``(H, W)`` with their raw values. Every failure is a :class:`~biodl.errors.DataError` naming the
file.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from biodl.errors import DataError

ChannelAxis = Literal["auto", "first", "last", "none"]

#: File name endings read as images.
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".npy")
_PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_TIFF_SUFFIXES = (".tif", ".tiff")


def is_image_file(path: Path) -> bool:
    """Whether ``path`` has an image suffix and is not a hidden file."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def natural_key(text: str) -> list[object]:
    """Sort key that orders ``2.png`` before ``10.png``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, in natural order."""
    return sorted((p for p in folder.iterdir() if p.is_file() and is_image_file(p)), key=lambda p: natural_key(p.name))


def _read_pil(data: Path | io.BytesIO, name: str) -> tuple[np.ndarray, bool]:
    """Pixels of a Pillow-readable image and whether its layout is channels-last."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(data) as opened:
            opened.load()
            mode = opened.mode
            img: Image.Image = opened
            if mode in ("RGBA", "LA", "PA"):
                img = opened.convert("RGB" if mode == "RGBA" else "L")  # alpha carries no signal
            elif mode in ("CMYK", "YCbCr"):
                img = opened.convert("RGB")
            arr = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{name}: cannot read the image ({exc})") from None
    return arr, True


#: tifffile axis letters of stacked planes: z-slices, time frames, and unnamed page axes.
_DEPTH_AXES, _TIME_AXES, _UNKNOWN_AXES = "Z", "T", "QIR"
#: tifffile axis letters of channels (ImageJ channels, samples per pixel such as RGB).
_CHANNEL_AXES = "CS"


@dataclass
class TiffLayout:
    """What a TIFF file holds, from its metadata (no pixels read).

    Attributes
    ----------
    axes
        tifffile axes of the (combined) series, e.g. ``ZYX``, ``TYX``, ``CYX``, ``YXS``, ``QYX``.
    shape
        Shape of the stored array (all pages).
    plane_axis
        What the stacked planes are: ``z`` (slices), ``t`` (frames), ``c`` (channels), ``?``
        (several pages without axis metadata) or ``None`` (a single 2-D plane, maybe with samples).
    source
        Where that came from: ``ImageJ metadata``, ``OME metadata``, ``tifffile shape metadata``, ``no metadata``.
    spacing
        Voxel spacing ``(z, y, x)`` where the file records it (ImageJ ``spacing`` + resolution tags), else ``None``.
    multi_series
        Pages stored as separate equal-shaped series (read together as one stack).
    """

    axes: str
    shape: tuple[int, ...]
    plane_axis: str | None
    source: str
    spacing: tuple[float, float, float] | None = None
    multi_series: bool = False

    @property
    def planes(self) -> int:
        """Number of stacked planes (1 for a 2-D image)."""
        return int(np.prod([n for a, n in zip(self.axes, self.shape) if a not in "YXS"], dtype=np.int64))

    def describe(self) -> str:
        """E.g. ``8 z-slices (ImageJ metadata, axes ZYX)``, ``12 planes over time and z (ImageJ metadata, axes TZYX)``."""
        one, many = {
            "z": ("z-slice", "z-slices"),
            "t": ("time frame", "time frames"),
            "zt": ("plane over time and z", "planes over time and z"),
            "c": ("channel", "channels"),
            "?": ("page of unknown meaning", "pages of unknown meaning"),
        }.get(self.plane_axis or "", ("plane", "planes"))
        return f"{self.planes} {one if self.planes == 1 else many} ({self.source}, axes {self.axes})"


def tiff_layout(data: Path | io.BytesIO, name: str) -> TiffLayout:
    """The :class:`TiffLayout` of a TIFF file (from tifffile's series axes and ImageJ/OME metadata)."""
    import tifffile

    try:
        with tifffile.TiffFile(data) as tf:
            series = tf.series
            first = series[0]
            axes, shape = str(first.axes), tuple(int(n) for n in first.shape)
            multi = len(series) > 1 and all(tuple(s.shape) == tuple(first.shape) for s in series) and first.ndim == 2
            if multi:
                axes, shape = "Q" + axes, (len(series), *shape)
            source = (
                "ImageJ metadata" if tf.is_imagej else "OME metadata" if tf.is_ome
                else "tifffile shape metadata" if tf.is_shaped and not set(axes) & set(_UNKNOWN_AXES) else "no metadata"
            )  # fmt: skip
            spacing = _tiff_spacing(tf)
    except Exception as exc:  # tifffile raises many exception types for corrupt files
        raise DataError(f"{name}: cannot read the TIFF file ({type(exc).__name__}: {exc})") from None
    stacked = [a for a, n in zip(axes, shape) if a not in "YXS" and n > 1]
    if not stacked:
        plane: str | None = None
    elif any(a in _DEPTH_AXES for a in stacked) and any(a in _TIME_AXES for a in stacked):
        plane = "zt"
    elif any(a in _DEPTH_AXES for a in stacked):
        plane = "z"
    elif any(a in _TIME_AXES for a in stacked):
        plane = "t"
    elif all(a == "C" for a in stacked):
        plane = "c"
    else:
        plane = "?"
    return TiffLayout(axes, shape, plane, source, spacing, multi)


def _tiff_spacing(tf: object) -> tuple[float, float, float] | None:
    """``(z, y, x)`` spacing from ImageJ metadata (``spacing``) and the resolution tags, if recorded."""
    meta = getattr(tf, "imagej_metadata", None) or {}
    z = meta.get("spacing")
    try:
        page = tf.pages[0]  # type: ignore[attr-defined]
        xr, yr = page.tags.get("XResolution"), page.tags.get("YResolution")
        x = xr.value[1] / xr.value[0] if xr is not None and xr.value[0] else None
        y = yr.value[1] / yr.value[0] if yr is not None and yr.value[0] else None
    except (AttributeError, IndexError, TypeError, ZeroDivisionError):
        x = y = None
    if z is None:
        return None
    return (float(z), float(y or 1.0), float(x or 1.0))


def read_tiff_array(data: Path | io.BytesIO, name: str, layout: TiffLayout) -> np.ndarray:
    """All planes of a TIFF file as one array of ``layout.shape`` (separate equal series stacked)."""
    import tifffile

    try:
        if layout.multi_series:
            with tifffile.TiffFile(data) as tf:
                arr = np.stack([np.asarray(s.asarray()) for s in tf.series])
        else:
            arr = np.asarray(tifffile.imread(data))
    except Exception as exc:  # tifffile raises many exception types for corrupt files
        raise DataError(f"{name}: cannot read the TIFF file ({type(exc).__name__}: {exc})") from None
    if arr.size == 0:
        raise DataError(f"{name}: cannot read the TIFF file (no image data; the file is truncated or corrupt)")
    return arr


def _read_tiff(data: Path | io.BytesIO, name: str, channel_axis: ChannelAxis = "auto") -> np.ndarray:
    """A 2-D TIFF image; a stack of z-slices or time frames is an error (never read as channels).

    Pages without axis metadata are read as channels only when ``channel_axis`` says so (or
    when they are the rows of an ``(H, W, C≤4)`` array saved without photometric metadata).
    """
    layout = tiff_layout(data, name)
    # an (H, W, C≤4) array saved without photometric metadata is stored as H pages of W × C "images"
    rows_of_pixels = layout.plane_axis == "?" and len(layout.shape) == 3 and layout.shape[-1] <= 4
    if layout.plane_axis in ("z", "t", "zt") or (layout.plane_axis == "?" and channel_axis == "auto" and not rows_of_pixels):
        hint = " --time-axis" if layout.plane_axis == "t" else ""
        channels = "" if layout.plane_axis != "?" else "; to read the pages as channels of one 2-D image set --channel-axis first"
        if layout.plane_axis == "zt":  # the volume reader takes z or time, not both
            hint = " (one time point per file, or one z per file with --time-axis)"
        raise DataError(
            f"{name}: holds {layout.describe()}, not one 2-D image; read stacks with --data-type volume{hint}{channels}"
        )
    if isinstance(data, io.BytesIO):
        data.seek(0)
    return read_tiff_array(data, name, layout)


def read_raw(path: str | Path, channel_axis: ChannelAxis = "auto") -> tuple[np.ndarray, bool]:
    """The stored array of an image file and whether it comes from Pillow (channels last).

    Raises
    ------
    DataError
        Missing, unreadable or corrupt files, or an unsupported format (named in the message).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: image file not found")
    suffix = p.suffix.lower()
    if suffix in _PIL_SUFFIXES:
        return _read_pil(p, str(p))
    if suffix in _TIFF_SUFFIXES:
        return _read_tiff(p, str(p), channel_axis), False
    if suffix == ".npy":
        try:
            return np.load(p, allow_pickle=False), False
        except (ValueError, OSError) as exc:
            raise DataError(f"{p}: cannot read the array ({exc})") from None
    raise DataError(f"{p}: unsupported image format {suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")


def scale_intensity(arr: np.ndarray, name: str) -> np.ndarray:
    """float32 intensities: uint8 / 255, uint16 / 65535, bool → 0/1, other numbers as they are."""
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype.kind in "iuf":
        out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            raise DataError(f"{name}: the image has NaN or infinite values")
        return out
    raise DataError(f"{name}: unsupported pixel type {arr.dtype}")


def to_channel_first(arr: np.ndarray, channel_axis: ChannelAxis, *, channels_last_hint: bool, name: str) -> np.ndarray:
    """``(C, H, W)`` from a 2-D or 3-D array with its channel axis as configured.

    ``auto``: 2-D arrays are one channel; Pillow images are channels-last; for other 3-D
    arrays the axis of size ≤ 4 at either end is the channel axis (or, for stacks of more
    channels, an end axis at most half the size of the others), and an ambiguous shape is an
    error asking for ``data.image.channel_axis``.
    """
    a = np.asarray(arr)
    if a.ndim == 2:
        if channel_axis in ("first", "last"):
            # a grey image is fine whatever the configured axis: one channel
            return a[None]
        return a[None]
    if a.ndim != 3:
        raise DataError(
            f"{name}: expected a 2-D image or a 3-D multi-channel image, got shape {a.shape} "
            "(3-D volumes and time series are not supported; save one plane per file)"
        )
    if channel_axis == "none":
        raise DataError(f"{name}: has shape {a.shape} but data.image.channel_axis is 'none' (2-D grey images)")
    if channel_axis == "first":
        return a
    if channel_axis == "last":
        return np.moveaxis(a, -1, 0)
    if channels_last_hint:
        return np.moveaxis(a, -1, 0)
    first, last = a.shape[0], a.shape[-1]
    if last <= 4 < first:
        return np.moveaxis(a, -1, 0)
    if first <= 4 < last:
        return a
    if first > 4 and last > 4:
        # many-channel stacks: the channel axis is the clearly smallest one at either end
        if 2 * first <= min(a.shape[1:]):
            return a
        if 2 * last <= min(a.shape[:-1]):
            return np.moveaxis(a, -1, 0)
    raise DataError(
        f"{name}: cannot tell the channel axis of shape {a.shape}; "
        "set data.image.channel_axis to 'first' (C, H, W) or 'last' (H, W, C)"
    )


def convert_channels(img: np.ndarray, channels: int | None, name: str) -> np.ndarray:
    """Grey ↔ RGB conversion of a ``(C, H, W)`` image (``None`` keeps it)."""
    c = img.shape[0]
    if channels is None or channels == c:
        return img
    if channels == 1 and c == 3:
        w = np.array([0.299, 0.587, 0.114], dtype=np.float32)[:, None, None]
        return (img * w).sum(axis=0, keepdims=True).astype(np.float32)
    if channels == 3 and c == 1:
        return np.repeat(img, 3, axis=0)
    raise DataError(f"{name}: has {c} channel(s); cannot convert to {channels} (only grey ↔ RGB conversions are defined)")


def read_image(path: str | Path, *, channel_axis: ChannelAxis = "auto", channels: int | None = None) -> np.ndarray:
    """A float32 ``(C, H, W)`` image (see the module docstring for the intensity scale)."""
    arr, pil = read_raw(path, channel_axis)
    img = to_channel_first(arr, channel_axis, channels_last_hint=pil, name=str(path))
    img = scale_intensity(img, str(path))
    return convert_channels(img, channels, str(path))


def read_mask(path: str | Path) -> np.ndarray:
    """Raw mask values ``(H, W)``: one channel, or RGB(A) masks whose channels are all equal."""
    arr, pil = read_raw(path)
    a = np.asarray(arr)
    if a.ndim == 3:
        axis = -1 if (pil or a.shape[-1] <= 4) else 0
        first = np.take(a, 0, axis=axis)
        same = all(np.array_equal(first, np.take(a, i, axis=axis)) for i in range(1, a.shape[axis]))
        if not same:
            raise DataError(f"{path}: a mask must have one channel (got shape {a.shape} with differing channels)")
        a = first
    if a.ndim != 2:
        raise DataError(f"{path}: a mask must be a 2-D label image, got shape {a.shape}")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DataError(f"{path}: the mask has NaN or infinite values")
    return a


def decode_base64_image(text: str, *, channel_axis: ChannelAxis = "auto", channels: int | None = None, name: str) -> np.ndarray:
    """A float32 ``(C, H, W)`` image from base64 text (optionally a ``data:image/...;base64,`` URL)."""
    if not isinstance(text, str):
        raise DataError(f"{name}: expected a base64-encoded image string")
    payload = text.split(",", 1)[1] if text.startswith("data:") else text
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise DataError(f"{name}: not valid base64 text") from None
    if raw[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        arr, pil = _read_tiff(io.BytesIO(raw), name, channel_axis), False
    else:
        arr, pil = _read_pil(io.BytesIO(raw), name)
    img = to_channel_first(arr, channel_axis, channels_last_hint=pil, name=name)
    return convert_channels(scale_intensity(img, name), channels, name)


def encode_png_base64(img: np.ndarray) -> str:
    """Base64 PNG of a uint8 ``(H, W)`` or ``(H, W, 3)`` array (for requests and tests)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(img)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def resize(img: np.ndarray, size: tuple[int, int], *, order: int = 1) -> np.ndarray:
    """``(C, H, W)`` image resized to ``size`` (bilinear; ``order=0`` nearest for masks)."""
    import torch
    import torch.nn.functional as F

    if img.shape[-2:] == tuple(size):
        return img
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None]
    if order == 0:
        out = F.interpolate(t, size=size, mode="nearest")
    else:
        out = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
    return out[0].numpy()


def _mask_array(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    return m.astype(np.uint8) if m.max(initial=0) < 256 and m.min(initial=0) >= 0 else m.astype(np.uint16)


def save_mask_png(mask: np.ndarray, path: Path) -> None:
    """Write an integer ``(H, W)`` mask as 8- or 16-bit PNG."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_mask_array(mask)).save(path)


def mask_png_bytes(mask: np.ndarray) -> bytes:
    """An integer ``(H, W)`` mask as the bytes of an 8- or 16-bit PNG file (as :func:`save_mask_png` writes)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_mask_array(mask)).save(buf, format="PNG")
    return buf.getvalue()


def probability_png_bytes(prob: np.ndarray) -> bytes:
    """A ``(H, W)`` probability map in [0, 1] as an 8-bit grey PNG (pixel = round(255 · p))."""
    q = np.rint(np.clip(np.nan_to_num(np.asarray(prob, dtype=np.float64)), 0.0, 1.0) * 255).astype(np.uint8)
    return mask_png_bytes(q)


def as_hard(y_pred: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """``(N, H, W)`` class indices from ``(N, 1|K, H, W)`` or ``(N, H, W)`` probabilities (volumes:
    ``(N, D, H, W)`` from ``(N, 1|K, D, H, W)``)."""
    p = np.asarray(y_pred)
    if p.ndim == 3:
        return (p > threshold).astype(np.int64)
    if p.ndim == 5:  # volumes (N, K, D, H, W) → (N, D, H, W)
        return (p[:, 0] > threshold).astype(np.int64) if p.shape[1] == 1 else p.argmax(axis=1).astype(np.int64)
    if p.ndim != 4:
        raise DataError(f"segmentation predictions must be (N, K, H, W) or (N, H, W), got shape {p.shape}")
    if p.shape[1] == 1:
        return (p[:, 0] > threshold).astype(np.int64)
    return p.argmax(axis=1).astype(np.int64)
