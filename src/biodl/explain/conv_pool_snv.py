"""Reference and alternative outputs of SNVs for convolution → ReLU → global pooling models (DeepBind).

Windows arrive as letter codes ``(N, L)`` (``0..3`` = ACGT, ``4`` = any other letter), never as
one-hot tensors. One fused numba loop per window computes the convolution as a sum of
gathered weight columns (a one-hot input selects one column per tap), the reference's pooled
features, and the alternative's: only the ``k`` outputs whose window covers the variant change,
each by ``W[:, alt, j] − W[:, ref, j]``, so the alternative costs ``O(k × filters)`` on top of
the reference. The reverse strand is the same loop on the reverse-complemented codes, and the
head (dense layers) runs once on the features of all windows, alleles and strands.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from biodl.explain.conv_pool_ism import ConvPoolParts, kernel_mode

__all__ = ["snv_outputs"]


def _snv_features_py(
    codes: np.ndarray, Wc: np.ndarray, T3: np.ndarray, bias: np.ndarray, pl: int, Lo: int, centre: np.ndarray,
    alt: np.ndarray, relu: bool, off_max: int, off_avg: int, ref_out: np.ndarray, alt_out: np.ndarray,
) -> None:  # pragma: no cover - compiled by numba  # fmt: skip
    """Pooled features of every window's reference and alternative (``codes[i]`` with ``alt[i]`` at ``centre[i]``).

    ``Wc`` ``(k, 6, F)``: tap ``j``'s weights per letter code (row 4: the unknown letter's
    column, zeros or the uniform average; row 5: zero padding); ``T3`` ``(G, 216, F)``: the
    summed weights of taps ``3g..3g+2`` per letter triple (``36 a + 6 b + c``), so the
    convolution is ``G = ceil(k / 3)`` row additions per output; ``bias`` ``(F,)``; ``pl`` zero
    padding on the left.
    """
    n, L = codes.shape
    k, _, F = Wc.shape
    G = T3.shape[0]
    Z = np.empty((Lo, F), dtype=Wc.dtype)
    pc = np.empty(Lo + 3 * G - 1, dtype=np.int64)
    tri = np.empty(Lo + 3 * G - 3, dtype=np.int64)
    total = np.empty(F, dtype=np.float64)
    mx = np.empty(F, dtype=Wc.dtype)
    win_sum = np.empty(F, dtype=np.float64)
    new_sum = np.empty(F, dtype=np.float64)
    new_max = np.empty(F, dtype=Wc.dtype)
    for i in range(n):
        for m in range(len(pc)):
            col = m - pl
            pc[m] = codes[i, col] if 0 <= col < L else 5
        for m in range(len(tri)):
            tri[m] = pc[m] * 36 + pc[m + 1] * 6 + pc[m + 2]
        for p in range(Lo):
            z = Z[p]
            for f in range(F):
                z[f] = bias[f]
            for g in range(G):
                w = T3[g, tri[p + 3 * g]]
                for f in range(F):
                    z[f] += w[f]
        c0 = centre[i]
        old, new = codes[i, c0], alt[i]
        lo = max(0, c0 + pl - k + 1)
        hi = min(Lo, c0 + pl + 1)  # changed outputs [lo, hi)
        for f in range(F):
            total[f] = 0.0
            mx[f] = -np.inf
            new_max[f] = -np.inf
            win_sum[f] = 0.0
            new_sum[f] = 0.0
        for p in range(Lo):
            inside = lo <= p < hi
            z = Z[p]
            for f in range(F):
                v = z[f]
                if relu and v < 0:
                    v = 0.0
                total[f] += v
                mx[f] = v if v > mx[f] else mx[f]
                if inside:
                    win_sum[f] += v
                else:
                    new_max[f] = v if v > new_max[f] else new_max[f]
            if inside:
                j = c0 + pl - p
                wo, wn = Wc[j, old], Wc[j, new]
                for f in range(F):
                    v = z[f] - wo[f] + wn[f]
                    if relu and v < 0:
                        v = 0.0
                    new_sum[f] += v
                    new_max[f] = v if v > new_max[f] else new_max[f]
        r, a = ref_out[i], alt_out[i]
        if off_max >= 0:
            for f in range(F):
                r[off_max + f] = mx[f]
                a[off_max + f] = new_max[f]
        if off_avg >= 0:
            for f in range(F):
                r[off_avg + f] = total[f] / Lo
                a[off_avg + f] = (total[f] - win_sum[f] + new_sum[f]) / Lo


_KERNEL: list[Any] = []


def _features(
    parts: ConvPoolParts, codes: np.ndarray, centre: np.ndarray, alt: np.ndarray, unknown: str, relu: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    if not _KERNEL:
        import numba

        _KERNEL.append(numba.njit(cache=True, nogil=True)(_snv_features_py))
    conv = parts.conv
    W = conv.weight.detach().float().cpu()  # (F, 4, k)
    F_, A, k = W.shape
    Wc = np.zeros((k, 6, F_), dtype=np.float32)
    Wc[:, :A] = W.permute(2, 1, 0).numpy()
    if unknown == "uniform":
        Wc[:, 4] = W.mean(1).t().numpy()
    G = -(-k // 3)
    Wp = np.zeros((3 * G, 6, F_), dtype=np.float32)
    Wp[:k] = Wc
    Wg = Wp.reshape(G, 3, 6, F_)
    T3 = (Wg[:, 0, :, None, None] + Wg[:, 1, None, :, None] + Wg[:, 2, None, None, :]).reshape(G, 216, F_)
    bias = np.zeros(F_, np.float32) if conv.bias is None else conv.bias.detach().float().cpu().numpy()
    pl, pr = parts.pad
    Lo = codes.shape[1] + pl + pr - k + 1
    G = len(parts.pools)
    ref = np.empty((len(codes), G * F_), np.float32)
    alt_f = np.empty((len(codes), G * F_), np.float32)
    off_max = parts.pools.index("max") * F_ if "max" in parts.pools else -1
    off_avg = parts.pools.index("avg") * F_ if "avg" in parts.pools else -1
    args = (
        np.ascontiguousarray(codes),
        Wc,
        np.ascontiguousarray(T3),
        bias,
        pl,
        Lo,
        centre.astype(np.int64),
        alt.astype(np.uint8),
    )
    _KERNEL[0](*args, relu, off_max, off_avg, ref, alt_f)
    return torch.from_numpy(ref), torch.from_numpy(alt_f)


def snv_outputs(
    parts: ConvPoolParts, codes: np.ndarray, centre: np.ndarray, alt: np.ndarray, *, unknown: str, both_strands: bool
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Reference and alternative outputs ``(N, T)`` of SNV windows, or ``None`` when the kernel does not apply.

    Parameters
    ----------
    codes
        Reference windows ``(N, L)`` uint8 (``0..3`` = ACGT, ``4`` = other).
    centre, alt
        Each window's variant position and alternative letter code.
    unknown
        Encoding of code 4: ``zero`` (all-zero column) or ``uniform`` (0.25 each).
    both_strands
        Average the outputs of both strands (as an ``rc_average`` model does).
    """
    relu = kernel_mode(parts, torch.empty(0, device=parts.conv.weight.device))
    if relu is None or parts.conv.weight.shape[1] != 4:
        return None
    strands = [(codes, centre, alt)]
    if both_strands:
        comp = np.array([3, 2, 1, 0, 4], dtype=np.uint8)
        strands.append((comp[codes][:, ::-1], codes.shape[1] - 1 - centre, comp[alt]))
    outs = []
    for c, pos, a in strands:
        f_ref, f_alt = _features(parts, c, pos, a, unknown, relu)
        y = parts.head(torch.cat([f_ref, f_alt])).float()
        outs.append(y[:, None] if y.ndim == 1 else y)
    y = outs[0] if len(outs) == 1 else 0.5 * (outs[0] + outs[1])
    n = len(codes)
    return y[:n], y[n:]
