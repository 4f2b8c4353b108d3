"""3-D shapes through every volume architecture: one base test class parametrised over architectures."""

from __future__ import annotations

import pytest
import torch

from biodl.errors import ConfigError
from biodl.models import MODELS, build_model
from biodl.models.vision.volume_base import sliding_window_3d

#: (name, params, in_shape, num_outputs, output shape without the batch axis)
CASES = [
    ("cnn3d", {}, (1, 16, 20, 24), 3, (3,)),
    ("cnn3d", {"tta": "dihedral"}, (1, 16, 20, 20), 2, (2,)),
    ("cnn3d", {"channels": [4, 8], "global_pool": False, "convs_per_block": 2}, (2, 8, 12, 12), 1, (1,)),
    ("cnn3d", {"channels": [4, 8], "members": 3}, (1, 8, 12, 12), 2, (2,)),
    ("resnet3d", {"width": 4}, (1, 12, 12, 12), 2, (2,)),
    ("resnet3d", {"width": 4, "stem": "video"}, (3, 8, 16, 16), 1, (1,)),
    ("unet3d", {"depth": 2, "base_channels": 4}, (1, 10, 18, 22), 1, (1, 10, 18, 22)),
    ("unet3d", {"depth": 2, "base_channels": 4, "pool_depth": False}, (2, 3, 16, 16), 3, (3, 3, 16, 16)),
    ("unet3d", {"depth": 2, "base_channels": 4, "spacing": [50.0, 4.0, 4.0]}, (1, 3, 12, 20), 1, (1, 3, 12, 20)),
    ("timelapse", {"channels": [4, 8]}, (1, 6, 16, 16), 2, (2,)),
    ("timelapse", {"channels": [4], "temporal": "gru", "hidden": 8, "output": "frame"}, (1, 5, 12, 12), 5, (5,)),
]


@pytest.mark.parametrize(("name", "params", "in_shape", "k", "out"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
class TestVolumeArchitecture:
    def test_forward_shapes_and_gradients(self, name: str, params: dict, in_shape: tuple, k: int, out: tuple) -> None:
        torch.manual_seed(0)
        model = build_model(name, in_shape, k, params)
        assert "volume" in MODELS[name].data_types
        x = torch.randn(2, *in_shape, requires_grad=True)
        y = model(x)
        assert tuple(y.shape) == (2, *out)
        y.sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0

    def test_eval_is_deterministic_and_batch_independent(
        self, name: str, params: dict, in_shape: tuple, k: int, out: tuple
    ) -> None:
        torch.manual_seed(0)
        model = build_model(name, in_shape, k, params).eval()
        x = torch.randn(3, *in_shape)
        with torch.no_grad():
            whole = model(x)
            one = model(x[1:2])
        assert torch.allclose(whole[1:2], one, atol=1e-5)

    def test_rejects_2d_images(self, name: str, params: dict, in_shape: tuple, k: int, out: tuple) -> None:
        model = build_model(name, in_shape, k, params)
        with pytest.raises(ConfigError, match=r"\(N, \d+, D, H, W\) volumes"):
            model(torch.zeros(1, in_shape[0], 16, 16))


def test_cnn3d_members_are_averaged_and_fitted_on_their_own_losses() -> None:
    torch.manual_seed(0)
    one = build_model("cnn3d", (1, 8, 8, 8), 2, {"channels": [4, 8]})
    assert not any("more_members" in k for k in one.state_dict())  # one network: the former parameter names
    model = build_model("cnn3d", (1, 8, 8, 8), 2, {"channels": [4, 8], "members": 3, "tta": "none"})
    x = torch.randn(5, 1, 8, 8, 8)
    model.eval()
    with torch.no_grad():
        each = model.member_scores(x)
        assert each.shape == (3, 5, 2)
        assert torch.allclose(model(x), each.mean(dim=0), atol=1e-6)
        assert not torch.allclose(each[0], each[1])  # different random starts
        assert model.embed(x).shape == (5, 3 * 64)
    # a loss on member 1 alone moves member 1 only (the training step sums the members' losses)
    model.train()
    model.member_scores(x)[1].sum().backward()
    first = [p.grad for p in model.head.parameters()]
    second = [p.grad for p in model.more_members[0]["head"].parameters()]
    assert all(g is None or g.abs().sum() == 0 for g in first)
    assert all(g is not None and g.abs().sum() > 0 for g in second)


def test_resnet3d_has_torchvision_r3d_18_names() -> None:
    model = build_model("resnet3d", (3, 8, 32, 32), 400, {"stem": "video"})
    names = set(model.state_dict())
    for key in ("stem.0.weight", "stem.1.running_mean", "layer1.0.conv1.0.weight", "layer1.0.conv2.1.bias",
                "layer2.0.downsample.0.weight", "layer4.1.conv2.0.weight", "fc.weight"):  # fmt: skip
        assert key in names
    assert tuple(model.state_dict()["stem.0.weight"].shape) == (64, 3, 3, 7, 7)
    assert sum(p.numel() for p in model.parameters()) == 33_371_472  # torchvision r3d_18 (400 classes)


def test_resnet3d_loads_r3d_18_named_weights(tmp_path) -> None:
    from safetensors.torch import save_file

    src = build_model("resnet3d", (3, 8, 32, 32), 400, {"stem": "video", "width": 64})
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "r3d.safetensors"))
    grey = build_model("resnet3d", (1, 8, 32, 32), 2, {"stem": "video", "pretrained_weights": str(tmp_path / "r3d.safetensors")})
    assert any(s.startswith("fc.weight") for s in grey.pretrained_report["skipped"])  # 400-class head skipped
    w = src.state_dict()["layer3.1.conv1.0.weight"]
    assert torch.equal(grey.state_dict()["layer3.1.conv1.0.weight"], w)
    assert torch.allclose(grey.state_dict()["stem.0.weight"][:, 0], src.state_dict()["stem.0.weight"].sum(1))


def test_unet3d_sliding_window_matches_whole_volume_inside() -> None:
    torch.manual_seed(0)
    model = build_model("unet3d", (1, 12, 40, 40), 1, {"depth": 1, "base_channels": 4}).eval()
    x = torch.randn(1, 1, 12, 40, 40)
    with torch.no_grad():
        whole = model(x)
        model.set_inference_window((12, 24, 24), 0.5)
        tiled = model(x)
    assert tiled.shape == whole.shape
    # windows see less context at their borders; the blended result stays close to whole-volume prediction
    assert torch.corrcoef(torch.stack([tiled.flatten(), whole.flatten()]))[0, 1] > 0.9


def test_sliding_window_3d_of_a_pointwise_function_is_exact() -> None:
    x = torch.randn(2, 1, 9, 30, 17)
    out = sliding_window_3d(lambda t: torch.cat([t * 2, t - 1], dim=1), x, window=(4, 8, 8), overlap=0.3)
    assert torch.allclose(out, torch.cat([x * 2, x - 1], dim=1), atol=1e-5)


def test_timelapse_clip_logits_are_the_mean_of_frame_scores() -> None:
    model = build_model("timelapse", (1, 6, 16, 16), 2, {"channels": [4]}).eval()
    x = torch.randn(3, 1, 6, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(x), model.frame_scores(x).mean(dim=1), atol=1e-6)


def test_per_frame_output_needs_one_label_per_frame() -> None:
    with pytest.raises(ConfigError, match="one label per frame"):
        build_model("timelapse", (1, 6, 16, 16), 1, {"output": "frame"})
