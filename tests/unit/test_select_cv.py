"""train.select_by: cv — folds, snapshot epochs, the epoch/threshold choice and when it applies."""

from __future__ import annotations

import numpy as np
import pytest

from biodl.config import ExperimentConfig
from biodl.data.splits import Split
from biodl.errors import ConfigError
from biodl.experiment.select_cv import SMALL_SET, choose, fold_rows, snapshot_epochs, wants_cv_selection


def test_fold_rows_partition_the_rows_and_keep_groups_together() -> None:
    rows = np.array([0, 2, 3, 5, 7, 8, 9, 11, 12])
    folds = fold_rows(rows, 3, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == rows.tolist()
    assert [len(f) for f in folds] == [3, 3, 3]
    groups = np.repeat(np.arange(7), 2)  # rows 2k and 2k+1 belong together
    grouped = fold_rows(rows, 3, seed=1, groups=groups)
    assert sorted(np.concatenate(grouped).tolist()) == rows.tolist()
    for i, f in enumerate(grouped):
        for other in grouped[i + 1 :]:
            assert not set(groups[f]) & set(groups[other])
    with pytest.raises(ConfigError, match="select_folds=5 needs at least 5 groups"):
        fold_rows(rows, 5, seed=0, groups=np.zeros(14, int))


def test_snapshot_epochs_cover_the_training_and_end_at_the_last_epoch() -> None:
    assert snapshot_epochs(4) == [1, 2, 3, 4]
    assert snapshot_epochs(60) == list(range(3, 61, 3))
    assert snapshot_epochs(100)[-1] == 100 and len(snapshot_epochs(100)) == 20
    assert snapshot_epochs(101)[-1] == 101


def test_choose_takes_the_best_smoothed_epoch_and_its_threshold() -> None:
    # a lone spike at epoch 3 loses to a high plateau at epochs 6-8 once neighbours are averaged
    scores = {1: 0.50, 2: 0.55, 3: 0.95, 4: 0.55, 5: 0.80, 6: 0.83, 7: 0.84, 8: 0.83, 9: 0.70}
    table = {e: {0.3: s, 0.5: s - 0.1} for e, s in scores.items()}
    table[7][0.5] = 0.84  # a tie between thresholds goes to the one nearest 0.5
    curve, epoch, t = choose(table, higher=True)
    assert epoch == 7 and t == 0.5
    assert [c["epoch"] for c in curve] == list(scores)
    # lower is better (e.g. RMSE) and no threshold
    curve, epoch, t = choose({1: {None: 2.0}, 2: {None: 1.0}, 3: {None: 1.0}, 4: {None: 1.2}, 5: {None: 2.0}}, higher=False)
    assert (epoch, t) == (3, None) and curve[2]["score"] == 1.0


def _split(n_train: int, n_val: int) -> Split:
    return Split(np.arange(n_train), np.arange(n_train, n_train + n_val), np.array([], int), "random")


def test_auto_selects_by_cv_on_small_sets_only() -> None:
    cfg = ExperimentConfig.from_dict({"data": {"type": "tabular", "path": ["x.csv"]}, "train": {"select_by": "auto"}})
    assert wants_cv_selection(cfg, _split(16, 4))
    assert not wants_cv_selection(cfg, _split(SMALL_SET, 1))
    cfg.train.select_by = "val"
    assert not wants_cv_selection(cfg, _split(16, 4))
    cfg.train.select_by = "cv"
    assert wants_cv_selection(cfg, _split(1000, 100))


def test_vgg_autoencoder_defaults_select_by_cv_and_cv_refuses_ensembles() -> None:
    seg = {"type": "image", "path": ["img"], "image": {"mask_dir": "masks"}}
    cfg = ExperimentConfig.from_dict({"data": seg, "model": {"name": "vgg_autoencoder"}})
    assert cfg.train.select_by == "auto" and cfg.evaluate.select_threshold == "patch_f1"
    assert cfg.train.select_ensemble  # the fold networks are averaged with the final one
    unet = ExperimentConfig.from_dict({"data": seg, "model": {"name": "unet"}}).train
    assert unet.select_by == "val" and not unet.select_ensemble
    with pytest.raises((ConfigError, ValueError), match="ensemble_size must be 1"):
        ExperimentConfig.from_dict({"data": seg, "model": {"name": "unet"}, "train": {"select_by": "cv", "ensemble_size": 3}})
