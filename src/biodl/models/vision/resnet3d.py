"""3-D ResNet-18 (Tran et al. 2018, "R3D") with torchvision's ``r3d_18`` parameter names.

``stem.0`` (Conv3d 3×7×7, stride 1×2×2), ``stem.1`` (BN), ``layer1.0.conv1.0`` / ``.conv1.1``,
``layer1.0.conv2.0`` / ``.conv2.1``, ``layer2.0.downsample.0`` / ``.1``, ..., ``fc`` match
``torchvision.models.video.r3d_18``, so its state dict loads with ``pretrained_weights`` (a local
``.safetensors``/``.pth`` file; an RGB first convolution is summed for grey volumes, a head of
another size is skipped and reported). ``stem: small`` uses one 3×3×3 convolution with stride 1
(small volumes such as 28³ MedMNIST); ``width`` below 64 makes a narrower network that no longer
takes ``r3d_18`` weights.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from biodl.errors import ConfigError
from biodl.models.base import MODELS, ModelParams
from biodl.models.vision.volume_base import VolumeModel, conv_init_3d


class BasicBlock3D(nn.Module):
    """``conv1 = (Conv3d 3³, BN, ReLU)``, ``conv2 = (Conv3d 3³, BN)``, identity or 1³ projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(nn.Conv3d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout))
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(conv2(conv1(x)) + shortcut(x))``."""
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class ResNet3DParams(ModelParams):
    """Hyper-parameters of :class:`ResNet3D`."""

    encoder: Literal["r3d_18"] = "r3d_18"
    stem: Literal["video", "small"] = Field(default="small", description="video: r3d_18's 3×7×7 stride 1×2×2 stem")
    width: int = Field(default=64, ge=4, description="filters of layer1 (doubling per layer; 64 = r3d_18)")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    pretrained_weights: str | None = Field(default=None, description="local .safetensors/.pth with r3d_18 parameter names")


@MODELS.register("resnet3d")
class ResNet3D(VolumeModel):
    """stem → layer1..4 (2 blocks each) → global average pool → ``fc``; ``(N, C, D, H, W)`` → ``(N, num_outputs)``."""

    Params: ClassVar[type[ModelParams]] = ResNet3DParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, ResNet3DParams)
        if min(self.in_shape[1:]) < 8:
            raise ConfigError(f"resnet3d needs volumes of at least 8 voxels per side, got {self.in_shape[1:]}")
        w = params.width
        if params.stem == "video":
            conv: nn.Module = nn.Conv3d(self.in_channels, w, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False)
        else:
            conv = nn.Conv3d(self.in_channels, w, 3, stride=1, padding=1, bias=False)
        self.stem = nn.Sequential(conv, nn.BatchNorm3d(w), nn.ReLU(inplace=True))
        widths = [w, 2 * w, 4 * w, 8 * w]
        c = w
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock3D(c, width, stride), BasicBlock3D(width, width)))
            c = width
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(params.dropout)
        self.fc = nn.Linear(c, num_outputs)
        conv_init_3d(self)
        self.pretrained_report: dict[str, Any] = {}
        if params.pretrained_weights:
            self.pretrained_report = self.load_pretrained(params.pretrained_weights)

    @property
    def layers(self) -> list[nn.Sequential]:
        """``layer1`` .. ``layer4``."""
        return [getattr(self, f"layer{i}") for i in range(1, 5)]

    def load_pretrained(self, path: str) -> dict[str, Any]:
        """Copy tensors of an ``r3d_18``-named state dict whose names and shapes match."""
        from biodl.models.vision.base import read_weights

        state, own = read_weights(path), self.state_dict()
        loaded, skipped = {}, []
        for key, value in state.items():
            if key not in own:
                continue
            if key == "stem.0.weight" and value.shape[1] != own[key].shape[1] and value.shape[0] == own[key].shape[0]:
                value = value.sum(dim=1, keepdim=True).repeat(1, own[key].shape[1], 1, 1, 1) / own[key].shape[1]
            if value.shape != own[key].shape:
                skipped.append(f"{key} {tuple(value.shape)} → {tuple(own[key].shape)}")
                continue
            loaded[key] = value.to(own[key].dtype)
        if not loaded:
            raise ConfigError(f"{path}: no parameter name/shape matches resnet3d (expected torchvision r3d_18 names)")
        self.load_state_dict(loaded, strict=False)
        return {"loaded": len(loaded), "skipped": skipped}

    def gradcam_layer(self) -> nn.Module:
        return self.layers[-1]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled ``layer4`` features ``(N, 8·width)``."""
        z = self.stem(x)
        for layer in self.layers:
            z = layer(z)
        return torch.flatten(self.avgpool(z), 1)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.embed(x)))
