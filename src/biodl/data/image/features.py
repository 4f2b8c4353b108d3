"""Hand-crafted per-pixel (per-voxel) features for the classical segmentation baseline (ilastik-style).

For every channel: the intensity, Gaussian smoothings (σ = 1, 2, 4), the gradient magnitude
(σ = 1), the Laplacian of Gaussian (σ = 2) and a difference of Gaussians (σ 1 − 4) — local
intensity, texture and edge evidence a linear model or random forest can use per pixel. Volumes
get the same filters in 3-D (σ in voxels along every axis), as ilastik computes them.
"""

from __future__ import annotations

import numpy as np

#: Features per channel.
N_FEATURES = 7


def pixel_features(images: np.ndarray) -> np.ndarray:
    """``(N, C·7, *S)`` float32 features of ``(N, C, *S)`` images (``S = (H, W)``) or volumes (``S = (D, H, W)``)."""
    from scipy import ndimage as ndi

    x = np.asarray(images, dtype=np.float32)
    if x.ndim not in (4, 5):
        raise ValueError(f"pixel_features takes (N, C, H, W) images or (N, C, D, H, W) volumes, got {x.shape}")
    n, c = x.shape[:2]
    out = np.empty((n, c * N_FEATURES, *x.shape[2:]), dtype=np.float32)
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
