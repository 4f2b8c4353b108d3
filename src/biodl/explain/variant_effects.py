"""Variant effect prediction: score the reference and alternative allele of each variant in its genomic window.

For every variant the model's input window (``L`` bases, from a biodl bundle or ``length``) is
centred on the variant's first base: the reference window is the genome there, and the
alternative window is the same left flank, the ALT allele, then the genome after REF. For
indels the windows keep the same length by extending the right flank from the genome
(deletions) or trimming it (insertions), so both windows hold the same left flank and the
model sees equal-length inputs. REF is checked against the genome; mismatches, unknown
contigs, positions past a contig end and symbolic alleles are reported in the ``status``
column and never scored (or raise, with ``on_error="raise"``). Multi-allelic records are split
into one row per ALT allele.

Per task the table holds ``ref_<task>``, ``alt_<task>`` (probabilities for classifiers, values
for regression), ``diff_<task>`` (alt − ref) and ``logodds_diff_<task>`` (log-odds alt − ref,
classifiers only).

>>> result = variant_effects(biodl.load("runs/ctcf"), "hg38.fa", "variants.vcf.gz")
>>> result.table.query("status == 'scored'").sort_values("diff_bound")
>>> result.summary   # {'records': ..., 'scored': ..., 'ref_mismatch': ...}
"""

from __future__ import annotations

import gzip
import io
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import torch

from biodl.data.sequence.genome import Genome
from biodl.errors import ConfigError, DataError
from biodl.explain._common import as_module, model_device, model_length
from biodl.explain.variant_batches import score_windows
from biodl.explain.variant_windows import STATUS_SCORED, BlockReader, assess_variants, variant_windows

if TYPE_CHECKING:
    from biodl.explain._common import ModelLike

__all__ = [
    "BlockReader",
    "Genome",
    "VariantScores",
    "read_variants",
    "stream_variant_effects",
    "variant_effects",
    "variant_windows",
    "write_variant_effects",
]

Activation = Literal["sigmoid", "softmax", "none"]
_STATUS_SCORED = STATUS_SCORED


class VariantScores(NamedTuple):
    """Result of :func:`variant_effects`.

    Attributes
    ----------
    table
        One row per (split) variant: ``chrom, pos, id, ref, alt, type, status`` and per task
        ``ref_<t>, alt_<t>, diff_<t>, logodds_diff_<t>`` (NaN where not scored).
    summary
        Counts: ``records`` (lines read), ``variants`` (after splitting multi-allelic
        records), ``multiallelic_split``, ``scored`` and one count per non-scored status.
    tasks
        The task names used in the column names.
    """

    table: pd.DataFrame
    summary: dict[str, int]
    tasks: list[str]


# ------------------------------------------------------------------------------------------- reading
def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")  # type: ignore[return-value]
    return open(path, encoding="utf-8")  # type: ignore[return-value]


def _read_vcf(path: Path) -> pd.DataFrame:
    return pd.concat(list(_vcf_chunks(path, None)), ignore_index=True)


_VCF_COLUMNS = ["chrom", "pos", "id", "ref", "alt", "record"]


def _vcf_chunks(path: Path, chunk: int | None) -> Iterator[pd.DataFrame]:
    """The VCF's records in tables of ``chunk`` rows (``None``: one table), read line by line."""
    rows: list[tuple[str, int, str, str, str, int]] = []
    any_yielded = False
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.startswith("#") or not line.strip():
                continue
            f = line.rstrip("\n\r").split("\t")
            if len(f) < 5:
                raise DataError(f"{path}: line {lineno}: a VCF record needs CHROM POS ID REF ALT, got {len(f)} field(s)")
            try:
                pos = int(f[1])
            except ValueError:
                raise DataError(f"{path}: line {lineno}: POS {f[1]!r} is not an integer") from None
            rows.append((f[0], pos, f[2], f[3], f[4], lineno))
            if chunk is not None and len(rows) >= chunk:
                yield pd.DataFrame(rows, columns=_VCF_COLUMNS)
                rows, any_yielded = [], True
    if rows or not any_yielded:
        yield pd.DataFrame(rows, columns=_VCF_COLUMNS)


_COLUMN_NAMES = {
    "chrom": ("chrom", "#chrom", "chr", "chromosome", "contig", "seqnames"),
    "pos": ("pos", "position", "start"),
    "ref": ("ref", "reference"),
    "alt": ("alt", "alternative", "alts"),
    "id": ("id", "variant_id", "name", "rsid"),
}


def _from_table(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    lower = {str(c).lower(): c for c in frame.columns}
    out: dict[str, Any] = {}
    for key, names in _COLUMN_NAMES.items():
        col = next((lower[n] for n in names if n in lower), None)
        if col is None and key != "id":
            raise DataError(f"{source}: no {key} column (one of {', '.join(names)}); columns are {list(frame.columns)[:20]}")
        out[key] = frame[col] if col is not None else ["."] * len(frame)
    table = pd.DataFrame(out)
    pos = pd.to_numeric(table["pos"], errors="coerce")
    if pos.isna().any():
        i = int(np.flatnonzero(pos.isna().to_numpy())[0])
        raise DataError(f"{source}: row {i + 1}: position {table['pos'].iloc[i]!r} is not an integer")
    table["pos"] = pos.astype(np.int64)
    table["record"] = np.arange(1, len(table) + 1)
    return table[["chrom", "pos", "id", "ref", "alt", "record"]].astype({"chrom": str, "id": str, "ref": str, "alt": str})


def read_variants(source: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Read variants from a VCF (plain or gzip/bgzip), a CSV/TSV table or a DataFrame.

    Tables need columns ``chrom, pos, ref, alt`` (``id`` optional; 1-based positions, as in
    VCF). Multi-allelic records (``ALT`` = ``A,T``) are split into one row per allele.

    Returns
    -------
    tuple
        The variants (``chrom, pos, id, ref, alt, record``; ``record`` = VCF line or table row)
        and counts ``records``, ``variants``, ``multiallelic_split``.
    """
    if isinstance(source, pd.DataFrame):
        table = _from_table(source, "variants")
    else:
        path = Path(source)
        if not path.is_file():
            raise DataError(f"variant file not found: {path}")
        with _open_text(path) as fh:
            head = fh.read(4096)
        if head.startswith("##fileformat=VCF") or "\n#CHROM" in head or head.startswith("#CHROM") or ".vcf" in path.name.lower():
            table = _read_vcf(path)
        else:
            sep = "\t" if "\t" in head.split("\n", 1)[0] else ","
            try:
                frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
            except (pd.errors.ParserError, ValueError) as exc:
                raise DataError(f"{path}: cannot parse as a variant table: {exc}") from None
            table = _from_table(frame, str(path))
    return _split_alleles(table)


def _is_vcf(path: Path) -> bool:
    with _open_text(path) as fh:
        head = fh.read(4096)
    return head.startswith("##fileformat=VCF") or "\n#CHROM" in head or head.startswith("#CHROM") or ".vcf" in path.name.lower()


def iter_variants(source: str | Path | pd.DataFrame, chunk: int) -> Iterator[tuple[pd.DataFrame, dict[str, int]]]:
    """:func:`read_variants` in pieces of about ``chunk`` records: a VCF is read ``chunk`` lines at a time (flat memory)."""
    if isinstance(source, (str, Path)) and Path(source).is_file() and _is_vcf(Path(source)):
        for part in _vcf_chunks(Path(source), chunk):
            yield _split_alleles(part)
        return
    table, counts = read_variants(source)
    for i in range(0, max(1, len(table)), chunk):
        part = table.iloc[i : i + chunk].reset_index(drop=True)
        yield part, {"records": counts["records"] if i == 0 else 0, "variants": len(part),
                     "multiallelic_split": counts["multiallelic_split"] if i == 0 else 0}  # fmt: skip


def _split_alleles(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per ALT allele (multi-allelic records split) and the counts."""
    n_records = len(table)
    alts = table["alt"].astype(str).str.split(",")
    n_multi = int(sum(len(a) > 1 for a in alts))
    table = table.assign(alt=alts).explode("alt", ignore_index=True)
    table["alt"] = table["alt"].astype(str).str.strip()
    table["ref"] = table["ref"].astype(str).str.strip()
    return table, {"records": n_records, "variants": len(table), "multiallelic_split": n_multi}


# ------------------------------------------------------------------------------------------- scoring
def _model_info(
    model: Any, activation: Activation | None, tasks: Sequence[str] | None
) -> tuple[Activation, list[str] | None, Any]:
    """Activation, task names and target scaler of a bundle (or the given values for a module)."""
    kind = getattr(model, "kind", None) if not isinstance(model, torch.nn.Module) else None
    scaler = getattr(model, "target_scaler", None) if kind is not None else None
    names: list[str] | None = list(tasks) if tasks is not None else None
    if kind is not None:
        act: Activation = {"binary": "sigmoid", "multiclass": "softmax"}.get(kind, "none")  # type: ignore[assignment]
        if names is None:
            classes = getattr(model, "classes", None)
            if kind == "multiclass" and classes:
                names = list(classes)
            elif kind == "binary" and classes and len(model.target_names) == 1:
                names = [str(classes[1])]
            else:
                names = list(model.target_names)
    else:
        act = "sigmoid"
    return (activation or act), names, scaler


def variant_effects(
    model: ModelLike,
    fasta: str | Path | Genome,
    variants: str | Path | pd.DataFrame,
    *,
    length: int | None = None,
    rc_average: bool = False,
    activation: Activation | None = None,
    tasks: Sequence[str] | None = None,
    on_error: Literal["report", "raise"] = "report",
    window_edge: Literal["pad", "skip"] = "pad",
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> VariantScores:
    """Predicted effects of SNVs and indels.

    Parameters
    ----------
    model
        A biodl :class:`~biodl.bundle.Bundle` (its task gives the output activation, task names
        and input length) or any module mapping one-hot DNA ``(N, 4, L)`` to scores ``(N, T)``.
    fasta
        The genome (FASTA path, indexed with pyfaidx, or a :class:`Genome`).
    variants
        VCF (plain or gzipped), CSV/TSV table (``chrom, pos, ref, alt[, id]``) or DataFrame.
    length
        Window length (default: the model's input length).
    rc_average
        Average the outputs of both strands of every window (biodl models trained with
        ``rc_average`` already do this in eval mode).
    activation
        Output activation: ``sigmoid`` (binary/multi-task), ``softmax`` (multi-class) or
        ``none`` (regression); default: from the bundle, ``sigmoid`` for plain modules.
    tasks
        Task names for the column names (default: the bundle's, else ``t0, t1...``).
    on_error
        ``report``: REF ≠ genome, unknown contigs, positions past a contig end and unsupported
        alleles get a ``status`` and are not scored (a warning gives the counts); ``raise``:
        the first one raises :class:`~biodl.errors.DataError`.
    window_edge
        Windows running past a contig end: ``pad`` with ``N`` (status ``scored``, column
        ``clipped``) or ``skip`` (status ``window_past_contig_end``).
    batch_size
        Windows per forward pass.

    Returns
    -------
    VariantScores
        The table, the counts and the task names.
    """
    setup = _setup(model, activation, tasks, length, device)
    whole = fasta if isinstance(fasta, Genome) else Genome(fasta)
    table, summary = read_variants(variants)
    source = f"{variants}: " if isinstance(variants, (str, Path)) else ""
    try:
        out, names, status, clipped = _score_chunk(
            setup, BlockReader(whole), table, rc_average, on_error, window_edge, batch_size, source
        )
    finally:
        if isinstance(fasta, (str, Path)):
            whole.close()
    return VariantScores(out, _summarise(summary, [status], [clipped]), names)


def stream_variant_effects(
    model: ModelLike,
    fasta: str | Path | Genome,
    variants: str | Path | pd.DataFrame,
    output: str | Path,
    *,
    chunk_size: int = 50_000,
    length: int | None = None,
    rc_average: bool = False,
    activation: Activation | None = None,
    tasks: Sequence[str] | None = None,
    on_error: Literal["report", "raise"] = "report",
    window_edge: Literal["pad", "skip"] = "pad",
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> tuple[Path, dict[str, int], list[str]]:
    """:func:`variant_effects` written chunk by chunk to ``output`` (``.parquet``, ``.tsv``/``.txt`` or ``.csv``).

    Variants are read (VCF: line by line) and scored ``chunk_size`` records at a time in input order (each chunk visited in
    genome order for cached block reads) and appended to ``<output>.partial``, renamed to
    ``output`` only after the last chunk: memory holds one chunk, the rows keep the input
    order, and an interrupted run never leaves a file that looks complete (the partial file
    is removed on errors; a killed process leaves only ``.partial``). Other arguments as in
    :func:`variant_effects`.

    Returns
    -------
    tuple
        The written path, the counts and the task names.
    """
    import os

    out_path = Path(output)
    suffix = out_path.suffix.lower()
    if suffix not in (".parquet", ".tsv", ".txt", ".csv"):
        raise DataError(f"{out_path}: unsupported output format {suffix!r}; use .csv, .tsv or .parquet")
    if chunk_size < 1:
        raise ConfigError("chunk_size must be at least 1")
    setup = _setup(model, activation, tasks, length, device)
    if isinstance(variants, (str, Path)) and not Path(variants).is_file():
        raise DataError(f"variant file not found: {variants}")
    summary = {"records": 0, "variants": 0, "multiallelic_split": 0}
    source = f"{variants}: " if isinstance(variants, (str, Path)) else ""
    whole = fasta if isinstance(fasta, Genome) else Genome(fasta)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    statuses: list[np.ndarray] = []
    clips: list[np.ndarray] = []
    names: list[str] = []
    writer: Any = None
    try:
        reader = BlockReader(whole)
        for part, counts in iter_variants(variants, chunk_size):
            for key, value in counts.items():
                summary[key] += value
            frame, names, status, clipped = _score_chunk(
                setup, reader, part, rc_average, on_error, window_edge, batch_size, source
            )
            setup = setup._replace(names=names)  # the same columns in every chunk
            statuses.append(status)
            clips.append(clipped)
            writer = _append(frame, partial, suffix, writer)
        if writer is not None and suffix == ".parquet":
            writer.close()
        os.replace(partial, out_path)
    except BaseException:
        if writer is not None and suffix == ".parquet":
            writer.close()
        partial.unlink(missing_ok=True)
        raise
    finally:
        if isinstance(fasta, (str, Path)):
            whole.close()
    return out_path, _summarise(summary, statuses, clips), names


def _append(frame: pd.DataFrame, path: Path, suffix: str, writer: Any) -> Any:
    """Append ``frame`` to ``path`` (the first call creates it); returns the Parquet writer (or ``True``)."""
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        if writer is None:
            arrow = pa.Table.from_pandas(frame, preserve_index=False)
            writer = pq.ParquetWriter(path, arrow.schema)
        else:
            arrow = pa.Table.from_pandas(frame, schema=writer.schema, preserve_index=False)
        writer.write_table(arrow)
        return writer
    frame.to_csv(path, sep="," if suffix == ".csv" else "\t", index=False, mode="a" if writer else "w", header=not writer)
    return True


class _Setup(NamedTuple):
    net: torch.nn.Module
    act: Activation
    names: list[str] | None
    scaler: Any
    length: int
    unknown: str
    device: torch.device


def _setup(
    model: ModelLike, activation: Activation | None, tasks: Sequence[str] | None, length: int | None, device: Any
) -> _Setup:
    net = as_module(model)
    act, names, scaler = _model_info(model, activation, tasks)
    L = length or model_length(net)
    if L is None:
        raise ConfigError("the model's input length is unknown: give length=...")
    unknown = "zero"
    modality = getattr(model, "modality", None)
    if modality is not None and getattr(modality, "opts", None) is not None:
        unknown = str(modality.opts.unknown)
        alpha = str(getattr(modality.alphabet, "name", "dna"))
        if alpha != "dna":
            raise ConfigError(f"variant effects need a DNA model; this one was trained on {alpha} sequences")
    dev = torch.device(device) if device is not None else model_device(net)
    return _Setup(net, act, names, scaler, int(L), unknown, dev)


def _score_chunk(
    setup: _Setup, genome: BlockReader, table: pd.DataFrame, rc_average: bool, on_error: str, window_edge: str,
    batch_size: int, source: str,
) -> tuple[pd.DataFrame, list[str], np.ndarray, np.ndarray]:  # fmt: skip
    """The output rows of ``table`` (same order), the task names, each row's status and clipped flag."""
    net, act, names, scaler, L, unknown, dev = setup
    table = table.reset_index(drop=True)
    types, status, genome_ref, clipped_col, scored, windows = assess_variants(genome, table, L, window_edge, on_error, source)
    ref_codes, alt_codes, snv_code, snv_centre = windows
    out = table.assign(type=types, status=status, genome_ref=genome_ref, clipped=clipped_col)
    if len(scored):
        y_ref, y_alt = score_windows(net, ref_codes, alt_codes, snv_code, snv_centre, unknown, batch_size, dev, rc_average)
        n_tasks = y_ref.shape[1]
    else:
        n_tasks = int(getattr(net, "num_outputs", 1)) if names is None else len(names)
    if names is None or len(names) != n_tasks:
        names = [f"t{j}" for j in range(n_tasks)]
    cols: dict[str, np.ndarray] = {}
    for name in names:
        for c in ("ref", "alt", "diff", "logodds_diff"):
            cols[f"{c}_{name}"] = np.full(len(out), np.nan)
    if len(scored):
        p_ref, p_alt, lo_diff = _transform(y_ref, y_alt, act, scaler)
        for j, name in enumerate(names):
            cols[f"ref_{name}"][scored] = p_ref[:, j]
            cols[f"alt_{name}"][scored] = p_alt[:, j]
            cols[f"diff_{name}"][scored] = p_alt[:, j] - p_ref[:, j]
            cols[f"logodds_diff_{name}"][scored] = lo_diff[:, j]
    if act == "none":
        cols = {k: v for k, v in cols.items() if not k.startswith("logodds_diff_")}
    out = pd.concat([out, pd.DataFrame(cols, index=out.index)], axis=1)
    return out, list(names), np.asarray(status), np.asarray(clipped_col)


def _summarise(summary: dict[str, int], statuses: list[np.ndarray], clips: list[np.ndarray]) -> dict[str, int]:
    """Add the status counts to ``summary`` (warning about variants not scored)."""
    status = np.concatenate(statuses) if statuses else np.zeros(0, dtype=object)
    clipped = np.concatenate(clips) if clips else np.zeros(0, dtype=bool)
    counts = pd.Series(status, dtype=object).value_counts().to_dict()
    summary["scored"] = int(counts.pop(_STATUS_SCORED, 0))
    summary.update({str(k): int(v) for k, v in counts.items()})
    summary["clipped_windows"] = int(np.sum(clipped & (status == _STATUS_SCORED)))
    counts_only = ("records", "variants", "multiallelic_split", "scored", "clipped_windows")
    problems = {k: v for k, v in summary.items() if k not in counts_only}
    if problems:
        warnings.warn(f"variants not scored: {problems} (see the status column)", RuntimeWarning, stacklevel=3)
    return summary


def _transform(
    y_ref: torch.Tensor, y_alt: torch.Tensor, act: Activation, scaler: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reported values of both alleles and the log-odds difference."""
    if act == "sigmoid":
        lo = (y_alt - y_ref).double().numpy()
        return torch.sigmoid(y_ref).double().numpy(), torch.sigmoid(y_alt).double().numpy(), lo
    if act == "softmax":
        p_ref, p_alt = torch.softmax(y_ref.double(), 1), torch.softmax(y_alt.double(), 1)
        eps = 1e-12

        def logit(p: torch.Tensor) -> torch.Tensor:
            return torch.log(p.clamp(eps, 1 - eps)) - torch.log1p(-p.clamp(eps, 1 - eps))

        return p_ref.numpy(), p_alt.numpy(), (logit(p_alt) - logit(p_ref)).numpy()
    r, a = y_ref.double().numpy(), y_alt.double().numpy()
    if scaler is not None:
        r, a = scaler.inverse(r), scaler.inverse(a)
    return np.asarray(r, dtype=np.float64), np.asarray(a, dtype=np.float64), np.full(r.shape, np.nan)


def write_variant_effects(result: VariantScores | pd.DataFrame, path: str | Path) -> Path:
    """Write the table as TSV (``.tsv``/``.txt``), CSV (``.csv``) or Parquet (``.parquet``)."""
    from biodl.inference import write_table

    table = result.table if isinstance(result, VariantScores) else result
    return write_table(table, path)
