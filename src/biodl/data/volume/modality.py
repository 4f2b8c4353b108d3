"""The ``volume`` data type: 3-D stacks and time-lapse clips for classification and segmentation.

Inputs are channel-first float32 arrays ``(N, C, D, H, W)`` standardised per channel with
training-set statistics. ``D`` is depth (z-slices), or time (frames) with ``data.volume.time_axis``.

* Classification: NPZ arrays in MedMNIST 3-D layout (``train_images`` ``(N, D, H, W)``,
  ``train_labels``, ``val_*``, ``test_*``; the predefined split is used), class folders of stacks,
  or a table of stack paths + label column(s). A stack is a multi-page TIFF, an NPY array or a
  folder of 2-D slices; how its planes were read is printed once per read (one ``note:`` line) and
  listed in the summary. Per-frame labels of clips: an NPZ ``labels`` array ``(N, T)`` (targets
  ``frame_0 .. frame_{T-1}``; they make ``timelapse`` predict per frame, :mod:`biodl.experiment.load`).
* Evaluating a saved model on an NPZ file reads its ``test_*`` arrays, else ``val_*``, else
  ``train_*`` (the most held-out part present), or plain ``images``/``labels``; ``--npz-parts``
  overrides. The summary names the part read.
* Segmentation (``--mask-dir`` or NPZ ``masks``): mask stacks ``(D, H, W)`` paired by name;
  training uses random ``tile_size`` crops, prediction overlapping 3-D sliding windows.
* Stacks of different shapes need ``data.volume.size`` (resize); nothing is padded or cropped
  silently for classification.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from biodl.data.base import DATA_TYPES, BatchAugment, LoadedData, Modality
from biodl.data.image import sources as image_sources
from biodl.data.image.io import scale_intensity
from biodl.data.targets import Targets, encode_targets
from biodl.data.volume import sources
from biodl.data.volume.augment import VolumeAugment
from biodl.data.volume.io import Stack, as_channel_first_volume, check_budget, read_mask_stack, read_stack, resize_volume
from biodl.errors import DataError


@DATA_TYPES.register("volume")
class VolumeModality(Modality):
    """3-D volumes / time-lapse clips (``task: classification | multilabel | regression | segmentation``)."""

    name: ClassVar[str] = "volume"
    input_hint: ClassVar[str] = (
        "a nested list (D, H, W) or (C, D, H, W) of voxel values, or {'volume': base64 NPY or multi-page TIFF}"
    )

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.channels: int | None = None
        self.shape: tuple[int, int, int] | None = None
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.mask_classes: list[str] | None = None
        self.layout: str | None = None
        self.spacing: list[float] | None = None
        self.files: list[str] = []
        self.volume_shapes: list[tuple[int, int, int]] = []

    @property
    def opts(self) -> Any:
        """The ``data.volume`` section."""
        return self.cfg.volume

    @property
    def segmentation(self) -> bool:
        """Whether the task is segmentation."""
        return self.cfg.task == "segmentation" or bool(self.cfg.image.mask_dir)

    def _size(self) -> tuple[int, int, int] | None:
        size = self.opts.size
        return (int(size[0]), int(size[1]), int(size[2])) if size is not None else None

    # ------------------------------------------------------------------ reading
    def load(self, paths: list[str], *, require_targets: bool = True, classes: list[str] | None = None) -> LoadedData:
        cfg, iopts = self.cfg, self.cfg.image
        if not paths:
            raise DataError("no volume data given (--data-path: an NPZ file, stacks, a folder of stacks or a CSV of paths)")
        layout = sources.detect_layout(paths, iopts.mask_dir)
        self.layout = layout
        part_read = None
        if layout == "npz":
            parts: list[str] | None = list(iopts.npz_parts) if iopts.npz_parts is not None else None
            if parts is None and classes is not None:
                parts, part_read = sources.npz_parts_for_model(paths[0])
            src = image_sources.npz_arrays(_single(paths, "an NPZ file"), parts)
        elif layout == "masks":
            assert iopts.mask_dir is not None  # the layout is "masks" only with a mask folder
            src = sources.stack_mask_pairs(paths, iopts.mask_dir, require_masks=require_targets)
        elif layout == "table":
            src = image_sources.path_table(
                _single(paths, "a table"), iopts.image_column, list(cfg.target_columns), cfg.group_column
            )
        elif layout == "folders":
            src = sources.class_folders(_single(paths, "a folder of class folders"))
        else:
            files, ids = sources.stack_files(paths)
            if require_targets and not self.segmentation:
                raise DataError(
                    f"{paths[0]}: stacks without labels; give an NPZ file, a folder with one sub-folder per class, "
                    "a CSV of stack paths with a label column, or mask stacks (--mask-dir)"
                )
            src = image_sources.Source(files, ids, image_sources.pd.DataFrame(index=range(len(files))), [], "files")
        volumes, notes = self._volumes(src)
        if src.arrays is None and notes:
            print(f"note: {_stacks_read(notes)}")
        summary: dict[str, Any] = {
            "layout": layout,
            "volumes": len(volumes),
            "axis 1": "time" if self.opts.time_axis else "depth",
        }
        if part_read:
            summary["NPZ arrays read"] = part_read
        if notes:
            summary["planes read as"] = sorted(set(notes))[:5]
        if self.spacing is not None:
            summary["voxel spacing (z, y, x)"] = self.spacing
        if self.segmentation:
            return self._load_segmentation(src, volumes, require_targets, classes, summary)
        return self._load_classification(src, volumes, require_targets, classes, summary)

    def _volumes(self, src: image_sources.Source) -> tuple[list[np.ndarray], list[str]]:
        """``(C, D, H, W)`` float32 volumes of a source (resized with ``data.volume.size``) and reading notes."""
        size, max_gib = self._size(), self.opts.max_gib
        out: list[np.ndarray] = []
        notes: list[str] = []
        spacings: set[tuple[float, ...]] = set()
        if src.arrays is not None:
            arr = src.arrays
            per = as_channel_first_volume(np.asarray(arr.shape[1:]), "NPZ images")
            check_budget((len(arr) * per[0], *(size or per[1:])), "NPZ images", max_gib, what="planes")
            for i in range(len(arr)):
                vol = scale_intensity(
                    arr[i][None] if arr.ndim == 4 else np.moveaxis(arr[i], -1, 0), f"{src.ids[i]} (NPZ row {i})"
                )
                out.append(resize_volume(vol, size) if size else vol)
            notes.append(f"NPZ arrays {tuple(arr.shape[1:])} per volume")
        else:
            budget = max_gib
            for f in src.files:
                st: Stack = read_stack(f, size=size, max_gib=budget)
                budget -= st.array.nbytes / 1024**3
                out.append(st.array)
                notes.append(st.note)
                if st.spacing is not None:
                    spacings.add(tuple(st.spacing))
        if self.opts.spacing is not None:
            self.spacing = [float(s) for s in self.opts.spacing]
        elif len(spacings) == 1:
            self.spacing = list(next(iter(spacings)))
        expected = self.channels if self.channels is not None else (out[0].shape[0] if out else None)
        for i, v in enumerate(out):
            if v.shape[0] != expected:
                raise DataError(f"{_name(src, i)}: has {v.shape[0]} channel(s) but {_name(src, 0)} (or the model) has {expected}")
        return out, notes

    def _check_shapes(self, src: image_sources.Source, volumes: list[np.ndarray]) -> None:
        target = self.shape if self.shape is not None and not self.segmentation else volumes[0].shape[-3:]
        for i, v in enumerate(volumes):
            if tuple(v.shape[-3:]) != tuple(target):
                what = "the model input" if self.shape is not None else _name(src, 0)
                raise DataError(
                    f"{_name(src, i)}: volume is {'×'.join(map(str, v.shape[-3:]))} but {what} is {'×'.join(map(str, target))}; "
                    "set data.volume.size (--volume-size D H W) to resize the stacks to one shape"
                )

    def _load_classification(
        self,
        src: image_sources.Source,
        volumes: list[np.ndarray],
        require_targets: bool,
        classes: list[str] | None,
        summary: dict[str, Any],
    ) -> LoadedData:
        cfg = self.cfg
        self._check_shapes(src, volumes)
        X = np.stack(volumes).astype(np.float32, copy=False)
        targets = None
        label_cols = list(src.label_columns)
        has_labels = bool(label_cols) and all(c in src.frame.columns for c in label_cols)
        if require_targets or has_labels:
            if not has_labels:
                raise DataError("no labels found (NPZ labels, class folders, or a label column)")
            frame = src.frame
            if self.opts.time_axis and len(label_cols) == X.shape[2] > 1:
                frame = frame.rename(columns={c: f"frame_{j}" for j, c in enumerate(label_cols)})
                label_cols = frame_label_names(len(label_cols))
            task = cfg.task or ("multilabel" if len(label_cols) > 1 else "classification")
            if task == "segmentation":
                raise DataError("task 'segmentation' needs mask stacks (--mask-dir, or NPZ masks)")
            targets = encode_targets(frame, label_cols, task, source=_source_name(src), classes=classes)
        self.files = [str(f) for f in src.files] or list(src.ids)
        self.volume_shapes = [tuple(int(s) for s in v.shape[-3:]) for v in volumes]  # type: ignore[misc]
        summary["volume shape (C, D, H, W)"] = list(X.shape[1:])
        if src.parts is not None:
            summary["predefined split"] = {p: int((src.parts == p).sum()) for p in ("train", "val", "test")}
        return LoadedData(X, targets, np.asarray(src.ids), src.groups, summary, parts=src.parts)

    def _load_segmentation(
        self,
        src: image_sources.Source,
        volumes: list[np.ndarray],
        require_targets: bool,
        classes: list[str] | None,
        summary: dict[str, Any],
    ) -> LoadedData:
        iopts = self.cfg.image
        masks: list[np.ndarray | None] = []
        for i, v in enumerate(volumes):
            if src.mask_arrays is not None:
                m: np.ndarray | None = np.asarray(src.mask_arrays[i])
            else:
                mf = src.masks[i] if src.masks else None
                m = read_mask_stack(mf) if mf is not None else None
            if m is None and require_targets:
                raise DataError(f"{_name(src, i)}: no mask stack")
            if m is not None and self._size() is not None:
                m = resize_volume(m[None].astype(np.float32), self._size(), order=0)[0].astype(m.dtype)  # type: ignore[arg-type]
            if m is not None and tuple(m.shape) != tuple(v.shape[-3:]):
                raise DataError(f"{_name(src, i)}: mask stack is {m.shape} but the volume is {tuple(v.shape[-3:])} (D, H, W)")
            masks.append(m)
        have = [m for m in masks if m is not None]
        if have:
            self.mask_classes = list(classes) if classes is not None else (self.mask_classes or _mask_classes(have, iopts))
        D, H, W = (max(v.shape[k] for v in volumes) for k in (1, 2, 3))
        X = np.zeros((len(volumes), volumes[0].shape[0], D, H, W), dtype=np.float32)
        for i, v in enumerate(volumes):
            d, h, w = v.shape[1:]
            X[i] = np.pad(v, ((0, 0), (0, D - d), (0, H - h), (0, W - w)), mode="edge")
        targets = None
        if have and (require_targets or len(have) == len(masks)):
            y = np.full((len(volumes), D, H, W), -1, dtype=np.int32)
            for i, m in enumerate(masks):
                if m is not None:
                    y[i, : m.shape[0], : m.shape[1], : m.shape[2]] = _encode_mask(m, self.mask_classes, iopts, _name(src, i))
            assert self.mask_classes is not None
            targets = Targets(y, "segmentation", list(self.mask_classes), list(self.mask_classes))
            labelled = y[y >= 0]
            summary["mask classes"] = targets.classes
            summary["foreground fraction"] = round(float((labelled > 0).mean()), 4) if labelled.size else None
        self.files = [str(f) for f in src.files] or list(src.ids)
        self.volume_shapes = [tuple(int(s) for s in v.shape[-3:]) for v in volumes]  # type: ignore[misc]
        summary["volume shapes (D, H, W)"] = sorted({"×".join(map(str, s)) for s in self.volume_shapes})
        return LoadedData(X, targets, np.asarray(src.ids), src.groups, summary, parts=src.parts)

    # --------------------------------------------------------- request inputs
    def parse_inputs(self, inputs: list[Any]) -> np.ndarray:
        """Volumes as nested lists ``(D, H, W)`` / ``(C, D, H, W)``, or ``{"volume": base64 NPY/TIFF bytes}``."""
        import base64
        import io

        vols = []
        for i, rec in enumerate(inputs):
            name = f"input {i}"
            if isinstance(rec, dict):
                rec = rec.get("volume", rec.get("image", rec.get("data")))
            if isinstance(rec, str):
                try:
                    raw = base64.b64decode(rec.split(",", 1)[1] if rec.startswith("data:") else rec, validate=True)
                except ValueError:
                    raise DataError(f"{name}: not valid base64 text") from None
                arr = _decode_stack_bytes(io.BytesIO(raw), name)
            elif isinstance(rec, list):
                try:
                    arr = np.asarray(rec, dtype=np.float32)
                except (TypeError, ValueError):
                    raise DataError(f"{name}: voxel lists must be rectangular numbers") from None
                arr = arr[None] if arr.ndim == 3 else arr
            else:
                raise DataError(f"{name}: expected a nested list (D, H, W) of voxel values or {{'volume': base64 NPY/TIFF}}")
            if arr.ndim != 4:
                raise DataError(f"{name}: expected a (D, H, W) or (C, D, H, W) volume, got shape {arr.shape}")
            arr = scale_intensity(arr, name)
            if self._size() is not None:
                arr = resize_volume(arr, self._size())  # type: ignore[arg-type]
            if self.channels is not None and arr.shape[0] != self.channels:
                raise DataError(f"{name}: has {arr.shape[0]} channel(s) but the model takes {self.channels}")
            if self.shape is not None and not self.segmentation and tuple(arr.shape[1:]) != self.shape:
                raise DataError(f"{name}: volume is {tuple(arr.shape[1:])} but the model takes {self.shape} (D, H, W)")
            vols.append(arr)
        if not vols:
            raise DataError("no inputs")
        if len({v.shape for v in vols}) > 1:
            raise DataError(f"inputs of one request must have equal shapes, got {sorted({v.shape for v in vols})}")
        self.volume_shapes = [tuple(int(s) for s in v.shape[1:]) for v in vols]  # type: ignore[misc]
        return np.stack(vols).astype(np.float32, copy=False)

    # ------------------------------------------------------------ preprocessing
    def fit(self, X_train: np.ndarray) -> None:
        self.channels = int(X_train.shape[1])
        if not self.segmentation:
            self.shape = (int(X_train.shape[2]), int(X_train.shape[3]), int(X_train.shape[4]))
        if self.cfg.image.intensity == "channel":
            x = np.asarray(X_train, dtype=np.float64)
            self.mean = x.mean(axis=(0, 2, 3, 4)).astype(np.float32)
            self.std = np.maximum(x.std(axis=(0, 2, 3, 4)), 1e-6).astype(np.float32)

    def transform(self, X: np.ndarray) -> np.ndarray:
        if self.channels is None:
            raise RuntimeError("fit() must be called before transform()")
        if X.ndim != 5 or X.shape[1] != self.channels:
            raise DataError(f"volumes must be (N, {self.channels}, D, H, W), got {X.shape}")
        mode = self.cfg.image.intensity
        if mode == "channel":
            assert self.mean is not None and self.std is not None
            return ((X - self.mean[None, :, None, None, None]) / self.std[None, :, None, None, None]).astype(np.float32)
        if mode == "image":
            mean = X.mean(axis=(2, 3, 4), keepdims=True)
            std = np.maximum(X.std(axis=(2, 3, 4), keepdims=True), 1e-6)
            return ((X - mean) / std).astype(np.float32)
        return X.astype(np.float32, copy=False)

    def baseline_features(self, X_model: np.ndarray) -> np.ndarray:
        """Classification: voxels averaged down to ``baseline_side``³ per channel ``(N, C·s³)``;
        segmentation: the volumes themselves."""
        if self.segmentation:
            return X_model
        side = self.opts.baseline_side
        x = torch.from_numpy(np.ascontiguousarray(X_model, dtype=np.float32))
        pooled = torch.nn.functional.adaptive_avg_pool3d(x, tuple(min(side, s) for s in x.shape[-3:]))
        return pooled.reshape(len(x), -1).numpy()

    def train_augment(self) -> BatchAugment | None:
        names = list(self.cfg.image.augment) if self.cfg.image.augment is not None else ["flip", "rot90"]
        crop = self.opts.tile_size if self.segmentation else None
        if not names and crop is None:
            return None
        return VolumeAugment(
            names, time_axis=self.opts.time_axis, crop=crop, crops_per_volume=self.opts.crops_per_volume if crop else 1
        )

    def model_params(self) -> dict[str, Any]:
        """Segmentation: the voxel spacing ``[z, y, x]`` where known (the 3-D U-Net convolves in-plane only
        on levels whose voxels are much flatter than deep)."""
        if self.segmentation and self.spacing is not None:
            return {"spacing": [float(s) for s in self.spacing]}
        return {}

    def configure_model(self, model: torch.nn.Module) -> None:
        """3-D segmentation networks predict volumes larger than the window in overlapping windows."""
        setter = getattr(model, "set_inference_window", None)
        if setter is not None:
            window = self.opts.predict_tile_size or [2 * s for s in self.opts.tile_size]
            setter(tuple(int(s) for s in window), self.cfg.image.tile_overlap)

    # ------------------------------------------------------------------ outputs
    def write_masks(self, probs: np.ndarray, out_dir: Path, ids: Sequence[str], threshold: float = 0.5) -> list[Path]:
        """Predicted label stacks ``(D, H, W)`` as TIFF files (original shapes); returns their paths."""
        import tifffile

        from biodl.data.image.io import as_hard

        hard = as_hard(probs, threshold)
        classes = self.mask_classes or ["0", "1"]
        try:
            values = np.array([0, 255]) if classes == ["0", "1"] else np.array([int(float(c)) for c in classes])
        except ValueError:
            values = np.arange(len(classes))
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for i, ident in enumerate(ids):
            d, h, w = self.volume_shapes[i] if i < len(self.volume_shapes) else hard.shape[-3:]
            path = out_dir / Path(str(ident).replace("/", "__")).with_suffix(".tif").name
            tifffile.imwrite(path, values[hard[i, :d, :h, :w]].astype(np.uint8 if values.max() < 256 else np.uint16))
            written.append(path)
        return written

    def columns(self) -> dict[str, Any]:
        return {"layout": self.layout, "mask_classes": self.mask_classes, "time_axis": bool(self.opts.time_axis)}

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta: dict[str, Any] = {
            "channels": self.channels,
            "shape": list(self.shape) if self.shape is not None else None,
            "mask_classes": self.mask_classes,
            "layout": self.layout,
            "spacing": self.spacing,
        }
        arrays = {"mean": self.mean, "std": self.std} if self.mean is not None and self.std is not None else {}
        return meta, arrays

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.channels = meta.get("channels")
        shape = meta.get("shape")
        self.shape = (int(shape[0]), int(shape[1]), int(shape[2])) if shape else None
        self.mask_classes = meta.get("mask_classes")
        self.layout = meta.get("layout")
        self.spacing = meta.get("spacing")
        if "mean" in arrays:
            self.mean = np.asarray(arrays["mean"], dtype=np.float32)
            self.std = np.asarray(arrays["std"], dtype=np.float32)


def frame_label_names(frames: int) -> list[str]:
    """The target names of per-frame labels of ``frames``-frame clips: ``frame_0 .. frame_{T-1}``."""
    return [f"frame_{j}" for j in range(frames)]


def _stacks_read(notes: list[str]) -> str:
    """One console line on how the stacks' planes were read, e.g. ``24 stacks read: 8 pages read as planes
    (no metadata)``; several ways with their counts of stacks (at most 5 listed)."""
    counts: dict[str, int] = {}
    for n in notes:
        counts[n] = counts.get(n, 0) + 1
    head = f"{len(notes)} stack{'s' if len(notes) != 1 else ''} read: "
    if len(counts) == 1:
        return head + notes[0]
    parts = [f"{k} with {n}" for n, k in counts.items()]
    more = f"; and {len(parts) - 5} other way(s)" if len(parts) > 5 else ""
    return head + "; ".join(parts[:5]) + more


def _single(paths: list[str], what: str) -> str:
    if len(paths) != 1:
        raise DataError(f"expected one path ({what}), got {len(paths)}")
    return paths[0]


def _name(src: image_sources.Source, i: int) -> str:
    return str(src.files[i]) if src.files else str(src.ids[i])


def _source_name(src: image_sources.Source) -> str:
    return str(Path(src.files[0]).parent) if src.files else "NPZ arrays"


def _decode_stack_bytes(buf: Any, name: str) -> np.ndarray:
    """``(C, D, H, W)`` raw values of NPY or TIFF bytes."""
    from biodl.data.image.io import read_tiff_array, tiff_layout
    from biodl.data.volume.io import _planes_first

    head = buf.getvalue()[:6]
    if head.startswith(b"\x93NUMPY"):
        try:
            arr = np.load(buf, allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"{name}: cannot read the NPY bytes ({exc})") from None
        return arr[None] if arr.ndim == 3 else np.asarray(arr)
    layout = tiff_layout(buf, name)
    buf.seek(0)
    return _planes_first(read_tiff_array(buf, name, layout), layout, name)[0]


def _mask_classes(masks: Sequence[np.ndarray], iopts: Any) -> list[str]:
    if iopts.mask_threshold is not None:
        return ["0", "1"]
    values = sorted({float(v) for m in masks for v in np.unique(m)})
    if iopts.mask_type in ("auto", "binary") and len(values) > 2:
        raise DataError(
            f"mask stacks have more than two values ({values[:8]}); set data.image.mask_threshold (--mask-threshold) "
            "or mask_type: multiclass"
        )
    if len(values) == 1:
        values = sorted({0.0, values[0]} if values[0] > 0 else {values[0], 1.0})
    return [str(int(v)) if float(v).is_integer() else repr(v) for v in values]


def _encode_mask(m: np.ndarray, classes: list[str] | None, iopts: Any, name: str) -> np.ndarray:
    if iopts.mask_threshold is not None:
        return (m > iopts.mask_threshold).astype(np.int32)
    assert classes is not None
    lut = {float(c): i for i, c in enumerate(classes)}
    u, inv = np.unique(m, return_inverse=True)
    unknown = [float(v) for v in u if float(v) not in lut]
    if unknown:
        raise DataError(f"{name}: mask stack has unexpected value(s) {unknown[:6]}; the classes are {classes}")
    return np.array([lut[float(v)] for v in u], dtype=np.int32)[inv].reshape(m.shape)
