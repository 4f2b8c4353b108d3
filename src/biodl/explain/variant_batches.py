"""Scoring variant windows in batches: both alleles and strands in one pass, fast-ISM alternative alleles.

Used by :func:`biodl.explain.variant_effects.variant_effects`; windows arrive as letter codes and
are encoded and scored in chunks so memory holds one chunk, not the whole VCF.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from biodl.explain._common import autocast_context, evaluating, is_rc_averaging, reverse_complement
from biodl.explain.variant_windows import one_hot

__all__ = ["score_windows"]


def _predict_pairs(
    net: torch.nn.Module, X_ref: torch.Tensor, X_alt: torch.Tensor, batch_size: int, device: torch.device, rc_average: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs ``(N, T)`` of reference and alternative windows, both alleles (and both strands) in one forward pass.

    A biodl model that averages strands itself has its per-strand ``score`` run on
    ``[ref, alt, rc(ref), rc(alt)]``; ``rc_average`` does the same for any module.
    """
    own_rc = is_rc_averaging(net) and X_ref.shape[-1] == getattr(net, "length", -1)
    both = rc_average or own_rc
    fn: Any = net.score if own_rc else net
    refs, alts = [], []
    with evaluating(net), torch.inference_mode(), autocast_context(device, False):
        for i in range(0, len(X_ref), batch_size):
            xr, xa = X_ref[i : i + batch_size].to(device), X_alt[i : i + batch_size].to(device)
            n = len(xr)
            parts = [xr, xa, reverse_complement(xr), reverse_complement(xa)] if both else [xr, xa]
            y = fn(torch.cat(parts)).float()
            y = y[:, None] if y.ndim == 1 else y
            if both:
                y = 0.5 * (y[: 2 * n] + y[2 * n :])
            refs.append(y[:n].cpu())
            alts.append(y[n:].cpu())
    return torch.cat(refs), torch.cat(alts)


def _snv_alt_fast(
    net: torch.nn.Module, X_ref: torch.Tensor, alt_code: np.ndarray, centre: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Reference and alternative outputs of SNVs by fast ISM at each variant's own position, or ``None``.

    The alternative window differs from the reference in one column, so (for deep convolutional
    stacks, see :mod:`biodl.explain.fast_ism`) each window's wild type runs once (wide convolutions
    by the FFT) and only the windows of each layer that the column reaches are recomputed for the
    alternative: one reference pass plus a small update per variant and strand, both strands in
    the same batch.
    """
    from biodl.explain.fast_ism import local_plan, local_snv

    # one convolution before global pooling (DeepBind): a window is a large part of the forward pass, no gain
    plan = local_plan(net)
    if plan is None or len(plan.layers) < 3:
        return None
    col = torch.eye(X_ref.shape[1], dtype=X_ref.dtype)[torch.from_numpy(np.asarray(alt_code)).long()]
    with evaluating(net), torch.inference_mode(), autocast_context(device, False):
        return local_snv(plan, X_ref, torch.from_numpy(np.asarray(centre)).long(), col, device)


def _conv_pool_all(
    net: torch.nn.Module, ref_codes: np.ndarray, alt_codes: np.ndarray, code: np.ndarray, centre: np.ndarray,
    unknown: str, rc_average: bool, device: torch.device, chunk: int = 8192,
) -> tuple[torch.Tensor, torch.Tensor] | None:  # fmt: skip
    """Outputs of every window of a DeepBind-style model by the fused kernel (else ``None``).

    SNVs (``code >= 0``) cost one window plus the update of the variant's column; other
    variants have both windows computed by the same kernel (the identity update). Checked
    against full forward passes on the first rows of each kind.
    """
    from biodl.explain.conv_pool_ism import conv_pool_parts
    from biodl.explain.conv_pool_snv import snv_outputs

    parts = conv_pool_parts(net)
    if parts is None or device.type != "cpu":
        return None
    both = rc_average or parts.rc_average
    n = len(ref_codes)
    snv = code >= 0
    y_ref: torch.Tensor | None = None
    y_alt: torch.Tensor | None = None
    with evaluating(net), torch.inference_mode(), autocast_context(device, False):
        for i in range(0, n, chunk):
            rows = np.arange(i, min(n, i + chunk))
            s_rows, o_rows = rows[snv[rows]], rows[~snv[rows]]
            parts_out = []
            if len(s_rows):
                got = snv_outputs(parts, ref_codes[s_rows], centre[s_rows], code[s_rows], unknown=unknown, both_strands=both)
                if got is None:
                    return None
                parts_out.append((s_rows, *got))
            if len(o_rows):
                wins = np.concatenate([ref_codes[o_rows], alt_codes[o_rows]])
                got = snv_outputs(parts, wins, np.zeros(len(wins), np.int64), wins[:, 0], unknown=unknown, both_strands=both)
                if got is None:
                    return None
                parts_out.append((o_rows, got[0][: len(o_rows)], got[0][len(o_rows) :]))
            for r, a_ref, a_alt in parts_out:
                if y_ref is None or y_alt is None:
                    y_ref, y_alt = torch.empty((n, a_ref.shape[1])), torch.empty((n, a_ref.shape[1]))
                y_ref[torch.from_numpy(r)], y_alt[torch.from_numpy(r)] = a_ref, a_alt
        if y_ref is None or y_alt is None:
            return None
        k = np.concatenate([np.flatnonzero(snv)[:2], np.flatnonzero(~snv)[:2]])
        want = _predict_pairs(net, one_hot(ref_codes[k], unknown), one_hot(alt_codes[k], unknown), 64, device, rc_average)
    tol = 1e-4 * (1 + float(want[1].abs().max()))
    if not all(torch.allclose(g[torch.from_numpy(k)], w, atol=tol) for g, w in zip((y_ref, y_alt), want, strict=True)):
        return None
    return y_ref, y_alt


def score_windows(
    net: torch.nn.Module,
    ref_codes: np.ndarray,
    alt_codes: np.ndarray,
    snv_code: np.ndarray,
    snv_centre: np.ndarray,
    unknown: str,
    batch_size: int,
    device: torch.device,
    rc_average: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs ``(N, T)`` of every variant's reference and alternative window (letter codes ``(N, L)``).

    DeepBind-style models score every window with the fused kernel
    (:mod:`biodl.explain.conv_pool_snv`; an SNV, ``snv_code >= 0`` the alternative letter at
    ``snv_centre``, costs its reference window plus one column's update). SNVs of deeper
    convolutional stacks through fast ISM where the architecture allows it (both checked against
    full forward passes; without a match, every variant takes the full path). Other variants
    have both alleles (and both strands) in one forward pass. Windows are encoded chunk by
    chunk (flat memory).
    """
    code, centre = np.asarray(snv_code), np.asarray(snv_centre)
    n = len(ref_codes)
    y_ref: torch.Tensor | None = None
    y_alt: torch.Tensor | None = None
    done = np.zeros(n, dtype=bool)

    def put(rows: np.ndarray, r: torch.Tensor, a: torch.Tensor) -> None:
        nonlocal y_ref, y_alt
        if y_ref is None or y_alt is None:
            y_ref, y_alt = torch.empty((n, r.shape[1])), torch.empty((n, r.shape[1]))
        idx = torch.from_numpy(rows)
        y_ref[idx], y_alt[idx] = r, a
        done[rows] = True

    if n:
        got = _conv_pool_all(net, ref_codes, alt_codes, code, centre, unknown, rc_average, device)
        if got is not None:
            return got
    fast_ok: bool | None = None if not (rc_average and not is_rc_averaging(net)) else False
    chunk = max(batch_size, 8192)
    for i in range(0, n, chunk):
        rows = np.arange(i, min(n, i + chunk))
        rows = rows[~done[rows]]
        if not len(rows):
            continue
        X_ref = one_hot(ref_codes[rows], unknown)
        fast_rows = np.flatnonzero(code[rows] >= 0)
        if fast_ok is not False and len(fast_rows):
            got = _snv_alt_fast(net, X_ref[fast_rows], code[rows][fast_rows], centre[rows][fast_rows], device)
            if got is not None and fast_ok is None:  # check once against the full forward pass
                k = fast_rows[:2]
                want = _predict_pairs(net, X_ref[k], one_hot(alt_codes[rows[k]], unknown), 64, device, rc_average)
                tol = 1e-4 * (1 + float(want[1].abs().max()))
                fast_ok = all(torch.allclose(g[: len(k)], w, atol=tol) for g, w in zip(got, want, strict=True))
            fast_ok = fast_ok and got is not None
            if fast_ok and got is not None:
                put(rows[fast_rows], *got)
        rest = rows[~done[rows]]
        if len(rest):
            keep = np.searchsorted(rows, rest)
            # small forward batches: large convolution batches run slower on CPUs
            r, a = _predict_pairs(
                net, X_ref[keep], one_hot(alt_codes[rest], unknown), max(1, batch_size // 4), device, rc_average
            )
            put(rest, r, a)
    assert y_ref is not None and y_alt is not None
    return y_ref, y_alt
