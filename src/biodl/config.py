"""The experiment schema: one typed description shared by YAML, the CLI and Python.

Sections are ``data``, ``model``, ``train`` and ``evaluate``. Defaults follow Table 2 of
Angermueller et al. (2016): Adam (lr 1e-3; SGD lr 0.01 with momentum 0.9), batch size 128,
Glorot-uniform initialisation, batch normalisation, dropout 0.5, ReLU, learning-rate decay by a
factor 0.5 when the validation loss stops improving, early stopping with restore of the best
weights, and a 60/10/30 train/validation/test split.

Unknown keys are errors that suggest the closest valid key; wrong types and impossible values
are errors naming the key (:class:`biodl.errors.ConfigError`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from biodl.config_tune import TuneConfig
from biodl.errors import ConfigError
from biodl.registry import hook

Task = Literal["classification", "regression", "multilabel", "reconstruction", "segmentation"]

#: ``train.batch_size`` of segmentation runs when not set: random training crops per step (cellpose
#: and segmentation_models.pytorch examples use 8; whole-image batches of 128 gave one step per epoch).
SEGMENTATION_BATCH_SIZE = 8

#: Default learning rate per optimiser (review Table 2: 0.01 for SGD; Adam's usual 1e-3).
DEFAULT_LR: dict[str, float] = {
    "sgd": 0.01,
    "adam": 1e-3,
    "adamw": 1e-3,
    "rmsprop": 1e-3,
    "adagrad": 0.01,
    "adadelta": 1.0,
    "lbfgs": 1.0,
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NormalizeConfig(_Section):
    """Normalisation of numeric features, fitted on the training split only."""

    log1p: bool = Field(default=False, description="log(1 + x) first (counts); needs non-negative features")
    center: bool = Field(default=True, description="subtract the training mean of each feature")
    scale: bool = Field(default=True, description="divide by the training standard deviation of each feature")
    whiten: Literal["none", "pca", "zca"] = Field(default="none", description="decorrelate the features (PCA or ZCA whitening)")
    clip: float | None = Field(
        default=None,
        gt=0.0,
        description="clip standardised features to ±clip training standard deviations, and zero features without "
        "training variance (robust to extreme held-out values); null = no clipping",
    )
    rescale: bool = Field(
        default=False,
        description="with clip: standardise the clipped features again with their training mean and standard "
        "deviation (winsorised scaling; a clipped sparse gene keeps unit variance); ignored without clip",
    )


class SequenceOptions(_Section):
    """How sequence files (FASTA, sequence tables, intervals + genome) are read and encoded."""

    format: Literal["auto", "fasta", "table", "intervals"] = Field(
        default="auto", description="input format; auto: by extension/content"
    )
    column: str | None = Field(default=None, description="sequence column of tables (default: seq/sequence or sniffed)")
    header: bool | None = Field(default=None, description="tables: first line is a header (null = detect)")
    label_table: str | None = Field(default=None, description="table of labels joined to FASTA records on their IDs")
    alphabet: Literal["dna", "rna", "protein"] = "dna"
    unknown: Literal["zero", "uniform", "error", "mask"] = Field(
        default="zero",
        description="N/ambiguity codes: all-zero, uniform 1/A, an error; mask: also other characters become all-zero",
    )
    length: int | None = Field(default=None, ge=1, description="required sequence length (null = the data's length)")
    length_mode: Literal["error", "pad", "crop", "fit"] = Field(
        default="error", description="unequal lengths: error, pad shorter (N), crop longer, or fit (both)"
    )
    align: Literal["center", "left"] = Field(default="center", description="where shorter sequences sit when padded or cropped")
    empty: Literal["error", "drop"] = Field(default="error", description="empty records: error or drop (counted)")
    duplicate_ids: Literal["error", "rename"] = Field(default="error", description="repeated record ids: error or number them")
    negatives: Literal["none", "dinucleotide-shuffle", "flank", "gc-matched"] = Field(
        default="none", description="negatives for positives-only input (flank/gc-matched: intervals only)"
    )
    negatives_ratio: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="negatives per positive (null: 2 dinucleotide shuffles, chosen on ENCODE validation; 1 flank/gc window)",
    )
    seed: int = Field(default=0, description="seed of generated negatives")
    genome: str | None = Field(default=None, description="genome FASTA for interval files")
    intervals_width: int = Field(default=200, ge=1, description="window width centred on summits/centres")
    label_width: int | None = Field(default=None, ge=1, description="central bin labelled by overlap (null: min(200, width))")
    min_overlap: float = Field(default=0.5, gt=0.0, le=1.0, description="fraction of the label bin a peak must cover")
    flank_distance: int | None = Field(default=None, ge=1, description="offset of flank negatives (null: 2 x width)")
    out_of_bounds: Literal["error", "drop", "pad"] = Field(
        default="error", description="interval windows past a contig end: error, drop (counted) or pad with N"
    )
    unknown_contigs: Literal["error", "drop"] = Field(
        default="error", description="intervals on contigs the genome lacks: error or drop (counted)"
    )
    rc_augment: bool | None = Field(default=None, description="random strand in training (null: on for DNA)")
    shift: int = Field(default=0, ge=0, description="random shift of up to this many positions in training")
    kmer_k: int = Field(default=4, ge=1, le=8, description="k of the k-mer count baseline features")

    def resolved_negatives_ratio(self) -> int:
        """Negatives generated per positive (``negatives_ratio``, or its default for ``negatives``)."""
        if self.negatives_ratio is not None:
            return self.negatives_ratio
        return 2 if self.negatives == "dinucleotide-shuffle" else 1


class MoleculeOptions(_Section):
    """How molecule files (CSV/TSV with SMILES, SDF) are read and featurised (``--data-type molecule``)."""

    smiles_column: str | None = Field(default=None, description="SMILES column (null = 'smiles'/'SMILES', else the first)")
    featurizer: list[str] | None = Field(
        default=None,
        description="featurisers, concatenated (morgan_counts, morgan_bits, rdkit2d, maccs, graph; or chemception images "
        "alone); null = the model's",
    )
    radius: int = Field(default=2, ge=0, le=6, description="Morgan radius (2 = ECFP4)")
    n_bits: int = Field(default=2048, ge=8, description="Morgan fingerprint size")
    use_chirality: bool = Field(default=False, description="Morgan fingerprints: include chirality")
    fragments: Literal["largest", "keep", "error"] = Field(
        default="largest", description="multi-fragment SMILES (salts, mixtures): the largest organic fragment, all, or error"
    )
    skip_invalid: bool = Field(default=False, description="drop unparseable/empty molecules (counted, written out), not fail")
    max_atoms: int | None = Field(default=None, ge=1, description="graph featuriser: heavy-atom capacity (null = from the data)")
    grid_size: int = Field(default=80, ge=8, description="chemception featuriser: image width and height in pixels")
    grid_resolution: float = Field(default=0.5, gt=0.0, description="chemception featuriser: Å per pixel")
    grid_oversize: Literal["scale", "error"] = Field(
        default="scale",
        description="chemception: a molecule wider than the grid is drawn scaled down to fit (listed in changed_rows.csv) "
        "or is an error",
    )
    rotate: bool = Field(default=True, description="chemception: random rotation of the training images")


FilterName = Literal["contour", "detail", "edge_enhance", "find_edges"]


def _all_filters() -> list[FilterName]:
    return ["contour", "detail", "edge_enhance", "find_edges"]


class ImageOptions(_Section):
    """How images (and segmentation masks) are read, tiled and augmented (``--data-type image``).

    Inside biodl every image is channel-first ``(C, H, W)``; ``channel_axis`` says where the
    channels are in the files.
    """

    layout: Literal["auto", "folders", "table", "npz", "masks"] = Field(
        default="auto",
        description="folders: one sub-folder per class; table: CSV/TSV of image paths; npz: arrays (MedMNIST); "
        "masks: images + --mask-dir; auto: from the path",
    )
    image_column: str | None = Field(default=None, description="tables: column of image paths (null = path/image/file/filename)")
    npz_parts: list[Literal["train", "val", "test"]] | None = Field(
        default=None, description="MedMNIST NPZ: parts to read (null = all for training; test only for a saved model, if present)"
    )
    channel_axis: Literal["auto", "first", "last", "none"] = Field(
        default="auto", description="channel axis in the files (none = 2-D grey); auto: PIL images are last, TIFF by shape"
    )
    channels: int | None = Field(default=None, ge=1, description="convert to 1 (grey) or 3 (RGB) channels (null = as read)")
    size: list[int] | None = Field(default=None, description="classification: resize to [H, W] (or [S]); null = as read")
    mask_dir: str | None = Field(default=None, description="segmentation: folder of masks paired with the images by file name")
    mask_type: Literal["auto", "binary", "multiclass", "instance"] = Field(
        default="auto", description="binary (2 values or a threshold), multiclass label masks, instance masks (0 = background)"
    )
    mask_threshold: float | None = Field(default=None, description="binary masks: foreground = value > threshold (e.g. 128)")
    small_images: Literal["pad", "error"] = Field(default="pad", description="images smaller than the model input")
    tile_size: int = Field(
        default=128, ge=8, description="segmentation: side of the random training crops (smaller images are padded, unlabelled)"
    )
    crops_per_image: int = Field(
        default=8,
        ge=1,
        le=256,
        description="segmentation: random crops of each training image per epoch (each also in every copy of "
        "augment_strategy); train.batch_size counts crops",
    )
    predict_tile_size: int | None = Field(
        default=None, ge=8, description="sliding-window size for prediction (null = max(tile_size, 512))"
    )
    tile_overlap: float = Field(default=0.25, ge=0.0, lt=1.0, description="overlap of prediction windows")
    augment: list[str] | None = Field(
        default=None, description="random training transforms (registered names); null = flip + rot90, [] = none"
    )
    augment_strategy: Literal["few-data", "classic", "filter"] = Field(
        default="few-data",
        description="road-paper strategies: originals only, + rotations 90/180/270, + filtered copies",
    )
    filters: list[FilterName] = Field(default_factory=_all_filters, description="filter strategy: PIL ImageFilter operations")
    intensity: Literal["channel", "image", "none"] = Field(
        default="channel", description="standardise by training-set channel mean/std, per image, or not"
    )

    @field_validator("size")
    @classmethod
    def _size(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if len(v) == 1:
            v = [v[0], v[0]]
        if len(v) != 2 or any(s < 1 for s in v):
            raise ValueError(f"image size must be [H, W] or [S] with positive sizes, got {v}")
        return v


class BagOptions(_Section):
    """Multiple-instance learning: bags of instances with one label per bag (``--data-type bags``, or
    ``--data-type tabular`` with ``--bag-column``)."""

    instances: Literal["auto", "tabular", "image"] = Field(
        default="auto", description="what one instance is: a table row, or an image tile (auto: image for folders/NPZ)"
    )
    crops: Literal["grid", "objects"] = Field(
        default="grid",
        description="image bags: grid = square tiles on a grid; objects = one tile_size crop centred on each "
        "foreground object (cells, nuclei: connected components of the Otsu foreground)",
    )
    min_object_area: int = Field(default=20, ge=1, description="image bags, crops=objects: smaller objects are skipped (counted)")
    tile_size: int = Field(default=32, ge=4, description="image bags: side of the square tiles (or object crops)")
    tile_stride: int | None = Field(default=None, ge=1, description="image bags: grid step (null = tile_size, no overlap)")
    foreground: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="image bags: keep only tiles with at least this fraction of foreground pixels (Otsu threshold "
        "of the image); null = every tile",
    )
    max_instances: int | None = Field(
        default=None, ge=1, description="larger bags are an error naming the bag (null = no limit)"
    )
    instance_dropout: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="training only: drop each instance of a bag with this probability per step (at least one "
        "stays), i.e. train on random sub-bags; the mil model sets its own default",
    )


class VolumeOptions(_Section):
    """How 3-D stacks and time-lapse clips are read (``--data-type volume``); shared reading options
    (``mask_dir``, ``npz_parts``, ``augment``, ``intensity``, ``mask_threshold``) live in ``data.image``.

    Inside biodl every volume is channel-first ``(C, D, H, W)``; with ``time_axis`` the first
    stack axis is time (frames) instead of depth.
    """

    time_axis: bool = Field(default=False, description="the first axis of each stack is time (frames), not depth (z)")
    size: list[int] | None = Field(
        default=None, description="resize every stack to [D, H, W] (or [S]); null = as read (mixed shapes are an error)"
    )
    spacing: list[float] | None = Field(
        default=None, description="voxel spacing [z, y, x] (null = from the files' metadata where known)"
    )
    tile_size: list[int] = Field(
        default_factory=lambda: [16, 96, 96], description="segmentation: [D, H, W] of the random training crops"
    )
    crops_per_volume: int = Field(default=8, ge=1, le=256, description="segmentation: random training crops per volume per epoch")
    predict_tile_size: list[int] | None = Field(
        default=None, description="segmentation: [D, H, W] sliding window for prediction (null = 2 x tile_size)"
    )
    max_gib: float = Field(
        default=8.0, gt=0.0, description="largest float32 size (GiB) of the stacks read into memory; more is an error"
    )
    baseline_side: int = Field(default=7, ge=1, le=64, description="baseline features: voxels averaged down to side³")

    @field_validator("size", "tile_size", "predict_tile_size")
    @classmethod
    def _sides(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if len(v) == 1:
            v = [v[0]] * 3
        if len(v) != 3 or any(s < 1 for s in v):
            raise ValueError(f"volume sizes must be [D, H, W] or [S] with positive sizes, got {v}")
        return v

    @field_validator("spacing")
    @classmethod
    def _spacing(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (len(v) != 3 or any(s <= 0 for s in v)):
            raise ValueError(f"voxel spacing must be [z, y, x] with positive values, got {v}")
        return v


class InputSpec(_Section):
    """One named input of a multi-input experiment (``data.inputs``)."""

    type: str = Field(
        default="tabular",
        description="an input type computed per example (cpg-neighbours, dna-window, bed-overlaps) or a data type that "
        "reads its own files (tabular, sequence, ...; aligned with the other inputs by example id)",
    )
    path: list[str] = Field(
        default_factory=list, description="this input's files (a data type's files; bed-overlaps: BED files); empty: data.path"
    )


class CpgOptions(_Section):
    """CpG methylation (``--data-type cpg``): one example per CpG site, one binary target per cell."""

    cell_names: list[str] | None = Field(
        default=None, description="one name per cell file, in file order (null: file stems without a trailing _chrN)"
    )
    k: int = Field(
        default=10, ge=1, le=200, description="observed neighbouring CpGs on each side, per cell (chosen on validation)"
    )
    max_distance: int = Field(default=100_000, ge=1, description="neighbour distances are capped at this many bp")
    block_size: int = Field(
        default=100_000, ge=1_000, description="split: 'group' blocks of this many bp (contiguous held-out regions, no leakage)"
    )
    window: int = Field(default=501, ge=3, description="DNA module: window (bp) centred on the CpG, read from --genome")
    annotations: list[str] = Field(
        default_factory=list, description="BED files (CpG islands, exons, ...): one per-site overlap feature each"
    )


class DataConfig(_Section):
    """Where the data come from, which columns mean what, and how to split them."""

    type: str = Field(default="tabular", description="registered data type: tabular, sequence, ...")
    path: list[str] = Field(default_factory=list)
    task: Task | None = None
    target_columns: list[str] = Field(default_factory=list)
    feature_columns: list[str] | None = Field(
        default=None,
        description="feature columns (null: the numeric columns that are not targets, ids, groups or label-like; "
        "printed at the start of a run, see docs/trust.md)",
    )
    id_column: str | None = None
    group_column: str | None = None
    bad_values: Literal["error", "skip"] = Field(
        default="error",
        description="tables: a non-numeric cell in a numeric feature column is an error naming file, line, column and "
        "value; skip: leave out such rows (counted, listed in skipped_rows.csv)",
    )
    hdf5_features: str = Field(default="X", description="HDF5 inputs: the 2-D dataset of features (N, F)")
    h5ad_layer: str | None = Field(default=None, description="AnnData: read this layer instead of X")
    h5ad_backed: bool = Field(
        default=False,
        description="AnnData: stream rows from disk (backed mode) instead of loading X; sparse X stays sparse either way",
    )
    h5ad_genes: str | None = Field(
        default=None, description="AnnData gene selection: a boolean var column (e.g. highly_variable) or @FILE, a gene list"
    )
    h5ad_obsm: str | None = Field(default=None, description="AnnData: use this obsm embedding (e.g. X_pca) as the inputs")
    val_column: str | None = Field(
        default=None,
        description="rows whose value in this column is true (true/1/yes) form the validation split, the others train "
        "(and test, in the split_sizes train:test proportion, only when split_sizes is set); never a feature",
    )
    per_position: bool = Field(
        default=False,
        description="sequence labelling: each target is a label string as long as the sequence (one label per position); "
        "sequences are padded, never cropped, and padding is left out of loss and metrics",
    )
    classes: list[str] | None = Field(
        default=None,
        description="per_position: the declared labels (e.g. [C, E, H]); a label outside them is an error naming the "
        "row (null: the sorted labels found in the training file)",
    )
    mask_column: str | None = Field(
        default=None,
        description="per_position: a 0/1 string (or list) as long as the sequence; 0 = leave the position out of loss "
        "and metrics (e.g. unresolved residues); a file without the column counts every position",
    )
    split: Literal["auto", "random", "stratified", "group", "chromosome", "scaffold", "ordered", "predefined"] = "auto"
    split_sizes: tuple[float, float, float] = (0.6, 0.1, 0.3)
    split_seed: int | None = Field(default=None, description="seed of the train/val/test split (null: train.seed)")
    cv: int | None = None
    cv_column: str | None = Field(
        default=None,
        description="cross-validation with a predefined test fold per row (constant within a bag/group); never a feature",
    )
    bag_column: str | None = Field(
        default=None, description="bag identifier column: rows are instances, one label per bag (multiple-instance learning)"
    )
    bags: BagOptions = Field(default_factory=BagOptions)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    test_chroms: list[str] = Field(default_factory=list, description="chromosome split: test chromosomes")
    val_chroms: list[str] = Field(default_factory=list, description="chromosome split: validation chromosomes")
    sequence: SequenceOptions = Field(default_factory=SequenceOptions)
    molecule: MoleculeOptions = Field(default_factory=MoleculeOptions)
    image: ImageOptions = Field(default_factory=ImageOptions)
    volume: VolumeOptions = Field(default_factory=VolumeOptions)
    cpg: CpgOptions = Field(default_factory=CpgOptions)
    inputs: dict[str, InputSpec] = Field(
        default_factory=dict,
        description="several named inputs per example ({name: {type, path}}), split together by example id; "
        "empty: the data type's own input(s)",
    )

    @field_validator("split_sizes")
    @classmethod
    def _sizes(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(s < 0 for s in v):
            raise ValueError(f"split sizes must be >= 0, got {list(v)}")
        if abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"split sizes must sum to 1 (train val test), got {list(v)} = {sum(v):g}")
        if v[0] <= 0:
            raise ValueError("the training split must not be empty")
        return v

    @field_validator("cv")
    @classmethod
    def _cv(cls, v: int | None) -> int | None:
        if v is not None and v < 2:
            raise ValueError(f"cross-validation needs at least 2 folds, got {v}")
        return v

    @model_validator(mode="after")
    def _bags(self) -> DataConfig:
        if self.cv is not None and self.cv_column is not None:
            raise ValueError("give either --cv K or --cv-column, not both")
        if self.bag_column is not None and self.type == "tabular":  # rows are instances of bags
            object.__setattr__(self, "type", "bags")
            self.bags.instances = "tabular"
        return self


class ModelConfig(BaseModel):
    """Architecture name plus that architecture's own typed parameters.

    The parameters are validated against the registered model's ``Params`` class, so
    ``model.hidden_sizes`` is checked for ``mlp`` and rejected (with a suggestion) for a model
    that has no such parameter. ``name: null`` picks the data type's default model: ``auto`` (a small
    portfolio of candidate networks chosen on validation) for data types that declare one, else one
    architecture. ``name: auto`` trains the data type's candidates within ``train.time_budget``.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=False)

    name: str | None = None

    def params(self) -> dict[str, Any]:
        """The architecture parameters (everything but ``name``)."""
        return dict(self.model_extra or {})


#: ``model.name`` of the portfolio of candidate networks chosen on validation (:mod:`biodl.experiment.portfolio`).
AUTO = "auto"

#: Default ``train.time_budget`` (CPU seconds for all ``model.name: auto`` candidates): a molecule set of
#: 1,000-8,000 molecules then finishes in under 10 minutes on 2 idle cores (docs/defaults.md).
DEFAULT_TIME_BUDGET = 300.0


class TrainConfig(_Section):
    """Optimisation (review Table 2 defaults)."""

    optimizer: Literal["adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "lbfgs"] = Field(
        default="adam",
        description="lbfgs: L-BFGS with a strong-Wolfe line search, up to 20 iterations per batch, for small "
        "tables with batch_size covering the training rows (weight_decay becomes an explicit L2 term)",
    )
    lr: float | None = Field(default=None, description="null = the optimiser's default")
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0, description="SGD momentum")
    nesterov: bool = Field(default=False, description="SGD: Nesterov momentum")
    weight_decay: float = Field(default=0.0, ge=0.0, description="L2 penalty")
    l1: float = Field(default=0.0, ge=0.0, description="L1 penalty on weights")
    batch_size: int = Field(
        default=128,
        ge=1,
        description="samples per optimisation step: rows, sequences, molecules or images; for segmentation random "
        f"data.image.tile_size crops (default {SEGMENTATION_BATCH_SIZE} when not set; an epoch is crops_per_image crops "
        "of every training image × the augment_strategy copies)",
    )
    max_epochs: int = Field(default=100, ge=1)
    lr_schedule: Literal["none", "plateau", "exponential", "cosine"] = Field(
        default="plateau",
        description="plateau: x lr_factor when the validation loss stalls; exponential: x lr_gamma per epoch; cosine: "
        "cosine decay per epoch from lr to lr x lr_min_factor at max_epochs",
    )
    lr_factor: float = Field(default=0.5, gt=0.0, lt=1.0, description="plateau: factor applied to the learning rate")
    lr_patience: int = Field(default=3, ge=0, description="plateau: epochs without improvement before the decay")
    lr_gamma: float = Field(default=0.95, gt=0.0, le=1.0, description="exponential: learning-rate factor per epoch")
    lr_min_factor: float = Field(default=0.01, ge=0.0, le=1.0, description="cosine: final learning rate as a fraction of lr")
    early_stopping: bool = Field(default=True, description="stop when the monitored loss stops improving; best weights restored")
    patience: int = Field(default=10, ge=1, description="early stopping: epochs without improvement")
    min_delta: float = Field(default=0.0, ge=0.0, description="early stopping: smallest improvement that counts")
    select_by: Literal["val", "cv", "auto"] = Field(
        default="val",
        description="how the epoch count (and evaluate.select_threshold's threshold) are chosen: val = early stopping on "
        "the validation rows; cv = select_folds-fold cross-validation over the training + validation rows (pooled "
        "out-of-fold predictions), then one model trained on all of them for the chosen epochs; auto = cv for at most "
        "64 such rows (images), else val",
    )
    select_folds: int = Field(default=4, ge=2, le=20, description="select_by cv: folds of the cross-validation")
    gradient_clip: float | None = Field(default=None, gt=0.0, description="clip the gradient norm to this value (null: off)")
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = Field(default=1, ge=1)
    seed: int = 0
    ensemble_size: int = Field(default=1, ge=1, le=100, description="independently trained members (seed, seed+1, ...), averaged")
    time_budget: float | None = Field(
        default=DEFAULT_TIME_BUDGET,
        gt=0,
        description="model.name: auto: seconds for training all candidates; a candidate still training when it is spent "
        "stops after its current epoch, later ones are skipped (both recorded; null: no limit)",
    )
    time_budget_clock: Literal["cpu", "wall"] = Field(
        default="cpu",
        description="what train.time_budget counts: cpu = CPU seconds this process used per PyTorch thread (about "
        "elapsed time on an idle machine of any size; a busy machine does not cut the candidates short; at most 5x "
        "the budget in elapsed time), wall = elapsed seconds",
    )
    max_time: float | None = Field(
        default=None,
        gt=0,
        description="seconds of training after which the run stops at the end of the current epoch (the best epoch's "
        "weights are kept, as with early stopping; null: no limit)",
    )
    loss: Literal["mse", "huber"] = Field(
        default="mse", description="regression loss on the standardised targets: mse, or huber (robust to heavy tails)"
    )
    huber_delta: float = Field(default=1.0, gt=0.0, description="huber: where the loss turns linear (standardised units)")
    label_smoothing: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="classification (single-label and per-position): label smoothing of the training cross-entropy "
        "(0: none); the validation loss that early stopping monitors stays the plain cross-entropy",
    )
    pretrain: Literal["none", "autoencoder"] = Field(
        default="none",
        description="autoencoder: pre-train the dense layers layer by layer as denoising auto-encoders on the training inputs",
    )
    pretrain_epochs: int = Field(default=10, ge=1, le=10_000, description="pre-training epochs per layer")
    pretrain_noise: Literal["none", "gaussian", "masking"] = Field(
        default="masking", description="corruption of the pre-training inputs (denoising auto-encoders)"
    )
    pretrain_noise_level: float = Field(default=0.2, ge=0.0, description="masking: drop probability; gaussian: std")
    pretrain_lr: float = Field(default=1e-3, gt=0.0, description="Adam learning rate of the pre-training")
    num_workers: int = Field(default=0, ge=0)
    threads: int | None = Field(
        default=None, ge=1, description="CPU threads of PyTorch during the run (null: PyTorch's default, one per core)"
    )
    init_from: str | None = Field(
        default=None,
        description="fine-tune: start from the weights of a model (zoo:NAME[@VERSION], hf://OWNER/REPO, http(s)://..., "
        "a bundle or a run directory); tensors whose names and shapes match are loaded, a head whose labels differ is "
        "re-initialised, and the parent is recorded in the model card",
    )
    freeze_layers: int = Field(
        default=0, ge=0, description="with init_from: freeze the first N parameterised layers (0: fine-tune everything)"
    )
    checkpoint_every_n_steps: int | None = Field(
        default=None, ge=1, description="also checkpoint every N optimiser steps (null: at epoch ends only)"
    )
    batches_per_step: int | None = Field(
        default=None,
        ge=1,
        description="mini-batches of in-memory data fetched and stepped through per Lightning step (null: up to 8, "
        "by input size; 1: one per step, e.g. for callbacks that act per batch). Training is the same either way",
    )
    progress_bar: bool = Field(default=True, description="show a progress bar while training")
    deterministic: bool = Field(default=False, description="deterministic algorithms only (slower, bit-reproducible)")
    logger: Literal["tensorboard", "csv", "mlflow", "wandb"] = Field(
        default="tensorboard",
        description="experiment tracker besides logs/metrics.csv (always written): tensorboard (logs/tensorboard), csv "
        "(nothing more), mlflow (params, per-epoch and final metrics, bundle and report as artifacts), wandb",
    )
    tracking_uri: str | None = Field(
        default=None, description="mlflow: tracking URI (null: MLFLOW_TRACKING_URI, else a file store RUN/mlruns)"
    )
    tracking_experiment: str | None = Field(default=None, description="mlflow experiment / wandb project (null: biodl)")
    tracking_run_name: str | None = Field(default=None, description="name of the tracked run (null: the run directory's name)")
    wandb_mode: Literal["offline", "online"] | None = Field(
        default=None, description="wandb: offline (RUN/wandb, sync later) or online (null: WANDB_MODE, else offline)"
    )

    @field_validator("lr")
    @classmethod
    def _lr(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError(f"learning rate must be > 0, got {v}")
        return v

    def resolved_lr(self) -> float:
        """The learning rate actually used (``lr`` or the optimiser default)."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


class EvaluateConfig(_Section):
    """What is measured and reported."""

    metrics: list[str] | None = Field(default=None, description="metrics to compute (null: all that fit the task)")
    baselines: list[str] = Field(
        default_factory=lambda: ["linear", "random_forest"], description="classical baselines fitted on the same split"
    )
    report: bool = Field(default=True, description="write report.html")
    plots: bool = Field(default=True, description="write figures (learning curves, ROC/PR, confusion matrix ...)")
    select_threshold: str | None = Field(
        default=None,
        description="binary segmentation: choose the foreground probability threshold (0.2-0.8) that maximises this "
        "metric (dice, patch_f1, ...) on the validation split; null = 0.5 (model.threshold)",
    )


class CardConfig(_Section):
    """What the model card (``model/README.md``) says beyond what the run measures (all optional)."""

    name: str | None = Field(default=None, description="model name in a zoo (null: the run directory's name)")
    description: str | None = Field(default=None, description="one sentence: what the model predicts")
    license: str | None = Field(default=None, description="licence of the weights (SPDX id, e.g. cc-by-4.0, mit)")
    datasets: list[str] = Field(default_factory=list, description="names of the training data sets")
    data_license: str | None = Field(default=None, description="licence / terms of the training data")
    tags: list[str] = Field(default_factory=list, description="extra tags of the card's front matter")
    intended_use: str | None = Field(default=None, description="what the model is for (null: a sentence from the task)")
    limitations: list[str] = Field(default_factory=list, description="known limitations, one per item")
    citation: str | None = Field(default=None, description="how to cite the data / method")
    validation_rows: bool = Field(
        default=False,
        description="biodl zoo push/build: ship the validation split's inputs with the model (only when the data's "
        "licence allows redistribution), so anyone can check the card's validation metric",
    )


class ExperimentConfig(_Section):
    """A whole experiment."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    card: CardConfig = Field(default_factory=CardConfig, description="model card texts (model/README.md)")

    @model_validator(mode="after")
    def _resolve_model(self) -> ExperimentConfig:
        # model defaults, data type / task / metric checks: biodl.wiring.resolve_experiment (registries live above)
        hook("resolve_experiment")(self)
        return self

    def _apply_model_defaults(self, name: str, defaults: Mapping[str, object]) -> None:
        """Set the model's recommended settings on every key the user left at its default."""
        for key, value in defaults.items():
            *path, field = key.split(".")
            section: BaseModel = self
            for part in path:
                section = getattr(section, part)
            if field in section.model_fields_set:
                continue
            try:
                setattr(section, field, value)
            except ValidationError as exc:  # a bad recommendation is a bug of the model class
                raise ConfigError(f"model '{name}' recommends an invalid {key}: {exc}") from None

    @model_validator(mode="after")
    def _check_tune_space(self) -> ExperimentConfig:
        hook("check_tune_space")(self)  # biodl.tune.space.check_space
        return self

    # ------------------------------------------------------------------ helpers
    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "config") -> ExperimentConfig:
        """Validate a nested mapping, raising :class:`ConfigError` with readable messages."""
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
        try:
            return cls.model_validate(dict(raw))
        except ValidationError as exc:
            raise ConfigError(f"{source}: " + _format_errors(exc, prefix="", schema=cls)) from None
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
        """Load a YAML file, then apply ``key=value`` overrides."""
        raw = load_yaml(path)
        apply_overrides(raw, overrides)
        return cls.from_dict(raw, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved configuration as plain data."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The fully resolved configuration as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


#: Config keys holding file paths: relative ones in a YAML file are taken from the file's folder.
PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("data", "path"),
    ("data", "sequence", "genome"),
    ("data", "sequence", "label_table"),
    ("data", "image", "mask_dir"),
    ("data", "feature_columns"),  # @FILE lists
    ("data", "target_columns"),
)


def _resolve_path(text: str, base: Path, key: str) -> str:
    at = text.startswith("@")
    body = text[1:] if at else text
    if key in ("data.feature_columns", "data.target_columns") and not at:
        return text  # column names, not paths
    if not body or (body == "others" and at) or Path(body).is_absolute() or "://" in body:
        return text
    here = base / body
    if not here.exists() and Path(body).exists():
        # written relative to the working directory (the behaviour before paths were taken from the config's folder)
        print(f"note: {key}: {body!r} is not in the config's folder {base}; using ./{body} from the working directory")
        return text
    return ("@" if at else "") + os.path.normpath(here)


def resolve_config_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make the relative paths of :data:`PATH_KEYS` in ``raw`` relative to ``base`` (in place)."""
    for parts in PATH_KEYS:
        node: Any = raw
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or node.get(parts[-1]) is None:
            continue
        key, value = ".".join(parts), node[parts[-1]]
        if isinstance(value, str):
            node[parts[-1]] = _resolve_path(value, base, key)
        elif isinstance(value, list):
            node[parts[-1]] = [_resolve_path(v, base, key) if isinstance(v, str) else v for v in value]
    return raw


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (safe loader: no object construction).

    Relative file paths in the ``data`` section (:data:`PATH_KEYS`) are taken from the YAML
    file's folder, as with ``--config`` they are expected to be; a path that exists only
    relative to the working directory is still found there, with a note.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping with sections data/model/train/evaluate")
    return resolve_config_paths(data, p.parent)


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings in place; values are parsed as YAML scalars/lists."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, _, text = item.partition("=")
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        set_nested(raw, parts, value)
    return raw


def set_nested(raw: dict[str, Any], parts: Sequence[str], value: Any) -> None:
    """Set ``raw[parts[0]][parts[1]]... = value``, creating sections as needed."""
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set '{'.'.join(parts)}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def _fields_at(schema: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Valid keys of the section at ``loc`` (best effort, for suggestions)."""
    cls: Any = schema
    for part in loc:
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        cls = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if cls is None:
            return []
    if cls is ModelConfig:
        return ["name"]
    return list(getattr(cls, "model_fields", {}))


def _format_errors(exc: ValidationError, *, prefix: str, schema: type[BaseModel]) -> str:
    msgs: list[str] = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(([prefix] if prefix else []) + loc)
        if err["type"] == "extra_forbidden":
            valid = _fields_at(schema, loc[:-1])
            close = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.5)
            hint = f" (did you mean '{'.'.join(([prefix] if prefix else []) + loc[:-1] + [close[0]])}'?)" if close else ""
            msgs.append(f"unknown key '{key}'{hint}")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            shown = f" (got {err['input']!r})" if err["type"] != "value_error" and "input" in err else ""
            msgs.append(f"{key}: {msg}{shown}" if key else msg)
    return "; ".join(msgs)
