"""Micro-batching: concurrent requests share one model call.

Requests queue their (already preprocessed) rows; a single worker takes everything that is
waiting — up to ``max_batch`` rows of one input shape — runs the model once in a dedicated
thread, and hands each request its slice of the outputs. Nothing waits for a batch to fill:
while one model call runs, new requests accumulate and form the next batch, so a lone request
is answered at once and a burst is answered in few calls.

A model whose calls are cheap (recent calls under ``inline_below_s``) is run on the event loop
itself: a request that is alone (no other request in flight, nothing running or queued) is
answered at once, and concurrent requests are still gathered into one batch by the worker task,
which then calls the model directly instead of handing the batch to the thread. On a loaded
machine each thread hand-off waits for the scheduler and for the GIL, which costs far more than
a cheap model; an expensive model (or one whose calls get slower) goes back to the thread, so
the event loop keeps accepting and parsing requests while it runs.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from biodl.errors import BiodlError


class Overloaded(BiodlError):
    """The request queue is full."""


@dataclass
class _Item:
    X: np.ndarray
    future: asyncio.Future[np.ndarray]


@dataclass
class BatchStats:
    """Counters for ``/health``."""

    calls: int = 0
    rows: int = 0
    requests: int = 0
    largest_batch: int = 0
    history: deque[int] = field(default_factory=lambda: deque(maxlen=256))


class MicroBatcher:
    """Batch concurrent ``submit`` calls into few ``predict`` calls.

    Parameters
    ----------
    predict
        The model: inputs ``(N, ...)`` → outputs ``(N, K)``; runs in ``executor``.
    executor
        A single-thread executor (the model is only ever run by one thread at a time).
    max_batch
        Most rows in one model call (a single larger request runs on its own).
    max_queue
        Most requests waiting; more are refused with :class:`Overloaded`.
    inline_below_s
        Run a lone request on the event loop when the model's recent calls took less than this
        (seconds; 0 never does).
    """

    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        executor: ThreadPoolExecutor,
        max_batch: int = 256,
        max_queue: int = 1024,
        inline_below_s: float = 0.002,
    ) -> None:
        self.predict = predict
        self.executor = executor
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.inline_below_s = inline_below_s
        self.stats = BatchStats()
        self._busy = False
        self._call_s: float | None = None  # moving average of a model call's duration
        self._pending: deque[_Item] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the worker task (inside the running event loop)."""
        self._wakeup = asyncio.Event()
        self._worker = asyncio.create_task(self._run(), name="biodl-batcher")

    async def stop(self) -> None:
        """Stop the worker; requests still queued fail."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        while self._pending:
            item = self._pending.popleft()
            if not item.future.done():
                item.future.set_exception(RuntimeError("server shutting down"))

    async def submit(self, X: np.ndarray, *, alone: bool = False) -> np.ndarray:
        """Outputs for ``X`` (computed together with whatever else is waiting).

        ``alone``: no other request is in flight, so a cheap model may run at once on the event loop.
        """
        if self._wakeup is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        if len(self._pending) >= self.max_queue:
            raise Overloaded(f"server busy: {len(self._pending)} requests waiting; retry shortly")
        if alone and self._cheap() and not self._busy and not self._pending:
            return self._call([X], X)
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._pending.append(_Item(X, future))
        self._wakeup.set()
        return await future

    def _take(self) -> list[_Item]:
        first = self._pending.popleft()
        batch, rows = [first], len(first.X)
        skipped: list[_Item] = []
        while self._pending and rows < self.max_batch:
            item = self._pending.popleft()
            if item.X.shape[1:] != first.X.shape[1:] or rows + len(item.X) > self.max_batch:
                skipped.append(item)
                continue
            batch.append(item)
            rows += len(item.X)
        self._pending.extendleft(reversed(skipped))
        return batch

    def _cheap(self) -> bool:
        return self._call_s is not None and self._call_s < self.inline_below_s

    def _call(self, parts: list[np.ndarray], X: np.ndarray) -> np.ndarray:
        """One model call on ``X`` (the rows of ``parts``), timed and counted."""
        t0 = time.perf_counter()
        out = self.predict(X)
        seconds = time.perf_counter() - t0
        self._call_s = seconds if self._call_s is None else 0.8 * self._call_s + 0.2 * seconds
        self.stats.calls += 1
        self.stats.rows += len(X)
        self.stats.requests += len(parts)
        self.stats.largest_batch = max(self.stats.largest_batch, len(X))
        self.stats.history.append(len(parts))
        return out

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [item for item in self._take() if not item.future.done()]
            if not batch:
                continue
            X = batch[0].X if len(batch) == 1 else np.concatenate([item.X for item in batch])
            self._busy = True
            parts = [item.X for item in batch]
            try:
                if self._cheap():
                    out = self._call(parts, X)
                else:
                    out = await loop.run_in_executor(self.executor, self._call, parts, X)
            except Exception as exc:  # the model failed: every waiting request gets the error
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            finally:
                self._busy = False
            start = 0
            for item in batch:
                stop = start + len(item.X)
                if not item.future.done():
                    item.future.set_result(out[start:stop])
                start = stop
