"""The zoo shipped inside biodl: listed with the contract's keys, small, and every model reproduces its card's
validation metric on the shipped validation rows (or, where the data licence keeps them out, on ../shared)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from biodl.cli.main import main
from biodl.model_sources import BUILTIN_ZOO
from biodl.zoo.validation import VALIDATION, check_validation
from conftest import RESOURCES, shared_path

INDEX = json.loads((BUILTIN_ZOO / "index.json").read_text()) if (BUILTIN_ZOO / "index.json").is_file() else {"models": []}
NAMES = sorted(m["name"] for m in INDEX["models"])
#: Where the data of models without shipped validation rows live (their licence keeps them out of the package).
SOURCES = {"molecule": ("molecules", "moleculenet")}


def test_list_json_keeps_the_contract(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("BIODL_ZOO_PATH", raising=False)
    assert main(["zoo", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["name"] for r in rows) == NAMES and NAMES
    for r in rows:
        assert {"name", "version", "data_type", "task", "metrics", "licence", "size"} <= set(r)
        assert r["metrics"]["validation"] and r["size"] > 0
    assert all(n == n.lower() for n in NAMES) and any(n.startswith("encode-") for n in NAMES)


def test_builtin_zoo_is_small_and_pickle_free() -> None:
    files = [f for f in BUILTIN_ZOO.rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in files) < 20 * 2**20
    assert {f.suffix for f in files} <= {".json", ".safetensors", ".md"}


@pytest.mark.parametrize("name", NAMES)
def test_model_reproduces_its_card_validation_metric(name: str) -> None:
    entry = next(m for m in INDEX["models"] if m["name"] == name)
    folder = BUILTIN_ZOO / entry["path"]
    source = None
    if not (folder / VALIDATION).is_file():
        source = shared_path(*SOURCES[entry["data_type"]])
    res = check_validation(folder, source)
    assert res["metric"] == entry["headline_metric"]
    assert res["measured"] == pytest.approx(entry["metrics"]["validation"][res["metric"]], abs=1e-4)
    assert res["card"] == pytest.approx(res["measured"], abs=1e-4)


def test_predict_by_zoo_name(tmp_path: Path) -> None:
    encode = [n for n in NAMES if n.startswith("encode-")]
    name = "encode-gabpa" if "encode-gabpa" in encode else encode[0]
    out = tmp_path / "pred.csv"
    peaks = RESOURCES / "deepbind_REST_GM12878_AC_2000.seq.gz"
    args = ["predict", "--model-path", f"zoo:{name}", "--data-path", str(peaks), "--sequence-column", "seq", "--output", str(out)]
    assert main(args) == 0
    pred = pd.read_csv(out)
    assert len(pred) == 2000 and pred["prob_1"].between(0, 1).all()


def test_show_prints_the_card(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo", "show", NAMES[0]]) == 0
    text = capsys.readouterr().out
    assert text.startswith("---\nlibrary_name: biodl") and "## Reproduce" in text and "examples/zoo/" in text


def test_build_trains_a_zoo_config_and_compares(pbmc_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from biodl.zoo import push

    config = Path(__file__).resolve().parents[2] / "examples" / "zoo" / "pbmc-celltypes.yaml"
    zoo = tmp_path / "zoo"
    push(pbmc_run, str(zoo), name="pbmc-celltypes")  # the "shipped" model the rebuild is compared with
    quick = ["--set", "train.max_epochs=1", "--set", "evaluate.baselines=[]", "--set", "evaluate.report=false"]
    args = ["zoo", "build", str(config), "--to", str(zoo), "--runs-dir", str(tmp_path / "runs"), *quick]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "pbmc-celltypes | accuracy |" in out.splitlines()[-1] and "–" not in out.splitlines()[-1]
    entry = json.loads((zoo / "index.json").read_text())["models"][0]
    assert entry["name"] == "pbmc-celltypes" and "validation.safetensors" in entry["files"]
    res = check_validation(zoo / entry["path"])
    assert res["measured"] == pytest.approx(res["card"], abs=1e-4)
    card = (zoo / entry["path"] / "README.md").read_text()
    assert "biodl zoo build" in card and "Zheng GXY" in card
