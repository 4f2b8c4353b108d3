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
"""

from __future__ import annotations

from biodl.experiment.core import Experiment
from biodl.experiment.results import Evaluation, Inputs, Prepared, RunResult, Trained
from biodl.experiment.split import stratify_labels

#: Former private name, kept for callers of the single-module experiment.
_stratify_labels = stratify_labels

__all__ = ["Evaluation", "Experiment", "Inputs", "Prepared", "RunResult", "Trained", "stratify_labels"]
