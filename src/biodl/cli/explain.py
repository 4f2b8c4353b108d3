"""``biodl explain``, ``biodl variants`` and ``biodl motifs``: interpreting sequence models.

* ``explain``: per-sequence attributions (``ism`` mutation maps, ``saliency``, ``ixg``, ``ig``,
  ``deeplift``) → ``OUT/attributions.npy``, ``OUT/explain.npz`` and one figure per sequence;
* ``variants``: reference vs alternative allele scores of a VCF's variants in their genomic
  windows → TSV/CSV/Parquet;
* ``motifs``: first-layer filters as motifs → ``OUT/motifs.meme``, logos and
  ``OUT/motif_matches.tsv`` (top JASPAR 2024 matches per filter).

Heavy modules (torch, captum, matplotlib) are imported when a command runs.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from biodl.cli.options import DATA_FLAGS, SEQUENCE_FLAGS, Flag, given
from biodl.errors import ConfigError

__all__ = ["COMMANDS", "add_parsers"]

EXPLAIN_METHODS = ("ism", "saliency", "ixg", "ig", "deeplift")
#: Methods of image models (``biodl.explain.image``); saliency and ig work for both.
IMAGE_METHODS = ("saliency", "ig", "occlusion", "gradcam", "lime")


#: Data options of these commands: how the sequence file is read (default: as the model was trained).
READ_FLAGS: tuple[Flag, ...] = tuple(f for f in DATA_FLAGS if f.flag == "--id-column") + tuple(
    f for f in SEQUENCE_FLAGS if f.flag not in ("--negatives", "--negatives-ratio", "--kmer-k")
)


def _data_group(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("data (default: as the model was trained)")
    for f in READ_FLAGS:
        f.add(group)


def add_parsers(sub: Any) -> None:
    """Register ``explain``, ``variants`` and ``motifs`` on the sub-command parsers ``sub``."""
    ex = sub.add_parser(
        "explain",
        help="attributions of a sequence model: mutation maps (ISM), saliency, input x gradient, IG, DeepLIFT",
        description="Explain a model's predictions for the sequences, images or molecules of a file "
        "(molecules: per-atom scores and drawings; Grad-CAM for chemception).",
    )
    ex.add_argument(
        "--model-path",
        required=True,
        help="run directory, its model/ folder, or zoo:NAME / hf://OWNER/REPO / http(s)://BASE/NAME",
    )
    ex.add_argument("--data-path", required=True, nargs="+", help="sequence file(s): FASTA, sequence table, ...")
    ex.add_argument(
        "--method",
        choices=tuple(dict.fromkeys(EXPLAIN_METHODS + IMAGE_METHODS + ("attention",))),
        default=None,
        help="attribution method (sequence models: default ism; image models: saliency, ig, occlusion, gradcam, lime; "
        "default gradcam; multiple-instance models: attention, their instance weights; multi-input models (cpg): "
        "ixg (default), saliency, ig, per input)",
    )
    ex.add_argument("--output-dir", required=True, help="folder for attributions.npy, explain.npz and figures/")
    ex.add_argument("--target", help="output to explain: class, task name or index (default: every output)")
    ex.add_argument("--max-sequences", type=int, default=100, help="explain at most this many sequences (default 100)")
    ex.add_argument("--plots", type=int, default=10, help="draw figures for this many sequences (default 10)")
    ex.add_argument("--format", nargs="+", choices=("png", "svg"), default=["png", "svg"], help="figure formats (png svg)")
    ex.add_argument("--n-shuffles", type=int, default=20, help="deeplift: dinucleotide-shuffled references per sequence")
    ex.add_argument("--batch-size", type=int, default=256, help="sequences (attributions) or mutants (ism) per batch")
    ex.add_argument("--no-fast", action="store_true", help="ism: always score every mutant with the whole model")
    ex.add_argument(
        "--position",
        type=int,
        help="per-position models: explain the label of this position (1-based): attributions of every residue "
        "(methods saliency, ixg, ig; default ig)",
    )
    _data_group(ex)

    va = sub.add_parser(
        "variants",
        help="score SNVs and indels: reference vs alternative allele predictions",
        description="Score the variants of a VCF (or table) with a sequence model in windows of a genome FASTA.",
    )
    va.add_argument(
        "--model-path",
        required=True,
        help="run directory, its model/ folder, or zoo:NAME / hf://OWNER/REPO / http(s)://BASE/NAME",
    )
    va.add_argument("--fasta", required=True, help="genome FASTA (indexed with pyfaidx on first use)")
    va.add_argument("--vcf", required=True, help="variants: VCF (plain or .gz) or CSV/TSV with chrom, pos, ref, alt")
    va.add_argument("--output", required=True, help="scores table (.tsv, .csv or .parquet)")
    va.add_argument("--rc-average", action="store_true", help="average the predictions of both strands")
    va.add_argument("--on-error", choices=("report", "raise"), default="report",
                    help="REF != genome, unknown contigs, positions past contig ends: report in 'status' or fail")  # fmt: skip
    va.add_argument("--window-edge", choices=("pad", "skip"), default="pad",
                    help="windows running past a contig end: pad with N or skip (reported)")  # fmt: skip
    va.add_argument("--batch-size", type=int, default=256, help="windows per forward pass")

    mo = sub.add_parser(
        "motifs",
        help="convolution filters as motifs (MEME, logos) with their best JASPAR 2024 matches",
        description="Align each filter's top-activating subsequences into a motif and compare it with JASPAR.",
    )
    mo.add_argument(
        "--model-path",
        required=True,
        help="run directory, its model/ folder, or zoo:NAME / hf://OWNER/REPO / http(s)://BASE/NAME",
    )
    mo.add_argument("--data-path", required=True, nargs="+", help="sequence file(s) scanned for filter activations")
    mo.add_argument("--output-dir", required=True, help="folder for motifs.meme, motif_matches.tsv and logos/")
    mo.add_argument("--layer", help="convolution layer name (default: the first Conv1d)")
    mo.add_argument("--top", type=int, default=5, help="JASPAR matches per filter (default 5)")
    mo.add_argument("--threshold", type=float, default=0.5, help="sites reach this fraction of the filter's maximum (0.5)")
    mo.add_argument("--max-sites", type=int, default=1000, help="at most this many sites per filter")
    mo.add_argument("--max-sequences", type=int, default=20000, help="scan at most this many sequences")
    mo.add_argument("--collection", default="CORE", help="JASPAR collection (default CORE)")
    mo.add_argument("--tax-group", default="vertebrates", help="JASPAR taxonomic group, or 'all' (default vertebrates)")
    mo.add_argument("--release", default="JASPAR2024", help="JASPAR release shipped with pyjaspar (default JASPAR2024)")
    mo.add_argument("--jaspar-versions", choices=("best", "latest", "all"), default="best",
                    help="JASPAR matrix versions: best = compare every version, list each matrix once with its best "
                         "version (default); latest = latest versions only; all = list every version")  # fmt: skip
    _data_group(mo)


def _load_sequences(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The bundle, its one-hot inputs ``(N, A, L)`` (at most ``--max-sequences``) and their ids."""
    import numpy as np

    from biodl.bundle import load
    from biodl.inference import load_data

    bundle = load(args.model_path)
    if bundle.modality.name != "sequence":
        raise ConfigError(f"{args.model_path}: a {bundle.modality.name} model; these commands explain sequence models")
    over = {k.split(".", 1)[1]: v for k, v in given(args, READ_FLAGS).items()}
    over.pop("path", None)
    data = load_data(bundle, list(args.data_path), over, require_targets=False)
    n = min(len(data), args.max_sequences) if args.max_sequences else len(data)
    X = np.asarray(bundle.modality.transform(data.X[:n]), dtype=np.float32)
    return bundle, X, np.asarray(data.ids)[:n]


def _target_index(bundle: Any, target: str | None) -> int | None:
    if target is None:
        return None
    names = list(bundle.classes or []) if bundle.kind == "multiclass" else list(bundle.target_names)
    if bundle.kind == "binary" and bundle.classes and target in bundle.classes:
        return 0
    if target in names:
        return names.index(target)
    if re.fullmatch(r"-?\d+", target):
        return int(target)
    raise ConfigError(f"--target {target!r}: not an output of the model; outputs: {names}")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60]


def cmd_explain(args: argparse.Namespace) -> int:
    """Run ``biodl explain``."""
    import numpy as np
    import torch

    from biodl.explain.image import bundle_data_type, cmd_explain_images

    if bundle_data_type(args.model_path) == "image":
        return cmd_explain_images(args)
    if bundle_data_type(args.model_path) in ("cpg", "multi"):
        from biodl.explain.multi_input import cmd_explain_multi_input

        return cmd_explain_multi_input(args)
    if getattr(args, "position", None) is not None:
        return _explain_position(args)
    if bundle_data_type(args.model_path) == "bags":
        from biodl.explain.bags import cmd_explain_bags

        return cmd_explain_bags(args)
    if bundle_data_type(args.model_path) == "volume":
        from biodl.explain.volume import cmd_explain_volumes

        return cmd_explain_volumes(args)
    if bundle_data_type(args.model_path) == "molecule":
        from biodl.explain.molecule import cmd_explain_molecules

        return cmd_explain_molecules(args)
    args.method = args.method or "ism"
    if args.method not in EXPLAIN_METHODS:
        raise ConfigError(f"--method {args.method}: sequence models take {', '.join(EXPLAIN_METHODS)}")

    from biodl.explain import METHODS, DeepLiftShap, saturation_mutagenesis
    from biodl.explain.plots import plot_attribution_logo, plot_mutation_map

    bundle, X, ids = _load_sequences(args)
    out = Path(args.output_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    target = _target_index(bundle, args.target)
    n_out = int(bundle.model.num_outputs)
    targets = [target] if target is not None else list(range(n_out))
    if args.method == "ism":
        res = saturation_mutagenesis(bundle, X, batch_size=max(args.batch_size, 1), fast=not args.no_fast, raw_outputs=True)
        attr = res.effects[:, targets].numpy()  # (N, T, A, L)
        print(f"ISM of {len(X)} sequences ({'fast' if res.fast else 'plain'} mode)")
    else:
        cls = METHODS[args.method]
        explainer = cls(bundle, batch_size=max(1, args.batch_size))
        per: list[torch.Tensor] = []
        for t in targets:
            if isinstance(explainer, DeepLiftShap):
                per.append(explainer.attribute(X, t, n_shuffles=args.n_shuffles))
            else:
                per.append(explainer.attribute(X, t))
        attr = torch.stack(per, 1).numpy()
    names = list(bundle.classes or []) if bundle.kind == "multiclass" else list(bundle.target_names)
    tnames = [names[t] if t < len(names) else str(t) for t in targets]
    saved = attr[:, 0] if len(targets) == 1 else attr
    np.save(out / "attributions.npy", saved.astype(np.float32))
    np.savez_compressed(
        out / "explain.npz", attributions=saved.astype(np.float32), sequences=X.astype(np.uint8), ids=ids.astype(str),
        targets=np.asarray(tnames), method=np.asarray(args.method),
    )  # fmt: skip
    alphabet = str(getattr(bundle.modality.alphabet, "symbols", "ACGT"))
    n_fig = 0
    for i in range(min(args.plots, len(X))):
        for k, tname in enumerate(tnames):
            stem = out / "figures" / f"{i:04d}_{_safe(str(ids[i]))}" if len(tnames) == 1 else out / "figures" / (
                f"{i:04d}_{_safe(str(ids[i]))}_{_safe(tname)}")  # fmt: skip
            title = f"{ids[i]} ({tname}, {args.method})"
            for fmt in args.format:
                if args.method == "ism":
                    plot_mutation_map(attr[i, k], X[i], path=stem.with_suffix(f".{fmt}"), title=title, alphabet=alphabet)
                else:
                    plot_attribution_logo(attr[i, k], X[i], path=stem.with_suffix(f".{fmt}"), title=title, alphabet=alphabet)
                n_fig += 1
    print(f"{args.method} attributions of {len(X)} sequence(s) for {', '.join(tnames)} written to {out / 'attributions.npy'} "
          f"and {out / 'explain.npz'}; {n_fig} figure(s) in {out / 'figures'}")  # fmt: skip
    return 0


def _explain_position(args: argparse.Namespace) -> int:
    """``biodl explain --position I``: per-residue attributions of the label of position ``I`` (1-based)."""
    import numpy as np
    import torch

    from biodl.explain import METHODS
    from biodl.explain.plots import plot_attribution_logo
    from biodl.explain.positions import PositionOutput, residue_attributions

    args.method = args.method or "ig"
    if args.method not in ("saliency", "ixg", "ig"):
        raise ConfigError(f"--method {args.method}: per-position explanations take saliency, ixg or ig")
    bundle, X, ids = _load_sequences(args)
    if bundle.kind != "positions":
        raise ConfigError(f"{args.model_path}: --position is for per-position models (trained with --per-position)")
    from biodl.data.positions import sequence_lengths

    pos = int(args.position) - 1
    lengths = sequence_lengths(X)
    keep = np.flatnonzero(lengths > pos)
    if pos < 0 or not len(keep):
        raise ConfigError(f"--position {args.position}: no sequence has that many positions (longest: {int(lengths.max())})")
    if len(keep) < len(X):
        print(f"{len(X) - len(keep)} sequence(s) shorter than {args.position} positions skipped")
    X, ids = X[keep], ids[keep]
    classes = list(bundle.classes or [])
    if args.target is not None and args.target not in classes:
        raise ConfigError(f"--target {args.target!r}: choose one of the classes {classes}")
    targets = [classes.index(args.target)] if args.target is not None else list(range(len(classes)))
    net = PositionOutput(bundle.model, pos, X.shape[-1])
    explainer = METHODS[args.method](net, batch_size=max(1, args.batch_size))
    attr = torch.stack([explainer.attribute(X, t) for t in targets], 1)  # (N, T, A, L)
    per_residue = residue_attributions(attr.flatten(0, 1)).reshape(len(X), len(targets), -1).numpy()
    out = Path(args.output_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    tnames = [classes[t] for t in targets]
    saved = attr[:, 0].numpy() if len(targets) == 1 else attr.numpy()
    size = int(getattr(bundle.modality.alphabet, "size", X.shape[1]))  # residue channels (then any feature tracks)
    np.save(out / "attributions.npy", saved.astype(np.float32))
    np.savez_compressed(
        out / "explain.npz", attributions=saved.astype(np.float32), residue_attributions=per_residue.astype(np.float32),
        sequences=X[:, :size].astype(np.uint8), ids=ids.astype(str), targets=np.asarray(tnames), method=np.asarray(args.method),
        position=np.asarray(args.position), lengths=sequence_lengths(X),
    )  # fmt: skip
    alphabet = str(getattr(bundle.modality.alphabet, "symbols", ""))
    n_fig = 0
    for i in range(min(args.plots, len(X))):
        n = int(sequence_lengths(X[i : i + 1])[0])
        for k, tname in enumerate(tnames):
            stem = out / "figures" / f"{i:04d}_{_safe(str(ids[i]))}_pos{args.position}_{_safe(tname)}"
            title = f"{ids[i]}: residues driving {tname!r} at position {args.position} ({args.method})"
            for fmt in args.format:
                a = attr[i, k].numpy()[:, :n]
                plot_attribution_logo(a[:size], X[i][:size, :n], path=stem.with_suffix(f".{fmt}"), title=title, alphabet=alphabet)
                n_fig += 1
    print(
        f"{args.method} attributions of position {args.position} ({', '.join(tnames)}) for {len(X)} sequence(s) written "
        f"to {out / 'attributions.npy'} and {out / 'explain.npz'} (residue_attributions: (N, T, L)); {n_fig} figure(s)"
    )
    return 0


def cmd_variants(args: argparse.Namespace) -> int:
    """Run ``biodl variants``."""
    from biodl.bundle import load
    from biodl.explain.variant_effects import stream_variant_effects

    bundle = load(args.model_path)
    if bundle.modality.name != "sequence":
        raise ConfigError(f"{args.model_path}: a {bundle.modality.name} model; variant effects need a DNA sequence model")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # written chunk by chunk to <output>.partial, renamed when complete
        path, s, _ = stream_variant_effects(bundle, args.fasta, args.vcf, args.output, rc_average=args.rc_average,
                                            on_error=args.on_error, window_edge=args.window_edge,
                                            batch_size=max(1, args.batch_size))  # fmt: skip
    extra = ", ".join(f"{k}: {v}" for k, v in s.items() if k not in ("records", "variants", "scored") and v)
    print(f"{s['scored']} of {s['variants']} variant(s) ({s['records']} record(s)) scored; {extra or 'no problems'}")
    print(f"written to {path}")
    return 0


def cmd_motifs(args: argparse.Namespace) -> int:
    """Run ``biodl motifs``."""
    from biodl.explain.filter_motifs import filter_motifs, motif_matches, write_meme
    from biodl.explain.plots import plot_filter_logos, plot_motif_logo
    from biodl.explain.tomtom import jaspar_motifs

    bundle, X, _ = _load_sequences(args)
    if X.shape[1] != 4:
        raise ConfigError("motif matching against JASPAR needs a DNA (or RNA) model")
    out = Path(args.output_dir)
    (out / "logos").mkdir(parents=True, exist_ok=True)
    motifs = filter_motifs(bundle, X, args.layer, threshold=args.threshold, max_sites=args.max_sites)
    write_meme(motifs, out / "motifs.meme")
    tax_group = None if args.tax_group == "all" else args.tax_group
    db = jaspar_motifs(args.collection, tax_group, args.release, all_versions=args.jaspar_versions != "latest")
    matches = motif_matches(motifs, db, n_top=args.top, jaspar_versions=args.jaspar_versions)
    main_cols = ["filter", "rank", "jaspar_id", "jaspar_name", "score", "p_value"]
    matches[main_cols].to_csv(out / "motif_matches.tsv", sep="\t", index=False)
    matches.to_csv(out / "motif_matches_details.tsv", sep="\t", index=False)
    for i, name in enumerate(motifs.names):
        if motifs.n_sites[i] > 0:
            plot_motif_logo(motifs.ppm[i], path=out / "logos" / f"{name}.png", title=f"{name} ({int(motifs.n_sites[i])} sites)")
    plot_filter_logos(motifs, matches=matches, path=out / "filter_logos.png")
    found = int((motifs.n_sites > 0).sum())
    print(f"{found} of {len(motifs.names)} filters of {motifs.layer!r} have sites in {len(X)} sequence(s); "
          f"motifs: {out / 'motifs.meme'}; matches: {out / 'motif_matches.tsv'}; logos: {out / 'logos'}")  # fmt: skip
    return 0


COMMANDS = {"explain": cmd_explain, "variants": cmd_variants, "motifs": cmd_motifs}
