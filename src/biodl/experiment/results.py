"""What each step of an experiment hands to the next (typed, so a step's inputs and outputs are explicit).

load → :class:`Inputs` → split → :class:`~biodl.data.splits.Split` → fit preprocessing → :class:`Prepared`
→ train → :class:`Trained` → evaluate → :class:`Evaluation` → write → :class:`RunResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from biodl.bundle import Bundle
    from biodl.data import LoadedData, Modality
    from biodl.data.normalise import TargetScaler
    from biodl.data.targets import Targets


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


@dataclass
class Inputs:
    """The loaded data set and the data type (modality) that read it (step 1, :func:`load_inputs`).

    Attributes
    ----------
    modality
        The data type's preprocessing object (not yet fitted).
    data
        Rows, targets (never ``None`` here), ids, groups and the load summary.
    chunk_rows
        Rows per chunk of a streamed store (1024 for in-memory data).
    """

    modality: Modality
    data: LoadedData
    chunk_rows: int = 1024

    @property
    def targets(self) -> Targets:
        assert self.data.targets is not None
        return self.data.targets


@dataclass
class Prepared:
    """Preprocessing fitted on the training rows (step 3, :func:`fit_preprocessing`).

    Attributes
    ----------
    X
        All rows transformed, ``(N, *in_shape)``; ``None`` for a streamed store.
    in_shape
        The model's input shape (without the batch axis).
    scaler
        Regression target standardisation (fitted on the training rows), else ``None``.
    y_fit
        Targets as the network is trained on them (standardised for regression), ``(N, T)``.
    train_data, val_data
        What the training loop reads: ``(X, y)`` array pairs or streaming loaders (``val_data`` ``None`` when
        there is no validation split).
    """

    X: np.ndarray | None
    in_shape: tuple[int, ...]
    scaler: TargetScaler | None
    y_fit: np.ndarray
    train_data: Any
    val_data: Any

    @property
    def streaming(self) -> bool:
        return self.X is None


@dataclass
class Trained:
    """The trained model and how it was trained (step 4, :func:`train_network`).

    Attributes
    ----------
    bundle
        The model with its preprocessing and metadata (``meta``), not yet saved.
    history
        Per-epoch learning curves.
    best_epoch, epochs
        The epoch whose weights were kept, and the number of epochs run.
    is_global_zero
        Whether this process writes the run (only rank zero of a distributed run does).
    two_step
        Whether the model was trained on latent label codes (it then reports its label encoder).
    monitor
        What chose ``best_epoch`` (``train.monitor``: ``"val_loss"``, ``"val_auroc"``, ...), if known.
    """

    bundle: Bundle
    history: dict[str, list[float]]
    best_epoch: int | None
    epochs: int
    is_global_zero: bool = True
    two_step: bool = False
    monitor: str | None = None

    @property
    def model(self) -> Any:
        return self.bundle.model


@dataclass
class Evaluation:
    """Predictions and scores (step 5, :func:`evaluate_run`).

    Attributes
    ----------
    preds
        Predictions for every row, ``(N, T)`` (after a selected threshold shift).
    metrics
        The content of ``metrics.json`` (JSON-ready).
    """

    preds: np.ndarray
    metrics: dict[str, Any]
