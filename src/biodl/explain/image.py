"""Explanations of image models, Captum-style: one class per method with ``attribute(inputs, target=...)``.

=========================  ==================================================================
:class:`Saliency`          absolute input gradients (Simonyan et al. 2013)
:class:`IntegratedGradients`  path-integrated gradients from a zero (= mean image) baseline
:class:`Occlusion`         score drop when square patches are replaced by the mean (Zeiler & Fergus 2014)
:class:`GradCAM`           gradient-weighted class activation map of a late layer
:class:`~biodl.explain.lime.LimeImage`  LIME on SLIC/quickshift superpixels (``biodl.explain.lime``)
=========================  ==================================================================

All take model inputs ``(N, C, H, W)`` (standardised as for the network) and return per-pixel
maps ``(N, 1, H, W)`` (channels summed; ``reduce_channels=False`` keeps ``(N, C, H, W)`` for
the gradient methods). ``target`` is a class index (or one per image); ``None`` explains the
predicted class (the single logit of a binary classifier). Segmentation models are wrapped by
:class:`SegmentationTarget`, which explains the predicted region: the summed foreground score
inside the mask predicted for the unperturbed image — the target wrapper Captum leaves to its
users.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from biodl.errors import ConfigError
from biodl.explain.image_base import Explainer, SegmentationTarget, Target, is_segmentation
from biodl.explain.lime import LimeImage

#: The shared base class under its former private name.
_Explainer = Explainer

__all__ = [
    "METHODS",
    "GradCAM",
    "IntegratedGradients",
    "LimeImage",
    "Occlusion",
    "Saliency",
    "SegmentationTarget",
    "Target",
    "explain_bundle",
    "is_segmentation",
    "make_explainer",
]


def _reduce(attr: torch.Tensor, reduce_channels: bool, absolute: bool = False) -> torch.Tensor:
    a = attr.abs() if absolute else attr
    return a.sum(dim=1, keepdim=True) if reduce_channels else a


class Saliency(Explainer):
    """|∂ score / ∂ pixel| (Simonyan et al. 2013), Captum's ``Saliency``.

    ``attribute(inputs, target, reduce_channels=True)``.
    """

    name = "saliency"

    def _one(self, fwd: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, target: int, **kwargs: Any) -> torch.Tensor:
        from captum.attr import Saliency as _Saliency

        attr = _Saliency(fwd).attribute(x.requires_grad_(True), target=target, abs=True)
        return _reduce(attr.detach(), kwargs.get("reduce_channels", True))


class IntegratedGradients(Explainer):
    """Integrated gradients from a zero baseline (the training mean after standardisation).

    ``attribute(inputs, target, n_steps=32, reduce_channels=True)``.
    """

    name = "ig"

    def _one(self, fwd: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, target: int, **kwargs: Any) -> torch.Tensor:
        from captum.attr import IntegratedGradients as _IG

        attr = _IG(fwd).attribute(
            x, baselines=torch.zeros_like(x), target=target, n_steps=int(kwargs.get("n_steps", 32)), internal_batch_size=16
        )
        return _reduce(attr.detach(), kwargs.get("reduce_channels", True))


class Occlusion(Explainer):
    """Score drop when a ``window``×``window`` patch is set to 0 (the mean), sliding by ``stride``.

    ``attribute(inputs, target, window=min(H, W) // 7, stride=window // 2, reduce_channels=True)``.
    """

    name = "occlusion"

    def _one(self, fwd: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, target: int, **kwargs: Any) -> torch.Tensor:
        from captum.attr import Occlusion as _Occlusion

        h, w = x.shape[-2:]
        win = int(kwargs.get("window") or max(2, min(h, w) // 7))
        st = int(kwargs.get("stride") or max(1, win // 2))
        attr = _Occlusion(fwd).attribute(
            x,
            sliding_window_shapes=(x.shape[1], win, win),
            strides=(x.shape[1], st, st),
            baselines=0.0,
            target=target,
            perturbations_per_eval=32,
        )
        return _reduce(attr.detach(), kwargs.get("reduce_channels", True))


class GradCAM(Explainer):
    """Grad-CAM (Selvaraju et al. 2017) on ``layer`` (default: the model's ``gradcam_layer()``), upsampled to the input.

    An ensemble (``members``, e.g. ``--ensemble-size``) without a layer of its own is explained on all
    its members' layers at once: the ensemble's score, its gradients through every member's maps,
    the weighted maps summed over members (Grad-CAM on the members' channels side by side).
    """

    name = "gradcam"

    def __init__(self, model: nn.Module, layer: nn.Module | None = None, *, class_index: int = 1) -> None:
        super().__init__(model, class_index=class_index)
        self.layers = [layer] if layer is not None else default_gradcam_layers(model)

    @property
    def layer(self) -> nn.Module:
        """The (first) layer explained."""
        return self.layers[0]

    def _one(self, fwd: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, target: int, **kwargs: Any) -> torch.Tensor:
        from captum.attr import LayerGradCam

        cams = []
        for layer in self.layers:
            cam = LayerGradCam(fwd, layer).attribute(x, target=target, relu_attributions=False).detach().float()
            cams.append(cam.sum(dim=1, keepdim=True) if cam.ndim == 4 and cam.shape[1] != 1 else cam)
        if all(c.shape == cams[0].shape for c in cams):  # one map size: sum, ReLU, upsample (Grad-CAM's order)
            return F.interpolate(F.relu(sum(cams[1:], cams[0])), size=x.shape[-2:], mode="bilinear", align_corners=False)
        ups = [F.interpolate(c, size=x.shape[-2:], mode="bilinear", align_corners=False) for c in cams]
        return F.relu(sum(ups[1:], ups[0]))


def default_gradcam_layers(model: nn.Module) -> list[nn.Module]:
    """The model's ``gradcam_layer()``, or every member's for an ensemble of networks that have one."""
    getter = getattr(model, "gradcam_layer", None)
    if callable(getter):
        chosen = getter()
        assert isinstance(chosen, nn.Module)
        return [chosen]
    members = getattr(model, "members", None)
    getters = [getattr(m, "gradcam_layer", None) for m in members] if isinstance(members, nn.ModuleList) else []
    if getters and all(callable(g) for g in getters):
        return [g() for g in getters]  # type: ignore[misc]
    raise ConfigError(f"{type(model).__name__} has no default Grad-CAM layer; pass layer=")


#: ``biodl explain --method`` names.
METHODS: dict[str, Callable[..., Any]] = {
    "saliency": Saliency,
    "ig": IntegratedGradients,
    "integrated_gradients": IntegratedGradients,
    "occlusion": Occlusion,
    "gradcam": GradCAM,
    "lime": LimeImage,
}


def make_explainer(method: str, model: nn.Module, **kwargs: Any) -> Any:
    """An explainer by ``biodl explain`` method name."""
    key = method.lower().replace("-", "_")
    if key not in METHODS:
        raise ConfigError(f"unknown explanation method {method!r}; choose one of: saliency, ig, occlusion, gradcam, lime")
    return METHODS[key](model, **kwargs)


def explain_bundle(
    bundle: Any,
    data: Any,
    method: str,
    output_dir: str | Path,
    *,
    target: int | None = None,
    max_images: int = 8,
    **options: Any,
) -> dict[str, Any]:
    """Explain a saved image model on loaded images; what ``biodl explain`` runs for image bundles.

    Writes ``<method>_maps.tif`` (float32 maps ``(N, H, W)``), ``<method>.png`` (images with their
    heat maps) and ``explanations.json`` (per-image ids, target and the share of absolute
    attribution inside the predicted foreground for segmentation models).

    Parameters
    ----------
    bundle
        A loaded :class:`~biodl.bundle.Bundle` of the ``image`` data type.
    data
        :class:`~biodl.data.base.LoadedData` read with the bundle's modality.
    method
        ``saliency``, ``ig``, ``occlusion``, ``gradcam`` or ``lime``.
    target
        Class index to explain (default: the predicted class; the foreground for segmentation).
    max_images
        Explain at most this many images (the first ones).
    """
    import json

    import numpy as np
    import tifffile

    from biodl.explain.visual import plot_attributions
    from biodl.io_utils import atomic_write_text

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = min(max_images, len(data))
    X = bundle.modality.transform(data.X[:n])
    model = bundle.model.eval()
    kwargs = {"class_index": target} if is_segmentation(model) and target is not None else {}
    explainer = make_explainer(method, model, **kwargs, **options)
    inputs = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    maps = explainer.attribute(inputs, target=None if is_segmentation(model) else target)
    arr = maps[:, 0].detach().cpu().numpy().astype(np.float32)
    tifffile.imwrite(out / f"{method}_maps.tif", arr)
    ids = [str(i) for i in data.ids[:n]]
    plot_attributions(data.X[:n], arr[:, None], out / f"{method}.png", titles=ids, method=method)
    summary: dict[str, Any] = {"method": method, "target": target, "images": ids, "maps": f"{method}_maps.tif"}
    atomic_write_text(out / "explanations.json", json.dumps(summary, indent=1))
    return summary


def bundle_data_type(model_path: str | Path) -> str | None:
    """The data type of a saved model, read from its ``bundle.json`` (``None`` if unreadable)."""
    import json

    from biodl.bundle import META, resolve_bundle_dir

    try:
        meta = json.loads((resolve_bundle_dir(model_path) / META).read_text())
        return str(meta["data"]["type"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cmd_explain_images(args: Any) -> int:
    """``biodl explain`` for image models: ``--method`` (default gradcam), ``--target`` (class name or
    index), ``--plots`` images (default 10) → ``OUTPUT_DIR/<method>.png``, ``<method>_maps.tif``."""
    from biodl.bundle import load
    from biodl.inference import load_data

    method = args.method or "gradcam"
    if method not in ("saliency", "ig", "occlusion", "gradcam", "lime"):
        raise ConfigError(f"--method {method}: image models take saliency, ig, occlusion, gradcam or lime")
    bundle = load(args.model_path)
    data = load_data(bundle, list(args.data_path), {}, require_targets=False)
    target: int | None = None
    if args.target is not None:
        names = list(bundle.classes or [])
        if args.target in names:
            target = names.index(args.target)
            if bundle.kind == "binary":
                target = 0  # one logit: explaining it explains the positive class
        elif str(args.target).lstrip("-").isdigit():
            target = int(args.target)
        else:
            raise ConfigError(f"--target {args.target!r}: not a class of the model ({names})")
    n = max(1, min(int(getattr(args, "plots", 10) or 10), int(getattr(args, "max_sequences", 10) or 10)))
    summary = explain_bundle(bundle, data, method, args.output_dir, target=target, max_images=n)
    print(f"{method} maps of {len(summary['images'])} image(s) written to {args.output_dir}")
    return 0
