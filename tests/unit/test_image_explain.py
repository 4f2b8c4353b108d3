"""Image explanations return maps of the input's size that highlight a planted object."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from biodl.explain.image import GradCAM, IntegratedGradients, Occlusion, Saliency, SegmentationTarget, make_explainer
from biodl.explain.lime import LimeImage, default_samples, superpixels
from biodl.models import build_model
from biodl.models.base import ModelParams
from biodl.models.vision.base import SegmentationModel, VisionModel, VisionParams

SIZE = 32
BOX = (slice(20, 28), slice(4, 12))


def planted_image() -> torch.Tensor:
    """Noise with one bright 8×8 object at rows 20–27, columns 4–11."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, SIZE, SIZE, generator=gen) * 0.1
    x[0, 0, BOX[0], BOX[1]] = 3.0
    return x


class BrightSpot(VisionModel):
    """Score = strongest local response of a smoothing filter: driven by the bright object only."""

    Params: ClassVar[type[ModelParams]] = VisionParams

    def __init__(self) -> None:
        super().__init__((1, SIZE, SIZE), 2, VisionParams())
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.fill_(1 / 9)
            self.conv.bias.zero_()
        self.pool = nn.AdaptiveMaxPool2d(1)

    def encoder_stages(self) -> list[nn.Module]:
        return [self.conv]

    def gradcam_layer(self) -> nn.Module:
        return self.conv

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        s = self.pool(torch.relu(self.conv(x))).flatten(1)[:, :2]
        return torch.stack([-s[:, 0], s[:, 1]], dim=1)


class Threshold(SegmentationModel):
    """Per-pixel logit 4·(x − 1): the bright object is the predicted region."""

    Params: ClassVar[type[ModelParams]] = VisionParams

    def __init__(self) -> None:
        super().__init__((1, SIZE, SIZE), 1, VisionParams())
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.fill_(4 / 9)
            self.conv.bias.fill_(-4.0)

    def encoder_stages(self) -> list[nn.Module]:
        return [self.conv]

    def gradcam_layer(self) -> nn.Module:
        return self.conv

    def forward_net(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def inside_vs_outside(m: torch.Tensor) -> tuple[float, float]:
    a = m[0, 0].abs()
    inside = a[BOX[0], BOX[1]].mean().item()
    mask = torch.ones_like(a, dtype=torch.bool)
    mask[BOX[0], BOX[1]] = False
    return inside, a[mask].mean().item()


@pytest.mark.parametrize("method", ["saliency", "ig", "occlusion", "gradcam", "lime"])
@pytest.mark.parametrize("segmentation", [False, True])
def test_maps_highlight_the_planted_object(method: str, segmentation: bool) -> None:
    model: nn.Module = Threshold() if segmentation else BrightSpot()
    kwargs = {"n_segments": 30} if method == "lime" else {}
    explainer = make_explainer(method, model, **kwargs)
    x = planted_image()
    maps = explainer.attribute(torch.cat([x, x.flip(-1)]), target=None if segmentation else 1)
    assert maps.shape == (2, 1, SIZE, SIZE)
    inside, outside = inside_vs_outside(maps[:1])
    assert inside > 3 * outside, (method, inside, outside)


def test_real_architectures_give_input_sized_maps() -> None:
    torch.manual_seed(0)
    cnn = build_model("cnn", (1, SIZE, SIZE), 3, {"channels": [4, 8]})
    unet = build_model("unet", (1, SIZE, SIZE), 1, {"depth": 2, "base_channels": 4})
    x = torch.randn(2, 1, SIZE, SIZE)
    for model in (cnn, unet):
        for explainer in (GradCAM(model), Occlusion(model), Saliency(model), IntegratedGradients(model)):
            out = explainer.attribute(x, n_steps=4) if isinstance(explainer, IntegratedGradients) else explainer.attribute(x)
            assert out.shape == (2, 1, SIZE, SIZE)
    assert Saliency(cnn).attribute(x, target=torch.tensor([0, 2]), reduce_channels=False).shape == (2, 1, SIZE, SIZE)
    lime = LimeImage(cnn, n_segments=16, n_samples=40)
    assert lime.attribute(x[:1]).shape == (1, 1, SIZE, SIZE)


def test_segmentation_target_sums_over_the_predicted_region() -> None:
    model = Threshold().eval()
    wrapper = SegmentationTarget(model)
    x = planted_image()
    region = wrapper.set_region(x)
    assert region[BOX[0], BOX[1]].all() and region.sum() < 100
    score = wrapper(x)
    assert score.shape == (1, 1) and score.item() > 0.9 * region.sum().item()


def test_lime_samples_follow_the_superpixels() -> None:
    seg = superpixels(planted_image()[0], "slic", 20)
    assert seg.shape == (SIZE, SIZE) and seg.min() == 0
    assert default_samples(10) == 100 and default_samples(100) == 800 and default_samples(1000) == 2000
    assert superpixels(planted_image()[0], "quickshift").shape == (SIZE, SIZE)


def test_visual_figures(tmp_path: Path) -> None:
    from biodl.explain import visual

    cnn = build_model("cnn", (3, SIZE, SIZE), 2, {"channels": [4, 8]})
    assert visual.plot_first_layer_filters(cnn, tmp_path / "f.png").stat().st_size > 0
    X = np.random.default_rng(0).normal(size=(12, 3, SIZE, SIZE)).astype(np.float32)
    coords, method = visual.embed_2d(visual.penultimate_features(cnn, X))
    assert coords.shape == (12, 2) and method in ("PCA", "UMAP")
    assert visual.plot_embedding(coords, ["a", "b"] * 6, tmp_path / "e.png", method=method).exists()
    probs = np.random.default_rng(1).random((2, 1, SIZE, SIZE))
    truth = (probs[:, 0] > 0.5).astype(int)
    assert visual.plot_segmentation_overlays(X[:2], truth, probs, tmp_path / "o.png").exists()


@pytest.mark.parametrize("kind", ["binary", "segmentation"])
def test_gradcam_of_an_ensemble_uses_every_members_maps(kind: str) -> None:
    """An ensemble's Grad-CAM runs on all its members' layers: two copies of one network (whose
    averaged probability has the network's own logit) give that network's map."""
    import copy

    from biodl.models.ensemble import Ensemble

    torch.manual_seed(0)
    name = "cnn" if kind == "binary" else "unet"
    if kind == "binary":
        net = build_model(name, (1, SIZE, SIZE), 1, {"channels": [4, 8]}).eval()
    else:
        net = build_model(name, (1, SIZE, SIZE), 1, {"depth": 2, "base_channels": 4}).eval()
    x = planted_image()
    ens = Ensemble.from_members([net, copy.deepcopy(net)], name, net.params.model_dump(), kind).eval()
    single = GradCAM(net).attribute(x, target=0)
    both = GradCAM(ens).attribute(x, target=0)
    assert single.abs().sum() > 0
    torch.testing.assert_close(both, single, rtol=1e-4, atol=1e-6)
