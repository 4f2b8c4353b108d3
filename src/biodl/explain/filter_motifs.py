"""Convolution filters as sequence motifs (the review's Figure 2E; Basset's and DeepBind's recipe).

For each filter of a convolutional layer, the subsequences that activate it most are aligned:
in every sequence (and, for DNA, its reverse complement) the filter's best window is taken,
windows reaching at least ``threshold`` × the filter's largest activation are kept (at most
``max_sites``, strongest first), and their letters are counted into a position frequency
matrix (PFM), turned into letter probabilities (PPM) and log-odds weights (PWM). Motifs are
written in MEME format, drawn as logos and compared with JASPAR by :mod:`biodl.explain.tomtom`.

>>> motifs = filter_motifs(bundle, X)                # first Conv1d by default
>>> write_meme(motifs, "motifs.meme")
>>> table = motif_matches(motifs)                   # top-5 JASPAR 2024 matches per filter

JASPAR matrices have versions (``MA0062.1`` ... ``MA0062.4``); by default every version is
compared and each matrix is listed once per filter, with its best-matching version
(``jaspar_versions="best"``; ``"latest"`` and ``"all"`` are the alternatives).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, get_args

import numpy as np
import pandas as pd
import torch
from torch import nn

from biodl.errors import ConfigError, DataError
from biodl.explain._common import (
    LengthMode,
    as_module,
    as_onehot,
    evaluating,
    fit_length,
    model_device,
    model_length,
    reverse_complement,
)
from biodl.io_utils import atomic_write_text

if TYPE_CHECKING:
    from biodl.explain._common import ModelLike
    from biodl.explain.tomtom import MotifDatabase

__all__ = [
    "FilterMotifs",
    "JasparVersions",
    "conv_layers",
    "filter_motifs",
    "information_content",
    "motif_matches",
    "trim_motif",
    "write_meme",
]

#: Which versions of each JASPAR matrix :func:`motif_matches` compares and lists: ``best`` (every
#: version compared, each matrix listed once with its best-matching version), ``latest`` (the latest
#: version of each matrix only) or ``all`` (every version, each listed separately).
JasparVersions = Literal["best", "latest", "all"]


class FilterMotifs(NamedTuple):
    """Motifs of the filters of one layer.

    Attributes
    ----------
    layer
        The layer's name (``model.named_modules()``).
    pfm
        Letter counts at the aligned sites ``(F, A, W)`` (``W`` = receptive field width).
    ppm
        Letter probabilities ``(F, A, W)`` (counts + pseudocount × background, normalised).
    pwm
        Log2-odds against the background ``(F, A, W)``.
    n_sites
        Sites aligned per filter ``(F,)``.
    max_activation
        Largest activation of each filter over the data ``(F,)``.
    offset, jump
        Output position ``p`` of the layer sees input positions ``offset + p·jump`` onwards.
    background
        Letter frequencies of the input ``(A,)``.
    alphabet
        The letters, in channel order.
    """

    layer: str
    pfm: np.ndarray
    ppm: np.ndarray
    pwm: np.ndarray
    n_sites: np.ndarray
    max_activation: np.ndarray
    offset: int
    jump: int
    background: np.ndarray
    alphabet: str

    @property
    def names(self) -> list[str]:
        """``filter_0``, ``filter_1``..."""
        return [f"filter_{i}" for i in range(len(self.pfm))]


class _Stop(Exception):
    """Raised by the capture hook to end the forward pass at the layer."""


def conv_layers(model: Any) -> list[str]:
    """Names of the ``Conv1d`` layers of a model, in registration order."""
    return [name for name, m in as_module(model).named_modules() if isinstance(m, nn.Conv1d)]


def _resolve_layer(net: nn.Module, layer: str | None) -> tuple[str, nn.Module]:
    mods = dict(net.named_modules())
    convs = [n for n, m in mods.items() if isinstance(m, nn.Conv1d)]
    if layer is None:
        if not convs:
            raise ConfigError(f"{type(net).__name__} has no Conv1d layer; give layer=NAME of a layer with (N, C, L) outputs")
        return convs[0], mods[convs[0]]
    if layer not in mods or layer == "":
        import difflib

        close = difflib.get_close_matches(layer, list(mods), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"layer {layer!r} does not exist in {type(net).__name__}{hint}; convolution layers: {convs}; "
            f"all layers: {[n for n in mods if n][:40]}"
        )
    return layer, mods[layer]


def _first(v: Any) -> int:
    return int(v[0] if isinstance(v, (tuple, list)) else v)


def _receptive_field(net: nn.Module, name: str) -> tuple[int, int, int]:
    """``(offset, jump, width)`` of the layer's outputs in input coordinates.

    Walks the leaf modules registered before (and including) the layer; padding, convolution
    and pooling change the geometry, point-wise modules do not.
    """
    offset, jump, width = 0, 1, 1
    for mname, m in net.named_modules():
        if list(m.children()):
            continue
        if isinstance(m, (nn.ConstantPad1d, nn.ZeroPad1d)):
            offset -= int(m.padding[0]) * jump
        elif isinstance(m, (nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d)):
            k, s = _first(m.kernel_size), _first(m.stride)
            d = _first(getattr(m, "dilation", 1))
            pad: Any = m.padding
            if pad == "same":
                left = d * (k - 1) // 2
            elif pad == "valid":
                left = 0
            else:
                left = int(pad[0] if isinstance(pad, tuple) else pad)
            offset -= left * jump
            width += (d * (k - 1)) * jump
            jump *= s
        elif isinstance(m, (nn.Linear, nn.Flatten, nn.LSTM, nn.GRU, nn.RNN, nn.AdaptiveMaxPool1d, nn.AdaptiveAvgPool1d)):
            if mname != name:
                kind = type(m).__name__
                raise ConfigError(f"layer {name!r} comes after {mname!r} ({kind}): its outputs have no sequence positions")
        if mname == name:
            return offset, jump, width
    raise ConfigError(f"layer {name!r} not found among the leaf modules")


def _activations(
    net: nn.Module, module: nn.Module, X: torch.Tensor, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence and filter: the best activation and its position, ``(N, F)`` each."""
    captured: list[torch.Tensor] = []

    def hook(_m: nn.Module, _inp: Any, out: Any) -> None:
        captured.append(out[0] if isinstance(out, tuple) else out)
        raise _Stop

    handle = module.register_forward_hook(hook)
    best, where = [], []
    try:
        for i in range(0, len(X), batch_size):
            captured.clear()
            try:
                net(X[i : i + batch_size].to(device))
            except _Stop:
                pass
            if not captured:
                raise ConfigError("the layer was not called by the model's forward pass")
            h = captured[0]
            if h.ndim != 3:
                raise ConfigError(f"the layer's output has shape {tuple(h.shape)}; filter motifs need (N, filters, positions)")
            v, p = h.float().max(dim=-1)
            best.append(v.cpu())
            where.append(p.cpu())
    finally:
        handle.remove()
    return torch.cat(best), torch.cat(where)


def filter_motifs(
    model: ModelLike,
    X: Any,
    layer: str | None = None,
    *,
    threshold: float = 0.5,
    max_sites: int = 1000,
    both_strands: bool | None = None,
    pseudocount: float = 0.5,
    batch_size: int = 256,
    length_mode: LengthMode = "error",
    device: str | torch.device | None = None,
) -> FilterMotifs:
    """Align the top-activating subsequences of every filter of a convolutional layer.

    Parameters
    ----------
    model
        A module taking one-hot ``(N, A, L)`` or a biodl bundle.
    X
        One-hot sequences ``(N, A, L)``.
    layer
        Name of the layer in ``model.named_modules()`` (default: the first ``Conv1d``). Any
        layer with ``(N, filters, positions)`` outputs after convolutions/pooling only works;
        its receptive field sets the motif width.
    threshold
        Keep sites whose activation is at least this fraction of the filter's maximum (0.5 as
        in Basset); only positive activations count.
    max_sites
        At most this many sites per filter (the strongest).
    both_strands
        Also scan reverse complements (default: for 4-letter alphabets).
    pseudocount
        Added (spread by background frequency) to the counts for probabilities and weights.
    batch_size
        Sequences per forward pass.
    length_mode
        Sequences whose length differs from a biodl model's input: ``error``, ``pad``, ``crop``.

    Returns
    -------
    FilterMotifs
        Count, probability and weight matrices per filter.
    """
    net = as_module(model)
    Xt = fit_length(as_onehot(X), model_length(net), length_mode).cpu()
    if len(Xt) == 0:
        raise DataError("no sequences given")
    if not 0 < threshold <= 1:
        raise ConfigError("threshold must be in (0, 1]")
    name, module = _resolve_layer(net, layer)
    offset, jump, width = _receptive_field(net, name)
    A = Xt.shape[1]
    strands = both_strands if both_strands is not None else A == 4
    dev = torch.device(device) if device is not None else model_device(net)
    seqs = [Xt, reverse_complement(Xt)] if strands else [Xt]
    with evaluating(net), torch.inference_mode():
        results = [_activations(net, module, s, batch_size, dev) for s in seqs]
    vals = torch.stack([r[0] for r in results])  # (S, N, F)
    pos = torch.stack([r[1] for r in results])
    F_ = vals.shape[-1]
    max_act = vals.amax(dim=(0, 1))  # (F,)
    padded = torch.stack([nn.functional.pad(s, (width, width)) for s in seqs])  # (S, N, A, L + 2 width)
    n_sites = np.zeros(F_, dtype=np.int64)
    flat_v, flat_p = vals.reshape(-1, F_), pos.reshape(-1, F_)  # (S·N, F): strand-major
    picks: list[torch.Tensor] = []
    owner: list[torch.Tensor] = []
    for f in range(F_):
        if max_act[f] <= 0:
            continue
        v = flat_v[:, f]
        keep = torch.nonzero((v >= threshold * max_act[f]) & (v > 0)).flatten()
        if len(keep) > max_sites:
            keep = keep[torch.argsort(v[keep], descending=True)[:max_sites]]
        picks.append(keep)
        owner.append(torch.full((len(keep),), f, dtype=torch.long))
        n_sites[f] = len(keep)
    pfm_t = torch.zeros((F_, width, A), dtype=torch.float64)
    if picks:
        keep, f_idx = torch.cat(picks), torch.cat(owner)
        strand, seq = keep // len(Xt), keep % len(Xt)
        start = offset + flat_p[keep, f_idx] * jump + width  # window start in padded coordinates
        cols = start[:, None] + torch.arange(width)[None, :]
        win = padded[strand[:, None], seq[:, None], :, cols]  # (K, width, A)
        pfm_t.index_add_(0, f_idx, win.double())
    pfm = pfm_t.permute(0, 2, 1).numpy()
    bg = Xt.sum(dim=(0, 2)).double().numpy()
    bg = bg / bg.sum() if bg.sum() > 0 else np.full(A, 1.0 / A)
    tot = pfm.sum(1, keepdims=True)
    ppm = (pfm + pseudocount * bg[None, :, None]) / (tot + pseudocount)
    pwm = np.log2(ppm / bg[None, :, None])
    alphabet = "ACGT" if A == 4 else "".join(chr(65 + i) for i in range(A))
    return FilterMotifs(name, pfm, ppm, pwm, n_sites, max_act.double().numpy(), offset, jump, bg, alphabet)


def information_content(ppm: np.ndarray, background: np.ndarray | None = None) -> np.ndarray:
    """Information content (bits) of each column of a ``(A, W)`` probability matrix."""
    p = np.asarray(ppm, dtype=np.float64)
    bg = np.full(p.shape[0], 1.0 / p.shape[0]) if background is None else np.asarray(background, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(p / bg[:, None]), 0.0)
    return terms.sum(0)


def trim_motif(ppm: np.ndarray, min_ic: float = 0.25, min_width: int = 4) -> tuple[int, int]:
    """``(start, end)`` of the motif without its low-information edges (columns below ``min_ic`` bits).

    At least ``min_width`` columns are kept (around the most informative column).
    """
    ic = information_content(ppm)
    w = len(ic)
    good = np.flatnonzero(ic >= min_ic)
    if len(good):
        start, end = int(good[0]), int(good[-1]) + 1
    else:
        c = int(np.argmax(ic))
        start, end = c, c + 1
    while end - start < min(min_width, w):
        if start > 0 and (end >= w or ic[start - 1] >= ic[end]):
            start -= 1
        else:
            end += 1
    return start, end


def write_meme(
    motifs: FilterMotifs | Sequence[tuple[str, np.ndarray, int]],
    path: str | Path,
    *,
    trim: float | None = None,
    alphabet: str = "ACGT",
    background: np.ndarray | None = None,
) -> Path:
    """Write motifs as a MEME (version 4) text file.

    Parameters
    ----------
    motifs
        :class:`FilterMotifs` (filters without sites are left out), or ``(name, ppm (A, W), nsites)``.
    trim
        Trim edge columns below this many bits (default: full width).
    """
    if isinstance(motifs, FilterMotifs):
        items = [(n, motifs.ppm[i], int(motifs.n_sites[i])) for i, n in enumerate(motifs.names) if motifs.n_sites[i] > 0]
        alphabet, background = motifs.alphabet, motifs.background
    else:
        items = [(str(n), np.asarray(m, dtype=np.float64), int(k)) for n, m, k in motifs]
    bg = np.full(len(alphabet), 1.0 / len(alphabet)) if background is None else np.asarray(background)
    lines = ["MEME version 4", "", f"ALPHABET= {alphabet}", ""]
    if alphabet in ("ACGT", "ACGU"):
        lines += ["strands: + -", ""]
    lines += ["Background letter frequencies", " ".join(f"{a} {b:.4f}" for a, b in zip(alphabet, bg, strict=True)), ""]
    for name, ppm, nsites in items:
        if trim is not None:
            s, e = trim_motif(ppm, trim)
            ppm = ppm[:, s:e]
        ppm = ppm / ppm.sum(0, keepdims=True)
        lines.append(f"MOTIF {name}")
        lines.append(f"letter-probability matrix: alength= {len(alphabet)} w= {ppm.shape[1]} nsites= {nsites} E= 0")
        lines += [" " + "  ".join(f"{v:.6f}" for v in col) for col in ppm.T]
        lines.append("")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, "\n".join(lines))
    return p


def motif_matches(
    motifs: FilterMotifs,
    database: MotifDatabase | None = None,
    *,
    n_top: int = 5,
    trim: float = 0.25,
    min_sites: int = 10,
    metric: str = "pearson",
    jaspar_versions: JasparVersions = "best",
) -> pd.DataFrame:
    """The best database (default: JASPAR 2024 CORE vertebrates) matches of every filter's motif.

    Motifs are trimmed to their informative columns first; filters with fewer than
    ``min_sites`` sites are skipped.

    Parameters
    ----------
    motifs
        Filter motifs from :func:`filter_motifs`.
    database
        Motifs to compare with (default: every version of every JASPAR 2024 CORE vertebrate
        matrix, or the latest versions only for ``jaspar_versions="latest"``).
    n_top
        Matches listed per filter.
    trim
        Edge columns below this many bits are trimmed off the filter motifs.
    min_sites
        Filters with fewer aligned sites are skipped.
    metric
        Column similarity, ``pearson`` or ``ed`` (see :func:`biodl.explain.tomtom.tomtom`).
    jaspar_versions
        Versions of a matrix (IDs ``BASE.VERSION``, e.g. ``MA0062.2``) compared and listed:
        ``best`` (default) compares every version in the database and lists each base ID at
        most once per filter, with its best-matching version; ``latest`` compares only the
        latest version of each base ID; ``all`` lists every version separately (the versions
        of one matrix can then fill a filter's top ``n_top``).

    Returns
    -------
    pandas.DataFrame
        Columns ``filter, rank, jaspar_id, jaspar_name, score, p_value, e_value, offset,
        strand, overlap, family, n_sites``.
    """
    from biodl.explain.tomtom import jaspar_motifs, latest_versions, match_motifs

    if jaspar_versions not in get_args(JasparVersions):
        raise ConfigError(f"jaspar_versions must be one of {list(get_args(JasparVersions))}, got {jaspar_versions!r}")
    if database is None:
        db = jaspar_motifs(all_versions=jaspar_versions != "latest")
    else:
        db = latest_versions(database) if jaspar_versions == "latest" else database
    keep = [i for i in range(len(motifs.ppm)) if motifs.n_sites[i] >= min_sites]
    queries = []
    for i in keep:
        s, e = trim_motif(motifs.ppm[i], trim)
        queries.append(motifs.ppm[i][:, s:e])
    cols = ["filter", "rank", "jaspar_id", "jaspar_name", "score", "p_value", "e_value", "offset", "strand", "overlap", "family",
            "n_sites"]  # fmt: skip
    if not queries:
        return pd.DataFrame(columns=cols)
    table = match_motifs(queries, db, n_top=n_top, query_names=[motifs.names[i] for i in keep], metric=metric,  # type: ignore[arg-type]
                         one_per_matrix=jaspar_versions == "best")  # fmt: skip
    table = table.rename(columns={"query": "filter", "target_id": "jaspar_id", "target_name": "jaspar_name"})
    table["n_sites"] = [int(motifs.n_sites[int(str(f).split("_")[-1])]) for f in table["filter"]]
    return table[cols]
