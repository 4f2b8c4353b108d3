"""``biodl data convert``: write any supported input to an out-of-core HDF5 store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from biodl.cli.options import DATA_FLAGS, SPLIT_FLAGS, given
from biodl.errors import ConfigError


def add_parser(sub: Any) -> None:
    """Register ``biodl data convert``."""
    data = sub.add_parser("data", help="data utilities (convert to an HDF5 store)")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    conv = dsub.add_parser(
        "convert",
        help="write a chunked, compressed HDF5 store for out-of-core training",
        description="Read inputs with the same data options as `biodl train` and write a chunked HDF5 (or Zarr) store.",
    )
    conv.add_argument(
        "--output", required=True, help="store: an HDF5 file (.h5) or a Zarr directory (.zarr, needs the zarr package)"
    )
    conv.add_argument("--chunk-rows", type=int, default=1024, help="rows per chunk (default 1024)")
    conv.add_argument(
        "--pack-bits",
        action="store_true",
        help="bit-pack the inputs: sequence codes to the fewest bits per position (3 for DNA), one-hot to 1 bit",
    )
    conv.add_argument(
        "--input-order",
        action="store_true",
        help="store the rows in input order (default: shuffled, for training); a prediction store read in input "
        "order needs no reordering of the results",
    )
    conv.add_argument(
        "--no-targets",
        action="store_true",
        help="store inputs only, for prediction (default: targets are read as `biodl train` reads them)",
    )
    conv.add_argument("--config", help="experiment YAML whose data section is used")
    conv.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    conv.add_argument("--seed", type=int, default=None, help="seed of the stored split and of the shuffled row order")
    group = conv.add_argument_group("data")
    for f in DATA_FLAGS + SPLIT_FLAGS:
        f.add(group)


def cmd_data(args: argparse.Namespace) -> int:
    """Run ``biodl data convert``."""
    from biodl.config import ExperimentConfig, apply_overrides, load_yaml, set_nested
    from biodl.data import DATA_TYPES
    from biodl.data.splits import make_split
    from biodl.data.store import write_store
    from biodl.experiment.split import apply_val_column, split_seed
    from biodl.experiment.split import stratify_labels as _stratify_labels

    raw: dict[str, Any] = load_yaml(args.config) if args.config else {}
    for key, value in given(args, DATA_FLAGS + SPLIT_FLAGS).items():
        set_nested(raw, key.split("."), value)
    if args.seed is not None:
        set_nested(raw, ["train", "seed"], args.seed)
    apply_overrides(raw, args.set)
    cfg = ExperimentConfig.from_dict(raw, source=args.config or "command line")
    if cfg.data.per_position:
        raise ConfigError(
            "data.per_position: per-position (sequence labelling) data are not written to biodl stores; train, evaluate "
            "and predict from the table (`biodl predict --chunk-rows N` reads it in chunks)"
        )
    modality = DATA_TYPES[cfg.data.type](cfg.data)
    # targets as `biodl train` reads them (a class per FASTA file, generated negatives...), unless --no-targets
    data = modality.load(cfg.data.path, require_targets=not args.no_targets and cfg.data.task != "reconstruction")
    split = None
    if data.targets is not None:  # the split `biodl train` would make (validation column, chromosomes, groups...)
        apply_val_column(cfg, data)
        split = make_split(
            len(data), cfg.data.split_sizes, cfg.data.split, split_seed(cfg), labels=_stratify_labels(data),
            groups=data.groups, test_chroms=cfg.data.test_chroms, val_chroms=cfg.data.val_chroms, parts=data.parts,
            sources=data.sources,
        )  # fmt: skip
    out = write_store(
        Path(args.output), data, data_type=cfg.data.type, data_cfg=cfg.data, split=split,
        chunk_rows=args.chunk_rows, pack_bits=args.pack_bits, shuffle_seed=None if args.input_order else cfg.train.seed,
    )  # fmt: skip
    size = out.stat().st_size / 1e6
    what = "inputs only (no targets)" if data.targets is None else f"targets {', '.join(data.targets.names)}"
    print(
        f"{len(data)} rows of shape {tuple(data.X.shape[1:])} written to {out} ({size:.1f} MB; {what}; "
        + ("rows stored in input order)" if args.input_order else f"rows stored in shuffled order, seed {cfg.train.seed})")
    )
    return 0
