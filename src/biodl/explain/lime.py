"""LIME for images (Ribeiro et al. 2016): Captum's :class:`captum.attr.Lime` on scikit-image superpixels.

The image is cut into superpixels (SLIC or quickshift), which become Captum's ``feature_mask``; Captum
hides random subsets of them (set to 0, the training mean after standardisation), scores the perturbed
images in batches and fits a weighted ridge regression of the scores on the on/off pattern, which gives
each superpixel its weight (LIME's exponential kernel on the cosine distance of the on/off pattern).
The number of samples defaults to ``clip(8 × superpixels, 100, 2000)``
so that every superpixel is switched on and off often enough. Kang et al. use LIME's
superpixel highlights to show which image parts support a label set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from biodl.explain.image_base import Explainer


def default_samples(n_superpixels: int) -> int:
    """Samples used when ``n_samples`` is not given."""
    return int(np.clip(8 * n_superpixels, 100, 2000))


def superpixels(x: torch.Tensor, method: Literal["slic", "quickshift"] = "slic", n_segments: int = 50) -> np.ndarray:
    """``(H, W)`` superpixel labels ``0..S-1`` of one image ``(C, H, W)`` (any intensity scale)."""
    from skimage.segmentation import quickshift, slic

    img = x.detach().cpu().float().numpy()
    lo = img.min(axis=(1, 2), keepdims=True)
    hi = img.max(axis=(1, 2), keepdims=True)
    img = (img - lo) / np.maximum(hi - lo, 1e-8)
    hwc = np.moveaxis(img, 0, -1)
    c = hwc.shape[-1]
    if method == "quickshift":
        rgb = np.repeat(hwc, 3, axis=-1) if c == 1 else hwc[..., :3]
        labels = quickshift(rgb.astype(np.float64), kernel_size=3, max_dist=6, ratio=0.5)
    elif c == 3:
        labels = slic(hwc, n_segments=n_segments, compactness=10.0, start_label=0, channel_axis=-1)
    else:
        labels = slic(hwc, n_segments=n_segments, compactness=0.1, start_label=0, channel_axis=-1, convert2lab=False)
    _, labels = np.unique(labels, return_inverse=True)
    return labels.reshape(img.shape[1:]).astype(np.int64)


class LimeImage(Explainer):
    """LIME on superpixels; ``attribute(inputs, target)`` → ``(N, 1, H, W)`` superpixel weights.

    Parameters
    ----------
    model
        Classifier or segmentation network (the latter explained through its predicted region).
    segmenter
        ``slic`` or ``quickshift``.
    n_segments
        SLIC's target number of superpixels.
    n_samples
        Perturbed images per explanation (default :func:`default_samples`).
    batch_size
        Perturbed images per forward pass.
    kernel_width
        Width of LIME's exponential kernel on the cosine distance to the original.
    seed
        Random seed of the perturbations.
    """

    name: ClassVar[str] = "lime"

    def __init__(
        self,
        model: nn.Module,
        *,
        segmenter: Literal["slic", "quickshift"] = "slic",
        n_segments: int = 50,
        n_samples: int | None = None,
        batch_size: int = 64,
        kernel_width: float = 0.25,
        seed: int = 0,
        class_index: int = 1,
    ) -> None:
        super().__init__(model, class_index=class_index)
        self.segmenter = segmenter
        self.n_segments = n_segments
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.kernel_width = kernel_width
        self.seed = seed
        #: Superpixels of the last explained image.
        self.last_segments: np.ndarray | None = None

    def _one(self, fwd: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, target: int, **kwargs: Any) -> torch.Tensor:
        from captum._utils.models.linear_model import SkLearnRidge
        from captum.attr import Lime

        seg = superpixels(x[0], self.segmenter, self.n_segments)
        self.last_segments = seg
        s = int(seg.max()) + 1
        n = self.n_samples or default_samples(s)
        mask = torch.from_numpy(seg)[None, None]  # (1, 1, H, W): the same superpixels on every channel
        lime = Lime(fwd, interpretable_model=SkLearnRidge(alpha=1.0), similarity_func=self._similarity)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(self.seed)
            attr = lime.attribute(
                x,
                target=target,
                baselines=0.0,
                feature_mask=mask,
                n_samples=n,
                perturbations_per_eval=self.batch_size,
                return_input_shape=False,
            )
        coef = attr.detach().float().reshape(-1)[:s]  # (S,) one weight per superpixel
        return coef[torch.from_numpy(seg)][None, None]

    def _similarity(self, original: Any, perturbed: Any, interpretable: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """LIME's kernel on the cosine distance between the on/off pattern and all-on (the original image)."""
        z = interpretable.float().reshape(-1)
        on = z.sum()
        cosine = 1.0 - on / (torch.sqrt(on.clamp_min(1e-12)) * math.sqrt(z.numel()))
        return torch.sqrt(torch.exp(-(cosine**2) / self.kernel_width**2))
