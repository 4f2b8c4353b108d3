"""The two-step learner on images: any image network predicts the latent labels, LIME explains a latent unit."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from biodl.explain.latent import explain_image_latent
from biodl.multilabel.twostep import TwoStepLearner


def _quadrant_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey 24×24 images with bright 8×8 squares in random quadrants; labels: the 4 quadrants, 'top', 'left'."""
    rng = np.random.default_rng(seed)
    present = rng.random((n, 4)) < 0.5
    X = (0.1 * rng.random((n, 1, 24, 24))).astype(np.float32)
    for q in range(4):
        r, c = divmod(q, 2)
        X[present[:, q], 0, 2 + 12 * r : 10 + 12 * r, 2 + 12 * c : 10 + 12 * c] += 1.0
    top = present[:, 0] | present[:, 1]
    left = present[:, 0] | present[:, 2]
    return X, np.c_[present, top, left].astype(np.float32)


def _cnn(in_shape: tuple[int, ...], k: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_shape[0], 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, k)
    )


def test_image_network_and_lime_on_a_latent_unit() -> None:
    torch.manual_seed(0)
    X, V = _quadrant_images(320, seed=0)
    learner = TwoStepLearner(
        layers=[5, 3], dnae_epochs=150, dnae_lr=0.02, network=_cnn, epochs=60, lr=3e-3, batch_size=32, seed=0
    ).fit(X, V)
    assert learner.dnae is not None and all(bool((H >= 0).all()) for H in learner.dnae.model.weights())
    scores = learner.predict(X[:100])
    assert scores.shape == (100, 6)
    # the image network learned the labels through the latent code
    acc = float(((scores >= 0.5) == (V[:100] == 1)).mean())
    assert acc > 0.8, acc
    # one image with a single square (top-left): LIME weights of the most active latent unit sit on it
    image = (0.1 * np.random.default_rng(1).random((1, 24, 24))).astype(np.float32)
    image[0, 2:10, 2:10] += 1.0
    unit, weights = explain_image_latent(learner, image, n_segments=16, n_samples=200, seed=0)
    assert 0 <= unit < 3 and weights.shape == (24, 24)
    inside = weights[2:10, 2:10].mean()
    outside = np.delete(weights.ravel(), np.ravel_multi_index(np.mgrid[2:10, 2:10].reshape(2, -1), (24, 24))).mean()
    assert inside > outside, (inside, outside)
