"""``biodl serve`` as a real uvicorn process on loopback, exercised with a real HTTP client and a browser."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser import PageWatch, chromium
from server_process import BIODL, Server, serve

from conftest import PBMC

MAX_BODY_BYTES = 1_000_000
MAX_BATCH = 64


@pytest.fixture(scope="module")
def server(pbmc_run: Path) -> Iterator[Server]:
    """The trained PBMC run served on a free loopback port with small limits."""
    with serve(pbmc_run, "--max-body-bytes", str(MAX_BODY_BYTES), "--max-batch", str(MAX_BATCH)) as srv:
        yield srv


@pytest.fixture(scope="module")
def rows() -> tuple[np.ndarray, list[str]]:
    """Raw PBMC expression rows and the gene names (the model's feature columns)."""
    import anndata

    ad = anndata.read_h5ad(PBMC)
    return np.asarray(ad.X, dtype=np.float32), [str(g) for g in ad.var_names]


@pytest.fixture(scope="module")
def expected(pbmc_run: Path, rows: tuple[np.ndarray, list[str]]) -> tuple[np.ndarray, list[str]]:
    """In-process PyTorch probabilities for the first 40 rows, and the class names."""
    from biodl import load

    bundle = load(pbmc_run)
    return bundle.predict_arrays(bundle.modality.transform(rows[0][:40])), list(bundle.classes or [])


def _probs(prediction: dict, classes: list[str]) -> np.ndarray:
    return np.array([prediction["probabilities"][c] for c in classes])


def test_health_model_card_and_openapi(server: Server) -> None:
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["engine"] == "onnx"
    card = httpx.get(f"{server.url}/model").json()
    assert card["kind"] == "multiclass" and card["task"] == "classification"
    assert len(card["labels"]) == 10 and "CD14+ Monocyte" in card["labels"]
    assert card["inputs"]["data_type"] == "tabular" and len(card["inputs"]["feature_columns"]) == 765
    assert len(card["inputs"]["example"]) == 765
    assert "accuracy" in card["metrics"]["test"] and card["version"]["biodl"]
    assert card["engine"]["parity"]["passed"] and card["engine"]["parity"]["real_inputs"]
    assert card["limits"] == {"max_body_bytes": MAX_BODY_BYTES, "max_batch": MAX_BATCH}
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/predict", "/explain", "/health", "/model"} <= set(schema["paths"])
    assert "PredictRequest" in schema["components"]["schemas"]
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]


def test_predict_lists_and_objects(
    server: Server, rows: tuple[np.ndarray, list[str]], expected: tuple[np.ndarray, list[str]]
) -> None:
    X, genes = rows
    probs, classes = expected
    body = {"inputs": [X[0].tolist(), dict(zip(genes, X[1].tolist())), X[2].tolist()]}
    res = httpx.post(f"{server.url}/predict", json=body)
    assert res.status_code == 200, res.text
    preds = res.json()["predictions"]
    assert len(preds) == 3
    for i, pred in enumerate(preds):
        assert pred["label"] == classes[int(probs[i].argmax())]
        assert np.abs(_probs(pred, classes) - probs[i]).max() <= 1e-4


BAD_REQUESTS = [
    ("malformed JSON", b'{"inputs": [[1, 2', 422, "malformed JSON"),
    ("not an object", b"[1, 2, 3]", 422, "invalid request"),
    ("inputs not a list", b'{"inputs": "abc"}', 422, "inputs"),
    ("empty inputs", b'{"inputs": []}', 422, "at least 1"),
    ("unknown field", b'{"inputz": [[1]]}', 422, "inputz"),
    ("number record", b'{"inputs": [5]}', 422, "inputs.0"),
    ("wrong length", b'{"inputs": [[1, 2]]}', 422, "expected 765 feature values"),
    ("strings in a row", b'{"inputs": [["a", "b"]]}', 422, "expected 765"),
    ("missing columns", b'{"inputs": [{"HES4": 1}]}', 422, "missing feature"),
    ("non-finite", b'{"inputs": [[1e999]]}', 422, "input 0"),
    ("deep nesting", b'{"inputs": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", 400, "parsing the body"),
]


@pytest.mark.parametrize(("body", "status", "message"), [b[1:] for b in BAD_REQUESTS], ids=[b[0] for b in BAD_REQUESTS])
def test_invalid_requests_are_4xx_with_a_message(server: Server, body: bytes, status: int, message: str) -> None:
    res = httpx.post(f"{server.url}/predict", content=body, headers={"content-type": "application/json"})
    assert res.status_code == status, res.text
    assert message in res.json()["detail"]


def test_oversize_and_too_many_inputs(server: Server, rows: tuple[np.ndarray, list[str]]) -> None:
    X, _ = rows
    big = json.dumps({"inputs": ["A" * (MAX_BODY_BYTES + 10)]}).encode()
    res = httpx.post(f"{server.url}/predict", content=big, headers={"content-type": "application/json"})
    assert res.status_code == 413 and "too large" in res.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts while reading
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    try:
        res = httpx.post(f"{server.url}/predict", content=chunks(), headers={"content-type": "application/json"})
        assert res.status_code == 413
    except httpx.TransportError:  # the server may close before the client finished sending
        pass
    many = {"inputs": [X[0].tolist()] * (MAX_BATCH + 1)}
    res = httpx.post(f"{server.url}/predict", json=many)
    assert res.status_code == 413 and "too many inputs" in res.json()["detail"]
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_concurrent_requests_get_their_own_answers(
    server: Server, rows: tuple[np.ndarray, list[str]], expected: tuple[np.ndarray, list[str]]
) -> None:
    X, _ = rows
    probs, classes = expected
    requests = [list(range(i, i + 1 + i % 3)) for i in range(32)]  # 1-3 rows each, overlapping

    async def one(client: httpx.AsyncClient, idx: list[int]) -> tuple[list[int], httpx.Response]:
        return idx, await client.post(f"{server.url}/predict", json={"inputs": X[idx].tolist()})

    async def burst() -> list[tuple[list[int], httpx.Response]]:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=32)) as client:
            return await asyncio.gather(*(one(client, idx) for idx in requests))

    before = httpx.get(f"{server.url}/health").json()
    for idx, res in asyncio.run(burst()):
        assert res.status_code == 200, res.text
        got = np.stack([_probs(p, classes) for p in res.json()["predictions"]])
        assert np.abs(got - probs[idx]).max() <= 1e-4
    after = httpx.get(f"{server.url}/health").json()
    assert after["requests"] - before["requests"] == 32
    assert after["model_calls"] - before["model_calls"] <= 32


def test_explain(server: Server, rows: tuple[np.ndarray, list[str]], expected: tuple[np.ndarray, list[str]]) -> None:
    X, genes = rows
    probs, classes = expected
    res = httpx.post(f"{server.url}/explain", json={"input": X[0].tolist()}, timeout=60)
    assert res.status_code == 200, res.text
    doc = res.json()
    assert doc["method"] == "gradient_x_input" and doc["target"] == classes[int(probs[0].argmax())]
    assert doc["shape"] == [765] and len(doc["attributions"]) == 765 and doc["features"] == genes
    assert any(abs(v) > 0 for v in doc["attributions"])
    assert base64.b64decode(doc["image_png_base64"]).startswith(b"\x89PNG\r\n\x1a\n")
    res = httpx.post(f"{server.url}/explain", json={"input": X[0].tolist(), "target": "CD56+ NK"}, timeout=60)
    assert res.status_code == 200 and res.json()["target"] == "CD56+ NK"
    for bad in (
        {"input": X[0].tolist(), "target": 99},
        {"input": X[0].tolist(), "target": "nope"},
        {"input": [1, 2]},
        {"input": X[0].tolist(), "method": "x"},
    ):
        res = httpx.post(f"{server.url}/explain", json=bad, timeout=60)
        assert res.status_code == 422 and res.json()["detail"]


def test_port_in_use_is_a_clear_error(pbmc_run: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = subprocess.run(
            [BIODL, "serve", "--model-path", str(pbmc_run), "--port", str(port)], capture_output=True, text=True, timeout=120
        )
    assert res.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in res.stderr and "Traceback" not in res.stderr


def test_web_page_predicts_and_explains(
    server: Server, rows: tuple[np.ndarray, list[str]], expected: tuple[np.ndarray, list[str]], tmp_path: Path
) -> None:
    X, _ = rows
    probs, classes = expected
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 1100})
        watch = PageWatch(page)
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='true']", timeout=20_000)
        assert "tabular" in page.inner_text("#input-label")
        page.fill("#input", ", ".join(f"{v:.6g}" for v in X[0]))
        page.click("#submit")
        page.wait_for_selector("#result:not([hidden])", timeout=20_000)
        label = page.inner_text("#predictions tbody tr:first-child td.label")
        assert label == classes[int(probs[0].argmax())]
        page.wait_for_selector("#explanation:not([hidden])", timeout=30_000)
        width = page.eval_on_selector("#explanation-image", "img => img.complete ? img.naturalWidth : 0")
        assert width > 100
        assert "gradient" in page.inner_text("#explanation-caption")
        assert page.is_hidden("#error")
        shot = tmp_path / "web_page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        # a bad row shows the server's message on the page instead of a result
        page.fill("#input", "1, 2, 3")
        page.click("#submit")
        page.wait_for_selector("#error:not([hidden])", timeout=20_000)
        assert "expected 765 feature values" in page.inner_text("#error")
    assert not watch.failed, watch.failed
    assert all(u.startswith(server.url) or u.startswith("data:") for u in watch.urls), watch.urls
    assert [s for s in watch.bad_status if "/predict" not in s] == []  # only the deliberate 422
    assert [e for e in watch.console_errors if "422" not in e] == []
