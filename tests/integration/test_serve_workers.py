"""``biodl serve --workers 2``: two processes on one socket answer like the in-process model, under concurrency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from server_process import Server, serve

from conftest import PBMC


@pytest.fixture(scope="module")
def server(pbmc_run: Path) -> Iterator[Server]:
    with serve(pbmc_run, "--workers", "2", "--engine", "torch", "--max-batch", "64", timeout=600) as srv:
        yield srv


def test_two_workers_answer_concurrent_requests_in_order(server: Server, pbmc_run: Path) -> None:
    import anndata

    from biodl import load

    X = np.asarray(anndata.read_h5ad(PBMC).X[:60], dtype=np.float32)
    bundle = load(pbmc_run)
    classes = list(bundle.classes or [])
    expected = bundle.predict_arrays(bundle.modality.transform(X))
    groups = [list(range(i, min(i + 1 + i % 3, 60))) for i in range(0, 60, 2)]  # overlapping 1-3 row requests

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            return list(
                await asyncio.gather(*(client.post(f"{server.url}/predict", json={"inputs": X[idx].tolist()}) for idx in groups))
            )

    responses = asyncio.run(burst())
    for idx, res in zip(groups, responses, strict=True):
        assert res.status_code == 200, res.text
        preds = res.json()["predictions"]
        assert len(preds) == len(idx)
        for i, pred in zip(idx, preds, strict=True):
            probs = np.array([pred["probabilities"][c] for c in classes])
            assert np.abs(probs - expected[i]).max() <= 1e-5 and pred["label"] == classes[int(expected[i].argmax())]
    assert "2 workers" in server.log()
    deadline = time.monotonic() + 120  # the second worker may still be loading when the first answers the burst
    while server.log().count("engine: torch") < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert server.log().count("engine: torch") == 2  # one engine (and model load) per worker
