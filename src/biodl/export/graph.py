"""The exported network: model + task head + target unscaling, as ONNX or TorchScript bytes.

The graph maps preprocessed model inputs ``(batch, *in_shape)`` (float32) to the same outputs
as :meth:`biodl.bundle.Bundle.predict_arrays`: probabilities for classification (sigmoid or
softmax applied inside the graph) and values in the original target units for regression (the
target scaling is folded into the graph). Only the input preprocessing stays outside; it is
recorded next to the file (:mod:`biodl.export.preprocessing`).
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from biodl.errors import BiodlError

if TYPE_CHECKING:
    from biodl.bundle import Bundle

#: Default ONNX opset: supported by every maintained ONNX Runtime and by most other runtimes.
DEFAULT_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"

Runner = Callable[[np.ndarray], np.ndarray]


class ExportError(BiodlError):
    """A model that cannot be exported in the requested format, or whose export disagrees with PyTorch."""


class InferenceNet(nn.Module):
    """``model`` followed by the task head and, for regression, the inverse target scaling.

    Parameters
    ----------
    model
        The trained network (raw scores ``(N, K)``).
    kind
        ``binary`` (sigmoid), ``multiclass`` (softmax), ``regression`` (identity) or ``segmentation``
        (per-pixel sigmoid for one output map, else softmax over the class axis).
    target_mean, target_std
        ``(K,)`` arrays undoing the regression target scaling, or ``None``.
    """

    def __init__(
        self, model: nn.Module, kind: str, target_mean: np.ndarray | None = None, target_std: np.ndarray | None = None
    ) -> None:
        super().__init__()
        self.model = model
        self.kind = kind
        self.unscale = target_mean is not None and target_std is not None
        mean = torch.as_tensor(np.asarray(target_mean if target_mean is not None else [0.0], dtype=np.float32))
        std = torch.as_tensor(np.asarray(target_std if target_std is not None else [1.0], dtype=np.float32))
        self.register_buffer("target_mean", mean)
        self.register_buffer("target_std", std)

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> InferenceNet:
        """The inference network of a loaded bundle (eval mode)."""
        scaler = bundle.target_scaler
        net = cls(
            bundle.model,
            bundle.kind,
            scaler.mean if scaler is not None else None,
            scaler.std if scaler is not None else None,
        )
        return net.eval()

    @property
    def in_shape(self) -> tuple[int, ...]:
        """Shape of one input example (no batch axis)."""
        return tuple(int(s) for s in getattr(self.model, "in_shape", ()))

    def head_description(self) -> list[str]:
        """The steps after the network, in order, for the export manifest."""
        steps = {
            "binary": ["sigmoid"],
            "multiclass": ["softmax over the last axis"],
            "segmentation": ["per pixel: sigmoid (one output map) or softmax over the class axis (axis 1)"],
            "positions": ["per position: softmax over the class axis (axis 1); outputs (N, C, L) for inputs (N, A, L)"],
        }.get(self.kind, [])
        if self.unscale:
            steps.append("multiply by the target std and add the target mean (regression targets in original units)")
        return steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``(N, K)`` (segmentation: ``(N, K, H, W)``) for preprocessed inputs ``(N, *in_shape)``."""
        scores = self.model(x)
        if self.kind == "positions":
            return torch.softmax(scores, dim=1)
        if self.kind == "segmentation":
            return torch.sigmoid(scores) if scores.shape[1] == 1 else torch.softmax(scores, dim=1)
        if self.kind == "binary":
            return torch.sigmoid(scores)
        if self.kind == "multiclass":
            return torch.softmax(scores, dim=-1)
        if self.unscale:
            return scores * self.target_std + self.target_mean
        return scores


@contextlib.contextmanager
def _quiet_exporter_log() -> Iterator[None]:
    """Keep the TorchScript-based exporter from dumping its whole IR graph to stderr on errors.

    Its ``setup_onnx_logging`` tests a function object for truth, so it always switches the ONNX log
    on; swap in a version that honours ``verbose`` for the duration of the export.
    """
    try:
        from torch.onnx._internal.torchscript_exporter import utils as ts_utils
    except ImportError:  # pragma: no cover - other torch layouts
        yield
        return
    original = getattr(ts_utils, "setup_onnx_logging", None)
    if original is None:  # pragma: no cover
        yield
        return

    @contextlib.contextmanager
    def quiet(verbose: bool) -> Iterator[None]:
        torch._C._jit_set_onnx_log_enabled(bool(verbose))
        try:
            yield
        finally:
            torch._C._jit_set_onnx_log_enabled(False)

    ts_utils.setup_onnx_logging = quiet
    try:
        yield
    finally:
        ts_utils.setup_onnx_logging = original


def _example(net: InferenceNet) -> torch.Tensor:
    # Batch 2, not 1: a tracer must not specialise the graph on a batch of one.
    return torch.zeros((2, *net.in_shape), dtype=torch.float32)


def _unsupported_op_message(exc: Exception, model_name: str, opset: int) -> str | None:
    text = str(exc)
    found = re.search(r"operator '([^']+)'", text)
    if found is None:
        # e.g. "Unsupported: ONNX export of operator adaptive_avg_pool2d, output size that are not factor of input size"
        partial = re.search(r"ONNX export of operator ([\w:.]+),?\s*([^.\[]*)", text)
        if partial is None:
            return None
        op, why = partial.group(1), partial.group(2).strip()
        return (
            f"cannot export model {model_name!r} to ONNX: the operator {op!r} cannot be expressed in ONNX here"
            f"{f' ({why})' if why else ''}; export it with --format torchscript instead, which supports every PyTorch operator"
        )
    op = found.group(1)
    where = ""
    for line in text.splitlines():
        if f"= {op}(" in line and "scope: " in line:
            scope = line.split("scope: ", 1)[1].split(" #", 1)[0].strip()
            modules = [part.split("::")[-1] for part in scope.split("/") if part.split("::")[-1]]
            if modules:
                where = f" (in module {'.'.join(modules)!r})"
            break
    return (
        f"cannot export model {model_name!r} to ONNX: the operator {op!r}{where} has no ONNX equivalent "
        f"at opset {opset}; export it with --format torchscript instead, which supports every PyTorch operator"
    )


def _other_failure_message(exc: Exception, model_name: str) -> str:
    text = str(exc).strip()
    first = (text.splitlines() or [type(exc).__name__])[0].split("[Caused by", 1)[0].strip().rstrip(".")
    where = ""
    located = re.search(r"# (\S+\.py:\d+)", text)
    if located is not None:
        path = located.group(1)
        where = f" (at {path.split('/site-packages/')[-1].split('/src/')[-1]})"
    return f"cannot export model {model_name!r} to ONNX: {first}{where}; export it with --format torchscript instead"


def _dynamic_axes(net: InferenceNet) -> dict[str, dict[int, str]]:
    """The batch axis; per-position models also take and return any sequence length (last axis); a module may
    declare more free input axes (class attribute ``onnx_dynamic_axes``, e.g. the bag size of MIL models)."""
    if net.kind == "positions":
        return {INPUT_NAME: {0: "batch", 2: "length"}, OUTPUT_NAME: {0: "batch", 2: "length"}}
    free = {k: v for m in net.modules() for k, v in dict(getattr(m, "onnx_dynamic_axes", {})).items()}
    return {INPUT_NAME: {0: "batch", **free}, OUTPUT_NAME: {0: "batch"}}


def to_onnx(net: InferenceNet, *, opset: int = DEFAULT_OPSET, model_name: str = "model") -> bytes:
    """Serialised ONNX model with a dynamic batch axis.

    Raises
    ------
    ExportError
        Naming the operator ONNX cannot express (and suggesting TorchScript), or the exporter's reason.
    """
    # a module may need a newer opset (class attributes ``min_onnx_opset`` and ``min_onnx_opset_reason``)
    for module in net.modules():
        needed = int(getattr(module, "min_onnx_opset", 0))
        if opset < needed:
            why = getattr(module, "min_onnx_opset_reason", "it uses operators newer opsets added")
            raise ExportError(
                f"cannot export model {model_name!r} to ONNX at opset {opset}: {why}, which ONNX expresses exactly "
                f"only from opset {needed}; use --opset {needed} or higher, or --format torchscript"
            )
    buf = io.BytesIO()
    try:
        # no_grad: the graph is the inference path (segmentation: test-time augmentation, decision threshold)
        with warnings.catch_warnings(), _quiet_exporter_log(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                (_example(net),),
                buf,  # type: ignore[arg-type]  # file objects are accepted by the TorchScript-based exporter
                dynamo=False,  # the TorchScript-based exporter: fast, and needs no onnxscript
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=_dynamic_axes(net),
                opset_version=opset,
                do_constant_folding=True,
            )
    except (torch.onnx.errors.OnnxExporterError, RuntimeError, TypeError, ValueError) as exc:
        message = _unsupported_op_message(exc, model_name, opset) or _other_failure_message(exc, model_name)
        raise ExportError(message) from None
    data = buf.getvalue()
    try:
        import onnx

        onnx.checker.check_model(onnx.load_from_string(data))
    except ImportError:  # pragma: no cover - onnx is a dependency
        pass
    except Exception as exc:  # onnx raises its own ValidationError types
        raise ExportError(f"the exported ONNX model of {model_name!r} does not validate: {exc}") from None
    return data


def to_torchscript(net: InferenceNet, *, model_name: str = "model") -> bytes:
    """Serialised TorchScript module (traced; the batch axis stays free)."""
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(net, (_example(net),), check_trace=False)
            buf = io.BytesIO()
            torch.jit.save(traced, buf)
    except (RuntimeError, TypeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"cannot trace model {model_name!r} to TorchScript: {first}") from None
    return buf.getvalue()


def onnx_runner(data: bytes, *, threads: int | None = None) -> Runner:
    """A function running serialised ONNX bytes with ONNX Runtime on the CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle worker threads sleep instead of spinning: the machine is shared.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    def run(X: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(X, dtype=np.float32)
        return np.asarray(session.run(None, {INPUT_NAME: x})[0], dtype=np.float32)

    return run


def torchscript_runner(data: bytes) -> Runner:
    """A function running serialised TorchScript bytes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    module.eval()

    def run(X: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
            return module(x).float().numpy()

    return run
