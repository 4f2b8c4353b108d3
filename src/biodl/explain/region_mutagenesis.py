"""Saturation mutagenesis over a region longer than the model's window (e.g. 10 kb), tiled by the window.

The region is cut into windows of the model's length ``L`` starting every ``step`` bases (the
last one ends at the region's end). Every position is mutated once, in the window where it is
most central (so it has the most context on both sides), never once per window that holds
it: windows overlap only to give each position context. The windows whose mutated span has the
same place inside the window (all interior windows) go through
:func:`~biodl.explain.saturation_mutagenesis.saturation_mutagenesis` together, so the fast modes
apply: each window's wild type runs once and every mutant reuses it (only the changed window
of each layer is recomputed, or, for DeepBind, only the pooled features).

>>> res = region_mutagenesis(model, onehot_10kb)        # (A, R)
>>> res.effects.shape                                    # (T, A, R)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import torch

from biodl.errors import ConfigError, DataError
from biodl.explain._common import Target, as_module, as_onehot, model_length, resolve_targets
from biodl.explain.saturation_mutagenesis import saturation_mutagenesis

if TYPE_CHECKING:
    from biodl.explain._common import ModelLike

__all__ = ["RegionISM", "region_mutagenesis", "region_tiles"]


class RegionISM(NamedTuple):
    """Result of :func:`region_mutagenesis`.

    Attributes
    ----------
    effects
        Mutant − wild-type output of every substitution ``(T, A, R)`` (0 for identity letters),
        each from the window where its position is most central.
    reference
        Wild-type outputs of the windows ``(W, T)``.
    starts
        Each window's first position ``(W,)``.
    window_of
        The window each position was scored in ``(R,)``.
    fast
        Whether every window group used a fast mode.
    """

    effects: torch.Tensor
    reference: torch.Tensor
    starts: np.ndarray
    window_of: np.ndarray
    fast: bool


def region_tiles(region: int, length: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Window starts ``(W,)`` covering ``[0, region)`` and the window where each position is most central ``(R,)``."""
    if region < length:
        raise DataError(f"the region ({region} bp) is shorter than the model's window ({length} bp)")
    if not 1 <= step <= length:
        raise ConfigError(f"step={step}: need 1 <= step <= the window length {length}")
    starts = np.arange(0, region - length + 1, step)
    if starts[-1] != region - length:
        starts = np.append(starts, region - length)
    centres = starts + (length - 1) / 2
    pos = np.arange(region)
    j = np.clip(np.searchsorted(centres, pos), 1, len(starts) - 1) if len(starts) > 1 else np.zeros(region, dtype=np.int64)
    if len(starts) > 1:  # the nearer of the centres either side (ties: the earlier window)
        j = np.where(np.abs(pos - centres[j - 1]) <= np.abs(centres[j] - pos), j - 1, j)
    return starts, j.astype(np.int64)


def region_mutagenesis(
    model: ModelLike,
    X: Any,
    target: Target = None,
    *,
    step: int | None = None,
    length: int | None = None,
    batch_size: int = 1024,
    fast: bool | Literal["auto"] = "auto",
    device: str | torch.device | None = None,
    autocast: bool | None = None,
    windows_per_call: int = 256,
) -> RegionISM:
    """Effects of every single-letter substitution of a long one-hot region, tiled by the model's window.

    Parameters
    ----------
    model
        A module or biodl bundle with a fixed input length ``L`` (the window).
    X
        One region, one-hot ``(A, R)`` (or ``(1, A, R)``), ``R >= L``.
    target
        Output(s) to keep: ``None`` (all), an index or a list of indices.
    step
        Distance between window starts (default ``L // 2``: every position but those near the
        region's ends has at least ``L / 4`` bases of context on each side).
    length
        The window ``L`` of a module without a known input length (biodl models know theirs).
    batch_size, fast, device, autocast
        As in :func:`~biodl.explain.saturation_mutagenesis.saturation_mutagenesis`.
    windows_per_call
        Windows mutated per call (bounds memory on long regions).

    Returns
    -------
    RegionISM
        Effects ``(T, A, R)`` (the kept targets; ``T = 1`` for one), the windows' reference
        outputs, starts and the window of each position.
    """
    net = as_module(model)
    L = length or model_length(net)
    if L is None:
        raise ConfigError(f"{type(net).__name__} has no known input length; give length= (region mutagenesis tiles by it)")
    x = as_onehot(X)
    if x.shape[0] != 1:
        raise DataError(f"region mutagenesis takes one region (A, R); got {x.shape[0]} sequences")
    x = x[0]
    A, R = x.shape
    starts, window_of = region_tiles(R, L, L // 2 if step is None else step)
    first = np.searchsorted(window_of, np.arange(len(starts)), side="left")
    last = np.searchsorted(window_of, np.arange(len(starts)), side="right")
    rel = np.stack([first - starts, last - starts], axis=1)  # each window's mutated span [s, e) inside it
    effects: torch.Tensor | None = None
    reference: torch.Tensor | None = None
    all_fast = True
    groups: dict[tuple[int, int], list[int]] = {}
    for w, (s, e) in enumerate(rel.tolist()):
        if e > s:
            groups.setdefault((s, e), []).append(w)
    tiles = x.unfold(1, L, 1)  # (A, R - L + 1, L), a view
    for (s, e), ws in groups.items():
        for i in range(0, len(ws), windows_per_call):
            idx = np.asarray(ws[i : i + windows_per_call])
            xb = tiles[:, torch.from_numpy(starts[idx])].permute(1, 0, 2).contiguous()  # (n, A, L)
            res = saturation_mutagenesis(net, xb, raw_outputs=True, batch_size=batch_size, fast=fast, start=s, end=e,
                                         device=device, autocast=autocast)  # fmt: skip
            all_fast = all_fast and res.fast
            if effects is None or reference is None:
                effects = torch.zeros((res.effects.shape[1], A, R))
                reference = torch.zeros((len(starts), res.reference.shape[1]))
            reference[torch.from_numpy(idx)] = res.reference
            for j, w in enumerate(idx.tolist()):
                a = int(starts[w])
                effects[:, :, a + s : a + e] = res.effects[j, :, :, s:e]
    assert effects is not None and reference is not None
    keep, _ = resolve_targets(target, effects.shape[0])
    return RegionISM(effects[keep], reference, starts, window_of, all_fast)
