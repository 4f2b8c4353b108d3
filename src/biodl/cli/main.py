"""``biodl`` entry point: train, evaluate, predict, demo."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from biodl._version import __version__
from biodl.cli import deploy
from biodl.cli.options import DATA_FLAGS, SPLIT_FLAGS, TRAIN_FLAGS, Flag, given
from biodl.errors import BiodlError


def _add_flags(p: argparse.ArgumentParser, title: str, flags: tuple[Flag, ...]) -> None:
    group = p.add_argument_group(title)
    for f in flags:
        f.add(group)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog="biodl", description="Deep learning for life-science data.")
    parser.add_argument("--version", action="version", version=f"biodl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tr = sub.add_parser("train", help="train, evaluate and save a model", description="Train, evaluate and save a model.")
    tr.add_argument("--output-dir", help="run directory (metrics.json, model/, report.html)")
    tr.add_argument("--config", help="experiment YAML (CLI flags override it)")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key, e.g. train.lr=0.01")
    tr.add_argument("--print-config", action="store_true", help="print the fully resolved config and exit")
    tr.add_argument(
        "--resume",
        action="store_true",
        help="continue from OUTPUT_DIR/checkpoints/last.ckpt (a finished run keeps it unless --keep-checkpoints none)",
    )
    tr.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the finished run in OUTPUT_DIR; the outputs it wrote there are removed first (default: refuse)",
    )
    _add_flags(tr, "data", DATA_FLAGS + SPLIT_FLAGS)
    _add_flags(tr, "model and training", TRAIN_FLAGS)

    ev = sub.add_parser("evaluate", help="metrics of a saved model on a labelled file")
    ev.add_argument(
        "--model-path",
        required=True,
        help="run directory, its model/ folder, or zoo:NAME / hf://OWNER/REPO / http(s)://BASE/NAME",
    )
    ev.add_argument("--output", help="write the metrics as JSON here")
    deploy.add_device_flags(ev)
    _add_flags(ev, "data (default: as the model was trained)", DATA_FLAGS)

    pr = sub.add_parser("predict", help="predictions of a saved model for a file")
    pr.add_argument(
        "--model-path",
        required=True,
        help="run directory, its model/ folder, or zoo:NAME / hf://OWNER/REPO / http(s)://BASE/NAME",
    )
    pr.add_argument(
        "--output",
        required=True,
        help="predictions file (.csv, .tsv, .parquet, .h5; .h5ad: the input AnnData with obs['biodl_pred'], obsm['biodl_proba'])",
    )
    pr.add_argument(
        "--probability-maps",
        action="store_true",
        help="segmentation: also write float32 TIFF probability maps to <output stem>_probabilities/ "
        "(label masks are always written as PNG to <output stem>_masks/)",
    )
    pr.add_argument(
        "--per-residue",
        action="store_true",
        help="per-position models: a long table, one row per position (id, position, residue, predicted, prob_<class>)",
    )
    deploy.add_engine_flag(pr)
    deploy.add_device_flags(pr)
    deploy.add_stream_flag(pr)
    _add_flags(pr, "data (default: as the model was trained)", DATA_FLAGS)

    from biodl.cli import data as data_cli
    from biodl.cli import tune as tune_cli

    data_cli.add_parser(sub)
    tune_cli.add_parser(sub)
    from biodl.cli import embed as embed_cli

    embed_cli.add_parser(sub)

    de = sub.add_parser("demo", help="train, evaluate and report on the bundled example data")
    de.add_argument("--output-dir", default="runs/demo", help="run directory (default runs/demo)")
    de.add_argument("--max-epochs", type=int, default=None, help="override the demo's epochs")
    deploy.add_parsers(sub)
    from biodl.cli import explain as explain_cli

    explain_cli.add_parsers(sub)
    from biodl.cli import zoo as zoo_cli

    zoo_cli.add_parser(sub)
    return parser


def _train_config(args: argparse.Namespace) -> Any:
    from biodl.config import ExperimentConfig, apply_overrides, load_yaml, set_nested

    raw: dict[str, Any] = load_yaml(args.config) if args.config else {}
    for key, value in given(args, DATA_FLAGS + SPLIT_FLAGS + TRAIN_FLAGS).items():
        set_nested(raw, key.split("."), value)
    apply_overrides(raw, args.set)
    return ExperimentConfig.from_dict(raw, source=args.config or "command line")


def cmd_train(args: argparse.Namespace) -> int:
    cfg = _train_config(args)
    if args.print_config:
        sys.stdout.write(cfg.to_yaml())
        return 0
    if not args.output_dir:
        raise BiodlError("--output-dir is required to train")
    from biodl.experiment import Experiment
    from biodl.training.fit import is_rank_zero

    result = Experiment(cfg).fit(args.output_dir, resume=args.resume, overwrite=args.overwrite)
    if is_rank_zero():
        print(f"run directory: {Path(result.output_dir).resolve()}")
    return 0


def _data_overrides(args: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    over = {k.split(".", 1)[1]: v for k, v in given(args, DATA_FLAGS).items()}
    paths = over.pop("path", None)
    if not paths:
        raise BiodlError("--data-path is required")
    return list(paths), over


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from biodl.bundle import load
    from biodl.experiment.reporting import print_metrics_table
    from biodl.inference import evaluate, load_data
    from biodl.io_utils import atomic_write_text

    bundle = load(args.model_path)
    deploy.use_device(bundle, args)
    paths, over = _data_overrides(args)
    data = load_data(bundle, paths, over, require_targets=True)
    metrics = evaluate(bundle, data)
    print_metrics_table({"test": metrics}, title=f"evaluation on {', '.join(Path(p).name for p in paths)}")
    _refit_note(bundle.meta)
    if args.output:
        doc = {"model_path": str(args.model_path), "data_path": paths, "metrics": metrics}
        atomic_write_text(Path(args.output), json.dumps(doc, indent=1, allow_nan=False))
        print(f"metrics written to {args.output}")
    return 0


def _refit_note(meta: dict[str, Any]) -> None:
    """Say so when a model was trained again on its run's test rows (``train.refit``)."""
    refit = meta.get("refit")
    if isinstance(refit, dict) and refit.get("rows"):
        print(f"note: this model learnt from {refit['rows']} rows of its run, the test rows included (train.refit): on "
              "that run's data its scores are not held out; model_heldout/ of the run is the measured model")  # fmt: skip


def cmd_predict(args: argparse.Namespace) -> int:
    from biodl.bundle import load
    from biodl.inference import load_data, predict_frame, write_table

    bundle = load(args.model_path)
    _refit_note(bundle.meta)
    on_cpu = deploy.use_device(bundle, args) == "cpu" and bundle.autocast is None
    paths, over = _data_overrides(args)
    if args.per_residue and bundle.kind != "positions":
        from biodl.errors import BiodlError

        raise BiodlError("--per-residue is for per-position models (trained with --per-position)")
    if paths and on_cpu and not args.probability_maps:
        from biodl.predict_stream import should_stream

        if should_stream(bundle, list(paths), args.output, args.chunk_rows):
            return deploy.predict_streamed(bundle, list(paths), over, args)
    data = load_data(bundle, paths, over, require_targets=False)
    engine = deploy.predict_engine(bundle, data, args.engine) if on_cpu else None  # GPU / autocast: the bundle's network
    frame, raw = predict_frame(bundle, data, engine)
    if bundle.kind == "segmentation":
        from biodl.inference import write_masks, write_probability_maps

        frame = write_masks(bundle, data, raw, frame, args.output)
        if args.probability_maps:
            frame = write_probability_maps(bundle, data, raw, frame, args.output)
    elif args.per_residue:
        from biodl.inference import per_position_frame

        frame = per_position_frame(bundle, data, raw)
    if args.probability_maps and bundle.kind != "segmentation":
        from biodl.errors import BiodlError

        raise BiodlError("--probability-maps is for segmentation models; the table already holds the class probabilities")
    if Path(args.output).suffix.lower() == ".h5ad":
        from biodl.data.h5ad import write_h5ad_outputs
        from biodl.inference import h5ad_outputs

        if len(paths) != 1 or Path(paths[0]).suffix.lower() != ".h5ad":
            raise BiodlError("--output FILE.h5ad needs one .h5ad input (--data-path CELLS.h5ad)")
        obs, obsm, uns = h5ad_outputs(bundle, raw, frame)
        backed = bool(bundle.modality.cfg.h5ad_backed)
        out = write_h5ad_outputs(args.output, paths[0], obs=obs, obsm=obsm, uns=uns, backed=backed)
    else:
        out = write_table(frame, args.output)
    print(f"{len(frame)} predictions written to {out}")
    if callable(getattr(bundle.model, "instance_outputs", None)):  # multiple-instance models: weights per instance
        from biodl.explain.bags import instance_table

        inst = write_table(instance_table(bundle, data), out.with_name(f"{out.stem}_instances{out.suffix}"))
        print(f"instance weights and scores written to {inst}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from biodl.demo import run_demo

    run_demo(Path(args.output_dir), max_epochs=args.max_epochs)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from biodl.cli.data import cmd_data as run

    return run(args)


def cmd_tune(args: argparse.Namespace) -> int:
    from biodl.cli.tune import cmd_tune as run

    return run(args)


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "demo": cmd_demo, "data": cmd_data}
COMMANDS.update(deploy.COMMANDS)
COMMANDS["tune"] = cmd_tune


def cmd_embed(args: argparse.Namespace) -> int:
    from biodl.cli.embed import cmd_embed as run

    return run(args)


COMMANDS["embed"] = cmd_embed


def _explain_commands() -> dict[str, Any]:
    from biodl.cli import explain as explain_cli

    return dict(explain_cli.COMMANDS)


COMMANDS.update(_explain_commands())


def cmd_zoo(args: argparse.Namespace) -> int:
    from biodl.cli.zoo import cmd_zoo as run

    return run(args)


COMMANDS["zoo"] = cmd_zoo


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line and return 2 (tracebacks with ``--debug``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("BIODL_DEBUG") == "1"
    try:
        return COMMANDS[args.command](args)
    except BiodlError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
