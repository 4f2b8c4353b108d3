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
    const: Any = None

    @property
    def dest(self) -> str:
        return "cfg__" + self.key.replace(".", "__")

    def add(self, parser: argparse.ArgumentParser | Any) -> None:
        kwargs: dict[str, Any] = {"dest": self.dest, "default": None, "help": f"{self.help} [{self.key}]", "type": self.type}
        if self.nargs is not None:
            kwargs["nargs"] = self.nargs
        if self.choices is not None:
            kwargs["choices"] = self.choices
        if self.const is not None:
            kwargs["const"] = self.const
        parser.add_argument(self.flag, **kwargs)


SEQUENCE_FLAGS: tuple[Flag, ...] = (
    Flag("--sequence-column", "data.sequence.column", "sequence column of sequence tables"),
    Flag("--alphabet", "data.sequence.alphabet", "sequence alphabet", choices=("dna", "rna", "protein")),
    Flag(
        "--unknown",
        "data.sequence.unknown",
        "N/ambiguity codes (mask: also other characters)",
        choices=("zero", "uniform", "error", "mask"),
    ),
    Flag("--sequence-length", "data.sequence.length", "required sequence length", type=int),
    Flag(
        "--length-mode",
        "data.sequence.length_mode",
        "unequal lengths: error, pad (N), crop, fit (both)",
        choices=("error", "pad", "crop", "fit"),
    ),
    Flag(
        "--negatives",
        "data.sequence.negatives",
        "negatives for positives-only input",
        choices=("none", "dinucleotide-shuffle", "flank", "gc-matched"),
    ),
    Flag("--negatives-ratio", "data.sequence.negatives_ratio", "negatives per positive", type=int),
    Flag("--genome", "data.sequence.genome", "genome FASTA for interval (BED/narrowPeak) files"),
    Flag("--intervals-width", "data.sequence.intervals_width", "window width around peak summits/centres", type=int),
    Flag("--kmer-k", "data.sequence.kmer_k", "k of the k-mer count baseline", type=int),
)

CPG_FLAGS: tuple[Flag, ...] = (
    Flag("--cell-names", "data.cpg.cell_names", "cpg: one name per cell file, in file order (default: file stems)", nargs="+"),
    Flag("--cpg-k", "data.cpg.k", "cpg: observed neighbouring CpGs on each side, per cell", type=int),
    Flag("--annotations", "data.cpg.annotations", "cpg: BED files of regions (CpG islands, exons): per-site overlaps", nargs="+"),
)

IMAGE_FLAGS: tuple[Flag, ...] = (
    Flag("--mask-dir", "data.image.mask_dir", "segmentation masks, paired with the images by file name"),
    Flag("--mask-threshold", "data.image.mask_threshold", "binary masks: foreground = value > threshold", type=float),
    Flag("--mask-type", "data.image.mask_type", "mask kind", choices=("auto", "binary", "multiclass", "instance")),
    Flag("--image-size", "data.image.size", "classification: resize images to H W (or S)", nargs="+", type=int),
    Flag("--channels", "data.image.channels", "convert images to 1 (grey) or 3 (RGB) channels", type=int),
    Flag("--channel-axis", "data.image.channel_axis", "channel axis in the files", choices=("auto", "first", "last", "none")),
    Flag("--tile-size", "data.image.tile_size", "segmentation: training crop size", type=int),
    Flag("--npz-parts", "data.image.npz_parts", "MedMNIST NPZ parts to read (train val test)", nargs="+"),
    Flag("--augment", "data.image.augment", "random training transforms (none given = no augmentation)", nargs="*"),
    Flag("--augment-strategy", "data.image.augment_strategy", "road-paper strategy", choices=("few-data", "classic", "filter")),
    Flag(
        "--select-threshold",
        "evaluate.select_threshold",
        "binary segmentation: pick the foreground threshold that maximises this metric on validation (dice, patch_f1, ...)",
    ),
)


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


MOLECULE_FLAGS: tuple[Flag, ...] = (
    Flag("--smiles-column", "data.molecule.smiles_column", "SMILES column (default: smiles/SMILES, else the first)"),
    Flag(
        "--featurizer",
        "data.molecule.featurizer",
        "featurisers, concatenated (morgan_counts morgan_bits rdkit2d maccs tanimoto graph)",
        nargs="+",
    ),
    Flag("--radius", "data.molecule.radius", "Morgan fingerprint radius", type=int),
    Flag("--n-bits", "data.molecule.n_bits", "Morgan fingerprint size", type=int),
    Flag(
        "--skip-invalid",
        "data.molecule.skip_invalid",
        "drop unparseable molecules (written to skipped_rows.csv)",
        nargs="?",
        type=_bool,
        const=True,
    ),
    Flag("--fragments", "data.molecule.fragments", "multi-fragment SMILES (salts)", choices=("largest", "keep", "error")),
)

BAG_FLAGS: tuple[Flag, ...] = (
    Flag("--bag-column", "data.bag_column", "multiple-instance learning: bag identifier column (rows are instances)"),
    Flag(
        "--bag-instances",
        "data.bags.instances",
        "what an instance is: a table row or an image tile",
        choices=("auto", "tabular", "image"),
    ),
    Flag("--bag-tile-size", "data.bags.tile_size", "image bags: tile side in pixels", type=int),
    Flag("--bag-foreground", "data.bags.foreground", "image bags: minimum foreground fraction of a kept tile", type=float),
    Flag(
        "--bag-crops",
        "data.bags.crops",
        "image bags: tiles on a grid, or one crop per foreground object (cells, nuclei)",
        choices=("grid", "objects"),
    ),
)

VOLUME_FLAGS: tuple[Flag, ...] = (
    Flag("--time-axis", "data.volume.time_axis", "volumes: the first stack axis is time", nargs="?", type=_bool, const=True),
    Flag("--volume-size", "data.volume.size", "volumes: resize every stack to D H W (or S)", nargs="+", type=int),
    Flag("--voxel-spacing", "data.volume.spacing", "volumes: voxel spacing z y x", nargs=3, type=float),
)

DATA_FLAGS: tuple[Flag, ...] = (
    Flag("--data-path", "data.path", "input file(s)", nargs="+"),
    Flag("--data-type", "data.type", "data type (tabular, sequence, ...)"),
    Flag(
        "--task",
        "data.task",
        "learning task",
        choices=("classification", "regression", "multilabel", "segmentation", "reconstruction"),
    ),
    Flag("--target-columns", "data.target_columns", "target column(s)", nargs="+"),
    Flag(
        "--feature-columns",
        "data.feature_columns",
        "feature columns (default: the numeric columns that are not targets, ids or label-like; see docs/trust.md)",
        nargs="+",
    ),
    Flag("--id-column", "data.id_column", "row identifier column"),
    Flag("--group-column", "data.group_column", "group column for group splits"),
    *BAG_FLAGS,
    Flag("--val-column", "data.val_column", "rows whose value in this column is true form the validation split"),
    Flag(
        "--per-position",
        "data.per_position",
        "sequence labelling: targets are label strings as long as the sequences",
        nargs="?",
        type=_bool,
        const=True,
    ),
    Flag("--mask-column", "data.mask_column", "per-position 0/1 mask column (0 = left out of loss and metrics)"),
    Flag(
        "--position-feature-columns",
        "data.position_feature_columns",
        "per-position numeric input tracks (e.g. profiles): one number, or ';'-separated groups of numbers, per position",
        nargs="+",
    ),
    Flag("--classes", "data.classes", "per-position: the declared labels (others are errors)", nargs="+"),
    *SEQUENCE_FLAGS,
    *IMAGE_FLAGS,
    *MOLECULE_FLAGS,
    *VOLUME_FLAGS,
    *CPG_FLAGS,
)

SPLIT_FLAGS: tuple[Flag, ...] = (
    Flag(
        "--split",
        "data.split",
        "split method (ordered: train/val/test in file order; predefined: the data's own)",
        choices=("auto", "random", "stratified", "group", "chromosome", "ordered", "predefined", "scaffold"),
    ),
    Flag("--split-sizes", "data.split_sizes", "train val test fractions", nargs=3, type=float),
    Flag("--cv", "data.cv", "k-fold cross-validation", type=int),
    Flag("--cv-column", "data.cv_column", "cross-validation with the test fold given per row in this column"),
    Flag("--test-chroms", "data.test_chroms", "chromosome split: test chromosomes", nargs="+"),
    Flag("--val-chroms", "data.val_chroms", "chromosome split: validation chromosomes", nargs="+"),
)

TRAIN_FLAGS: tuple[Flag, ...] = (
    Flag("--model", "model.name", "registered architecture"),
    Flag(
        "--pooling",
        "model.pooling",
        "mil: bag pooling",
        choices=("mean", "max", "attention", "gated_attention", "noisy_and"),
    ),
    Flag("--max-epochs", "train.max_epochs", "maximum epochs", type=int),
    Flag("--batch-size", "train.batch_size", "batch size", type=int),
    Flag("--lr", "train.lr", "learning rate", type=float),
    Flag(
        "--optimizer",
        "train.optimizer",
        "optimiser",
        choices=("adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "lbfgs"),
    ),
    Flag("--seed", "train.seed", "random seed", type=int),
    Flag("--ensemble-size", "train.ensemble_size", "independently trained members, averaged", type=int),
    Flag("--time-budget", "train.time_budget", "model auto: seconds for training all candidate networks", type=float),
    Flag(
        "--select-by",
        "train.select_by",
        "choose epochs (and threshold) on validation rows, or by cross-validation over the training rows",
        choices=("val", "cv", "auto"),
    ),
    Flag("--select-folds", "train.select_folds", "--select-by cv: folds", type=int),
    Flag(
        "--select-ensemble",
        "train.select_ensemble",
        "--select-by cv: average the fold networks with the final one (true/false)",
        nargs="?",
        type=_bool,
        const=True,
    ),
    Flag(
        "--refit",
        "train.refit",
        "train the chosen model again on training + test rows once measured (auto: small tables and molecule sets)",
        choices=("auto", "always", "never"),
    ),
    Flag(
        "--keep-checkpoints",
        "train.keep_checkpoints",
        "Lightning checkpoints a finished run keeps: all (last + previous), last (for --resume) or none",
        choices=("all", "last", "none"),
    ),
    Flag(
        "--time-budget-clock",
        "train.time_budget_clock",
        "what --time-budget counts: cpu seconds or wall seconds",
        choices=("cpu", "wall"),
    ),
    Flag("--loss", "train.loss", "regression loss (huber: robust to heavy-tailed targets)", choices=("mse", "huber")),
    Flag("--max-time", "train.max_time", "stop training after the epoch in which this many seconds are spent", type=float),
    Flag("--label-smoothing", "train.label_smoothing", "classification: label smoothing of the training loss", type=float),
    Flag("--lr-schedule", "train.lr_schedule", "learning-rate schedule", choices=("none", "plateau", "exponential", "cosine")),
    Flag(
        "--pretrain",
        "train.pretrain",
        "layer-wise pre-training of the dense layers (denoising auto-encoders)",
        choices=("none", "autoencoder"),
    ),
    Flag("--pretrain-epochs", "train.pretrain_epochs", "pre-training epochs per layer", type=int),
    Flag("--accelerator", "train.accelerator", "cpu, gpu or auto"),
    Flag("--devices", "train.devices", "number of devices or auto", type=_devices),
    Flag("--strategy", "train.strategy", "Lightning strategy (auto, ddp, ...)"),
    Flag("--precision", "train.precision", "32-true, bf16-mixed, 16-mixed"),
    Flag("--num-nodes", "train.num_nodes", "number of nodes", type=int),
    Flag("--num-workers", "train.num_workers", "data-loader worker processes", type=int),
    Flag("--threads", "train.threads", "CPU threads of PyTorch (default: one per core)", type=int),
    Flag("--init-from", "train.init_from", "fine-tune from a model: zoo:NAME, hf://OWNER/REPO, URL, bundle or run dir"),
    Flag("--freeze", "train.freeze_layers", "with --init-from: freeze the first N layers", type=int),
    Flag("--logger", "train.logger", "experiment tracker", choices=("tensorboard", "csv", "mlflow", "wandb")),
)


def given(args: argparse.Namespace, flags: tuple[Flag, ...]) -> dict[str, Any]:
    """``{config key: value}`` for the flags the user actually gave."""
    out: dict[str, Any] = {}
    for f in flags:
        v = getattr(args, f.dest, None)
        if v is not None:
            out[f.key] = v
    return out
