"""Export of a trained bundle, the manifest a non-biodl consumer needs, engines, and the CLI commands."""

from __future__ import annotations

import asyncio
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

import biodl.export as export_module
from biodl import load
from biodl.bundle import Bundle
from biodl.cli.main import main
from biodl.engine import OnnxEngine, TorchEngine, select_engine
from biodl.errors import BiodlError, BundleError
from biodl.export import ExportError, export_bundle, read_manifest
from biodl.export.parity import sample_inputs
from biodl.serve.batching import MicroBatcher
from biodl.serve.card import prediction_records
from conftest import PBMC


@pytest.fixture(scope="module")
def bundle(pbmc_run: Path) -> Bundle:
    return load(pbmc_run)


@pytest.fixture(scope="module")
def raw_rows() -> tuple[np.ndarray, list[str]]:
    import anndata

    ad = anndata.read_h5ad(PBMC)
    return np.asarray(ad.X, dtype=np.float32)[:200], [str(g) for g in ad.var_names]


def test_onnx_manifest_lets_a_consumer_reproduce_predictions(
    bundle: Bundle, raw_rows: tuple[np.ndarray, list[str]], tmp_path: Path
) -> None:
    import onnxruntime as ort

    out = tmp_path / "pbmc.onnx"
    result = export_bundle(bundle, "onnx", out, paths=[str(PBMC)], rows=64)
    assert result.parity.passed and result.parity.real_inputs and result.parity.batch_sizes == [1, 64]
    assert result.parity.max_abs_diff <= 1e-4 and result.parity.preprocessing_max_abs_diff is not None

    # A consumer with only the two files, NumPy and ONNX Runtime: no biodl code below.
    manifest = json.loads((tmp_path / "pbmc.onnx.json").read_text())
    assert manifest["parity"]["passed"] and manifest["model_format"] == "onnx"
    X_raw, genes = raw_rows
    x = X_raw
    for step in manifest["preprocessing"]["steps"]:
        if step["op"] == "select_features":
            x = X_raw[:, [genes.index(c) for c in step["columns"]]]
        elif step["op"] == "subtract":
            x = x - np.asarray(step["values"], np.float32)
        elif step["op"] == "divide":
            x = x / np.asarray(step["values"], np.float32)
        elif step["op"] == "cast":
            x = x.astype(step["dtype"])
        else:
            raise AssertionError(f"unexpected step {step['op']}")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    probs = session.run([manifest["output"]["name"]], {manifest["input"]["name"]: x})[0]
    expected = bundle.predict_arrays(bundle.modality.transform(X_raw))
    assert np.abs(probs - expected).max() <= 1e-4
    labels = [manifest["output"]["columns"][i] for i in probs.argmax(axis=1)]
    assert labels == [bundle.classes[i] for i in expected.argmax(axis=1)]  # type: ignore[index]
    assert manifest["input"]["shape"] == ["batch", 765] and manifest["output"]["shape"] == ["batch", 10]
    assert read_manifest(out)["sha256"] == manifest["sha256"]


def test_torchscript_export_and_reference(bundle: Bundle, tmp_path: Path) -> None:
    import torch

    out = tmp_path / "pbmc.pt"
    result = export_bundle(bundle, "torchscript", out, paths=[str(PBMC)], rows=32)
    assert result.parity.passed and result.manifest["opset"] is None
    module = torch.jit.load(str(out))
    X = sample_inputs(bundle, [str(PBMC)], rows=16).X_model
    with torch.no_grad():
        got = module(torch.from_numpy(X)).numpy()
    assert np.abs(got - bundle.predict_arrays(X)).max() <= 1e-4
    # the parity reference (TorchEngine) is the bundle's own prediction path
    assert np.abs(TorchEngine.from_bundle(bundle).predict(X) - bundle.predict_arrays(X)).max() <= 1e-6


def test_failed_parity_writes_nothing(bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = export_module.serialise

    def off_by_a_little(b: Bundle, fmt: str, **kw: Any) -> tuple[bytes, Any]:
        data, run = original(b, fmt, **kw)
        return data, lambda X: run(X) + 1e-3

    monkeypatch.setattr(export_module, "serialise", off_by_a_little)
    with pytest.raises(ExportError, match=r"disagrees with PyTorch.*nothing was written"):
        export_bundle(bundle, "onnx", tmp_path / "x.onnx", rows=8)
    assert not list(tmp_path.iterdir())


def test_engine_selection(bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    sample = sample_inputs(bundle, [str(PBMC)], rows=32)
    auto = select_engine(bundle, "auto", sample)
    assert isinstance(auto.engine, OnnxEngine) and auto.parity is not None and auto.parity.passed
    assert np.abs(auto.engine.predict(sample.X_model) - bundle.predict_arrays(sample.X_model)).max() <= 1e-4
    assert select_engine(bundle, "torch").engine.name == "torch"

    def broken(*_: Any, **__: Any) -> OnnxEngine:
        raise ExportError("cannot export model 'mlp' to ONNX: the operator 'aten::x' has no ONNX equivalent")

    monkeypatch.setattr(OnnxEngine, "from_bundle", classmethod(broken))
    fallback = select_engine(bundle, "auto", sample)
    assert fallback.engine.name == "torch" and "aten::x" in fallback.reason
    with pytest.raises(ExportError, match="--engine torch"):
        select_engine(bundle, "onnx", sample)
    with pytest.raises(BiodlError, match="unknown engine"):
        select_engine(bundle, "tensorrt", sample)


def test_cli_export_and_predict_engines(pbmc_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.onnx"
    rc = main(["export", "--model-path", str(pbmc_run), "--output", str(out), "--data-path", str(PBMC), "--parity-rows", "32"])
    text = capsys.readouterr().out
    assert rc == 0 and "parity passed" in text and "pbmc68k_reduced.h5ad" in text and out.is_file()
    frames = {}
    for engine in ("onnx", "torch"):
        pred = tmp_path / f"pred_{engine}.csv"
        rc = main(["predict", "--model-path", str(pbmc_run), "--data-path", str(PBMC), "--output", str(pred), "--engine", engine])
        assert rc == 0 and f"engine: {engine}" in capsys.readouterr().out
        frames[engine] = pd.read_csv(pred)
    prob_cols = [c for c in frames["torch"].columns if c.startswith("prob_")]
    assert (frames["onnx"]["predicted"] == frames["torch"]["predicted"]).all()
    assert np.abs(frames["onnx"][prob_cols].to_numpy() - frames["torch"][prob_cols].to_numpy()).max() <= 1e-4


def test_cli_export_clear_errors(pbmc_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "run"
    shutil.copytree(pbmc_run / "model", broken / "model")
    meta_path = broken / "model" / "bundle.json"
    meta = json.loads(meta_path.read_text())
    meta["model"]["params"]["hidden_sizes"] = [32]  # the weights were trained with [64]
    meta_path.write_text(json.dumps(meta))
    rc = main(["export", "--model-path", str(broken), "--output", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert rc == 2 and "weights do not match the architecture 'mlp'" in err and "Traceback" not in err
    with pytest.raises(BundleError):
        load(broken)
    rc = main(["export", "--model-path", str(tmp_path / "missing"), "--output", str(tmp_path / "m.onnx")])
    assert rc == 2 and "model path not found" in capsys.readouterr().err


def test_prediction_records() -> None:
    multiclass = SimpleNamespace(kind="multiclass", classes=["a", "b", "c"], target_names=["y"])
    recs = prediction_records(multiclass, np.array([[0.1, 0.7, 0.2]]))  # type: ignore[arg-type]
    assert recs == [{"label": "b", "probabilities": {"a": pytest.approx(0.1), "b": pytest.approx(0.7), "c": pytest.approx(0.2)}}]
    binary = SimpleNamespace(kind="binary", classes=["0", "1"], target_names=["is_mono"])
    assert prediction_records(binary, np.array([[0.25]]))[0]["label"] == "0"  # type: ignore[arg-type]
    tasks = SimpleNamespace(kind="binary", classes=None, target_names=["t1", "t2"])
    assert set(prediction_records(tasks, np.array([[0.2, 0.9]]))[0]["probabilities"]) == {"t1", "t2"}  # type: ignore[arg-type]
    reg = SimpleNamespace(kind="regression", classes=None, target_names=["CST3"])
    assert prediction_records(reg, np.array([[np.nan]])) == [{"values": {"CST3": None}}]  # type: ignore[arg-type]


def test_micro_batcher_batches_and_routes() -> None:
    calls: list[int] = []

    def predict(X: np.ndarray) -> np.ndarray:
        calls.append(len(X))
        if (X < 0).any():
            raise RuntimeError("model failure")
        return X.sum(axis=1, keepdims=True)

    async def scenario() -> None:
        with ThreadPoolExecutor(max_workers=1) as pool:
            batcher = MicroBatcher(predict, pool, max_batch=8)
            await batcher.start()
            inputs = [np.full((1 + i % 3, 2), float(i), np.float32) for i in range(12)]
            outs = await asyncio.gather(*(batcher.submit(x) for x in inputs))
            for x, out in zip(inputs, outs):
                assert out.shape == (len(x), 1) and np.allclose(out, x.sum(axis=1, keepdims=True))
            assert max(calls) <= 8 and len(calls) < len(inputs)  # fewer model calls than requests
            other = await batcher.submit(np.zeros((2, 5), np.float32))  # another input shape runs separately
            assert other.shape == (2, 1)
            with pytest.raises(RuntimeError, match="model failure"):
                await batcher.submit(-np.ones((1, 2), np.float32))
            assert (await batcher.submit(np.ones((1, 2), np.float32)))[0, 0] == 2.0  # still serving
            await batcher.stop()

    asyncio.run(scenario())


class _ImageRecords:
    """A stand-in data type whose records are base64 images (decoded with PIL), mapped to the PBMC features."""

    name = "image"

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def parse_inputs(self, inputs: list[Any]) -> np.ndarray:
        import base64
        import io

        from PIL import Image

        rows = []
        for rec in inputs:
            image = Image.open(io.BytesIO(base64.b64decode(rec, validate=True)))  # binascii.Error / OSError
            rows.append(np.resize(np.asarray(image.convert("L"), dtype=np.float32).ravel() / 255.0, 765))
        return np.stack(rows)

    def transform(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray(self.inner.transform(raw))


def test_app_maps_undecodable_records_to_4xx(bundle: Bundle) -> None:
    import base64
    import copy
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from biodl.serve.app import create_app

    images = copy.copy(bundle)
    images.modality = _ImageRecords(bundle.modality)  # type: ignore[assignment]
    app = create_app(images, select_engine(bundle, "torch"), max_body_bytes=100_000, max_batch=4)
    buf = io.BytesIO()
    Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16)).save(buf, format="PNG")
    good = base64.b64encode(buf.getvalue()).decode()
    with TestClient(app) as client:
        assert client.post("/predict", json={"inputs": [good]}).status_code == 200
        for bad in ("not base64 at all!", base64.b64encode(b"GIF89a but not really").decode()):
            res = client.post("/predict", json={"inputs": [bad]})
            assert res.status_code == 422 and res.json()["detail"].startswith("invalid input")
        assert client.post("/explain", json={"input": "%%%"}).status_code == 422
        images.modality = bundle.modality  # the app keeps the data type it was built with
        assert client.post("/predict", json={"inputs": [good]}).status_code == 200
