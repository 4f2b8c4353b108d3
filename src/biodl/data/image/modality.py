"""The ``image`` data type: classification and segmentation of 2-D images.

Inputs are channel-first float32 stacks ``(N, C, H, W)`` standardised per channel with
training-set statistics (review: "subtracting the mean pixel intensity per colour channel").

* Classification: class folders, a table of image paths + label column(s) (multi-label too), or
  NPZ arrays in MedMNIST layout with its predefined train/val/test split. Images of different
  sizes need ``data.image.size`` (resize).
* Segmentation (``--mask-dir``): images paired with masks by file name. Binary masks (two values,
  or ``mask_threshold``), multi-class label masks or instance label masks. Images of different
  sizes are padded to a common size with unlabelled (-1) mask pixels; training uses random
  ``tile_size`` crops and prediction overlapping sliding windows, so large images never pass
  through the network at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from biodl.data.base import DATA_TYPES, BatchAugment, LoadedData, Modality
from biodl.data.image import sources
from biodl.data.image.augment import ImageAugment, Intensity
from biodl.data.image.io import (
    convert_channels,
    decode_base64_image,
    read_image,
    read_mask,
    resize,
    scale_intensity,
    to_channel_first,
)
from biodl.data.image.masks import encode_mask, find_mask_classes, mask_pixel_values
from biodl.data.image.outputs import write_mask_pngs, write_probability_tiffs
from biodl.data.targets import Targets, encode_targets
from biodl.errors import ConfigError, DataError


@DATA_TYPES.register("image")
class ImageModality(Modality):
    """2-D images for classification (``task: classification | multilabel | regression``) and
    segmentation (``task: segmentation``)."""

    name: ClassVar[str] = "image"
    input_hint: ClassVar[str] = "a base64-encoded image file (PNG, JPEG or TIFF)"

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.channels: int | None = None
        self.size: tuple[int, int] | None = None
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.mask_classes: list[str] | None = None
        #: Files and original (H, W) of the most recent :meth:`load`, for writing predicted masks.
        self.files: list[str] = []
        self.image_sizes: list[tuple[int, int]] = []
        self.layout: str | None = None

    # ------------------------------------------------------------------ options
    @property
    def opts(self) -> Any:
        """The ``data.image`` section."""
        return self.cfg.image

    @property
    def segmentation(self) -> bool:
        """Whether the task is segmentation."""
        return self.cfg.task == "segmentation" or bool(self.opts.mask_dir)

    # ------------------------------------------------------------------ reading
    def load(self, paths: list[str], *, require_targets: bool = True, classes: list[str] | None = None) -> LoadedData:
        cfg, opts = self.cfg, self.opts
        if not paths:
            raise DataError("no image data given (--data-path: a folder, image files, a CSV of paths or an NPZ file)")
        if opts.mask_dir and cfg.task not in (None, "segmentation"):
            raise DataError(f"--mask-dir is for segmentation, but the task is {cfg.task!r}; use --task segmentation")
        layout = opts.layout if opts.layout != "auto" else sources.detect_layout(paths, opts.mask_dir)
        if self.segmentation and layout not in ("masks", "npz"):
            if not opts.mask_dir:
                raise DataError("segmentation needs masks: --mask-dir FOLDER (masks paired with the images by file name)")
            layout = "masks"
        self.layout = layout
        if layout == "masks":
            if not opts.mask_dir:
                raise DataError("layout 'masks' needs data.image.mask_dir (--mask-dir)")
            if require_targets:
                src = sources.image_mask_pairs(paths, opts.mask_dir, require_masks=True)
            else:  # predictions need no masks (the training mask folder is not searched)
                files, ids = sources.image_files(paths)
                src = sources.Source(files, ids, pd.DataFrame(index=range(len(files))), [], "masks", masks=[None] * len(files))
        elif layout == "npz":
            src = sources.npz_arrays(self._single(paths, "an NPZ file"), self._npz_parts(paths[0], classes))
        elif layout == "table":
            src = sources.path_table(
                self._single(paths, "a table"), opts.image_column, list(cfg.target_columns), cfg.group_column
            )
        elif layout == "folders":
            src = sources.class_folders(self._single(paths, "a folder of class folders"))
        else:
            files, ids = sources.image_files(paths)
            if require_targets and not self.segmentation:
                raise DataError(
                    f"{paths[0]}: images without labels; give a folder with one sub-folder per class, "
                    "a CSV of image paths with a label column, an NPZ file, or masks (--mask-dir)"
                )
            src = sources.Source(files, ids, pd.DataFrame(index=range(len(files))), [], "files")
        if self.segmentation:
            return self._load_segmentation(src, require_targets, classes)
        return self._load_classification(src, require_targets, classes)

    def _npz_parts(self, path: str, classes: list[str] | None) -> list[str] | None:
        """Parts of a MedMNIST file to read: as configured; for a saved model (``classes`` known)
        its ``test`` part when there is one, so evaluating on the full file scores the test split."""
        if self.opts.npz_parts is not None:
            return list(self.opts.npz_parts)
        if classes is None:
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return ["test"] if "test_images" in z.files else None
        except (OSError, ValueError):
            return None  # reported by the reader

    @staticmethod
    def _single(paths: list[str], what: str) -> str:
        if len(paths) != 1:
            raise DataError(f"expected one path ({what}), got {len(paths)}")
        return paths[0]

    def _images(self, src: sources.Source) -> list[np.ndarray]:
        """``(C, H, W)`` float32 images of a source, channel-converted and checked."""
        opts = self.opts
        out: list[np.ndarray] = []
        if src.arrays is not None:
            arr = np.asarray(src.arrays)
            per = arr.shape[1:]
            for i in range(len(arr)):
                name = f"{src.ids[i]} (NPZ row {i})"
                img = to_channel_first(arr[i], opts.channel_axis, channels_last_hint=len(per) == 3 and per[-1] <= 4, name=name)
                out.append(convert_channels(scale_intensity(img, name), opts.channels, name))
        else:
            for f in src.files:
                out.append(read_image(f, channel_axis=opts.channel_axis, channels=opts.channels))
        self._check_channels(out, src)
        return out

    def _name(self, src: sources.Source, i: int) -> str:
        return str(src.files[i]) if src.files else src.ids[i]

    def _check_channels(self, images: list[np.ndarray], src: sources.Source) -> None:
        expected = self.channels if self.channels is not None else (images[0].shape[0] if images else None)
        for i, img in enumerate(images):
            if img.shape[0] != expected:
                what = "the model takes" if self.channels is not None else f"{self._name(src, 0)} has"
                raise DataError(
                    f"{self._name(src, i)}: has {img.shape[0]} channel(s) but {what} {expected}; "
                    "convert with data.image.channels (--channels 1 or 3)"
                )

    def _fit_size(self, img: np.ndarray, name: str) -> np.ndarray:
        """Classification input of the configured/trained size (resize, pad or error)."""
        opts = self.opts
        if opts.size is not None:
            return resize(img, (int(opts.size[0]), int(opts.size[1])))
        if self.size is None:
            return img
        h, w = img.shape[-2:]
        th, tw = self.size
        if (h, w) == (th, tw):
            return img
        if h <= th and w <= tw and opts.small_images == "pad":
            top, left = (th - h) // 2, (tw - w) // 2
            return np.pad(img, ((0, 0), (top, th - h - top), (left, tw - w - left)), mode="edge")
        smaller = "smaller than" if h <= th and w <= tw else "a different size from"
        raise DataError(
            f"{name}: image is {h}×{w}, {smaller} the model input {th}×{tw}; "
            "set data.image.size (--image-size) to resize, or small_images: pad"
        )

    def _load_classification(self, src: sources.Source, require_targets: bool, classes: list[str] | None) -> LoadedData:
        cfg = self.cfg
        images = self._images(src)
        fitted = [self._fit_size(img, self._name(src, i)) for i, img in enumerate(images)]
        shapes = {img.shape[-2:] for img in fitted}
        if len(shapes) > 1:
            first = fitted[0].shape[-2:]
            odd = next(i for i, img in enumerate(fitted) if img.shape[-2:] != first)
            raise DataError(
                f"{self._name(src, odd)}: image is {fitted[odd].shape[-2]}×{fitted[odd].shape[-1]} but "
                f"{self._name(src, 0)} is {first[0]}×{first[1]}; set data.image.size (--image-size H W) to resize them"
            )
        X = np.stack(fitted).astype(np.float32, copy=False)
        targets = None
        label_cols = src.label_columns
        has_labels = bool(label_cols) and all(c in src.frame.columns for c in label_cols)
        if require_targets or has_labels:
            if not has_labels:
                raise DataError("no labels found (class folders, a label column, or NPZ labels)")
            task = cfg.task or ("multilabel" if len(label_cols) > 1 else "classification")
            if task == "segmentation":
                raise DataError("task 'segmentation' needs masks (--mask-dir)")
            targets = encode_targets(src.frame, label_cols, task, source=self._source_name(src), classes=classes)
        self.files = [str(f) for f in src.files] or list(src.ids)
        self.image_sizes = [tuple(img.shape[-2:]) for img in images]  # type: ignore[misc]
        summary = {
            "layout": src.layout,
            "images": len(X),
            "image shape (C, H, W)": list(X.shape[1:]),
        }
        if src.parts is not None:
            summary["predefined split"] = {p: int((src.parts == p).sum()) for p in ("train", "val", "test")}
        return LoadedData(X, targets, np.asarray(src.ids), src.groups, summary, parts=src.parts)

    @staticmethod
    def _source_name(src: sources.Source) -> str:
        if src.files:
            return str(Path(src.files[0]).parent if src.layout != "folders" else Path(src.files[0]).parent.parent)
        return "NPZ arrays"

    # ------------------------------------------------------------ segmentation
    def _masks(self, src: sources.Source, images: list[np.ndarray], require: bool) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        for i, img in enumerate(images):
            if src.mask_arrays is not None:
                m: np.ndarray | None = np.asarray(src.mask_arrays[i])
                name = f"{src.ids[i]} (NPZ mask {i})"
            else:
                mf = src.masks[i] if src.masks else None
                m = read_mask(mf) if mf is not None else None
                name = str(mf)
            if m is None:
                if require:
                    raise DataError(f"{self._name(src, i)}: no mask")
                out.append(None)
                continue
            if m.shape != img.shape[-2:]:
                raise DataError(
                    f"{name}: mask is {m.shape[0]}×{m.shape[1]} but its image {self._name(src, i)} is "
                    f"{img.shape[-2]}×{img.shape[-1]}"
                )
            out.append(m)
        return out

    def _load_segmentation(self, src: sources.Source, require_targets: bool, classes: list[str] | None) -> LoadedData:
        opts = self.opts
        if opts.size is not None:
            raise ConfigError(
                "data.image.size resizes classification inputs; segmentation works at the images' own resolution "
                "(training uses tile_size crops; for a lower working resolution set the model's input_scale)"
            )
        images = self._images(src)
        for i, img in enumerate(images):
            if opts.small_images == "error" and min(img.shape[-2:]) < opts.tile_size:
                raise DataError(
                    f"{self._name(src, i)}: image is {img.shape[-2]}×{img.shape[-1]}, smaller than tile_size {opts.tile_size} "
                    "(set small_images: pad or a smaller data.image.tile_size)"
                )
        masks = self._masks(src, images, require_targets)
        names = [str(src.masks[i]) if src.masks else src.ids[i] for i in range(len(images))]
        have = [m for m in masks if m is not None]
        targets = None
        if have:
            if classes is not None:
                self.mask_classes = list(classes)
            elif self.mask_classes is None:
                self.mask_classes = find_mask_classes(masks, names, self.opts)
        H = max(img.shape[-2] for img in images)
        W = max(img.shape[-1] for img in images)
        X = np.zeros((len(images), images[0].shape[0], H, W), dtype=np.float32)
        for i, img in enumerate(images):
            h, w = img.shape[-2:]
            X[i] = np.pad(img, ((0, 0), (0, H - h), (0, W - w)), mode="edge") if (h, w) != (H, W) else img
        if have and (require_targets or len(have) == len(masks)):
            y = np.full((len(images), H, W), -1, dtype=np.int32)
            for i, m in enumerate(masks):
                if m is not None:
                    y[i, : m.shape[0], : m.shape[1]] = encode_mask(m, names[i], self.opts, self.mask_classes)
            assert self.mask_classes is not None
            targets = Targets(y, "segmentation", list(self.mask_classes), list(self.mask_classes))
        self.files = [str(f) for f in src.files] or list(src.ids)
        self.image_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        summary: dict[str, Any] = {
            "layout": src.layout,
            "images": len(X),
            "channels": int(X.shape[1]),
            "image sizes": sorted({f"{h}×{w}" for h, w in self.image_sizes}),
        }
        if targets is not None:
            summary["mask classes"] = targets.classes
            labelled = targets.y[targets.y >= 0]
            summary["foreground fraction"] = round(float((labelled > 0).mean()), 4) if labelled.size else None
        return LoadedData(X, targets, np.asarray(src.ids), src.groups, summary, parts=src.parts)

    # --------------------------------------------------------- request inputs
    def parse_inputs(self, inputs: list[Any]) -> np.ndarray:
        """Images given as base64 strings (PNG/JPEG/TIFF, optionally ``data:`` URLs), ``{"image": ...}``
        objects, or nested lists ``(H, W)`` / ``(C, H, W)`` / ``(H, W, C)`` of numbers."""
        opts = self.opts
        images = []
        for i, rec in enumerate(inputs):
            name = f"input {i}"
            if isinstance(rec, dict):
                rec = rec.get("image", rec.get("data"))
                if rec is None:
                    raise DataError(f"{name}: expected an object with an 'image' field (base64 text)")
            if isinstance(rec, str):
                img = decode_base64_image(rec, channel_axis=opts.channel_axis, channels=opts.channels, name=name)
            elif isinstance(rec, list):
                try:
                    arr = np.asarray(rec, dtype=np.float32)
                except (TypeError, ValueError):
                    raise DataError(f"{name}: pixel lists must be rectangular numbers") from None
                img = convert_channels(
                    scale_intensity(to_channel_first(arr, opts.channel_axis, channels_last_hint=False, name=name), name),
                    opts.channels,
                    name,
                )
            else:
                raise DataError(f"{name}: expected a base64-encoded image or a nested list of pixel values")
            if self.channels is not None and img.shape[0] != self.channels:
                raise DataError(f"{name}: has {img.shape[0]} channel(s) but the model takes {self.channels}")
            images.append(img if self.segmentation else self._fit_size(img, name))
        if not images:
            raise DataError("no inputs")
        shapes = {img.shape for img in images}
        if len(shapes) > 1:
            raise DataError(f"inputs of one request must have equal sizes, got {sorted(shapes)}")
        self.image_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        return np.stack(images).astype(np.float32, copy=False)

    # ------------------------------------------------------------ preprocessing
    def fit(self, X_train: np.ndarray) -> None:
        self.channels = int(X_train.shape[1])
        if not self.segmentation:
            self.size = (int(X_train.shape[2]), int(X_train.shape[3]))
        if self.opts.intensity == "channel":
            x = np.asarray(X_train, dtype=np.float64)
            self.mean = x.mean(axis=(0, 2, 3)).astype(np.float32)
            self.std = np.maximum(x.std(axis=(0, 2, 3)), 1e-6).astype(np.float32)

    def transform(self, X: np.ndarray) -> np.ndarray:
        if self.channels is None:
            raise RuntimeError("fit() must be called before transform()")
        if X.ndim != 4 or X.shape[1] != self.channels:
            raise DataError(f"images must be (N, {self.channels}, H, W), got {X.shape}")
        mode = self.opts.intensity
        if mode == "channel":
            assert self.mean is not None and self.std is not None
            return ((X - self.mean[None, :, None, None]) / self.std[None, :, None, None]).astype(np.float32)
        if mode == "image":
            mean = X.mean(axis=(2, 3), keepdims=True)
            std = np.maximum(X.std(axis=(2, 3), keepdims=True), 1e-6)
            return ((X - mean) / std).astype(np.float32)
        return X.astype(np.float32, copy=False)

    def baseline_features(self, X_model: np.ndarray) -> np.ndarray:
        """Classification: downsampled pixels ``(N, C·s·s)`` (area average to at most 16×16).

        Segmentation: the images themselves ``(N, C, H, W)``; the per-pixel baseline
        (:func:`biodl.baselines.run_pixel_baselines`) computes its own filter features.
        """
        if self.segmentation:
            return X_model
        x = torch.from_numpy(np.ascontiguousarray(X_model, dtype=np.float32))
        side = (min(16, x.shape[-2]), min(16, x.shape[-1]))
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, side)
        return pooled.reshape(len(x), -1).numpy()

    def train_augment(self) -> BatchAugment | None:
        opts = self.opts
        names = list(opts.augment) if opts.augment is not None else ["flip", "rot90"]
        crop = opts.tile_size if self.segmentation else None
        mean_std = (self.mean, self.std) if opts.intensity == "channel" else (None, None)
        if not names and opts.augment_strategy == "few-data" and crop is None:
            return None
        return ImageAugment(
            names,
            strategy=opts.augment_strategy,
            segmentation=self.segmentation,
            crop=crop,
            crops_per_image=opts.crops_per_image if self.segmentation else 1,
            filters=opts.filters,
            intensity=Intensity(*mean_std),
        )

    def configure_model(self, model: torch.nn.Module) -> None:
        """Segmentation networks predict images larger than the window in overlapping tiles."""
        setter = getattr(model, "set_inference_window", None)
        if setter is not None:
            opts = self.opts
            setter(opts.predict_tile_size or max(opts.tile_size, 512), opts.tile_overlap)

    # ------------------------------------------------------------------ outputs
    def mask_values(self) -> np.ndarray:
        """Pixel value written for each class index in predicted masks."""
        return mask_pixel_values(self.mask_classes)

    def write_masks(self, probs: np.ndarray, out_dir: Path, ids: Sequence[str], threshold: float = 0.5) -> list[Path]:
        """Write predicted masks (original image sizes, class values) as PNG files; returns their paths."""
        return write_mask_pngs(probs, out_dir, ids, self.image_sizes, self.mask_values(), threshold)

    def write_probabilities(self, probs: np.ndarray, out_dir: Path, ids: Sequence[str]) -> list[Path]:
        """Write probability maps as float32 TIFF files (original image sizes); returns their paths.

        One output map (binary masks): ``(H, W)``, the probability of the foreground class; else
        ``(K, H, W)``, one map per class in the order of the model's classes.
        """
        return write_probability_tiffs(probs, out_dir, ids, self.image_sizes)

    def columns(self) -> dict[str, Any]:
        return {"layout": self.layout, "mask_classes": self.mask_classes}

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta: dict[str, Any] = {
            "channels": self.channels,
            "size": list(self.size) if self.size is not None else None,
            "mask_classes": self.mask_classes,
            "layout": self.layout,
        }
        arrays: dict[str, np.ndarray] = {}
        if self.mean is not None and self.std is not None:
            arrays = {"mean": self.mean, "std": self.std}
        return meta, arrays

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.channels = meta.get("channels")
        size = meta.get("size")
        self.size = (int(size[0]), int(size[1])) if size else None
        self.mask_classes = meta.get("mask_classes")
        self.layout = meta.get("layout")
        if "mean" in arrays:
            self.mean = np.asarray(arrays["mean"], dtype=np.float32)
            self.std = np.asarray(arrays["std"], dtype=np.float32)
