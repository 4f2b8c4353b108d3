"""Fast-ISM for deep convolutional stacks (Nair et al., Bioinformatics 38:2397, 2022).

A single-letter substitution changes only a bounded window of every convolution, pooling and
point-wise layer's output. The wild type runs once through the model (the plan of
:mod:`biodl.explain.fast_ism_plan`) and every layer's input is cached; for each mutant only the
changed window is recomputed, layer by layer: a stride-1 convolution's window is the wild type's
plus the convolution of the input's change (one matrix product for all taps), and a convolution
followed by pooling computes the pooling's whole input window at once. At the first layer with a
global receptive field the window is written into the cached activation and the rest of the
network runs on that full tensor; when that layer is ``Flatten → Linear`` its output is the wild
type's plus the weights of the changed window times the change (the unchanged parts reused).

The affected window of a layer with kernel span ``K`` (``(k - 1) × dilation + 1``), stride
``S`` and left padding ``P`` that receives an input window ``[s, s + w)`` is the outputs
``o`` with ``o S - P + [0, K) ∩ [s, s + w) ≠ ∅``: at most ``(w + K - 2) // S + 1`` of them,
starting at ``ceil((s + P - K + 1) / S)``; windows are clamped inside the layer's output (a
window may hold unchanged wild-type positions, never miss a changed one), so every mutant of a
batch has the same window widths and one batched ``conv1d``/``max_pool1d`` call per layer
computes them all.

:func:`local_ism` scores every mutant of a span (saturation mutagenesis); :func:`local_snv` one
changed column per window (variant effects), both strands in one batch, its wild-type pass with
wide convolutions through the FFT (:mod:`biodl.explain.fast_convs`). DeepBind (one convolution
→ global pooling) has its own faster path in :mod:`biodl.explain.conv_pool_ism`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from biodl.explain._common import reverse_complement
from biodl.explain.fast_convs import conv1d_fast
from biodl.explain.fast_ism_plan import LocalLayer, LocalPlan, local_plan

__all__ = ["LocalLayer", "LocalPlan", "local_ism", "local_plan", "local_snv"]

#: Elements of the largest per-batch temporary tensor (bounds memory, sets the batch size).
_BUDGET = 1 << 22


def _pointwise(mods: tuple[nn.Module, ...], x: torch.Tensor) -> torch.Tensor:
    for m in mods:
        x = m(x)
    return x


class _Geometry(NamedTuple):
    lin: int  # input length
    lout: int  # output length
    pad_right: int  # padding needed right of the input for the clamped windows


def _wild_type(
    plan: LocalPlan, X: torch.Tensor, fft: bool = False
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[_Geometry], torch.Tensor, torch.Tensor | None]:
    """Inputs of every local layer and of the tail ``[(n, C_i, L_i)]``, each layer's output before its point-wise
    modules (convolutions that :func:`_conv_delta` updates; an empty tensor elsewhere), each layer's padded input
    (layers that gather their window; empty elsewhere), the layers' geometry, the reference outputs ``(n, T)`` and
    the output of ``plan.linear`` (``None`` without one).

    ``fft``: convolutions through :func:`~biodl.explain.fast_convs.conv1d_fast` where faster (the FFT's float32
    rounding differs from the direct convolution's, about 1e-7 of the scale).
    """
    acts: list[torch.Tensor] = [X]
    raws: list[torch.Tensor] = []
    padded: list[torch.Tensor] = []
    geo: list[_Geometry] = []
    h = X
    none = X.new_empty(0)
    for layer in plan.layers:
        lin = h.shape[-1]
        right = layer.pad_right
        lout = (lin + layer.pad_left + right - layer.span) // layer.stride + 1
        got = conv1d_fast(layer.conv, h, layer.pad_left, right) if fft and layer.conv is not None else None
        hp = h
        if got is None and (layer.pad_left or right):
            hp = F.pad(h, (layer.pad_left, right), value=layer.fill)
        raw = got if got is not None else layer.op(hp)
        raws.append(raw if layer.conv is not None else none)
        padded.append(hp if layer.conv is None else none)
        h = _pointwise(layer.after, raw)
        if h.shape[-1] != lout:  # pragma: no cover - the plan's geometry disagrees with the module
            raise RuntimeError("local layer geometry mismatch")
        geo.append(_Geometry(lin, lout, right))
        acts.append(h)
    if plan.linear is None or plan.post is None:
        return acts, raws, padded, geo, plan.tail(h), None
    z = plan.linear(h.flatten(1))
    return acts, raws, padded, geo, plan.post(z), z


def _windows(a: torch.Tensor, seq: torch.Tensor, start: torch.Tensor, w: int) -> torch.Tensor:
    """``a[seq[b], :, start[b] : start[b] + w]`` ``(B, C, w)`` of ``a`` ``(n, C, L)`` (read only: may be a view).

    Few distinct starts (variants: one per strand) take one slice each, not an element-wise gather.
    """
    starts = torch.unique(start)
    if len(starts) > 8:
        return a.unfold(2, w, 1)[seq, :, start]
    if len(starts) == 1:
        v = int(starts[0])
        if len(seq) == a.shape[0] and bool((seq == torch.arange(len(seq), device=seq.device)).all()):
            return a[:, :, v : v + w]
        return a[:, :, v : v + w].index_select(0, seq)
    out = a.new_empty(len(seq), a.shape[1], w)
    for v in starts.tolist():
        rows = torch.nonzero(start == v)[:, 0]
        out[rows] = a[:, :, v : v + w].index_select(0, seq.index_select(0, rows))
    return out


_TAPS: dict[int, tuple[nn.Conv1d, torch.Tensor]] = {}


def _tap_matrix(conv: nn.Conv1d, W: torch.Tensor) -> torch.Tensor:
    """``W`` as ``(Cin, k × C')`` (taps outer, output channels inner), cached per convolution for the call."""
    hit = _TAPS.get(id(conv))
    if hit is not None and hit[0] is conv and hit[1].dtype == W.dtype and hit[1].device == W.device:
        return hit[1]
    m = W.permute(1, 2, 0).reshape(W.shape[1], -1).contiguous()
    if len(_TAPS) > 32:  # plans build new (folded) convolutions on every call
        _TAPS.clear()
    _TAPS[id(conv)] = (conv, m)
    return m


def _conv_delta(
    layer: LocalLayer, conv: nn.Conv1d, a: torch.Tensor, raw: torch.Tensor, g: _Geometry,
    seq: torch.Tensor, s: torch.Tensor, win: torch.Tensor, c: torch.Tensor, w_out: int,
) -> torch.Tensor:  # fmt: skip
    """Output window ``(B, C', w_out)`` at ``c`` of a stride-1 convolution: the wild type's plus ``conv(Δ)``.

    ``Δ = win − wild type`` on the input window ``[s, s + w)``; every tap ``j`` adds ``W[:, :, j] Δ[t]``
    to output ``s + t + P − j d``, one matrix product for all taps.
    """
    w_in = win.shape[-1]
    W = conv.weight.to(win.dtype)
    cout = W.shape[0]
    d, span, P = conv.dilation[0], layer.span, layer.pad_left
    base = _windows(a, seq, s, w_in)  # (B, Cin, w_in)
    # tap j of input t lands on output offset t + span - 1 - j d: a transposed convolution with the flipped kernel
    B, cin, _ = win.shape
    k = W.shape[-1]
    Y = ((win - base).transpose(1, 2).reshape(B * w_in, cin) @ _tap_matrix(conv, W)).view(B, w_in, k, cout)
    D = torch.zeros(B, w_in + span - 1, cout, dtype=win.dtype, device=win.device)
    for j in range(k):
        off = span - 1 - j * d
        D[:, off : off + w_in] += Y[:, :, j]
    D = D.transpose(1, 2)  # (B, C', w_in + span - 1) from o_lo = s + P - span + 1
    return _windows(raw, seq, c, w_out) + _shifted(D, c - (s + P - span + 1), w_out)


def _shifted(D: torch.Tensor, shift: torch.Tensor, w_out: int) -> torch.Tensor:
    """``out[b, :, t] = D[b, :, shift[b] + t]`` ``(B, C, w_out)``, zero where that lies outside ``D`` ``(B, C, full)``.

    One slice per distinct shift when there are few (interior windows share one), else one gather.
    """
    B, cout, full = D.shape
    shifts = torch.unique(shift)
    if len(shifts) == 1 and int(shifts[0]) == 0 and w_out == full:
        return D
    if len(shifts) > 8:
        Dp = F.pad(D, (w_out + full, w_out + full))
        idx = (shift + w_out + full)[:, None] + torch.arange(w_out, device=D.device)[None]
        return Dp.gather(2, idx[:, None, :].expand(-1, cout, -1))
    out = D.new_zeros(B, cout, w_out)
    for v in shifts.tolist():
        lo, hi = max(0, -v), min(w_out, full - v)
        if hi <= lo:
            continue
        if len(shifts) == 1:
            out[:, :, lo:hi] = D[:, :, v + lo : v + hi]
        else:
            rows = torch.nonzero(shift == v)[:, 0]
            out[rows, :, lo:hi] = D.index_select(0, rows)[:, :, v + lo : v + hi]
    return out


_DENSE: dict[int, tuple[nn.Linear, torch.Tensor]] = {}


def _linear_delta(
    linear: nn.Linear, last: torch.Tensor, zref: torch.Tensor, seq: torch.Tensor, s: torch.Tensor, win: torch.Tensor
) -> torch.Tensor:
    """``linear(flatten(x))`` ``(B, out)`` of each wild type ``last[seq[b]]`` ``(n, C, Lf)`` with positions
    ``[s[b], s[b] + w)`` replaced by ``win[b]`` ``(B, C, w)``: ``zref[seq] + W[:, :, window] · Δ``, one matrix
    product per distinct window start (weights as ``(Lf, C, out)``, so a window's rows are contiguous)."""
    C, Lf = last.shape[1], last.shape[2]
    w = win.shape[-1]
    hit = _DENSE.get(id(linear))
    if hit is None or hit[0] is not linear or hit[1].dtype != last.dtype:
        if len(_DENSE) > 32:
            _DENSE.clear()
        Wt = linear.weight.detach().to(last.dtype).view(-1, C, Lf).permute(2, 1, 0).contiguous()
        _DENSE[id(linear)] = hit = (linear, Wt)
    Wt = hit[1]
    delta = (win.to(last.dtype) - _windows(last, seq, s, w)).transpose(1, 2).reshape(len(seq), w * C)
    z = zref.index_select(0, seq)
    starts = torch.unique(s).tolist()
    for v in starts:
        Wv = Wt[v : v + w].reshape(w * C, -1)
        if len(starts) == 1:
            z.addmm_(delta, Wv)
        else:
            rows = torch.nonzero(s == v)[:, 0]
            z.index_add_(0, rows, delta.index_select(0, rows) @ Wv)
    return z


def _mutant_outputs(
    plan: LocalPlan,
    acts: list[torch.Tensor],
    raws: list[torch.Tensor],
    padded: list[torch.Tensor],
    geo: list[_Geometry],
    seq: torch.Tensor,
    pos: torch.Tensor,
    col: torch.Tensor,
    zref: torch.Tensor | None = None,
) -> torch.Tensor:
    """Outputs ``(B, T)`` of mutants: sequence ``seq[b]`` with column ``pos[b]`` replaced by ``col[b]`` ``(B, A)``.

    ``zref``: the wild types' outputs of ``plan.linear`` (then only the change of its input is multiplied).
    """
    B = seq.shape[0]
    dev = seq.device
    s = pos  # window start in the current layer's input
    win = col[:, :, None].to(acts[0].dtype)  # (B, C, w)
    layers = plan.layers
    ready: torch.Tensor | None = None  # the next layer's output window start when ``win`` is exactly its input
    for i, (layer, g, a, raw, ap) in enumerate(zip(layers, geo, acts, raws, padded, strict=False)):
        if ready is not None:  # the convolution below computed this pooling's whole input window
            win, s, ready = _pointwise(layer.after, layer.op(win)), ready, None
            continue
        w_in = win.shape[-1]
        K, S, P = layer.span, layer.stride, layer.pad_left
        w_out = min(g.lout, (w_in + K - 2) // S + 1)
        o_lo = -torch.div(-(s + P - K + 1), S, rounding_mode="floor")  # ceil
        c = o_lo.clamp(0, g.lout - w_out)
        if layer.conv is not None:
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if nxt is not None and nxt.conv is None and nxt.span > 1 and not (nxt.pad_left or nxt.pad_right):
                # compute the convolution on the next (unpadded) layer's whole input window: no merge with the wild type
                g2, K2, S2 = geo[i + 1], nxt.span, nxt.stride
                w2 = min(g2.lout, (w_out + K2 - 2) // S2 + 1)
                c2 = (-torch.div(-(c - K2 + 1), S2, rounding_mode="floor")).clamp(0, g2.lout - w2)
                w_need = (w2 - 1) * S2 + K2
                win = _conv_delta(layer, layer.conv, a, raw, g, seq, s, win, c2 * S2, w_need)
                win, s, ready = _pointwise(layer.after, win), c2 * S2, c2
                continue
            win = _pointwise(layer.after, _conv_delta(layer, layer.conv, a, raw, g, seq, s, win, c, w_out))
            s = c
            continue
        w_need = (w_out - 1) * S + K
        gstart = c * S  # in padded input coordinates (input position + P)
        G = _windows(ap, seq, gstart, w_need)  # (B, C, w_need) wild-type context
        rel = (gstart - P - s)[:, None] + torch.arange(w_need, device=dev)[None]  # index into the mutant window
        inside = (rel >= 0) & (rel < w_in)
        if w_in == 1:
            M = win.expand(-1, -1, w_need)
        else:
            M = win.gather(2, rel.clamp(0, w_in - 1)[:, None, :].expand(-1, win.shape[1], -1))
        G = torch.where(inside[:, None, :], M, G)
        win = _pointwise(layer.after, layer.op(G))
        s = c
    last = acts[-1]
    if plan.linear is not None and plan.post is not None and zref is not None:
        y = plan.post(_linear_delta(plan.linear, last, zref, seq, s, win))
        return (y[:, None] if y.ndim == 1 else y).float().reshape(B, -1)
    full = last.index_select(0, seq)  # (B, C, L), a copy
    idx = (s[:, None] + torch.arange(win.shape[-1], device=dev)[None])[:, None, :].expand(-1, full.shape[1], -1)
    full.scatter_(2, idx, win.to(full.dtype))
    y = plan.tail(full)
    return (y[:, None] if y.ndim == 1 else y).float().reshape(B, -1)


def _strand(plan: LocalPlan, X: torch.Tensor, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference ``(n, T)`` and mutant outputs ``(n, T, A, L)`` of one strand (reference outside ``[start, end)``)."""
    n, A, L = X.shape
    acts, raws, padded, geo, ref, zref = _wild_type(plan, X)
    ref = (ref[:, None] if ref.ndim == 1 else ref).float()
    T = ref.shape[1]
    out = ref[:, :, None, None].expand(n, T, A, L).clone()
    identity = X[:, :, start:end] == 1
    n_idx, b_idx, l_idx = torch.nonzero(~identity, as_tuple=True)
    l_idx = l_idx + start
    eye = torch.eye(A, dtype=X.dtype, device=X.device)
    width = max([a.shape[1] * (layer.span + 2 * layer.span) for layer, a in zip(plan.layers, acts, strict=False)])
    per_row = max(width * 4, acts[-1].shape[1] * acts[-1].shape[2] * 2)
    rows = max(16, _BUDGET // max(per_row, 1))
    for i in range(0, len(n_idx), rows):
        sq, b, pos = n_idx[i : i + rows], b_idx[i : i + rows], l_idx[i : i + rows]
        out[sq, :, b, pos] = _mutant_outputs(plan, acts, raws, padded, geo, sq, pos, eye[b], zref)
    return ref, out


def local_ism(plan: LocalPlan, X: torch.Tensor, start: int, end: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference ``(N, T)`` and mutant outputs ``(N, T, A, L)`` by Fast-ISM (both strands averaged when the model does).

    Sequences go through in chunks whose cached activations stay within a memory budget.
    """
    N, L = X.shape[0], X.shape[-1]
    chunk = max(1, min(N, math.ceil(_BUDGET * 4 / max(1, L * 512))))
    return chunked_strands(
        lambda xb, s, e: _strand(plan, xb, s, e), X, start, end, chunk=chunk, rc_average=plan.rc_average,
        device=device, out_device=torch.device("cpu"),
    )  # fmt: skip


def local_snv(
    plan: LocalPlan, X: torch.Tensor, pos: torch.Tensor, col: torch.Tensor, device: torch.device, *, fft: bool = True,
    chunk: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Reference and alternative outputs ``(N, T)`` of single-column changes: ``X[i]`` with column ``pos[i]`` set to ``col[i]``.

    One wild-type pass per window caches every layer; the alternative recomputes only the windows the
    changed column reaches (:func:`_mutant_outputs`). With ``plan.rc_average`` the reverse strands of
    the windows (the change at ``L - 1 - pos`` to the complemented column) go through in the same
    batch and both outputs are averaged.

    Parameters
    ----------
    X
        Reference windows ``(N, A, L)``.
    pos, col
        The changed position ``(N,)`` and the new column ``(N, A)`` of each window.
    fft
        Wide convolutions of the wild-type pass by the FFT (see :func:`_wild_type`).
    chunk
        Windows per pass (bounds the cached activations).
    """
    N, _, L = X.shape
    refs, alts = [], []
    for i in range(0, N, chunk):
        xb = X[i : i + chunk].to(device)
        p = pos[i : i + chunk].to(device).long()
        c = col[i : i + chunk].to(device=device, dtype=xb.dtype)
        n = len(xb)
        if plan.rc_average:
            xb, p, c = torch.cat([xb, reverse_complement(xb)]), torch.cat([p, L - 1 - p]), torch.cat([c, c.flip(-1)])
        acts, raws, padded, geo, ref, zref = _wild_type(plan, xb, fft=fft)
        ref = (ref[:, None] if ref.ndim == 1 else ref).float()
        alt = _mutant_outputs(plan, acts, raws, padded, geo, torch.arange(len(xb), device=xb.device), p, c, zref)
        if plan.rc_average:
            ref, alt = 0.5 * (ref[:n] + ref[n:]), 0.5 * (alt[:n] + alt[n:])
        refs.append(ref.cpu())
        alts.append(alt.cpu())
    return torch.cat(refs), torch.cat(alts)


def chunked_strands(
    strand: Callable[[torch.Tensor, int, int], tuple[torch.Tensor, torch.Tensor]],
    X: torch.Tensor,
    start: int,
    end: int,
    *,
    chunk: int,
    rc_average: bool,
    device: torch.device,
    out_device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``strand(xb, start, end)`` over chunks of ``chunk`` sequences of ``X`` ``(N, A, L)``: reference ``(N, T)``
    and mutant outputs ``(N, T, A, L)``, the reverse strand's averaged in when ``rc_average``."""
    L = X.shape[-1]
    refs, outs = [], []
    for i in range(0, X.shape[0], chunk):
        xb = X[i : i + chunk].to(device)
        ref, out = strand(xb, start, end)
        if rc_average:
            ref_r, out_r = strand(reverse_complement(xb), L - end, L - start)
            ref = 0.5 * (ref + ref_r)
            out = 0.5 * (out + reverse_complement(out_r))
        refs.append(ref.to(out_device))
        outs.append(out.to(out_device))
    return torch.cat(refs), torch.cat(outs)
