"""The model zoo: push to a folder, serve it over real HTTP, pull and predict by URL; bad remote models are refused;
model cards; the Hugging Face path against an offline cache; fine-tuning from a zoo model."""

from __future__ import annotations

import functools
import http.server
import json
import os
import pickle
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import biodl
from biodl.cli.main import main
from biodl.errors import BundleError, ConfigError
from biodl.inference import load_data, predict_frame
from biodl.model_card import read_card
from biodl.model_sources import split_zoo_path
from biodl.zoo import index_zoo, push
from conftest import PBMC


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIODL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BIODL_ZOO_PATH", raising=False)


@pytest.fixture(scope="module")
def zoo_dir(pbmc_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    zoo = tmp_path_factory.mktemp("zoo")
    push(pbmc_run, str(zoo), name="my-model")
    return zoo


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _Truncating(_Quiet):
    """Sends the right Content-Length but only half of every .safetensors file, then closes."""

    def do_GET(self) -> None:
        if not self.path.endswith(".safetensors"):
            return super().do_GET()
        data = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True
        return None


def _serve(folder: Path, handler: type = _Quiet) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def served(zoo_dir: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    copy = tmp_path / "served"
    shutil.copytree(zoo_dir, copy)
    yield from ((url, copy) for url in _serve(copy))


def test_train_writes_a_model_card(pbmc_run: Path) -> None:
    card = read_card(pbmc_run / "model")
    assert card is not None
    front, text = card["front_matter"], card["markdown"]
    assert front["library_name"] == "biodl" and front["task"] == "multiclass-classification"
    results = front["model-index"][0]["results"][0]["metrics"]
    metrics = json.loads((pbmc_run / "metrics.json").read_text())
    acc = next(m for m in results if m["type"] == "accuracy" and m["split"] == "validation")
    assert acc["value"] == pytest.approx(metrics["val"]["accuracy"], abs=1e-6)
    for section in ("## Intended use", "## Training data and split", "## Evaluation", "## Limitations", "## Citation",
                    "## Reproduce"):  # fmt: skip
        assert section in text
    assert "baseline" in text and isinstance(front["biodl"]["network_beats_baseline"], bool)


def test_push_to_a_folder_and_load_back(pbmc_run: Path, zoo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = json.loads((zoo_dir / "index.json").read_text())
    (entry,) = index["models"]
    assert entry["name"] == "my-model" and entry["version"] == "1" and entry["data_type"] == "tabular"
    assert set(entry["files"]) >= {"bundle.json", "weights.safetensors", "preprocessing.safetensors", "README.md"}
    monkeypatch.setenv("BIODL_ZOO_PATH", str(zoo_dir))
    # the run's model/ was trained again on its test rows (train.refit); the zoo gets the measured model, the one
    # its card's figures describe
    a, b = biodl.load(pbmc_run / "model_heldout"), biodl.load("zoo:my-model")
    data = load_data(a, [str(PBMC)], require_targets=False)
    np.testing.assert_array_equal(predict_frame(a, data)[1], predict_frame(b, data)[1])
    assert "Trained again" in (pbmc_run / "model" / "README.md").read_text()
    assert "Trained again" not in (zoo_dir / "my-model" / "1" / "README.md").read_text()
    with pytest.raises(BundleError, match="did you mean my-model"):
        biodl.load("zoo:my-modle")
    with pytest.raises(BundleError, match="no version '7'"):
        biodl.load("zoo:my-model@7")


@pytest.mark.parametrize(
    ("text", "sep", "want"),
    [
        ("/zoo:http://127.0.0.1:8000/models:https://example.org/zoo", ":",
         ["/zoo", "http://127.0.0.1:8000/models", "https://example.org/zoo"]),
        ("/a:http://h:9", ":", ["/a", "http://h:9"]),
        ("http://h/x:/b::", ":", ["http://h/x", "/b"]),
        (r"C:\zoo;https://h:9/z", ";", [r"C:\zoo", "https://h:9/z"]),
    ],
)  # fmt: skip
def test_zoo_path_keeps_urls_whole(text: str, sep: str, want: list[str]) -> None:
    assert split_zoo_path(text, sep) == want


def test_a_later_web_zoo_is_not_contacted(
    zoo_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first zoo folder holding the name wins; an (unreachable) web zoo after it is never read."""
    monkeypatch.setenv("BIODL_ZOO_PATH", os.pathsep.join([str(zoo_dir), "http://127.0.0.1:9"]))
    assert biodl.load("zoo:my-model").meta["task"] == "classification"
    assert "127.0.0.1:9" not in capsys.readouterr().err
    with pytest.raises(BundleError, match="no model named 'absent'"):
        biodl.load("zoo:absent")  # not in the first folder: the web zoo is tried (skipped with a note), then built-in
    assert "skipping the zoo http://127.0.0.1:9" in capsys.readouterr().err


def test_pull_and_predict_over_http(served: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = served
    assert main(["zoo", "pull", f"{url}/my-model"]) == 0
    cached = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert (cached / "bundle.json").is_file() and str(cached).startswith(str(tmp_path / "cache"))
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model-path", f"{url}/my-model", "--data-path", str(PBMC), "--output", str(out)]) == 0
    assert len(pd.read_csv(out)) == 700
    assert main(["zoo", "show", f"{url}/my-model"]) == 0
    assert "library_name: biodl" in capsys.readouterr().out


def test_corrupted_remote_file_is_discarded(served: tuple[str, Path], tmp_path: Path) -> None:
    url, folder = served
    w = folder / "my-model" / "1" / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-3] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"checksum mismatch.*cache entry was discarded"):
        biodl.load(f"{url}/my-model")
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def test_truncated_download_is_discarded(zoo_dir: Path, tmp_path: Path) -> None:
    for url in _serve(zoo_dir, _Truncating):
        with pytest.raises(BundleError, match=r"truncated download.*discarded"):
            biodl.load(f"{url}/my-model")
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def test_pickle_capable_remote_files_are_refused_before_writing(served: tuple[str, Path], tmp_path: Path) -> None:
    url, folder = served
    index = json.loads((folder / "index.json").read_text())
    index["models"][0]["files"]["extra.pkl"] = "0" * 64
    (folder / "index.json").write_text(json.dumps(index))
    with pytest.raises(BundleError, match=r"pickle-capable file .*extra.pkl.*nothing was written"):
        biodl.load(f"{url}/my-model")
    # a pickle disguised as a .safetensors file (with a matching checksum) is refused by its bytes
    prep = folder / "my-model" / "1" / "preprocessing.safetensors"
    prep.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    index_zoo(folder)
    with pytest.raises(BundleError, match="refusing a pickle"):
        biodl.load(f"{url}/my-model")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.safetensors"))


def test_incompatible_bundle_format_version(served: tuple[str, Path]) -> None:
    url, folder = served
    meta_file = folder / "my-model" / "1" / "bundle.json"
    meta = json.loads(meta_file.read_text())
    meta["format_version"] = 99
    meta_file.write_text(json.dumps(meta))
    assert main(["zoo", "index", str(folder)]) == 0
    with pytest.raises(BundleError, match=r"format version 99 .* incompatible"):
        biodl.load(f"{url}/my-model")


def test_no_network_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo", "pull", "http://127.0.0.1:9/my-model"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "cannot reach http://127.0.0.1:9/index.json" in err and "local paths and built-in zoo names still work" in err


def _hf_cache(root: Path, repo: str, files: dict[str, Path]) -> None:
    """The huggingface_hub cache layout of one repository snapshot (``models--OWNER--REPO``)."""
    base = root / "hf" / ("models--" + repo.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = base / "snapshots" / commit
    snap.mkdir(parents=True)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(commit)
    for name, src in files.items():
        (snap / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, snap / name)


def test_hugging_face_hub_offline_cache(zoo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = zoo_dir / "my-model" / "1"
    _hf_cache(tmp_path / "cache", "someone/pbmc", {f.name: f for f in folder.iterdir()})
    bundle = biodl.load("hf://someone/pbmc")
    assert bundle.kind == "multiclass" and bundle.path is not None and "models--someone--pbmc" in str(bundle.path)
    _hf_cache(tmp_path / "cache", "someone/notes", {"README.md": folder / "README.md"})
    with pytest.raises(BundleError, match="holds no biodl bundle"):
        biodl.load("hf://someone/notes")
    with pytest.raises(BundleError, match="cannot fetch hf://someone/absent"):
        biodl.load("hf://someone/absent")


def test_serve_model_endpoint_returns_the_card(zoo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from biodl.engine import select_engine
    from biodl.serve.app import create_app

    monkeypatch.setenv("BIODL_ZOO_PATH", str(zoo_dir))
    bundle = biodl.load("zoo:my-model")
    with TestClient(create_app(bundle, select_engine(bundle, "torch"))) as client:
        doc = client.get("/model").json()
    assert doc["name"] == "my-model"
    assert doc["card"]["front_matter"]["library_name"] == "biodl" and "## Evaluation" in doc["card"]["markdown"]


def test_fine_tune_from_a_zoo_model(zoo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIODL_ZOO_PATH", str(zoo_dir))
    out = tmp_path / "ft"
    args = ["train", "--data-path", str(PBMC), "--task", "classification", "--target-columns", "louvain",
            "--model", "mlp", "--max-epochs", "2", "--set", "model.hidden_sizes=[64]", "--set", "evaluate.baselines=[]",
            "--set", "evaluate.plots=false", "--set", "evaluate.report=false", "--set", "train.progress_bar=false",
            "--init-from", "zoo:my-model", "--freeze", "1", "--output-dir", str(out)]  # fmt: skip
    assert main(args) == 0
    parent = json.loads((out / "transfer.json").read_text())["parent"]
    assert parent["source"] == "zoo:my-model" and parent["name"] == "my-model"
    assert parent["loaded"] >= 2 and parent["reinitialised"] and parent["frozen_layers"] == 1  # louvain ≠ bulk_labels
    parent_w = biodl.load("zoo:my-model").model.state_dict()
    child_w = biodl.load(out).model.state_dict()
    first = parent["frozen"][0] + ".weight"
    np.testing.assert_array_equal(parent_w[first].numpy(), child_w[first].numpy())  # frozen: unchanged
    card = (out / "model" / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["biodl"]["parent"]["source"] == "zoo:my-model" and "## Fine-tuned from" in card
    with pytest.raises(ConfigError, match="no tensor of the parent"):
        from biodl.training.init_from import init_from

        init_from(torch_linear(), "zoo:my-model", target_names=["x"], classes=None)


def torch_linear() -> object:
    import torch

    return torch.nn.Sequential(torch.nn.Linear(3, 2))
