"""Scoring variant windows in batches: both alleles and strands in one pass, fast-ISM alternative alleles.

Used by :func:`biodl.explain.variant_effects.variant_effects`; windows are encoded and scored in
chunks so memory holds one chunk, not the whole VCF.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from biodl.explain._common import autocast_context, evaluating, is_rc_averaging, reverse_complement

__all__ = ["encode_windows", "score_windows"]


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


def encode_windows(seqs: list[str], unknown: str) -> torch.Tensor:
    """One-hot ``(N, 4, L)`` of equal-length DNA windows in one pass (other letters: zeros, or 0.25 if ``uniform``)."""
    if not seqs:
        return torch.zeros((0, 4, 0))
    codes = _LUT[np.frombuffer("".join(seqs).encode("ascii"), dtype=np.uint8).reshape(len(seqs), -1)]
    table = np.vstack([np.eye(4, dtype=np.float32), np.full((1, 4), 0.25 if unknown == "uniform" else 0.0, np.float32)])
    return torch.from_numpy(np.ascontiguousarray(table[codes].transpose(0, 2, 1)))


_LUT = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate("ACGT"):
    _LUT[ord(_b)] = _LUT[ord(_b.lower())] = _i


def _snv_alt_fast(
    net: torch.nn.Module, X_ref: torch.Tensor, alt_code: np.ndarray, centre: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Reference and alternative outputs of SNVs by fast ISM at each variant's own position, or ``None``.

    The alternative window differs from the reference in one column, so (for deep convolutional
    stacks, see :mod:`biodl.explain.fast_ism`) only the windows of each layer that column reaches
    are recomputed: the alternative allele costs a fraction of a forward pass. Variants are
    grouped by their position in the window.
    """
    from biodl.explain.fast_ism import local_ism, local_plan

    # one convolution before global pooling (DeepBind): a window is a large part of the forward pass, no gain
    plan = local_plan(net)
    if plan is None or len(plan.layers) < 3:
        return None
    n = len(X_ref)
    refs = torch.empty(0)
    alts = torch.empty(0)
    with evaluating(net), torch.inference_mode(), autocast_context(device, False):
        for c in np.unique(centre).tolist():
            rows = np.flatnonzero(centre == c)
            xb = X_ref[rows]
            ref, out = local_ism(plan, xb, c, c + 1, device)
            alt = out[torch.arange(len(rows)), :, torch.from_numpy(alt_code[rows]).long(), c]
            if refs.numel() == 0:
                refs = torch.empty((n, ref.shape[1]))
                alts = torch.empty((n, ref.shape[1]))
            refs[torch.from_numpy(rows)] = ref.float()
            alts[torch.from_numpy(rows)] = alt.float()
    return refs, alts


def score_windows(
    net: torch.nn.Module,
    ref_wins: list[str],
    alt_wins: list[str],
    snv_code: list[int],
    snv_centre: list[int],
    unknown: str,
    batch_size: int,
    device: torch.device,
    rc_average: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs ``(N, T)`` of every variant's reference and alternative window, chunk by chunk (flat memory).

    SNVs go through fast ISM where the architecture allows it (checked on the first chunk
    against full forward passes; without a match, every variant takes the full path); other
    variants have both alleles (and both strands) in one forward pass.
    """
    code, centre = np.asarray(snv_code), np.asarray(snv_centre)
    fast_ok: bool | None = None if not (rc_average and not is_rc_averaging(net)) else False
    chunk = max(batch_size, 8192)
    ys_ref, ys_alt = [], []
    for i in range(0, len(ref_wins), chunk):
        X_ref = encode_windows(ref_wins[i : i + chunk], unknown)
        y_ref = torch.empty(0)
        y_alt = torch.empty(0)
        got = None
        fast_rows = np.flatnonzero(code[i : i + chunk] >= 0)
        if fast_ok is not False and len(fast_rows):
            got = _snv_alt_fast(net, X_ref[fast_rows], code[i : i + chunk][fast_rows], centre[i : i + chunk][fast_rows], device)
            if got is not None and fast_ok is None:  # check once against the full forward pass
                k = fast_rows[:2]
                X_alt_k = encode_windows([alt_wins[i + j] for j in k], unknown)
                want = _predict_pairs(net, X_ref[k], X_alt_k, 64, device, rc_average)
                tol = 1e-4 * (1 + float(want[1].abs().max()))
                same = [torch.allclose(g[: len(k)], w, atol=tol) for g, w in zip(got, want, strict=True)]
                fast_ok = all(same)
            fast_ok = fast_ok and got is not None
        rest = np.arange(len(X_ref)) if not fast_ok else np.flatnonzero(code[i : i + chunk] < 0)
        if len(rest):
            X_alt = encode_windows([alt_wins[i + j] for j in rest], unknown)
            # small forward batches: large convolution batches run slower on CPUs
            r, a = _predict_pairs(net, X_ref[rest], X_alt, max(1, batch_size // 4), device, rc_average)
            y_ref, y_alt = torch.empty((len(X_ref), r.shape[1])), torch.empty((len(X_ref), r.shape[1]))
            y_ref[torch.from_numpy(rest)], y_alt[torch.from_numpy(rest)] = r, a
        if fast_ok and got is not None:
            if y_ref.numel() == 0:
                y_ref, y_alt = torch.empty((len(X_ref), got[0].shape[1])), torch.empty((len(X_ref), got[0].shape[1]))
            y_ref[torch.from_numpy(fast_rows)], y_alt[torch.from_numpy(fast_rows)] = got
        ys_ref.append(y_ref)
        ys_alt.append(y_alt)
    return torch.cat(ys_ref), torch.cat(ys_alt)
