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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from biodl.errors import ConfigError
from biodl.tune.spec import TuneConfig

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
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NormalizeConfig(_Section):
    """Normalisation of numeric features, fitted on the training split only."""

    log1p: bool = False
    center: bool = True
    scale: bool = True
    whiten: Literal["none", "pca", "zca"] = "none"


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
    align: Literal["center", "left"] = "center"
    empty: Literal["error", "drop"] = Field(default="error", description="empty records: error or drop (counted)")
    duplicate_ids: Literal["error", "rename"] = "error"
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
    out_of_bounds: Literal["error", "drop", "pad"] = "error"
    unknown_contigs: Literal["error", "drop"] = "error"
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
        description="featurisers, concatenated (morgan_counts, morgan_bits, rdkit2d, maccs, graph); null = the model's",
    )
    radius: int = Field(default=2, ge=0, le=6, description="Morgan radius (2 = ECFP4)")
    n_bits: int = Field(default=2048, ge=8, description="Morgan fingerprint size")
    use_chirality: bool = False
    fragments: Literal["largest", "keep", "error"] = Field(
        default="largest", description="multi-fragment SMILES (salts, mixtures): the largest organic fragment, all, or error"
    )
    skip_invalid: bool = Field(default=False, description="drop unparseable/empty molecules (counted, written out), not fail")
    max_atoms: int | None = Field(default=None, ge=1, description="graph featuriser: heavy-atom capacity (null = from the data)")


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


class DataConfig(_Section):
    """Where the data come from, which columns mean what, and how to split them."""

    type: str = Field(default="tabular", description="registered data type: tabular, sequence, ...")
    path: list[str] = Field(default_factory=list)
    task: Task | None = None
    target_columns: list[str] = Field(default_factory=list)
    feature_columns: list[str] | None = None
    id_column: str | None = None
    group_column: str | None = None
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
    hdf5_features: str = "X"
    h5ad_layer: str | None = None
    split: Literal["auto", "random", "stratified", "group", "chromosome", "scaffold", "ordered", "predefined"] = "auto"
    split_sizes: tuple[float, float, float] = (0.6, 0.1, 0.3)
    split_seed: int | None = Field(default=None, description="seed of the train/val/test split (null: train.seed)")
    cv: int | None = None
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    test_chroms: list[str] = Field(default_factory=list, description="chromosome split: test chromosomes")
    val_chroms: list[str] = Field(default_factory=list, description="chromosome split: validation chromosomes")
    sequence: SequenceOptions = Field(default_factory=SequenceOptions)
    molecule: MoleculeOptions = Field(default_factory=MoleculeOptions)
    image: ImageOptions = Field(default_factory=ImageOptions)

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


class ModelConfig(BaseModel):
    """Architecture name plus that architecture's own typed parameters.

    The parameters are validated against the registered model's ``Params`` class, so
    ``model.hidden_sizes`` is checked for ``mlp`` and rejected (with a suggestion) for a model
    that has no such parameter. ``name: null`` picks the data type's default model.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=False)

    name: str | None = None

    def params(self) -> dict[str, Any]:
        """The architecture parameters (everything but ``name``)."""
        return dict(self.model_extra or {})


class TrainConfig(_Section):
    """Optimisation (review Table 2 defaults)."""

    optimizer: Literal["adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta"] = "adam"
    lr: float | None = Field(default=None, description="null = the optimiser's default")
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
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
    lr_schedule: Literal["none", "plateau", "exponential"] = "plateau"
    lr_factor: float = Field(default=0.5, gt=0.0, lt=1.0)
    lr_patience: int = Field(default=3, ge=0)
    lr_gamma: float = Field(default=0.95, gt=0.0, le=1.0)
    early_stopping: bool = True
    patience: int = Field(default=10, ge=1)
    min_delta: float = Field(default=0.0, ge=0.0)
    gradient_clip: float | None = Field(default=None, gt=0.0)
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = Field(default=1, ge=1)
    seed: int = 0
    ensemble_size: int = Field(default=1, ge=1, le=100, description="independently trained members (seed, seed+1, ...), averaged")
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
    checkpoint_every_n_steps: int | None = Field(default=None, ge=1)
    batches_per_step: int | None = Field(
        default=None,
        ge=1,
        description="mini-batches of in-memory data fetched and stepped through per Lightning step (null: up to 8, "
        "by input size; 1: one per step, e.g. for callbacks that act per batch). Training is the same either way",
    )
    progress_bar: bool = True
    deterministic: bool = False

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

    metrics: list[str] | None = None
    baselines: list[str] = Field(default_factory=lambda: ["linear", "random_forest"])
    report: bool = True
    plots: bool = True
    select_threshold: str | None = Field(
        default=None,
        description="binary segmentation: choose the foreground probability threshold (0.2-0.8) that maximises this "
        "metric (dice, patch_f1, ...) on the validation split; null = 0.5 (model.threshold)",
    )


class ExperimentConfig(_Section):
    """A whole experiment."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)

    @model_validator(mode="after")
    def _resolve_model(self) -> ExperimentConfig:
        from biodl.data import DATA_TYPES
        from biodl.models import MODELS, default_model_name

        DATA_TYPES[self.data.type]
        if self.data.type == "image" and self.data.task is None and self.data.image.mask_dir:
            self.data.task = "segmentation"
        per_position = self.data.per_position
        name = self.model.name or default_model_name(self.data.type, "positions" if per_position else self.data.task)
        spec = MODELS[name]
        self._apply_model_defaults(name, spec.config_defaults)
        if per_position:
            _check_per_position(self, name, spec, MODELS)
        elif self.model.params().get("per_position"):
            raise ConfigError("model.per_position: per-position outputs need per-position labels (--per-position)")
        if self.data.task == "segmentation" and "batch_size" not in self.train.model_fields_set:
            self.train.batch_size = SEGMENTATION_BATCH_SIZE  # counts random crops, not images
        if self.data.type not in spec.data_types:
            raise ConfigError(
                f"model '{name}' does not take data type '{self.data.type}' (it takes: {', '.join(spec.data_types)})"
            )
        tasks: tuple[str, ...] | None = getattr(spec, "tasks", None)
        if tasks and self.data.task is not None and self.data.task not in tasks:
            raise ConfigError(f"model '{name}' does not do {self.data.task} (it does: {', '.join(tasks)})")
        if self.train.pretrain != "none" and not callable(getattr(spec, "dense_blocks", None)):
            able = [n for n in MODELS.names() if callable(getattr(MODELS[n], "dense_blocks", None))]
            raise ConfigError(
                f"train.pretrain={self.train.pretrain}: model '{name}' has no dense layers to pre-train "
                f"(models that have: {', '.join(able)})"
            )
        if self.train.ensemble_size > 1 and getattr(spec, "two_step", False):
            raise ConfigError(
                f"model '{name}' trains in two steps (label auto-encoder, then a network); train.ensemble_size must be 1"
            )
        try:
            params = spec.Params.model_validate(self.model.params())
        except ValidationError as exc:
            raise ValueError(_format_errors(exc, prefix="model", schema=spec.Params)) from None
        object.__setattr__(self, "model", ModelConfig(name=name, **params.model_dump(mode="json")))
        if self.data.type == "molecule" and not self.data.molecule.featurizer:
            from biodl.data.molecule.featurizers import default_featurizer

            self.data.molecule.featurizer = default_featurizer(spec)
        if self.data.task == "reconstruction" and "baselines" not in self.evaluate.model_fields_set:
            self.evaluate.baselines = []  # per-feature baselines are pointless; the run reports a PCA reference
        from biodl.metrics.compute import check_task_metrics

        check_task_metrics(self.evaluate.metrics, self.data.task)
        if self.evaluate.select_threshold is not None:
            if self.data.task != "segmentation":
                raise ConfigError(
                    f"evaluate.select_threshold applies to binary segmentation, not {self.data.task or 'this task'}"
                )
            check_task_metrics([self.evaluate.select_threshold], "segmentation")
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
        from biodl.tune.space import check_space

        check_space(self)
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


def _check_per_position(cfg: ExperimentConfig, name: str, spec: Any, models: Any) -> None:
    """``data.per_position``: a sequence classification task and a model with per-position outputs.

    The model's ``positions_defaults`` (settings for per-position tasks) apply to keys the user left
    unset, and its ``per_position`` parameter is switched on.
    """
    if cfg.data.type != "sequence":
        raise ConfigError(f"data.per_position is for sequence data (--data-type sequence), not {cfg.data.type!r}")
    if cfg.data.task not in (None, "classification"):
        raise ConfigError(f"data.per_position labels each position with a class; task {cfg.data.task!r} is not supported")
    if "per_position" not in spec.Params.model_fields:
        able = [n for n in models.names() if "per_position" in models[n].Params.model_fields]
        raise ConfigError(f"model '{name}' has no per-position outputs (models that have: {', '.join(able)})")
    cfg.data.task = "classification"
    cfg._apply_model_defaults(name, getattr(spec, "positions_defaults", {}))
    params = cfg.model.params()
    if params.get("per_position") is False:
        raise ConfigError("data.per_position needs model.per_position true")
    cfg.model.__pydantic_extra__ = {**params, "per_position": True}


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (safe loader: no object construction)."""
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
    return data


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
