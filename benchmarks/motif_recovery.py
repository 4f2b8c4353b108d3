"""Motif recovery: do the default sequence model's filters match the right JASPAR motifs?

For each data set the script trains biodl's default model for ``--data-type sequence`` (DeepBind,
default settings) with the sequence modality, then

1. turns the first convolution's filters into motifs (top-activating subsequences of the run's
   test sequences, both strands) and compares them with JASPAR 2024 CORE vertebrates
   (:func:`biodl.explain.motif_matches`, top 5 per filter) three ways: every version of each matrix
   compared, each matrix listed once with its best version (biodl's default, ``jaspar_versions="best"``),
   the latest versions only (``"latest"``) and every version listed separately (``"all"``);
2. checks that some filter's top-5 matches include the factor's own motif: Oct4 vs MafK (janggu):
   MA0142 Pou5f1::Sox2 or another POU/SOX motif, and MA0496 MAFK or another MAF motif; ENCODE REST,
   GABPA, USF1 (DeepBind, bound peaks + dinucleotide-shuffled negatives): MA0138, MA0062, MA0093;
3. computes mutation maps (fast ISM) of the ``--maps`` bound test sequences the model scores highest
   for the factor and checks that the strongest loss-of-function substitution (the one moving the
   score most away from the sequence's class) lies inside an occurrence of the motif: the best
   window of a filter matching it, active at >= half the filter's maximum (the fraction of the
   sequence these windows cover is reported); one map per check is drawn with the occurrence framed.

Writes ``benchmarks/results/motif_recovery.{json,md}``, the match tables and mutation maps
``benchmarks/results/motif_recovery_*`` (the Oct4/MafK maps, which show janggu's GPL sequences, go to
``--workdir``) and ``docs/interpretation_results.md`` (the page's hand-written notes, after the ``NOTES`` mark,
are kept).

Run: ``OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/motif_recovery.py`` (one training after the
other; 5-10 minutes of training and about as long for the JASPAR comparisons on 2 shared CPU cores);
``--reuse`` evaluates the runs already in ``--workdir`` again. The janggu data are GPL-3.0: read from
../shared, never copied.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DNA = REPO.parent / "shared" / "datasets" / "dna"
RESULTS = REPO / "benchmarks" / "results"
DOC = REPO / "docs" / "interpretation_results.md"

#: Everything after this line in docs/interpretation_results.md is hand-written and kept on rewrites.
NOTES = "<!-- notes: written by hand, kept when benchmarks/motif_recovery.py rewrites the results above -->"
#: What each data set must recover: (label, JASPAR base IDs, family/name keywords for "another ... motif").
CHECKS: dict[str, list[tuple[str, tuple[str, ...], tuple[str, ...]]]] = {
    "Oct4_vs_MafK": [
        ("POU/SOX (Oct4)", ("MA0142",), ("POU", "SOX")),
        ("MAF (MafK)", ("MA0496",), ("MAF",)),
    ],
    "REST": [("REST", ("MA0138",), ())],
    "GABPA": [("GABPA", ("MA0062",), ())],
    "USF1": [("USF1", ("MA0093",), ())],
}
ENCODE = {
    "REST": "REST_GM12878_NRSF_HudsonAlpha_AC.seq.gz",
    "GABPA": "GABPA_GM12878_GABP_HudsonAlpha_AC.seq.gz",
    "USF1": "USF1_HepG2_USF-1_HudsonAlpha_AC.seq.gz",
}


def _is_hit(row: pd.Series, ids: tuple[str, ...], words: tuple[str, ...]) -> bool:
    """The match is one of ``ids`` or (for "another X motif") names/families a keyword."""
    if str(row["jaspar_id"]).split(".")[0] in ids:
        return True
    text = f"{row['jaspar_name']} {row['family']}".upper()
    return any(w in text for w in words)


def _experiment(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Experiment sections of the data set (defaults for everything else)."""
    common = {"train": {"progress_bar": False, "seed": args.seed}, "evaluate": {"baselines": [], "report": False, "plots": False}}
    if args.max_epochs:
        common["train"]["max_epochs"] = args.max_epochs
    if name == "Oct4_vs_MafK":
        d = DNA / "janggu_oct4_mafk"
        return {"data": {"type": "sequence", "path": [str(d / "sample.fa"), str(d / "sample2.fa")]}, **common}
    frame = pd.read_csv(DNA / "deepbind_encode_train" / ENCODE[name], sep="\t", dtype=str, keep_default_na=False)
    frame = frame.iloc[: args.max_positives]  # the strongest peaks (the files are ranked)
    path = workdir / f"{name}_top{len(frame)}.seq.gz"
    with gzip.open(path, "wt") as fh:
        frame.to_csv(fh, sep="\t", index=False)
    data = {"type": "sequence", "path": [str(path)], "target_columns": ["Bound"], "id_column": "EventID",
            "sequence": {"column": "seq", "negatives": "dinucleotide-shuffle", "seed": args.seed}}  # fmt: skip
    return {"data": data, **common}


def run_dataset(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import torch

    from biodl import Experiment
    from biodl.explain import filter_motifs, jaspar_motifs, motif_matches, saturation_mutagenesis
    from biodl.explain.plots import plot_mutation_map
    from biodl.explain.report import motif_occurrences
    from biodl.inference import load_data

    t0 = time.perf_counter()
    run = workdir / name
    sections = _experiment(name, args, workdir)
    timing = run / "benchmark_train_seconds.txt"
    if args.reuse and (run / "model").is_dir() and (run / "metrics.json").is_file():  # evaluate an earlier run again
        from biodl import load

        bundle = load(run)
        metrics = json.loads((run / "metrics.json").read_text())
        seconds = float(timing.read_text()) if timing.is_file() else float("nan")
    else:
        result = Experiment(**sections).fit(run)
        assert result.bundle is not None
        bundle, metrics = result.bundle, result.metrics
        seconds = time.perf_counter() - t0
        timing.write_text(f"{seconds:.1f}\n")
    cfg = bundle.data_config
    data = load_data(bundle, list(cfg.path), None, require_targets=True)
    splits = json.loads((workdir / name / "splits.json").read_text())
    test = np.sort(np.asarray(splits["test"], dtype=np.int64))
    X = np.asarray(bundle.modality.transform(data.X[test]), dtype=np.float32)
    assert data.targets is not None
    y = data.targets.y[test, 0]
    ids = np.asarray(data.ids)[test]
    motifs = filter_motifs(bundle, X)
    # JASPAR 2024 CORE vertebrates: every version compared, each matrix listed once with its best version (the
    # default), the latest version of each matrix ("non-redundant") and every version listed separately
    # ("redundant"; e.g. GABPA MA0062.1-.2 are CCGGAAG, MA0062.3-.4 CAGGAAG)
    every = jaspar_motifs(all_versions=True)
    full = {
        "best version": motif_matches(motifs, every, n_top=100),
        "latest": motif_matches(motifs, jaspar_motifs(), n_top=100, jaspar_versions="latest"),
        "all versions": motif_matches(motifs, every, n_top=100, jaspar_versions="all"),
    }
    all_matches = {k: v[v["rank"] <= 5] for k, v in full.items()}
    with torch.inference_mode():
        score = torch.cat([bundle.model(torch.from_numpy(X[i : i + 512])) for i in range(0, len(X), 512)])[:, 0].numpy()
    params = bundle.meta["model"]["params"]
    out: dict[str, Any] = {
        "dataset": name, "train_seconds": round(seconds, 1), "test_sequences": len(X),
        "model": {"name": bundle.meta["model"]["name"], "filters": params.get("filters"),
                  "filter_width": params.get("filter_width"), "parameters": bundle.meta["model"].get("trainable_parameters")},
        "filters_with_sites": int((motifs.n_sites > 0).sum()),
        "test_metrics": {k: metrics["test"].get(k) for k in ("auroc", "accuracy")},
        "epochs": metrics["training"]["epochs"], "checks": [],
    }  # fmt: skip
    classes = bundle.classes or ["0", "1"]
    for label, jids, words in CHECKS[name]:
        check: dict[str, Any] = {"label": label}
        hits = pd.DataFrame()
        matches = all_matches["best version"]
        for db_name, table in all_matches.items():
            found = table[[_is_hit(r, jids, words) for _, r in table.iterrows()]]
            own = found[found["jaspar_id"].str.split(".").str[0].isin(jids)]
            best = (own if len(own) else found).sort_values(["p_value", "rank"]).head(1)
            res: dict[str, Any] = {"recovered": bool(len(found)), "own_motif_recovered": bool(len(own))}
            if len(best):
                r = best.iloc[0]
                res.update(filter=r["filter"], jaspar_id=r["jaspar_id"], jaspar_name=r["jaspar_name"], rank=int(r["rank"]),
                           p_value=float(r["p_value"]),
                           filters_matching=list(dict.fromkeys(found.sort_values("p_value")["filter"])))  # fmt: skip
            # where the factor's own matrices rank at best when not in a top 5
            ranked = full[db_name][full[db_name]["jaspar_id"].str.split(".").str[0].isin(jids)]
            if len(ranked):
                r = ranked.sort_values(["rank", "p_value"]).iloc[0]
                res["own_best"] = {
                    "filter": r["filter"],
                    "jaspar_id": r["jaspar_id"],
                    "rank": int(r["rank"]),
                    "p_value": float(r["p_value"]),
                }
            check[db_name] = res
            if not len(hits) and len(found):  # occurrences: from the first database with a hit
                hits, matches = found, table
        # mutation maps: the bound test sequences scored highest for this factor
        if name == "Oct4_vs_MafK":  # output = P(classes[1]); sample2 = MafK peaks, sample = Oct4 peaks
            want_high = ("MAF" in label) == (classes[1] == "sample2")
            pool = np.flatnonzero(y == (1 if want_high else 0))
            order = pool[np.argsort(-score[pool] if want_high else score[pool])]
        else:
            pool = np.flatnonzero(y == 1)
            order = pool[np.argsort(-score[pool])]
        rows = hits.sort_values("p_value").drop_duplicates("filter")
        inside, maps, cover = 0, 0, []
        for j, i in enumerate(order[: args.maps]):
            # the sequence's occurrences of filters matching the motif (active at >= half their maximum)
            occs = motif_occurrences(bundle, X[i], motifs, matches, rows=rows, min_activation=0.5) if len(rows) else []
            if not occs:
                continue
            eff = saturation_mutagenesis(bundle, X[i], target=0)[0].numpy()
            # the strongest loss-of-function substitution: away from the class the sequence is scored for
            loss = -eff if score[i] >= 0 else eff
            peak = int(loss.max(0).argmax())
            covered = np.zeros(X.shape[-1], dtype=bool)
            for o in occs:
                covered[o.start : o.end] = True
            maps += 1
            inside += int(covered[peak])
            cover.append(float(covered.mean()))
            if j == 0:
                occ = next((o for o in occs if o.start <= peak < o.end), occs[0])
                L = X.shape[-1]
                c = (occ.start + occ.end) // 2
                start = max(0, min(L - 80, c - 40)) if L > 100 else 0
                # janggu's sequences are GPL-3.0: their maps (which show the sequence) stay out of the repository
                figdir = workdir if name == "Oct4_vs_MafK" else RESULTS
                fig = figdir / f"motif_recovery_{name}_{label.split()[0].replace('/', '_')}.png"
                title = f"{name} {ids[i]} ({classes[int(y[i])]}): {occ.filter} ~ {occ.match} at {occ.start}-{occ.end}"
                plot_mutation_map(
                    eff,
                    X[i],
                    path=fig,
                    start=start,
                    end=min(L, start + 80) if L > 100 else None,
                    highlight=(occ.start, occ.end),
                    title=title,
                )
                check.update(
                    map_sequence=str(ids[i]),
                    map_figure=str(fig.relative_to(REPO)) if fig.is_relative_to(REPO) else str(fig),
                    occurrence=[occ.start, occ.end],
                    occurrence_filter=occ.filter,
                    strongest_effect_at=peak,
                )
        check.update(occurrence_coverage=round(float(np.mean(cover)), 3) if cover else None)
        check.update(maps=maps, strongest_effect_inside=inside)
        out["checks"].append(check)
    best = all_matches["best version"]
    top = best[best["rank"] == 1].sort_values("p_value").head(8)
    out["top_filters"] = top[["filter", "jaspar_id", "jaspar_name", "p_value", "n_sites"]].to_dict("records")
    best.to_csv(RESULTS / f"motif_recovery_{name}_matches.tsv", sep="\t", index=False)
    all_matches["latest"].to_csv(RESULTS / f"motif_recovery_{name}_matches_latest.tsv", sep="\t", index=False)
    all_matches["all versions"].to_csv(RESULTS / f"motif_recovery_{name}_matches_all_versions.tsv", sep="\t", index=False)
    print(json.dumps(out, default=str), flush=True)
    return out


def _cell(res: dict[str, Any]) -> str:
    """``yes: filter_3 ~ MA0062.2 GABPA (rank 2, p=1e-06)`` or ``NO``; matches with p >= 0.01 are flagged weak."""
    if not res.get("recovered"):
        own = res.get("own_best")
        return f"NO (best: {own['jaspar_id']} at rank {own['rank']} of {own['filter']})" if own else "NO"
    weak = ", weak: p >= 0.01" if res["p_value"] >= 0.01 else ""
    return f"yes: {res['filter']} ~ {res['jaspar_id']} {res['jaspar_name']} (rank {res['rank']}, p={res['p_value']:.1e}{weak})"


def _filters(names: list[str], show: int = 5) -> str:
    """``3 (filter_2, filter_7, filter_1)``: how many, the best-matching first."""
    if not names:
        return "none"
    return f"{len(names)} ({', '.join(names[:show])}{', ...' if len(names) > show else ''})"


def _model_text(results: list[dict[str, Any]]) -> str:
    """``DeepBind, 128 filters of width 24`` (or the list of distinct models)."""
    kinds = []
    for r in results:
        m = r.get("model", {})
        name = {"deepbind": "DeepBind"}.get(str(m.get("name")), str(m.get("name")))
        text = f"{name}, {m.get('filters')} filters of width {m.get('filter_width')}"
        if text not in kinds:
            kinds.append(text)
    return "; ".join(kinds)


def markdown(results: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    dbs = ("best version", "latest", "all versions")
    lines = [
        "# Interpreting sequence models: motif recovery and mutation maps",
        "",
        f"Produced by `benchmarks/motif_recovery.py`: biodl's default sequence model ({_model_text(results)}) "
        "trained with default settings on each data set; the first convolution's filters turned into motifs from the "
        "run's test sequences (`biodl.explain.filter_motifs`) and compared with JASPAR 2024 CORE vertebrates by the "
        "in-process Tomtom-like comparison (`biodl.explain.motif_matches`, Pearson column similarity, top 5 matches "
        "per filter) three ways: every version of each matrix compared and each matrix (base ID) listed at most once "
        "per filter, with its best-matching version (**best version per matrix**, biodl's default, "
        '`jaspar_versions="best"`, `biodl motifs --jaspar-versions best`); the latest version of every matrix only '
        "(JASPAR's non-redundant set, `latest`); every version listed separately (the redundant set, `all`: the "
        "versions of one matrix can fill a top 5). A check passes when some filter's top 5 include the motif. "
        "Mutation maps: the strongest loss-of-function substitution (fast ISM) of the top-scoring bound test "
        "sequences, and whether it falls inside an occurrence of the matched motif (the best window of a matching "
        f"filter active at >= half its maximum). Settings: `{json.dumps(settings)}`.",
        "",
        "| data set | test ROC-AUC | motif | in a filter's top 5: best version per matrix (default) | latest versions | "
        "all versions | strongest ISM loss inside the motif |",
        "|---|---:|---|---|---|---|---|",
    ]
    for r in results:
        for c in r["checks"]:
            auc = r["test_metrics"].get("auroc")
            cov = f" (motif windows: {c['occurrence_coverage']:.0%} of the sequence)" if c.get("occurrence_coverage") else ""
            cells = " | ".join(_cell(c[d]) for d in dbs)
            lines.append(
                f"| {r['dataset']} | {auc:.3f} | {c['label']} | {cells} | "
                f"{c['strongest_effect_inside']} of {c['maps']} top-scoring bound sequences{cov} |"
            )
    lines += [
        "",
        "Filters whose top-5 matches include the motif (best version per matrix / latest / all versions; how many, "
        "the best-matching first), and the mutation maps drawn:",
        "",
    ]
    for r in results:
        for c in r["checks"]:
            fig = (
                f" — `{c['map_figure']}` ({c['map_sequence']}: occurrence {c['occurrence']} of "
                f"{c['occurrence_filter']}, strongest loss at {c['strongest_effect_at']})"
                if "map_figure" in c
                else ""
            )
            which = " / ".join(_filters(c[d].get("filters_matching", [])) for d in dbs)
            lines.append(f"- {r['dataset']}, {c['label']}: {which}{fig}")
    lines += ["", "Best rank-1 matches per data set (best version per matrix; filter: match, p-value):", ""]
    for r in results:
        best = "; ".join(f"{t['filter']}: {t['jaspar_name']} {t['jaspar_id']} ({t['p_value']:.1e})" for t in r["top_filters"][:6])
        lines.append(f"- {r['dataset']}: {best}")
    lines += ["", "Runs: " + "; ".join(
        f"{r['dataset']} {r['epochs']} epochs, {r['train_seconds']} s training, {r['test_sequences']} test sequences, "
        f"{r.get('filters_with_sites', '?')} of {r.get('model', {}).get('filters', '?')} filters with sites"
        for r in results
    ) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(CHECKS), choices=list(CHECKS))
    parser.add_argument("--max-positives", type=int, default=5000, help="ENCODE: train on the strongest N peaks")
    parser.add_argument("--max-epochs", type=int, default=None, help="override the default (100, early stopping)")
    parser.add_argument("--maps", type=int, default=10, help="mutation maps checked per motif")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="/tmp/biodl_motif_recovery")
    parser.add_argument("--reuse", action="store_true", help="evaluate the runs already in --workdir (no training)")
    args = parser.parse_args(argv)
    if not DNA.is_dir():
        print(f"data not found: {DNA}", file=sys.stderr)
        return 1
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = [run_dataset(name, args, workdir) for name in args.datasets]
    settings = {"max_positives": args.max_positives, "max_epochs": args.max_epochs or "default", "seed": args.seed,
                "maps": args.maps}  # fmt: skip
    (RESULTS / "motif_recovery.json").write_text(json.dumps({"settings": settings, "results": results}, indent=1, default=str))
    text = markdown(results, settings)
    (RESULTS / "motif_recovery.md").write_text(text)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    old = DOC.read_text() if DOC.is_file() else ""
    notes = old[old.index(NOTES) :] if NOTES in old else ""  # the hand-written part of the page is kept
    DOC.write_text(text + ("\n" + notes if notes else ""))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
