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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import torch

from biodl.data.sequence.genome import Genome
from biodl.errors import ConfigError, DataError
from biodl.explain._common import as_module, model_device, model_length
from biodl.explain.variant_batches import score_windows

if TYPE_CHECKING:
    from biodl.explain._common import ModelLike

__all__ = ["BlockReader", "Genome", "VariantScores", "read_variants", "variant_effects", "write_variant_effects"]

Activation = Literal["sigmoid", "softmax", "none"]
_BASES = set("ACGTN")
_STATUS_SCORED = "scored"


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
    rows: list[tuple[str, int, str, str, str, int]] = []
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
    return pd.DataFrame(rows, columns=["chrom", "pos", "id", "ref", "alt", "record"])


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
    n_records = len(table)
    alts = table["alt"].astype(str).str.split(",")
    n_multi = int(sum(len(a) > 1 for a in alts))
    table = table.assign(alt=alts).explode("alt", ignore_index=True)
    table["alt"] = table["alt"].astype(str).str.strip()
    table["ref"] = table["ref"].astype(str).str.strip()
    return table, {"records": n_records, "variants": len(table), "multiallelic_split": n_multi}


def _variant_type(ref: str, alt: str) -> str:
    if len(ref) == len(alt):
        return "SNV" if len(ref) == 1 else "MNV"
    if len(ref) < len(alt) and alt.startswith(ref):
        return "insertion"
    if len(ref) > len(alt) and ref.startswith(alt):
        return "deletion"
    return "complex"


class BlockReader:
    """Reads a :class:`Genome` in cached blocks: variants visited in sorted order cost one read per block.

    Same ``fetch``/``length``/``in`` interface as the genome; a fetch outside the cached block
    reads a new block of ``block`` bases starting there (or the request itself, if longer).
    """

    def __init__(self, genome: Genome, block: int = 1 << 20) -> None:
        self.genome, self.block = genome, block
        self.path = genome.path
        self.contigs = genome.contigs
        self._chrom: str | None = None
        self._start = self._end = 0
        self._seq = ""
        self.reads = 0

    def __contains__(self, chrom: object) -> bool:
        return chrom in self.genome

    def length(self, chrom: str) -> int:
        """Length of a contig."""
        return self.genome.length(chrom)

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Upper-case bases ``[start, end)`` (0-based), clipped to the contig."""
        start, end = max(0, start), min(end, self.genome.length(chrom))
        if end <= start:
            return ""
        if chrom != self._chrom or start < self._start or end > self._end:
            self._chrom, self._start = chrom, start
            self._end = min(self.genome.length(chrom), max(end, start + self.block))
            self._seq = self.genome.fetch(chrom, self._start, self._end)
            self.reads += 1
        return self._seq[start - self._start : end - self._start]


def variant_windows(genome: Genome | BlockReader, chrom: str, pos: int, ref: str, alt: str, length: int) -> tuple[str, str, bool]:
    """Reference and alternative windows of ``length`` bases centred on a variant.

    Parameters
    ----------
    pos
        1-based position of the first REF base (VCF convention).

    Returns
    -------
    tuple
        ``(ref_window, alt_window, clipped)``; ``clipped`` is true when the window runs past a
        contig end (the missing bases are ``N``).
    """
    p = pos - 1
    left = length // 2
    s = p - left
    n = genome.length(chrom)
    ref_win = genome.fetch(chrom, s, s + length)
    right_len = length - left - len(alt)
    alt_right = genome.fetch(chrom, p + len(ref), p + len(ref) + max(0, right_len))
    alt_win = genome.fetch(chrom, s, p) + alt + alt_right
    clipped = s < 0 or s + length > n or (right_len > 0 and p + len(ref) + right_len > n)
    if clipped:
        lpad = "N" * max(0, -s)
        ref_win = (lpad + ref_win).ljust(length, "N")
        alt_win = (lpad + genome.fetch(chrom, s, p) + alt + alt_right).ljust(length, "N")
    return ref_win[:length], alt_win[:length], clipped


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
    whole = fasta if isinstance(fasta, Genome) else Genome(fasta)
    genome = BlockReader(whole)
    table, summary = read_variants(variants)
    # visit variants in genome order: windows come from cached blocks, not one seek each
    order = np.lexsort((table["pos"].to_numpy(), table["chrom"].astype(str).to_numpy()))
    n_var = len(table)
    status: list[str] = [_STATUS_SCORED] * n_var
    types: list[str] = [""] * n_var
    genome_ref: list[str] = [""] * n_var
    clipped_col: list[bool] = [False] * n_var
    ref_wins: list[str] = []
    alt_wins: list[str] = []
    scored_rows: list[int] = []
    snv_code: list[int] = []  # alternative letter of an SNV scored by fast ISM, -1 for other variants
    snv_centre: list[int] = []
    columns = [table[c].to_numpy()[order] for c in ("chrom", "pos", "ref", "alt", "record")]
    for i, chrom, pos, ref, alt, rec in zip(order.tolist(), *columns, strict=True):
        chrom, ref_u, alt_u = str(chrom), str(ref).upper(), str(alt).upper()
        types[i] = _variant_type(ref_u, alt_u)
        st, gref, clip = _STATUS_SCORED, "", False
        if not ref_u or not alt_u or alt_u in (".", "*") or not set(ref_u) <= _BASES or not set(alt_u) <= _BASES:
            st = "unsupported_allele"
            msg = f"REF {ref!r} / ALT {alt!r} is not a sequence of A, C, G, T, N (symbolic and missing alleles are not scored)"
        elif chrom not in genome:
            st = "unknown_contig"
            alt_name = chrom[3:] if chrom.startswith("chr") else f"chr{chrom}"
            hint = f" (the genome has {alt_name!r})" if alt_name in genome else ""
            msg = f"contig {chrom!r} is not in {whole.path.name}{hint}; contigs: {whole.contigs[:8]}"
        elif pos < 1 or pos - 1 + len(ref_u) > genome.length(chrom):
            st = "past_contig_end"
            msg = f"position {pos} (REF length {len(ref_u)}) is past the end of {chrom} (length {genome.length(chrom)})"
        else:
            gref = genome.fetch(chrom, pos - 1, pos - 1 + len(ref_u))
            if gref != ref_u:
                st = "ref_mismatch"
                msg = f"REF {ref!r} does not match the genome ({gref!r}) at {chrom}:{pos}"
        if st == _STATUS_SCORED:
            rw, aw, clip = variant_windows(genome, chrom, int(pos), ref_u, alt_u, L)
            if clip and window_edge == "skip":
                st = "window_past_contig_end"
                msg = f"the {L}-bp window around {chrom}:{pos} runs past the contig end"
            else:
                ref_wins.append(rw)
                alt_wins.append(aw)
                scored_rows.append(i)
                snv = len(ref_u) == len(alt_u) == 1 and alt_u in "ACGT" and not clip
                snv_code.append("ACGT".index(alt_u) if snv else -1)
                snv_centre.append(int(L // 2) if snv else -1)
        if st != _STATUS_SCORED and on_error == "raise" and st != "window_past_contig_end":
            where = f"{variants}: " if isinstance(variants, (str, Path)) else ""
            raise DataError(f"{where}variant record {rec} ({chrom}:{pos} {ref}>{alt}): {msg}")
        status[i] = st
        genome_ref[i] = gref if st == "ref_mismatch" else ""
        clipped_col[i] = clip
    if isinstance(fasta, (str, Path)):
        whole.close()
    dev = torch.device(device) if device is not None else model_device(net)
    out = table.assign(type=types, status=status, genome_ref=genome_ref, clipped=clipped_col)
    if scored_rows:
        y_ref, y_alt = score_windows(net, ref_wins, alt_wins, snv_code, snv_centre, unknown, batch_size, dev, rc_average)
        n_tasks = y_ref.shape[1]
    else:
        n_tasks = int(getattr(net, "num_outputs", 1))
    if names is None or len(names) != n_tasks:
        names = [f"t{j}" for j in range(n_tasks)]
    cols: dict[str, np.ndarray] = {}
    for name in names:
        for c in ("ref", "alt", "diff", "logodds_diff"):
            cols[f"{c}_{name}"] = np.full(len(out), np.nan)
    if scored_rows:
        idx = np.asarray(scored_rows)
        p_ref, p_alt, lo_diff = _transform(y_ref, y_alt, act, scaler)
        for j, name in enumerate(names):
            cols[f"ref_{name}"][idx] = p_ref[:, j]
            cols[f"alt_{name}"][idx] = p_alt[:, j]
            cols[f"diff_{name}"][idx] = p_alt[:, j] - p_ref[:, j]
            cols[f"logodds_diff_{name}"][idx] = lo_diff[:, j]
    if act == "none":
        cols = {k: v for k, v in cols.items() if not k.startswith("logodds_diff_")}
    out = pd.concat([out, pd.DataFrame(cols, index=out.index)], axis=1)
    counts = pd.Series(status).value_counts().to_dict()
    summary["scored"] = int(counts.pop(_STATUS_SCORED, 0))
    summary.update({str(k): int(v) for k, v in counts.items()})
    summary["clipped_windows"] = int(np.sum(np.asarray(clipped_col) & (np.asarray(status) == _STATUS_SCORED)))
    counts_only = ("records", "variants", "multiallelic_split", "scored", "clipped_windows")
    problems = {k: v for k, v in summary.items() if k not in counts_only}
    if problems:
        warnings.warn(f"variants not scored: {problems} (see the status column)", RuntimeWarning, stacklevel=2)
    return VariantScores(out, summary, list(names))


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
