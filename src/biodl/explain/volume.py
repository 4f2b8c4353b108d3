"""Explanations of 3-D models (volumes and time-lapse clips), Captum-style: one class per method.

=========================  ==================================================================
:class:`Saliency3D`        absolute input gradients per voxel
:class:`Occlusion3D`       score drop when cubes are replaced by the mean (Zeiler & Fergus 2014)
:class:`GradCAM3D`         gradient-weighted class activation map of a late layer, upsampled
                           trilinearly (per frame for the time-lapse network's 2-D encoder)
=========================  ==================================================================

All take model inputs ``(N, C, D, H, W)`` and return maps ``(N, 1, D, H, W)``. ``target`` is a
class index (or one per volume); ``None`` explains the predicted class (the single logit of a
binary classifier).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from biodl.errors import ConfigError
from biodl.explain._common import undo_view

Target = int | torch.Tensor | None


class _Explainer3D:
    name: ClassVar[str] = ""

    def __init__(self, model: nn.Module) -> None:
        if getattr(model, "tasks", ()) == ("segmentation",):
            raise ConfigError("explanations of 3-D segmentation models are not supported; explain a classifier")
        self.model = model

    def attribute(self, inputs: torch.Tensor, target: Target = None, **kwargs: Any) -> torch.Tensor:
        """Maps ``(N, 1, D, H, W)`` of volumes ``(N, C, D, H, W)``."""
        if inputs.ndim != 5:
            raise ConfigError(f"volume explanations need (N, C, D, H, W) inputs, got {tuple(inputs.shape)}")
        was_training = self.model.training
        self.model.eval()
        try:
            maps = []
            for i in range(len(inputs)):
                x = inputs[i : i + 1].detach().float()
                with torch.no_grad():
                    scores = self.model(x)
                if target is None:
                    t = 0 if scores.shape[1] == 1 else int(scores.argmax(dim=1)[0])
                else:
                    t = int(target) if isinstance(target, int) else int(target[i])
                maps.append(self._one(x, t, **kwargs))
            return torch.cat(maps)
        finally:
            self.model.train(was_training)

    def _one(self, x: torch.Tensor, target: int, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError


class Saliency3D(_Explainer3D):
    """|∂ score / ∂ voxel|, channels summed."""

    name = "saliency"

    def _one(self, x: torch.Tensor, target: int, **kwargs: Any) -> torch.Tensor:
        from captum.attr import Saliency

        return Saliency(self.model).attribute(x.requires_grad_(True), target=target, abs=True).detach().sum(1, keepdim=True)


class Occlusion3D(_Explainer3D):
    """Score drop when a cube of ``window`` voxels is set to 0 (the training mean), sliding by ``stride``.

    ``attribute(inputs, target, window=max(2, min(D, H, W) // 4), stride=window // 2)``.
    """

    name = "occlusion"

    def _one(self, x: torch.Tensor, target: int, **kwargs: Any) -> torch.Tensor:
        from captum.attr import Occlusion

        d, h, w = x.shape[-3:]
        win = int(kwargs.get("window") or max(2, min(d, h, w) // 4))
        st = int(kwargs.get("stride") or max(1, win // 2))
        c = x.shape[1]
        attr = Occlusion(self.model).attribute(
            x,
            sliding_window_shapes=(c, min(win, d), min(win, h), min(win, w)),
            strides=(c, st, st, st),
            baselines=0.0,
            target=target,
            perturbations_per_eval=16,
        )
        return attr.detach().sum(1, keepdim=True)


class GradCAM3D(_Explainer3D):
    """Grad-CAM on ``layer`` (default: the model's ``gradcam_layer()``), upsampled to ``(D, H, W)``.

    A network that averages test-time views (``tta``) gets the mean of its views' maps, each moved
    back onto the volume; an ensemble (``--ensemble-size``) the mean of its members' maps.
    """

    name = "gradcam"

    def __init__(self, model: nn.Module, layer: nn.Module | None = None) -> None:
        super().__init__(model)
        members = getattr(model, "members", None)
        if layer is None and not callable(getattr(model, "gradcam_layer", None)) and isinstance(members, nn.ModuleList):
            self.parts = [GradCAM3D(m) for m in members]
            return
        self.parts = []
        getter = getattr(model, "gradcam_layer", None)
        if layer is None and not callable(getter):
            raise ConfigError(f"{type(model).__name__} has no default Grad-CAM layer; pass layer=")
        chosen = layer if layer is not None else getter()  # type: ignore[misc]
        assert isinstance(chosen, nn.Module)
        self.layer = chosen

    def _one(self, x: torch.Tensor, target: int, **kwargs: Any) -> torch.Tensor:
        """The map of ``x`` ``(1, C, D, H, W)``; for a model with test-time views (``tta``), the mean of
        each view's map, moved back onto ``x`` (the layer runs once per view)."""
        from captum.attr import LayerGradCam

        if self.parts:
            return sum((part._one(x, target) for part in self.parts), torch.zeros(())) / len(self.parts)
        views = _test_time_views(self.model)
        forward = getattr(self.model, "forward_logits", self.model) if len(views) > 1 else self.model
        total = torch.zeros((), dtype=torch.float32)
        for view in views:
            cam = LayerGradCam(forward, self.layer).attribute(view(x), target=target, relu_attributions=True).detach().float()
            if cam.ndim == 4:  # a 2-D layer applied per frame: (T, 1, h, w) → (1, 1, T, h, w)
                cam = cam.sum(1, keepdim=True).permute(1, 0, 2, 3)[None]
            elif cam.shape[1] != 1:
                cam = cam.sum(1, keepdim=True)
            cam = F.interpolate(cam, size=tuple(x.shape[-3:]), mode="trilinear", align_corners=False)
            total = total + undo_view(view, cam)
        # the model's score is the views' mean, so its Grad-CAM is the mean of theirs
        return total / len(views)


def _test_time_views(model: nn.Module) -> list[Any]:
    """The views a volume model averages in evaluation (``params.tta``), identity first; ``[identity]`` without."""
    tta = getattr(getattr(model, "params", None), "tta", "none")
    in_shape = getattr(model, "in_shape", None)
    if tta == "none" or in_shape is None or not callable(getattr(model, "forward_logits", None)):
        return [lambda v: v]
    from biodl.models.vision.volume_base import tta_views

    return list(tta_views(in_shape, dihedral=tta == "dihedral"))


#: ``biodl explain --method`` names for volume models.
METHODS: dict[str, type[_Explainer3D]] = {"saliency": Saliency3D, "occlusion": Occlusion3D, "gradcam": GradCAM3D}


def explain_volume_bundle(
    bundle: Any, data: Any, method: str, output_dir: str | Path, *, target: int | None = None, max_volumes: int = 8
) -> dict[str, Any]:
    """Explain a saved volume model; what ``biodl explain`` runs for volume bundles.

    Writes ``<method>_maps.tif`` (float32 ``(N, D, H, W)``), ``<method>.png`` (the middle plane of
    each volume next to its map) and ``explanations.json``.
    """
    import tifffile

    from biodl.io_utils import atomic_write_text

    if method not in METHODS:
        raise ConfigError(f"--method {method}: volume models take {', '.join(METHODS)}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = min(max_volumes, len(data))
    X = bundle.modality.transform(data.X[:n])
    maps = METHODS[method](bundle.model.eval()).attribute(
        torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), target=target
    )
    arr = maps[:, 0].cpu().numpy().astype(np.float32)
    tifffile.imwrite(out / f"{method}_maps.tif", arr)
    ids = [str(i) for i in data.ids[:n]]
    _plot_middle_planes(np.asarray(data.X[:n]), arr, out / f"{method}.png", ids, method)
    # where the attribution sits along the stack axis (depth or time): share per plane
    per_plane = np.abs(arr).sum(axis=(2, 3))
    share = (per_plane / np.maximum(per_plane.sum(axis=1, keepdims=True), 1e-12)).round(4).tolist()
    summary: dict[str, Any] = {
        "method": method,
        "target": target,
        "volumes": ids,
        "maps": f"{method}_maps.tif",
        "share_per_plane": share,
    }
    atomic_write_text(out / "explanations.json", json.dumps(summary, indent=1))
    return summary


def _plot_middle_planes(X: np.ndarray, maps: np.ndarray, path: Path, ids: list[str], method: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(maps)
    fig, axes = plt.subplots(n, 2, figsize=(4, 2 * n), squeeze=False)
    for i in range(n):
        k = int(np.abs(maps[i]).sum(axis=(1, 2)).argmax())  # the plane with the most attribution
        axes[i, 0].imshow(X[i, 0, k], cmap="gray")
        axes[i, 0].set_title(f"{ids[i]} plane {k}", fontsize=7)
        axes[i, 1].imshow(X[i, 0, k], cmap="gray")
        axes[i, 1].imshow(maps[i, k], cmap="inferno", alpha=0.6)
        axes[i, 1].set_title(method, fontsize=7)
        for a in axes[i]:
            a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def cmd_explain_volumes(args: Any) -> int:
    """``biodl explain`` for volume models: ``--method`` (default gradcam; saliency, occlusion), ``--target``
    (class name or index), ``--plots`` volumes (default 10) → ``OUTPUT_DIR/<method>.png``, ``<method>_maps.tif``."""
    from biodl.bundle import load
    from biodl.inference import load_data

    method = args.method or "gradcam"
    bundle = load(args.model_path)
    data = load_data(bundle, list(args.data_path), {}, require_targets=False)
    target: int | None = None
    if args.target is not None:
        names = list(bundle.classes or [])
        if args.target in names:
            target = 0 if bundle.kind == "binary" else names.index(args.target)
        elif str(args.target).lstrip("-").isdigit():
            target = int(args.target)
        else:
            raise ConfigError(f"--target {args.target!r}: not a class of the model ({names})")
    n = max(1, int(getattr(args, "plots", 10) or 10))
    summary = explain_volume_bundle(bundle, data, method, args.output_dir, target=target, max_volumes=n)
    print(f"{method} maps of {len(summary['volumes'])} volume(s) written to {args.output_dir}")
    return 0
