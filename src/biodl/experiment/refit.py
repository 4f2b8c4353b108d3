"""``train.refit``: the measured model trained again with the test rows added to its training rows.

A 60/10/30 split spends almost a third of a small data set on measuring the model. Once the run is measured
(candidates chosen, epochs stopped and the baseline compared on the validation rows, the figures taken on
the test rows), the same recipe (the chosen candidate or candidates, their member counts, every setting) is
trained again on the training and test rows together. The validation rows keep their role (early stopping),
so nothing that was chosen changes; only the rows the networks learn from grow. That model is the run's
``model/``; the measured one stays in ``model_heldout/``, and the test figures of ``metrics.json`` describe
it, not the refit model (``metrics.json`` → ``refit`` says so, with the rows, the time and both models'
validation scores). This is scikit-learn's ``refit=True`` and AutoGluon's ``refit_full`` for a data set whose
test rows are part of the data.

A refit model whose validation score is worse than the measured model's by more than
:data:`GUARD_SE` standard errors (paired bootstrap over the validation rows) is not shipped: ``model/`` is
then the measured model, and ``refit`` says why. ``auto`` refits data types that set
:attr:`biodl.data.base.Modality.refit_rows` (tables, expression matrices, molecules) up to that many rows,
in memory, in one process, without ``train.select_by: cv``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biodl.config import ExperimentConfig
from biodl.data.splits import Split
from biodl.experiment.blend import blend, paired_se, score_preds
from biodl.experiment.evaluate import select_threshold
from biodl.experiment.prepare import fit_preprocessing
from biodl.experiment.results import Evaluation, Inputs, Prepared, Trained
from biodl.experiment.train import train_network
from biodl.metrics import main_metric
from biodl.training.callbacks import Deadline, StopAfterEpochs
from biodl.training.clock import budget_clock

#: The refit model is not shipped when validation says it is worse by more than this many standard errors.
GUARD_SE = 2.0


@dataclass
class Recipe:
    """One trained network of the run's model, as it can be trained again.

    Attributes
    ----------
    name
        Its directory under ``RUN/refit/`` (a candidate's ``<k>_<name>``, or ``model``).
    cfg, inputs
        The config and inputs (features) it was trained with.
    members
        The ensemble members it ended with (a time budget may have stopped an ensemble early).
    epochs
        For a network a time budget stopped, the epochs it ran (its longest member's): the refit stops after as
        many at the latest, so that it is not trained longer the second time (0: no limit but the run's own).
    """

    name: str
    cfg: ExperimentConfig
    inputs: Inputs
    members: int = 1
    epochs: int = 0

    @classmethod
    def of(cls, name: str, cfg: ExperimentConfig, inputs: Inputs, trained: Trained, *, timed_out: bool = False) -> Recipe:
        """The recipe of ``trained``, trained with ``cfg`` on ``inputs`` (``timed_out``: a time budget stopped it)."""
        return cls(name, cfg, inputs, members_of(trained), int(trained.epochs or 0) if timed_out else 0)


def members_of(trained: Trained) -> int:
    """Networks averaged in ``trained``'s model (1: a single network)."""
    members = getattr(trained.model, "members", None)
    return len(members) if members is not None else 1


def refit_skipped(cfg: ExperimentConfig, inputs: Inputs, split: Split, prepared: Prepared) -> str | None:
    """Why this run is not refit (``None``: it is)."""
    mode = cfg.train.refit
    if mode == "never":
        return "train.refit: never"
    if not len(split.test):
        return "the run has no test rows to add"
    if prepared.X is None:
        return "a streamed store is trained once"
    if _distributed():
        return "a distributed run is trained once"
    if cfg.train.select_by == "cv" or split.method.endswith("select_by cv"):
        return "train.select_by: cv trains its model on the training and validation rows already"
    if mode == "auto":
        named = split.method.startswith("chromosome") or (split.method.startswith("predefined") and not cfg.data.val_column)
        if named:  # the data (or --test-chroms) named the test rows: they may be someone's official test set
            return "train.refit: auto leaves test rows the data named unseen (train.refit: always trains on them)"
        limit = type(inputs.modality).refit_rows
        if limit <= 0:
            return f"train.refit: auto does not refit {inputs.modality.name} data (train.refit: always does)"
        if len(inputs.data) > limit:
            return f"train.refit: auto refits at most {limit:,} rows, this run has {len(inputs.data):,}"
    return None


def _distributed() -> bool:
    import torch

    dist = torch.distributed
    return bool(dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)


def refit_split(split: Split) -> Split:
    """Training + test rows to train on, the same validation rows, no test rows."""
    rows = np.sort(np.concatenate([split.train, split.test])).astype(np.int64)
    return Split(train=rows, val=split.val, test=np.zeros(0, np.int64), method=f"{split.method}; refit on train + test")


def refit(
    recipes: Sequence[Recipe],
    split: Split,
    evaluation: Evaluation,
    out: Path,
    *,
    resume: bool = False,
    callbacks: Sequence[Any] = (),
    budget: float | None = None,
) -> tuple[Trained | None, dict[str, Any]]:
    """Train ``recipes`` again on :func:`refit_split` rows (``out/refit/<name>``) and compare with the measured model.

    Returns the refit model (``None`` when the guard keeps the measured one) and the ``refit`` record of
    ``metrics.json``. ``evaluation`` is the measured model's (its predictions for every row). ``budget``:
    seconds (on the ``train.time_budget_clock`` clock) for the whole refit, as ``model.name: auto``'s
    ``train.time_budget`` for its candidates: once spent, a network stops after its epoch (best weights
    kept) and an ensemble starts no further member; the guard then judges what was trained.
    """
    start, cpu0 = time.monotonic(), time.process_time()
    timer = None
    if budget is not None:
        clock = budget_clock(recipes[0].cfg.train.time_budget_clock)
        timer = Deadline(clock() + budget, clock)
    rsplit = refit_split(split)
    first = recipes[0]
    kind = first.inputs.targets.kind
    metric, higher = main_metric(kind)
    print(f"refit: training the run's model again on {len(rsplit.train):,} rows (training + test; validation rows "
          f"{len(rsplit.val):,} for early stopping)")  # fmt: skip
    trained: list[Trained] = []
    features: dict[str, tuple[Inputs, Prepared]] = {}  # recipes on the same inputs share one fitted preprocessing
    for recipe in recipes:
        rcfg = recipe.cfg.model_copy(deep=True)
        if rcfg.train.ensemble_size > 1:  # as many members as the measured model ended with
            rcfg.train.ensemble_size = recipe.members
        key = rcfg.data.model_dump_json()
        if key not in features:
            # a copy keeps what reading the files established (feature names, vocabularies); fitting it again
            # leaves the measured model's preprocessing as it was
            rinputs = Inputs(copy.deepcopy(recipe.inputs.modality), recipe.inputs.data, recipe.inputs.chunk_rows)
            features[key] = (rinputs, fit_preprocessing(rcfg, rinputs, rsplit))
        rinputs, prepared = features[key]
        cdir = out / "refit" / recipe.name
        again = resume and any((cdir / "checkpoints" / f).is_file() for f in ("last.ckpt", "previous.ckpt"))
        # early stopping still applies; no longer than the measured training ran (a time budget may have stopped it)
        cap: list[Any] = [StopAfterEpochs(recipe.epochs)] if recipe.epochs > 0 else []
        if timer is not None:
            cap.append(timer)
        stop = timer.passed if timer is not None else None
        t = train_network(rcfg, rinputs, rsplit, prepared, cdir, resume=again, callbacks=[*callbacks, *cap], stop=stop)
        trained.append(_with_threshold(t, evaluation, prepared, rinputs, rsplit.val))
    shared = next(iter(features.values()))[1]  # the first recipe's features (a blend's members all read them)
    model = trained[0] if len(trained) == 1 else blend([(i, math.nan, t, np.zeros(0)) for i, t in enumerate(trained)])
    record: dict[str, Any] = {
        "rows": len(rsplit.train),
        "added_test_rows": len(split.test),
        "validation_rows": len(rsplit.val),
        "networks": [r.name for r in recipes],
        "seconds": round(time.monotonic() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu0, 1),
        "test_figures": "model_heldout (trained without the test rows); model/ has seen them",
        "stopped_by_budget": bool(timer is not None and timer.stopped)
        or any(members_of(t) < r.members for t, r in zip(trained, recipes, strict=True) if r.members > 1),
    }
    va = rsplit.val
    if len(va):
        assert shared.X is not None  # refit_skipped: in memory
        new = model.bundle.predict_arrays(shared.X[va])
        old = evaluation.preds[va]
        new_score, old_score = (score_preds(first.inputs, va, p, metric) for p in (new, old))
        se = paired_se(first.inputs, va, new, old, metric) if new.shape == old.shape else math.nan
        gain = (new_score - old_score) if higher else (old_score - new_score)
        record["val"] = {"metric": metric, "refit": new_score, "heldout": old_score, "standard_error": se}
        if math.isfinite(gain) and math.isfinite(se) and gain < -GUARD_SE * se:
            record.update(shipped="model_heldout", reason=f"the refit model is worse on validation by {-gain:.4f} "
                          f"{metric}, more than {GUARD_SE:g} standard errors ({se:.4f})")  # fmt: skip
            print(f"refit: not shipped: {record['reason']}; model/ is the measured model")
            return None, record
    record["shipped"] = "refit"
    score = record.get("val", {}).get("refit")
    said = f", validation {metric} {score:.4f} (measured model {record['val']['heldout']:.4f})" if score is not None else ""
    print(f"refit: done in {record['seconds']:.0f} s{said}; the measured model is kept as model_heldout/")
    return model, record


def _with_threshold(trained: Trained, evaluation: Evaluation, prepared: Prepared, inputs: Inputs, va: np.ndarray) -> Trained:
    """The refit network's own threshold on the validation rows, when the measured one chose one."""
    chosen = evaluation.metrics.get("threshold")
    if isinstance(chosen, dict) and chosen.get("method") != "cv" and len(va) and prepared.X is not None:
        p = trained.bundle.predict_arrays(prepared.X[va])
        found = select_threshold(trained.model, str(chosen["metric"]), inputs.targets.kind, inputs.targets.y[va], p)
        if found is not None:
            trained.bundle.meta["model"]["params"]["threshold"] = found["value"]
    return trained
