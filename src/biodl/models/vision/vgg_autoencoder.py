"""The road paper's VGG encoder-decoders (Kebir, Taibi & Serradilla 2021): VGG16, VGG12 and VGG10 AE.

A VGG convolution/pooling encoder, its fully connected layers replaced by the latent maps, and a
mirrored decoder of upsampling + convolution stages ending in one sigmoid output map — no skip
connections. The paper's layer tables are figures that did not survive in its text, so the
stage layouts below are reconstructed from its description ("compressed" VGG16 with fewer
hidden layers) and chosen to match its Table 2 trainable-parameter counts (3-channel input,
one output map):

===========  ========================  =============================  =============  ==========
model        encoder (convs per stage)  decoder (one conv per ×2 up)  parameters     paper
===========  ========================  =============================  =============  ==========
``vgg16``    2-2-3-3-3 (64…512), 5 pools  512-256-128-64-32          18,641,985     18,087,715
``vgg12``    2-2-3-3 (64…512), 4 pools    256-128-64-32              9,202,753      9,590,145
``vgg10``    2-2-2-2 (64…512), 4 pools    128-64-32-16               5,372,353      5,460,097
===========  ========================  =============================  =============  ==========

(+3.1 %, −4.0 %, −1.6 %; counts without batch norm — ``batch_norm: true``, the default here
for stable training from scratch, adds 2 per channel and drops the convolution biases). The
counts do not depend on the input size: the network is fully convolutional. The encoder's
parameter names are torchvision's ``features.N`` (under ``encoder.``), so ImageNet VGG16
weights load into ``vgg16``. The output is a logit map; the sigmoid is the task head (the
loss is binary cross-entropy on logits, numerically the paper's sigmoid + BCE).

Training defaults follow the paper (:attr:`VGGAutoencoder.config_defaults`, used for every key
the experiment leaves unset): RMSprop (lr 1e-3, Keras' default), binary cross-entropy, an 80/20
train/validation split, whole 400×400 tiles, plus CPU-sized choices tuned by 5-fold
cross-validation on the EPFL road images (``docs/image_results.md``): the network works at a
quarter of the resolution (``input_scale: 0.25``; the paper: 1.0), batches of 2 images, at
most 60 epochs with patience 15; predictions average the 8 flips and 90° rotations
(``tta: dihedral``) and the foreground threshold is chosen for 16×16-patch F1
(``evaluate.select_threshold: patch_f1``). With at most 64 training + validation images
(``train.select_by: auto``) the epoch count and that threshold are chosen by 4-fold cross-validation
over those images (pooled out-of-fold predictions), the model is then trained on all of them, and
the saved model averages it with the four fold networks (``train.select_ensemble``, as nnU-Net
ensembles its folds; ``docs/roads-selection.md``); on more images, early stopping and the threshold
use the validation split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from biodl.models.base import MODELS, ModelParams
from biodl.models.vision.base import SegmentationModel, SegmentationParams, conv_bn_relu, conv_init

#: Convolutions per encoder stage and decoder widths of each variant.
VARIANTS: dict[str, tuple[list[int], list[int]]] = {
    "vgg16": ([2, 2, 3, 3, 3], [512, 256, 128, 64, 32]),
    "vgg12": ([2, 2, 3, 3], [256, 128, 64, 32]),
    "vgg10": ([2, 2, 2, 2], [128, 64, 32, 16]),
}
#: Widths of the VGG stages.
WIDTHS = [64, 128, 256, 512, 512]
#: Trainable parameters in the paper's Table 2.
PAPER_PARAMETERS = {"vgg16": 18_087_715, "vgg12": 9_590_145, "vgg10": 5_460_097}


class VGGFeatures(nn.Module):
    """Holds the encoder stack under torchvision's name ``features``."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's latent maps."""
        return self.features(x)


class VGGAutoencoderParams(SegmentationParams):
    """Hyper-parameters of :class:`VGGAutoencoder`."""

    input_scale: float = Field(
        default=0.25,
        gt=0.0,
        le=1.0,
        description="work at this fraction of the resolution (outputs are upsampled back; 0.25 suits a CPU, the paper: 1.0)",
    )
    tta: Literal["none", "flip", "dihedral"] = Field(
        default="dihedral",
        description="test-time augmentation: logits averaged over the 8 flips and 90° rotations (flip: the 4 flips)",
    )
    encoder: Literal["vgg16", "vgg12", "vgg10"] = "vgg10"
    decoder_channels: list[int] | None = Field(default=None, description="decoder widths, deepest first (null = the variant's)")
    batch_norm: bool = Field(default=True, description="batch norm after every convolution (the paper's Keras models: none)")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="dropout on the latent maps")


@MODELS.register("vgg_autoencoder")
class VGGAutoencoder(SegmentationModel):
    """Input ``(N, C, H, W)`` → ``(N, num_outputs, H, W)`` logits (sigmoid head for binary masks)."""

    Params: ClassVar[type[ModelParams]] = VGGAutoencoderParams
    config_defaults: ClassVar[Mapping[str, object]] = {
        "train.optimizer": "rmsprop",
        "train.batch_size": 2,
        "train.max_epochs": 60,
        "train.patience": 15,
        "data.split_sizes": [0.8, 0.2, 0.0],
        "data.image.tile_size": 400,
        "data.image.crops_per_image": 1,
        "evaluate.select_threshold": "patch_f1",
        "train.select_by": "auto",
        "train.select_ensemble": True,
    }
    pretrained_prefix: ClassVar[str] = "encoder."

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, VGGAutoencoderParams)
        convs, dec = VARIANTS[params.encoder]
        dec = params.decoder_channels or dec
        if len(dec) != len(convs):
            raise ValueError(f"decoder_channels needs {len(convs)} entries for {params.encoder}, got {len(dec)}")
        layers: list[nn.Module] = []
        c = self.in_channels
        for n, w in zip(convs, WIDTHS):
            for _ in range(n):
                layers += conv_bn_relu(c, w, params.batch_norm)
                c = w
            layers.append(nn.MaxPool2d(2, 2))
        self.encoder = VGGFeatures(nn.Sequential(*layers))
        self.latent_dropout = nn.Dropout2d(params.dropout) if params.dropout > 0 else nn.Identity()
        up: list[nn.Module] = []
        for w in dec:
            up.append(nn.Upsample(scale_factor=2, mode="nearest"))
            up += conv_bn_relu(c, w, params.batch_norm)
            c = w
        self.decoder = nn.Sequential(*up)
        self.head = nn.Conv2d(c, num_outputs, 3, padding=1)
        self.stride = 2 ** len(convs)
        conv_init(self)
        self._finish_init()

    @property
    def features(self) -> nn.Sequential:
        """The encoder's ``features`` stack."""
        return self.encoder.features

    def encoder_stages(self) -> list[nn.Module]:
        stages: list[nn.Module] = []
        current: list[nn.Module] = []
        for m in self.features:
            current.append(m)
            if isinstance(m, nn.MaxPool2d):
                stages.append(nn.ModuleList(current))
                current = []
        return stages

    def gradcam_layer(self) -> nn.Module:
        return self.decoder

    def forward_net(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.latent_dropout(self.features(x))))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Globally averaged latent maps ``(N, 512)``."""
        from biodl.data.image.tiling import pad_to_multiple

        z, _ = pad_to_multiple(x, self.stride)
        return self.features(z).mean(dim=(-2, -1))
