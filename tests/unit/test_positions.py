"""Per-position labelling: SOV'99 by hand, masking, label/mask parsing, bucketed batches, the model families."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from biodl.data.positions import LengthBuckets, encode_position_targets, sequence_lengths, trim_batch
from biodl.data.split_columns import hold_out_test, validation_parts
from biodl.errors import DataError
from biodl.metrics import compute_metrics
from biodl.metrics.positions import positions_metrics, segments, sov
from biodl.models import build_model
from biodl.training.losses import masked_loss

C, E, H = 0, 1, 2


def _labels(text: str) -> np.ndarray:
    return np.array([{"C": C, "E": E, "H": H, "-": -1}[t] for t in text])


# ---------------------------------------------------------------- SOV'99, checked by hand
def test_sov_perfect_prediction_is_100() -> None:
    y = _labels("CCHHHHCCEEEECC")
    assert sov(y[None], y[None]) == pytest.approx(100.0)


def test_sov_half_helix() -> None:
    # observed H x10, predicted H x5 then C x5. One H pair: minov 5, maxov 10,
    # delta = min(5, 5, 10 // 2, 5 // 2) = 2 -> (5 + 2) / 10 * 10 = 7; no observed C segment -> N = 10
    assert sov(_labels("HHHHHHHHHH")[None], _labels("HHHHHCCCCC")[None]) == pytest.approx(70.0)
    assert sov(_labels("HHHHHHHHHH")[None], _labels("HHHHHCCCCC")[None], state=H) == pytest.approx(70.0)


def test_sov_unmatched_segment_counts_in_the_normaliser() -> None:
    # observed HHHH EEEE, predicted H x8. H: minov 4, maxov 8, delta = min(4, 4, 2, 4) = 2 -> 6/8*4 = 3;
    # the E segment has no predicted E: N += 4 -> SOV = 3 / 8 = 37.5 %
    assert sov(_labels("HHHHEEEE")[None], _labels("HHHHHHHH")[None]) == pytest.approx(37.5)


def test_sov_two_predicted_segments_in_one_observed() -> None:
    # observed H x8; predicted HHH C HHHH. Pair 1: minov 3, maxov 8, delta = min(5, 3, 4, 1) = 1 -> 4/8*8 = 4
    # pair 2: minov 4, maxov 8, delta = min(4, 4, 4, 2) = 2 -> 6/8*8 = 6; N = 8 + 8 -> 10 / 16 = 62.5 %
    assert sov(_labels("HHHHHHHH")[None], _labels("HHHCHHHH")[None]) == pytest.approx(62.5)


def test_sov_masked_positions_cut_segments_and_are_ignored() -> None:
    # the masked middle splits HHHH-HHHH into two observed segments, each predicted exactly;
    # whatever is predicted at the masked position does not matter
    y = _labels("HHHH-HHHH")
    for pred in ("HHHHHHHHH", "HHHHEHHHH", "HHHHCHHHH"):
        assert sov(y[None], _labels(pred)[None]) == pytest.approx(100.0)
    assert segments(y) == [(H, 0, 4), (H, 5, 9)]


# ---------------------------------------------------------------- masking in loss and metrics
def _random_case(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(4, 3, 12, generator=g)
    y = torch.randint(0, 3, (4, 12), generator=g)
    y[0, 9:] = -1  # padding after a shorter sequence
    y[1, 3] = -1  # an unresolved residue
    y[2, :2] = -1
    return scores, y


def test_masked_positions_never_change_the_loss() -> None:
    scores, y = _random_case()
    base = masked_loss("positions", scores, y)
    changed = scores.clone()
    changed[:, :, :][(y < 0).unsqueeze(1).expand_as(scores)] = 1e3 * torch.randn(int((y < 0).sum()) * 3)
    assert torch.isfinite(base)
    assert masked_loss("positions", changed, y) == pytest.approx(float(base), rel=1e-6)
    # a counted position does change it
    counted = scores.clone()
    counted[3, 0, 5] += 5.0
    assert masked_loss("positions", counted, y) != pytest.approx(float(base), rel=1e-6)
    # the loss equals the mean cross-entropy over counted positions
    keep = y >= 0
    manual = torch.nn.functional.cross_entropy(scores.transpose(1, 2)[keep], y[keep])
    assert float(base) == pytest.approx(float(manual), rel=1e-6)


def test_masked_positions_never_change_a_metric() -> None:
    scores, y = _random_case(1)
    probs = torch.softmax(scores, 1).numpy()
    other = probs.copy()
    mask = (y < 0).numpy()
    rng = np.random.default_rng(0)
    for i, j in zip(*np.nonzero(mask), strict=True):
        other[i, :, j] = rng.dirichlet([1, 1, 1])
    a = positions_metrics(y.numpy(), probs, class_names=["C", "E", "H"])
    b = positions_metrics(y.numpy(), other, class_names=["C", "E", "H"])
    for key in ("accuracy", "mcc", "f1", "sov"):
        assert a[key] == pytest.approx(b[key])
    assert a["per_class"] == b["per_class"]
    assert a["n"] == int((~mask).sum())
    hard = probs.argmax(1)
    assert a["accuracy"] == pytest.approx(((hard == y.numpy()) & ~mask).sum() / (~mask).sum())
    assert compute_metrics("positions", y.numpy(), probs)["accuracy"] == pytest.approx(a["accuracy"])


# ---------------------------------------------------------------- reading labels and masks
def _frame() -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    frame = pd.DataFrame({"sst3": ["CCHHH", "EEC", "HHHC"], "resolved": ["01111", "111", "1101"]})
    return frame, np.array([5, 3, 4]), [f"t.tsv row {i + 1}" for i in range(3)]


def test_encode_targets_pads_and_masks() -> None:
    frame, lengths, where = _frame()
    t, facts = encode_position_targets(frame, "sst3", lengths, where=where, mask_column="resolved")
    assert t.kind == "positions" and t.classes == ["C", "E", "H"] and t.num_outputs == 3
    assert t.y.tolist() == [[-1, C, H, H, H], [E, E, C, -1, -1], [H, H, -1, C, -1]]
    assert facts["positions left out by the mask (resolved = 0)"] == 2
    # a file without the mask column: every position counts
    t2, facts2 = encode_position_targets(frame.drop(columns="resolved"), "sst3", lengths, where=where, mask_column="resolved")
    assert int((t2.y >= 0).sum()) == 12 and "absent" in str(facts2)


@pytest.mark.parametrize(
    ("column", "value", "row", "message"),
    [
        ("sst3", "CCHH", 0, r"t.tsv row 1: field 'sst3': 4 labels for a sequence of 5 positions"),
        ("sst3", "EEX", 1, r"t.tsv row 2: field 'sst3': label 'X' at position 3 is not one of the classes"),
        ("resolved", "11", 2, r"t.tsv row 3: field 'resolved': mask of 2 positions for a sequence of 4 positions"),
        ("resolved", "1121", 2, r"t.tsv row 3: field 'resolved': mask value '2'"),
    ],
)
def test_bad_labels_and_masks_name_file_row_and_field(column: str, value: str, row: int, message: str) -> None:
    frame, lengths, where = _frame()
    frame.loc[row, column] = value
    with pytest.raises(DataError, match=message):
        encode_position_targets(frame, "sst3", lengths, where=where, mask_column="resolved", classes=["C", "E", "H"])


def test_validation_column() -> None:
    frame = pd.DataFrame({"validation": ["True", "False", "1", "no", "yes"]})
    parts = validation_parts(frame, "validation", source="f.tsv")
    assert parts.tolist() == ["val", "train", "val", "train", "val"]
    with pytest.raises(DataError, match=r"f.tsv: row 2: field 'validation': 'maybe' is not true/false"):
        validation_parts(pd.DataFrame({"validation": ["1", "maybe"]}), "validation", source="f.tsv")
    # one-sided files are read (evaluating validation or test chains); training refuses them (tests/cli)
    assert validation_parts(pd.DataFrame({"validation": ["1", "yes"]}), "validation", source="f.tsv").tolist() == ["val"] * 2
    held = hold_out_test(np.array(["train"] * 8 + ["val"] * 2, dtype=object), (0.6, 0.1, 0.3), seed=0)
    assert (held == "test").sum() == 3 and (held == "val").sum() == 2


# ---------------------------------------------------------------- batches of similar lengths
def test_length_buckets_serve_every_row_once_cut_to_the_longest() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 40, size=50)
    X = np.zeros((50, 4, 40), np.uint8)
    y = np.full((50, 40), -1, np.int64)
    for i, n in enumerate(lengths):
        X[i, rng.integers(0, 4, n), np.arange(n)] = 1
        y[i, :n] = rng.integers(0, 3, n)
    assert sequence_lengths(X).tolist() == lengths.tolist()
    ds = LengthBuckets(X, y, bucket=2)
    seen = []
    for batch in ds.batch_sampler(8, seed=1):
        xb, yb = ds.__getitems__(batch)
        assert xb.shape[-1] == lengths[batch].max() == yb.shape[-1]
        seen.extend(batch)
    assert sorted(seen) == list(range(50))
    xt, yt = trim_batch(torch.from_numpy(X[:3]), torch.from_numpy(y[:3]))
    assert xt.shape[-1] == lengths[:3].max() and yt is not None and yt.shape[-1] == xt.shape[-1]


# ---------------------------------------------------------------- the model families
FAMILIES = ["dilated-cnn", "cnn-birnn", "transformer", "lstm", "gru"]


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("per_position", [True, False])
def test_families_shapes_and_padding_invariance(name: str, per_position: bool) -> None:
    torch.manual_seed(0)
    model = build_model(name, (20, 30), 3, {"per_position": per_position}).eval()
    x = torch.zeros(3, 20, 30)
    gen = torch.Generator().manual_seed(0)
    for i, n in enumerate((30, 17, 9)):
        x[i, torch.randint(0, 20, (n,), generator=gen), torch.arange(n)] = 1
    with torch.no_grad():
        out = model(x)
        alone = model(x[2:3, :, :9])  # the same sequence without padding
    if per_position:
        assert out.shape == (3, 3, 30)
        torch.testing.assert_close(out[2:3, :, :9], alone, atol=1e-4, rtol=1e-4)
    else:
        assert out.shape == (3, 3)
        torch.testing.assert_close(out[2:3], alone, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- defaults of the contract command
def test_contract_command_resolves_the_chosen_per_position_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from biodl.cli.main import main

    argv = ["train", "--data-type", "sequence", "--alphabet", "protein", "--data-path", "train.tsv",
            "--sequence-column", "seq", "--target-columns", "sst3", "--per-position", "--mask-column", "resolved",
            "--val-column", "validation", "--task", "classification", "--output-dir", "RUN", "--print-config"]  # fmt: skip
    assert main(argv) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    model, train = cfg["model"], cfg["train"]
    assert model["name"] == "dilated-cnn" and model["per_position"] is True
    assert (model["channels"], model["blocks"], model["width"]) == (128, 8, 5)
    # chosen on the NetSurfP-2.0 validation chains (docs/protein.md): 8 sequences per step at Adam lr 2e-3,
    # cosine decay over at most 10 epochs, label smoothing 0.1, a 90-minute cap on training, two members averaged
    assert (train["batch_size"], train["lr"], train["optimizer"], train["ensemble_size"]) == (8, 2e-3, "adam", 3)
    assert (train["max_epochs"], train["lr_schedule"], train["lr_min_factor"]) == (10, "cosine", 0.01)
    assert (train["label_smoothing"], train["max_time"], train["patience"]) == (0.1, 5400.0, 3)
    assert cfg["evaluate"]["baselines"] == ["window_logistic"]
    # a user's own setting wins over the recommendation
    mine = ["--batch-size", "16", "--lr", "0.01", "--label-smoothing", "0", "--lr-schedule", "plateau", "--ensemble-size", "1"]
    mine += ["--set", "model.channels=64"]
    assert main([*argv, *mine]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    train = cfg["train"]
    assert (train["batch_size"], train["lr"], train["label_smoothing"], train["lr_schedule"]) == (16, 0.01, 0.0, "plateau")
    assert train["ensemble_size"] == 1
    assert cfg["model"]["channels"] == 64
    # other tasks keep the general defaults
    assert main(["train", "--data-type", "sequence", "--data-path", "x.tsv", "--target-columns", "y", "--print-config"]) == 0
    train = yaml.safe_load(capsys.readouterr().out)["train"]
    assert (train["label_smoothing"], train["max_time"], train["lr_schedule"]) == (0.0, None, "plateau")
    assert train["ensemble_size"] == 1


# ---------------------------------------------------------------- label smoothing and the cosine schedule
def test_label_smoothing_mixes_targets_with_uniform_and_ignores_masked_positions() -> None:
    scores, y = _random_case(2)
    keep = y >= 0
    logp = torch.log_softmax(scores.transpose(1, 2)[keep], dim=-1)  # (counted, C)
    target = torch.nn.functional.one_hot(y[keep], 3).float() * 0.9 + 0.1 / 3
    manual = -(target * logp).sum(-1).mean()
    smooth = masked_loss("positions", scores, y, label_smoothing=0.1)
    assert float(smooth) == pytest.approx(float(manual), rel=1e-5)
    assert float(smooth) != pytest.approx(float(masked_loss("positions", scores, y)), rel=1e-3)
    changed = scores.clone()
    changed[(y < 0).unsqueeze(1).expand_as(scores)] = 50.0
    assert float(masked_loss("positions", changed, y, label_smoothing=0.1)) == pytest.approx(float(smooth), rel=1e-6)


def test_cosine_schedule_decays_from_lr_to_the_floor_at_the_last_epoch() -> None:
    from biodl.config import TrainConfig
    from biodl.training.optim import make_scheduler

    cfg = TrainConfig(lr=2e-3, lr_schedule="cosine", max_epochs=5, lr_min_factor=0.05)
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-3)
    sched = make_scheduler(opt, cfg)
    lrs = []
    for _ in range(5):  # the lr each epoch trains at
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(2e-3) and lrs[-1] == pytest.approx(1e-4)
    assert all(a > b for a, b in itertools.pairwise(lrs))
    assert lrs[2] == pytest.approx((2e-3 + 1e-4) / 2)  # half-way: the mean of start and floor
