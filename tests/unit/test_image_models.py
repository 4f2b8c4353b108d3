"""Image architectures: one parametrised base test over every family (SMP-style), parameter counts,
torchvision-named weights, freezing, padding, tiled prediction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from biodl.errors import ConfigError
from biodl.models import build_model, count_parameters
from biodl.models.vision.base import SegmentationModel
from biodl.models.vision.vgg_autoencoder import PAPER_PARAMETERS

#: (name, in_shape, params) of small instances of every architecture.
CLASSIFIERS: list[tuple[str, tuple[int, int, int], dict[str, Any]]] = [
    ("cnn", (1, 28, 28), {}),
    ("cnn", (3, 32, 32), {"channels": [8, 16], "global_pool": True}),
    ("vgg", (3, 32, 32), {"encoder": "vgg11", "classifier_width": 32, "pool_size": 1}),
    ("vgg", (1, 32, 32), {"encoder": "vgg13", "batch_norm": True, "classifier_width": 16, "pool_size": 1}),
    ("resnet", (3, 32, 32), {"encoder": "resnet18"}),
    ("resnet", (1, 28, 28), {"encoder": "resnet18", "stem": "small"}),
]
SEGMENTERS: list[tuple[str, tuple[int, int, int], dict[str, Any]]] = [
    ("unet", (1, 64, 64), {"depth": 2, "base_channels": 8}),
    ("unet", (3, 64, 64), {"depth": 3, "base_channels": 4, "upsample": "bilinear"}),
    ("unet", (3, 64, 64), {"encoder": "resnet18", "decoder_channels": [16, 16, 8, 8, 8]}),
    ("unet", (1, 64, 64), {"encoder": "vgg11", "decoder_channels": [16, 16, 8, 8, 8]}),
    ("vgg_autoencoder", (3, 64, 64), {"encoder": "vgg10", "decoder_channels": [16, 8, 8, 8]}),
    ("vgg_autoencoder", (3, 64, 64), {"encoder": "vgg12", "input_scale": 0.5, "decoder_channels": [16, 8, 8, 8]}),
]


class TestArchitectures:
    """Every registered image model: uniform constructor, output shapes, gradients."""

    @pytest.mark.parametrize(("name", "shape", "params"), CLASSIFIERS, ids=lambda v: str(v))
    def test_classifier_forward(self, name: str, shape: tuple[int, int, int], params: dict[str, Any]) -> None:
        model = build_model(name, shape, 3, params)
        out = model(torch.randn(2, *shape))
        assert out.shape == (2, 3)
        out.sum().backward()
        assert model.in_channels == shape[0] and model.num_classes == 3
        model.eval()
        with torch.no_grad():
            assert model.embed(torch.randn(5, *shape)).shape[0] == 5
        assert isinstance(model.first_conv(), nn.Conv2d)

    @pytest.mark.parametrize(("name", "shape", "params"), SEGMENTERS, ids=lambda v: str(v))
    def test_segmenter_forward_any_size(self, name: str, shape: tuple[int, int, int], params: dict[str, Any]) -> None:
        model = build_model(name, shape, 1, params)
        assert isinstance(model, SegmentationModel)
        x = torch.randn(2, shape[0], 45, 70)  # not a multiple of the encoder stride
        out = model(x)
        assert out.shape == (2, 1, 45, 70)
        out.mean().backward()
        multi = build_model(name, shape, 4, params)
        assert multi(torch.randn(2, shape[0], 64, 64)).shape == (2, 4, 64, 64)

    @pytest.mark.parametrize(("name", "shape", "params"), CLASSIFIERS[:2] + SEGMENTERS[:1], ids=lambda v: str(v))
    def test_wrong_channels_is_a_clear_error(self, name: str, shape: tuple[int, int, int], params: dict[str, Any]) -> None:
        model = build_model(name, shape, 1, params)
        with pytest.raises(ConfigError, match=f"takes \\(N, {shape[0]}, H, W\\)"):
            model(torch.randn(1, shape[0] + 1, *shape[1:]))


@pytest.mark.parametrize("encoder", ["vgg16", "vgg12", "vgg10"])
def test_road_paper_parameter_counts_within_15_percent(encoder: str) -> None:
    model = build_model("vgg_autoencoder", (3, 256, 256), 1, {"encoder": encoder, "batch_norm": False})
    n = count_parameters(model)
    assert abs(n / PAPER_PARAMETERS[encoder] - 1) < 0.15, (encoder, n)
    with_bn = count_parameters(build_model("vgg_autoencoder", (3, 256, 256), 1, {"encoder": encoder}))
    assert abs(with_bn / PAPER_PARAMETERS[encoder] - 1) < 0.15


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("vgg", {"encoder": "vgg11"}, 132_863_336),
        ("vgg", {"encoder": "vgg16"}, 138_357_544),
        ("vgg", {"encoder": "vgg16", "batch_norm": True}, 138_365_992),
        ("resnet", {"encoder": "resnet18"}, 11_689_512),
        ("resnet", {"encoder": "resnet34"}, 21_797_672),
    ],
)
def test_torchvision_parameter_counts(name: str, params: dict[str, Any], expected: int) -> None:
    with torch.device("meta"):  # no memory, no initialisation cost
        model = build_model(name, (3, 224, 224), 1000, params)
    assert count_parameters(model) == expected


def _torchvision_like_resnet18_state() -> dict[str, torch.Tensor]:
    """A state dict with torchvision's resnet18 names/shapes (as ``torchvision.models.resnet18().state_dict()``)."""
    gen = torch.Generator().manual_seed(0)
    ref = build_model("resnet", (3, 64, 64), 1000, {"encoder": "resnet18"})
    return {k: torch.randn(v.shape, generator=gen) if v.is_floating_point() else v.clone() for k, v in ref.state_dict().items()}


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_loads_torchvision_named_weights(tmp_path: Path, suffix: str) -> None:
    state = _torchvision_like_resnet18_state()
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    # grey input and 2 classes: conv1 is averaged over RGB, the 1000-class fc is skipped
    model = build_model("resnet", (1, 64, 64), 2, {"encoder": "resnet18", "pretrained_weights": str(path)})
    rep = model.pretrained_report
    assert rep["loaded"] > 100 and any(s.startswith("fc.weight") for s in rep["skipped"])
    assert torch.allclose(model.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    assert torch.allclose(model.conv1.weight, state["conv1.weight"].sum(dim=1, keepdim=True))
    # the same file initialises a U-Net's ResNet encoder (names under "encoder.")
    unet = build_model("unet", (3, 64, 64), 1, {"encoder": "resnet18", "pretrained_weights": str(path), "freeze": "encoder"})
    assert torch.allclose(unet.encoder.layer2[0].conv1.weight, state["layer2.0.conv1.weight"])
    assert not any(p.requires_grad for p in unet.encoder.parameters())
    assert all(p.requires_grad for p in unet.decoder.parameters())


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"weights": {"a": torch.zeros(1)}, "fn": print}, path)
    with pytest.raises(ConfigError, match="weights_only=True"):
        build_model("cnn", (1, 28, 28), 1, {"pretrained_weights": str(path)})
    with pytest.raises(ConfigError, match="not found"):
        build_model("cnn", (1, 28, 28), 1, {"pretrained_weights": str(tmp_path / "missing.safetensors")})


def test_train_top_n_stages() -> None:
    model = build_model("vgg", (3, 32, 32), 2, {"encoder": "vgg11", "classifier_width": 8, "pool_size": 1, "trainable_stages": 2})
    stages = model.encoder_stages()
    assert len(stages) == 5
    assert not any(p.requires_grad for s in stages[:3] for p in s.parameters())
    assert all(p.requires_grad for s in stages[3:] for p in s.parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
    bn = build_model("resnet", (3, 32, 32), 2, {"freeze": "encoder"})
    bn.train()
    assert not bn.bn1.training and not bn.layer4.training  # frozen batch norm keeps its statistics
    assert count_parameters(bn) == 512 * 2 + 2


def test_small_images_are_rejected_by_deep_classifiers() -> None:
    with pytest.raises(ConfigError, match="at least 32"):
        build_model("vgg", (1, 28, 28), 2, {})
    with pytest.raises(ConfigError, match="pixels per side"):
        build_model("cnn", (1, 4, 4), 2, {})


def test_tiled_prediction_equals_whole_image_prediction() -> None:
    torch.manual_seed(0)
    model = build_model("unet", (1, 64, 64), 1, {"depth": 2, "base_channels": 4}).eval()
    x = torch.randn(2, 1, 96, 80)
    with torch.no_grad():
        whole = model.forward_logits(x)
        model.set_inference_window(128)  # the image fits in one window
        assert torch.equal(model(x), whole)
        model.set_inference_window(32, 0.5)  # 32-pixel windows: stitched, close to whole-image
        tiled = model(x)
    assert tiled.shape == whole.shape
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    assert torch.corrcoef(torch.stack([tiled[inner].flatten(), whole[inner].flatten()]))[0, 1] > 0.9


def test_tiling_is_exact_for_pointwise_networks() -> None:
    from biodl.data.image.tiling import sliding_window

    conv = nn.Conv2d(3, 2, 1)
    x = torch.randn(1, 3, 200, 130)
    with torch.no_grad():
        assert torch.allclose(sliding_window(conv, x, window=64, overlap=0.25), conv(x), atol=1e-5)


@pytest.mark.parametrize("name", ["unet", "vgg_autoencoder"])
def test_test_time_augmentation_is_equivariant(name: str) -> None:
    """tta=dihedral averages the 8 flips/rotations: rotating the input rotates the output exactly;
    tta=flip averages 4 views; tta=none is the plain network."""
    torch.manual_seed(0)
    params: dict[str, Any] = {"depth": 2, "base_channels": 4} if name == "unet" else {"input_scale": 1.0}
    model = build_model(name, (3, 32, 32), 1, params).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = model.forward_logits(x)
        model.params.tta = "none"  # type: ignore[attr-defined]
        assert torch.equal(model(x), plain)
        model.params.tta = "dihedral"  # type: ignore[attr-defined]
        tta = model(x)
        assert not torch.allclose(tta, plain, atol=1e-4)
        rotated = model(torch.rot90(x, 1, dims=(-2, -1)))
        torch.testing.assert_close(rotated, torch.rot90(tta, 1, dims=(-2, -1)), atol=1e-5, rtol=1e-4)
        flipped = model(torch.flip(x, dims=(-1,)))
        torch.testing.assert_close(flipped, torch.flip(tta, dims=(-1,)), atol=1e-5, rtol=1e-4)
        model.params.tta = "flip"  # type: ignore[attr-defined]
        views = [plain, *(torch.flip(model.forward_logits(torch.flip(x, d)), d) for d in [(-1,), (-2,), (-2, -1)])]
        torch.testing.assert_close(model(x), torch.stack(views).mean(0), atol=1e-5, rtol=1e-4)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # the fixed-size trace is the point
@pytest.mark.parametrize(("size", "scale"), [((400, 400), 0.25), ((123, 77), 0.3), ((64, 96), 0.5)])
def test_traced_downscale_is_exportable_and_equal(size: tuple[int, int], scale: float) -> None:
    """Traced for export, the antialiased input rescale becomes two matrix products: the same numbers."""
    from biodl.models.vision.base import downscale

    class Down(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return downscale(x, scale)

    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    eager = Down()(x)
    traced = torch.jit.trace(Down(), (x,), check_trace=False)
    assert "upsample_bilinear2d_aa" not in str(traced.graph)
    torch.testing.assert_close(traced(x), eager, rtol=0, atol=1e-5)
    assert eager.shape[-2:] == (int(size[0] * scale), int(size[1] * scale))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize(("size", "out"), [((13, 13), (7, 7)), ((40, 25), (3, 7)), ((14, 14), (7, 7))])
def test_traced_adaptive_pool_is_exportable_and_equal(size: tuple[int, int], out: tuple[int, int]) -> None:
    """Output sizes that do not divide the input (ONNX cannot pool them) trace as matrix products."""
    from biodl.models.vision.base import AdaptiveAvgPool2d

    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    pool = AdaptiveAvgPool2d(out)
    eager = pool(x)
    torch.testing.assert_close(eager, nn.AdaptiveAvgPool2d(out)(x))
    traced = torch.jit.trace(pool, (x,), check_trace=False)
    assert ("adaptive_avg_pool2d" in str(traced.graph)) == (size[0] % out[0] == 0 and size[1] % out[1] == 0)
    torch.testing.assert_close(traced(x), eager, rtol=0, atol=1e-6)
