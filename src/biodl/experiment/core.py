"""The experiment: load → split → fit preprocessing → train → evaluate → write.

>>> exp = Experiment.from_yaml("examples/pbmc.yaml")
>>> result = exp.fit("runs/pbmc")
>>> result.metrics["test"]["accuracy"]

Each step is a function of its own module with typed inputs and outputs (:mod:`biodl.experiment.results`);
:class:`Experiment` only chains them. A new data type plugs in through ``DATA_TYPES`` (step 1), a new model
kind through ``MODELS`` (step 4); neither touches this file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from biodl.config import AUTO, ExperimentConfig, apply_overrides
from biodl.data.splits import Split
from biodl.errors import ConfigError
from biodl.experiment.cv import write_cv_summary
from biodl.experiment.evaluate import evaluate_run
from biodl.experiment.load import load_inputs
from biodl.experiment.prepare import fit_preprocessing
from biodl.experiment.refit import Recipe, refit, refit_skipped
from biodl.experiment.results import Evaluation, Inputs, Prepared, RunResult, Trained
from biodl.experiment.rundir import check_run_dir, clear_failed, mark_failed, prune_checkpoints, start_run_dir
from biodl.experiment.select_cv import select_by_cv, wants_cv_selection
from biodl.experiment.split import apply_val_column, cv_folds, split_rows
from biodl.experiment.train import train_network
from biodl.experiment.write import write_run, write_skipped_rows
from biodl.metrics import to_jsonable
from biodl.training.fit import is_rank_zero


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
    def fit(
        self,
        output_dir: str | Path,
        *,
        resume: bool = False,
        overwrite: bool = True,
        callbacks: Sequence[Any] = (),
    ) -> RunResult:
        """Run the whole experiment, writing everything under ``output_dir``.

        ``callbacks`` are extra Lightning callbacks added to every training of this run
        (e.g. :class:`biodl.tune.pruning.PruningCallback`). PyTorch runs on ``train.threads``
        CPU threads throughout (training, prediction, explanations), if set.

        ``overwrite=False`` (``biodl train`` without ``--overwrite``) refuses a directory that holds a
        finished run unless ``resume``; ``overwrite=True`` (without ``resume``) first removes whatever an earlier run
        wrote there (:func:`biodl.experiment.rundir.clear_run_outputs`). ``config.yaml`` is written once the inputs
        were read; a run that fails after that leaves ``output_dir/FAILED`` with the error. Once the run has
        finished, ``train.keep_checkpoints`` decides which of its checkpoints stay (a failed run keeps them all).
        """
        from biodl.training.threads import torch_threads

        out = Path(output_dir)
        check_run_dir(out, overwrite=overwrite, resume=resume)
        from biodl.training.tracking import check_tracker

        check_tracker(self.config.train, out)  # an unreachable tracking server stops the run before anything is read
        with torch_threads(self.config.train.threads):
            cfg = self.config
            run_cfg, inputs = load_inputs(cfg)
            self.config = run_cfg
            if is_rank_zero():
                start_run_dir(out, cfg.to_yaml(), overwrite=overwrite, resume=resume)
            else:
                out.mkdir(parents=True, exist_ok=True)
            try:
                result = self._fit(inputs, out, resume=resume, callbacks=callbacks)
            except BaseException as exc:
                if is_rank_zero():
                    mark_failed(out, exc)
                raise
            if is_rank_zero():
                clear_failed(out)
                prune_checkpoints(out, self.config.train.keep_checkpoints)  # finished: bundle and metrics are written
            return result

    def _fit(self, inputs: Inputs, out: Path, *, resume: bool, callbacks: Sequence[Any]) -> RunResult:
        self._callbacks = list(callbacks)
        write_skipped_rows(out, inputs.data)
        apply_val_column(self.config, inputs.data)
        if self.config.data.cv or self.config.data.cv_column:
            return self._cross_validate(inputs, out, resume)
        split = split_rows(self.config, inputs, out)
        return self._run(inputs, split, out, resume)

    def _cross_validate(self, inputs: Inputs, out: Path, resume: bool) -> RunResult:
        cfg = self.config
        results = []
        for i, split in enumerate(cv_folds(cfg, inputs, out)):
            fold = Inputs(inputs.modality.for_fold(), inputs.data, inputs.chunk_rows)
            fold_dir = out / f"fold_{i}"
            results.append(self._run(fold, split, fold_dir, resume and fold_dir.exists(), cv_fold=True))
        if not is_rank_zero():
            return RunResult(out, {})
        return write_cv_summary(cfg, results, out)

    def _run(self, inputs: Inputs, split: Split, out: Path, resume: bool, *, cv_fold: bool = False) -> RunResult:
        """One training run on one split: fit preprocessing → train → evaluate → (refit →) write.

        ``cv_fold``: one fold of ``data.cv`` (a measurement: its model is not trained again, ``train.refit``)."""
        cfg = self.config
        out.mkdir(parents=True, exist_ok=True)
        from biodl.training.tracking import open_tracker

        selection = None
        if cfg.model.name != AUTO and wants_cv_selection(cfg, split):  # epochs and threshold by CV on the training rows
            selection = select_by_cv(cfg, inputs, split, out, self._callbacks)
            cfg, split = selection.cfg, selection.split
        prepared = fit_preprocessing(cfg, inputs, split)
        tracker = open_tracker(cfg, out) if is_rank_zero() else None  # MLflow / W&B run of this training, if chosen
        try:
            if cfg.model.name == AUTO:  # the data type's candidates, the best on validation
                from biodl.experiment.portfolio import evaluate_chosen, fit_portfolio

                chosen = fit_portfolio(cfg, inputs, split, prepared, out, resume=resume, callbacks=self._callbacks)
                evaluation = evaluate_chosen(cfg, inputs, split, prepared, chosen)
                final = self._refit(
                    cfg, inputs, split, prepared, chosen.recipes, evaluation, out, resume, cv_fold, cfg.train.time_budget
                )
                result = write_run(
                    chosen.cfg, chosen.inputs, split, chosen.prepared, chosen.trained, evaluation, out, final=final
                )
            else:
                trained = train_network(
                    cfg, inputs, split, prepared, out, resume=resume, callbacks=self._callbacks,
                    loggers=[tracker.logger] if tracker is not None else (),
                )  # fmt: skip
                if not trained.is_global_zero:
                    # one writer: other ranks of a distributed run stop after training
                    return RunResult(out, {}, trained.history)
                if selection is not None:
                    selection.apply(trained)
                evaluation = evaluate_run(cfg, inputs, split, prepared, trained)
                if selection is not None:
                    selection.record(evaluation.metrics, trained, out, inputs.data.ids)
                recipe = Recipe.of("model", cfg, inputs, trained)
                final = self._refit(cfg, inputs, split, prepared, [recipe], evaluation, out, resume, cv_fold)
                result = write_run(cfg, inputs, split, prepared, trained, evaluation, out, final=final)
        except BaseException:
            if tracker is not None:  # the tracked run of the training that failed
                tracker.close("FAILED")
            raise
        if tracker is not None:
            tracker.log_final(result.metrics)
            tracker.log_artifacts()
            tracker.close()
        return result

    def _refit(
        self,
        cfg: ExperimentConfig,
        inputs: Inputs,
        split: Split,
        prepared: Prepared,
        recipes: Sequence[Recipe],
        evaluation: Evaluation,
        out: Path,
        resume: bool,
        cv_fold: bool,
        budget: float | None = None,
    ) -> Trained | None:
        """``train.refit``: the measured model trained again on training + test rows, or ``None``
        (``metrics.json`` → ``refit`` says which, and why)."""
        why = "a cross-validation fold is a measurement" if cv_fold else refit_skipped(cfg, inputs, split, prepared)
        if why is not None:
            evaluation.metrics["refit"] = {"shipped": "measured", "reason": why}
            return None
        final, record = refit(recipes, split, evaluation, out, resume=resume, callbacks=self._callbacks, budget=budget)
        evaluation.metrics["refit"] = to_jsonable(record)
        return final
