"""Attributions of sequence models through Captum, one class per method, Captum-style.

=============================  ================================================================
:class:`Saliency`              input gradients (signed by default; Simonyan et al. 2013)
:class:`InputXGradient`        gradient × input (Shrikumar et al. 2016)
:class:`IntegratedGradients`   path integral of gradients from a reference (Sundararajan et al. 2017)
:class:`DeepLift`              DeepLIFT rescale rule against one dinucleotide-shuffled reference
:class:`DeepLiftShap`          DeepLIFT averaged over several dinucleotide-shuffled references
                               (the DeepSHAP recipe of DeepExplainer/tangermeme)
=============================  ================================================================

All take one-hot sequences ``(N, A, L)`` and return attributions of the same shape for one
model output (``target``). Multiply by the input (``attr * X``) to keep the observed letters
only, as attribution logos show. Models that average both strands (biodl sequence models in
eval mode) are explained strand by strand and the two maps averaged, which is exact for the
additive methods. DeepLIFT runs on an equivalent graph of ReLU/pooling *modules* for
DeepBind-like models (functional ``relu``/``amax`` are invisible to Captum's rules), where its
attributions sum to ``f(x) - f(reference)``; for deeper CNNs with local max-pooling (DeepSEA,
Basset) Captum's max-pool rule makes the sum approximate (captum issue #1276).

>>> attr = IntegratedGradients(bundle).attribute(X, target=0)       # (N, 4, L)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from biodl.errors import ConfigError
from biodl.explain._common import (
    LengthMode,
    as_module,
    as_onehot,
    evaluating,
    fit_length,
    is_rc_averaging,
    model_device,
    model_length,
    reverse_complement,
)

if TYPE_CHECKING:
    from biodl.explain._common import ModelLike

__all__ = [
    "METHODS",
    "DeepLift",
    "DeepLiftShap",
    "InputXGradient",
    "IntegratedGradients",
    "Saliency",
    "SequenceAttribution",
    "dinucleotide_shuffled",
]

Baseline = Literal["zeros", "uniform", "shuffle"]


def dinucleotide_shuffled(X: torch.Tensor, n: int = 1, seed: int = 0) -> torch.Tensor:
    """Dinucleotide-preserving shuffles of one-hot sequences: ``(n, N, A, L)``.

    Columns that are not one-hot (``N``) keep being all-zero columns wherever the shuffle puts them.
    """
    from biodl.data.sequence.shuffle import dinucleotide_shuffle

    Xn = X.detach().cpu().numpy()
    A = Xn.shape[1]
    codes = np.where(Xn.max(1) == 1, Xn.argmax(1), A).astype(np.int64)  # (N, L); A = not one-hot
    rng = np.random.default_rng(seed)
    out = np.zeros((n, *Xn.shape), dtype=np.float32)
    eye = np.vstack([np.eye(A, dtype=np.float32), np.zeros((1, A), dtype=np.float32)])
    for i in range(len(codes)):
        for k in range(n):
            out[k, i] = eye[dinucleotide_shuffle(codes[i], rng)].T
    return torch.from_numpy(out).to(X.device)


class _Single(nn.Module):
    """One strand of an rc-averaging biodl sequence model (``model.score``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.score(x)  # type: ignore[operator,no-any-return]


class _ConvPoolGraph(nn.Module):
    """A DeepBind-like model as modules: padding → conv → (point-wise → pooling) per pooling → head.

    Functional ``relu``/``amax`` in a model's ``forward`` are invisible to Captum's DeepLIFT, and
    Captum's max-pooling rule loses contributions after a ReLU; this graph computes the same
    function with fresh modules per branch and, for ReLU, max-pools *before* the ReLU (they
    commute), which keeps DeepLIFT's summation-to-delta exact.
    """

    def __init__(self, model: nn.Module, parts: Any) -> None:
        super().__init__()
        self.model = model  # registers the head's modules for Captum's hooks
        self.conv = parts.conv
        self.pad = parts.pad
        relu = len(parts.pointwise) > 0 and all(type(m) is nn.ReLU for m in parts.pointwise)
        branches = []
        self.pool_modules: list[nn.Module] = []
        for p in parts.pools:
            act = [nn.ReLU() if type(m) is nn.ReLU else m for m in parts.pointwise]
            pool: nn.Module = nn.MaxPool1d(1) if p == "max" else nn.AvgPool1d(1)
            self.pool_modules.append(pool)
            branches.append(nn.Sequential(pool, *act) if p == "max" and relu else nn.Sequential(*act, pool))
        self.branches = nn.ModuleList(branches)
        self.head: Callable[[torch.Tensor], torch.Tensor] = parts.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = nn.functional.conv1d(nn.functional.pad(x, self.pad), self.conv.weight, self.conv.bias)
        for pool in self.pool_modules:  # global pooling over this input's length
            size = int(z.shape[-1])
            if isinstance(pool, nn.MaxPool1d):
                pool.kernel_size = pool.stride = size
            else:
                setattr(pool, "kernel_size", (size,))  # noqa: B010
                setattr(pool, "stride", (size,))  # noqa: B010
        # each branch gets its own copy: Captum's hooks lose contributions when modules share an input
        return self.head(torch.cat([b(z.clone())[..., 0] for b in self.branches], dim=1))


class SequenceAttribution:
    """Base class: model handling, inputs, targets, strands and batching.

    Parameters
    ----------
    model
        A module mapping one-hot ``(N, A, L)`` to scores ``(N, T)``, or a biodl bundle.
    batch_size
        Sequences per Captum call.
    length_mode
        Sequences whose length differs from a biodl model's input: ``error``, ``pad``, ``crop``.
    device
        Where the model runs (default: its device).
    """

    #: Short name used by the CLI.
    name: ClassVar[str] = ""
    #: Whether the method needs nn-module non-linearities (DeepLIFT rules).
    needs_modules: ClassVar[bool] = False

    def __init__(
        self,
        model: ModelLike,
        *,
        batch_size: int = 128,
        length_mode: LengthMode = "error",
        device: str | torch.device | None = None,
    ) -> None:
        self.model = as_module(model)
        self.batch_size = int(batch_size)
        self.length_mode: LengthMode = length_mode
        self.device = torch.device(device) if device is not None else model_device(self.model)

    # -- to implement ------------------------------------------------------------------------
    def _attribute(self, net: nn.Module, x: torch.Tensor, target: int, rc: bool, **options: Any) -> torch.Tensor:
        """Attributions of one batch; ``rc``: ``x`` is the reverse complement of the sequences."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------
    def _target(self, target: int | None, X: torch.Tensor) -> int:
        with evaluating(self.model), torch.no_grad():
            n_out = int(torch.atleast_2d(self.model(X[:1].to(self.device))).shape[-1])
        if target is None:
            if n_out != 1:
                raise ConfigError(f"the model has {n_out} outputs: give target=INDEX")
            return 0
        if not -n_out <= int(target) < n_out:
            raise ConfigError(f"target {target} does not exist: the model has {n_out} output(s)")
        return int(target) % n_out

    def _network(self, rc: bool) -> nn.Module:
        """The module Captum sees: the model, one strand of it, or its module graph for DeepLIFT."""
        if self.needs_modules:
            from biodl.explain.saturation_mutagenesis import conv_pool_parts

            parts = conv_pool_parts(self.model)
            if parts is not None:
                return _ConvPoolGraph(self.model, parts)
        return _Single(self.model) if rc else self.model

    def _run(self, inputs: Any, target: int | None, **options: Any) -> torch.Tensor:
        X = fit_length(as_onehot(inputs, name="inputs"), model_length(self.model), self.length_mode).cpu()
        t = self._target(target, X)
        rc = is_rc_averaging(self.model)
        outs = []
        with evaluating(self.model), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = self._network(rc)
            for i in range(0, len(X), self.batch_size):
                xb = X[i : i + self.batch_size].to(self.device)
                a = self._attribute(net, xb, t, False, **options)
                if rc:  # the model averages both strands: so do the attributions
                    a = 0.5 * (a + reverse_complement(self._attribute(net, reverse_complement(xb), t, True, **options)))
                outs.append(a.detach().float().cpu())
        return torch.cat(outs)

    def attribute(self, inputs: Any, target: int | None = None) -> torch.Tensor:
        """Attributions ``(N, A, L)`` (float32, CPU) of output ``target`` for one-hot ``inputs`` ``(N, A, L)``.

        ``target`` may be omitted for single-output models.
        """
        return self._run(inputs, target)


class Saliency(SequenceAttribution):
    """Gradients of the output with respect to the one-hot input."""

    name = "saliency"

    def attribute(self, inputs: Any, target: int | None = None, *, abs: bool = False) -> torch.Tensor:
        """Gradients ``(N, A, L)``; ``abs=True`` gives their magnitude (Captum's default)."""
        return self._run(inputs, target, abs=abs)

    def _attribute(self, net: nn.Module, x: torch.Tensor, target: int, rc: bool, **options: Any) -> torch.Tensor:
        from captum.attr import Saliency as _Saliency

        return _Saliency(net).attribute(x, target=target, abs=bool(options.get("abs", False)))  # type: ignore[no-any-return]


class InputXGradient(SequenceAttribution):
    """Gradient × input: the gradient at the observed letters."""

    name = "ixg"

    def _attribute(self, net: nn.Module, x: torch.Tensor, target: int, rc: bool, **options: Any) -> torch.Tensor:
        from captum.attr import InputXGradient as _IxG

        return _IxG(net).attribute(x, target=target)  # type: ignore[no-any-return]


def _baseline(x: torch.Tensor, baselines: Baseline | torch.Tensor, seed: int, rc: bool) -> torch.Tensor:
    if isinstance(baselines, torch.Tensor):
        b = baselines.to(x.device, x.dtype)
        b = b.expand_as(x) if b.ndim == 2 or b.shape[0] == 1 else b
        return reverse_complement(b) if rc else b
    if baselines == "zeros":
        return torch.zeros_like(x)
    if baselines == "uniform":
        return torch.full_like(x, 1.0 / x.shape[1])
    if baselines == "shuffle":
        # shuffles of the forward strand, so both strands are explained against the same references
        ref = dinucleotide_shuffled(reverse_complement(x) if rc else x, 1, seed)[0]
        return reverse_complement(ref) if rc else ref
    raise ConfigError(f"baselines must be 'zeros', 'uniform', 'shuffle' or a tensor, got {baselines!r}")


class IntegratedGradients(SequenceAttribution):
    """Integrated gradients from a reference.

    The attributions sum to ``f(x) - f(reference)`` (completeness), up to the integral's
    discretisation (``n_steps``).
    """

    name = "ig"

    def attribute(
        self, inputs: Any, target: int | None = None, *, baselines: Baseline | torch.Tensor = "zeros", n_steps: int = 50,
        seed: int = 0,
    ) -> torch.Tensor:  # fmt: skip
        """Attributions ``(N, A, L)``.

        Parameters
        ----------
        baselines
            ``zeros`` (all-``N`` sequence), ``uniform`` (1/A everywhere), ``shuffle`` (one
            dinucleotide shuffle of each sequence, seeded by ``seed``) or a tensor ``(A, L)`` /
            ``(N, A, L)``.
        n_steps
            Steps of the Gauss-Legendre path integral.
        """
        return self._run(inputs, target, baselines=baselines, n_steps=n_steps, seed=seed)

    def _attribute(self, net: nn.Module, x: torch.Tensor, target: int, rc: bool, **options: Any) -> torch.Tensor:
        from captum.attr import IntegratedGradients as _IG

        b = _baseline(x, options.get("baselines", "zeros"), int(options.get("seed", 0)), rc)
        return _IG(net).attribute(x, baselines=b, target=target, n_steps=int(options.get("n_steps", 50)))  # type: ignore[no-any-return]


class DeepLift(SequenceAttribution):
    """DeepLIFT (rescale rule) against one dinucleotide-shuffled reference per sequence (or ``baselines``)."""

    name = "deeplift"
    needs_modules = True

    def attribute(
        self, inputs: Any, target: int | None = None, *, baselines: Baseline | torch.Tensor = "shuffle", seed: int = 0
    ) -> torch.Tensor:
        """Attributions ``(N, A, L)`` summing to ``f(x) - f(reference)``."""
        return self._run(inputs, target, baselines=baselines, seed=seed)

    def _attribute(self, net: nn.Module, x: torch.Tensor, target: int, rc: bool, **options: Any) -> torch.Tensor:
        from captum.attr import DeepLift as _DeepLift

        b = _baseline(x, options.get("baselines", "shuffle"), int(options.get("seed", 0)), rc)
        return _DeepLift(net).attribute(x, baselines=b, target=target)  # type: ignore[no-any-return]


class DeepLiftShap(SequenceAttribution):
    """DeepLIFT averaged over ``n_shuffles`` dinucleotide-shuffled references of each sequence (DeepSHAP)."""

    name = "deeplift_shap"
    needs_modules = True

    def attribute(self, inputs: Any, target: int | None = None, *, n_shuffles: int = 20, seed: int = 0) -> torch.Tensor:
        """Attributions ``(N, A, L)``, the mean over the references (each summing to ``f(x) - f(ref)``)."""
        return self._run(inputs, target, n_shuffles=n_shuffles, seed=seed)

    def _attribute(self, net: nn.Module, x: torch.Tensor, target: int, rc: bool, **options: Any) -> torch.Tensor:
        from captum.attr import DeepLift as _DeepLift

        n_shuffles, seed = int(options.get("n_shuffles", 20)), int(options.get("seed", 0))
        fwd = reverse_complement(x) if rc else x
        refs = dinucleotide_shuffled(fwd, n_shuffles, seed)  # (K, n, A, L)
        if rc:
            refs = reverse_complement(refs)
        K, n = refs.shape[:2]
        xs = x[None].expand(K, *x.shape).reshape(K * n, *x.shape[1:])
        attr = _DeepLift(net).attribute(xs, baselines=refs.reshape(K * n, *x.shape[1:]), target=target)
        return attr.reshape(K, n, *x.shape[1:]).mean(0)  # type: ignore[no-any-return]


#: CLI method names → classes (``ism`` is :func:`~biodl.explain.saturation_mutagenesis`).
METHODS: dict[str, type[SequenceAttribution]] = {
    "saliency": Saliency,
    "ixg": InputXGradient,
    "ig": IntegratedGradients,
    "deeplift": DeepLiftShap,
}
