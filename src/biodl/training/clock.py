"""Clocks for training budgets: elapsed time, or CPU time per PyTorch thread (load-independent)."""

from __future__ import annotations

import time
from collections.abc import Callable

#: The ``cpu`` clock never runs slower than wall time divided by this (a starved process still ends).
CPU_CLOCK_MAX_STRETCH = 5.0


def budget_clock(kind: str) -> Callable[[], float]:
    """The clock ``train.time_budget`` and ``train.max_time`` are counted on: ``wall`` = elapsed seconds;
    ``cpu`` = this process's CPU seconds per PyTorch thread (≈ elapsed time on an idle machine, whatever its core
    count; a busy machine stretches it, so the same work is done), but at least elapsed / :data:`CPU_CLOCK_MAX_STRETCH`.
    """
    if kind != "cpu":
        return time.monotonic
    import torch

    threads = max(1, torch.get_num_threads())
    wall0, cpu0 = time.monotonic(), time.process_time()

    def clock() -> float:
        return max((time.process_time() - cpu0) / threads, (time.monotonic() - wall0) / CPU_CLOCK_MAX_STRETCH)

    return clock
