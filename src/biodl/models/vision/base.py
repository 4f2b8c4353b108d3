"""Shared machinery of the image architectures (segmentation_models.pytorch-style).

Every image model takes the uniform constructor ``Model(in_shape, num_outputs, params)``:
``in_channels`` comes from ``in_shape = (C, H, W)``, ``num_classes`` from ``num_outputs``, and
``params`` share the fields of :class:`VisionParams`:

* ``encoder`` — the backbone variant (``vgg16``, ``resnet34``, ``vgg10``, ...);
* ``pretrained_weights`` — a local ``.safetensors`` or ``.pth`` file (read with
  ``torch.load(..., weights_only=True)`` only) whose parameter names follow torchvision
  (``features.N.weight``, ``conv1.weight``, ``layer1.0.conv1.weight``, ...). Tensors whose shape
  does not fit (a 1000-class ImageNet head, say) are skipped and reported; an RGB first
  convolution is averaged for grey inputs;
* ``freeze`` — ``none``; ``encoder`` (feature extraction: only the head/decoder learns); or an
  integer N: the first N encoder stages (from the input side) are frozen;
* ``trainable_stages`` — the other way round: an integer N trains only the top N encoder stages
  and freezes every stage below (Kang et al. fine-tune the top 2); not combined with ``freeze``.

Frozen stages keep their weights *and* their batch-norm running statistics: their norm layers
stay in evaluation mode whatever ``train()`` calls Lightning makes. What was loaded, skipped and
frozen is in :meth:`VisionModel.transfer_report` (a run writes it to ``transfer.json``).

Classifiers return logits ``(N, num_outputs)``; segmentation models return per-pixel logits
``(N, num_outputs, H, W)`` for inputs of any size (padded internally to the encoder stride), and
in evaluation mode predict images larger than their inference window in overlapping windows.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from biodl.data.image.tiling import pad_to_multiple, sliding_window
from biodl.errors import ConfigError
from biodl.models.base import BiodlModel, ModelParams

Freeze = Literal["none", "encoder"] | int


class VisionParams(ModelParams):
    """Parameters every image architecture has."""

    pretrained_weights: str | None = Field(
        default=None, description="local .safetensors/.pth weights with torchvision parameter names (initialisation only)"
    )
    freeze: Freeze = Field(
        default="none",
        description="none, encoder (feature extraction: every encoder stage), or N = freeze the first N encoder stages "
        "(from the input side)",
    )
    trainable_stages: int | None = Field(
        default=None,
        ge=0,
        description="train only the top N encoder stages and freeze all stages below them (Kang et al. fine-tune the "
        "top 2); null = use freeze. Not together with freeze",
    )

    @field_validator("freeze")
    @classmethod
    def _freeze(cls, v: Freeze) -> Freeze:
        if isinstance(v, int) and v < 0:
            raise ValueError(f"freeze must be 'none', 'encoder' or a number of first stages >= 0, got {v}")
        return v


def conv_init(module: nn.Module) -> None:
    """torchvision's scheme: He-normal (fan-out) convolutions, N(0, 0.01) linear layers, BN = (1, 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a ``.pth``/``.pt`` file (``weights_only=True``: no code runs)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"pretrained weights not found: {p}")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(p)))
        except Exception as exc:
            raise ConfigError(f"{p}: cannot read the safetensors file ({exc})") from None
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError for anything but plain tensors
        raise ConfigError(f"{p}: cannot read the weights with weights_only=True ({type(exc).__name__}: {exc})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"{p}: expected a state dict of tensors")
    return {str(k).removeprefix("module."): v for k, v in obj.items()}


class VisionModel(BiodlModel):
    """Base class of image architectures (see the module docstring)."""

    data_types: ClassVar[tuple[str, ...]] = ("image",)
    tasks: ClassVar[tuple[str, ...]] = ("classification", "multilabel", "regression")
    #: Images per forward call in evaluation without gradients (bounds memory on large batches).
    eval_chunk: ClassVar[int] = 64
    #: Prefix under which torchvision parameter names live in this model (``encoder.`` for U-Nets).
    pretrained_prefix: ClassVar[str] = ""

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        if len(self.in_shape) != 3:
            raise ConfigError(f"image models take (C, H, W) inputs, got in_shape {self.in_shape}")
        self.in_channels = self.in_shape[0]
        self.num_classes = num_outputs
        self.pretrained_report: dict[str, Any] = {}

    # ------------------------------------------------------------- structure
    def encoder_stages(self) -> list[nn.Module]:
        """Encoder stages from the input side to the top (the units ``freeze`` counts)."""
        raise NotImplementedError

    def first_conv(self) -> nn.Conv2d:
        """The first convolution (filters shown in reports)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                return m
        raise RuntimeError("no convolution")

    def gradcam_layer(self) -> nn.Module:
        """The layer Grad-CAM uses by default (last encoder stage)."""
        return self.encoder_stages()[-1]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate representation ``(N, F)`` (2-D embeddings in reports)."""
        raise NotImplementedError

    # ------------------------------------------------------- transfer learning
    def _finish_init(self) -> None:
        """Load pretrained weights and freeze; subclasses call this at the end of ``__init__``."""
        p = self.params
        assert isinstance(p, VisionParams)
        if p.pretrained_weights:
            self.pretrained_report = self.load_pretrained(p.pretrained_weights)
            self.pretrained_report["weights"] = str(p.pretrained_weights)
        if p.trainable_stages is not None:
            if p.freeze != "none":
                raise ConfigError(
                    f"model.freeze={p.freeze!r} and model.trainable_stages={p.trainable_stages}: give one of them "
                    "(freeze: N freezes the first N stages; trainable_stages: N trains only the top N)"
                )
            self.apply_freeze(max(0, len(self.encoder_stages()) - p.trainable_stages))
        else:
            self.apply_freeze(p.freeze)

    def load_pretrained(self, path: str | Path) -> dict[str, Any]:
        """Copy matching tensors of a torchvision-named state dict into this model.

        Returns ``{"loaded": n, "skipped": [names with other shapes], "unused": [...], "missing": [...]}``.
        Raises :class:`ConfigError` when nothing matches (wrong architecture).
        """
        state = read_weights(path)
        own = self.state_dict()
        prefix = self.pretrained_prefix
        first = self.first_conv()
        first_name = next((n for n, m in self.named_modules() if m is first), "")
        loaded: dict[str, torch.Tensor] = {}
        skipped, unused = [], []
        for key, value in state.items():
            name = key if key in own else prefix + key
            if name not in own:
                unused.append(key)
                continue
            target = own[name]
            if (
                name == f"{first_name}.weight"
                and value.ndim == 4
                and value.shape[1] != target.shape[1]
                and value.shape[0] == target.shape[0]
            ):
                value = _adapt_input_channels(value, int(target.shape[1]))
            if value.shape != target.shape:
                skipped.append(f"{key} {tuple(value.shape)} → {tuple(target.shape)}")
                continue
            loaded[name] = value.to(target.dtype)
        if not loaded:
            raise ConfigError(f"{path}: no parameter name/shape matches {type(self).__name__} (expected torchvision names)")
        self.load_state_dict(loaded, strict=False)
        missing = [k for k in own if k not in loaded and not k.endswith("num_batches_tracked")]
        return {
            "loaded": len(loaded),
            "loaded_names": sorted(loaded),
            "skipped": skipped,
            "unused": unused[:50],
            "missing": missing,
        }

    def apply_freeze(self, freeze: Freeze) -> None:
        """Freeze encoder stages (see :class:`VisionParams`): ``"encoder"`` all, an integer N the first N.

        Frozen parameters stop learning, and the stages' norm layers stay in evaluation mode (their
        running statistics do not move), also after Lightning restores per-module training flags.
        """
        stages = self.encoder_stages()
        if freeze == "none":
            n_frozen = 0
        elif freeze == "encoder":
            n_frozen = len(stages)
        else:
            n_frozen = min(len(stages), int(freeze))
        self._frozen = stages[:n_frozen]
        self._n_stages = len(stages)
        for stage in self._frozen:
            for p in stage.parameters():
                p.requires_grad_(False)
            for m in stage.modules():
                if isinstance(m, nn.modules.batchnorm._NormBase):
                    m.eval()
                    m.register_forward_pre_hook(_keep_eval)

    def transfer_report(self) -> dict[str, Any]:
        """What transfer learning did: weights loaded / skipped / missing, stages and parameters frozen."""
        frozen = {id(p) for s in getattr(self, "_frozen", []) for p in s.parameters()}
        frozen_names = [n for n, p in self.named_parameters() if id(p) in frozen]
        p = self.params
        assert isinstance(p, VisionParams)
        return {
            "pretrained": dict(self.pretrained_report) or None,
            "freeze": p.freeze,
            "trainable_stages": p.trainable_stages,
            "encoder_stages": getattr(self, "_n_stages", len(self.encoder_stages())),
            "frozen_stages": list(range(1, len(getattr(self, "_frozen", [])) + 1)),
            "frozen_parameters": int(sum(q.numel() for q in self.parameters() if id(q) in frozen)),
            "trainable_parameters": int(sum(q.numel() for q in self.parameters() if q.requires_grad)),
            "frozen_names": frozen_names,
        }

    def train(self, mode: bool = True) -> VisionModel:
        """As :meth:`nn.Module.train`, but frozen stages keep batch-norm statistics fixed."""
        super().train(mode)
        for stage in getattr(self, "_frozen", []):
            stage.eval()
        return self

    # ---------------------------------------------------------------- running
    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The network itself (subclasses)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for ``(N, C, H, W)`` inputs (chunked in gradient-free evaluation)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(f"{type(self).__name__} takes (N, {self.in_channels}, H, W) images, got {tuple(x.shape)}")
        if not self.training and not torch.is_grad_enabled() and len(x) > self.eval_chunk:
            return torch.cat([self.forward_logits(x[i : i + self.eval_chunk]) for i in range(0, len(x), self.eval_chunk)])
        return self.forward_logits(x)


def _keep_eval(module: nn.Module, args: Any) -> None:
    """Forward pre-hook of a frozen norm layer: always normalise with the stored statistics."""
    module.training = False


def _adapt_input_channels(w: torch.Tensor, c: int) -> torch.Tensor:
    """First-layer weights for ``c`` input channels: RGB → grey sums, grey → RGB repeats (scaled)."""
    cin = w.shape[1]
    if c == 1:
        return w.sum(dim=1, keepdim=True)
    reps = math.ceil(c / cin)
    return w.repeat(1, reps, 1, 1)[:, :c] * (cin / c)


class SegmentationParams(VisionParams):
    """Parameters every segmentation architecture has."""

    input_scale: float = Field(
        default=1.0, gt=0.0, le=1.0, description="work at this fraction of the resolution (outputs are upsampled back)"
    )
    threshold: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="binary masks: foreground probability threshold; the output logits are shifted by -logit(threshold) "
        "so that every consumer's 0.5 cut means this threshold (set by evaluate.select_threshold)",
    )
    tta: Literal["none", "flip", "dihedral"] = Field(
        default="none",
        description="test-time augmentation: average the logits over flips (4 views) or flips and 90° rotations (8 views)",
    )


def resize_matrix(n: int, scale: float) -> np.ndarray:
    """``(m, n)`` matrix of PyTorch's antialiased bilinear resize of a length-``n`` axis by ``scale``.

    ``m = floor(n * scale)``; row ``i`` holds the triangle-filter weights of output ``i`` (support
    widened by the downscale factor, renormalised at the borders), as in PyTorch's and PIL's
    antialiased resize. Computed in NumPy, so a traced graph holds it as a constant.
    """
    m = math.floor(n * scale)
    ratio = n / m  # recompute_scale_factor=True: the scale of the actual sizes
    support = ratio if ratio >= 1.0 else 1.0
    inv = 1.0 / ratio if ratio >= 1.0 else 1.0
    out = np.zeros((m, n), dtype=np.float64)
    for i in range(m):
        center = ratio * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n)
        w = np.maximum(0.0, 1.0 - np.abs((np.arange(lo, hi) - center + 0.5) * inv))
        out[i, lo:hi] = w / w.sum()
    return out


def separable(x: torch.Tensor, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
    """``rows @ x @ cols.T`` over the last two axes of ``x`` ``(..., H, W)``: a separable linear map
    given as ``(H', H)`` and ``(W', W)`` matrices (constants in a traced graph)."""
    a_h = torch.from_numpy(rows).to(device=x.device, dtype=x.dtype)
    a_w = torch.from_numpy(np.ascontiguousarray(cols.T)).to(device=x.device, dtype=x.dtype)
    return a_h @ x @ a_w


def adaptive_pool_matrix(n: int, out: int) -> np.ndarray:
    """``(out, n)`` matrix of adaptive average pooling along one axis (PyTorch's bins).

    Row ``i`` averages inputs ``floor(i n / out)`` to ``ceil((i + 1) n / out)``.
    """
    mat = np.zeros((out, n), dtype=np.float64)
    for i in range(out):
        lo, hi = (i * n) // out, -(-(i + 1) * n // out)
        mat[i, lo:hi] = 1.0 / (hi - lo)
    return mat


class AdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """PyTorch's adaptive average pooling, exportable at any size.

    ONNX pools only output sizes that divide the input; traced for export (fixed spatial size),
    other sizes become two matrix products with the same bins. Same parameters (none) and state
    dict as ``torch.nn.AdaptiveAvgPool2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            h, w = int(x.shape[-2]), int(x.shape[-1])
            size: Any = self.output_size
            pair = (size, size) if isinstance(size, int) or size is None else tuple(size)
            oh, ow = pair[0] or h, pair[1] or w
            if h % oh or w % ow:
                return separable(x, adaptive_pool_matrix(h, oh), adaptive_pool_matrix(w, ow))
        return super().forward(x)


def downscale(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Antialiased bilinear resize of ``(N, C, H, W)`` images by ``scale``.

    Traced for export (TorchScript, ONNX: fixed spatial size), it is two matrix products with
    constant resize matrices — the same numbers (within float rounding) — because ONNX has no
    antialiased resize at the opsets biodl targets.
    """
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        h, w = int(x.shape[-2]), int(x.shape[-1])
        return separable(x, resize_matrix(h, scale), resize_matrix(w, scale))
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False, antialias=True, recompute_scale_factor=True)


class SegmentationModel(VisionModel):
    """Base class of dense (per-pixel) models.

    Subclasses implement :meth:`forward_net` for inputs whose sides are multiples of
    :attr:`stride`; this class pads, rescales (``input_scale``) and tiles around it.
    """

    tasks: ClassVar[tuple[str, ...]] = ("segmentation",)
    eval_chunk: ClassVar[int] = 4

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        self.stride = 1
        self.window: int | None = None
        self.overlap = 0.25

    def set_inference_window(self, window: int | None, overlap: float = 0.25) -> None:
        """Predict images larger than ``window`` in overlapping windows (evaluation, no gradients)."""
        self.window = window
        self.overlap = overlap

    def forward_net(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a stride-aligned batch (subclasses)."""
        raise NotImplementedError

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Rescale → pad to the stride → network → crop → upsample back."""
        p = self.params
        scale = p.input_scale if isinstance(p, SegmentationParams) else 1.0
        h, w = x.shape[-2:]
        z = x
        if scale != 1.0:
            z = downscale(x, scale)
        z, (zh, zw) = pad_to_multiple(z, self.stride)
        out = self.forward_net(z)[..., :zh, :zw]
        if scale != 1.0:
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
        return out

    def forward_tta(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward_logits` averaged over the views of ``params.tta`` (each mapped back).

        Parameters
        ----------
        x
            ``(N, C, H, W)`` images.

        Returns
        -------
        torch.Tensor
            ``(N, num_outputs, H, W)`` mean logits; the plain logits for ``tta="none"``.
        """
        mode = getattr(self.params, "tta", "none")
        if mode == "none":
            return self.forward_logits(x)
        # the dihedral group as transposes and flips (exportable; rotations are their products)
        total = torch.zeros((), dtype=x.dtype, device=x.device)
        transposes = (False, True) if mode == "dihedral" else (False,)
        flips: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))
        for transpose in transposes:
            for dims in flips:
                v = x.transpose(-2, -1) if transpose else x
                v = torch.flip(v, dims=dims) if dims else v
                y = self.forward_logits(v)
                y = torch.flip(y, dims=dims) if dims else y
                total = total + (y.transpose(-2, -1) if transpose else y)
        return total / (len(transposes) * len(flips))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel logits ``(N, num_outputs, H, W)``; large images are tiled in gradient-free evaluation.

        Gradient-free evaluation also applies the test-time augmentation of ``params.tta``.
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(f"{type(self).__name__} takes (N, {self.in_channels}, H, W) images, got {tuple(x.shape)}")
        if not self.training and not torch.is_grad_enabled():
            window = self.window if self.window is not None else max(x.shape[-2:])
            out = sliding_window(self.forward_tta, x, window=window, overlap=self.overlap, batch_size=self.eval_chunk)
        else:
            out = self.forward_logits(x)
        threshold = getattr(self.params, "threshold", 0.5)
        if self.num_outputs == 1 and threshold != 0.5:
            out = out - math.log(threshold / (1.0 - threshold))
        return out

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Global average of the deepest encoder features ``(N, F)``."""
        raise NotImplementedError


def conv_bn_relu(cin: int, cout: int, batch_norm: bool = True, kernel: int = 3) -> list[nn.Module]:
    """``Conv(k×k, same) [→ BN] → ReLU`` as a list of modules."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    return layers
