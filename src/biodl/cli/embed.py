"""``biodl embed``: learned representations of a saved model for a file.

Auto-encoders give their code (:meth:`encode`); other networks their penultimate layer
(:meth:`features`: the MLP's last hidden layer, the D-MPNN's molecule vector). The output table
has an ``id`` column and ``emb_0 … emb_{D-1}``; use it as input features of another model or for
visualisation. Beside the table, ``<output stem>_pca.png`` shows the embeddings in 2-D (PCA), coloured
by the file's labels when it has the model's target columns; ``<output stem>_umap.png`` too when
umap-learn is installed (an optional package).

Example
-------
``biodl embed --model-path runs/pbmc_ae --data-path cells.csv --output embeddings.csv``
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from biodl.cli.options import DATA_FLAGS, Flag, given
from biodl.errors import BiodlError, ConfigError

__all__ = ["add_parser", "cmd_embed", "embed_arrays"]


def add_parser(sub: Any) -> None:
    """Register ``biodl embed`` on the sub-command parsers ``sub``."""
    p = sub.add_parser(
        "embed",
        help="write a saved model's learned representation (auto-encoder code, penultimate layer) for a file",
        description="Write embeddings: the code of an auto-encoder or the penultimate layer of another network.",
    )
    p.add_argument(
        "--model-path",
        required=True,
        help="run directory, its model/ folder, or zoo:NAME / hf://OWNER/REPO / http(s)://BASE/NAME",
    )
    p.add_argument(
        "--output", required=True, help="embeddings file (.csv, .tsv or .parquet; .h5ad: the input AnnData with obsm['X_biodl'])"
    )
    p.add_argument("--batch-size", type=int, default=512, help="rows per forward pass")
    from biodl.cli.deploy import add_stream_flag

    add_stream_flag(p)
    group = p.add_argument_group("data (default: as the model was trained)")
    flags: tuple[Flag, ...] = DATA_FLAGS
    for f in flags:
        f.add(group)


def _embedder(model: nn.Module) -> Any:
    for name in ("encode", "features", "embed"):
        fn = getattr(model, name, None)
        if callable(fn):
            return fn
    raise ConfigError(f"model {type(model).__name__} has no encoder or feature layer to embed with")


@torch.inference_mode()
def embed_arrays(model: nn.Module, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Embeddings ``(N, D)`` of model inputs ``X`` ``(N, ...)``."""
    model.eval()
    fn = _embedder(model)
    outs = []
    for start in range(0, len(X), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(X[start : start + batch_size]))
        if not torch.is_floating_point(xb):
            xb = xb.float()
        try:
            z = fn(xb)
        except NotImplementedError:
            raise ConfigError(f"model {type(model).__name__} has no feature layer to embed with") from None
        outs.append(z.reshape(len(xb), -1).float().cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def cmd_embed(args: argparse.Namespace) -> int:
    """Run ``biodl embed``."""
    from biodl.bundle import load
    from biodl.inference import load_data, write_table

    over = {k.split(".", 1)[1]: v for k, v in given(args, DATA_FLAGS).items()}
    paths = over.pop("path", None)
    if not paths:
        raise BiodlError("--data-path is required")
    bundle = load(args.model_path)
    model: nn.Module = bundle.model
    members = getattr(model, "members", None)
    if isinstance(members, nn.ModuleList):  # an ensemble: its first member's representation
        model = members[0]
    from biodl.predict_stream import CHUNK_ROWS, Chunk, should_stream, stream_rows

    if should_stream(bundle, list(paths), args.output, args.chunk_rows):
        size = args.chunk_rows or CHUNK_ROWS

        def compute(chunk: Chunk) -> pd.DataFrame:
            Z = embed_arrays(model, chunk.X_model, args.batch_size)
            frame = pd.DataFrame(Z, columns=[f"emb_{i}" for i in range(Z.shape[1])])
            frame.insert(0, "id", chunk.ids)
            return frame

        out, rows, rate = stream_rows(bundle, list(paths), args.output, compute, overrides=over, chunk_rows=size, what="embed")
        print(f"{rows} embeddings written to {out} (streamed in chunks of {size} rows, {rate:.0f} rows/s; no figures)")
        return 0
    data = load_data(bundle, list(paths), over, require_targets=False)
    from biodl.inference import map_batches

    Z = map_batches(lambda X: embed_arrays(model, bundle.modality.transform(X), args.batch_size), data.X)
    if str(args.output).lower().endswith(".h5ad"):
        from biodl.data.h5ad import write_h5ad_outputs

        if len(paths) != 1 or not str(paths[0]).lower().endswith(".h5ad"):
            raise BiodlError("--output FILE.h5ad needs one .h5ad input (--data-path CELLS.h5ad)")
        backed = bool(bundle.modality.cfg.h5ad_backed)
        out = write_h5ad_outputs(args.output, paths[0], obsm={"X_biodl": Z}, uns={"embedding": "X_biodl"}, backed=backed)
        print(f"{len(Z)} embeddings of size {Z.shape[1]} written to {out} (obsm['X_biodl'])")
        return 0
    frame = pd.DataFrame(Z, columns=[f"emb_{i}" for i in range(Z.shape[1])])
    frame.insert(0, "id", data.ids)
    out = write_table(frame, args.output)
    print(f"{len(frame)} embeddings of size {Z.shape[1]} written to {out}")
    labels, legend = _colour_labels(data.targets)
    for path in embedding_figures(Z, labels, Path(out), legend=legend):
        print(f"figure: {path}")
    return 0


#: Regression targets are coloured by this many quantile bins.
VALUE_BINS = 5


def _colour_labels(targets: Any) -> tuple[list[str], str]:
    """Per-row labels for colouring (the first target), and what they are."""
    if targets is None:
        return [], ""
    y = np.asarray(targets.y)
    name = targets.names[0] if targets.names else "label"
    if targets.kind == "multiclass":
        classes = targets.classes or []
        return [classes[int(v)] if v >= 0 else "missing" for v in y], name
    col = y[:, 0] if y.ndim == 2 else y
    if targets.kind == "binary":
        classes = targets.classes or ["0", "1"]
        return [classes[int(v)] if np.isfinite(v) else "missing" for v in col], name
    ok = np.isfinite(col)
    if not ok.any():
        return [], ""
    edges = np.unique(np.quantile(col[ok], np.linspace(0, 1, VALUE_BINS + 1)))
    bins = np.clip(np.searchsorted(edges, col, side="right") - 1, 0, len(edges) - 2)
    names = [f"{edges[i]:.3g} to {edges[i + 1]:.3g}" for i in range(len(edges) - 1)]
    return [names[b] if f else "missing" for b, f in zip(bins, ok)], f"{name} (quantile bins)"


def embedding_figures(Z: np.ndarray, labels: list[str], out: Path, *, legend: str = "", seed: int = 0) -> list[Path]:
    """2-D figures of embeddings ``Z`` ``(N, D)`` beside the table ``out``: PCA, and UMAP if installed."""
    from biodl.explain.visual import embed_2d, plot_embedding

    if len(Z) < 2 or Z.shape[1] < 1:
        return []
    shown = labels if len(labels) == len(Z) else ["all"] * len(Z)
    paths = []
    methods = ["pca"]
    if importlib.util.find_spec("umap") is not None and len(Z) >= 10:
        methods.append("umap")
    for method in methods:
        coords, name = embed_2d(Z.astype(np.float32), method=method, seed=seed)
        title = f"embeddings ({name}), coloured by {legend}" if legend else f"embeddings ({name})"
        paths.append(plot_embedding(coords, shown, out.with_name(f"{out.stem}_{method}.png"), method=name, title=title))
    return paths
