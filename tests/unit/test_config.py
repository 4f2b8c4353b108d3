from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from biodl import Experiment, ExperimentConfig
from biodl.config import apply_overrides
from biodl.errors import ConfigError


def test_defaults_follow_review_table2() -> None:
    cfg = ExperimentConfig()
    assert cfg.train.optimizer == "adam" and cfg.train.resolved_lr() == pytest.approx(1e-3)
    assert cfg.train.batch_size == 128
    assert cfg.train.lr_schedule == "plateau" and cfg.train.lr_factor == 0.5
    assert cfg.train.early_stopping
    assert cfg.data.split_sizes == (0.6, 0.1, 0.3)
    params = cfg.model.params()
    assert cfg.model.name == "mlp"
    assert params["dropout"] == 0.5 and params["batch_norm"] is True
    assert params["activation"] == "relu" and params["init"] == "glorot_uniform"
    sgd = ExperimentConfig.from_dict({"train": {"optimizer": "sgd"}})
    assert sgd.train.resolved_lr() == pytest.approx(0.01) and sgd.train.momentum == 0.9


def test_unknown_key_suggests_closest() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'train\.lrr' \(did you mean 'train\.lr'\?\)"):
        ExperimentConfig.from_dict({"train": {"lrr": 0.1}})
    with pytest.raises(ConfigError, match=r"unknown key 'data\.target_column' \(did you mean 'data\.target_columns'\?\)"):
        ExperimentConfig.from_dict({"data": {"target_column": ["y"]}})
    with pytest.raises(ConfigError, match=r"unknown key 'model\.hiden_sizes' \(did you mean 'model\.hidden_sizes'\?\)"):
        ExperimentConfig.from_dict({"model": {"name": "mlp", "hiden_sizes": [3]}})
    with pytest.raises(ConfigError, match=r"unknown key 'trian'"):
        ExperimentConfig.from_dict({"trian": {}})


@pytest.mark.parametrize(
    ("raw", "pattern"),
    [
        ({"train": {"lr": -1}}, r"train\.lr: learning rate must be > 0"),
        ({"train": {"batch_size": "big"}}, r"train\.batch_size"),
        ({"data": {"split_sizes": [0.5, 0.5, 0.5]}}, r"data\.split_sizes: split sizes must sum to 1"),
        ({"data": {"split_sizes": [0.0, 0.5, 0.5]}}, r"training split must not be empty"),
        ({"data": {"cv": 1}}, r"data\.cv: cross-validation needs at least 2 folds"),
        ({"model": {"name": "mlp", "dropout": 1.5}}, r"model\.dropout"),
        ({"model": {"name": "nope"}}, r"unknown model 'nope'"),
        ({"data": {"type": "tabularr"}}, r"unknown data type 'tabularr' \(did you mean 'tabular'\?\)"),
        ({"evaluate": {"metrics": ["rmsee"]}}, r"rmse"),
    ],
)
def test_bad_values_name_the_key(raw: dict[str, object], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        ExperimentConfig.from_dict(raw)


def test_overrides_parse_yaml_values() -> None:
    raw: dict[str, object] = {}
    apply_overrides(raw, ["train.lr=0.01", "model.hidden_sizes=[32, 16]", "train.early_stopping=false", "data.task=regression"])
    cfg = ExperimentConfig.from_dict(raw)
    assert cfg.train.lr == 0.01 and cfg.model.params()["hidden_sizes"] == [32, 16]
    assert cfg.train.early_stopping is False and cfg.data.task == "regression"
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["train.lr"])


def test_yaml_roundtrip_and_python_api(tmp_path: Path) -> None:
    raw = {"data": {"task": "regression", "target_columns": ["y"]}, "model": {"name": "mlp"}, "train": {"lr": 0.02}}
    cfg = ExperimentConfig.from_dict(raw)
    path = tmp_path / "exp.yaml"
    path.write_text(cfg.to_yaml())
    again = Experiment.from_yaml(path, ["train.max_epochs=3"]).config
    assert again.train.lr == 0.02 and again.train.max_epochs == 3
    assert again.to_dict()["model"] == cfg.to_dict()["model"]
    # the resolved dump names every default, so a saved config is complete
    dumped = yaml.safe_load(cfg.to_yaml())
    assert set(dumped) == {"data", "model", "train", "evaluate", "tune", "card"}
    assert "hidden_sizes" in dumped["model"]


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {lr: [1, 2}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML"):
        ExperimentConfig.from_yaml(bad)
    bad.write_text("train:\n  optimiser: sgd\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'train\.optimiser' \(did you mean 'train\.optimizer'\?\)"):
        ExperimentConfig.from_yaml(bad)
    with pytest.raises(ConfigError, match="not found"):
        ExperimentConfig.from_yaml(tmp_path / "missing.yaml")


def test_yaml_cannot_instantiate_objects(tmp_path: Path) -> None:
    evil = tmp_path / "evil.yaml"
    evil.write_text("train: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        ExperimentConfig.from_yaml(evil)


def test_model_recommended_defaults_fill_only_unset_keys() -> None:
    """The road paper's models bring its recipe (RMSprop, 80/20, whole 400 px tiles); user values win."""
    seg = {"type": "image", "task": "segmentation", "image": {"mask_dir": "masks"}}
    cfg = ExperimentConfig.from_dict({"data": seg, "model": {"name": "vgg_autoencoder"}})
    assert cfg.train.optimizer == "rmsprop" and cfg.train.batch_size == 2 and cfg.train.max_epochs == 60
    assert list(cfg.data.split_sizes) == [0.8, 0.2, 0.0] and cfg.data.image.tile_size == 400
    assert cfg.model.params()["input_scale"] == 0.25 and cfg.model.params()["encoder"] == "vgg10"
    mine = ExperimentConfig.from_dict(
        {
            "data": {**seg, "split_sizes": [0.7, 0.1, 0.2]},
            "model": {"name": "vgg_autoencoder"},
            "train": {"optimizer": "adam", "batch_size": 4},
        }
    )
    assert mine.train.optimizer == "adam" and mine.train.batch_size == 4 and list(mine.data.split_sizes) == [0.7, 0.1, 0.2]
    assert mine.train.max_epochs == 60  # still the model's where the user said nothing
    # a U-Net keeps the schema's defaults (8 random crops per step, Adam)
    unet = ExperimentConfig.from_dict({"data": seg, "model": {"name": "unet"}})
    assert unet.train.optimizer == "adam" and unet.train.batch_size == 8 and unet.data.image.tile_size == 128
    # the resolved config re-validates to itself (the recommendations are now explicit values)
    assert ExperimentConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
