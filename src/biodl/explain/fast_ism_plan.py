"""Models seen as local layers → a global tail: the plan that Fast-ISM propagates mutations through.

Recognised (:func:`local_plan`): ``nn.Sequential`` models and biodl's Basset and DeepSEA
(``conv`` stack → ``dense`` → ``head``, both strands when they average them). Local layers are
``Conv1d`` (any width, stride, dilation, groups; zero padding), ``MaxPool1d``/``AvgPool1d``
(no ``ceil_mode``), constant padding and point-wise modules (activations, eval-mode batch norm
and dropout). A plan is simplified into the same function with fewer element-wise passes (zero
padding merged into the next layer, eval batch norms folded into the convolution before them, a
ReLU before a max pooling moved after it) and cached per model while its tensors and modes are
unchanged. Used by :mod:`biodl.explain.fast_ism`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from biodl.explain._common import as_module, is_rc_averaging

__all__ = ["LocalLayer", "LocalPlan", "local_plan"]

_POINTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Identity, nn.Dropout, nn.BatchNorm1d,
)  # fmt: skip


class LocalLayer(NamedTuple):
    """One layer whose output position ``o`` depends on input positions ``o S - P + [0, K)``.

    Attributes
    ----------
    op
        Applied to a gathered input window without padding: ``(B, C, (w - 1) S + K) → (B, C', w)``.
    span, stride, pad_left
        ``K``, ``S`` and ``P`` above.
    pad_right
        Padding right of the input (the output length is ``(L + P + pad_right - K) // S + 1``).
    fill
        The padding value outside the input (0, or ``-inf`` for max pooling).
    after
        Point-wise modules applied to the output.
    conv
        A stride-1, one-group convolution: its window is the wild type's plus the convolution of
        the input window's change (linear, so only taps that touch a changed column cost).
    """

    op: Callable[[torch.Tensor], torch.Tensor]
    span: int
    stride: int
    pad_left: int
    pad_right: int
    fill: float
    after: tuple[nn.Module, ...]
    conv: nn.Conv1d | None = None


class LocalPlan(NamedTuple):
    """A model seen as local layers → a global tail (``(M, C, L) → (M, T)``).

    When the tail starts with ``Flatten → Linear`` (Basset, DeepSEA, most CNNs), ``linear`` is that
    layer and ``post`` the rest: a mutant's pre-activations are the wild type's plus the weights of
    its changed window times the change (the unchanged positions are reused, not recomputed).
    """

    layers: tuple[LocalLayer, ...]
    tail: Callable[[torch.Tensor], torch.Tensor]
    rc_average: bool
    linear: nn.Linear | None = None
    post: Callable[[torch.Tensor], torch.Tensor] | None = None


def _flatten(mods: Any) -> list[nn.Module]:
    out: list[nn.Module] = []
    for m in mods:
        out.extend(_flatten(m) if isinstance(m, nn.Sequential) else [m])
    return out


def _one(v: Any) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def _as_local(m: nn.Module) -> LocalLayer | None:
    """``m`` as a local layer, or ``None`` when it is not one (point-wise modules are handled by the caller)."""
    if isinstance(m, (nn.ConstantPad1d, nn.ZeroPad1d)):
        return LocalLayer(lambda x: x, 1, 1, int(m.padding[0]), int(m.padding[1]), float(getattr(m, "value", 0.0)), ())
    if isinstance(m, nn.Conv1d):
        if m.padding_mode != "zeros":
            return None
        k, d, s = m.kernel_size[0], m.dilation[0], m.stride[0]
        span = (k - 1) * d + 1
        if m.padding == "valid":
            left = right = 0
        elif m.padding == "same":
            left, right = (span - 1) // 2, span - 1 - (span - 1) // 2
        else:
            left = right = _one(m.padding)
        conv = m

        def op(x: torch.Tensor) -> torch.Tensor:
            bias = None if conv.bias is None else conv.bias.to(x.dtype)
            return F.conv1d(x, conv.weight.to(x.dtype), bias, s, 0, d, conv.groups)

        return LocalLayer(
            op,
            span, s, left, right, 0.0, (), m if (s == 1 and m.groups == 1) else None,
        )  # fmt: skip
    if isinstance(m, nn.MaxPool1d):
        if m.ceil_mode or m.return_indices:
            return None
        k, s, d, p = _one(m.kernel_size), _one(m.stride), _one(m.dilation), _one(m.padding)
        return LocalLayer(lambda x: F.max_pool1d(x, k, s, 0, d), (k - 1) * d + 1, s, p, p, float("-inf"), ())
    if isinstance(m, nn.AvgPool1d):
        k, s, p = _one(m.kernel_size), _one(m.stride), _one(m.padding)
        if m.ceil_mode or (p > 0 and not m.count_include_pad):
            return None
        return LocalLayer(lambda x: F.avg_pool1d(x, k, s, 0), k, s, p, p, 0.0, ())
    return None


def _folded(conv: nn.Conv1d, bn: nn.BatchNorm1d) -> nn.Conv1d | None:
    """``conv`` followed by eval-mode ``bn`` as one convolution (``None`` when ``bn`` has no running statistics)."""
    if bn.training or bn.running_mean is None or bn.running_var is None or conv.padding_mode != "zeros":
        return None
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight
        shift = -bn.running_mean * scale + (bn.bias if bn.bias is not None else 0.0)
        bias = shift if conv.bias is None else conv.bias * scale + shift
        new = nn.Conv1d(
            conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride[0], conv.padding, conv.dilation[0],  # type: ignore[arg-type]
            conv.groups, bias=True, device=conv.weight.device, dtype=conv.weight.dtype,
        )  # fmt: skip
        new.weight = nn.Parameter((conv.weight * scale[:, None, None]).detach().clone(), requires_grad=False)
        new.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)
    return new.eval()


def _simplified(layers: list[LocalLayer]) -> list[LocalLayer]:
    """The same functions with fewer element-wise passes: zero padding merged into the next layer, eval batch norms
    folded into the convolution before them, and a ReLU before a max pooling moved after it (``max ∘ relu = relu ∘
    max``, exactly)."""
    out: list[LocalLayer] = []
    for layer in layers:
        prev = out[-1] if out else None
        if (
            prev is not None and prev.conv is None and prev.span == 1 and prev.stride == 1 and not prev.after
            and prev.fill == 0.0 and (layer.fill == 0.0 or not (layer.pad_left or layer.pad_right))
        ):  # fmt: skip  # zero padding, then a layer: one layer with the padding
            out.pop()
            layer = layer._replace(pad_left=layer.pad_left + prev.pad_left, pad_right=layer.pad_right + prev.pad_right, fill=0.0)
        if layer.conv is not None and layer.after and isinstance(layer.after[0], nn.BatchNorm1d):
            conv = _folded(layer.conv, layer.after[0])
            local = _as_local(conv) if conv is not None else None
            if local is not None:
                layer = local._replace(after=layer.after[1:], pad_left=layer.pad_left, pad_right=layer.pad_right, fill=layer.fill)
        out.append(layer)
    for i in range(len(out) - 1):
        after, nxt = out[i].after, out[i + 1]
        j = len(after)
        while j > 0 and isinstance(after[j - 1], (nn.Identity, nn.Dropout)):
            j -= 1
        if j > 0 and type(after[j - 1]) is nn.ReLU and nxt.fill == float("-inf") and nxt.conv is None and nxt.span > 1:
            out[i] = out[i]._replace(after=after[: j - 1])
            out[i + 1] = nxt._replace(after=(after[j - 1], *nxt.after))
    return out


def _plan_from(mods: list[nn.Module], rc: bool) -> LocalPlan | None:
    layers: list[LocalLayer] = []
    i = 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, _POINTWISE) and not (isinstance(m, nn.BatchNorm1d) and m.training):
            if not layers:
                layers.append(LocalLayer(lambda x: x, 1, 1, 0, 0, 0.0, ()))
            layers[-1] = layers[-1]._replace(after=(*layers[-1].after, m))
            i += 1
            continue
        local = _as_local(m)
        if local is None:
            break
        layers.append(local)
        i += 1
    if not any(layer.span > 1 for layer in layers):
        return None
    layers = _simplified(layers)
    rest = nn.Sequential(*mods[i:])
    nxt = mods[i + 1] if len(mods) > i + 1 else None
    flat = mods[i] if i < len(mods) else None
    if isinstance(flat, nn.Flatten) and flat.start_dim == 1 and flat.end_dim == -1 and isinstance(nxt, nn.Linear):
        return LocalPlan(tuple(layers), rest, rc, nxt, nn.Sequential(*mods[i + 2 :]))
    return LocalPlan(tuple(layers), rest, rc)


#: Plans per model (entries go with the model): ``model → (fingerprint, plan)``; plans hold no reference to the model.
_PLANS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[Any, ...], LocalPlan | None]] = weakref.WeakKeyDictionary()


def _fingerprint(net: nn.Module) -> tuple[Any, ...] | None:
    """The versions of every parameter and buffer and every module's mode (``None``: not trackable)."""
    tensors = [*net.parameters(), *net.buffers()]
    if any(t.is_inference() for t in tensors):
        return None
    return (*(t._version for t in tensors), *(m.training for m in net.modules()))


def local_plan(model: Any) -> LocalPlan | None:
    """Describe ``model`` as local layers → global tail, or ``None`` when it has no local convolution.

    Recognised structurally: ``nn.Sequential`` models and biodl's Basset and DeepSEA. Plans (with their
    folded convolutions, so the FFT spectra too) are reused while the model's tensors and modes are unchanged.
    """
    net = as_module(model)
    key = _fingerprint(net)
    hit = _PLANS.get(net)
    if key is not None and hit is not None and hit[0] == key:
        return hit[1]
    plan = _build_plan(net)
    if key is not None:
        _PLANS[net] = (key, plan)
    return plan


def _build_plan(net: nn.Module) -> LocalPlan | None:
    from biodl.models.basset import Basset
    from biodl.models.deepsea import DeepSEA

    if isinstance(net, (Basset, DeepSEA)) and all(isinstance(m, nn.Sequential) for m in (net.conv, net.dense)):
        return _plan_from([*_flatten(net.conv), *_flatten(net.dense), net.head], is_rc_averaging(net))
    if isinstance(net, nn.Sequential):
        return _plan_from(_flatten(net), False)
    return None
