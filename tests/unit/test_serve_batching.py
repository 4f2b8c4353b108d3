"""The serving micro-batcher and the fast /predict body path, in process on a real (small) network."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from biodl.engine import TorchEngine
from biodl.export.graph import InferenceNet
from biodl.models import build_model
from biodl.serve.batching import MicroBatcher
from biodl.serve.payload import BodyError, decode_predict, encode_predictions, numeric_rows


@pytest.fixture(scope="module")
def engine() -> TorchEngine:
    torch.manual_seed(0)
    return TorchEngine(InferenceNet(build_model("mlp", (20,), 4, {"hidden_sizes": [16]}), "multiclass"))


def _requests(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(1 + i % 3, 20)).astype(np.float32) for i in range(n)]


async def _burst(batcher: MicroBatcher, requests: list[np.ndarray], alone: bool) -> list[np.ndarray]:
    await batcher.start()
    try:
        return list(await asyncio.gather(*(batcher.submit(X, alone=alone) for X in requests)))
    finally:
        await batcher.stop()


def test_concurrent_requests_are_batched_and_each_gets_its_rows(engine: TorchEngine) -> None:
    requests = _requests(40)
    with ThreadPoolExecutor(max_workers=1) as pool:
        batcher = MicroBatcher(engine.predict, pool, max_batch=16)
        outs = asyncio.run(_burst(batcher, requests, alone=False))
    for X, out in zip(requests, outs, strict=True):
        assert out.shape == (len(X), 4)
        np.testing.assert_allclose(out, engine.predict(X), atol=1e-6)
    assert batcher.stats.requests == 40 and batcher.stats.rows == sum(len(X) for X in requests)
    assert batcher.stats.calls < 40 and batcher.stats.largest_batch <= 16  # several requests per model call


def test_a_lone_request_on_a_cheap_model_runs_at_once(engine: TorchEngine) -> None:
    requests = _requests(6)

    async def one_by_one(batcher: MicroBatcher) -> list[np.ndarray]:
        await batcher.start()
        try:
            return [await batcher.submit(X, alone=True) for X in requests]
        finally:
            await batcher.stop()

    with ThreadPoolExecutor(max_workers=1) as pool:
        batcher = MicroBatcher(engine.predict, pool, inline_below_s=10.0)
        outs = asyncio.run(one_by_one(batcher))
    for X, out in zip(requests, outs, strict=True):
        np.testing.assert_allclose(out, engine.predict(X), atol=1e-6)
    assert batcher.stats.calls == 6 and batcher.stats.history.count(1) == 6


def test_fast_body_path_reads_rows_and_keeps_the_error_messages() -> None:
    rows = np.arange(12, dtype=np.float32).reshape(3, 4)
    body = decode_predict(json.dumps({"inputs": rows.tolist()}).encode())
    X = numeric_rows(body.inputs, 4)
    assert X is not None and X.dtype == np.float32 and np.array_equal(X, rows)
    assert numeric_rows([[1, 2, 3]], 4) is None and numeric_rows([["a", 1, 2, 3]], 4) is None  # the data type names it
    cases = [
        (b'{"inputs": [[1, 2', 422, "malformed JSON"),
        (b'{"inputs": []}', 422, "at least 1"),
        (b'{"inputz": [[1]]}', 422, "inputz"),
        (b'{"inputs": [5]}', 422, "inputs.0"),
        (b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "parsing the body"),
    ]
    for raw, status, message in cases:
        with pytest.raises(BodyError) as err:
            decode_predict(raw)
        assert err.value.status == status and message in err.value.detail
    inf = decode_predict(b'{"inputs": [[1e999, 1, 2, 3]]}')  # read as before; the data type rejects it
    assert numeric_rows(inf.inputs, 4) is None
    answer = json.loads(encode_predictions([{"label": "a", "probabilities": {"a": 0.75}}]))
    assert answer["predictions"][0]["label"] == "a" and answer["predictions"][0]["values"] is None


class _CountingPool(ThreadPoolExecutor):
    """A one-thread pool that counts the model calls handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted = 0

    def submit(self, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        self.submitted += 1
        return super().submit(*args, **kwargs)


def test_concurrent_requests_on_a_cheap_model_are_batched_on_the_event_loop(engine: TorchEngine) -> None:
    requests = _requests(40)
    with _CountingPool() as pool:
        batcher = MicroBatcher(engine.predict, pool, max_batch=16, inline_below_s=10.0)

        async def burst() -> list[np.ndarray]:
            await batcher.start()
            try:
                await batcher.submit(requests[0])  # the first call is timed in the thread
                return list(await asyncio.gather(*(batcher.submit(X) for X in requests)))
            finally:
                await batcher.stop()

        outs = asyncio.run(burst())
    for X, out in zip(requests, outs, strict=True):
        np.testing.assert_allclose(out, engine.predict(X), atol=1e-6)
    assert pool.submitted == 1  # only the first, untimed call went to the thread
    assert batcher.stats.calls < 41 and batcher.stats.largest_batch <= 16  # the rest still batched


def test_vectorised_records_equal_the_per_value_ones() -> None:
    from types import SimpleNamespace

    from biodl.serve.card import prediction_records

    bundle = SimpleNamespace(kind="multiclass", classes=["a", "b", "c"], target_names=None)
    probs = np.array([[0.2, 0.5, 0.3], [0.7, 0.2, 0.1]], dtype=np.float32)
    fast = prediction_records(bundle, probs)  # type: ignore[arg-type]
    assert [r["label"] for r in fast] == ["b", "a"]
    assert fast[0]["probabilities"] == {c: float(np.float64(p)) for c, p in zip("abc", probs[0])}
    odd = prediction_records(bundle, np.array([[np.nan, 0.5, 0.5]], dtype=np.float32))  # type: ignore[arg-type]
    assert odd[0]["probabilities"]["a"] is None and odd[0]["label"] == "b"  # non-finite: the per-value path
