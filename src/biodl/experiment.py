"""The experiment: split → normalise → train → evaluate (with baselines) → bundle → report.

>>> exp = Experiment.from_yaml("examples/pbmc.yaml")
>>> result = exp.fit("runs/pbmc")
>>> result.metrics["test"]["accuracy"]
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biodl.bundle import Bundle
from biodl.config import DataConfig, ExperimentConfig, apply_overrides
from biodl.data import DATA_TYPES, LoadedData, Modality
from biodl.data.normalise import TargetScaler
from biodl.data.splits import Split, kfold_splits, make_split, save_splits
from biodl.data.store import StoreRows, is_store, open_store, store_loader
from biodl.errors import ConfigError, DataError
from biodl.io_utils import atomic_write_text
from biodl.metrics import compute_metrics, main_metric, to_jsonable
from biodl.models import build_model, count_parameters
from biodl.training.fit import is_rank_zero


@dataclass
class RunResult:
    """What :meth:`Experiment.fit` returns.

    Attributes
    ----------
    output_dir
        The run directory (``config.yaml``, ``metrics.json``, ``model/``, ``report.html``...).
    metrics
        The content of ``metrics.json``.
    history
        Per-epoch learning curves (empty for cross-validation summaries).
    findings
        Learning-curve diagnostics, as dictionaries.
    bundle
        The trained model bundle (``None`` for a cross-validation summary).
    """

    output_dir: Path
    metrics: dict[str, Any]
    history: dict[str, list[float]] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    bundle: Bundle | None = None


def _stratify_labels(data: LoadedData) -> np.ndarray | None:
    t = data.targets
    if t is None:
        return None
    if t.kind == "multiclass":
        return t.y
    if t.kind == "binary" and t.y.shape[1] == 1:
        return np.where(np.isnan(t.y[:, 0]), -1, t.y[:, 0]).astype(np.int64)
    return None


class Experiment:
    """A configured experiment.

    Parameters
    ----------
    config
        An :class:`ExperimentConfig`, or a mapping of sections (validated).
    **sections
        Alternatively sections as keyword arguments: ``Experiment(data={...}, train={...})``.
    """

    def __init__(self, config: ExperimentConfig | Mapping[str, Any] | None = None, **sections: Any) -> None:
        if isinstance(config, ExperimentConfig):
            if sections:
                raise ConfigError("give either a config object or sections, not both")
            self.config = config
        else:
            raw = dict(config or {})
            raw.update(sections)
            self.config = ExperimentConfig.from_dict(raw)
        self._chunk_rows = 1024
        self._callbacks: list[Any] = []

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Sequence[str] = ()) -> Experiment:
        """Load from YAML, applying ``key=value`` overrides."""
        return cls(ExperimentConfig.from_yaml(path, overrides))

    def with_overrides(self, overrides: Sequence[str]) -> Experiment:
        """A copy with ``key=value`` overrides applied."""
        raw = self.config.to_dict()
        apply_overrides(raw, overrides)
        return Experiment(ExperimentConfig.from_dict(raw))

    # ------------------------------------------------------------------ running
    def fit(self, output_dir: str | Path, *, resume: bool = False, callbacks: Sequence[Any] = ()) -> RunResult:
        """Run the whole experiment, writing everything under ``output_dir``.

        ``callbacks`` are extra Lightning callbacks added to every training of this run
        (e.g. :class:`biodl.tune.pruning.PruningCallback`). PyTorch runs on ``train.threads``
        CPU threads throughout (training, prediction, explanations), if set.
        """
        from biodl.training.threads import torch_threads

        with torch_threads(self.config.train.threads):
            return self._fit(output_dir, resume=resume, callbacks=callbacks)

    def _fit(self, output_dir: str | Path, *, resume: bool, callbacks: Sequence[Any]) -> RunResult:
        cfg = self.config
        self._callbacks = list(callbacks)
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        if is_rank_zero():
            atomic_write_text(out / "config.yaml", cfg.to_yaml())
        if len(cfg.data.path) == 1 and is_store(cfg.data.path[0]):
            data, store_meta = open_store(cfg.data.path[0])
            self.config = cfg = _config_for_store(cfg, store_meta)
            modality = DATA_TYPES[store_meta["data_type"]](_store_data_config(cfg, store_meta))
            self._chunk_rows = int(store_meta["chunk_rows"])
            if data.targets is None:
                raise DataError(f"{cfg.data.path[0]}: the store has no targets to train on")
        else:
            modality = DATA_TYPES[cfg.data.type](cfg.data)
            data = modality.load(cfg.data.path, require_targets=cfg.data.task != "reconstruction")
        if cfg.data.task == "reconstruction":
            from biodl.models.autoencoder import reconstruction_targets

            data.targets = reconstruction_targets(data.X)
        _write_skipped_rows(out, data)
        assert data.targets is not None
        if cfg.data.val_column:
            data.parts = _validation_column_parts(cfg, data)
        labels = _stratify_labels(data)
        seed = cfg.train.seed if cfg.data.split_seed is None else cfg.data.split_seed
        if cfg.data.cv:
            return self._cross_validate(modality, data, out, labels, resume)
        split = make_split(
            len(data),
            cfg.data.split_sizes,
            cfg.data.split,
            seed,
            labels=labels,
            groups=data.groups,
            test_chroms=cfg.data.test_chroms,
            val_chroms=cfg.data.val_chroms,
            parts=data.parts,
        )
        if is_rank_zero():
            save_splits(out / "splits.json", split.to_dict(list(data.ids), seed=seed, sizes_requested=list(cfg.data.split_sizes)))
        return self._run(modality, data, split, out, resume)

    def _cross_validate(
        self, modality: Modality, data: LoadedData, out: Path, labels: np.ndarray | None, resume: bool
    ) -> RunResult:
        cfg = self.config
        assert cfg.data.cv is not None
        split_seed = cfg.train.seed if cfg.data.split_seed is None else cfg.data.split_seed
        folds = kfold_splits(len(data), cfg.data.cv, cfg.data.split_sizes, split_seed, labels=labels, groups=data.groups)
        if is_rank_zero():
            save_splits(
                out / "splits.json",
                {"method": f"{cfg.data.cv}-fold", "folds": [f.to_dict(list(data.ids)) for f in folds]},
            )
        results = []
        for i, split in enumerate(folds):
            fold_mod = modality.for_fold()
            results.append(self._run(fold_mod, data, split, out / f"fold_{i}", resume and (out / f"fold_{i}").exists()))
        if not is_rank_zero():
            return RunResult(out, {})
        summary: dict[str, Any] = {"cv": {"folds": cfg.data.cv}}
        for part in ("train", "val", "test"):
            summary[part], summary["cv"][f"{part}_std"] = _mean_std([r.metrics.get(part, {}) for r in results])
        base = [r.metrics.get("baseline", {}) for r in results]
        if base and all(b for b in base):
            mean, std = _mean_std([b.get("test", {}) for b in base])
            summary["baseline"] = {"name": base[0].get("name"), "test": mean, "test_std": std}
        summary["cv"]["per_fold"] = [{"test": r.metrics.get("test", {}), "dir": f"fold_{i}"} for i, r in enumerate(results)]
        metric, higher = main_metric(results[0].bundle.kind if results[0].bundle else "regression")
        if cfg.data.task == "multilabel" and metric not in results[0].metrics.get("val", {}):
            metric, higher = main_metric("multilabel")  # evaluate.metrics left out the per-label AUROC
        best = _best_fold(results, metric, higher)
        if best.bundle is not None:
            best.bundle.save(out / "model")
            summary["cv"]["model_from_fold"] = results.index(best)
            _write_model_artifacts(best.bundle.model, out, best.bundle.target_names, plots=cfg.evaluate.plots)
        atomic_write_text(out / "metrics.json", json.dumps(to_jsonable(summary), indent=1, allow_nan=False))
        from biodl.reporting import print_metrics_table

        print_metrics_table(summary, title=f"{cfg.data.cv}-fold cross-validation (mean)")
        return RunResult(out, summary, bundle=best.bundle)

    def _run(self, modality: Modality, data: LoadedData, split: Split, out: Path, resume: bool) -> RunResult:
        from biodl.baselines import run_baselines
        from biodl.reporting import finish_run
        from biodl.training.fit import train_model

        cfg = self.config
        targets = data.targets
        assert targets is not None
        out.mkdir(parents=True, exist_ok=True)
        tr, va, te = split.train, split.val, split.test
        if len(tr) == 0:
            raise DataError("the training split is empty")
        streaming = isinstance(data.X, StoreRows)
        y = targets.y
        scaler = TargetScaler.fit(y[tr]) if targets.kind == "regression" else None
        y_fit = scaler.transform(y) if scaler is not None else y
        train_data: Any
        val_data: Any
        if streaming:
            assert isinstance(data.X, StoreRows)
            rng = np.random.default_rng(cfg.train.seed)
            modality.fit(data.X[np.sort(_sample(tr, MAX_FIT_ROWS, rng))])
            X = None
            in_shape = modality.input_shape(tuple(modality.transform(data.X[tr[:2]]).shape[1:]))
            train_data, val_data = (
                store_loader(
                    data.X,
                    y_fit,
                    idx,
                    modality.transform,
                    chunk_rows=self._chunk_rows,
                    batch_size=cfg.train.batch_size if part == "train" else max(cfg.train.batch_size, 256),
                    shuffle=part == "train",
                    num_workers=cfg.train.num_workers,
                    seed=cfg.train.seed,
                )
                for part, idx in (("train", tr), ("val", va))
            )
            if not len(va):
                val_data = None
        else:
            modality.fit(data.X[tr])
            X = modality.transform(data.X)
            in_shape = modality.input_shape(tuple(X.shape[1:]))
            train_data, val_data = (X[tr], y_fit[tr]), ((X[va], y_fit[va]) if len(va) else None)
        import torch

        torch.manual_seed(cfg.train.seed)  # the initial weights too depend on the seed only, not on earlier runs
        model = build_model(str(cfg.model.name), in_shape, targets.num_outputs, cfg.model.params())
        modality.configure_model(model)
        # what the training loop fits: the model on the targets, or (two-step models) a part of it on latent targets
        net, net_kind = model, targets.kind
        label_encoder: dict[str, Any] = {}
        if getattr(model, "two_step", False):
            if X is None:
                raise DataError(f"model '{cfg.model.name}' trains in two steps and needs in-memory data, not a streamed store")
            label_encoder["history"] = model.fit_label_encoder(y[tr], seed=cfg.train.seed)  # type: ignore[operator]
            latent = model.encode_labels(y)  # type: ignore[operator]
            train_data, val_data = (X[tr], latent[tr]), ((X[va], latent[va]) if len(va) else None)
            net, net_kind = model.network, "regression"  # type: ignore[assignment]
        pretrain = _Pretrainer(cfg, X, tr, out, skip=resume and (out / "checkpoints" / "last.ckpt").exists())
        if cfg.train.ensemble_size > 1:
            from biodl.training.ensemble import train_ensemble

            def configure(member: Any) -> None:
                modality.configure_model(member)
                pretrain(member)

            fit = train_ensemble(
                cfg, in_shape, targets.num_outputs, targets.kind, train_data, val_data, run_dir=out,
                augment=modality.train_augment(), resume=resume, configure=configure,
            )  # fmt: skip
            model = fit.model  # type: ignore[assignment]
        else:
            pretrain(model)
            fit = train_model(
                net,
                net_kind,
                cfg.train,
                train_data,
                val_data,
                run_dir=out,
                augment=modality.train_augment(),
                resume=resume,
                extra_callbacks=self._callbacks,
            )
            model.eval()
        pretrain.write()
        if not fit.is_global_zero:
            # one writer: other ranks of a distributed run stop after training
            return RunResult(out, {}, fit.history)
        # an ensemble is rebuilt from its own spec (member architecture + size)
        spec = getattr(model, "spec", None)
        model_name, model_params = spec() if callable(spec) else (cfg.model.name, cfg.model.params())
        meta: dict[str, Any] = {
            "model": {
                "name": model_name,
                "params": model_params,
                "in_shape": list(in_shape),
                "num_outputs": targets.num_outputs,
                "trainable_parameters": count_parameters(model),
            },
            "task": cfg.data.task,
            "kind": targets.kind,
            "target_names": targets.names,
            "classes": targets.classes,
            "data": modality.cfg.model_dump(mode="json"),
            "columns": modality.columns(),
        }
        bundle = Bundle(model, modality, meta, scaler)
        if X is not None:
            preds = bundle.predict_arrays(X)
        else:
            step = max(self._chunk_rows, 4096)
            preds = np.concatenate(
                [bundle.predict_arrays(modality.transform(data.X[i : i + step])) for i in range(0, len(data), step)]
            )
        chosen = cfg.evaluate.metrics
        metrics: dict[str, Any] = {}
        if cfg.evaluate.select_threshold and len(va):
            selected = _select_threshold(model, cfg.evaluate.select_threshold, targets.kind, y[va], preds[va])
            if selected is not None:
                metrics["threshold"], preds = selected, _shift_threshold(preds, selected["value"])
                meta["model"]["params"]["threshold"] = selected["value"]
        for part, idx in (("train", tr), ("val", va), ("test", te)):
            if not len(idx):
                metrics[part] = {}
            elif cfg.data.task == "multilabel":  # per-label scores + example-based scores (hamming, ranking, ...)
                from biodl.metrics.multilabel import multilabel_task_metrics

                metrics[part] = multilabel_task_metrics(y[idx], preds[idx], target_names=targets.names, metrics=chosen)
            else:
                names = targets.classes if targets.kind == "positions" else targets.names
                metrics[part] = compute_metrics(targets.kind, y[idx], preds[idx], target_names=names, metrics=chosen)
        if cfg.data.task == "reconstruction":  # one score over all reconstructed values + a PCA reference
            from biodl.models.autoencoder import reconstruction_report

            parts_idx = {"train": tr, "val": va, "test": te}
            code = int(getattr(model, "latent_size", 32))
            metrics.update(reconstruction_report(X, y, preds, parts_idx, metrics=chosen, n_components=code, seed=cfg.train.seed))
        if cfg.data.task == "multilabel":
            from biodl.metrics.multilabel import single_class_labels

            metrics["single_class_labels"] = single_class_labels(y[tr], targets.names)  # counted, not fatal
        if cfg.evaluate.baselines and targets.kind == "positions":
            if X is None:
                raise DataError("per-position labels need in-memory data, not a streamed store")
            from biodl.baselines_positions import window_baseline

            metrics["baseline"] = window_baseline(X, y, tr, va, te, classes=list(targets.classes or []), seed=cfg.train.seed)
        elif cfg.evaluate.baselines:
            n_classes = len(targets.classes) if targets.kind == "multiclass" and targets.classes else None
            if X is not None:
                F = modality.baseline_features(X)
                parts = [(F[i], y[i]) for i in (tr, va, te)]
            else:  # a bounded sample of each split keeps memory flat
                rng = np.random.default_rng(cfg.train.seed)
                picked = [np.sort(_sample(i, MAX_BASELINE_ROWS, rng)) for i in (tr, va, te)]
                parts = [(modality.baseline_features(modality.transform(data.X[i])), y[i]) for i in picked]
                metrics["baseline_rows"] = {p: len(i) for p, i in zip(("train", "val", "test"), picked)}
            metrics["baseline"] = run_baselines(
                targets.kind,
                *parts[0],
                *parts[1],
                *parts[2],
                names=tuple(cfg.evaluate.baselines),
                seed=cfg.train.seed,
                n_classes=n_classes,
                target_names=targets.names,
                multilabel=cfg.data.task == "multilabel",
            )
        if label_encoder:
            metrics["label_encoder"] = model.label_encoder_report(y, {"train": tr, "val": va, "test": te})  # type: ignore[operator]
        metrics["training"] = {"best_epoch": fit.best_epoch, "epochs": fit.epochs}
        metrics = to_jsonable(metrics)
        meta["metrics"] = {k: metrics[k] for k in ("val", "test") if k in metrics}
        bundle.save(out / "model")
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1, allow_nan=False))
        artifacts = _write_model_artifacts(model, out, targets.names, plots=cfg.evaluate.plots)
        extra_figures = {}
        if cfg.evaluate.plots and X is not None:
            rows = te if len(te) else va
            extra_figures = modality.report_figures(model, X, data, rows, preds, out / "figures")
        extra_figures.update({f"model: {p.stem.replace('_', ' ')}": p for p in artifacts if p.suffix == ".png"})
        findings = finish_run(
            out,
            config=cfg,
            data=data,
            split=split,
            targets=targets,
            y_pred=preds,
            history=fit.history,
            metrics=metrics,
            extra_figures=extra_figures,
        )
        return RunResult(out, metrics, fit.history, findings, bundle)


#: Training rows used to fit preprocessing statistics on a streamed store.
MAX_FIT_ROWS = 10_000
#: Rows per split used for the classical baseline on a streamed store.
MAX_BASELINE_ROWS = 20_000


class _Pretrainer:
    """``train.pretrain``: pre-trains every network built for this run (ensemble members: seeds ``seed + k``)
    on the training rows, then writes ``pretrain.json`` (per-layer reconstruction losses)."""

    def __init__(self, cfg: ExperimentConfig, X: np.ndarray | None, tr: np.ndarray, out: Path, *, skip: bool) -> None:
        self.cfg, self.X, self.tr, self.out = cfg, X, tr, out
        self.active = cfg.train.pretrain != "none" and not skip  # a resumed run starts from its checkpoint
        self.reports: list[dict[str, Any]] = []

    def __call__(self, model: Any) -> None:
        if not self.active:
            return
        if self.X is None:
            raise DataError("train.pretrain needs in-memory training data, not a streamed store")
        from biodl.training.pretrain import pretrain_from_config

        seed = self.cfg.train.seed + len(self.reports)
        self.reports.append(pretrain_from_config(model, self.X[self.tr], self.cfg.train, seed=seed))

    def write(self) -> None:
        if self.reports and is_rank_zero():
            doc = self.reports[0] if len(self.reports) == 1 else {"members": self.reports}
            atomic_write_text(self.out / "pretrain.json", json.dumps(to_jsonable(doc), indent=1, allow_nan=False))


def _write_model_artifacts(model: Any, out: Path, names: list[str], *, plots: bool) -> list[Path]:
    """Model-specific run outputs (the ``dnae`` label hierarchy), for models that have any; returns the files."""
    writer = getattr(model, "write_run_artifacts", None)
    if callable(writer) and is_rank_zero():
        return list(writer(out, names, plots=plots))
    return []


def _validation_column_parts(cfg: ExperimentConfig, data: LoadedData) -> np.ndarray:
    """``--val-column``: the flagged rows validate, the others train (and test, when ``split_sizes`` is set)."""
    from biodl.data.splits import hold_out_test

    column = cfg.data.val_column
    if data.parts is None:
        raise DataError(
            f"validation column {column!r} (--val-column) not found in {', '.join(cfg.data.path)} "
            f"(or data type {cfg.data.type!r} cannot read it)"
        )
    if cfg.data.split not in ("auto", "predefined"):
        raise ConfigError(f"--val-column sets the validation rows itself; data.split must be auto, not {cfg.data.split!r}")
    parts = np.asarray(data.parts, dtype=object)
    if "split_sizes" in cfg.data.model_fields_set and cfg.data.split_sizes[2] > 0:
        seed = cfg.train.seed if cfg.data.split_seed is None else cfg.data.split_seed
        parts = hold_out_test(parts, cfg.data.split_sizes, seed)
    return parts


def _write_skipped_rows(out: Path, data: LoadedData) -> None:
    """Write the input rows a modality dropped (``summary["skipped_rows"]``) to ``skipped_rows.csv``."""
    rows = data.summary.pop("skipped_rows", None)
    if rows and is_rank_zero():
        import pandas as pd

        pd.DataFrame(rows).to_csv(out / "skipped_rows.csv", index=False)
        print(f"{len(rows)} invalid input row(s) skipped; listed in {out / 'skipped_rows.csv'}")


def _sample(idx: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return idx if len(idx) <= k else rng.choice(idx, size=k, replace=False)


def _store_data_config(cfg: ExperimentConfig, meta: dict[str, Any]) -> DataConfig:
    """The store's column mapping with this run's split and normalisation settings."""
    stored = DataConfig.model_validate(meta["data_config"])
    keep = {k: getattr(cfg.data, k) for k in ("split", "split_sizes", "cv", "normalize")}
    return stored.model_copy(update=keep)


def _config_for_store(cfg: ExperimentConfig, meta: dict[str, Any]) -> ExperimentConfig:
    """Take the data type and task from the store (a model for another data type falls back to the default)."""
    raw = cfg.to_dict()
    stored = meta["data_config"]
    raw["data"]["type"] = meta["data_type"]
    raw["data"]["task"] = raw["data"]["task"] or stored.get("task")
    raw["data"]["target_columns"] = raw["data"]["target_columns"] or stored.get("target_columns", [])
    from biodl.models import MODELS

    if meta["data_type"] not in MODELS[str(cfg.model.name)].data_types:
        raw["model"] = {"name": None}
    return ExperimentConfig.from_dict(raw)


#: Foreground thresholds tried by ``evaluate.select_threshold``.
THRESHOLD_GRID = tuple(round(0.2 + 0.05 * i, 2) for i in range(13))


def _select_threshold(model: Any, metric: str, kind: str, y_val: np.ndarray, p_val: np.ndarray) -> dict[str, Any] | None:
    """The binary foreground threshold that maximises ``metric`` on the validation rows.

    Sets ``model.params.threshold`` (the model then shifts its logits) and returns what was
    tried, or ``None`` when the model has no threshold (multi-class masks, ensembles).
    """
    params = getattr(model, "params", None)
    if params is None or p_val.ndim < 2 or p_val.shape[1] != 1 or not hasattr(params, "threshold"):
        return None
    scores = {
        t: float(compute_metrics(kind, y_val, (p_val > t).astype(np.float32), metrics=[metric]).get(metric, np.nan))
        for t in THRESHOLD_GRID
    }
    best = max(scores, key=lambda t: (np.nan_to_num(scores[t], nan=-1.0), -abs(t - 0.5)))  # ties: nearest 0.5
    params.threshold = best
    return {"metric": metric, "value": best, "validation": {str(t): s for t, s in scores.items()}}


def _shift_threshold(p: np.ndarray, threshold: float) -> np.ndarray:
    """Probabilities as the model gives them once its logits are shifted by ``-logit(threshold)``."""
    q = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    z = np.log(q / (1 - q)) - np.log(threshold / (1 - threshold))
    return (1.0 / (1.0 + np.exp(-z))).astype(p.dtype)


def _mean_std(blocks: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k, v in (blocks[0] if blocks else {}).items() if isinstance(v, (int, float)) or v is None]
    mean: dict[str, Any] = {}
    std: dict[str, Any] = {}
    for k in keys:
        vals = [b.get(k) for b in blocks]
        nums = [float(v) for v in vals if isinstance(v, (int, float)) and math.isfinite(float(v))]
        mean[k] = float(np.mean(nums)) if nums else None
        std[k] = float(np.std(nums)) if nums else None
    return mean, std


def _best_fold(results: list[RunResult], metric: str, higher: bool) -> RunResult:
    def score(r: RunResult) -> float:
        v = r.metrics.get("val", {}).get(metric)
        if v is None:
            return -math.inf
        return float(v) if higher else -float(v)

    return max(results, key=score)
