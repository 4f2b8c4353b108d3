"""The ``data`` section: inputs, columns, splits, preprocessing and the options of each data type."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from biodl.config.base import _Section
from biodl.config.modalities import BagOptions, CpgOptions, ImageOptions, MoleculeOptions, SequenceOptions, VolumeOptions

Task = Literal["classification", "regression", "multilabel", "reconstruction", "segmentation"]


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
    position_feature_columns: list[str] = Field(
        default_factory=list,
        description="per_position: numeric per-position input tracks (e.g. profiles / PSSMs) added to the one-hot "
        "residues as input channels; a cell holds one number per position ('0.1,0.5,...', one channel) or one group "
        "of K numbers per position separated by ';' ('0.1,0.2;0.3,0.4;...', K channels); standardised per channel on "
        "the training positions; never a target",
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
