"""Interpretable multi-label learning (Kang et al., 2019): the deep non-negative auto-encoder of the
label matrix, the NMF baseline, the two-step learner, label hierarchies and tail-label weighting.

The multi-label metrics live in :mod:`biodl.metrics.multilabel`; ARFF/Mulan readers in
:mod:`biodl.data.arff`.
"""

from biodl.multilabel.dnae import (
    DeepNonNegativeAutoencoder,
    DNAEFit,
    NMFBaseline,
    dnae_reconstruct,
    fit_dnae,
    label_weights,
    reconstruction_error,
)
from biodl.multilabel.hierarchy import explain_prediction, format_explanation, hierarchy_table, plot_hierarchy, unit_labels
from biodl.multilabel.twostep import TwoStepLearner, dense_regressor

__all__ = [
    "DNAEFit",
    "DeepNonNegativeAutoencoder",
    "NMFBaseline",
    "TwoStepLearner",
    "dense_regressor",
    "dnae_reconstruct",
    "explain_prediction",
    "fit_dnae",
    "format_explanation",
    "hierarchy_table",
    "label_weights",
    "plot_hierarchy",
    "reconstruction_error",
    "unit_labels",
]
