"""The ``sequence`` data type: DNA/RNA/protein sequences → one-hot ``(N, A, L)`` uint8.

Inputs (``--data-type sequence``):

* FASTA files, one per class (``--data-path pos.fa neg.fa``; the class is the file name, or
  ``CLASS=PATH``), or one FASTA plus a label table joined on record ids
  (``data.sequence.label_table``);
* sequence tables (CSV/TSV/whitespace, optionally gzipped, any extension) with a sequence
  column (``--sequence-column``) and target columns;
* interval files (BED/narrowPeak, one per task) plus a genome FASTA (``--genome``);
* positives-only inputs with ``--negatives dinucleotide-shuffle`` (DeepBind's protocol).

Raw arrays are alphabet codes ``(N, L)`` uint8 (with per-position feature tracks ``(N, 1 + K, L)``
float32, :mod:`biodl.data.position_features`); :meth:`SequenceModality.transform` one-hot encodes them.
Problems in the input are errors naming the record, or counted in ``LoadedData.summary`` when the
user chose to pad, crop, mask, drop or rename.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from biodl.config import DataConfig, SequenceOptions
from biodl.data.base import DATA_TYPES, BatchAugment, LoadedData, Modality
from biodl.data.columns import not_found
from biodl.data.position_features import PositionTracks
from biodl.data.positions import PositionsSamples, encode_position_targets
from biodl.data.sequence.alphabet import (
    BLANK,
    Alphabet,
    get_alphabet,
    one_hot_codes,
)
from biodl.data.sequence.augment import SequenceAugment
from biodl.data.sequence.cleaning import check_ids, drop_empty, fix_lengths
from biodl.data.sequence.encoding import encode_records, parse_sequence
from biodl.data.sequence.intervals import IntervalOptions, Windows, load_windows
from biodl.data.sequence.kmers import kmer_counts
from biodl.data.sequence.negatives import shuffled_negatives
from biodl.data.sequence.records import (
    Records,
    class_of,
    concat_records,
    detect_format,
    join_label_table,
    read_fasta_records,
    read_sequence_table,
    split_label,
    table_records,
)
from biodl.data.sequence.shuffle import dinucleotide_shuffle
from biodl.data.sequence.tasks import infer_task
from biodl.data.split_columns import validation_parts
from biodl.data.targets import Targets, encode_targets
from biodl.errors import ConfigError, DataError


@DATA_TYPES.register("sequence")
class SequenceModality(Modality):
    """Biological sequences, one-hot encoded.

    Parameters
    ----------
    cfg
        The data section; ``cfg.sequence`` holds the sequence options.
    """

    name: ClassVar[str] = "sequence"
    input_hint: ClassVar[str] = "a nucleotide or protein sequence string"

    def __init__(self, cfg: DataConfig) -> None:
        super().__init__(cfg)
        self.alphabet: Alphabet = get_alphabet(cfg.sequence.alphabet)
        self.length: int | None = cfg.sequence.length
        self.format: str | None = None
        self.sequence_column: str | None = None
        self.target_columns: list[str] = list(cfg.target_columns)
        self.tasks: list[str] | None = None
        # interval windows carry `shift` bp of real sequence on each side (random shifts slice it)
        self.flank = 0
        self._trained_flank = False
        self.tracks = PositionTracks(cfg.position_feature_columns)  # per-position feature columns (profiles)
        if self.tracks and not cfg.per_position:
            raise ConfigError(
                "data.position_feature_columns: per-position feature tracks need per-position labels (--per-position)"
            )
        if cfg.sequence.rc_augment and not self.alphabet.complementable:
            raise ConfigError(f"data.sequence.rc_augment: {self.alphabet.name} sequences have no reverse complement")

    @property
    def opts(self) -> SequenceOptions:
        """The ``data.sequence`` options in force."""
        return self.cfg.sequence

    # ------------------------------------------------------------------ reading
    def load(self, paths: list[str], *, require_targets: bool = True, classes: list[str] | None = None) -> LoadedData:
        """Read sequence files into codes ``(N, L)`` uint8 and encoded targets.

        Parameters
        ----------
        paths
            Input files (see the module docstring); FASTA paths may be ``CLASS=PATH``.
        require_targets
            Training/evaluation (labels needed, negatives generated) or prediction.
        classes
            A trained model's class order.
        """
        if not paths:
            raise DataError("no data file given (--data-path)")
        if self.opts.alphabet != self.alphabet.name:
            raise DataError(
                f"the model was trained on {self.alphabet.name} sequences; data.sequence.alphabet={self.opts.alphabet!r}"
            )
        specs = [split_label(p) for p in paths]
        fmt = detect_format([p for _, p in specs], self.opts.format)
        if fmt != "fasta" and any(label for label, _ in specs):
            raise DataError("CLASS=PATH labels are for FASTA files (one file per class)")
        self.format = fmt
        summary: dict[str, Any] = {
            "files": [p for _, p in specs],
            "format": fmt,
            "alphabet": f"{self.alphabet.name} ({self.alphabet.symbols})",
        }
        if fmt == "intervals":
            return self._load_intervals([p for _, p in specs], require_targets, summary)
        if self.cfg.per_position and fmt != "table":
            raise DataError(f"{specs[0][1]}: per-position labels (--per-position) are read from sequence tables, not {fmt} files")
        records, label_cols, task = self._read_records(specs, require_targets, classes, summary)
        records = drop_empty(records, self.opts, summary)
        records = check_ids(records, self.opts, summary)
        codes = encode_records(records, self.alphabet, self.opts, summary)
        if self.cfg.per_position:
            return self._load_positions(records, codes, label_cols, classes, summary, self._parts(records, summary))
        sources = None
        if label_cols and require_targets:
            records, codes, sources = shuffled_negatives(records, codes, label_cols, task, self.opts, summary)
        parts = self._parts(records, summary)  # shuffled negatives carry their source's columns: same split
        X, self.length = fix_lengths(codes, records, self.opts, self.length, summary)
        targets = None
        if label_cols:
            targets = self._targets(records.frame, label_cols, task, classes, summary)
        groups = self._groups(records)
        summary["sequences"] = len(X)
        summary["sequence length"] = int(X.shape[1])
        if targets is not None and targets.classes is not None:
            codes_y = targets.y if targets.kind == "multiclass" else np.nan_to_num(targets.y[:, 0], nan=-1)
            summary["class counts"] = {c: int(np.count_nonzero(codes_y == i)) for i, c in enumerate(targets.classes)}
        return LoadedData(X, targets, np.asarray(records.ids, dtype=object), groups, summary, parts, sources=sources)

    def _parts(self, records: Records, summary: dict[str, Any]) -> np.ndarray | None:
        """``--val-column``: ``"val"``/``"train"`` per record, or ``None`` without the column."""
        col = self.cfg.val_column
        if not col or col not in records.frame.columns:
            return None
        return validation_parts(records.frame, col, source=", ".join(summary["files"]))

    def _load_positions(
        self,
        records: Records,
        codes: list[np.ndarray],
        label_cols: list[str],
        classes: list[str] | None,
        summary: dict[str, Any],
        parts: np.ndarray | None,
    ) -> LoadedData:
        """Per-position labels: codes padded (after each sequence's end) to the longest, never cropped."""
        if len(label_cols) > 1:
            raise DataError(f"per-position labelling takes one label column, got {label_cols}")
        lengths = np.fromiter((len(c) for c in codes), dtype=np.int64, count=len(codes))
        width = int(lengths.max()) if len(lengths) else 1
        if self.opts.length is not None and width > self.opts.length:
            i = int(np.argmax(lengths))
            raise DataError(
                f"{records.where[i]}: {int(lengths[i])} positions, longer than data.sequence.length={self.opts.length}; "
                "per-position labelling never crops: raise the length or leave it unset"
            )
        width = max(width, self.opts.length or 0)
        X = np.full((len(codes), width), BLANK, dtype=np.uint8)
        for i, c in enumerate(codes):
            X[i, : len(c)] = c
        if self.tracks:
            source = ", ".join(summary["files"])
            X = self.tracks.join(X, records.frame, lengths, where=records.where, source=source, summary=summary)
        self.length = width
        targets = None
        if label_cols:
            targets, facts = encode_position_targets(
                records.frame, label_cols[0], lengths, where=records.where, mask_column=self.cfg.mask_column,
                classes=classes or self.cfg.classes, width=width,
            )  # fmt: skip
            summary.update(facts)
            counted = targets.y[targets.y >= 0]
            summary["class counts (positions)"] = {
                c: int(np.count_nonzero(counted == k)) for k, c in enumerate(targets.classes or [])
            }
        summary["sequences"] = len(X)
        summary["sequence lengths"] = f"{int(lengths.min())}-{int(lengths.max())} (padded after the end to {width})"
        summary["sequence length"] = width
        return LoadedData(X, targets, np.asarray(records.ids, dtype=object), self._groups(records), summary, parts)

    def _read_records(
        self, specs: list[tuple[str | None, str]], require_targets: bool, classes: list[str] | None, summary: dict[str, Any]
    ) -> tuple[Records, list[str], str | None]:
        cfg, opts = self.cfg, self.opts
        if self.format == "fasta":
            records = read_fasta_records(specs, classes)
            if opts.label_table:
                records = join_label_table(records, opts.label_table, cfg.id_column, summary)
                records.frame = records.frame.drop(columns=["class"])
                cols = self._target_columns(records.frame, require_targets, opts.label_table)
                return records, cols, cfg.task
            labels = [label or class_of(p) for label, p in specs]
            positives_model = self.target_columns == ["bound"] or (not self.target_columns and classes == ["0", "1"])
            if positives_model or (len(set(labels)) == 1 and classes is None):
                # positives-only input (DeepBind protocol), or a model trained on such input
                if not require_targets:
                    return records, [], None
                if classes is None and opts.negatives == "none":
                    raise DataError(
                        f"{specs[0][1]}: one FASTA file is one class; give one file per class (--data-path pos.fa neg.fa), "
                        "a label table (data.sequence.label_table), or --negatives dinucleotide-shuffle for "
                        "positives-only input"
                    )
                explicit = any(label for label, _ in specs)
                records.frame = pd.DataFrame({"bound": records.frame["class"] if explicit else ["1"] * len(records)})
                self.target_columns = ["bound"]
                return records, ["bound"], "classification"
            if cfg.task not in (None, "classification"):
                raise DataError(f"one FASTA file per class gives a classification task, not {cfg.task!r}")
            self.target_columns = ["class"]
            return records, (["class"] if require_targets else []), "classification"
        parts = []
        offset = 0
        for _, path in specs:
            column = opts.column or self.sequence_column
            frame, seq_col, _ = read_sequence_table(path, self.alphabet, column=column, header=opts.header)
            if self.sequence_column is None or opts.column:
                self.sequence_column = seq_col
            parts.append(table_records(frame, seq_col, path, cfg.id_column, offset))
            offset += len(frame)
        records = concat_records(parts)
        cols = self._target_columns(records.frame, require_targets, specs[0][1])
        return records, cols, cfg.task

    def _target_columns(self, frame: pd.DataFrame, require_targets: bool, source: str) -> list[str]:
        cfg = self.cfg
        wanted = list(cfg.target_columns or self.target_columns)
        if wanted:
            present = all(c in frame.columns for c in wanted)
            if not present and require_targets:
                missing = [c for c in wanted if c not in frame.columns]
                raise not_found(source, "target", missing[0], list(frame.columns))
            return wanted if present else []
        if not require_targets:
            return []
        reserved = {cfg.id_column, cfg.group_column, cfg.val_column, cfg.mask_column, *cfg.position_feature_columns}
        others = [str(c) for c in frame.columns if c not in reserved]
        if len(others) == 1:
            self.target_columns = others
            return others
        raise DataError(f"{source}: which column is the target? give --target-columns (columns: {others[:20]})")

    def _targets(
        self, frame: pd.DataFrame, cols: list[str], task: str | None, classes: list[str] | None, summary: dict[str, Any]
    ) -> Targets:
        task = infer_task(frame, cols, task)
        if self.cfg.task is None:
            summary["task (inferred)"] = task
        try:
            return encode_targets(frame, cols, task, source=", ".join(summary["files"]), classes=classes)
        except DataError as exc:
            if cols == ["class"] and "unknown to the model" in str(exc):
                raise DataError(
                    f"{exc}; the class of a FASTA file is its name: name it explicitly as CLASS=PATH, "
                    f"e.g. --data-path {classes[0] if classes else 'neg'}=test_neg.fa"
                ) from None
            raise

    def _groups(self, records: Records) -> np.ndarray | None:
        cfg = self.cfg
        if cfg.split == "chromosome":
            chrom: list[str | None] = records.chrom
            if cfg.group_column is not None and cfg.group_column in records.frame.columns:
                chrom = list(records.frame[cfg.group_column].astype(str).tolist())
            missing = [i for i, c in enumerate(chrom) if not c] if chrom else [0]
            if missing:
                i = missing[0]
                raise DataError(
                    f"{records.where[i] if records.where else 'input'}: no chromosome for the chromosome split; "
                    "use ids like chr1:100-300, a chrom column (--group-column), or interval files"
                )
            return np.asarray(chrom, dtype=object)
        if cfg.group_column is not None:
            if cfg.group_column not in records.frame.columns:
                raise not_found("input", "group", cfg.group_column, list(records.frame.columns))
            return records.frame[cfg.group_column].astype(str).to_numpy()
        return None

    def _load_intervals(self, paths: list[str], require_targets: bool, summary: dict[str, Any]) -> LoadedData:
        cfg, opts = self.cfg, self.opts
        if cfg.task == "regression":
            raise DataError("interval files give binary labels per task (overlap), not regression")
        iopts = IntervalOptions(
            width=opts.intervals_width,
            label_width=opts.label_width,
            min_overlap=opts.min_overlap,
            negatives=opts.negatives,
            negatives_ratio=opts.resolved_negatives_ratio(),
            flank_distance=opts.flank_distance,
            out_of_bounds=opts.out_of_bounds,
            unknown_contigs=opts.unknown_contigs,
            seed=opts.seed,
            flank=self._interval_flank(),
        )
        win: Windows = load_windows(paths, opts.genome, iopts, labels=require_targets, tasks=self.tasks)
        summary.update(win.summary)
        self.tasks = win.tasks
        self.length = opts.intervals_width
        records = Records(
            list(win.ids),
            [row.tobytes() for row in win.seqs],
            pd.DataFrame(index=range(len(win.ids))),
            [f"window {i}" for i in win.ids],
            True,
            list(win.chrom),
        )
        codes = encode_records(records, self.alphabet, self.opts, summary)
        if require_targets and opts.negatives == "dinucleotide-shuffle":
            assert win.y is not None
            rng = np.random.default_rng(opts.seed)
            k = opts.resolved_negatives_ratio()
            shuffled = [dinucleotide_shuffle(c, rng) for c in codes for _ in range(k)]
            src = np.repeat(np.arange(len(codes)), k)
            y: np.ndarray | None = np.concatenate([win.y, np.zeros((len(src), win.y.shape[1]), np.float32)])
            suffix = ["_shuf"] if k == 1 else [f"_shuf{j + 1}" for j in range(k)]
            ids = list(win.ids) + [f"{win.ids[i]}{suffix[j % k]}" for j, i in enumerate(src)]
            win_src = np.concatenate([win.source, win.source[src]]) if win.source is not None else None
            chrom = list(win.chrom) + [str(win.chrom[i]) for i in src]
            codes = codes + shuffled
            summary[f"negatives (dinucleotide shuffles, seed {opts.seed})"] = len(shuffled)
        else:
            y = win.y
            ids = list(win.ids)
            win_src = win.source
            chrom = list(win.chrom)
        X = np.stack(codes) if codes else np.zeros((0, opts.intervals_width + 2 * self.flank), np.uint8)
        targets = Targets(y.astype(np.float32), "binary", list(win.tasks), None) if y is not None else None
        groups = np.asarray(chrom, dtype=object) if cfg.split == "chromosome" else None
        summary["sequences"] = len(X)
        summary["sequence length"] = int(X.shape[1]) - 2 * self.flank
        sources = win.ids[win_src] if win_src is not None and len(win_src) > len(np.unique(win_src)) else None
        return LoadedData(X, targets, np.asarray(ids, dtype=object), groups, summary, sources=sources)

    def _interval_flank(self) -> int:
        """Flank of interval windows: ``shift`` when training (a trained model keeps its own)."""
        if not self._trained_flank:  # a loaded model keeps the flank it was trained with
            self.flank = self.opts.shift
        return self.flank

    def for_fold(self) -> SequenceModality:
        """A fold's instance keeps the format, columns, tasks, length and flank found when reading."""
        fold = SequenceModality(self.cfg)
        fold.alphabet, fold.length, fold.flank, fold._trained_flank = self.alphabet, self.length, self.flank, self._trained_flank
        fold.format, fold.sequence_column, fold.tasks = self.format, self.sequence_column, self.tasks
        fold.target_columns = list(self.target_columns)
        fold.tracks.channels = self.tracks.channels
        return fold

    def configure_model(self, model: torch.nn.Module) -> None:
        """Sequence models centre-crop inputs that carry the shift flanks."""
        if hasattr(model, "input_flank"):
            setattr(model, "input_flank", self.flank)  # noqa: B010 (any SequenceModel)

    def input_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The model sees the core window; the flanks only feed random shifts (and are cropped)."""
        if self.flank and len(shape) == 2:
            return (shape[0], shape[1] - 2 * self.flank)
        return shape

    def _core(self, X_model: np.ndarray) -> np.ndarray:
        """Model inputs without the shift flanks ``(N, A, L)``."""
        if self.flank and X_model.shape[-1] == (self.length or 0) + 2 * self.flank:
            return X_model[..., self.flank : X_model.shape[-1] - self.flank]
        return X_model

    def parse_inputs(self, inputs: list[Any]) -> np.ndarray:
        """Sequence strings (either case) → codes ``(N, L)``; every string must have the model's length
        (per-position models: any length; shorter strings are padded after their end)."""
        if self.cfg.per_position:
            frame = self._track_records(inputs) if self.tracks else None
            seqs = inputs if frame is None else list(frame[self._track_sequence_key()])
            rows = [parse_sequence(i, seq, None, self.alphabet, self.opts.unknown) for i, seq in enumerate(seqs)]
            out = np.full((len(rows), max((len(r) for r in rows), default=1)), BLANK, dtype=np.uint8)
            for i, row in enumerate(rows):
                out[i, : len(row)] = row
            if frame is None:
                return out
            lengths = np.asarray([len(r) for r in rows], dtype=np.int64)
            return self.tracks.join(out, frame, lengths, where=[f"input {i}" for i in range(len(rows))], source="the request")
        codes = np.empty((len(inputs), self.length or 0), dtype=np.uint8)
        for i, seq in enumerate(inputs):
            row = parse_sequence(i, seq, self.length, self.alphabet, self.opts.unknown)
            if codes.shape[1] == 0:
                codes = np.empty((len(inputs), len(row)), dtype=np.uint8)
            codes[i] = row
        return codes

    def _track_sequence_key(self) -> str:
        return self.sequence_column or self.opts.column or "sequence"

    def _track_records(self, inputs: list[Any]) -> pd.DataFrame:
        """Request records of a model with per-position features: ``{"<sequence column>": ..., "<track>": ...}``."""
        key = self._track_sequence_key()
        for i, rec in enumerate(inputs):
            if not isinstance(rec, dict) or key not in rec:
                raise DataError(
                    f"input {i}: this model reads records with the sequence ({key!r}) and its per-position features "
                    f"{self.tracks.columns}, e.g. {{{key!r}: 'MKV...', {self.tracks.columns[0]!r}: '0.1,0.4,...'}}"
                )
        return pd.DataFrame.from_records(inputs)

    def codes(self, X: np.ndarray) -> np.ndarray:
        """Residue codes ``(N, L)`` of raw inputs (without the per-position feature channels)."""
        return X[:, 0].astype(np.uint8) if X.ndim == 3 else X

    # ------------------------------------------------------------ preprocessing
    def fit(self, X_train: np.ndarray) -> None:
        """Record the input length; per-position feature tracks: fit their standardisation on the training rows."""
        if self.length is None or self.cfg.per_position:
            self.length = int(X_train.shape[-1])
        if self.tracks:
            self.tracks.fit(X_train)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Codes ``(N, L)`` → one-hot ``(N, A, L)`` uint8 (float32 for ``unknown=uniform``); with per-position
        feature tracks, raw ``(N, 1 + K, L)`` → one-hot residues then standardised tracks ``(N, A + K, L)`` float32."""
        codes, tracks = self.tracks.split(X) if self.tracks else (X, None)
        onehot = one_hot_codes(codes, self.alphabet.size, "uniform" if self.opts.unknown == "uniform" else "zero")
        if tracks is None:
            return onehot
        return np.concatenate([onehot.astype(np.float32), tracks], axis=1)

    def baseline_features(self, X_model: np.ndarray) -> np.ndarray:
        """k-mer counts ``(N, A**k)`` (``data.sequence.kmer_k``) for the classical baseline."""
        return kmer_counts(np.ascontiguousarray(self._core(X_model)), self.opts.kmer_k)

    def train_augment(self) -> BatchAugment | None:
        """Random reverse complement (DNA/RNA) and random shift, as configured; per-position data:
        batches of similar lengths (:class:`biodl.data.positions.PositionsSamples`)."""
        if self.cfg.per_position:
            if self.opts.rc_augment or self.opts.shift:
                raise ConfigError("data.sequence.rc_augment/shift do not apply to per-position labels")
            return PositionsSamples()  # type: ignore[return-value]
        rc = self.opts.rc_augment
        if rc is None:
            rc = self.alphabet.name == "dna"
        if not rc and self.opts.shift == 0:
            return None
        if self.flank:  # interval windows: shifts are random slices of the wider window
            return SequenceAugment(rc=bool(rc), flank=self.flank)
        return SequenceAugment(rc=bool(rc), shift=self.opts.shift)

    def columns(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "sequence_column": self.sequence_column,
            "target_columns": self.target_columns,
            "tasks": self.tasks,
        }

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {
            "alphabet": self.alphabet.name,
            "length": self.length,
            "flank": self.flank,
            "format": self.format,
            "sequence_column": self.sequence_column,
            "target_columns": self.target_columns,
            "tasks": self.tasks,
        }
        track_meta, track_arrays = self.tracks.state()
        return {**meta, **track_meta}, track_arrays

    def load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if "alphabet" in meta:
            self.alphabet = get_alphabet(meta["alphabet"])
        self.length = meta.get("length", self.length)
        self.flank = int(meta.get("flank", 0))
        self._trained_flank = True
        self.format = meta.get("format")
        self.sequence_column = meta.get("sequence_column")
        self.target_columns = list(meta.get("target_columns") or [])
        self.tasks = meta.get("tasks")
        self.tracks.load_state(meta, arrays)


def augment_batch(x: torch.Tensor, *, rc: bool, shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Functional form of :class:`SequenceAugment` (for tests and notebooks)."""
    return SequenceAugment(rc=rc, shift=shift)(x, generator=generator)
