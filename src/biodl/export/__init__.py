"""Export a bundle to ONNX or TorchScript, with its preprocessing recorded and parity checked.

``export_bundle`` writes two files:

``FILE``
    The network with its task head (and regression target unscaling) inside the graph; input
    ``input`` float32 ``(batch, *in_shape)``, output ``output`` float32 ``(batch, K)``; the batch
    axis is dynamic.
``FILE.json``
    The manifest: input and output names, shapes and meaning, class names, the preprocessing a
    consumer must apply to raw inputs (:mod:`biodl.export.preprocessing`), the SHA-256 of
    ``FILE``, and the parity report.

The parity check (maximum absolute difference to the PyTorch bundle ≤ 1e-4, on real rows where
available, at the full sample size and at batch size 1) runs before anything is written; a
failing check writes nothing and raises :class:`ExportError`.

>>> from biodl import load
>>> result = export_bundle(load("runs/pbmc"), "onnx", "pbmc.onnx")
>>> result.parity.passed
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from biodl._version import __version__
from biodl.export.graph import (
    DEFAULT_OPSET,
    INPUT_NAME,
    OUTPUT_NAME,
    ExportError,
    InferenceNet,
    Runner,
    onnx_runner,
    to_onnx,
    to_torchscript,
    torchscript_runner,
)
from biodl.export.parity import ROWS, TOLERANCE, ParityReport, Sample, check_parity, max_abs_diff, sample_inputs
from biodl.export.preprocessing import apply_steps, describe_preprocessing, interpretable
from biodl.io_utils import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from biodl.bundle import Bundle

__all__ = [
    "FORMATS",
    "ExportError",
    "ExportResult",
    "InferenceNet",
    "ParityReport",
    "Sample",
    "export_bundle",
    "manifest_path",
    "read_manifest",
    "serialise",
    "torch_reference",
]

FORMATS: tuple[str, ...] = ("onnx", "torchscript")
MANIFEST_FORMAT = "biodl-export"
MANIFEST_VERSION = 1


@dataclass
class ExportResult:
    """What :func:`export_bundle` wrote.

    Attributes
    ----------
    path
        The model file.
    manifest_path
        The JSON manifest next to it.
    parity
        The parity report (also in the manifest).
    manifest
        The manifest's content.
    """

    path: Path
    manifest_path: Path
    parity: ParityReport
    manifest: dict[str, Any]


def manifest_path(model_file: str | Path) -> Path:
    """``FILE.json`` next to ``FILE``."""
    p = Path(model_file)
    return p.with_name(p.name + ".json")


def _model_name(bundle: Bundle) -> str:
    return str(bundle.meta["model"]["name"])


def serialise(bundle: Bundle, fmt: str, *, opset: int = DEFAULT_OPSET) -> tuple[bytes, Runner]:
    """Export in memory: the serialised model and a function running it on preprocessed inputs."""
    net = InferenceNet.from_bundle(bundle)
    if fmt == "onnx":
        data = to_onnx(net, opset=opset, model_name=_model_name(bundle))
        try:
            return data, onnx_runner(data)
        except ImportError:
            raise ExportError("onnxruntime is not installed, so the ONNX export cannot be checked") from None
    if fmt == "torchscript":
        data = to_torchscript(net, model_name=_model_name(bundle))
        return data, torchscript_runner(data)
    raise ExportError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")


def _output_block(bundle: Bundle, net: InferenceNet) -> dict[str, Any]:
    kind = bundle.kind
    classes = bundle.classes
    k = int(bundle.meta["model"]["num_outputs"])
    if kind == "multiclass":
        meaning = "class probabilities; the predicted class is the argmax"
        columns = list(classes or [])
    elif kind == "binary":
        if classes is not None and k == 1:
            meaning = f"probability of class {classes[1]!r} (predicted when >= 0.5, else {classes[0]!r})"
            columns = [classes[1]]
        else:
            meaning = "probability of each binary task"
            columns = bundle.target_names
    elif kind == "segmentation":
        classes = list(classes or ["0", "1"])
        if k == 1:
            meaning = f"per-pixel probability of class {classes[-1]!r} (predicted when >= 0.5, else {classes[0]!r})"
            columns = [classes[-1]]
        else:
            meaning = "per-pixel class probabilities; the predicted label is the argmax over axis 1"
            columns = classes
    elif kind == "positions":
        meaning = "per-position class probabilities (axis 1) for every input position (axis 2, any length); positions "
        meaning += "after a sequence's end are padding; the predicted label is the argmax over axis 1"
        columns = list(classes or [])
    else:
        meaning = "predicted values in the targets' original units"
        columns = bundle.target_names
    in_shape = [int(s) for s in bundle.meta["model"].get("in_shape", [])]
    shape: list[Any] = ["batch", k]
    if kind == "segmentation":
        shape = ["batch", k, *in_shape[-2:]]
    elif kind == "positions":
        shape = ["batch", k, "length"]
    return {
        "name": OUTPUT_NAME,
        "dtype": "float32",
        "shape": shape,
        "columns": columns,
        "meaning": meaning,
        "in_graph": net.head_description(),
    }


def torch_reference(bundle: Bundle) -> Runner:
    """The bundle's PyTorch model with its head, under ``torch.inference_mode`` (the parity reference)."""
    import numpy as np
    import torch

    net = InferenceNet.from_bundle(bundle)

    def run(X: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))).float().numpy()

    return run


def _preprocessing_check(block: dict[str, Any], sample: Sample, runner: Runner, reference: Runner) -> float | None:
    """Outputs from raw rows through the *recorded* steps and the exported graph vs PyTorch."""
    if sample.raw is None or not interpretable(block):
        return None
    reproduced = apply_steps(block, sample.raw)
    step_diff = max_abs_diff(reproduced, sample.X_model)
    out_diff = max_abs_diff(runner(reproduced), reference(sample.X_model))
    return max(step_diff, out_diff)


def export_bundle(
    bundle: Bundle,
    fmt: str,
    output: str | Path,
    *,
    paths: Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    rows: int = ROWS,
    tolerance: float = TOLERANCE,
    opset: int = DEFAULT_OPSET,
) -> ExportResult:
    """Export, check parity, and write the model file and its manifest.

    Parameters
    ----------
    bundle
        A loaded bundle.
    fmt
        ``onnx`` or ``torchscript``.
    output
        The model file to write (the manifest goes to ``output + ".json"``).
    paths, overrides
        Data files (and column-mapping overrides) for the parity check; default: the bundle's
        recorded training files, else synthetic inputs.
    rows
        Rows in the parity sample.
    tolerance
        Largest accepted absolute difference to the PyTorch outputs.
    opset
        ONNX opset version.

    Raises
    ------
    ExportError
        When the model cannot be exported or the parity check fails (nothing is written).
    """
    out = Path(output)
    net = InferenceNet.from_bundle(bundle)
    data, runner = serialise(bundle, fmt, opset=opset)
    sample = sample_inputs(bundle, paths, overrides, rows=rows)
    reference = torch_reference(bundle)
    parity = check_parity(reference, runner, sample, tolerance=tolerance)
    block = describe_preprocessing(bundle)
    pre_diff = _preprocessing_check(block, sample, runner, reference)
    if pre_diff is not None:
        parity.preprocessing_max_abs_diff = pre_diff
        if pre_diff > tolerance:
            parity.passed = False
            parity.notes.append("raw rows run through the recorded preprocessing steps do not reproduce the outputs")
    elif sample.raw is None:
        parity.notes.append("the recorded preprocessing was not checked (no raw rows)")
    else:
        parity.notes.append("the recorded preprocessing was not checked (steps not interpretable by biodl's reference)")
    if not parity.passed:
        raise ExportError(
            f"the {fmt} export of {_model_name(bundle)!r} disagrees with PyTorch: {parity.summary()}; nothing was written"
        )
    in_shape = [int(s) for s in bundle.meta["model"]["in_shape"]]
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "biodl_version": __version__,
        "model_file": out.name,
        "model_format": fmt,
        "opset": opset if fmt == "onnx" else None,
        "sha256": hashlib.sha256(data).hexdigest(),
        "source_bundle": {
            "path": str(bundle.path) if bundle.path is not None else None,
            "model": _model_name(bundle),
            "weights_sha256": bundle.meta.get("sha256", {}).get("weights.safetensors"),
            "biodl_version": bundle.meta.get("biodl_version"),
        },
        "task": bundle.meta.get("task"),
        "kind": bundle.kind,
        "classes": bundle.classes,
        "target_names": bundle.target_names,
        "input": {
            "name": INPUT_NAME,
            "dtype": "float32",
            "shape": ["batch", in_shape[0], "length"] if bundle.kind == "positions" else ["batch", *in_shape],
        },
        "output": _output_block(bundle, net),
        "preprocessing": block,
        "parity": parity.to_dict(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, data)
    mpath = manifest_path(out)
    atomic_write_text(mpath, json.dumps(manifest, indent=1, allow_nan=False))
    return ExportResult(out, mpath, parity, manifest)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Parse the manifest of an exported model (``FILE`` or ``FILE.json``)."""
    p = Path(path)
    if p.suffix != ".json":
        p = manifest_path(p)
    doc = json.loads(p.read_text())
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise ExportError(f"{p}: not a {MANIFEST_FORMAT} manifest")
    return doc
