"""Helpers shared by the explainers: models, inputs, targets, strands, test-time views."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import torch
from torch import nn

from biodl.errors import ConfigError, DataError

if TYPE_CHECKING:
    from biodl.bundle import Bundle

#: What the explainers accept as a model: any module taking one-hot ``(N, A, L)``, or a bundle.
ModelLike: TypeAlias = "nn.Module | Bundle"
#: Output selection: ``None`` (all outputs), one index, or several.
Target = int | Sequence[int] | None
LengthMode = Literal["error", "pad", "crop"]


def as_module(model: Any) -> nn.Module:
    """The network of a :class:`~biodl.bundle.Bundle` (or the module itself)."""
    if isinstance(model, nn.Module):
        return model
    inner = getattr(model, "model", None)
    if isinstance(inner, nn.Module):
        return inner
    raise ConfigError(f"expected a torch.nn.Module or a biodl Bundle, got {type(model).__name__}")


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for parameter-free modules)."""
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def model_length(model: nn.Module) -> int | None:
    """The input length a biodl model was built for (``in_shape = (A, L)``), else ``None``."""
    shape = getattr(model, "in_shape", None)
    if isinstance(shape, tuple) and len(shape) == 2:
        return int(shape[1])
    return None


def as_onehot(X: Any, *, name: str = "X") -> torch.Tensor:
    """Float32 tensor ``(N, A, L)`` from a tensor/array ``(N, A, L)`` or ``(A, L)``."""
    t = torch.as_tensor(np.asarray(X)) if not isinstance(X, torch.Tensor) else X
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise DataError(f"{name} must be one-hot sequences of shape (N, A, L), got shape {tuple(t.shape)}")
    return t.to(torch.float32)


def fit_length(X: torch.Tensor, length: int | None, mode: LengthMode = "error") -> torch.Tensor:
    """Make sequences ``(N, A, L)`` the model's length: error, centre-pad with all-zero (N) columns, or centre-crop.

    Parameters
    ----------
    X
        One-hot sequences ``(N, A, L)``.
    length
        The model's input length (``None``: any length is accepted).
    mode
        ``error`` (default), ``pad`` (shorter sequences only) or ``crop`` (longer sequences only).
    """
    if length is None or X.shape[-1] == length:
        return X
    n = int(X.shape[-1])
    if n < length and mode == "pad":
        left = (length - n) // 2
        return torch.nn.functional.pad(X, (left, length - n - left))
    if n > length and mode == "crop":
        left = (n - length) // 2
        return X[..., left : left + length]
    hint = "length_mode='pad'" if n < length else "length_mode='crop'"
    raise DataError(f"sequences have length {n} but the model takes length {length}; crop/pad them or use {hint}")


def resolve_targets(target: Target, n_outputs: int) -> tuple[list[int], bool]:
    """Output indices to keep and whether to drop the target axis of the result."""
    if target is None:
        return list(range(n_outputs)), n_outputs == 1
    if isinstance(target, (int, np.integer)):
        idx, squeeze = [int(target)], True
    else:
        idx, squeeze = [int(t) for t in target], False
    bad = [t for t in idx if not -n_outputs <= t < n_outputs]
    if bad:
        raise ConfigError(f"target {bad[0]} does not exist: the model has {n_outputs} output(s)")
    return [t % n_outputs for t in idx], squeeze


def is_rc_averaging(model: nn.Module) -> bool:
    """Whether a biodl sequence model averages both strands in eval mode."""
    return bool(getattr(model, "rc_average", False)) and callable(getattr(model, "score", None))


def reverse_complement(x: torch.Tensor) -> torch.Tensor:
    """Reverse complement of one-hot ``(..., 4, L)`` (ACGT order: a flip of both axes)."""
    return x.flip(-2).flip(-1)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block, restoring its previous mode after."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def autocast_context(device: torch.device, enabled: bool | None) -> Any:
    """``torch.autocast`` for the device (default: on for CUDA in float16, off on CPU)."""
    use = device.type == "cuda" if enabled is None else bool(enabled)
    if not use:
        return torch.autocast(device_type=device.type, enabled=False)
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def batched_predict(model: nn.Module, X: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """Outputs ``(N, T)`` (float32, on ``X``'s device) of ``model`` on ``X`` in batches (no grad)."""
    outs = []
    for i in range(0, len(X), batch_size):
        y = model(X[i : i + batch_size].to(device))
        outs.append(_as_2d(y).float().to(X.device))
    if not outs:
        raise DataError("no sequences given")
    return torch.cat(outs)


def _as_2d(y: Any) -> torch.Tensor:
    if isinstance(y, (tuple, list)):
        y = y[0]
    if not isinstance(y, torch.Tensor):
        raise ConfigError(f"the model returned {type(y).__name__}, expected a tensor of scores (N, T)")
    if y.ndim == 1:
        return y[:, None]
    if y.ndim != 2:
        raise ConfigError(f"the model returned shape {tuple(y.shape)}; explainers need scores of shape (N, T)")
    return y


def undo_view(view: Callable[[torch.Tensor], torch.Tensor], arr: torch.Tensor) -> torch.Tensor:
    """``arr``, computed on ``view(x)``, moved back to the positions of ``x``.

    ``view`` must only permute positions (flips, transposes of equal axes, rotations by 90 degrees),
    as the test-time views of the image, volume and molecule-image models do; ``arr`` has the view's
    shape. Exact for any such view: the permutation is read off the view of an index array.
    """
    index = torch.arange(arr.numel(), device=arr.device).reshape(arr.shape)
    source = view(index).reshape(-1)  # position p of the view holds position source[p] of x
    out = torch.empty_like(arr).reshape(-1)
    out[source] = arr.reshape(-1)
    return out.reshape(arr.shape)
