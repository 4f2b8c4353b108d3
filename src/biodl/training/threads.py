"""CPU thread count of PyTorch for the duration of a run (``train.threads``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, restoring the previous count after.

    ``None`` leaves PyTorch's setting alone (one thread per core unless ``OMP_NUM_THREADS`` says
    otherwise). Small models on small CPUs often train faster on fewer threads than cores.
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
