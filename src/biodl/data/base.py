"""The data-type ("modality") interface and its registry.

A modality reads files into arrays, fits its preprocessing on the training rows, turns raw
arrays into model inputs, and provides 2-D features for the classical baseline. Its fitted
state is plain JSON plus named arrays, stored in the model bundle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch

from biodl.config import DataConfig
from biodl.data.targets import Targets
from biodl.registry import Registry

BatchAugment = Callable[[torch.Tensor], torch.Tensor]


@runtime_checkable
class JointAugment(Protocol):
    """A batch augmentation that needs the targets too (masks moved with the image, batch expansion)."""

    def augment_pair(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented ``(x, y)``; the batch may grow (several crops or transformed copies per example)."""
        ...


@runtime_checkable
class SampledAugment(Protocol):
    """A training augmentation that also decides what one training sample is (e.g. a random crop).

    ``training_samples(X, y)`` returns a map-style dataset whose items are the samples an epoch
    goes through (``train.batch_size`` counts them) and the per-batch augmentation still to apply,
    or ``None`` to train on the rows of ``X`` as they are.
    """

    def training_samples(self, X: np.ndarray, y: np.ndarray) -> tuple[Any, Any] | None:
        """``(dataset, batch augmentation or None)`` or ``None``."""
        ...


@dataclass
class LoadedData:
    """Rows read from the input files.

    Attributes
    ----------
    X
        Raw inputs, ``(N, ...)``: float32 features ``(N, F)`` for tables.
    targets
        Encoded targets, or ``None`` when the file has no target columns (prediction).
    ids
        ``(N,)`` row identifiers (strings).
    groups
        ``(N,)`` group labels for group splits, or ``None``.
    summary
        Facts for reports (files, rows, columns, counts of handled records).
    parts
        ``(N,)`` predefined split of each row (``"train"``, ``"val"``, ``"test"``), or ``None``;
        used by ``split: auto`` and ``split: predefined`` (e.g. MedMNIST's own split).
    sources
        ``(N,)`` the id of the row each row was derived from (its own id for rows read from the
        files; the source peak's id for dinucleotide shuffles, flank and GC-matched negatives),
        or ``None`` when no row is derived. Every split keeps a source and its derived rows on
        one side (no leakage).
    folds
        ``(N,)`` predefined cross-validation test fold of each row (``data.cv_column``), or ``None``.
    """

    X: np.ndarray
    targets: Targets | None
    ids: np.ndarray
    groups: np.ndarray | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    parts: np.ndarray | None = None
    sources: np.ndarray | None = None
    folds: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.X.shape[0])


#: ``train.refit: auto`` for small tables and molecule sets: at most this many rows (the time of a second training
#: stays small; the third of the rows a test split holds matters most there).
REFIT_ROWS = 3_000


class Modality(ABC):
    """One data type (tables, sequences, ...)."""

    name: ClassVar[str]
    #: What one request input of ``biodl serve`` is (model card, report); empty: "one <name> record".
    input_hint: ClassVar[str] = ""
    #: Candidate ``model:`` sections that ``model.name: auto`` trains and chooses from on validation (in this
    #: order, within ``train.time_budget``); non-empty makes ``auto`` the data type's default model. Besides the
    #: model's own keys a candidate may hold ``train`` and ``data`` sections, merged over the run's
    #: (e.g. ``{"name": "ffn", "train": {"ensemble_size": 5}}``; ``train`` keys the experiment sets win), and
    #: ``tasks``: the tasks it is a candidate for (default: every task).
    portfolio: ClassVar[tuple[dict[str, object], ...]] = ()
    #: ``train.portfolio_blend: auto``: what holds unless validation shows the other better by more than one
    #: standard error: ``average`` (the mean of the candidates on the same inputs) or ``single`` (the best one).
    blend_prior: ClassVar[Literal["average", "single"]] = "single"
    #: The tasks :attr:`blend_prior` is for (``None``: every task); the others' prior is ``single``.
    blend_prior_tasks: ClassVar[tuple[str, ...] | None] = None
    #: ``train.refit: auto`` trains the measured model again on training + test rows for data sets of at most this
    #: many rows (0: never by default; :mod:`biodl.experiment.refit`).
    refit_rows: ClassVar[int] = 0
    #: Tasks for which ``model.name`` unset means ``auto`` (``None``: every task, when there is a portfolio).
    auto_tasks: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, cfg: DataConfig) -> None:
        self.cfg = cfg

    @classmethod
    def blend_prior_for(cls, task: str) -> Literal["average", "single"]:
        """``train.portfolio_blend: auto``'s prior for ``task`` (``regression``, ``classification``, ...)."""
        return cls.blend_prior if cls.blend_prior_tasks is None or task in cls.blend_prior_tasks else "single"

    @abstractmethod
    def load(self, paths: list[str], *, require_targets: bool = True, classes: list[str] | None = None) -> LoadedData:
        """Read ``paths`` into arrays (targets encoded for ``cfg.task``)."""

    @abstractmethod
    def fit(self, X_train: np.ndarray) -> None:
        """Fit preprocessing on training inputs only."""

    @abstractmethod
    def transform(self, X: np.ndarray) -> np.ndarray:
        """Raw inputs → model inputs (same number of rows)."""

    def parse_inputs(self, inputs: list[Any]) -> np.ndarray:
        """Raw inputs ``(N, ...)`` from JSON-like records (a serving request's ``inputs``).

        Raises :class:`biodl.errors.DataError` naming the offending record.
        """
        raise NotImplementedError(f"data type {self.name!r} cannot parse request inputs")

    def input_notes(self, raw: np.ndarray) -> list[str] | None:
        """For parsed inputs ``raw`` (:meth:`parse_inputs`), one note per input on what was changed before
        prediction (``""``: nothing), e.g. a molecule drawn scaled down to fit its image grid; ``None``
        (the default): this data type never changes an input."""
        return None

    def for_fold(self) -> Modality:
        """A fresh instance for one cross-validation fold: what reading the files established
        (formats, columns, window flanks) carried over, nothing fitted. Default: a new instance."""
        return type(self)(self.cfg)

    def with_data(self, cfg: DataConfig) -> Modality:
        """A fresh, unfitted instance with other data options (a ``model.name: auto`` candidate's own features),
        keeping what reading the files established. Default: ``type(self)(cfg)``."""
        return type(self)(cfg)

    def input_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The network's input shape, from the shape of one transformed row (default: the same)."""
        return shape

    def model_params(self) -> dict[str, Any]:
        """Architecture parameters that follow from the data (e.g. ``inputs``: the named inputs and their
        shapes of a multi-input experiment); stored with the model. Default: none."""
        return {}

    def baseline_features(self, X_model: np.ndarray) -> np.ndarray:
        """2-D features ``(N, F)`` for the classical baseline, from model inputs."""
        return X_model.reshape(len(X_model), -1).astype(np.float32, copy=False)

    def train_augment(self) -> BatchAugment | None:
        """Batch augmentation applied during training, or ``None``.

        An object that also implements :class:`JointAugment` gets ``(x, y)`` batches.
        """
        return None

    def configure_model(self, model: torch.nn.Module) -> None:
        """Give a freshly built (or loaded) network data-dependent settings, e.g. the sliding
        window used to predict images larger than the training crops. Default: nothing."""
        return None

    def report_figures(
        self, model: torch.nn.Module, X_model: np.ndarray, data: LoadedData, rows: np.ndarray, y_pred: np.ndarray, figdir: Path
    ) -> dict[str, Path]:
        """Data-type specific report figures (caption → PNG) for the evaluation ``rows``. Default: none."""
        return {}

    def columns(self) -> dict[str, Any]:
        """Resolved column mapping for the bundle."""
        return {}

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Fitted preprocessing: ``(json_meta, arrays)``."""
        return {}, {}

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state` returned."""
        return None


DATA_TYPES: Registry[type[Modality]] = Registry("data type")
