"""``model.name: auto``: train the data type's candidate networks within a time budget, keep the best on validation.

The candidates are the data type's ``portfolio`` (:attr:`biodl.data.base.Modality.portfolio`): ``model:``
sections, each optionally with its own ``train`` and ``data`` settings merged over the run's. They are trained
one after the other on the same split (``RUN/candidates/<k>_<name>/``, each saved as a model bundle), scored on
the **validation rows only** with the task's headline metric on the original scale (RMSE in the target's units,
ROC-AUC, accuracy), and the best is the run's model (a classifier tying the best breaks the tie with the lower
validation log-loss). Test rows are never looked at. The mean of the
candidates' validation predictions (all that read the same inputs, or the best two) is scored too, and
``train.portfolio_blend`` (:mod:`biodl.experiment.blend`: by default the data type's prior, overturned only by
more than one standard error on validation) decides whether that average is the run's model instead: one
bundle holding the candidates as a blend (:meth:`biodl.models.ensemble.Ensemble.blend`), recorded as an
``averaged`` entry (``not chosen`` otherwise, with the reason).

``train.time_budget`` seconds (CPU seconds of this process by default, ``train.time_budget_clock``; elapsed
seconds with ``wall``) are shared by all candidates: a candidate still training when they are spent stops
after its current epoch and keeps its best weights so far; later candidates are skipped. An ensemble starts
no further member once its fair share (what is left over the candidates still to train) is spent, so that
every family gets its turn. Both are recorded. Regression targets with heavy tails (excess kurtosis of the
standardised training targets above :data:`HEAVY_TAIL_KURTOSIS`) also get the first candidate trained with
the Huber loss, kept if it wins on validation or as a member of the average ``train.portfolio_blend`` keeps.

The classical baseline stays the yardstick: it is fitted on the run's own features (those of the data
section), not on a candidate's, and ``metrics.json`` says whether the chosen network beats it
(:mod:`biodl.experiment.yardstick`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from biodl.config import DataConfig, ExperimentConfig
from biodl.data.splits import Split
from biodl.errors import ConfigError
from biodl.experiment.blend import Pooled, blend, choose_average, group_prior, score_preds
from biodl.experiment.evaluate import add_baselines, evaluate_run, margin_se
from biodl.experiment.prepare import fit_preprocessing
from biodl.experiment.refit import Recipe, members_of
from biodl.experiment.results import Evaluation, Inputs, Prepared, Trained
from biodl.experiment.train import train_network
from biodl.experiment.yardstick import compare_to_baseline
from biodl.metrics import main_metric, to_jsonable
from biodl.training.callbacks import Deadline
from biodl.training.clock import CPU_CLOCK_MAX_STRETCH as CPU_CLOCK_MAX_STRETCH
from biodl.training.clock import budget_clock

#: Excess kurtosis of the standardised training targets above which a Huber-loss candidate is added.
HEAVY_TAIL_KURTOSIS = 1.0


@dataclass
class Chosen:
    """The selected candidate with what it was trained on, and the record of every candidate."""

    cfg: ExperimentConfig
    inputs: Inputs
    prepared: Prepared
    trained: Trained
    record: dict[str, Any] = field(default_factory=dict)
    recipes: list[Recipe] = field(default_factory=list)  # the networks of its model, as train.refit trains them again


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in (nested mappings merged key by key)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def candidate_config(cfg: ExperimentConfig, candidate: Mapping[str, Any]) -> ExperimentConfig:
    """The run's config with ``candidate``'s model section and its ``train`` / ``data`` settings merged in
    (``train`` keys the experiment sets itself win over the candidate's)."""
    cand = dict(candidate)
    train, data = cand.pop("train", {}), cand.pop("data", {})
    raw = cfg.model_dump(mode="json", exclude_unset=True)  # what was chosen; the candidate's model adds its defaults
    raw["model"] = cand
    raw["train"] = merge(train, raw.get("train", {}))  # what the user set (e.g. --max-epochs) wins
    raw["data"] = merge(raw.get("data", {}), data)
    return ExperimentConfig.from_dict(raw, source=f"candidate {candidate.get('name')}")


def candidates_for(cfg: ExperimentConfig, inputs: Inputs, split: Split, prepared: Prepared) -> list[dict[str, Any]]:
    """The data type's portfolio, plus a Huber-loss variant of the first candidate for heavy-tailed regression.

    A portfolio entry may name the ``tasks`` it is for and the most input features it suits (``max_features``:
    e.g. an encoding that multiplies the inputs, meant for low-dimensional tables, not expression matrices).
    """
    task = cfg.data.task or inputs.targets.kind
    features = int(np.prod(prepared.in_shape))
    found = []
    for c in type(inputs.modality).portfolio:
        cand = dict(c)
        tasks = cand.pop("tasks", None)  # a candidate for some tasks only
        widest = cand.pop("max_features", None)  # ... or for inputs of at most this many features
        if tasks is not None and not (isinstance(tasks, (list, tuple)) and task in tasks):
            continue
        if isinstance(widest, int) and features > widest:
            print(f"auto: candidate {_label(0, cand).partition(': ')[2]} left out: {features} input features, it is "
                  f"meant for at most {widest}")  # fmt: skip
            continue
        found.append(cand)
    if inputs.targets.kind == "regression" and found and "loss" not in cfg.train.model_fields_set:
        k = tail_kurtosis(prepared.y_fit[split.train])
        if k > HEAVY_TAIL_KURTOSIS:
            first = dict(found[0])
            train = first.get("train")
            first["train"] = {**(dict(train) if isinstance(train, Mapping) else {}), "loss": "huber"}
            found.insert(1, first)
    return found


def tail_kurtosis(y: np.ndarray) -> float:
    """The largest excess kurtosis over the target columns of ``y`` ``(N, T)`` (NaN = missing ignored)."""
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    out = -math.inf
    for j in range(y.shape[1]):
        col = y[:, j][np.isfinite(y[:, j])]
        if col.size < 4 or col.std() == 0:
            continue
        z = (col - col.mean()) / col.std()
        out = max(out, float((z**4).mean() - 3.0))
    return out


def _label(i: int, candidate: Mapping[str, Any]) -> str:
    train = candidate.get("train") or {}
    extra = [f"{k}={v}" for k, v in dict(train).items()] if isinstance(train, Mapping) else []
    data = candidate.get("data") or {}
    if isinstance(data, Mapping) and isinstance(data.get("molecule"), Mapping) and data["molecule"].get("featurizer"):
        extra.append("featurizer=" + "+".join(data["molecule"]["featurizer"]))
    if isinstance(data, Mapping) and isinstance(data.get("normalize"), Mapping):
        extra += [f"normalize.{k}={v}" for k, v in data["normalize"].items()]
    params = [f"{k}={v}" for k, v in candidate.items() if k not in ("name", "train", "data")]
    return f"{i}: {candidate.get('name')}" + (f" ({', '.join(params + extra)})" if params or extra else "")


def fit_portfolio(
    cfg: ExperimentConfig,
    inputs: Inputs,
    split: Split,
    prepared: Prepared,
    out: Path,
    *,
    resume: bool = False,
    callbacks: Sequence[Any] = (),
) -> Chosen:
    """Train every candidate (within ``train.time_budget``) and return the best on validation.

    With ``resume`` a candidate whose ``RUN/candidates/<k>_<name>/checkpoints`` hold a checkpoint goes on
    from it (damaged ``last.ckpt``: the previous one), like a single-model run; the others start afresh.
    """
    kind = inputs.targets.kind
    metric, higher = main_metric(kind)
    va = split.val
    budget = cfg.train.time_budget
    clock = budget_clock(cfg.train.time_budget_clock)
    start, cpu0 = time.monotonic(), time.process_time()
    deadline = clock() + budget if budget is not None else math.inf
    records: list[dict[str, Any]] = []
    best: Chosen | None = None
    best_score, best_tie = -math.inf, -math.inf
    pool: list[tuple[int, float, Trained, np.ndarray]] = []
    features: dict[str, tuple[Inputs, Prepared]] = {}  # a candidate data section (JSON) → its inputs, preprocessing
    groups: dict[int, tuple[Inputs, Prepared, ExperimentConfig]] = {}  # pooled candidate → what it reads, its config
    recipes: dict[int, Recipe] = {}  # trained candidate → how to train it again (train.refit)
    portfolio = candidates_for(cfg, inputs, split, prepared)
    for i, candidate in enumerate(portfolio):
        record: dict[str, Any] = {"index": i, "label": _label(i, candidate), "model": to_jsonable(candidate)}
        records.append(record)
        if best is not None and clock() >= deadline:
            record.update(status="skipped", reason=f"train.time_budget of {budget:g} s spent before it started")
            print(f"auto: skipped candidate {record['label']}: time budget spent")
            continue
        try:
            ccfg = candidate_config(cfg, candidate)
        except (ConfigError, ValueError) as exc:  # e.g. a model that does not do this task
            record.update(status="not applicable", reason=str(exc).splitlines()[0])
            continue
        print(f"auto: training candidate {record['label']}")
        t0, c0 = time.monotonic(), time.process_time()
        cinputs, cprep = inputs, prepared
        if ccfg.data != cfg.data:  # the candidate's own features (prepared once per distinct data section)
            data_key = ccfg.data.model_dump_json()
            if data_key not in features:
                own = merge(inputs.modality.cfg.model_dump(), dict(candidate.get("data", {})))
                modality = inputs.modality.with_data(DataConfig.model_validate(own))
                own_inputs = Inputs(modality, inputs.data, inputs.chunk_rows)
                features[data_key] = (own_inputs, fit_preprocessing(ccfg, own_inputs, split))
            cinputs, cprep = features[data_key]
        timer = Deadline(deadline, clock)
        # an ensemble starts no member after its fair share of what is left, so later candidates get their turn
        now = clock()
        share = now + (deadline - now) / (len(portfolio) - i) if math.isfinite(deadline) else math.inf

        def stop(timer: Deadline = timer, share: float = share) -> bool:
            return timer.passed() or timer.clock() >= share

        cdir = out / "candidates" / f"{i}_{candidate.get('name')}"
        again = resume and any((cdir / "checkpoints" / f).is_file() for f in ("last.ckpt", "previous.ckpt"))
        trained = train_network(ccfg, cinputs, split, cprep, cdir, resume=again, callbacks=[*callbacks, timer], stop=stop)
        trained.bundle.save(cdir / "model")
        recipes[i] = Recipe.of(cdir.name, ccfg, cinputs, trained, timed_out=timer.stopped)
        preds = validation_preds(cinputs, cprep, trained, va)
        score = score_preds(cinputs, va, preds, metric)
        if preds is not None and math.isfinite(score):  # candidates reading the same inputs may be averaged
            pool.append((i, score, trained, preds))
            groups[i] = (cinputs, cprep, ccfg)
        record.update(
            status="trained",
            val={metric: score},
            seconds=round(time.monotonic() - t0, 1),
            cpu_seconds=round(time.process_time() - c0, 1),
            epochs=trained.epochs,
            best_epoch=trained.best_epoch,
            stopped_by_budget=timer.stopped or (ccfg.train.ensemble_size > 1 and members_of(trained) < ccfg.train.ensemble_size),
            model_dir=str(cdir / "model"),
        )
        if ccfg.train.ensemble_size > 1:
            record["ensemble_members"] = members_of(trained)
        if timer.stopped or record["stopped_by_budget"]:
            print(f"auto: candidate {record['label']} stopped by train.time_budget ({budget:g} s)")
        print(f"auto: candidate {record['label']}: validation {metric} {score:.4f}")
        key = score if higher else -score
        tie = tie_break(cinputs, va, preds, metric)
        if tie is not None:
            record["val"]["log_loss"] = -tie
        if best is not None and math.isfinite(key) and key == best_score and tie is not None and tie > best_tie:
            print(f"auto: candidate {record['label']} ties the best on validation {metric}; its lower validation "
                  f"log-loss decides ({-tie:.4f} against {-best_tie:.4f})")  # fmt: skip
        if best is None or (math.isfinite(key) and (key, tie or 0.0) > (best_score, best_tie)):
            best = Chosen(ccfg, cinputs, cprep, trained, recipes=[recipes[i]])
            best_score = key if math.isfinite(key) else -math.inf
            best_tie = tie or 0.0
            for r in records:
                r["selected"] = False
            record["selected"] = True
    if best is None:
        raise ConfigError("model.name: auto: no candidate of the portfolio applies to this data and task")
    averaged = None
    rule, prior = cfg.train.portfolio_blend, type(inputs.modality).blend_prior_for(cfg.data.task or inputs.targets.kind)
    for prep_id in dict.fromkeys(id(g[1]) for g in groups.values()):  # each set of candidates on the same inputs
        same = [p for p in pool if id(groups[p[0]][1]) == prep_id]
        own_prior, note = group_prior(prior, [p[0] for p in same if records[p[0]].get("stopped_by_budget")])
        found = average_if_better(
            inputs, va, same, metric, higher, best_score, rule=rule, prior=own_prior, seed=cfg.train.seed, prior_note=note
        )
        if found is None:
            continue
        if found[0] is not None and (averaged is None or _key(found, metric, higher) > _key(averaged, metric, higher)):
            if averaged is not None:  # an average of other inputs scored lower
                _outscored(averaged[1])
            averaged = found
        elif found[0] is not None:
            _outscored(found[1])
        records.append(found[1])
        if found[0] is None:
            _say_kept(found[1], metric)
    if rule == "never" and len(pool) > 1:
        print("auto: train.portfolio_blend: never: candidates are not averaged; the best single one is the run's model")
    if averaged is not None and averaged[0] is not None:
        record_avg = averaged[1]
        ginputs, gprep, gcfg = groups[record_avg["members_ranked"][0]]
        best = Chosen(gcfg, ginputs, gprep, averaged[0], recipes=[recipes[j] for j in record_avg["members_ranked"]])
        for r in records:
            if r["index"] != "average":
                r["selected"] = r["index"] in record_avg["members"]
        score = record_avg["val"][metric]
        print(f"auto: the average of candidates {record_avg['members']} is the run's model: validation {metric} {score:.4f} "
              f"({record_avg['reason']})")  # fmt: skip
    best.record = {
        "metric": metric,
        "higher_is_better": higher,
        "selected_on": "val" if len(va) else "none (no validation rows: the first trained candidate)",
        "time_budget": budget,
        "time_budget_clock": cfg.train.time_budget_clock,
        "seconds": round(time.monotonic() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu0, 1),
        "selected": averaged[1]["label"] if averaged is not None else next(r["label"] for r in records if r.get("selected")),
        "candidates": records,
    }
    inputs.data.summary["model (auto)"] = best.record["selected"]  # the report's data section names it
    return best


def tie_break(inputs: Inputs, rows: np.ndarray, preds: np.ndarray | None, metric: str) -> float | None:
    """The second key of the choice between candidates: minus the validation log-loss of a classifier (accuracy
    on a hundred rows ties often, and the probabilities still tell the candidates apart); ``None`` for other
    tasks or without a finite log-loss."""
    if inputs.targets.kind not in ("binary", "multiclass") or metric == "log_loss":
        return None
    loss = score_preds(inputs, rows, preds, "log_loss")
    return -loss if math.isfinite(loss) else None


def _key(found: tuple[Trained | None, dict[str, Any]], metric: str, higher: bool) -> float:
    score = float(found[1]["val"][metric])
    return score if higher else -score


def _why(evidence: Mapping[str, Any], metric: str) -> str:
    """``train.portfolio_blend``'s reason for a choice between the average and the best single candidate."""
    gain, rule = float(evidence["gain_over_best"]), evidence["rule"]
    if gain == 0:
        text = f"level with its best single candidate on {metric}"
    else:
        text = f"{'better' if gain > 0 else 'worse'} than its best single candidate by {abs(gain):.4f} {metric}"
    if rule == "auto":
        se = evidence.get("standard_error", math.nan)
        text += f", standard error {se:.4f}; {evidence['prior']} unless validation shows otherwise by > 1 SE"
        if evidence.get("prior_note"):
            text += f" ({evidence['prior']} because {evidence['prior_note']})"
    if evidence.get("other_inputs_better"):
        text += "; a candidate reading other inputs scores higher"
    return text + f"; train.portfolio_blend: {rule}"


def _outscored(record: dict[str, Any]) -> None:
    """An average the rule would keep, but one on other inputs scores at least as high on validation."""
    why = record["reason"] + "; an average of other inputs scores at least as high"
    record.update(status="not chosen", selected=False, reason=why)


def _say_kept(record: Mapping[str, Any], metric: str) -> None:
    score = record["val"][metric]
    print(f"auto: the best single candidate is kept over the {record['label']} (validation {metric} {score:.4f}: "
          f"{record['reason']})")  # fmt: skip


def average_if_better(
    inputs: Inputs,
    rows: np.ndarray,
    pool: Sequence[Pooled],
    metric: str,
    higher: bool,
    best_key: float,
    *,
    rule: Literal["auto", "better", "always", "never"] = "better",
    prior: Literal["average", "single"] = "single",
    seed: int = 0,
    prior_note: str | None = None,
) -> tuple[Trained | None, dict[str, Any]] | None:
    """The average of the candidates in ``pool`` (same inputs) as one network when ``rule`` keeps it
    (:func:`biodl.experiment.blend.choose_average`), with its record; the average must also
    beat ``best_key`` (the best single score of all candidates, negated when lower is better) when a candidate
    reading other inputs holds it (rule ``always``: kept regardless). The network is
    ``None`` when the rule keeps the best single candidate (the record says why); ``None`` when nothing
    could be averaged. ``prior_note``: why ``prior`` is not the data type's own (recorded and printed).
    """
    found = choose_average(inputs, rows, pool, metric, higher, rule, prior, seed=seed)
    if found is None:
        return None
    option, evidence = found
    if prior_note:
        evidence["prior_note"] = prior_note
    score = evidence["val"][metric]
    key, pool_best = (score if higher else -score), max(p[1] if higher else -p[1] for p in pool)
    if evidence["averaged"] and rule != "always" and pool_best < best_key and not key > best_key:
        evidence["averaged"] = False  # a candidate reading other inputs is better than this average
        evidence["other_inputs_better"] = True
    chosen = option if evidence["averaged"] else []
    members = sorted(p[0] for p in option)
    record = {
        "index": "average",
        "label": "average of " + ", ".join(str(m) for m in members),
        "status": "averaged" if chosen else "not chosen",
        "members": members,
        "val": {metric: score},
        "selected": bool(chosen),
        "blend_rule": {k: v for k, v in evidence.items() if k != "val"},
        "reason": _why(evidence, metric),
    }
    if not chosen:
        return None, record
    record["members_ranked"] = [p[0] for p in chosen]
    return blend(chosen), record


def validation_preds(inputs: Inputs, prepared: Prepared, trained: Trained, rows: np.ndarray) -> np.ndarray | None:
    """The trained candidate's outputs on ``rows`` (probabilities or values on the original scale); ``None``
    without rows."""
    if not len(rows):
        return None
    X = prepared.X[rows] if prepared.X is not None else inputs.modality.transform(inputs.data.X[rows])
    return trained.bundle.predict_arrays(X)


def validation_score(inputs: Inputs, prepared: Prepared, trained: Trained, rows: np.ndarray, metric: str) -> float:
    """The headline ``metric`` of the trained candidate on ``rows`` (original target scale); NaN without rows."""
    return score_preds(inputs, rows, validation_preds(inputs, prepared, trained, rows), metric)


def evaluate_chosen(cfg: ExperimentConfig, inputs: Inputs, split: Split, prepared: Prepared, chosen: Chosen) -> Evaluation:
    """Score the chosen candidate; the baseline on the run's own features; the candidates' record."""
    if chosen.inputs is inputs:
        evaluation = evaluate_run(chosen.cfg, chosen.inputs, split, chosen.prepared, chosen.trained)
    else:  # the baseline stays on the run's features, not the candidate's
        plain = chosen.cfg.model_copy(update={"evaluate": chosen.cfg.evaluate.model_copy(update={"baselines": []})})
        evaluation = evaluate_run(plain, chosen.inputs, split, chosen.prepared, chosen.trained)
        extra: dict[str, Any] = {}
        base_val = add_baselines(cfg, inputs, split, prepared, extra)
        evaluation.metrics.update(to_jsonable(extra))
        se = margin_se(inputs, split.val, evaluation.preds, base_val, inputs.targets.kind)
        compare_to_baseline(evaluation.metrics, inputs.targets.kind, standard_error=se)
    metrics = evaluation.metrics
    metrics["model_selection"] = to_jsonable(chosen.record)
    metrics["candidates"] = {
        r["label"]: {"status": r["status"], **({"val": r["val"]} if "val" in r else {})} for r in chosen.record["candidates"]
    }
    return evaluation
