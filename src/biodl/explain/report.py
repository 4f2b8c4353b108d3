"""The "Interpretation" section of a sequence model's run report.

:func:`report_sections` computes, for a trained sequence model, mutation maps of a few test
sequences (fast ISM) and the first convolution's filter motifs with their best JASPAR 2024
matches, writes them under ``RUN/interpretation/`` (``mutation_map_*.png``, ``filter_logos.png``,
``motifs.meme``, ``motif_matches.tsv``) and returns ``(title, html)`` sections for
:func:`biodl.report.write_report` with the figures embedded.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from biodl.report import escape, html_figure, html_table, render

if TYPE_CHECKING:
    from biodl.bundle import Bundle
    from biodl.data.base import LoadedData
    from biodl.data.splits import Split
    from biodl.explain.filter_motifs import FilterMotifs
    from biodl.explain.tomtom import MotifDatabase

__all__ = ["MotifOccurrence", "best_motif_occurrence", "motif_occurrences", "report_sections"]

#: Test sequences scanned for filter motifs in the report.
MAX_MOTIF_SEQUENCES = 2000
#: Filters shown as logos in the report.
MAX_LOGOS = 12
#: Positions drawn in a mutation map (longer sequences: the window around the strongest effect).
ISM_WINDOW = 100


class MotifOccurrence(NamedTuple):
    """Where a filter with a database match fires most in one sequence.

    Attributes
    ----------
    filter
        Filter name (``filter_7``).
    start, end
        Input positions ``[start, end)`` of the filter's window (its trimmed motif part).
    match
        ``"NAME ID"`` of the filter's best match.
    p_value
        That match's p-value.
    activation
        The filter's activation there, relative to its largest activation over the data.
    """

    filter: str
    start: int
    end: int
    match: str
    p_value: float
    activation: float


def motif_occurrences(
    model: Any,
    x: Any,
    motifs: FilterMotifs,
    matches: pd.DataFrame | None,
    *,
    max_p: float = 0.05,
    rows: pd.DataFrame | None = None,
    min_activation: float = 0.0,
) -> list[MotifOccurrence]:
    """Occurrences in one sequence ``(A, L)`` of filters with a database match, strongest first.

    Each candidate filter contributes its best window (forward strand or reverse complement, in
    forward-strand coordinates), trimmed to the motif's informative columns, if its activation
    there reaches ``min_activation`` × the filter's largest activation over the data. ``rows``
    (rows of ``matches``, one per filter) chooses the filters and names their match (default:
    every filter's rank-1 match with ``p <= max_p``).
    """
    from biodl.explain._common import as_module, reverse_complement
    from biodl.explain.filter_motifs import _activations, _resolve_layer, trim_motif

    if rows is None:
        if matches is None or not len(matches):
            return []
        rows = matches[(matches["rank"] == 1) & (matches["p_value"] <= max_p)]
    if not len(rows):
        return []
    net = as_module(model)
    _, module = _resolve_layer(net, motifs.layer)
    X = torch.as_tensor(np.asarray(x, dtype=np.float32))[None]
    L = X.shape[-1]
    was = net.training
    net.eval()
    try:
        with torch.inference_mode():
            fwd = _activations(net, module, X, 1, torch.device("cpu"))
            rev = _activations(net, module, reverse_complement(X), 1, torch.device("cpu"))
    finally:
        net.train(was)
    found: list[MotifOccurrence] = []
    for _, row in rows.drop_duplicates("filter").iterrows():
        f = int(str(row["filter"]).split("_")[-1])
        peak = float(motifs.max_activation[f]) or 1.0
        s, e = trim_motif(motifs.ppm[f], 0.25)
        strand = int(rev[0][0, f] > fwd[0][0, f])
        v, p = (fwd, rev)[strand]
        act = float(v[0, f]) / peak
        if act < min_activation:
            continue
        start = motifs.offset + int(p[0, f]) * motifs.jump
        lo, hi = start + s, start + e
        if strand == 1:  # window in reverse-complement coordinates → forward
            lo, hi = L - (start + e), L - (start + s)
        found.append(MotifOccurrence(str(row["filter"]), max(0, lo), min(L, hi), f"{row['jaspar_name']} {row['jaspar_id']}",
                                     float(row["p_value"]), act))  # fmt: skip
    return sorted(found, key=lambda o: -o.activation)


def best_motif_occurrence(
    model: Any,
    x: Any,
    motifs: FilterMotifs,
    matches: pd.DataFrame | None,
    *,
    max_p: float = 0.05,
    rows: pd.DataFrame | None = None,
) -> MotifOccurrence | None:
    """The strongest of :func:`motif_occurrences` (``None`` when no filter has a match)."""
    found = motif_occurrences(model, x, motifs, matches, max_p=max_p, rows=rows)
    return found[0] if found else None


def _img(path: Path, alt: str) -> str:
    return html_figure(path.read_bytes(), alt)


def _table(frame: pd.DataFrame) -> str:
    return html_table([str(c) for c in frame.columns], [list(r) for _, r in frame.iterrows()], fmt=_fmt3)


def _fmt3(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def report_sections(
    out: str | Path,
    *,
    data: LoadedData,
    split: Split,
    bundle: Bundle | None = None,
    n_sequences: int = 3,
    database: MotifDatabase | None = None,
) -> list[tuple[str, str]]:
    """Interpretation sections for the run report of a sequence model.

    Parameters
    ----------
    out
        The run directory (the bundle is read from ``out/model`` unless given).
    data, split
        The run's data (alphabet codes) and split: test sequences are explained (validation or
        training ones when the test split is empty).
    n_sequences
        Mutation maps drawn (the test sequences with the highest predicted score).
    database
        Motifs to match (default: every version of JASPAR 2024 CORE vertebrates); as in
        :func:`~biodl.explain.filter_motifs.motif_matches`, each matrix (base ID) is listed once
        per filter, with its best-matching version.

    Returns
    -------
    list of (title, html)
        One "Interpretation" section; on failure its text says why (the run is not affected).
    """
    run = Path(out)
    try:
        return [("Interpretation", _interpretation(run, data, split, bundle, n_sequences, database))]
    except Exception as exc:  # never let the interpretation break a finished run
        warnings.warn(f"interpretation section skipped: {exc}", RuntimeWarning, stacklevel=2)
        text = f"interpretation could not be computed: {type(exc).__name__}: {exc}"
        return [("Interpretation", render("note.html.j2", text=text))]


def _interpretation(
    run: Path, data: LoadedData, split: Split, bundle: Bundle | None, n_sequences: int, database: MotifDatabase | None
) -> str:
    from biodl.bundle import load
    from biodl.explain.filter_motifs import conv_layers, filter_motifs, motif_matches, write_meme
    from biodl.explain.plots import plot_filter_logos, plot_mutation_map
    from biodl.explain.saturation_mutagenesis import conv_pool_parts, saturation_mutagenesis

    b = bundle if bundle is not None else load(run / "model")
    outdir = run / "interpretation"
    outdir.mkdir(parents=True, exist_ok=True)
    idx = next((np.asarray(i) for i in (split.test, split.val, split.train) if len(i)), np.arange(len(data)))
    rng = np.random.default_rng(0)
    if len(idx) > MAX_MOTIF_SEQUENCES:
        idx = rng.choice(idx, MAX_MOTIF_SEQUENCES, replace=False)
    idx = np.sort(idx)
    X = np.asarray(b.modality.transform(data.X[idx]), dtype=np.float32)
    ids = np.asarray(data.ids)[idx]
    alphabet = str(getattr(getattr(b.modality, "alphabet", None), "symbols", "ACGT"))
    parts: list[str] = []
    # filter motifs and JASPAR matches
    motifs = None
    matches = pd.DataFrame()
    if conv_layers(b) and X.shape[1] == 4:
        motifs = filter_motifs(b, X)
        write_meme(motifs, outdir / "motifs.meme")
        matches = motif_matches(motifs, database)
        matches[["filter", "rank", "jaspar_id", "jaspar_name", "score", "p_value"]].to_csv(
            outdir / "motif_matches.tsv", sep="\t", index=False
        )
    # mutation maps of the best-scoring sequences
    with torch.inference_mode():  # the model's scores (rank the sequences; probabilities for the titles)
        was = b.model.training
        b.model.eval()
        logits = torch.cat([b.model(torch.from_numpy(X[i : i + 512])).float() for i in range(0, len(X), 512)])
        b.model.train(was)
    probs = torch.softmax(logits, 1) if b.kind == "multiclass" else torch.sigmoid(logits) if b.kind == "binary" else logits
    preds = probs.numpy()
    if b.target_scaler is not None:
        preds = b.target_scaler.inverse(preds)
    if b.kind == "multiclass":
        picks = [(int(np.argmax(preds[:, c])), c) for c in range(min(n_sequences, preds.shape[1]))]
    else:
        picks = [(int(i), 0) for i in np.argsort(-preds[:, 0])[:n_sequences]]
    if b.kind == "multiclass" and b.classes:
        names = [f"P({c})" for c in b.classes]
    elif b.kind == "binary" and b.classes and len(b.target_names) == 1:
        names = [f"P({b.classes[1]})"]
    else:
        names = list(b.target_names)
    rows = [i for i, _ in picks]
    L = X.shape[-1]
    fast = conv_pool_parts(b) is not None
    # mutate everything for short sequences (or cheap models), else the central ISM_WINDOW positions
    lo, hi = (0, L) if L <= ISM_WINDOW or (fast and L <= 1000) else ((L - ISM_WINDOW) // 2, (L - ISM_WINDOW) // 2 + ISM_WINDOW)
    effects = saturation_mutagenesis(b, X[rows], raw_outputs=True, start=lo, end=hi).effects.numpy()
    maps = []
    for k, (i, t) in enumerate(picks):
        eff = effects[k, t]
        occ = best_motif_occurrence(b, X[i], motifs, matches) if motifs is not None else None
        start, end = lo, hi
        if end - start > ISM_WINDOW:  # long sequences: ISM_WINDOW bp around the strongest effect
            c = int(np.abs(eff).max(0).argmax())
            start = max(0, min(L - ISM_WINDOW, c - ISM_WINDOW // 2))
            end = start + ISM_WINDOW
        if occ is not None and not (start <= occ.start and occ.end <= end):
            occ = None
        label = names[t] if t < len(names) else str(t)
        title = f"{ids[i]}: {label} = {preds[i, t]:.3g}"
        if occ is not None:
            title += f"; {occ.filter} ({occ.match}) at {occ.start}-{occ.end}"
        path = plot_mutation_map(eff, X[i], path=outdir / f"mutation_map_{k}.png", title=title, alphabet=alphabet,
                                 start=start, end=end, highlight=(occ.start, occ.end) if occ is not None else None)  # fmt: skip
        assert isinstance(path, Path)
        maps.append(_img(path, title))
    parts.append(
        "<h3>Mutation maps</h3><p>Effect (change of the raw output, i.e. log-odds for classifiers) of every single-base "
        "substitution of the test sequences with the highest predicted scores; the wild-type letters are scaled by the "
        "largest effect at their position. The dashed box marks the strongest occurrence of a filter motif with a "
        "JASPAR match.</p>" + "".join(maps)
    )
    if motifs is not None:
        order = matches[matches["rank"] == 1].sort_values("p_value")
        shown = [int(str(f).split("_")[-1]) for f in order["filter"]][:MAX_LOGOS]
        logo = plot_filter_logos(motifs, matches=matches, filters=shown or None, path=outdir / "filter_logos.png", engine="fast")
        assert isinstance(logo, Path)
        best = order[["filter", "n_sites", "jaspar_id", "jaspar_name", "p_value", "e_value", "family"]].head(MAX_LOGOS)
        parts.append(
            f"<h3>Filter motifs ({escape(motifs.layer)})</h3><p>Each filter's top-activating subsequences "
            f"({len(X)} test sequences, both strands) aligned into a motif and compared with JASPAR 2024 CORE "
            "vertebrates (every version of each matrix compared, each matrix listed once with its best-matching version; "
            "Tomtom-like Pearson column similarity; p-values from per-column empirical nulls). Filters "
            "ordered by the p-value of their best match; all matches: <code>interpretation/motif_matches.tsv</code>, "
            "motifs: <code>interpretation/motifs.meme</code>.</p>" + _table(best) + _img(logo, "filter logos")
        )
    return "\n".join(parts)
