"""Tiny sequence models shared by the explanation tests (tangermeme style).

Every model maps one-hot DNA ``(N, 4, L)`` to scores ``(N, T)`` and is seeded, so tests are
deterministic and fast.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

ALPHABET = "ACGT"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Run on one thread: tiny models gain nothing from more, and the machine is shared (import it to use it)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def conv_max_dense(n_filters: int = 6, width: int = 5, n_outputs: int = 2, *, pool: str = "max", seed: int = 0) -> nn.Sequential:
    """DeepBind-like: Conv1d → ReLU → global max (or average) pool → Flatten → Linear (fast-ISM eligible)."""
    torch.manual_seed(seed)
    pooling: nn.Module = nn.AdaptiveMaxPool1d(1) if pool == "max" else nn.AdaptiveAvgPool1d(1)
    return nn.Sequential(
        nn.Conv1d(4, n_filters, width, padding=width // 2), nn.ReLU(), pooling, nn.Flatten(), nn.Linear(n_filters, n_outputs)
    ).eval()


class ConvStack(nn.Module):
    """Conv → ReLU → MaxPool(2) → Conv → ReLU → Flatten → Linear: not fast-ISM eligible (plain mode)."""

    def __init__(self, length: int = 20, n_outputs: int = 2, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv1d(4, 5, 3)
        self.act1 = nn.ReLU()
        self.pool = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(5, 3, 3)
        self.act2 = nn.ReLU()
        out_len = (length - 2) // 2 - 2
        self.head = nn.Linear(3 * out_len, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act2(self.conv2(self.pool(self.act1(self.conv1(x)))))
        return self.head(h.flatten(1))


class FlattenDense(nn.Module):
    """Flatten → Linear → ReLU → Linear (no convolution)."""

    def __init__(self, length: int = 20, n_outputs: int = 1, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(4 * length, 8), nn.ReLU(), nn.Linear(8, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def random_onehot(n: int, length: int, seed: int = 0) -> torch.Tensor:
    """Random one-hot DNA ``(n, 4, length)`` float32."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 4, (n, length), generator=g)
    return nn.functional.one_hot(idx, 4).permute(0, 2, 1).float()


def onehot(seq: str) -> torch.Tensor:
    """One-hot ``(4, L)`` of an ACGT string (other letters: all-zero columns)."""
    out = torch.zeros(4, len(seq))
    for i, c in enumerate(seq.upper()):
        if c in ALPHABET:
            out[ALPHABET.index(c), i] = 1.0
    return out


def brute_force_ism(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Effects ``(N, T, A, L)`` by definition: every substituted sequence written out and scored."""
    model.eval()
    N, A, L = X.shape
    with torch.no_grad():
        ref = model(X)
        mutants = X[:, None, None].repeat(1, A, L, 1, 1)  # (N, A(letter), L(position), A, L)
        for b in range(A):
            for pos in range(L):
                mutants[:, b, pos, :, pos] = 0.0
                mutants[:, b, pos, b, pos] = 1.0
        out = model(mutants.reshape(N * A * L, A, L)).reshape(N, A, L, -1)
    return (out - ref[:, None, None, :]).permute(0, 3, 1, 2)
