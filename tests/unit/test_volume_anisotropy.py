"""Anisotropic 3-D U-Net levels (nnU-Net's spacing rule) and dihedral test-time augmentation of volume classifiers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from biodl.models import build_model
from biodl.models.vision.unet3d import planar_level_count
from biodl.models.vision.volume_base import tta_views

ISBI = [50.0, 4.0, 4.0]  # ISBI 2012 serial-section TEM: 50 nm sections, 4 nm pixels


@pytest.mark.parametrize(
    ("depth", "spacing", "expected"),
    [
        (3, ISBI, 3),
        (2, ISBI, 3),
        (1, ISBI, 2),
        (3, [1.0, 1.0, 1.0], 0),
        (3, [2.0, 1.0, 1.0], 0),
        (3, [5.0, 1.0, 1.0], 2),
        (3, None, 0),
    ],
)
def test_planar_levels_follow_the_spacing(depth: int, spacing: list[float] | None, expected: int) -> None:
    # in-plane voxel size doubles per in-plane pooling; a level is planar while it is below half the slice distance
    assert planar_level_count(depth, spacing) == expected


def _kernels(model: nn.Module, kind: type) -> list[tuple[int, ...]]:
    return [tuple(m.kernel_size) if isinstance(m.kernel_size, tuple) else (m.kernel_size,) * 3
            for m in model.modules() if isinstance(m, kind)]  # fmt: skip


def test_unet3d_with_isbi_spacing_is_planar_above_a_3d_bottleneck() -> None:
    model = build_model("unet3d", (1, 4, 32, 32), 1, {"depth": 3, "base_channels": 4, "spacing": ISBI})
    assert model.planar == [True, True, True, False]
    enc = [_kernels(stage, nn.Conv3d) for stage in model.encoder]
    assert enc[:3] == [[(1, 3, 3), (1, 3, 3)]] * 3 and enc[3] == [(3, 3, 3), (3, 3, 3)]
    assert _kernels(model, nn.MaxPool3d) == [(1, 2, 2)] * 3  # the slices are never pooled
    x = torch.randn(2, 1, 3, 20, 28)  # 3 slices: no padding along depth needed
    assert model(x).shape == (2, 1, 3, 20, 28)


def test_isotropic_unet3d_is_unchanged() -> None:
    model = build_model("unet3d", (1, 8, 16, 16), 2, {"depth": 2, "base_channels": 4, "spacing": [1.0, 1.0, 1.0]})
    assert model.planar == [False, False, False]
    assert set(_kernels(model, nn.Conv3d)) == {(3, 3, 3), (1, 1, 1)}
    assert _kernels(model, nn.MaxPool3d) == [(2, 2, 2)] * 2


def test_all_planar_levels_keep_slices_independent() -> None:
    # with every level in-plane the network is a 2-D U-Net applied slice by slice: changing one slice
    # changes no other slice's output (a 3-D bottleneck would)
    torch.manual_seed(0)
    planar = build_model("unet3d", (1, 4, 16, 16), 1, {"depth": 2, "base_channels": 4, "planar_levels": 3}).eval()
    mixed = build_model("unet3d", (1, 4, 16, 16), 1, {"depth": 2, "base_channels": 4, "planar_levels": 2}).eval()
    x = torch.randn(1, 1, 4, 16, 16)
    y = x.clone()
    y[:, :, 0] += 3.0
    with torch.no_grad():
        assert torch.allclose(planar(x)[:, :, 1:], planar(y)[:, :, 1:], atol=1e-6)
        assert not torch.allclose(mixed(x)[:, :, 1:], mixed(y)[:, :, 1:], atol=1e-4)


def test_dihedral_views_are_the_16_distinct_symmetries() -> None:
    x = torch.randn(1, 1, 3, 5, 5)
    views = tta_views(x.shape, dihedral=True)
    assert len(views) == 16 and torch.equal(views[0](x), x)
    assert len({tuple(v(x).flatten().tolist()) for v in views}) == 16
    flips = {tuple(v(x).flatten().tolist()) for v in tta_views(x.shape)}
    assert len(flips) == 8 and flips <= {tuple(v(x).flatten().tolist()) for v in views}
    assert len(tta_views((1, 1, 3, 5, 6), dihedral=True)) == 8  # non-square planes: the flips


def test_dihedral_tta_makes_the_classifier_invariant_to_in_plane_rotations() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1, 8, 12, 12)
    dihedral = build_model("cnn3d", (1, 8, 12, 12), 2, {"channels": [4, 8], "tta": "dihedral"}).eval()
    flip = build_model("cnn3d", (1, 8, 12, 12), 2, {"channels": [4, 8], "tta": "flip"}).eval()
    flip.load_state_dict(dihedral.state_dict())
    rot = torch.rot90(x, 1, dims=(-2, -1))
    with torch.no_grad():
        assert torch.allclose(dihedral(rot), dihedral(x), atol=1e-5)
        assert torch.allclose(dihedral(x.flip(-3)), dihedral(x), atol=1e-5)
        assert not torch.allclose(flip(rot), flip(x), atol=1e-5)  # the 8 flips do not contain a 90° rotation


def test_dihedral_tta_exports_to_onnx_with_parity() -> None:
    import io

    import numpy as np
    import onnxruntime as ort

    torch.manual_seed(0)
    model = build_model("cnn3d", (1, 8, 12, 12), 2, {"channels": [4, 8], "tta": "dihedral"}).eval()
    x = torch.randn(3, 1, 8, 12, 12)
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, input_names=["x"], dynamic_axes={"x": {0: "n"}}, dynamo=False)
    with torch.no_grad():
        expected = model(x).numpy()
    got = ort.InferenceSession(buf.getvalue()).run(None, {"x": x.numpy()})[0]
    assert np.allclose(got, expected, atol=1e-5)


def test_cnn3d_training_defaults_apply_unless_set() -> None:
    from biodl.config import ExperimentConfig

    cfg = ExperimentConfig.from_dict({"data": {"type": "volume", "task": "classification"}})
    assert cfg.model.name == "cnn3d" and (cfg.train.batch_size, cfg.train.max_epochs) == (32, 50)
    assert cfg.train.early_stopping and cfg.train.patience == 10  # early stopping decides within the cap
    mine = ExperimentConfig.from_dict({"data": {"type": "volume", "task": "classification"}, "train": {"max_epochs": 7}})
    assert mine.train.max_epochs == 7
