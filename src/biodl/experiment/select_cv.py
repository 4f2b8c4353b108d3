"""``train.select_by: cv``: epoch count and threshold chosen by k-fold cross-validation inside the training rows.

With few training images, a validation split of 3-4 images chooses the best epoch and the
foreground threshold on too little data (the road model: validation patch F1 0.92, 0.726 on other
tiles). Here the non-test rows (training + validation) are cut into ``train.select_folds`` folds;
each fold trains the configured model on the other folds for ``train.max_epochs`` epochs with no
early stopping and predicts its held-out rows every few epochs. The out-of-fold predictions of all
folds are pooled per epoch, and the epoch and (binary segmentation with
``evaluate.select_threshold``) threshold that maximise the pooled score (a 3-snapshot moving
average over epochs) are chosen. The run's model is then trained on all non-test rows for that
many epochs and given that threshold; ``metrics.json`` → ``val`` holds the pooled out-of-fold
scores at the choice, ``selection`` the curve and the folds (``selection.json`` too). The run's
model keeps its last epoch's weights (no validation rows: nothing is restored). With
``train.select_ensemble`` it is an :class:`~biodl.models.ensemble.Ensemble` of that network and
the folds' networks after their last epoch (mean probability, the threshold cut on the mean), as
nnU-Net ensembles its cross-validation models; the fold networks see inputs standardised with all
rows' statistics (those of the final network) rather than their own fold's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biodl.config import ExperimentConfig
from biodl.data.splits import Split
from biodl.errors import ConfigError
from biodl.experiment.evaluate import THRESHOLD_GRID
from biodl.experiment.prepare import fit_preprocessing
from biodl.experiment.results import Inputs, Trained
from biodl.experiment.train import train_network
from biodl.io_utils import atomic_write_text
from biodl.metrics import compute_metrics, main_metric, to_jsonable
from biodl.training.callbacks import PredictAtEpochs
from biodl.training.fit import is_rank_zero

#: ``select_by: auto`` selects by cross-validation up to this many non-test rows (images).
SMALL_SET = 64
#: Out-of-fold predictions are taken at about this many epochs of each fold (plus the last).
SNAPSHOTS = 20


@dataclass
class Selection:
    """What the cross-validation chose, and the split and config of the final training."""

    epochs: int
    threshold: float | None
    metric: str
    score: float
    val: dict[str, Any]
    curve: list[dict[str, Any]]
    folds: list[list[int]]
    cfg: ExperimentConfig
    split: Split
    seconds: list[float] = field(default_factory=list)
    threshold_scores: dict[str, float] = field(default_factory=dict)
    members: list[Any] = field(default_factory=list)

    def apply(self, trained: Trained) -> None:
        """Give the trained model the selection folds' networks (``train.select_ensemble``: one averaged
        ensemble) and the chosen threshold (its logits are shifted; ``meta`` records both)."""
        if self.members:
            from biodl.models import count_parameters
            from biodl.models.ensemble import Ensemble

            model_meta = trained.bundle.meta["model"]
            ens = Ensemble.from_members(
                [trained.model, *self.members], model_meta["name"], model_meta["params"], trained.bundle.meta["kind"]
            ).eval()
            name, params = ens.spec()
            model_meta.update(name=name, params=params, trainable_parameters=count_parameters(ens))
            trained.bundle.model = ens
            self.members = []
        if self.threshold is None:
            return
        trained.model.params.threshold = self.threshold
        trained.bundle.meta["model"]["params"]["threshold"] = self.threshold

    def record(self, metrics: dict[str, Any], trained: Trained, out: Path, ids: Sequence[str] | np.ndarray) -> None:
        """``metrics["val"]``: the pooled out-of-fold scores; ``metrics["selection"]`` and ``selection.json``."""
        metrics["val"] = self.val
        trained.bundle.meta.setdefault("metrics", {})["val"] = self.val
        doc = self.summary()
        metrics["selection"] = {k: v for k, v in doc.items() if k not in ("curve", "folds_rows")}
        if self.threshold is not None:
            metrics["threshold"] = {
                "metric": self.metric,
                "value": self.threshold,
                "method": "cv",
                "validation": self.threshold_scores,
            }
        if is_rank_zero():
            doc["fold_ids"] = [[str(ids[i]) for i in f] for f in self.folds]
            atomic_write_text(out / "selection.json", json.dumps(to_jsonable(doc), indent=1, allow_nan=False))

    def summary(self) -> dict[str, Any]:
        """JSON-ready description of the choice."""
        return {
            "method": "cv",
            "folds": len(self.folds),
            "metric": self.metric,
            "epochs": self.epochs,
            "threshold": self.threshold,
            "out_of_fold_score": self.score,
            "best_at_max_epochs": bool(self.curve) and self.epochs == self.curve[-1]["epoch"] and len(self.curve) > 1,
            "rows": int(sum(len(f) for f in self.folds)),
            "fold_seconds": [round(s, 1) for s in self.seconds],
            "ensemble": self.cfg.train.select_ensemble,
            "curve": self.curve,
            "folds_rows": [list(map(int, f)) for f in self.folds],
        }


def wants_cv_selection(cfg: ExperimentConfig, split: Split) -> bool:
    """Whether this run selects by cross-validation (``cv``, or ``auto`` with ≤ :data:`SMALL_SET` non-test rows)."""
    mode = cfg.train.select_by
    if mode == "auto":  # not for ensembles: their members choose their own epochs
        return cfg.train.ensemble_size == 1 and len(split.train) + len(split.val) <= SMALL_SET
    return mode == "cv"


def fold_rows(rows: np.ndarray, k: int, seed: int, groups: np.ndarray | None = None) -> list[np.ndarray]:
    """``k`` disjoint held-out parts of ``rows`` (whole groups kept together), each sorted."""
    rng = np.random.default_rng(seed)
    if groups is None:
        perm = rng.permutation(rows)
        return [np.sort(perm[i::k]) for i in range(k)]
    keys = np.asarray(groups)[rows]
    uniq = rng.permutation(np.unique(keys))
    if len(uniq) < k:
        raise ConfigError(f"train.select_folds={k} needs at least {k} groups of training rows, found {len(uniq)}")
    part = {g: i % k for i, g in enumerate(uniq)}
    return [np.sort(rows[np.array([part[g] == i for g in keys])]) for i in range(k)]


def snapshot_epochs(max_epochs: int) -> list[int]:
    """Epochs (1-based) after which the held-out rows are predicted: every ``ceil(max/20)`` and the last."""
    every = max(1, -(-max_epochs // SNAPSHOTS))
    return sorted({*range(every, max_epochs + 1, every), max_epochs})


def select_by_cv(cfg: ExperimentConfig, inputs: Inputs, split: Split, out: Path, callbacks: Sequence[Any] = ()) -> Selection:
    """Train ``train.select_folds`` fold models on the non-test rows and choose epoch and threshold (module doc)."""
    import time

    rows = np.sort(np.concatenate([split.train, split.val])).astype(np.int64)
    k = cfg.train.select_folds
    if len(rows) < k:
        raise ConfigError(f"train.select_folds={k} needs at least {k} training rows, found {len(rows)}")
    folds = fold_rows(rows, k, cfg.train.seed, inputs.data.groups)
    fold_cfg = cfg.model_copy(deep=True)
    fold_cfg.train.early_stopping = False
    fold_cfg.train.min_samples = None  # the folds train train.max_epochs, snapshotted below
    epochs = snapshot_epochs(cfg.train.max_epochs)
    kind = inputs.targets.kind
    preds: list[dict[int, np.ndarray]] = []
    seconds: list[float] = []
    members: list[Any] = []
    for j, held in enumerate(folds):
        start = time.time()
        fold_inputs = Inputs(inputs.modality.for_fold(), inputs.data, inputs.chunk_rows)
        none = np.zeros(0, np.int64)
        fsplit = Split(train=np.setdiff1d(rows, held), val=none, test=none, method="select_by_cv")
        prepared = fit_preprocessing(fold_cfg, fold_inputs, fsplit)
        if prepared.X is None:
            raise ConfigError("train.select_by: cv needs in-memory data, not a streamed store")
        oof = PredictAtEpochs(prepared.X[held], kind, epochs)
        fold_trained = train_network(
            fold_cfg, fold_inputs, fsplit, prepared, out / "selection" / f"fold_{j}", callbacks=[*callbacks, oof]
        )
        if cfg.train.select_ensemble:  # kept after its last epoch (no validation rows: nothing restored)
            members.append(fold_trained.model)
        scaler = prepared.scaler  # regression: each fold's predictions back on the original scale before pooling
        preds.append({e: scaler.inverse(p) for e, p in oof.preds.items()} if scaler is not None else oof.preds)
        seconds.append(time.time() - start)
        print(f"selection fold {j + 1}/{k}: {len(fsplit.train)} training rows, {len(held)} held out, {seconds[-1]:.0f} s")
    held_all = np.concatenate(folds)
    y = np.asarray(inputs.targets.y)[held_all]
    done = [e for e in epochs if all(e in p for p in preds)]

    def pooled(e: int) -> np.ndarray:  # one epoch at a time: memory holds one float32 copy of the maps, not 20
        return np.concatenate([p[e] for p in preds]).astype(np.float32)

    metric, higher, thresholds = selection_metric(cfg, kind, pooled(done[-1]))
    table = {}
    for e in done:
        p_e = pooled(e)
        table[e] = {t: score(kind, y, p_e, metric, t) for t in thresholds}
    curve, best_epoch, best_t = choose(table, higher)
    val = compute_metrics(
        kind, y, binarised(pooled(best_epoch), best_t), target_names=inputs.targets.names, metrics=cfg.evaluate.metrics
    )
    final_cfg = cfg.model_copy(deep=True)
    final_cfg.train.max_epochs = best_epoch
    final_cfg.train.min_samples = None  # the chosen epoch count stands
    final_cfg.train.early_stopping = False
    final_split = Split(train=rows, val=np.zeros(0, np.int64), test=split.test, method=f"{split.method}; select_by cv")
    cut = f", threshold {best_t}" if best_t is not None else ""
    print(f"selection: epoch {best_epoch}{cut}, out-of-fold {metric} {table[best_epoch][best_t]:.4f}")
    if best_epoch == done[-1] and len(done) > 1:
        print(f"note: the out-of-fold score was still best at the last epoch ({best_epoch}); a larger train.max_epochs may help")
    return Selection(
        epochs=best_epoch, threshold=best_t, metric=metric, score=float(table[best_epoch][best_t]), val=val, curve=curve,
        folds=[f.tolist() for f in folds], cfg=final_cfg, split=final_split, seconds=seconds,
        threshold_scores={str(t): float(v) for t, v in table[best_epoch].items() if t is not None}, members=members,
    )  # fmt: skip


def selection_metric(cfg: ExperimentConfig, kind: str, p: np.ndarray) -> tuple[str, bool, list[float | None]]:
    """The metric chosen on, whether higher is better, and the thresholds tried (``[None]``: none)."""
    if cfg.evaluate.select_threshold and kind == "segmentation" and p.ndim >= 2 and p.shape[1] == 1:
        return cfg.evaluate.select_threshold, True, list(THRESHOLD_GRID)
    if kind == "segmentation":
        return "dice", True, [None]
    name, higher = main_metric(kind)
    return name, higher, [None]


def binarised(p: np.ndarray, t: float | None) -> np.ndarray:
    """``p`` cut at ``t`` (``None``: as predicted)."""
    return p if t is None else (p > t).astype(np.float32)


def score(kind: str, y: np.ndarray, p: np.ndarray, metric: str, t: float | None) -> float:
    """``metric`` of the pooled predictions cut at ``t``; NaN when undefined."""
    value = compute_metrics(kind, y, binarised(p, t), metrics=[metric]).get(metric)
    return float(value) if isinstance(value, (int, float)) else float("nan")


def choose(table: dict[int, dict[Any, float]], higher: bool) -> tuple[list[dict[str, Any]], int, Any]:
    """The epoch with the best 3-snapshot moving average of its best-threshold score, and that threshold.

    Ties go to the earlier epoch; thresholds tie towards 0.5.
    """
    sign = 1.0 if higher else -1.0
    epochs = sorted(table)
    best_t = {
        e: max(table[e], key=lambda t: (np.nan_to_num(sign * table[e][t], nan=-np.inf), -abs((t or 0.5) - 0.5))) for e in epochs
    }
    raw = np.array([np.nan_to_num(sign * table[e][best_t[e]], nan=-np.inf) for e in epochs])
    smooth = np.array([raw[max(0, i - 1) : i + 2].mean() for i in range(len(raw))])
    i = int(np.argmax(smooth))
    curve = [
        {"epoch": e, "threshold": best_t[e], "score": table[e][best_t[e]], "smoothed": float(sign * smooth[n])}
        for n, e in enumerate(epochs)
    ]
    return curve, epochs[i], best_t[epochs[i]]
