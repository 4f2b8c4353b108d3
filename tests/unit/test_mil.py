"""Multiple-instance learning: bag packing and masks, pooling operators against hand computations,
padding invariance, predefined folds and bad bag input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from biodl.config import DataConfig, ExperimentConfig, TrainConfig
from biodl.data.bag_images import tile_image
from biodl.data.bags import BagModality, InstanceDropout, bag_mask, pack_bags
from biodl.data.folds import predefined_folds
from biodl.data.split_columns import fold_column
from biodl.errors import DataError
from biodl.models import build_model
from biodl.models.mil import POOLINGS, AttentionPool, NoisyAnd, masked_max, masked_mean, masked_softmax
from biodl.training.module import BiodlModule

MIL_INSTANCE_DROPOUT = 0.3  # the mil model's default data.bags.instance_dropout (docs/mil.md)


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# ----------------------------------------------------------------------------- packing
def test_pack_bags_pads_with_a_mask_feature() -> None:
    bags = [np.array([[1.0, 2.0]]), np.array([[3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])]
    X = pack_bags(bags)
    assert X.shape == (2, 3, 3)
    np.testing.assert_array_equal(X[0], [[1, 2, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(bag_mask(X), [[True, False, False], [True, True, True]])
    tiles = [np.ones((2, 1, 4, 4)), np.ones((1, 1, 4, 4))]
    Xi = pack_bags(tiles)
    assert Xi.shape == (2, 2, 2, 4, 4) and bag_mask(Xi).tolist() == [[True, True], [True, False]]


# ----------------------------------------------------------------------------- pooling
H = torch.tensor([[[1.0, -2.0], [3.0, 0.0], [100.0, 100.0]]])  # third instance is padding
MASK = torch.tensor([[1.0, 1.0, 0.0]])


def test_masked_mean_and_max_by_hand() -> None:
    z, w = masked_mean(H, MASK)
    np.testing.assert_allclose(z.numpy(), [[2.0, -1.0]])
    np.testing.assert_allclose(w.numpy(), [[0.5, 0.5, 0.0]])
    z, w = masked_max(H, MASK)
    np.testing.assert_allclose(z.numpy(), [[3.0, 0.0]])  # the padded 100s never win
    np.testing.assert_allclose(w.numpy(), [[0.0, 1.0, 0.0]])  # instance 2 holds both maxima


def test_masked_softmax_by_hand() -> None:
    w = masked_softmax(torch.tensor([[0.0, math.log(3.0), 50.0]]), MASK)
    np.testing.assert_allclose(w.numpy(), [[0.25, 0.75, 0.0]], atol=1e-6)


@pytest.mark.parametrize("gated", [False, True])
def test_attention_pool_by_hand(gated: bool) -> None:
    """a_k = softmax(w · tanh(V h_k) [⊙ sigm(U h_k)]) with V = I, U = I, w = (1, 1), no biases."""
    pool = AttentionPool(2, 2, gated=gated)
    with torch.no_grad():
        pool.V.weight.copy_(torch.eye(2))
        pool.V.bias.zero_()
        pool.w.weight.copy_(torch.ones(1, 2))
        if pool.U is not None:
            pool.U.weight.copy_(torch.eye(2))
            pool.U.bias.zero_()
    h = H[0, :2].numpy()
    s = []
    for hk in h:
        a = np.tanh(hk) * ((1 / (1 + np.exp(-hk))) if gated else 1.0)
        s.append(a.sum())
    e = np.exp(np.array(s) - max(s))
    a = e / e.sum()
    z, w = pool(H, MASK)
    np.testing.assert_allclose(w.detach().numpy()[0], [a[0], a[1], 0.0], rtol=1e-5)
    np.testing.assert_allclose(z.detach().numpy()[0], a @ h, rtol=1e-5)


@torch.no_grad()
def test_noisy_and_by_hand() -> None:
    """Kraus et al. eq. 1 with a = 10, b = 0.5: p̄ = 0.8 → (σ(3) − σ(−5)) / (σ(5) − σ(−5))."""
    pool = NoisyAnd(1, slope=10.0)
    p = torch.tensor([[[0.7], [0.9], [0.01]]])  # mean of the real instances: 0.8
    out = float(pool(p, MASK)[0, 0])
    expected = (_sig(3.0) - _sig(-5.0)) / (_sig(5.0) - _sig(-5.0))
    assert out == pytest.approx(expected, rel=1e-5)
    assert float(pool(torch.full((1, 3, 1), 1.0), MASK)[0, 0]) == pytest.approx(1.0, abs=1e-6)
    assert float(pool(torch.zeros((1, 3, 1)), MASK)[0, 0]) == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------- padding invariance
@pytest.mark.parametrize("pooling", POOLINGS)
def test_padding_never_changes_a_prediction(pooling: str) -> None:
    rng = np.random.default_rng(0)
    bags = [rng.normal(size=(k, 5)).astype(np.float32) for k in (1, 3, 7)]
    tight = pack_bags(bags)
    wide = pack_bags(bags, max_instances=12)
    wide[:, 7:, :-1] = rng.normal(size=wide[:, 7:, :-1].shape) * 100  # garbage in padded slots (mask 0)
    torch.manual_seed(0)
    model = build_model("mil", tight.shape[1:], 2, {"pooling": pooling}).eval()
    with torch.no_grad():
        a = model(torch.from_numpy(tight)).numpy()
        b = model(torch.from_numpy(wide)).numpy()
        single = np.concatenate([model(torch.from_numpy(pack_bags([bg]))).numpy() for bg in bags])
        w, s = model.instance_outputs(torch.from_numpy(wide))
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a, single, atol=1e-5)  # batching with other bags changes nothing either
    assert float(w[:, 7:].abs().max()) == 0.0 and float(s[:, 7:].abs().max()) == 0.0
    np.testing.assert_allclose(w.sum(dim=1).numpy(), 1.0, atol=1e-5)


def test_encoded_instances_are_binned_on_the_training_bags_real_instances_and_padding_still_changes_nothing() -> None:
    from biodl.models.numeric_encoding import PiecewiseLinearEncoding, fit_input_encoders

    rng = np.random.default_rng(3)
    bags = [rng.normal(size=(k, 4)).astype(np.float32) for k in (1, 2, 6, 3, 5)]
    packed = pack_bags(bags)  # 6 slots per bag: 10 padded (zero) slots among the training bags
    tr = np.array([0, 1, 2])
    torch.manual_seed(0)
    model = build_model("mil", packed.shape[1:], 1, {"numeric_encoding": "ple", "encoding_bins": 4, "members": 2}).eval()
    assert fit_input_encoders(model, packed, tr) == 2  # one encoder per member, both fitted
    real = np.concatenate([bags[i] for i in tr]).astype(np.float64)
    for enc in (m for m in model.modules() if isinstance(m, PiecewiseLinearEncoding)):
        np.testing.assert_allclose(enc.edges(1), np.quantile(real[:, 1], np.linspace(0, 1, 5)), rtol=1e-5, atol=1e-6)
    wide = pack_bags(bags, max_instances=9)
    wide[:, 6:, :-1] = 50.0  # garbage in padded slots
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.from_numpy(packed)).numpy(), model(torch.from_numpy(wide)).numpy(), atol=1e-5)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_only_real_instances_are_encoded_with_the_same_scores_dropout_draws_and_gradients(pooling: str) -> None:
    """Bags of a file padded to a large bag: only the real instances go through the encoder, and in
    training the dropout mask is drawn for all slots, so the scores and gradients are those of encoding
    every padded slot under the same seed."""
    rng = np.random.default_rng(4)
    x = torch.from_numpy(pack_bags([rng.normal(size=(k, 5)).astype(np.float32) for k in (2, 6, 3)], max_instances=40))
    torch.manual_seed(0)
    model = build_model("mil", tuple(x.shape[1:]), 1, {"pooling": pooling, "members": 2, "dropout": 0.5})
    inst, mask = model.split(x)
    seen: list[int] = []
    hook = model.networks()[0].encoder.register_forward_hook(lambda _m, args, _o: seen.append(len(args[0])))
    model.member_scores(x)
    hook.remove()
    assert seen == [11]  # 2 + 6 + 3 real instances, not 3 × 40 slots

    def every_slot() -> torch.Tensor:
        return torch.stack([net.pool(net.embed(inst), mask)[0] for net in model.networks()])

    for train in (False, True):
        model.train(train)
        torch.manual_seed(1)
        packed = model.member_scores(x)
        torch.manual_seed(1)
        torch.testing.assert_close(packed, every_slot(), rtol=1e-5, atol=1e-6)
    model.train()
    grads = []
    for real_only in (True, False):
        model.zero_grad()
        torch.manual_seed(2)
        (model.member_scores(x) if real_only else every_slot()).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_padding_invariance_for_image_bags() -> None:
    rng = np.random.default_rng(1)
    bags = [rng.normal(size=(k, 1, 8, 8)).astype(np.float32) for k in (2, 4)]
    torch.manual_seed(0)
    model = build_model("mil", pack_bags(bags).shape[1:], 1, {"pooling": "gated_attention", "conv_channels": [4]}).eval()
    with torch.no_grad():
        a = model(torch.from_numpy(pack_bags(bags))).numpy()
        b = model(torch.from_numpy(pack_bags(bags, max_instances=9))).numpy()
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_members_are_fitted_each_to_its_own_loss() -> None:
    """A training step of a 3-member model gives member 0 exactly the gradient it would get alone;
    the model's output is the members' mean."""
    rng = np.random.default_rng(2)
    x = torch.from_numpy(pack_bags([rng.normal(size=(k, 4)).astype(np.float32) for k in (2, 5, 3, 1)]))
    y = torch.tensor([[1.0], [0.0], [1.0], [0.0]])
    torch.manual_seed(0)
    model = build_model("mil", tuple(x.shape[1:]), 1, {"members": 3, "dropout": 0.0, "pooling": "attention"})
    with torch.no_grad():
        each = model.member_scores(x)
        torch.testing.assert_close(model(x), each.mean(dim=0))
    assert not torch.allclose(each[0], each[1])  # different random starts
    module = BiodlModule(model, "binary", TrainConfig(progress_bar=False), monitor="train_loss")
    module._step((x, y), "train").backward()
    alone = build_model("mil", tuple(x.shape[1:]), 1, {"members": 1, "dropout": 0.0, "pooling": "attention"})
    alone.nets[0].load_state_dict(model.nets[0].state_dict())
    torch.nn.functional.binary_cross_entropy_with_logits(alone(x), y).backward()
    for (name, p), q in zip(model.nets[0].named_parameters(), alone.nets[0].parameters(), strict=True):
        assert p.grad is not None and q.grad is not None
        torch.testing.assert_close(p.grad, q.grad, msg=name)


# ----------------------------------------------------------------------------- instance dropout
def test_instance_dropout_masks_instances_keeps_one_and_never_revives_padding() -> None:
    rng = np.random.default_rng(3)
    sizes = [1, 2, 6, 40]
    x = torch.from_numpy(pack_bags([rng.normal(size=(k, 3)).astype(np.float32) for k in sizes]))
    torch.manual_seed(0)
    drop = InstanceDropout(0.5)
    kept = []
    for _ in range(200):
        out = drop(x)
        torch.testing.assert_close(out[..., :-1], x[..., :-1])  # features untouched, only the mask
        mask = out[..., -1]
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert bool((mask <= x[..., -1]).all())  # padding stays padding
        assert bool((mask.sum(dim=1) >= 1).all())  # every bag keeps an instance
        kept.append(mask.sum(dim=1))
    mean_kept = torch.stack(kept).mean(dim=0)
    assert float(mean_kept[0]) == 1.0  # a one-instance bag is never emptied
    assert float(mean_kept[3]) == pytest.approx(20.0, abs=1.5)  # ~half of 40 instances
    assert x[..., -1].sum() == sum(sizes)  # the input is not modified in place
    tiles = torch.from_numpy(pack_bags([rng.normal(size=(k, 1, 4, 4)).astype(np.float32) for k in (3, 5)]))
    out = InstanceDropout(0.9)(tiles)
    chan = out[:, :, -1]
    assert bool((chan == chan[:, :, :1, :1]).all())  # the mask channel stays constant over each tile
    assert bool((chan[:, :, 0, 0].sum(dim=1) >= 1).all())


def test_mil_defaults_on_bag_tables() -> None:
    """The ``mil`` model's recommended settings for bags (chosen by 10-fold CV, docs/mil.md); a user's value wins."""
    base = {"data": {"type": "tabular", "bag_column": "bag", "target_columns": ["y"], "task": "classification"},
            "model": {"name": "mil"}}  # fmt: skip
    cfg = ExperimentConfig.from_dict(base)
    assert cfg.data.bags.instance_dropout == MIL_INSTANCE_DROPOUT
    assert cfg.data.split_sizes == (0.7, 0.0, 0.3) and not cfg.train.early_stopping
    mod = BagModality(cfg.data)
    assert isinstance(mod.train_augment(), InstanceDropout) or MIL_INSTANCE_DROPOUT == 0
    mine = ExperimentConfig.from_dict({**base, "data": {**base["data"], "bags": {"instance_dropout": 0.0}}})
    assert mine.data.bags.instance_dropout == 0.0 and BagModality(mine.data).train_augment() is None


# ----------------------------------------------------------------------------- tiles
def test_tile_image_grid_and_foreground() -> None:
    img = np.zeros((1, 10, 12), dtype=np.float32)
    img[0, :4, :4] = 1.0  # bright object in the top-left corner
    tiles, pos = tile_image(img, 4)
    assert tiles.shape == (9, 1, 4, 4)  # rows 0, 4, 6 (shifted in) × cols 0, 4, 8
    assert sorted({int(y) for y, _ in pos}) == [0, 4, 6] and sorted({int(x) for _, x in pos}) == [0, 4, 8]
    fg_tiles, fg_pos = tile_image(img, 4, foreground=0.5)
    assert fg_pos.tolist() == [[0, 0]] and fg_tiles[0].min() == 1.0


# ----------------------------------------------------------------------------- folds
def test_predefined_folds_test_each_value_once() -> None:
    folds = np.array(["1", "2", "3", "1", "2", "3", "1", "2", "3", "10"] * 3)
    labels = np.arange(len(folds)) % 2
    splits = predefined_folds(folds, (0.6, 0.1, 0.3), 0, labels=labels)
    assert len(splits) == 4 and "test fold 10" in splits[-1].method  # numeric order: 1, 2, 3, 10
    seen = np.concatenate([s.test for s in splits])
    assert sorted(seen.tolist()) == list(range(len(folds)))
    for s in splits:
        assert len(set(folds[s.test].tolist())) == 1
        assert not set(s.test) & (set(s.train) | set(s.val))


def test_fold_column_normalises_numbers_and_rejects_gaps() -> None:
    frame = pd.DataFrame({"fold": [1, 2.0, " 3"]})
    assert fold_column(frame, "fold", "t.csv").tolist() == ["1", "2", "3"]
    assert fold_column(frame, "other", "t.csv") is None
    with pytest.raises(DataError, match=r"t.csv: cv column 'fold' is empty in row 2"):
        fold_column(pd.DataFrame({"fold": [1, None, 2]}), "fold", "t.csv")


# ----------------------------------------------------------------------------- config and bad input
def test_bag_column_turns_a_table_into_bags_and_reserved_columns_are_not_features(tmp_path: Path) -> None:
    cfg = ExperimentConfig.from_dict(
        {"data": {"type": "tabular", "bag_column": "bag", "cv_column": "fold", "target_columns": ["y"],
                  "task": "classification"}, "model": {"name": "mil"}}
    )  # fmt: skip
    assert cfg.data.type == "bags" and cfg.data.bags.instances == "tabular"
    path = tmp_path / "bags.csv"
    pd.DataFrame(
        {"bag": ["a", "a", "b", "c", "c", "c"], "y": [1, 1, 0, 1, 1, 1], "fold": [1, 1, 2, 2, 2, 2], "g": [0] * 6,
         "x1": np.arange(6.0), "x2": np.arange(6.0) * 2}
    ).to_csv(path, index=False)  # fmt: skip
    data_cfg = cfg.data.model_copy(update={"path": [str(path)], "group_column": "g"})
    mod = BagModality(data_cfg)
    data = mod.load([str(path)])
    assert mod.feature_names == ["x1", "x2"]  # bag, target, fold and group columns are never features
    assert data.X.shape == (3, 3, 3) and data.ids.tolist() == ["a", "b", "c"]
    assert data.folds is not None and data.folds.tolist() == ["1", "2", "2"]
    assert data.targets is not None and data.targets.y[:, 0].tolist() == [1.0, 0.0, 1.0]
    np.testing.assert_array_equal(data.X[2, :, 0], [3, 4, 5])
    with pytest.raises(ValueError, match="either --cv K or --cv-column"):
        DataConfig(cv=5, cv_column="fold")


def _write(tmp_path: Path, frame: pd.DataFrame) -> str:
    p = tmp_path / "bad.csv"
    frame.to_csv(p, index=False)
    return str(p)


def _bags(tmp_path: Path, frame: pd.DataFrame, **extra: object) -> None:
    cfg = DataConfig(type="tabular", bag_column="bag", target_columns=["y"], task="classification", **extra)  # type: ignore[arg-type]
    BagModality(cfg).load([_write(tmp_path, frame)])


def test_bad_bags_are_one_line_errors(tmp_path: Path) -> None:
    base = {"bag": ["a", "a", "b"], "y": [1, 1, 0], "x": [0.1, 0.2, 0.3]}
    with pytest.raises(DataError, match=r"bad.csv: bag 'a' has different labels in column 'y': \['1', '0'\] \(rows 1, 2\)"):
        _bags(tmp_path, pd.DataFrame({**base, "y": [1, 0, 0]}))
    with pytest.raises(DataError, match=r"bag 'a' has different folds in column 'fold': \['1', '2'\]"):
        _bags(tmp_path, pd.DataFrame({**base, "fold": [1, 2, 3]}), cv_column="fold")
    with pytest.raises(DataError, match=r"row 2 has no bag id in column 'bag'"):
        _bags(tmp_path, pd.DataFrame({**base, "bag": ["a", None, "b"]}))
    with pytest.raises(DataError, match=r"bag column 'bag' not found"):
        _bags(tmp_path, pd.DataFrame({k: v for k, v in base.items() if k != "bag"}))
    with pytest.raises(DataError, match=r"bag 'a' has 2 instances, more than data.bags.max_instances=1"):
        _bags(tmp_path, pd.DataFrame(base), bags={"max_instances": 1})
    with pytest.raises(DataError) as info:
        _bags(tmp_path, pd.DataFrame({**base, "y": [1, 0, 0]}))
    assert "\n" not in str(info.value)


def test_an_image_without_foreground_is_an_empty_bag_error(tmp_path: Path) -> None:
    from PIL import Image

    for cls, value in (("pos", 200), ("neg", 0)):
        (tmp_path / cls).mkdir()
        img = np.zeros((16, 16), dtype=np.uint8)
        if value:
            img[:8, :8] = value
        Image.fromarray(img).save(tmp_path / cls / f"{cls}.png")
    cfg = DataConfig(type="bags", task="classification", bags={"tile_size": 8, "foreground": 0.5})  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"neg.png: no tile of 8×8 has a foreground fraction of 0.5 \(an empty bag\)"):
        BagModality(cfg).load([str(tmp_path)])


def test_cv_column_of_plain_tables(tmp_path: Path) -> None:
    """``--cv-column`` is general: a plain table reads the fold of each row and never uses it as a feature."""
    from biodl.data.folds import cv_folds
    from biodl.data.tabular import Tabular

    path = tmp_path / "t.csv"
    pd.DataFrame({"y": [0, 1] * 6, "fold": [1, 2, 3] * 4, "x": np.arange(12.0)}).to_csv(path, index=False)
    cfg = DataConfig(target_columns=["y"], task="classification", cv_column="fold")
    mod = Tabular(cfg)
    data = mod.load([str(path)])
    assert mod.feature_names == ["x"] and data.folds is not None
    splits = cv_folds(len(data), None, "fold", data.folds, (0.6, 0.1, 0.3), 0)
    assert [s.test.tolist() for s in splits] == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]
    with pytest.raises(DataError, match="cv column 'part' not found"):
        cv_folds(12, None, "part", None, (0.6, 0.1, 0.3), 0)


def test_images_smaller_than_a_tile_are_padded_and_said_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from biodl.data import DATA_TYPES
    from conftest import shared_path
    from mil_data import breast_mosaics

    folder, _ = breast_mosaics(shared_path("images", "breastmnist", "breastmnist_train_val.npz"), tmp_path, n_pos=2, n_neg=2)
    bags = DATA_TYPES["bags"](DataConfig(type="bags", path=[str(folder)], task="classification", bags={"tile_size": 64}))
    data = bags.load([str(folder)])
    assert "4 of 4 image(s) smaller than a 64×64 tile, padded with edge values" in capsys.readouterr().err
    assert "4 of 4" in data.summary["padded images"]
