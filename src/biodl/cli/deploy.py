"""``biodl export`` and ``biodl serve``, and the ``--engine`` flag of ``biodl predict``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from biodl.cli.options import DATA_FLAGS, given

if TYPE_CHECKING:
    from biodl.bundle import Bundle
    from biodl.data.base import LoadedData
    from biodl.engine import Engine

ENGINES = ("auto", "torch", "onnx")


def add_engine_flag(parser: argparse.ArgumentParser) -> None:
    """``--engine {auto,torch,onnx}``."""
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="inference engine; auto: ONNX Runtime when its outputs match PyTorch (max |Δ| ≤ 1e-4), else PyTorch",
    )


def add_device_flags(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--precision`` of ``biodl predict`` / ``biodl evaluate``."""
    parser.add_argument(
        "--device",
        default="cpu",
        help="where the network runs: cpu (default), cuda, cuda:N, mps, or auto (CUDA when available); off the CPU "
        "PyTorch predicts (no ONNX Runtime) and large tables are read whole",
    )
    parser.add_argument(
        "--precision",
        default="32-true",
        choices=("32-true", "bf16-mixed", "16-mixed"),
        help="32-true (default), or autocast to bfloat16 / float16 (mixed precision, for GPUs)",
    )


def use_device(bundle: Bundle, args: argparse.Namespace) -> str:
    """Move the bundle's network to ``--device`` with ``--precision``; returns the device used."""
    device = bundle.to_device(getattr(args, "device", "cpu"), getattr(args, "precision", "32-true"))
    if device != "cpu" or bundle.autocast is not None:
        print(f"device: {device}, precision {args.precision}", flush=True)
    return device


def add_stream_flag(parser: argparse.ArgumentParser) -> None:
    """``--chunk-rows N``: stream large tables in chunks (``biodl predict`` / ``biodl embed``)."""
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=None,
        help="read, encode and write tables, image files/NPZ files and biodl stores N rows at a time (flat memory; the "
        "output appears under its name only when complete); default: stores always, other inputs over 64 MiB, in "
        "16384-row chunks",
    )


def predict_streamed(bundle: Bundle, paths: list[str], overrides: dict[str, Any], args: argparse.Namespace) -> int:
    """``biodl predict`` in chunks (:mod:`biodl.predict_stream`); the engine is parity-checked on the first chunk."""
    from biodl.engine import select_engine
    from biodl.export.parity import Sample
    from biodl.predict_stream import CHUNK_ROWS, Chunk, stream_predict

    engines: list[Engine] = []

    def first(chunk: Chunk) -> None:
        head = chunk.data.X[:256]
        choice = select_engine(bundle, args.engine, Sample(chunk.X_model[:256], head, "the input file", real=True))
        print(f"engine: {choice.engine.name} ({choice.reason})", flush=True)
        engines.append(choice.engine)

    out, rows, rate = stream_predict(
        bundle, paths, args.output, lambda X: engines[0].predict(X), overrides=overrides,
        chunk_rows=args.chunk_rows or CHUNK_ROWS, first=first, per_residue=bool(getattr(args, "per_residue", False)),
    )  # fmt: skip
    print(f"{rows} predictions written to {out} (streamed in chunks of {args.chunk_rows or CHUNK_ROWS} rows, {rate:.0f} rows/s)")
    return 0


def predict_engine(bundle: Bundle, data: LoadedData, name: str) -> Engine:
    """The engine for ``biodl predict``, parity-checked on the first rows of the input file; prints the choice."""
    from biodl.engine import select_engine
    from biodl.export.parity import Sample

    head = data.X[:256]
    choice = select_engine(bundle, name, Sample(bundle.modality.transform(head), head, "the input file", real=True))
    print(f"engine: {choice.engine.name} ({choice.reason})")
    return choice.engine


def _data_flags(parser: argparse.ArgumentParser, title: str) -> None:
    group = parser.add_argument_group(title)
    for flag in DATA_FLAGS:
        flag.add(group)


def add_parsers(sub: Any) -> None:
    """Register the ``export`` and ``serve`` sub-commands."""
    ex = sub.add_parser(
        "export",
        help="export a saved model to ONNX or TorchScript with a parity check",
        description="Export a saved model (network + task head) to ONNX or TorchScript. The preprocessing and the "
        "parity report are written next to the file as FILE.json.",
    )
    ex.add_argument(
        "--model-path",
        required=True,
        help="run directory, its model/ folder, or zoo:NAME / hf://OWNER/REPO / http(s)://BASE/NAME",
    )
    ex.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="export format (default onnx)")
    ex.add_argument("--output", required=True, help="file to write, e.g. model.onnx")
    ex.add_argument("--parity-rows", type=int, default=256, help="rows for the parity check (default 256)")
    ex.add_argument("--tolerance", type=float, default=1e-4, help="largest accepted |difference| to PyTorch (default 1e-4)")
    ex.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")
    _data_flags(ex, "parity data (default: the model's training data if still present, else synthetic inputs)")

    sv = sub.add_parser(
        "serve",
        help="serve a saved model over HTTP (REST API + web page)",
        description="Serve a saved model: GET / (web page), /health, /model, /openapi.json; POST /predict, /explain.",
    )
    sv.add_argument(
        "--model-path",
        required=True,
        help="run directory, its model/ folder, or zoo:NAME / hf://OWNER/REPO / http(s)://BASE/NAME",
    )
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    add_engine_flag(sv)
    sv.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024, help="largest request body (default 8 MiB)")
    sv.add_argument("--max-batch", type=int, default=256, help="most inputs per request and rows per model call (default 256)")
    sv.add_argument(
        "--workers", type=int, default=1, help="worker processes, each with its own engine and model copy (default 1)"
    )
    sv.add_argument("--threads", type=int, default=None, help="CPU threads per worker (default: the cores divided by --workers)")
    sv.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))


def _parity_data(args: argparse.Namespace) -> tuple[list[str] | None, dict[str, Any]]:
    over = {k.split(".", 1)[1]: v for k, v in given(args, DATA_FLAGS).items()}
    paths = over.pop("path", None)
    return (list(paths) if paths else None), over


def cmd_export(args: argparse.Namespace) -> int:
    """Export with a parity check; prints the report."""
    from biodl.bundle import load
    from biodl.errors import BiodlError
    from biodl.export import export_bundle

    if args.parity_rows < 1:
        raise BiodlError("--parity-rows must be at least 1")
    bundle = load(args.model_path)
    paths, over = _parity_data(args)
    result = export_bundle(
        bundle,
        args.format,
        args.output,
        paths=paths,
        overrides=over,
        rows=args.parity_rows,
        tolerance=args.tolerance,
        opset=args.opset,
    )
    size = result.path.stat().st_size
    print(f"exported {args.format} model to {result.path} ({size / 1024:.1f} KiB, dynamic batch axis)")
    print(result.parity.summary())
    for note in result.parity.notes:
        print(f"note: {note}")
    print(f"preprocessing, outputs and parity report: {result.manifest_path}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Load the model once, pick the engine, bind the port, serve until interrupted."""
    from biodl.errors import BiodlError
    from biodl.serve.server import ServeSpec, bind, build_app, run, run_workers, url_of, worker_threads

    if args.max_body_bytes < 1 or args.max_batch < 1:
        raise BiodlError("--max-body-bytes and --max-batch must be positive")
    if args.workers < 1 or (args.threads is not None and args.threads < 1):
        raise BiodlError("--workers and --threads must be at least 1")
    spec = ServeSpec(
        str(args.model_path), args.engine, args.max_body_bytes, args.max_batch, worker_threads(args.workers, args.threads)
    )
    sock = bind(args.host, args.port)  # first, so a port in use fails at once, before anything is loaded
    from biodl.model_sources import is_model_name

    name = str(args.model_path) if is_model_name(args.model_path) else Path(args.model_path).resolve().name
    try:
        if args.workers > 1:
            from biodl.bundle import load

            load(args.model_path)  # a broken bundle fails here, once, not in every worker
        else:
            app, choice = build_app(spec)
            print(f"engine: {choice.engine.name} ({choice.reason})", flush=True)
    except BaseException:
        sock.close()
        raise
    procs = f"{args.workers} worker{'s' if args.workers > 1 else ''} × {spec.threads} thread{'s' if spec.threads != 1 else ''}"
    print(f"serving {name} on {url_of(sock)} ({procs}; web page at /, API schema at /openapi.json); Ctrl-C stops", flush=True)
    if args.workers > 1:
        run_workers(spec, sock, args.workers, log_level=args.log_level)
    else:
        run(app, sock, log_level=args.log_level)
    return 0


#: Sub-command name → handler, merged into ``biodl.cli.main.COMMANDS``.
COMMANDS = {"export": cmd_export, "serve": cmd_serve}
