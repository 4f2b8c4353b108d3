"""Image bags of cell crops (one crop per nucleus of the DSB 2018 sample) and image bags in
``biodl serve``: a request with an image answers the bag prediction and a weight per instance."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from biodl.data.bag_images import object_crops
from conftest import shared_path

FAST = {"progress_bar": False, "threads": 1}


@pytest.fixture(scope="module")
def dsb() -> tuple[np.ndarray, np.ndarray]:
    root = shared_path("images", "dsb2018_nuclei_sample")
    return tifffile.imread(root / "img2d.tif"), tifffile.imread(root / "mask2d.tif")


def test_one_crop_per_nucleus(dsb: tuple[np.ndarray, np.ndarray]) -> None:
    """Crops are centred on real nuclei: the instance count follows the annotated nuclei and almost every
    crop centre lies on an annotated nucleus."""
    img, mask = dsb
    crops, pos, small = object_crops(img[None].astype(np.float32), 24, min_area=20)
    n_true = int(sum((mask == k).sum() >= 20 for k in np.unique(mask) if k))
    assert crops.shape[1:] == (1, 24, 24) and len(crops) == len(pos)
    assert 0.85 * n_true <= len(crops) <= 1.15 * n_true  # touching nuclei are split by the watershed
    centres = pos + 12
    on_nucleus = mask[np.clip(centres[:, 0], 0, 511), np.clip(centres[:, 1], 0, 511)] > 0
    assert on_nucleus.mean() >= 0.9
    assert small >= 0 and (pos >= 0).all() and (pos <= 512 - 24).all()
    assert np.allclose(crops[0, 0], img[pos[0, 0] : pos[0, 0] + 24, pos[0, 1] : pos[0, 1] + 24])


@pytest.fixture(scope="module")
def cell_run(dsb: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Sixteen 128×128 windows of the DSB image, labelled by a real property (more nuclei than the
    median window), as class folders; a tiny MIL network on their nucleus crops."""
    img, mask = dsb
    root = tmp_path_factory.mktemp("cells")
    counts = {(y, x): len(np.unique(mask[y : y + 128, x : x + 128])) - 1 for y in range(0, 512, 128) for x in range(0, 512, 128)}
    median = np.median(list(counts.values()))
    scaled = (img.astype(np.float32) / img.max() * 255).astype(np.uint8)
    for (y, x), n in counts.items():
        cls = "dense" if n > median else "sparse"
        (root / "data" / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(scaled[y : y + 128, x : x + 128]).save(root / "data" / cls / f"w{y}_{x}.png")
    from biodl.experiment import Experiment

    exp = Experiment(
        data={"type": "bags", "path": [str(root / "data")], "task": "classification",
              "bags": {"crops": "objects", "tile_size": 24}, "split_sizes": [0.75, 0.0, 0.25]},
        model={"name": "mil", "pooling": "attention", "members": 1, "conv_channels": [8, 16], "embedding_size": 16},
        train={**FAST, "max_epochs": 2},
        evaluate={"report": False, "plots": False, "baselines": []},
    )  # fmt: skip
    exp.fit(root / "run")
    return root / "run", root / "data"


def test_cell_crop_bags_train_and_predict(cell_run: tuple[Path, Path], tmp_path: Path) -> None:
    """Train → predict: each bag's instances are its nucleus crops (named by their corners)."""
    import pandas as pd

    from biodl.cli.main import main

    run, data = cell_run
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model-path", str(run), "--data-path", str(data), "--output", str(out)]) == 0
    inst = pd.read_csv(tmp_path / "pred_instances.csv")
    assert len(pd.read_csv(out)) == 16
    one = Image.open(next((data / "dense").iterdir()))
    _, pos, _ = object_crops(np.asarray(one, dtype=np.float32)[None], 24, min_area=20)
    assert inst.groupby("bag")["weight"].sum().round(5).eq(1.0).all()
    assert inst["bag"].nunique() == 16 and len(inst) > 16  # several nuclei per window
    assert len(pos) >= 1


def test_serve_image_bags_return_instance_weights(cell_run: tuple[Path, Path]) -> None:
    from fastapi.testclient import TestClient

    from biodl.bundle import load
    from biodl.engine import select_engine
    from biodl.serve.app import create_app

    run, data = cell_run
    bundle = load(run)
    files = sorted((data / "dense").iterdir())[:2]
    encoded = [base64.b64encode(f.read_bytes()).decode("ascii") for f in files]
    with TestClient(create_app(bundle, select_engine(bundle, "torch"))) as client:
        res = client.post("/predict", json={"inputs": [encoded[0], {"image": encoded[1]}]})
        assert res.status_code == 200, res.text
        preds = res.json()["predictions"]
        bad = client.post("/predict", json={"inputs": [np.zeros((40, 40)).tolist()]})
    assert bad.status_code == 422 and "input 0: no foreground object" in bad.text  # an empty bag, named
    for f, p in zip(files, preds, strict=True):
        _, pos, _ = object_crops(np.asarray(Image.open(f), dtype=np.float32)[None], 24, min_area=20)
        assert p["instances"] == [f"{y},{x}" for y, x in pos]
        assert len(p["instance_weights"]) == len(pos) and sum(p["instance_weights"]) == pytest.approx(1.0, abs=1e-5)
        assert set(p["probabilities"]) == {"dense", "sparse"}
    # the same bag prediction as the bundle on the file
    X = bundle.modality.transform(bundle.modality.parse_inputs([encoded[0]]))
    assert preds[0]["probabilities"]["sparse"] == pytest.approx(float(bundle.predict_arrays(X)[0, 0]), abs=1e-5)
