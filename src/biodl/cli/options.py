"""Kebab-case flags and the config keys they set (one table, shared by every command)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any


def _devices(text: str) -> int | str:
    return int(text) if text.isdigit() else text


@dataclass(frozen=True)
class Flag:
    """A CLI flag that sets one config key."""

    flag: str
    key: str
    help: str
    nargs: str | int | None = None
    type: Any = str
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return "cfg__" + self.key.replace(".", "__")

    def add(self, parser: argparse.ArgumentParser | Any) -> None:
        kwargs: dict[str, Any] = {"dest": self.dest, "default": None, "help": f"{self.help} [{self.key}]", "type": self.type}
        if self.nargs is not None:
            kwargs["nargs"] = self.nargs
        if self.choices is not None:
            kwargs["choices"] = self.choices
        parser.add_argument(self.flag, **kwargs)


DATA_FLAGS: tuple[Flag, ...] = (
    Flag("--data-path", "data.path", "input file(s)", nargs="+"),
    Flag("--data-type", "data.type", "data type (tabular, sequence, ...)"),
    Flag("--task", "data.task", "learning task", choices=("classification", "regression", "multilabel")),
    Flag("--target-columns", "data.target_columns", "target column(s)", nargs="+"),
    Flag("--feature-columns", "data.feature_columns", "feature columns (default: all numeric)", nargs="+"),
    Flag("--id-column", "data.id_column", "row identifier column"),
    Flag("--group-column", "data.group_column", "group column for group splits"),
)

SPLIT_FLAGS: tuple[Flag, ...] = (
    Flag("--split", "data.split", "split method", choices=("auto", "random", "stratified", "group")),
    Flag("--split-sizes", "data.split_sizes", "train val test fractions", nargs=3, type=float),
    Flag("--cv", "data.cv", "k-fold cross-validation", type=int),
)

TRAIN_FLAGS: tuple[Flag, ...] = (
    Flag("--model", "model.name", "registered architecture"),
    Flag("--max-epochs", "train.max_epochs", "maximum epochs", type=int),
    Flag("--batch-size", "train.batch_size", "batch size", type=int),
    Flag("--lr", "train.lr", "learning rate", type=float),
    Flag("--optimizer", "train.optimizer", "optimiser", choices=("adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta")),
    Flag("--seed", "train.seed", "random seed", type=int),
    Flag("--accelerator", "train.accelerator", "cpu, gpu or auto"),
    Flag("--devices", "train.devices", "number of devices or auto", type=_devices),
    Flag("--strategy", "train.strategy", "Lightning strategy (auto, ddp, ...)"),
    Flag("--precision", "train.precision", "32-true, bf16-mixed, 16-mixed"),
    Flag("--num-nodes", "train.num_nodes", "number of nodes", type=int),
    Flag("--num-workers", "train.num_workers", "data-loader worker processes", type=int),
)


def given(args: argparse.Namespace, flags: tuple[Flag, ...]) -> dict[str, Any]:
    """``{config key: value}`` for the flags the user actually gave."""
    out: dict[str, Any] = {}
    for f in flags:
        v = getattr(args, f.dest, None)
        if v is not None:
            out[f.key] = v
    return out
