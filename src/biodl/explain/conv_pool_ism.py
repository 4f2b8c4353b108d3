"""Fast ISM for convolution → point-wise → global pooling → head models (DeepBind).

A substitution at position ``l`` changes only the ``k`` convolution outputs whose window covers
it, each by a rank-1 term: ``Δz[p, f] = W[f, new, j] − W[f, old, j]`` for the tap ``j = l + P − p``.
The wild type's convolution runs once; every mutant's changed window is the wild type's window
plus a gather from the weight table (no convolution), and the pooled features combine the
window's new values with the wild type's maxima outside it (prefix/suffix maxima) and its sum
outside it (cumulative sums). The pooled features of all mutants then go through the head in
large batches.

On the CPU the per-window reduction (max and sum of the point-wise output over the ``k`` slots
of every filter, for each position and letter) is one fused loop compiled with numba
(:func:`_window_stats`): it reads each slot once and never materialises the ``(positions,
letters, k, filters)`` tensor, which the broadcast tensor path (used on GPUs and for point-wise
modules other than ReLU) writes and reads several times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from biodl.explain._common import as_module, is_rc_averaging
from biodl.explain.fast_ism import chunked_strands

__all__ = ["ConvPoolParts", "conv_pool_ism", "conv_pool_parts", "kernel_mode"]

#: Elements of the largest temporary tensor of the fast mode (bounds memory).
_FAST_BUDGET = 1 << 23


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


def kernel_mode(parts: ConvPoolParts, X: torch.Tensor) -> bool | None:
    """``True`` (ReLU), ``False`` (identity) when the fused CPU kernel applies to ``parts`` and ``X``, else ``None``."""
    if X.device.type != "cpu" or X.dtype not in (torch.float32, torch.float64) or not _have_numba():
        return None
    kinds = {type(m) for m in parts.pointwise} - {nn.Identity, nn.Dropout}
    if not kinds:
        return False
    return True if kinds == {nn.ReLU} else None


def _have_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover - numba is a dependency
        return False
    return True


def _pooled_features_py(
    Z: np.ndarray, Wt: np.ndarray, X: np.ndarray, start: int, pl: int, relu: bool, off_max: int, off_avg: int, out: np.ndarray
) -> None:  # pragma: no cover - compiled by numba
    """Pooled features of every mutant, fused in one loop: no ``(positions, letters, k, filters)`` tensor.

    ``Z`` ``(n, Lo, F)`` wild-type pre-activations, ``Wt`` ``(A, k, F)`` weights in slot order
    (slot ``s`` is tap ``k - 1 - s``: output ``pos + pl - k + 1 + s``), ``X`` ``(n, A, L)``. For
    position ``start + q`` and letter ``a``, ``out[i, q, a, off + f]`` is filter ``f``'s global
    max (``off_max >= 0``) or mean (``off_avg >= 0``) of the mutant's activations (ReLU or
    identity): the window's new values combined with the wild type's maximum and sum outside it.
    """
    n, Lo, F = Z.shape
    A, k, _ = Wt.shape
    P = out.shape[1]
    base = np.empty((k, F), dtype=Z.dtype)
    H = np.empty((Lo, F), dtype=Z.dtype)
    prefix = np.empty((Lo + 1, F), dtype=Z.dtype)  # max of H[:p]
    suffix = np.empty((Lo + 1, F), dtype=Z.dtype)  # max of H[p:]
    total = np.empty(F, dtype=np.float64)
    outside = np.empty(F, dtype=Z.dtype)
    old = np.empty(F, dtype=np.float64)
    m = np.empty(F, dtype=Z.dtype)
    t = np.empty(F, dtype=Z.dtype)
    for i in range(n):
        for f in range(F):
            prefix[0, f] = -np.inf
            suffix[Lo, f] = -np.inf
            total[f] = 0.0
        for p in range(Lo):
            for f in range(F):
                v = Z[i, p, f]
                if relu and v < 0:
                    v = 0.0
                H[p, f] = v
                total[f] += v
                prefix[p + 1, f] = v if v > prefix[p, f] else prefix[p, f]
        for p in range(Lo - 1, -1, -1):
            for f in range(F):
                suffix[p, f] = H[p, f] if H[p, f] > suffix[p + 1, f] else suffix[p + 1, f]
        for q in range(P):
            pos = start + q
            p0 = pos + pl - k + 1
            s_lo = max(0, -p0)
            s_hi = min(k, Lo - p0)
            for f in range(F):
                old[f] = 0.0
            for s in range(s_lo, s_hi):
                zrow = Z[i, p0 + s]
                hrow = H[p0 + s]
                brow = base[s]
                for f in range(F):
                    brow[f] = zrow[f]
                    old[f] += hrow[f]
                for b in range(A):
                    xb = X[i, b, pos]
                    if xb != 0:
                        wrow = Wt[b, s]
                        for f in range(F):
                            brow[f] = brow[f] - xb * wrow[f]
            lo, hi = p0 + s_lo, p0 + s_hi  # the changed outputs [lo, hi)
            for f in range(F):
                outside[f] = prefix[lo, f] if prefix[lo, f] > suffix[hi, f] else suffix[hi, f]
            for a in range(A):
                row = out[i, q, a]
                same = True  # the identity substitution: the wild type's features (its output is the reference)
                for b in range(A):
                    if X[i, b, pos] != (1.0 if b == a else 0.0):
                        same = False
                if same:
                    if off_max >= 0:
                        for f in range(F):
                            row[off_max + f] = prefix[Lo, f]
                    if off_avg >= 0:
                        for f in range(F):
                            row[off_avg + f] = total[f] / Lo
                    continue
                for f in range(F):
                    m[f] = -np.inf
                    t[f] = 0.0
                for s in range(s_lo, s_hi):
                    brow = base[s]
                    wrow = Wt[a, s]
                    for f in range(F):
                        v = brow[f] + wrow[f]
                        m[f] = v if v > m[f] else m[f]
                        if relu:
                            t[f] += v if v > 0 else 0.0
                        else:
                            t[f] += v
                if off_max >= 0:
                    for f in range(F):
                        v = m[f]
                        if relu and v < 0:
                            v = 0.0
                        row[off_max + f] = v if v > outside[f] else outside[f]
                if off_avg >= 0:
                    for f in range(F):
                        row[off_avg + f] = (total[f] - old[f] + t[f]) / Lo


_KERNEL: list[Any] = []


def _pooled_features(
    parts: ConvPoolParts, Z: torch.Tensor, W: torch.Tensor, X: torch.Tensor, start: int, end: int, relu: bool
) -> torch.Tensor:
    """:func:`_pooled_features_py` compiled by numba (once per process, cached on disk): ``(n, P, A, F × pools)``."""
    if not _KERNEL:
        import numba

        _KERNEL.append(numba.njit(cache=True, nogil=True)(_pooled_features_py))
    n, F_, _ = Z.shape
    A = X.shape[1]
    G = len(parts.pools)
    out = np.empty((n, end - start, A, G * F_), dtype=Z.numpy().dtype)
    off_max = parts.pools.index("max") * F_ if "max" in parts.pools else -1
    off_avg = parts.pools.index("avg") * F_ if "avg" in parts.pools else -1
    Zt = Z.transpose(1, 2).contiguous().numpy()
    Wt = W.flip(-1).permute(1, 2, 0).contiguous().numpy()
    _KERNEL[0](Zt, Wt, X.contiguous().numpy(), start, parts.pad[0], relu, off_max, off_avg, out)
    return torch.from_numpy(out)


def _kernel_strand(parts: ConvPoolParts, X: torch.Tensor, start: int, end: int, relu: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_fast_strand` with the pooled features of all mutants from the fused kernel (ReLU or no point-wise module)."""
    n, A, L = X.shape
    W = parts.conv.weight.to(X.dtype)
    pl, pr = parts.pad
    bias = None if parts.conv.bias is None else parts.conv.bias.to(X.dtype)
    Z = nn.functional.conv1d(nn.functional.pad(X, (pl, pr)), W, bias)  # (n, F, Lo)
    H = torch.relu(Z) if relu else Z
    ref = parts.head(torch.cat([H.amax(-1) if p == "max" else H.mean(-1) for p in parts.pools], dim=1)).float()
    T = ref.shape[1]
    out = ref[:, :, None, None].expand(n, T, A, L).clone()
    feats = _pooled_features(parts, Z, W, X, start, end, relu)
    P = end - start
    y = parts.head(feats.reshape(n * P * A, -1)).float().reshape(n, P, A, T)
    out[:, :, :, start:end] = y.permute(0, 3, 2, 1)
    return ref, out


def conv_pool_ism(
    parts: ConvPoolParts, X: torch.Tensor, start: int, end: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference ``(N, T)`` and mutant outputs ``(N, T, A, L)`` (both strands averaged when the model does).

    On the CPU with ReLU (or no) point-wise modules the fused kernel reduces every mutant's
    window; otherwise the broadcast tensor path does.
    """
    N, A = X.shape[0], X.shape[1]
    F_, _, k = parts.conv.weight.shape
    relu = kernel_mode(parts, X.to(device)[:0])
    if relu is not None:
        chunk = max(1, min(N, _FAST_BUDGET // max(1, (end - start) * A * F_ * 8)))

        def strand(xb: torch.Tensor, s: int, e: int) -> tuple[torch.Tensor, torch.Tensor]:
            return _kernel_strand(parts, xb, s, e, relu)

    else:
        chunk = max(1, min(N, _FAST_BUDGET // max(1, (end - start) * A * F_ * k)))

        def strand(xb: torch.Tensor, s: int, e: int) -> tuple[torch.Tensor, torch.Tensor]:
            return _fast_strand(parts, xb, s, e)

    return chunked_strands(strand, X, start, end, chunk=chunk, rc_average=parts.rc_average, device=device, out_device=X.device)
