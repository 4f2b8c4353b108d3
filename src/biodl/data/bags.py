"""The ``bags`` data type: multiple-instance learning, one label per bag of instances.

Instances are table rows grouped by a bag-id column (``--bag-column``; ``--data-type tabular``
with a bag column reads bags) or tiles cut on a grid from images with image-level labels
(``data.bags.instances: image``). Bags of different sizes are padded to the largest bag of the
file; the last feature (tables) or channel (images) of every instance is its mask, 1 for a real
instance and 0 for padding, so a batch is one array:

* tables: ``(N, M, F + 1)``;
* images: ``(N, M, C + 1, t, t)`` (the mask channel is constant over the tile).

Each row of the data is one bag, so every split, cross-validation fold and prediction is by
bag: the instances of a bag never end up on both sides of a split. Preprocessing (feature
standardisation, image channel statistics) is fitted on the real instances of training bags.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from biodl.data.base import DATA_TYPES, BatchAugment, LoadedData, Modality
from biodl.data.readers import read_raw
from biodl.data.split_columns import fold_column
from biodl.data.tabular import Tabular
from biodl.data.targets import encode_targets
from biodl.errors import DataError


def pack_bags(instances: Sequence[np.ndarray], max_instances: int | None = None) -> np.ndarray:
    """Pad bags to one array with a mask.

    Parameters
    ----------
    instances
        One array ``(K_i, *S)`` per bag (``K_i >= 1`` instances of shape ``S``).
    max_instances
        Pad to at least this many instances (default: the largest bag).

    Returns
    -------
    np.ndarray
        ``(N, M, F + 1)`` for ``S = (F,)``; ``(N, M, C + 1, H, W)`` for ``S = (C, H, W)``; the
        last feature/channel is 1 for real instances and 0 for padding (whose values are 0).
    """
    if not instances:
        raise DataError("no bags")
    shape = instances[0].shape[1:]
    m = max(max(len(b) for b in instances), max_instances or 0)
    out = np.zeros((len(instances), m, shape[0] + 1, *shape[1:]), dtype=np.float32)
    for i, b in enumerate(instances):
        out[i, : len(b), :-1] = b
        out[i, : len(b), -1] = 1.0
    return out


def synthetic_bags(in_shape: Sequence[int], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` valid packed bags of model input shape ``in_shape`` (``(M, F + 1)`` or ``(M, C + 1, t, t)``),
    as :func:`pack_bags` lays them out: 1 to ``M`` standard-normal instances per bag (the first bag full,
    the second a single instance), zero padding after them, and the 0/1 mask in the last feature/channel.
    For checks that need inputs of a bag model without data (export parity)."""
    m, inner = int(in_shape[0]), tuple(int(s) for s in in_shape[1:])
    shape = (inner[0] - 1, *inner[1:])
    sizes = rng.integers(1, m + 1, size=n)
    sizes[: min(n, 2)] = [m, 1][: min(n, 2)]
    return pack_bags([rng.standard_normal((int(k), *shape)).astype(np.float32) for k in sizes], max_instances=m)


def bag_mask(X: np.ndarray) -> np.ndarray:
    """``(N, M)`` boolean mask of real instances of packed bags."""
    m = X[:, :, -1]
    while m.ndim > 2:
        m = m[..., 0]
    return m > 0.5


def _constant_within(frame: pd.DataFrame, column: str, bags: np.ndarray, names: np.ndarray, source: str, what: str) -> None:
    """Raise naming the first bag whose rows disagree on ``column``."""
    sub = pd.DataFrame({"bag": bags, "v": frame[column].astype(str).where(frame[column].notna(), "")})
    counts = sub.groupby("bag", sort=False)["v"].nunique()
    bad = counts[counts > 1]
    if len(bad):
        b = int(bad.index[0])
        rows = np.flatnonzero(bags == b)
        values = list(dict.fromkeys(sub["v"].to_numpy()[rows].tolist()))
        raise DataError(
            f"{source}: bag {str(names[b])!r} has different {what} in column {column!r}: {values} (rows "
            f"{', '.join(str(r + 1) for r in rows[:6])}{'...' if len(rows) > 6 else ''}); a bag has one {what[:-1]}"
            + (f" ({len(bad)} bag(s) affected)" if len(bad) > 1 else "")
        )


class InstanceDropout:
    """Training augmentation of packed bags: every real instance is dropped (masked out) with
    probability ``p``, independently per bag and step; at least one instance of each bag stays.

    Works on tables ``(B, M, F + 1)`` and image tiles ``(B, M, C + 1, t, t)`` (the mask is the last
    feature/channel); the pooling operators ignore masked instances, so a dropped instance is as if
    the bag had never held it (a random sub-bag each step, cf. bag subsampling).
    """

    def __init__(self, p: float) -> None:
        self.p = float(p)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        image = x.ndim == 5
        mask = x[:, :, -1, 0, 0] if image else x[..., -1]
        real = mask > 0.5
        keep = real & (torch.rand(mask.shape, device=x.device) >= self.p)
        # one randomly chosen real instance per bag always stays
        pick = torch.argmax(torch.rand(mask.shape, device=x.device) * real, dim=1)
        keep[torch.arange(len(x), device=x.device), pick] |= real[torch.arange(len(x), device=x.device), pick]
        out = x.clone()
        if image:
            out[:, :, -1] = keep.to(x.dtype)[:, :, None, None].expand_as(out[:, :, -1])
        else:
            out[..., -1] = keep.to(x.dtype)
        return out


@DATA_TYPES.register("bags")
class BagModality(Modality):
    """Bags of table rows or image tiles with one label per bag (multiple-instance learning)."""

    name: ClassVar[str] = "bags"
    input_hint: ClassVar[str] = (
        'a bag: table bags, a list of instance feature rows or {"instances": [...]}; image bags, one whole image '
        "(base64-encoded PNG, JPEG or TIFF), cut into instances as in training"
    )

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.kind: str | None = None
        self.table = Tabular(cfg)
        self.image: Any = None
        self.feature_names: list[str] | None = None
        #: per loaded bag: instance names (row numbers) or tile positions ``(K_i, 2)`` (top, left)
        self.instance_names: list[list[str]] = []
        self.positions: list[np.ndarray] = []
        self.files: list[str] = []
        self.image_sizes: list[tuple[int, int]] = []
        #: instances per bag the model was trained with: smaller bags are padded to it, so that
        #: batches of different requests have one shape
        self.bag_size: int | None = None

    @property
    def opts(self) -> Any:
        return self.cfg.bags

    def input_description(self) -> str:
        """What one request input is for this bag model (table rows or a whole image), for ``GET /model``."""
        if self.kind != "image":
            return (
                "a bag: a list of instances, each a feature row (numbers in the feature-column order, or a {column: value} "
                'object), or {"instances": [...]}'
            )
        opts = self.opts
        t = opts.tile_size
        if opts.crops == "objects":
            cut = f"one {t}×{t} crop per foreground object (at least {opts.min_object_area} pixels)"
        else:
            cut = f"{t}×{t} tiles on a grid" + (f" (step {opts.tile_stride})" if opts.tile_stride else "")
            if opts.foreground is not None:
                cut += f", keeping tiles with at least {opts.foreground:g} foreground"
        n = self.image.channels if self.image is not None else None
        channels = f" ({n} channel{'s' if n != 1 else ''})" if n else ""
        return (
            f"an image bag: one whole image{channels} per input (a base64-encoded PNG, JPEG or TIFF file, "
            f'{{"image": BASE64}}, or nested lists of pixel values), cut into {cut}; each piece is one instance of the bag, '
            "and the prediction has a weight per instance"
        )

    def _kind(self, paths: list[str]) -> str:
        if self.kind is not None:
            return self.kind
        kind = self.opts.instances
        if kind == "auto":
            p = Path(paths[0]) if paths else Path(".")
            kind = "image" if p.is_dir() or p.suffix.lower() == ".npz" else "tabular"
        self.kind = kind
        return kind

    def for_fold(self) -> Modality:
        fresh = BagModality(self.cfg)
        fresh.kind, fresh.feature_names = self.kind, self.feature_names
        fresh.table.feature_names = self.feature_names
        return fresh

    # ------------------------------------------------------------------ reading
    def load(self, paths: list[str], *, require_targets: bool = True, classes: list[str] | None = None) -> LoadedData:
        if not paths:
            raise DataError("no data file given (--data-path)")
        if self._kind(paths) == "image":
            return self._load_images(paths, require_targets, classes)
        return self._load_table(paths, require_targets, classes)

    def _load_table(self, paths: list[str], require_targets: bool, classes: list[str] | None) -> LoadedData:
        cfg = self.cfg
        col = cfg.bag_column
        if col is None:
            raise DataError("table bags need the bag identifier column: --bag-column NAME")
        frames, feats = [], []
        for p in paths:
            raw = read_raw(p, hdf5_features=cfg.hdf5_features, h5ad_layer=cfg.h5ad_layer)
            if col not in raw.frame.columns:
                raise DataError(f"{p}: bag column {col!r} not found; columns are {list(raw.frame.columns)[:20]}")
            if require_targets:
                absent = [c for c in cfg.target_columns if c not in raw.frame.columns]
                if absent:
                    raise DataError(f"{p}: target column {absent[0]!r} not found; columns are {list(raw.frame.columns)[:20]}")
            X, names, _ = self.table._features(raw)  # cells skipped by data.bad_values=skip are NaN: refused below
            if self.feature_names is not None and names != self.feature_names:
                raise DataError(f"{p}: feature columns differ from {paths[0]}")
            self.feature_names = self.table.feature_names = names
            bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
            if bad.size:
                name = names[int(np.flatnonzero(~np.isfinite(X[bad[0]]))[0])]
                raise DataError(
                    f"{p}: {bad.size} row(s) have missing/non-finite feature values (first: row {bad[0] + 1}, "
                    f"column {name!r}); impute or drop them first"
                )
            frames.append(raw.frame)
            feats.append(X)
        frame = pd.concat(frames, ignore_index=True)
        X = np.concatenate(feats)
        source = ", ".join(paths)
        if len(frame) == 0:
            raise DataError(f"{source}: no rows")
        empty = np.flatnonzero(frame[col].isna().to_numpy() | (frame[col].astype(str).str.strip() == "").to_numpy())
        if empty.size:
            raise DataError(
                f"{source}: row {empty[0] + 1} has no bag id in column {col!r} ({empty.size} row(s)); every instance needs a bag"
            )
        codes, names_idx = pd.factorize(frame[col].astype(str), sort=False)
        bag_names = np.asarray(names_idx, dtype=object).astype(str)
        has_targets = bool(cfg.target_columns) and all(c in frame.columns for c in cfg.target_columns)
        checks = [(c, "labels") for c in cfg.target_columns if has_targets]
        checks += [(c, "folds") for c in [cfg.cv_column] if c and c in frame.columns]
        checks += [(c, "groups") for c in [cfg.group_column] if c and c in frame.columns]
        for column, what in checks:
            _constant_within(frame, column, codes, bag_names, source, what)
        first = pd.Series(np.arange(len(codes))).groupby(codes).first().to_numpy()
        bag_frame = frame.iloc[first].reset_index(drop=True)
        order = np.argsort(codes, kind="stable")
        sizes = np.bincount(codes, minlength=len(bag_names))
        members = np.split(order, np.cumsum(sizes)[:-1])
        self._check_sizes(sizes, bag_names, source)
        self.instance_names = [[str(r + 1) for r in m] for m in members]
        packed = pack_bags([X[m] for m in members])
        targets = None
        if require_targets or has_targets:
            if not cfg.target_columns:
                raise DataError("no target columns given (--target-columns)")
            if cfg.task is None:
                raise DataError("no task given (--task classification|regression|multilabel)")
            targets = encode_targets(bag_frame, cfg.target_columns, cfg.task, source=source, classes=classes)
        groups = bag_frame[cfg.group_column].astype(str).to_numpy() if cfg.group_column in bag_frame.columns else None
        if cfg.group_column is not None and groups is None:
            raise DataError(f"{paths[0]}: group column {cfg.group_column!r} not found")
        folds = fold_column(bag_frame, cfg.cv_column, source) if cfg.cv_column else None
        summary = {
            "files": list(paths),
            "bags": len(bag_names),
            "instances": len(X),
            "instances per bag (min/median/max)": [int(sizes.min()), float(np.median(sizes)), int(sizes.max())],
            "features": len(self.feature_names or []),
        }
        return LoadedData(packed, targets, bag_names, groups, summary, folds=folds)

    def _check_sizes(self, sizes: np.ndarray, names: Sequence[str] | np.ndarray, source: str) -> None:
        empty = np.flatnonzero(sizes == 0)
        if empty.size:
            raise DataError(f"{source}: bag {str(names[empty[0]])!r} is empty (no instances; {empty.size} bag(s))")
        cap = self.opts.max_instances
        if cap is not None and sizes.max() > cap:
            b = int(np.argmax(sizes))
            raise DataError(
                f"{source}: bag {str(names[b])!r} has {int(sizes[b])} instances, more than data.bags.max_instances={cap}"
            )

    def _load_images(self, paths: list[str], require_targets: bool, classes: list[str] | None) -> LoadedData:
        from biodl.data.bag_images import load_image_bags

        if self.image is None:
            from biodl.data.image.modality import ImageModality

            self.image = ImageModality(self.cfg)
        bags, info = load_image_bags(self.image, paths, require_targets=require_targets, classes=classes, opts=self.opts)
        sizes = np.array([len(b) for b in bags.tiles])
        self._check_sizes(sizes, bags.ids, ", ".join(paths))
        self.positions, self.files, self.image_sizes = bags.positions, bags.files, bags.image_sizes
        self.instance_names = [[f"{int(y)},{int(x)}" for y, x in pos] for pos in bags.positions]
        info["instances per bag (min/median/max)"] = [int(sizes.min()), float(np.median(sizes)), int(sizes.max())]
        return LoadedData(pack_bags(bags.tiles), bags.targets, np.asarray(bags.ids), bags.groups, info, parts=bags.parts)

    def parse_inputs(self, inputs: list[Any]) -> np.ndarray:
        """Bags given as lists of instances (each a list of feature values in training column order or
        a ``{column: value}`` object), or ``{"instances": [...]}`` objects; image bags: one image per
        input (base64 PNG/JPEG/TIFF text, ``{"image": ...}``, or nested pixel lists), cut into instances
        as in training. ``instance_names`` then holds each bag's instance names (tile corners ``y,x``)."""
        if self.kind == "image":
            return self._parse_images(inputs)
        bags = []
        for i, rec in enumerate(inputs):
            if isinstance(rec, dict):
                rec = rec.get("instances")
            if not isinstance(rec, list) or not rec:
                raise DataError(f"input {i}: expected a bag: a non-empty list of instances (or {{'instances': [...]}})")
            try:
                bags.append(self.table.parse_inputs(rec))
            except DataError as exc:
                raise DataError(f"input {i}: {str(exc).replace('input ', 'instance ', 1)}") from None
        self.instance_names = [[str(k + 1) for k in range(len(b))] for b in bags]
        return pack_bags(bags)

    def _parse_images(self, inputs: list[Any]) -> np.ndarray:
        from biodl.data.bag_images import cut_instances

        bags, names, positions = [], [], []
        for i, rec in enumerate(inputs):
            try:
                img = self.image.parse_inputs([rec])[0]
            except DataError as exc:
                raise DataError(str(exc).replace("input 0", f"input {i}", 1)) from None
            tiles, pos, _ = cut_instances(np.asarray(img, dtype=np.float32), self.opts, f"input {i}")
            bags.append(tiles)
            positions.append(pos)
            names.append([f"{int(y)},{int(x)}" for y, x in pos])
        self.instance_names, self.positions = names, positions
        return pack_bags(bags)

    # ------------------------------------------------------------ preprocessing
    def _instances(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask = bag_mask(X)
        return X[:, :, :-1][mask], mask

    def fit(self, X_train: np.ndarray) -> None:
        self.bag_size = int(X_train.shape[1])
        inst, _ = self._instances(X_train)
        if self.kind == "image":
            self.image.fit(inst)
        else:
            self.table.fit(inst)

    def transform(self, X: np.ndarray) -> np.ndarray:
        if self.bag_size is not None and X.shape[1] < self.bag_size:
            pad = np.zeros((X.shape[0], self.bag_size - X.shape[1], *X.shape[2:]), dtype=X.dtype)
            X = np.concatenate([X, pad], axis=1)
        inst, mask = self._instances(X)
        out = np.zeros_like(X, dtype=np.float32)
        out[:, :, :-1][mask] = self.image.transform(inst) if self.kind == "image" else self.table.transform(inst)
        out[:, :, -1] = X[:, :, -1]
        return out

    def input_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def baseline_features(self, X_model: np.ndarray) -> np.ndarray:
        """Mean-pooled instances ``(N, F)`` (images: tiles average-pooled to at most 8×8 first)."""
        mask = bag_mask(X_model).astype(np.float32)
        x = X_model[:, :, :-1]
        if x.ndim == 5:
            t = torch.from_numpy(np.ascontiguousarray(x.reshape(-1, *x.shape[2:])))
            side = (min(8, x.shape[-2]), min(8, x.shape[-1]))
            x = torch.nn.functional.adaptive_avg_pool2d(t, side).reshape(x.shape[0], x.shape[1], -1).numpy()
        w = mask / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
        return np.einsum("nm,nmf->nf", w, x).astype(np.float32)

    def train_augment(self) -> BatchAugment | None:
        p = self.opts.instance_dropout
        return InstanceDropout(p) if p > 0 else None

    def report_figures(
        self, model: torch.nn.Module, X_model: np.ndarray, data: LoadedData, rows: np.ndarray, y_pred: np.ndarray, figdir: Path
    ) -> dict[str, Path]:
        """Instance weights of a few bags: overlays on the images (image bags) or a bar chart (tables)."""
        from biodl.data.bag_figures import bag_figures

        return bag_figures(self, model, X_model, data, rows, figdir)

    def columns(self) -> dict[str, Any]:
        return {"bag_column": self.cfg.bag_column, "instances": self.kind, "feature_columns": self.feature_names}

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        inner = self.image if self.kind == "image" else self.table
        meta, arrays = inner.state() if inner is not None else ({}, {})
        return {"instances": self.kind, "feature_columns": self.feature_names, "bag_size": self.bag_size, "inner": meta}, arrays

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.kind = meta.get("instances")
        self.bag_size = meta.get("bag_size")
        self.feature_names = meta.get("feature_columns")
        if self.kind == "image":
            from biodl.data.image.modality import ImageModality

            self.image = ImageModality(self.cfg)
            self.image.load_state(meta.get("inner", {}), arrays)
            self.image.size = None  # whole images of any size are tiled; the inner size is the tile's
        else:
            self.table.load_state(meta.get("inner", {}), arrays)
            self.table.feature_names = self.feature_names
