"""Inference engines: the same ``predict(X_model) -> outputs`` over eager PyTorch or ONNX Runtime.

Every engine maps preprocessed model inputs ``(N, *in_shape)`` to what
:meth:`biodl.bundle.Bundle.predict_arrays` returns: probabilities for classification, values in
the original units for regression. The ONNX engine exports the bundle in memory (nothing is
written next to the bundle) and is only used after a parity check against PyTorch.

>>> choice = select_engine(bundle, "auto", sample)
>>> choice.engine.name, choice.reason
('onnx', 'ONNX Runtime agrees with PyTorch (max |Δ| 1.2e-07 on 256 rows of ...)')
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from biodl.errors import BiodlError
from biodl.export.graph import DEFAULT_OPSET, ExportError, InferenceNet, onnx_runner, to_onnx
from biodl.export.parity import TOLERANCE, ParityReport, Sample, check_parity
from biodl.registry import Registry

if TYPE_CHECKING:
    from biodl.bundle import Bundle

#: Names accepted by ``--engine``.
ENGINE_CHOICES: tuple[str, ...] = ("auto", "torch", "onnx")


class Engine(ABC):
    """Runs a model on preprocessed inputs."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_bundle(cls, bundle: Bundle) -> Engine:
        """The engine for a loaded bundle."""

    @abstractmethod
    def predict(self, X_model: np.ndarray) -> np.ndarray:
        """Outputs ``(N, K)`` (float32) for inputs ``(N, *in_shape)``."""


ENGINES: Registry[type[Engine]] = Registry("inference engine")


@ENGINES.register("torch")
class TorchEngine(Engine):
    """Eager PyTorch under ``torch.inference_mode``, in chunks of ``batch_size`` rows.

    Parameters
    ----------
    net
        The inference network (model + head + target unscaling).
    batch_size
        Rows per forward pass.
    """

    name: ClassVar[str] = "torch"

    def __init__(self, net: InferenceNet, batch_size: int = 512) -> None:
        self.net = net.eval()
        self.batch_size = batch_size

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> TorchEngine:
        return cls(InferenceNet.from_bundle(bundle))

    def predict(self, X_model: np.ndarray) -> np.ndarray:
        outs: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(X_model), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(X_model[start : start + self.batch_size], dtype=np.float32))
                outs.append(self.net(x).float().numpy())
        if not outs:
            return np.zeros((0, 0), dtype=np.float32)
        return np.concatenate(outs)


@ENGINES.register("onnx")
class OnnxEngine(Engine):
    """ONNX Runtime (CPU) on an in-memory ONNX export.

    Parameters
    ----------
    onnx_model
        The serialised ONNX model (input ``input``, output ``output``).
    threads
        Intra-op threads (``None``: ONNX Runtime's default).
    """

    name: ClassVar[str] = "onnx"

    def __init__(self, onnx_model: bytes, threads: int | None = None) -> None:
        self.onnx_model = onnx_model
        self._run = onnx_runner(onnx_model, threads=threads)

    @classmethod
    def from_bundle(cls, bundle: Bundle, *, opset: int = DEFAULT_OPSET, threads: int | None = None) -> OnnxEngine:
        net = InferenceNet.from_bundle(bundle)
        return cls(to_onnx(net, opset=opset, model_name=str(bundle.meta["model"]["name"])), threads=threads)

    def predict(self, X_model: np.ndarray) -> np.ndarray:
        if len(X_model) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        return self._run(X_model)


@dataclass
class EngineChoice:
    """The engine picked for a bundle and why.

    Attributes
    ----------
    engine
        The engine to predict with.
    requested
        ``auto``, ``torch`` or ``onnx``.
    reason
        One line explaining the choice.
    parity
        The ONNX-vs-PyTorch parity report, when one was run.
    """

    engine: Engine
    requested: str
    reason: str
    parity: ParityReport | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (for the model card)."""
        return {
            "name": self.engine.name,
            "requested": self.requested,
            "reason": self.reason,
            "parity": self.parity.to_dict() if self.parity is not None else None,
        }


def select_engine(
    bundle: Bundle, name: str = "auto", sample: Sample | None = None, *, tolerance: float = TOLERANCE, threads: int | None = None
) -> EngineChoice:
    """Build the engine ``name``; ``auto`` means ONNX Runtime when it agrees with PyTorch, else PyTorch.

    Parameters
    ----------
    bundle
        The loaded bundle.
    name
        ``auto``, ``torch`` or ``onnx``.
    sample
        Inputs for the parity check (default: :func:`biodl.export.parity.sample_inputs`).
    tolerance
        Largest accepted absolute difference between ONNX Runtime and PyTorch outputs.
    threads
        Intra-op threads of ONNX Runtime (``None``: its default; PyTorch's are set by the caller).

    Raises
    ------
    BiodlError
        For ``onnx`` when the model cannot be exported or its outputs disagree with PyTorch.
    """
    key = name.strip().lower()
    if key not in ENGINE_CHOICES:
        raise BiodlError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINE_CHOICES)}")
    if key == "torch":
        return EngineChoice(TorchEngine.from_bundle(bundle), key, "PyTorch requested")
    if bundle.kind == "segmentation":
        # an ONNX graph is traced at one image size; PyTorch predicts any size in overlapping windows
        if key == "onnx":
            raise BiodlError(
                "segmentation models are served with PyTorch: they predict images of any size in overlapping sliding "
                "windows, which an ONNX graph traced at one image size cannot; use --engine torch or auto"
            )
        return EngineChoice(
            TorchEngine.from_bundle(bundle), key, "PyTorch, which predicts images of any size in overlapping sliding windows"
        )
    try:
        onnx_engine = OnnxEngine.from_bundle(bundle, threads=threads)
    except ExportError as exc:
        if key == "onnx":
            raise ExportError(f"{exc} (or use --engine torch)") from None
        return EngineChoice(TorchEngine.from_bundle(bundle), key, f"PyTorch, because the ONNX export failed: {exc}")
    except ImportError:
        if key == "onnx":
            raise BiodlError("onnxruntime is not installed; install it or use --engine torch") from None
        return EngineChoice(TorchEngine.from_bundle(bundle), key, "PyTorch, because onnxruntime is not installed")
    if sample is None:
        from biodl.export.parity import sample_inputs

        sample = sample_inputs(bundle)
    torch_engine = TorchEngine.from_bundle(bundle)
    parity = check_parity(torch_engine.predict, onnx_engine.predict, sample, tolerance=tolerance)
    if parity.passed:
        verdict = "ONNX Runtime requested" if key == "onnx" else "ONNX Runtime, which agrees with PyTorch"
        return EngineChoice(onnx_engine, key, f"{verdict} ({parity.summary()})", parity)
    if key == "onnx":
        raise BiodlError(f"ONNX Runtime disagrees with PyTorch for this model ({parity.summary()}); use --engine torch")
    reason = f"PyTorch, because ONNX Runtime disagrees ({parity.summary()})"
    return EngineChoice(torch_engine, key, reason, parity)
