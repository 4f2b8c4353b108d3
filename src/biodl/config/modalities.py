"""Options of each data type: ``data.sequence``, ``molecule``, ``image``, ``bags``, ``volume`` and ``cpg``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from biodl.config.base import _Section


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
        description="featurisers, concatenated (morgan_counts, morgan_bits, rdkit2d, maccs, tanimoto, graph; or chemception "
        "images alone); null = the model's",
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
    max_instances: int | None = Field(default=None, ge=1, description="larger bags are an error naming the bag (null = no limit)")
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
