"""Segmentation outputs: per-pixel heads of the inference network and the JSON mask records of the server."""

from __future__ import annotations

import base64
import io
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from biodl.export.graph import InferenceNet
from biodl.serve.card import prediction_records, segmentation_record


class _Dense(nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, k, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_inference_net_applies_the_per_pixel_head() -> None:
    x = torch.randn(2, 1, 5, 7)
    for k in (1, 3):
        model = _Dense(k).eval()
        out = InferenceNet(model, "segmentation")(x)
        expected = torch.sigmoid(model(x)) if k == 1 else torch.softmax(model(x), dim=1)
        assert out.shape == (2, k, 5, 7) and torch.allclose(out, expected)


def _bundle(classes: list[str], values: list[int]) -> Any:
    modality = SimpleNamespace(mask_values=lambda: np.array(values))
    return SimpleNamespace(kind="segmentation", classes=classes, target_names=classes, modality=modality)


def _png(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))


def test_binary_mask_record() -> None:
    p = np.zeros((1, 4, 6), np.float32)
    p[0, :2] = 0.9  # top half foreground
    rec = segmentation_record(_bundle(["0", "255"], [0, 255]), p, probability_maps=True)
    mask = _png(rec["mask_png_base64"])
    assert (rec["height"], rec["width"]) == (4, 6) and mask.shape == (4, 6)
    assert (mask[:2] == 255).all() and (mask[2:] == 0).all()
    assert rec["class_fractions"] == {"0": 0.5, "255": 0.5}
    prob = _png(rec["probability_maps_png_base64"]["255"])
    assert abs(int(prob[0, 0]) - 0.9 * 255) <= 1 and prob[3, 0] == 0
    assert "probability_maps_png_base64" not in segmentation_record(_bundle(["0", "255"], [0, 255]), p)


def test_multiclass_records_keep_label_values() -> None:
    p = np.zeros((2, 3, 2, 2), np.float32)
    p[:, 2] = 1.0  # every pixel is the third class
    p[1, 0, 0, 0] = 2.0  # except one pixel of the second image
    recs = prediction_records(_bundle(["0", "7", "300"], [0, 7, 300]), p, probability_maps=True)
    assert len(recs) == 2
    first, second = (_png(r["mask_png_base64"]) for r in recs)
    assert first.dtype == np.uint16 and (first == 300).all()  # values > 255: a 16-bit PNG
    assert second[0, 0] == 0 and second[1, 1] == 300
    assert set(recs[0]["probability_maps_png_base64"]) == {"0", "7", "300"}
