"""Bundles load without unpickling and refuse anything unsafe or inconsistent."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

import biodl
from biodl.bundle import META, WEIGHTS
from biodl.errors import BundleError
from biodl.inference import load_data, predict_frame
from conftest import PBMC


@pytest.fixture()
def bundle_copy(pbmc_run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(pbmc_run / "model", dst)
    return dst


def test_roundtrip_predictions_identical(pbmc_run: Path, bundle_copy: Path) -> None:
    a, b = biodl.load(pbmc_run), biodl.load(bundle_copy)
    data = load_data(a, [str(PBMC)], require_targets=False)
    _, pa = predict_frame(a, data)
    _, pb = predict_frame(b, data)
    np.testing.assert_array_equal(pa, pb)
    assert all(not f.name.endswith((".pkl", ".pt", ".ckpt")) for f in bundle_copy.iterdir())
    meta = json.loads((bundle_copy / META).read_text())
    assert meta["biodl_version"] == biodl.__version__ and meta["model"]["name"] == "mlp"
    assert "test" in meta["metrics"] and meta["columns"]["feature_columns"][0] == "HES4"


def test_refuses_pickles(bundle_copy: Path) -> None:
    (bundle_copy / "extra.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(BundleError, match="pickle"):
        biodl.load(bundle_copy)
    (bundle_copy / "extra.pkl").unlink()
    (bundle_copy / "notes.dat").write_bytes(pickle.dumps([1, 2, 3], protocol=4))
    with pytest.raises(BundleError, match="contains a pickle"):
        biodl.load(bundle_copy)


def test_refuses_corrupted_or_missing_weights(bundle_copy: Path) -> None:
    w = bundle_copy / WEIGHTS
    data = bytearray(w.read_bytes())
    data[-5] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch"):
        biodl.load(bundle_copy)
    w.unlink()
    with pytest.raises(BundleError, match=r"missing weights\.safetensors"):
        biodl.load(bundle_copy)


def test_refuses_incompatible_version(bundle_copy: Path) -> None:
    meta = json.loads((bundle_copy / META).read_text())
    meta["format_version"] = 99
    (bundle_copy / META).write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="incompatible"):
        biodl.load(bundle_copy)


def test_refuses_weights_that_do_not_match_architecture(bundle_copy: Path) -> None:
    meta = json.loads((bundle_copy / META).read_text())
    meta["model"]["params"]["hidden_sizes"] = [32]
    (bundle_copy / META).write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="do not match the architecture"):
        biodl.load(bundle_copy)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not found"):
        biodl.load(tmp_path / "nothing")
    with pytest.raises(BundleError, match="not a biodl model bundle"):
        biodl.load(tmp_path)
