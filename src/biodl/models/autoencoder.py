"""Auto-encoders (task ``reconstruction``): dense, convolutional (1-D and 2-D), denoising and sparse.

The review's unsupervised section (Angermueller et al., 2016): stacked/denoising/sparse
auto-encoders learn low-dimensional representations of unlabelled data; the encoder is then a
feature extractor (``biodl embed``) or initialises a supervised network layer by layer
(:func:`pretrain_layerwise`, the recipe for a model that overfits).

With ``task: reconstruction`` the targets are the inputs themselves (:func:`reconstruction_targets`,
standardised per feature on the training split like any regression target), the loss is the mean
squared error, and ``metrics.json`` holds one score over all reconstructed values
(:func:`reconstruction_metrics`) next to the PCA baseline with the same number of components
(``evaluate.baselines: [pca]``).

* **Denoising** (``noise: gaussian|masking``, ``noise_level``): inputs are corrupted in training
  only; the target stays the clean input (Vincent et al., 2010).
* **Sparse** (``sparsity``): an L1 penalty ``sparsity · mean |z|`` on the code activations, added
  through the gradient (:class:`L1Penalty`), so no change to the training loop is needed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from biodl.data.targets import Targets
from biodl.errors import ConfigError, DataError
from biodl.metrics import compute_metrics
from biodl.models.base import MODELS, BiodlModel, ModelParams
from biodl.models.init import InitName, initialize
from biodl.models.layers import Activation, activation, dense_block

Noise = Literal["none", "gaussian", "masking"]
#: Data types whose raw inputs are numeric arrays (molecules are SMILES strings).
AE_DATA_TYPES: tuple[str, ...] = ("tabular", "sequence", "image")


# ---------------------------------------------------------------------------- task helpers
def reconstruction_targets(X: np.ndarray) -> Targets:
    """Targets of the ``reconstruction`` task: the raw inputs flattened to ``(N, prod(shape))`` float32."""
    arr = np.asarray(X)
    if arr.dtype.kind not in "biuf":
        raise DataError(f"task 'reconstruction' needs numeric inputs, got {arr.dtype} (molecules: use fingerprints)")
    y = arr.reshape(len(arr), -1).astype(np.float32)
    return Targets(y, "regression", [f"x{i}" for i in range(y.shape[1])], None)


def reconstruction_metrics(
    y: np.ndarray, pred: np.ndarray, parts: Mapping[str, np.ndarray], metrics: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per split: regression metrics over all reconstructed values (flattened), plus the explained variance.

    ``explained_variance`` is ``1 - SS_res / SS_tot`` with every feature centred on its own mean in
    that split (``r2`` centres on the grand mean, so it also credits getting feature means right).

    Parameters
    ----------
    y, pred
        ``(N, F)`` inputs and reconstructions (original scale).
    parts
        Split name → row indices.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, idx in parts.items():
        if not len(idx):
            out[name] = {}
            continue
        yt, yp = y[idx], pred[idx]
        res = compute_metrics("regression", yt.reshape(-1, 1), yp.reshape(-1, 1), metrics=metrics)
        ss_tot = float(((yt - yt.mean(axis=0)) ** 2).sum())
        res["explained_variance"] = 1.0 - float(((yt - yp) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")
        res["n"] = len(idx)
        out[name] = res
    return out


def pca_reconstruction(X_train: np.ndarray, y_train: np.ndarray, X: np.ndarray, n_components: int, seed: int = 0) -> np.ndarray:
    """Linear auto-encoder reference: PCA codes of ``X`` mapped to the targets by least squares.

    Fitted on ``(X_train, y_train)``; returns predictions ``(N, F)`` for ``X``.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LinearRegression

    x = np.asarray(X_train, dtype=np.float64).reshape(len(X_train), -1)
    k = max(1, min(n_components, x.shape[0] - 1, x.shape[1]))
    pca = PCA(k, random_state=seed).fit(x)
    reg = LinearRegression().fit(pca.transform(x), np.asarray(y_train, dtype=np.float64))
    return np.asarray(reg.predict(pca.transform(np.asarray(X, dtype=np.float64).reshape(len(X), -1))), dtype=np.float32)


def reconstruction_report(
    X: np.ndarray | None,
    y: np.ndarray,
    pred: np.ndarray,
    parts: Mapping[str, np.ndarray],
    *,
    metrics: list[str] | None = None,
    n_components: int = 32,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics of a ``reconstruction`` run: the network's per split and the PCA reference's.

    The PCA reference has ``n_components`` (the auto-encoder's code size) and is fitted on the
    training rows of the model inputs ``X`` (skipped when ``X`` is ``None``).
    """
    out: dict[str, Any] = reconstruction_metrics(y, pred, parts, metrics)
    tr = parts.get("train")
    if X is not None and tr is not None and len(tr) > 1:
        base = pca_reconstruction(X[tr], y[tr], X, n_components, seed)
        scored = reconstruction_metrics(y, base, parts, metrics)
        out["baseline"] = {
            "name": f"pca ({n_components} components)",
            "val": scored.get("val", {}),
            "test": scored.get("test", {}),
            "selected_on": "fixed",
            "main_metric": "rmse",
        }
    return out


# ---------------------------------------------------------------------------- building blocks
class L1Penalty(torch.autograd.Function):
    """Identity whose backward adds ``weight · sign(z) / N``: the gradient of ``weight · mean_n Σ_j |z_nj|``."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.save_for_backward(z)
        ctx.weight = weight
        return z.view_as(z)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[torch.Tensor, None]:
        (z,) = ctx.saved_tensors
        return grads[0] + ctx.weight * torch.sign(z) / z.shape[0], None


def corrupt(x: torch.Tensor, noise: Noise, level: float) -> torch.Tensor:
    """Denoising corruption: additive Gaussian noise (std ``level``) or masking (``level`` = drop probability)."""
    if noise == "gaussian" and level > 0:
        return x + level * torch.randn_like(x)
    if noise == "masking" and level > 0:
        return x * (torch.rand_like(x) >= level).to(x.dtype)
    return x


class AutoencoderParams(ModelParams):
    """Hyper-parameters shared by the auto-encoders."""

    activation: Activation = "relu"
    noise: Noise = Field(default="none", description="denoising: corrupt training inputs")
    noise_level: float = Field(default=0.1, ge=0.0, description="gaussian: std; masking: drop probability")
    sparsity: float = Field(default=0.0, ge=0.0, description="L1 weight on the code activations (sparse AE)")
    init: InitName = "glorot_uniform"


class _Autoencoder(BiodlModel):
    """Shared forward logic: corrupt (training) → encode → (sparsity) → decode → flatten."""

    data_types: ClassVar[tuple[str, ...]] = AE_DATA_TYPES
    tasks: ClassVar[tuple[str, ...]] = ("reconstruction",)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(N, latent)`` of clean inputs."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstructions ``(N, *in_shape)`` of codes."""
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The code, as for other models' penultimate features (used by ``biodl embed``)."""
        return self.encode(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened reconstruction ``(N, prod(in_shape))``."""
        p = self.params
        assert isinstance(p, AutoencoderParams)
        if self.training:
            x = corrupt(x, p.noise, p.noise_level)
        z = self.encode(x)
        if self.training and p.sparsity > 0:
            z = L1Penalty.apply(z, p.sparsity)
        return self.decode(z).reshape(x.shape[0], -1)  # x.shape[0], not len(x): stays dynamic when traced for export

    def _check_outputs(self, num_outputs: int) -> None:
        if num_outputs != math.prod(self.in_shape):
            raise ConfigError(
                f"an auto-encoder reconstructs its input: {math.prod(self.in_shape)} outputs expected, got {num_outputs} "
                "(use task: reconstruction)"
            )


class DenseAutoencoderParams(AutoencoderParams):
    """Hyper-parameters of :class:`DenseAutoencoder`."""

    hidden_sizes: list[int] = Field(
        default_factory=lambda: [256, 32], min_length=1, description="encoder widths; the last is the code"
    )
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    batch_norm: bool = False


@MODELS.register("autoencoder")
class DenseAutoencoder(_Autoencoder):
    """Fully connected auto-encoder with a mirrored decoder; inputs of any shape are flattened.

    Encoder ``F → h_1 → ... → h_k`` (the code, linear), decoder ``h_k → ... → h_1 → F`` (linear output).
    """

    Params: ClassVar[type[ModelParams]] = DenseAutoencoderParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, DenseAutoencoderParams)
        self._check_outputs(num_outputs)
        n_in = math.prod(self.in_shape)
        sizes = [n_in, *params.hidden_sizes]
        enc: list[nn.Module] = [nn.Flatten()]
        for a, b in itertools.pairwise(sizes[:-1]):
            enc.append(dense_block(a, b, params.activation, params.dropout, params.batch_norm))
        enc.append(nn.Linear(sizes[-2], sizes[-1]))
        dec: list[nn.Module] = []
        rev = sizes[::-1]
        for a, b in itertools.pairwise(rev[:-1]):
            dec.append(dense_block(a, b, params.activation, params.dropout, params.batch_norm))
        dec.append(nn.Linear(rev[-2], rev[-1]))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        initialize(self, params.init)

    @property
    def latent_size(self) -> int:
        """Code width."""
        p = self.params
        assert isinstance(p, DenseAutoencoderParams)
        return p.hidden_sizes[-1]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.float())

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).reshape(z.shape[0], *self.in_shape)


class ConvAutoencoderParams(AutoencoderParams):
    """Hyper-parameters of :class:`ConvAutoencoder`."""

    channels: list[int] = Field(
        default_factory=lambda: [32, 64], min_length=1, description="encoder channels (each halves the size)"
    )
    kernel_size: int = Field(default=3, ge=1)
    latent_size: int | None = Field(default=64, ge=1, description="dense code after the last convolution (null: the feature map)")
    batch_norm: bool = True


@MODELS.register("conv_autoencoder")
class ConvAutoencoder(_Autoencoder):
    """Convolutional auto-encoder for ``(C, L)`` (1-D: sequences, profiles) or ``(C, H, W)`` (2-D: images) inputs.

    Each encoder stage is convolution (stride 2) → [BN] → activation; the decoder upsamples back
    to the exact stage sizes (nearest) and convolves, ending in a linear convolution to ``C`` channels.
    """

    Params: ClassVar[type[ModelParams]] = ConvAutoencoderParams

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, ConvAutoencoderParams)
        self._check_outputs(num_outputs)
        if len(self.in_shape) not in (2, 3):
            raise ConfigError(f"conv_autoencoder takes (C, L) or (C, H, W) inputs, got {self.in_shape}")
        self.dims = len(self.in_shape) - 1
        conv = nn.Conv1d if self.dims == 1 else nn.Conv2d
        norm = nn.BatchNorm1d if self.dims == 1 else nn.BatchNorm2d
        k, pad = params.kernel_size, params.kernel_size // 2
        self.sizes: list[tuple[int, ...]] = [tuple(self.in_shape[1:])]
        for _ in params.channels:
            self.sizes.append(tuple((s + 1) // 2 for s in self.sizes[-1]))
        chans = [self.in_shape[0], *params.channels]
        self.down = nn.ModuleList()
        for a, b in itertools.pairwise(chans):
            layers: list[nn.Module] = [conv(a, b, k, stride=2, padding=pad)]
            if params.batch_norm:
                layers.append(norm(b))
            layers.append(activation(params.activation))
            self.down.append(nn.Sequential(*layers))
        self.map_shape = (chans[-1], *self.sizes[-1])
        flat = math.prod(self.map_shape)
        self.to_code = nn.Linear(flat, params.latent_size) if params.latent_size else None
        self.from_code = nn.Linear(params.latent_size, flat) if params.latent_size else None
        self.up = nn.ModuleList()
        rev = chans[::-1]
        for i, (a, b) in enumerate(itertools.pairwise(rev)):
            last = i == len(rev) - 2
            layers = [conv(a, b, k, padding=pad)]
            if not last:
                if params.batch_norm:
                    layers.append(norm(b))
                layers.append(activation(params.activation))
            self.up.append(nn.Sequential(*layers))
        initialize(self, params.init)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        for stage in self.down:
            h = stage(h)
        h = h.flatten(1)
        return self.to_code(h) if self.to_code is not None else h

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_code(z) if self.from_code is not None else z
        h = h.reshape(z.shape[0], *self.map_shape)
        targets = self.sizes[-2::-1]
        for stage, size in zip(self.up, targets):
            h = stage(nn.functional.interpolate(h, size=size, mode="nearest"))
        return h


# ---------------------------------------------------------------------------- layer-wise pre-training
def pretrain_layerwise(
    X: np.ndarray,
    hidden_sizes: list[int],
    *,
    act: Activation = "relu",
    noise: Noise = "masking",
    noise_level: float = 0.2,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
) -> list[nn.Linear]:
    """Greedy layer-wise pre-training with denoising auto-encoders (Bengio et al., 2007; Vincent et al., 2010).

    Layer ``l`` is the encoder of a one-hidden-layer denoising auto-encoder trained on the codes of
    layers ``1..l-1``. Returns the encoder layers, ready for :func:`init_from_pretrained`.

    Parameters
    ----------
    X
        ``(N, F)`` training inputs (already normalised).
    hidden_sizes
        Widths of the layers to pre-train.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    h = torch.as_tensor(np.asarray(X, dtype=np.float32)).reshape(len(X), -1)
    layers: list[nn.Linear] = []
    for width in hidden_sizes:
        enc, dec = nn.Linear(h.shape[1], width), nn.Linear(width, h.shape[1])
        nn.init.xavier_uniform_(enc.weight)
        nn.init.xavier_uniform_(dec.weight)
        nn.init.zeros_(enc.bias)
        nn.init.zeros_(dec.bias)
        f = activation(act)
        opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=lr)
        for _ in range(epochs):
            for idx in torch.randperm(len(h), generator=gen).split(batch_size):
                xb = h[idx]
                loss = ((dec(f(enc(corrupt(xb, noise, noise_level)))) - xb) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            h = f(enc(h))
        layers.append(enc)
    return layers


def init_from_pretrained(model: nn.Module, layers: list[nn.Linear]) -> int:
    """Copy pre-trained weights into the first ``len(layers)`` linear layers of ``model`` (shapes must match).

    Returns the number of layers initialised.
    """
    targets = [m for m in model.modules() if isinstance(m, nn.Linear)]
    n = 0
    for src, dst in zip(layers, targets):
        if src.weight.shape != dst.weight.shape:
            raise ConfigError(
                f"pre-trained layer {n} has shape {tuple(src.weight.shape)}, the network's {tuple(dst.weight.shape)}"
            )
        with torch.no_grad():
            dst.weight.copy_(src.weight)
            if dst.bias is not None:
                dst.bias.copy_(src.bias)
        n += 1
    return n
