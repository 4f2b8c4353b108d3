"""Training-time augmentation of one-hot batches: random strand and random shift."""

from __future__ import annotations

import torch


def reverse_complement(x: torch.Tensor) -> torch.Tensor:
    """Reverse complement of one-hot DNA/RNA ``(N, 4, L)`` (channels ACGT/ACGU): flip both axes."""
    return x.flip(-2).flip(-1)


def shift_batch(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift each sequence of ``(N, A, L)`` by ``shift[i]`` positions (right if positive).

    Vacated positions become all-zero columns (unknown bases); nothing wraps around.
    """
    n, a, length = x.shape
    src = torch.arange(length, device=x.device)[None, :] - shift[:, None].to(x.device)
    valid = (src >= 0) & (src < length)
    gathered = torch.gather(x, 2, src.clamp(0, length - 1)[:, None, :].expand(n, a, length))
    return torch.where(valid[:, None, :], gathered, torch.zeros((), dtype=x.dtype, device=x.device))


class SequenceAugment:
    """Batch augmentation: a random strand per sequence and a random shift of up to ``shift``.

    Parameters
    ----------
    rc
        Replace each sequence by its reverse complement with probability 1/2.
    shift
        Shift each sequence by a uniform integer in ``[-shift, shift]``.

    Works on any dtype (compact uint8 batches stay uint8) and returns ``(N, A, L)``.
    """

    def __init__(self, rc: bool = True, shift: int = 0) -> None:
        self.rc = rc
        self.shift = int(shift)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n = x.shape[0]
        if self.rc:
            flip = torch.rand(n, generator=generator) < 0.5
            x = torch.where(flip.to(x.device)[:, None, None], reverse_complement(x), x)
        if self.shift > 0:
            s = torch.randint(-self.shift, self.shift + 1, (n,), generator=generator)
            x = shift_batch(x, s)
        return x

    def __repr__(self) -> str:
        return f"SequenceAugment(rc={self.rc}, shift={self.shift})"
