"""Figures for sequence explanations: mutation maps, attribution logos and motif logos.

Every function draws on a standalone :class:`matplotlib.figure.Figure` (no pyplot state) or on
the ``ax`` given; with ``path`` the figure is written atomically as PNG or SVG (by suffix) and
the path returned. Logos are drawn with logomaker.

The mutation map follows the review's Figure 2C (DeepBind's mutation maps): a heat map of the
effect of every substitution (letters × positions, blue = loss, red = gain) under the wild-type
sequence, whose letters are scaled by the largest effect of a substitution at their position.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from biodl.io_utils import atomic_write_figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from biodl.explain.filter_motifs import FilterMotifs

__all__ = ["plot_attribution_logo", "plot_filter_logos", "plot_motif_logo", "plot_mutation_map", "save_figure"]

DPI = 100
#: Colours of A, C, G, T (the classic logo scheme).
COLORS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839", "U": "#D62839"}


def _figure(w: float, h: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=DPI, layout="constrained")


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Render ``fig`` to PNG or SVG (by suffix), write it atomically and release it."""
    suffix = Path(path).suffix.lower()
    fmt = "svg" if suffix == ".svg" else "pdf" if suffix == ".pdf" else "png"
    return atomic_write_figure(fig, path, fmt=fmt, dpi=DPI)


def _frame(matrix: np.ndarray, alphabet: str, start: int = 0) -> pd.DataFrame:
    import pandas as pd

    m = np.asarray(matrix, dtype=np.float64)
    return pd.DataFrame(m.T, columns=list(alphabet[: m.shape[0]]), index=np.arange(start, start + m.shape[1]))


def _logo(ax: Axes, matrix: np.ndarray, alphabet: str, start: int = 0) -> Any:
    import logomaker

    colors = {a: COLORS.get(a, "#555555") for a in alphabet}
    logo = logomaker.Logo(_frame(matrix, alphabet, start), ax=ax, color_scheme=colors, show_spines=False, baseline_width=0.5)
    return logo


@functools.lru_cache(maxsize=64)
def _glyph(letter: str) -> Any:
    """The outline of a letter scaled to the unit square (cached: fonts are rendered once)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path as MPath
    from matplotlib.textpath import TextPath

    tp = TextPath((0, 0), letter, size=1, prop=FontProperties(family="DejaVu Sans", weight="bold"))
    v = tp.vertices.copy()
    lo, hi = v.min(0), v.max(0)
    v = (v - lo) / np.where(hi - lo > 0, hi - lo, 1)
    return MPath(v, tp.codes)


def _letters(ax: Axes, matrix: np.ndarray, alphabet: str, start: int = 0) -> None:
    """Stacked letters, heights = values (negative ones below 0); only non-zero letters are drawn.

    A light-weight logo for long sequences (mutation maps, attribution logos), where drawing every
    letter of every position with logomaker would dominate the time.
    """
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MPath

    M = np.asarray(matrix, dtype=np.float64)
    patches = []
    for j in range(M.shape[1]):
        col = M[:, j]
        up = down = 0.0
        for a in np.argsort(np.abs(col)):
            h = float(col[a])
            if h == 0 or not np.isfinite(h):
                continue
            g = _glyph(alphabet[a])
            base = up if h > 0 else down - abs(h)
            v = g.vertices * np.array([0.9, abs(h)]) + np.array([start + j - 0.45, base])
            patches.append(PathPatch(MPath(v, g.codes), facecolor=COLORS.get(alphabet[a], "#555555"), edgecolor="none"))
            if h > 0:
                up += h
            else:
                down -= abs(h)
    ax.add_collection(PatchCollection(patches, match_original=True))
    pos, neg = np.clip(M, 0, None).sum(0), np.clip(M, None, 0).sum(0)
    top, bottom = float(pos.max(initial=0.0)), float(neg.min(initial=0.0))
    pad = 0.05 * ((top - bottom) or 1.0)
    ax.set_xlim(start - 0.5, start + M.shape[1] - 0.5)
    ax.set_ylim(bottom - (pad if bottom < 0 else 0), top + pad)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _finish(fig: Figure, path: str | Path | None) -> Figure | Path:
    return save_figure(fig, path) if path is not None else fig


def _single_axes(ax: Axes | None, width: float, height: float) -> tuple[Figure | None, Axes]:
    """The axes to draw on.

    Parameters
    ----------
    ax
        The caller's axes, or ``None`` for the single axes of a new figure.
    width, height
        Size (inches) of the new figure.

    Returns
    -------
    tuple
        ``(figure, axes)``: the new figure (``None`` when ``ax`` was given) and the axes.
    """
    if ax is not None:
        return None, ax
    fig = _figure(width, height)
    return fig, fig.subplots()


def _ticks_and_title(ax: Axes, title: str, *, labelsize: float, titlesize: float) -> None:
    """Set the tick label size of ``ax`` and, when not empty, its title.

    Parameters
    ----------
    ax
        Axes to style.
    title
        Title (``""``: none).
    labelsize, titlesize
        Font sizes of the tick labels and of the title.
    """
    ax.tick_params(labelsize=labelsize)
    if title:
        ax.set_title(title, fontsize=titlesize)


def _result(fig: Figure | None, ax: Axes, path: str | Path | None) -> Figure | Path:
    """What a plotting function returns once it has drawn.

    Parameters
    ----------
    fig
        The figure it created, or ``None`` when it drew on the caller's axes.
    ax
        Axes it drew on.
    path
        Where to write a created figure (ignored on the caller's axes).

    Returns
    -------
    Figure or Path
        The figure of the caller's axes, the created figure, or ``path`` once written.
    """
    if fig is None:
        return ax.figure  # type: ignore[return-value]
    return _finish(fig, path)


def plot_mutation_map(
    effects: Any,
    sequence: Any,
    *,
    path: str | Path | None = None,
    ax: Sequence[Axes] | None = None,
    title: str = "",
    alphabet: str = "ACGT",
    start: int = 0,
    end: int | None = None,
    letter_height: Literal["abs", "loss"] = "abs",
    highlight: tuple[int, int] | None = None,
) -> Figure | Path:
    """Mutation map of one sequence (review Figure 2C).

    Parameters
    ----------
    effects
        Effects of substitutions ``(A, L)`` (mutant − wild type), e.g. one row of
        :func:`~biodl.explain.saturation_mutagenesis`.
    sequence
        One-hot wild type ``(A, L)``.
    path
        Write the figure here (``.png`` or ``.svg``); otherwise return it.
    ax
        Two axes (letters, heat map) to draw on instead of a new figure.
    start, end
        Positions shown (default: all).
    letter_height
        ``abs``: the largest absolute effect at the position; ``loss``: the largest decrease.
    highlight
        ``(start, end)`` of a region to frame (e.g. a matched motif occurrence).
    """
    E = np.asarray(effects, dtype=np.float64)
    S = np.asarray(sequence, dtype=np.float64)
    if E.ndim != 2 or E.shape != S.shape:
        raise ValueError(f"effects {E.shape} and sequence {S.shape} must both be (A, L)")
    end = E.shape[1] if end is None else end
    E, S = E[:, start:end], S[:, start:end]
    height = np.abs(E).max(0) if letter_height == "abs" else np.maximum(0.0, -E.min(0))
    fig = None
    if ax is None:
        fig = _figure(max(6.0, 0.09 * E.shape[1] + 1.5), 2.6)
        axes = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.2]})
    else:
        axes = list(ax)
    _letters(axes[0], S * height[None, :], alphabet, start)
    axes[0].set_ylabel("max |effect|" if letter_height == "abs" else "max loss", fontsize=7)
    _ticks_and_title(axes[0], title, labelsize=7, titlesize=9)
    lim = float(np.abs(E).max()) or 1.0
    im = axes[1].imshow(
        E, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
        extent=(start - 0.5, start + E.shape[1] - 0.5, E.shape[0] - 0.5, -0.5),
    )  # fmt: skip
    wt_r, wt_c = np.nonzero(S == 1)
    axes[1].scatter(wt_c + start, wt_r, s=2, c="#444444", marker="o", linewidths=0)  # wild-type cells
    axes[1].set_yticks(range(E.shape[0]), list(alphabet[: E.shape[0]]), fontsize=7)
    axes[1].set_xlabel("position", fontsize=8)
    axes[1].set_xlim(start - 0.5, start + E.shape[1] - 0.5)
    axes[1].tick_params(labelsize=7)
    if highlight is not None:
        from matplotlib.patches import Rectangle

        for a in axes:
            lo_y, hi_y = a.get_ylim()
            a.add_patch(Rectangle((highlight[0] - 0.5, min(lo_y, hi_y)), highlight[1] - highlight[0], abs(hi_y - lo_y),
                                  fill=False, edgecolor="black", linewidth=0.8, linestyle="--"))  # fmt: skip
    owner = fig if fig is not None else axes[1].figure
    cb = owner.colorbar(im, ax=axes[1], fraction=0.02, pad=0.01)
    cb.ax.tick_params(labelsize=6)
    cb.set_label("effect", fontsize=7)
    return _result(fig, axes[1], path)


def plot_attribution_logo(
    attributions: Any,
    sequence: Any | None = None,
    *,
    path: str | Path | None = None,
    ax: Axes | None = None,
    title: str = "",
    alphabet: str = "ACGT",
    start: int = 0,
    end: int | None = None,
) -> Figure | Path:
    """Attribution logo: letters scaled by their attribution (negative ones below the axis).

    Parameters
    ----------
    attributions
        ``(A, L)`` attributions.
    sequence
        One-hot ``(A, L)``: when given, only the observed letters are drawn (``attr × X``).
    """
    M = np.asarray(attributions, dtype=np.float64)
    if sequence is not None:
        M = M * np.asarray(sequence, dtype=np.float64)
    end = M.shape[1] if end is None else end
    M = M[:, start:end]
    fig, ax = _single_axes(ax, max(6.0, 0.09 * M.shape[1] + 1.0), 1.8)
    _letters(ax, M, alphabet, start)
    ax.axhline(0, color="#888888", linewidth=0.5)
    ax.set_ylabel("attribution", fontsize=7)
    _ticks_and_title(ax, title, labelsize=7, titlesize=9)
    return _result(fig, ax, path)


def plot_motif_logo(
    ppm: Any,
    *,
    path: str | Path | None = None,
    ax: Axes | None = None,
    title: str = "",
    alphabet: str = "ACGT",
    information: bool = True,
    engine: Literal["logomaker", "fast"] = "logomaker",
) -> Figure | Path:
    """Sequence logo of a letter-probability matrix ``(A, W)`` (in bits with ``information``).

    ``engine="fast"`` draws the same letters from cached glyph outlines (for many logos at once).
    """
    P = np.asarray(ppm, dtype=np.float64)
    P = P / np.maximum(P.sum(0, keepdims=True), 1e-12)
    if information:
        from biodl.explain.filter_motifs import information_content

        M = P * information_content(P)[None, :]
    else:
        M = P
    fig, ax = _single_axes(ax, max(2.5, 0.3 * P.shape[1] + 0.8), 1.6)
    if engine == "fast":
        _letters(ax, M, alphabet)
    else:
        _logo(ax, M, alphabet)
    if information:
        ax.set_ylim(0, np.log2(P.shape[0]))
        ax.set_ylabel("bits", fontsize=7)
    _ticks_and_title(ax, title, labelsize=6, titlesize=8)
    return _result(fig, ax, path)


def plot_filter_logos(
    motifs: FilterMotifs,
    *,
    matches: pd.DataFrame | None = None,
    filters: Sequence[int] | None = None,
    path: str | Path | None = None,
    columns: int = 4,
    trim: float | None = 0.25,
    max_logos: int = 64,
    engine: Literal["logomaker", "fast"] = "logomaker",
) -> Figure | Path:
    """A grid of filter logos (logomaker), each titled with its best match (``matches`` from ``motif_matches``)."""
    from biodl.explain.filter_motifs import trim_motif

    idx = list(filters) if filters is not None else [i for i in range(len(motifs.ppm)) if motifs.n_sites[i] > 0]
    idx = idx[:max_logos]
    if not idx:
        idx = [0]
    rows = (len(idx) + columns - 1) // columns
    fig = _figure(3.2 * min(columns, len(idx)), 1.7 * rows)
    axes = np.atleast_1d(fig.subplots(rows, min(columns, len(idx)), squeeze=False)).ravel()
    best: dict[str, str] = {}
    if matches is not None and len(matches):
        for _, r in matches[matches["rank"] == 1].iterrows():
            best[str(r["filter"])] = f"{r['jaspar_name']} {r['jaspar_id']} (p={r['p_value']:.1e})"
    for a, i in zip(axes, idx, strict=False):
        ppm = motifs.ppm[i]
        if trim is not None:
            s, e = trim_motif(ppm, trim)
            ppm = ppm[:, s:e]
        name = motifs.names[i]
        title = f"{name} ({int(motifs.n_sites[i])} sites)\n{best.get(name, '')}"
        plot_motif_logo(ppm, ax=a, title=title, alphabet=motifs.alphabet, engine=engine)
    for a in axes[len(idx) :]:
        a.set_axis_off()
    return _finish(fig, path)
