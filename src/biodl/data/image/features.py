"""Hand-crafted per-pixel features for the classical segmentation baseline (ilastik-style).

For every channel: the intensity, Gaussian smoothings (σ = 1, 2, 4), the gradient magnitude
(σ = 1), the Laplacian of Gaussian (σ = 2) and a difference of Gaussians (σ 1 − 4) — local
intensity, texture and edge evidence a linear model or random forest can use per pixel.
"""

from __future__ import annotations

import numpy as np

#: Features per channel.
N_FEATURES = 7


def pixel_features(images: np.ndarray) -> np.ndarray:
    """``(N, C·7, H, W)`` float32 features of ``(N, C, H, W)`` images."""
    from scipy import ndimage as ndi

    x = np.asarray(images, dtype=np.float32)
    n, c, h, w = x.shape
    out = np.empty((n, c * N_FEATURES, h, w), dtype=np.float32)
    for i in range(n):
        for ch in range(c):
            img = x[i, ch]
            g1 = ndi.gaussian_filter(img, 1.0)
            g2 = ndi.gaussian_filter(img, 2.0)
            g4 = ndi.gaussian_filter(img, 4.0)
            feats = (
                img,
                g1,
                g2,
                g4,
                ndi.gaussian_gradient_magnitude(img, 1.0),
                ndi.gaussian_laplace(img, 2.0),
                g1 - g4,
            )
            for k, f in enumerate(feats):
                out[i, ch * N_FEATURES + k] = f
    return out
