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
  forward pass over the whole sequence. All letters of a position are one broadcast there
  (leaving the identity letter out would cost more than it saves); its effect is set to
  exactly 0. The mode is checked against the model's own outputs on the wild types; other
  architectures, or a failed check, fall back to the plain mode.

>>> effects = saturation_mutagenesis(model, X)          # (N, A, L) for a single-output model
>>> raw = saturation_mutagenesis(model, X, raw_outputs=True)
>>> raw.reference.shape, raw.mutants.shape                # (N, T), (N, T, A, L)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
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
    is_rc_averaging,
    model_device,
    model_length,
)
from biodl.explain.fast_ism import chunked_strands, local_ism, local_plan

if TYPE_CHECKING:
    from biodl.explain._common import ModelLike

__all__ = ["ConvPoolParts", "ISMResult", "conv_pool_parts", "saturation_mutagenesis"]

#: Elements of the largest temporary tensor of the fast mode (bounds memory).
_FAST_BUDGET = 1 << 23


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


class ConvPoolParts(NamedTuple):
    """A model seen as convolution → point-wise → global pooling → head (the fast-mode form).

    Attributes
    ----------
    conv
        The first convolution (stride 1, dilation 1, one group).
    pad
        Zero padding (left, right) applied before it (padding layers and the conv's own).
    pointwise
        Modules applied element-wise (per channel) to the convolution output.
    pools
        Global poolings over positions, ``"max"`` or ``"avg"``, concatenated along channels.
    head
        The rest of the network: pooled features ``(M, filters × len(pools))`` → outputs ``(M, T)``.
    rc_average
        Whether the model averages the outputs of both strands.
    """

    conv: nn.Conv1d
    pad: tuple[int, int]
    pointwise: tuple[nn.Module, ...]
    pools: tuple[str, ...]
    head: Callable[[torch.Tensor], torch.Tensor]
    rc_average: bool


_POINTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Identity, nn.Dropout, nn.BatchNorm1d,
)  # fmt: skip


def _flatten(seq: nn.Sequential) -> list[nn.Module]:
    out: list[nn.Module] = []
    for m in seq:
        out.extend(_flatten(m) if isinstance(m, nn.Sequential) else [m])
    return out


def _conv_and_pad(mods: list[nn.Module]) -> tuple[nn.Conv1d, tuple[int, int], int] | None:
    """The leading (padding →) convolution of a flat module list, its total padding and how many modules it took."""
    left = right = 0
    i = 0
    while i < len(mods) and isinstance(mods[i], (nn.ConstantPad1d, nn.ZeroPad1d)):
        pad: Any = mods[i]
        if float(getattr(pad, "value", 0.0)) != 0.0:
            return None
        p = tuple(pad.padding)
        left, right = left + int(p[0]), right + int(p[1])
        i += 1
    conv = mods[i] if i < len(mods) else None
    if not isinstance(conv, nn.Conv1d):
        return None
    if conv.stride != (1,) or conv.dilation != (1,) or conv.groups != 1 or conv.padding_mode != "zeros":
        return None
    if conv.padding == "valid":
        own = (0, 0)
    elif conv.padding == "same":
        total = conv.kernel_size[0] - 1
        own = (total // 2, total - total // 2)
    else:
        p0 = int(conv.padding[0])  # type: ignore[index]
        own = (p0, p0)
    return conv, (left + own[0], right + own[1]), i + 1


def conv_pool_parts(model: Any) -> ConvPoolParts | None:
    """Describe ``model`` as convolution → point-wise → global pooling → head, or ``None``.

    Recognised structurally: biodl's DeepBind (its ``conv`` block, ReLU, ``pooling`` and dense
    head) and ``nn.Sequential`` models ``[padding] → Conv1d → point-wise modules (activations,
    eval-mode batch norm/dropout) → AdaptiveMax/AvgPool1d(1) → rest``.
    """
    net = as_module(model)
    from biodl.models.deepbind import DeepBind

    if isinstance(net, DeepBind) and isinstance(net.conv, nn.Sequential):
        found = _conv_and_pad(_flatten(net.conv))
        pools = {"max": ("max",), "avg": ("avg",), "max+avg": ("max", "avg")}.get(str(net.pooling))
        if found is None or pools is None or found[2] != len(_flatten(net.conv)):
            return None
        act = getattr(net, "act", None)
        pointwise = (act,) if isinstance(act, nn.Module) else (nn.ReLU(),)
        dense, head = net.dense, net.head
        return ConvPoolParts(found[0], found[1], pointwise, pools, lambda f: head(dense(f)), is_rc_averaging(net))
    if isinstance(net, nn.Sequential):
        mods = _flatten(net)
        found = _conv_and_pad(mods)
        if found is None:
            return None
        conv, pad, i = found
        chain: list[nn.Module] = []
        while i < len(mods) and isinstance(mods[i], _POINTWISE):
            chain.append(mods[i])
            i += 1
        if i >= len(mods):
            return None
        pool = mods[i]
        if isinstance(pool, nn.AdaptiveMaxPool1d) and pool.output_size in (1, (1,)):
            kind = "max"
        elif isinstance(pool, nn.AdaptiveAvgPool1d) and pool.output_size in (1, (1,)):
            kind = "avg"
        else:
            return None
        rest = nn.Sequential(*mods[i + 1 :])
        return ConvPoolParts(conv, pad, tuple(chain), (kind,), lambda f: rest(f[..., None]), False)
    return None


def _pointwise(parts: ConvPoolParts, z: torch.Tensor, *, inplace: bool = False) -> torch.Tensor:
    if inplace and all(type(m) is nn.ReLU for m in parts.pointwise):
        return torch.relu_(z) if parts.pointwise else z
    for m in parts.pointwise:
        z = m(z)
    return z


def _monotone(parts: ConvPoolParts) -> bool:
    """Whether the point-wise modules are non-decreasing (then max-pooling commutes with them)."""
    for m in parts.pointwise:
        if isinstance(m, nn.BatchNorm1d):
            if m.training or (m.weight is not None and bool((m.weight < 0).any())):
                return False
        elif isinstance(m, nn.LeakyReLU):
            if m.negative_slope < 0:
                return False
        elif isinstance(m, nn.ELU):
            if m.alpha < 0:
                return False
        elif not isinstance(m, (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Identity, nn.Dropout)):
            return False
    return True


def _fast_strand(parts: ConvPoolParts, X: torch.Tensor, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference ``(n, T)`` and mutant outputs ``(n, T, A, L)`` of one strand (reference outside ``[start, end)``).

    A substitution at position ``l`` to letter ``b`` changes only the convolution outputs
    ``p = l + pad_left - j`` (``j = 0..width-1``), by ``W[:, b, j] - W[:, :, j] @ x[:, l]``; every
    other output, and so the pooled value outside that window, is the wild type's. Window slot
    ``s = width-1-j`` holds output ``p = l + pad_left - width + 1 + s``.
    """
    n, A, L = X.shape
    conv = parts.conv
    W = conv.weight.to(X.dtype)  # (F, A, k)
    F_, _, k = W.shape
    pl, pr = parts.pad
    Z = nn.functional.conv1d(nn.functional.pad(X, (pl, pr)), W, conv.bias)  # (n, F, Lo)
    Lo = Z.shape[-1]
    H = _pointwise(parts, Z)
    neg = float("-inf")
    ref = parts.head(torch.cat([H.amax(-1) if p == "max" else H.mean(-1) for p in parts.pools], dim=1)).float()  # (n, T)
    T = ref.shape[1]
    out = ref[:, :, None, None].expand(n, T, A, L).clone()
    relu = all(type(m) is nn.ReLU for m in parts.pointwise) and len(parts.pointwise) > 0
    monotone = _monotone(parts)
    # act(-inf) = 0 for ReLU-like point-wise modules: then padded window slots need no extra masking
    zero_at_neg_inf = bool((_pointwise(parts, torch.full((1, F_, 1), neg, dtype=Z.dtype, device=Z.device)) == 0).all())
    few = (end - start) * 8 <= Lo
    if "max" in parts.pools:
        fill = torch.full((n, F_, 1), neg, dtype=H.dtype, device=H.device)
        if few:  # a few positions (variants): the maxima outside each window directly
            cols = []
            for q in range(start, end):
                lo_, hi_ = max(0, q + pl - k + 1), min(Lo - 1, q + pl)
                left = H[..., :lo_].amax(-1) if lo_ > 0 else fill[..., 0]
                right = H[..., hi_ + 1 :].amax(-1) if hi_ + 1 < Lo else fill[..., 0]
                cols.append(torch.maximum(left, right))
            outside_all = torch.stack(cols, -1)  # (n, F, end - start)
        else:
            prefix = torch.cat([fill, torch.cummax(H, dim=-1).values], dim=-1)  # prefix[i] = max of H[..., :i]
            suffix = torch.cat([torch.cummax(H.flip(-1), dim=-1).values.flip(-1), fill], dim=-1)  # max of H[..., i:]
    if "avg" in parts.pools:
        csum = nn.functional.pad(H.cumsum(-1), (1, 0))  # csum[i] = sum of H[..., :i]
        total = csum[..., -1]
    # windows[n, q, s, f] = Z[n, f, q + start + pl - k + 1 + s] (0 / -inf outside 0..Lo-1): a strided view over the
    # outputs the mutated positions reach, filters innermost
    a, b = start + pl - k + 1, end + pl
    Zs = nn.functional.pad(Z[..., max(0, a) : min(Lo, b)], (max(0, -a), max(0, b - Lo)), value=0.0 if relu else neg)
    Zt = Zs.transpose(1, 2).contiguous()  # (n, end - start + k - 1, F)
    sn, sl, sf = Zt.stride()
    windows = Zt.as_strided((n, end - start, k, F_), (sn, sl, sl, sf))
    W_rev = W.flip(-1)  # slot order
    Wt = W_rev.permute(1, 2, 0).contiguous()  # (A, k, F): filters innermost, so reductions over slots vectorise
    Wmat = Wt.reshape(A, k * F_)
    s_idx = torch.arange(k, device=X.device)
    step = max(1, min(end - start, _FAST_BUDGET // max(n * A * F_ * k, 1)))
    buf = torch.empty(n * step * A * k * F_, dtype=Z.dtype, device=Z.device)
    for s0 in range(start, end, step):
        s1 = min(end, s0 + step)
        P = s1 - s0
        pos = torch.arange(s0, s1, device=X.device)
        p_idx = pos[:, None] + pl - k + 1 + s_idx[None, :]  # (P, k) output position of each slot
        valid = (p_idx >= 0) & (p_idx < Lo)
        # wild-type pre-activations minus the mutated column's contribution: (n, P, k, F)
        D = windows[:, s0 - start : s1 - start] - (X[:, :, s0:s1].transpose(1, 2) @ Wmat).view(n, P, k, F_)
        lo = (pos + pl - k + 1).clamp(min=0)  # first affected output
        hi = (pos + pl).clamp(max=Lo - 1)  # last affected output
        Znew = buf[: n * P * A * k * F_].view(n, P, A, k, F_)  # every letter at every position
        if relu:  # invalid slots hold exactly 0: harmless for ReLU → max and for sums of ReLU
            if bool(valid.all()):
                torch.add(D[:, :, None], Wt[None, None], out=Znew)
            else:
                valid_f = valid[:, :, None].to(Z.dtype)
                torch.add(D.mul_(valid_f[None])[:, :, None], Wt[None, None] * valid_f[None, :, None], out=Znew)
        else:
            torch.add(D.masked_fill_(~valid[None, :, :, None], neg)[:, :, None], Wt[None, None], out=Znew)
        feats = []
        for p in parts.pools:
            if p == "max":
                outside = (
                    outside_all[:, :, s0 - start : s1 - start] if few else torch.maximum(prefix[:, :, lo], suffix[:, :, hi + 1])
                )
                outside = outside.permute(0, 2, 1)[:, :, None]  # (n, P, 1, F)
                if monotone:
                    inside = _pointwise(parts, Znew.amax(-2).reshape(n * P * A, F_)[..., None])[..., 0].reshape(n, P, A, F_)
                else:
                    Hn = _pointwise(parts, Znew.transpose(-1, -2).reshape(n * P * A, F_, k)).reshape(n, P, A, F_, k)
                    inside = Hn.masked_fill(~valid[None, :, None, None, :], neg).amax(-1)
                feats.append(torch.maximum(inside, outside))
            else:
                old = (csum[:, :, hi + 1] - csum[:, :, lo]).permute(0, 2, 1)[:, :, None]  # (n, P, 1, F)
                if relu:
                    new = Znew.relu_().sum(-2)  # last use of Znew
                else:
                    Hn = _pointwise(parts, Znew.transpose(-1, -2).reshape(n * P * A, F_, k)).reshape(n, P, A, F_, k)
                    if not zero_at_neg_inf:
                        Hn = Hn.masked_fill(~valid[None, :, None, None, :], 0.0)
                    new = Hn.sum(-1)
                feats.append((total[:, None, None, :] - old + new) / Lo)
        y = parts.head(torch.cat(feats, dim=-1).reshape(n * P * A, -1)).float().reshape(n, P, A, T)
        out[:, :, :, s0:s1] = y.permute(0, 3, 2, 1)
    return ref, out


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


def _fast(
    parts: ConvPoolParts, X: torch.Tensor, start: int, end: int, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    N, A = X.shape[0], X.shape[1]
    F_, _, k = parts.conv.weight.shape
    chunk = max(1, min(N, _FAST_BUDGET // max(1, (end - start) * A * F_ * k)))
    return chunked_strands(
        lambda xb, s, e: _fast_strand(parts, xb, s, e), X, start, end, chunk=chunk, rc_average=parts.rc_average,
        device=device, out_device=X.device,
    )  # fmt: skip


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
            return _fast(parts, x, s0, s1, batch_size, dev)
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
