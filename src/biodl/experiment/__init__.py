"""The experiment layer: one run of load → split → fit preprocessing → train → evaluate → write.

:class:`Experiment` chains the steps; each step is a function with typed inputs and outputs:

========================  =====================================================  ==============
step                      function                                               returns
========================  =====================================================  ==============
load                      :func:`biodl.experiment.load.load_inputs`              ``Inputs``
split                     :func:`biodl.experiment.split.split_rows`              ``Split``
fit preprocessing         :func:`biodl.experiment.prepare.fit_preprocessing`     ``Prepared``
train                     :func:`biodl.experiment.train.train_network`           ``Trained``
evaluate                  :func:`biodl.experiment.evaluate.evaluate_run`         ``Evaluation``
write                     :func:`biodl.experiment.write.write_run`               ``RunResult``
========================  =====================================================  ==============

The end-of-run console table and ``report.html`` are in :mod:`biodl.experiment.reporting`; the run
directory's life cycle (``--overwrite``, ``FAILED``) in :mod:`biodl.experiment.rundir`. Names are imported
on first use, so ``biodl.experiment.reporting`` loads without the training stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biodl.experiment.core import Experiment
    from biodl.experiment.results import Evaluation, Inputs, Prepared, RunResult, Trained
    from biodl.experiment.split import stratify_labels

__all__ = ["Evaluation", "Experiment", "Inputs", "Prepared", "RunResult", "Trained", "stratify_labels"]

_LAZY = {
    "Experiment": "biodl.experiment.core",
    "Evaluation": "biodl.experiment.results",
    "Inputs": "biodl.experiment.results",
    "Prepared": "biodl.experiment.results",
    "RunResult": "biodl.experiment.results",
    "Trained": "biodl.experiment.results",
    "stratify_labels": "biodl.experiment.split",
    "_stratify_labels": "biodl.experiment.split",  # the former private name
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        return getattr(module, name.lstrip("_"))
    raise AttributeError(f"module 'biodl.experiment' has no attribute {name!r}")
