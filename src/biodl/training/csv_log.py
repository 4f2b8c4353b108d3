"""A CSV metrics log that a resumed run continues instead of replacing."""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment


class DamagedCheckpoint(Exception):
    """A checkpoint file that cannot be read (truncated, empty, not a checkpoint)."""


def read_checkpoint_epoch(path: Path) -> int | None:
    """Like :func:`checkpoint_epoch`, but raises :class:`DamagedCheckpoint` for an unreadable file
    (``None`` still means: readable, but it holds more than plain data)."""
    import pickle
    import zipfile

    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except pickle.UnpicklingError:
        return None
    except (RuntimeError, OSError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        raise DamagedCheckpoint(str(exc).split(". ")[0]) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise DamagedCheckpoint("not a Lightning checkpoint")
    return int(ckpt.get("epoch", -1))


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a Lightning checkpoint was written in, or ``None`` if it holds more than plain data.

    Read with ``weights_only=True`` (no code runs) and memory-mapped (the weights are not read).
    """
    import pickle

    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError):
        return None
    return int(ckpt.get("epoch", -1))


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSV logger, keeping ``metrics.csv`` rows of the epochs a resumed run restored.

    Lightning's writer deletes an existing ``metrics.csv`` when it starts. With ``keep_before_epoch
    = E`` the rows of epochs ``< E`` (those the checkpoint covers) are written back first, and rows
    of later epochs (logged before a kill but not checkpointed; they are trained again) are dropped.

    Parameters
    ----------
    keep_before_epoch
        ``None`` for a fresh run (the old log is replaced, as in Lightning); ``math.inf`` keeps
        every row.
    """

    def __init__(self, *args: Any, keep_before_epoch: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep_before_epoch = keep_before_epoch

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is not None:
            return self._experiment
        path = Path(self.log_dir) / "metrics.csv"
        rows: list[dict[str, str]] = []
        keys: list[str] = []
        if self.keep_before_epoch is not None and path.is_file():
            with open(path, newline="") as fh:
                reader = csv.DictReader(fh)
                keys = list(reader.fieldnames or [])
                rows = [r for r in reader if _epoch(r) < self.keep_before_epoch]
        with warnings.catch_warnings():
            if self.keep_before_epoch is not None:  # its "will be deleted" warning is not true here
                warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
            writer = super().experiment  # removes metrics.csv
        if rows:
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "w", newline="") as fh:
                out = csv.DictWriter(fh, fieldnames=keys)
                out.writeheader()
                out.writerows(rows)
            os.replace(tmp, path)
            writer.metrics_keys = sorted(keys)  # new columns are added to these, not replace them
        return writer


def _epoch(row: dict[str, str]) -> float:
    try:
        return float(row.get("epoch") or "nan")
    except ValueError:
        return float("nan")
