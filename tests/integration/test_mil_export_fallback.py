"""Exporting and serving MIL models without ``--data-path``: an image-bag model checks parity on its
recorded training *folder*; a table-bag model whose training file is gone checks it on synthetic
bags that are valid bags (a 0/1 mask of real instances, padding after them), so the ONNX export
passes and ``biodl serve`` picks ONNX Runtime. ``GET /model`` says what an image-bag request holds,
and ``--model mil`` on images or tables without a bag column says which flags to use instead."""

from __future__ import annotations

import gc
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from biodl.cli.main import main
from biodl.experiment import Experiment
from conftest import shared_path
from mil_data import bag_table, breast_mosaics

FAST = {"progress_bar": False, "threads": 1, "max_epochs": 1}
QUIET = {"report": False, "plots": False, "baselines": []}


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny attention MIL network on 12 BreastMNIST mosaics (image bags of four 28×28 tiles, class folders)."""
    npz = shared_path("images", "breastmnist", "breastmnist_train_val.npz")
    root = tmp_path_factory.mktemp("image_bags")
    data, _ = breast_mosaics(npz, root / "mosaics", n_pos=6, n_neg=6)
    Experiment(
        data={"type": "bags", "path": [str(data)], "task": "classification", "bags": {"tile_size": 28}},
        model={"name": "mil", "pooling": "attention", "members": 1, "conv_channels": [4], "embedding_size": 8},
        train=FAST,
        evaluate=QUIET,
    ).fit(root / "run")
    return root / "run", data


@pytest.fixture(scope="module")
def moved_table_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MIL network on MUSK1 table bags (``--bag-column``) whose training CSV was then moved away."""
    src = shared_path("mil", "midatasets", "musk1.csv.gz")
    root = tmp_path_factory.mktemp("table_bags")
    table = bag_table(src, src.with_name("musk1_cv_folds.csv"), root / "musk1.csv")
    Experiment(
        data={"type": "tabular", "path": [str(table)], "bag_column": "bag_id", "target_columns": ["bag_label"],
              "task": "classification"},
        model={"name": "mil", "members": 1, "hidden_sizes": [8]},  # mean pooling: random masks break its parity
        train=FAST,
        evaluate=QUIET,
    ).fit(root / "run")  # fmt: skip
    (root / "elsewhere").mkdir()
    shutil.move(str(table), root / "elsewhere" / "musk1.csv")
    return root / "run"


def _export(run: Path, out: Path) -> dict[str, Any]:
    assert main(["export", "--model-path", str(run), "--format", "onnx", "--output", str(out)]) == 0
    manifest: dict[str, Any] = json.loads(out.with_name(out.name + ".json").read_text())
    return manifest


def _serve(run: Path) -> tuple[Any, Any]:
    """``biodl serve``'s app and engine choice for ``run`` (engine auto, one thread)."""
    from biodl.serve.server import ServeSpec, build_app

    try:
        return build_app(ServeSpec(model_path=str(run), threads=1))
    finally:
        gc.unfreeze()  # build_app freezes the server's objects; this is a test process


def test_image_bag_export_checks_parity_on_the_training_folder(image_run: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = image_run
    parity = _export(run, tmp_path / "bags.onnx")["parity"]
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-4
    assert parity["real_inputs"] and parity["rows"] == 12  # every mosaic of the folder, not synthetic inputs
    assert parity["source"] == f"the training data folder {data.name}"


def test_image_bag_serve_uses_onnx_and_describes_image_requests(image_run: tuple[Path, Path]) -> None:
    from fastapi.testclient import TestClient

    run, _ = image_run
    app, choice = _serve(run)
    assert choice.engine.name == "onnx" and choice.parity.real_inputs, choice.reason
    with TestClient(app) as client:
        card = client.get("/model").json()
    inputs = card["inputs"]
    assert inputs["data_type"] == "bags" and "feature_columns" not in inputs
    text = inputs["description"]
    assert "feature row" not in text  # not the table-bag description
    assert text.startswith("an image bag: one whole image (1 channel) per input")
    assert "base64-encoded PNG, JPEG or TIFF" in text and "28×28 tiles on a grid" in text


def test_table_bag_export_without_its_training_file_uses_valid_synthetic_bags(moved_table_run: Path, tmp_path: Path) -> None:
    parity = _export(moved_table_run, tmp_path / "bags.onnx")["parity"]
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-4
    assert not parity["real_inputs"] and parity["source"].startswith("synthetic bags of standard-normal instances")


def test_table_bag_serve_without_its_training_file_uses_onnx(moved_table_run: Path) -> None:
    from fastapi.testclient import TestClient

    app, choice = _serve(moved_table_run)
    assert choice.engine.name == "onnx", choice.reason
    assert not choice.parity.real_inputs
    with TestClient(app) as client:
        card = client.get("/model").json()
    assert card["engine"]["name"] == "onnx"
    assert card["inputs"]["description"].startswith("a bag: a list of instances, each a feature row")
    assert len(card["inputs"]["feature_columns"]) == 166


def test_synthetic_bags_are_packed_bags() -> None:
    """Real instances first, then zero padding; the mask is 0/1 (constant over an image tile)."""
    from biodl.data.bags import bag_mask, synthetic_bags

    rng = np.random.default_rng(0)
    for shape in [(7, 5), (4, 3, 8, 8)]:
        X = synthetic_bags(shape, 20, rng)
        assert X.shape == (20, *shape) and X.dtype == np.float32
        mask = bag_mask(X)
        assert np.isin(X[:, :, -1], (0.0, 1.0)).all()
        if len(shape) == 4:
            assert (X[:, :, -1] == X[:, :, -1, :1, :1]).all()
        sizes = mask.sum(axis=1)
        assert sizes.min() == 1 and sizes.max() == shape[0] and len(set(sizes.tolist())) > 2
        assert (mask == (np.arange(shape[0]) < sizes[:, None])).all()  # a prefix of real instances
        assert (X[~mask] == 0).all() and (X[:, :, :-1][mask] != 0).all()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--data-type", "image", "--data-path", "IMAGES"], "use --data-type bags --bag-instances image"),
        (["--data-type", "tabular", "--data-path", "MUSK1", "--target-columns", "bag_label"], "add --bag-column COLUMN"),
    ],
)
def test_mil_on_another_data_type_says_what_to_use(
    flags: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = {
        "IMAGES": str(shared_path("images", "breastmnist", "breastmnist_train_val.npz")),
        "MUSK1": str(shared_path("mil", "midatasets", "musk1.csv.gz")),
    }
    argv = ["train", *[paths.get(f, f) for f in flags], "--model", "mil", "--task", "classification"]
    assert main([*argv, "--output-dir", str(tmp_path / "run")]) != 0
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in captured.err + captured.out
    data_type = flags[1]
    assert f"model 'mil' does not take data type '{data_type}' (it takes: bags)" in err
    assert expected in err
    assert not (tmp_path / "run").exists()
