"""3-D Grad-CAM of networks that average test-time views (``tta``): each view's map is moved back onto
the volume, so the map follows the volume when it is flipped or turned."""

from __future__ import annotations

import pytest
import torch

from biodl.explain._common import undo_view
from biodl.explain.volume import GradCAM3D
from biodl.models import build_model
from biodl.models.vision.volume_base import tta_views


@pytest.mark.parametrize("tta", ["flip", "dihedral"])
def test_gradcam_of_a_view_averaging_network_moves_with_the_volume(tta: str) -> None:
    torch.manual_seed(0)
    net = build_model("cnn3d", (1, 16, 16, 16), 1, {"tta": tta}).eval()
    x = torch.zeros(1, 1, 16, 16, 16)
    x[0, 0, 2:6, 3:8, 1:5] = 1.0
    x += 0.1 * torch.rand_like(x)
    cam = GradCAM3D(net).attribute(x, target=0)
    assert cam.shape == (1, 1, 16, 16, 16) and cam.sum() > 0
    for view in tta_views((1, 16, 16, 16), dihedral=tta == "dihedral")[1:]:
        torch.testing.assert_close(GradCAM3D(net).attribute(view(x), target=0), view(cam), rtol=1e-4, atol=1e-6)


def test_gradcam_without_views_is_the_plain_map() -> None:
    from captum.attr import LayerGradCam

    torch.manual_seed(0)
    net = build_model("cnn3d", (1, 16, 16, 16), 1, {"tta": "none"}).eval()
    x = torch.rand(1, 1, 16, 16, 16)
    plain = LayerGradCam(net, net.gradcam_layer()).attribute(x, target=0, relu_attributions=True).detach()
    expected = torch.nn.functional.interpolate(plain, size=(16, 16, 16), mode="trilinear", align_corners=False)
    torch.testing.assert_close(GradCAM3D(net).attribute(x, target=0), expected)


def test_undo_view_inverts_flips_and_turns() -> None:
    x = torch.rand(2, 3, 4, 5, 5)
    for view in tta_views((3, 4, 5, 5), dihedral=True):
        torch.testing.assert_close(undo_view(view, view(x)), x)


def test_gradcam_of_an_ensemble_is_its_members_mean() -> None:
    import copy

    from biodl.models.ensemble import Ensemble

    torch.manual_seed(0)
    net = build_model("cnn3d", (1, 16, 16, 16), 1, {"tta": "flip"}).eval()
    torch.manual_seed(1)
    other = build_model("cnn3d", (1, 16, 16, 16), 1, {"tta": "flip"}).eval()
    x = torch.rand(1, 1, 16, 16, 16)
    ens = Ensemble.from_members([net, other], "cnn3d", net.params.model_dump(), "binary").eval()
    expected = (GradCAM3D(net).attribute(x, target=0) + GradCAM3D(other).attribute(x, target=0)) / 2
    torch.testing.assert_close(GradCAM3D(ens).attribute(x, target=0), expected)
    twins = Ensemble.from_members([net, copy.deepcopy(net)], "cnn3d", net.params.model_dump(), "binary").eval()
    torch.testing.assert_close(GradCAM3D(twins).attribute(x, target=0), GradCAM3D(net).attribute(x, target=0))


class _BrightCube(torch.nn.Module):
    """Score = the energy of the local means above 0.2 (3³ box filter): driven by a bright cube, not the faint noise."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 1, 3, padding=1, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1 / 27)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.relu(self.conv(x) - 0.2) ** 2).sum(dim=(2, 3, 4))


@pytest.mark.parametrize("method", ["saliency", "occlusion"])
def test_saliency_and_occlusion_find_the_planted_cube(method: str) -> None:
    from biodl.explain.volume import METHODS

    x = 0.05 * torch.rand(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    x[0, 0, 9:13, 2:6, 5:9] = 1.0
    maps = METHODS[method](_BrightCube()).attribute(x, target=0)
    assert maps.shape == (1, 1, 16, 16, 16)
    m = maps[0, 0].abs()
    near = m[6:16, 0:9, 2:12].sum() / m.sum()  # the cube and the 3 voxels around it a filter or window reaches
    assert near > 0.8  # most attribution within 810 of 4,096 voxels
    d, h, w = (int(v) for v in torch.nonzero(m == m.max())[0])
    assert 8 <= d <= 13 and 1 <= h <= 6 and 4 <= w <= 9  # the peak on the cube (or its rim)
