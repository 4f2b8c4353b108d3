"""In-silico saturation mutagenesis (ISM): the effect of every single-base substitution.

For each sequence, position and letter, the sequence with that one substitution is scored and
the wild type's score is subtracted; the result is the *mutation map* of DeepBind (Alipanahi
et al. 2015) and of the review's Figure 2C. Effects are differences of the model's raw outputs
(logits for classifiers, i.e. log-odds).

Two modes give the same numbers:

* plain: every substituted sequence goes through the whole model, in batches (identity
  substitutions, the wild-type letter at its own position, are skipped: their effect is 0);
* fast, deep (:mod:`biodl.explain.fast_ism`): for stacks of convolution, pooling, padding and
  point-wise layers followed by anything (Basset, DeepSEA, ``nn.Sequential`` CNNs), each
  mutant's changed window is propagated layer by layer and only it is recomputed (Fast-ISM);
* fast, one convolution: for convolution → point-wise operations → global max/average pooling → anything
  (DeepBind and any ``nn.Sequential`` of that form, detected structurally), the first
  convolution runs once on the wild type and a substitution only changes the ``width``
  convolution outputs whose window covers it. Pooling is updated from prefix/suffix maxima
  and sums of the wild type, so each substitution costs ``O(filters × width)`` instead of a
  forward pass over the whole sequence (:mod:`biodl.explain.conv_pool_ism`; on the CPU one
  fused numba loop computes every mutant's pooled features). Identity letters are computed
  with the others (leaving them out would cost more than it saves); their effect is set to
  exactly 0. The mode is checked against the model's own outputs on the wild types; other
  architectures, or a failed check, fall back to the plain mode.

>>> effects = saturation_mutagenesis(model, X)          # (N, A, L) for a single-output model
>>> raw = saturation_mutagenesis(model, X, raw_outputs=True)
>>> raw.reference.shape, raw.mutants.shape                # (N, T), (N, T, A, L)
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, overload

import torch
from torch import nn

from biodl.errors import ConfigError, DataError
from biodl.explain._common import (
    LengthMode,
    Target,
    as_module,
    as_onehot,
    autocast_context,
    batched_predict,
    evaluating,
    fit_length,
    model_device,
    model_length,
)
from biodl.explain.conv_pool_ism import ConvPoolParts, conv_pool_ism, conv_pool_parts
from biodl.explain.fast_ism import local_ism, local_plan

if TYPE_CHECKING:
    from biodl.explain._common import ModelLike

__all__ = ["ConvPoolParts", "ISMResult", "conv_pool_parts", "saturation_mutagenesis"]


class ISMResult(NamedTuple):
    """Raw outputs of saturation mutagenesis.

    Attributes
    ----------
    reference
        Wild-type outputs ``(N, T)``.
    mutants
        Outputs of each single-substitution sequence ``(N, T, A, L)``; identity substitutions
        and positions outside ``[start, end)`` hold the reference.
    effects
        ``mutants - reference`` ``(N, T, A, L)`` (exactly 0 for identity substitutions).
    fast
        Whether the convolution-locality (fast) mode was used.
    """

    reference: torch.Tensor
    mutants: torch.Tensor
    effects: torch.Tensor
    fast: bool


def _plain(
    model: nn.Module, X: torch.Tensor, start: int, end: int, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference ``(N, T)`` and mutant outputs ``(N, T, A, L)``, every non-identity mutant through the model."""
    N, A, L = X.shape
    ref = batched_predict(model, X, batch_size, device)
    T = ref.shape[1]
    out = ref[:, :, None, None].expand(N, T, A, L).clone()
    identity = X[:, :, start:end] == 1
    n_idx, b_idx, l_idx = torch.nonzero(~identity, as_tuple=True)
    l_idx = l_idx + start
    eye = torch.eye(A, dtype=X.dtype, device=X.device)
    for i in range(0, len(n_idx), batch_size):
        n, b, pos = n_idx[i : i + batch_size], b_idx[i : i + batch_size], l_idx[i : i + batch_size]
        xb = X[n]
        xb[torch.arange(len(n), device=X.device), :, pos] = eye[b]
        y = model(xb.to(device))
        y = (y[:, None] if y.ndim == 1 else y).float().to(X.device)
        out[n, :, b, pos] = y
    return ref, out


@overload
def saturation_mutagenesis(
    model: ModelLike,
    X: Any,
    target: Target = ...,
    *,
    batch_size: int = ...,
    fast: bool | Literal["auto"] = ...,
    start: int = ...,
    end: int | None = ...,
    length_mode: LengthMode = ...,
    device: str | torch.device | None = ...,
    autocast: bool | None = ...,
    raw_outputs: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def saturation_mutagenesis(
    model: ModelLike,
    X: Any,
    target: Target = ...,
    *,
    batch_size: int = ...,
    fast: bool | Literal["auto"] = ...,
    start: int = ...,
    end: int | None = ...,
    length_mode: LengthMode = ...,
    device: str | torch.device | None = ...,
    autocast: bool | None = ...,
    raw_outputs: Literal[True],
) -> ISMResult: ...


def saturation_mutagenesis(
    model: ModelLike,
    X: Any,
    target: Target = None,
    *,
    batch_size: int = 1024,
    fast: bool | Literal["auto"] = "auto",
    start: int = 0,
    end: int | None = None,
    length_mode: LengthMode = "error",
    device: str | torch.device | None = None,
    autocast: bool | None = None,
    raw_outputs: bool = False,
) -> torch.Tensor | ISMResult:
    """Effects of all single-letter substitutions of one-hot sequences.

    Parameters
    ----------
    model
        Any ``torch.nn.Module`` mapping one-hot ``(N, A, L)`` to scores ``(N, T)``, or a biodl
        :class:`~biodl.bundle.Bundle`. It is run in eval and inference mode.
    X
        One-hot sequences ``(N, A, L)`` (or one ``(A, L)``), tensor or array; all-zero (``N``)
        columns are mutated to every letter.
    target
        Output(s) to keep: ``None`` (all), an index, or a list of indices.
    batch_size
        Mutant sequences scored per forward pass.
    fast
        ``"auto"`` uses a convolution-locality mode when the architecture allows it (checked
        against the plain mode on the first positions of two sequences; otherwise the plain mode), ``True`` requires it, ``False``
        always runs the plain mode.
    start, end
        Mutate only positions ``start <= l < end`` (default: all); others have effect 0.
    length_mode
        Sequences whose length differs from a biodl model's input: ``error``, ``pad``
        (centre, all-zero columns) or ``crop`` (centre). Effects are of the padded/cropped input.
    device
        Where the model runs (default: the model's device).
    autocast
        Mixed precision (default: on for CUDA, off on CPU, where results are exact float32).
    raw_outputs
        Return an :class:`ISMResult` (reference, mutant outputs, effects, all targets) instead
        of the effects.

    Returns
    -------
    torch.Tensor or ISMResult
        Effects (mutant − wild-type output) ``(N, A, L)`` for one target (an ``int`` target or
        a single-output model), ``(N, T, A, L)`` otherwise; on the CPU.
    """
    net = as_module(model)
    Xt = fit_length(as_onehot(X), model_length(net), length_mode).detach().cpu().contiguous()
    N, A, L = Xt.shape
    if N == 0:
        raise DataError("no sequences given")
    end = L if end is None else end
    if not 0 <= start < end <= L:
        raise ConfigError(f"start={start}, end={end}: need 0 <= start < end <= {L}")
    if batch_size < 1:
        raise ConfigError("batch_size must be at least 1")
    dev = torch.device(device) if device is not None else model_device(net)
    parts = conv_pool_parts(net) if fast in ("auto", True) else None
    plan = local_plan(net) if fast in ("auto", True) and parts is None else None
    if fast is True and parts is None and plan is None:
        raise ConfigError(
            f"fast ISM needs convolution/pooling layers before any global layer (DeepBind, Basset, DeepSEA, nn.Sequential "
            f"CNNs); {type(net).__name__} is not; use fast='auto' or fast=False"
        )

    def run_fast(x: torch.Tensor, s0: int, s1: int) -> tuple[torch.Tensor, torch.Tensor]:
        if parts is not None:
            return conv_pool_ism(parts, x, s0, s1, dev)
        assert plan is not None
        return local_ism(plan, x, s0, s1, dev)

    with evaluating(net), torch.inference_mode(), autocast_context(dev, autocast):
        used_fast = False
        if parts is not None or plan is not None:
            # checked against the model itself: wild types and every mutant at both ends of the span
            probe, p1 = Xt[: min(N, 2)], min(end, start + 2)
            exp_ref, exp_mut = _plain(net, probe, start, p1, batch_size, dev)
            got_ref, got_mut = run_fast(probe, start, p1)
            ident = probe[:, None] == 1
            got_mut = torch.where(ident, got_ref[:, :, None, None], got_mut)
            exp_mut = torch.where(ident, exp_ref[:, :, None, None], exp_mut)
            tol = 1e-3 if dev.type == "cpu" and not autocast else 5e-2
            atol = tol * (1 + float(exp_mut.abs().max()))
            if got_mut.shape == exp_mut.shape and torch.allclose(got_mut.float(), exp_mut.float(), rtol=tol, atol=atol):
                used_fast = True
            elif fast is True:
                raise ConfigError(f"fast ISM does not reproduce {type(net).__name__}'s outputs; use fast=False")
            else:
                msg = f"fast ISM does not reproduce {type(net).__name__}'s outputs; using the plain mode"
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
        if used_fast:
            ref, mutants = run_fast(Xt, start, end)
        else:
            ref, mutants = _plain(net, Xt, start, end, batch_size, dev)
    ref, mutants = ref.float(), mutants.float()
    identity = torch.zeros((N, 1, A, L), dtype=torch.bool)
    identity[..., start:end] = Xt[:, None, :, start:end] == 1
    mutants = torch.where(identity, ref[:, :, None, None], mutants)
    effects = (mutants - ref[:, :, None, None]).masked_fill(identity, 0.0)
    if raw_outputs:
        return ISMResult(ref, mutants, effects, used_fast)
    from biodl.explain._common import resolve_targets

    idx, squeeze = resolve_targets(target, ref.shape[1])
    out = effects[:, idx]
    return out[:, 0] if squeeze else out
