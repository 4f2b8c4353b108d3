"""``biodl tune``: hyper-parameter search with Optuna over any config key.

Takes the data, task and training flags of ``biodl train`` plus the flags of :data:`TUNE_FLAGS`.
Config sources, later ones winning: ``--config`` YAML (its ``tune:`` section included), the
data/training flags, ``--search-space`` (replaces ``tune.space``), the tune flags, ``--set``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from biodl.cli.options import DATA_FLAGS, SPLIT_FLAGS, TRAIN_FLAGS, Flag, given

__all__ = ["TUNE_FLAGS", "add_parser", "cmd_tune", "load_search_space", "tune_config"]

#: Flags that set keys of the ``tune`` section.
TUNE_FLAGS: tuple[Flag, ...] = (
    Flag("--n-trials", "tune.n_trials", "trials this worker runs (several workers add up)", type=int),
    Flag("--timeout", "tune.timeout", "seconds after which this worker starts no new trial", type=float),
    Flag("--storage", "tune.storage", "RDB URL, journal:///FILE.log or FILE.db/FILE.log (default OUTPUT_DIR/study.db)"),
    Flag("--study-name", "tune.study_name", "study to create or join (default biodl)"),
    Flag("--sampler", "tune.sampler", "search strategy", choices=("line", "random", "tpe")),
    Flag("--pruner", "tune.pruner", "stop poor trials early", choices=("none", "median", "successive-halving", "hyperband")),
    Flag("--metric", "tune.metric", "validation metric to optimise (default: the task's main metric; loss)"),
)


def add_parser(sub: Any) -> None:
    """Register ``biodl tune`` on the sub-command parsers ``sub``."""
    p = sub.add_parser(
        "tune",
        help="hyper-parameter search (Optuna): line, random or TPE sampling with pruning",
        description="Search hyper-parameters on the validation split; several workers may join one study.",
    )
    p.add_argument("--output-dir", required=True, help="tune directory (study.db, trials/, best_config.yaml, tune_report.html)")
    p.add_argument("--config", help="base experiment YAML, may hold a tune: section (CLI flags override it)")
    p.add_argument("--search-space", metavar="FILE.yaml", help="YAML {dotted.key: {type: ...}} (replaces tune.space)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. train.lr=0.01")
    group = p.add_argument_group("search")
    for f in TUNE_FLAGS:
        f.add(group)
    for title, flags in (("data", DATA_FLAGS + SPLIT_FLAGS), ("model and training", TRAIN_FLAGS)):
        group = p.add_argument_group(title)
        for f in flags:
            f.add(group)


def load_search_space(path: str | Path) -> dict[str, Any]:
    """Read a search-space YAML as a partial ``tune`` section.

    The file is either a mapping of dotted config keys to distributions, or a ``tune`` section
    (a mapping with a ``space`` key and optionally other tune keys), or ``{tune: {...}}``.
    """
    from biodl.config import load_yaml
    from biodl.errors import ConfigError

    raw = load_yaml(path)
    if set(raw) == {"tune"}:
        raw = raw["tune"] or {}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{path}: 'tune' must be a mapping")
    if "space" in raw:
        section = dict(raw)
        if not isinstance(section["space"], Mapping) or not section["space"]:
            raise ConfigError(f"{path}: 'space' must be a non-empty mapping of dotted config keys to distributions")
        return section
    if not raw:
        raise ConfigError(f"{path}: the search space is empty")
    return {"space": dict(raw)}


def tune_config(args: argparse.Namespace) -> Any:
    """The validated :class:`~biodl.config.ExperimentConfig` of a ``biodl tune`` command line."""
    from biodl.config import ExperimentConfig, apply_overrides, load_yaml, set_nested

    raw: dict[str, Any] = load_yaml(args.config) if args.config else {}
    for key, value in given(args, DATA_FLAGS + SPLIT_FLAGS + TRAIN_FLAGS).items():
        set_nested(raw, key.split("."), value)
    if args.search_space:
        tune = raw.get("tune")
        section = dict(tune) if isinstance(tune, Mapping) else {}
        section.update(load_search_space(args.search_space))
        raw["tune"] = section
    for key, value in given(args, TUNE_FLAGS).items():
        set_nested(raw, key.split("."), value)
    apply_overrides(raw, args.set)
    source = args.config or args.search_space or "command line"
    # a tune section (even an empty one) makes a model-less config resolve to the data type's default network
    # rather than the ``auto`` portfolio, which has no settings to search (biodl.wiring.resolve_experiment)
    raw.setdefault("tune", {})
    return ExperimentConfig.from_dict(raw, source=source)


def cmd_tune(args: argparse.Namespace) -> int:
    """Run ``biodl tune``."""
    from biodl.errors import BiodlError
    from biodl.tune.study import run_study

    cfg = tune_config(args)
    result = run_study(cfg, Path(args.output_dir))
    if result.best_config is None:
        raise BiodlError(f"no trial of study {cfg.tune.study_name!r} has completed yet; see {result.trials_table}")
    return 0
