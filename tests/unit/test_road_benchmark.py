"""The road-strategies benchmark's verdict and tables (pure functions; no training)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "road_strategies.py"


@pytest.fixture(scope="module")
def road() -> Any:
    spec = importlib.util.spec_from_file_location("road_strategies", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["road_strategies"] = module
    spec.loader.exec_module(module)
    return module


def _row(model: str, strategy: str, f: float) -> dict[str, Any]:
    return {"model": model, "strategy": strategy, "trainable_parameters": 1000, "train_seconds": 10.0, "steps": 5,
            "f_measure": f, "precision": 0.5, "specificity": 0.9, "recall": 0.4, "iou": 0.3, "patch_f1": f + 0.05,
            "train_f_measure": 0.8, "epochs": 3}  # fmt: skip


def _settings() -> dict[str, Any]:
    return {"n_images": 20, "split": [0.5, 0.0, 0.5], "scale": 0.25, "tile": 256, "crops": 3, "epochs": 3, "lr": 1e-4,
            "batch_size": 2, "seed": 0, "machine": "test"}  # fmt: skip


def test_verdict_needs_the_full_grid_and_names_the_best_cell(road: Any) -> None:
    rows = [_row(m, t, 0.5) for m in road.MODELS for t in road.STRATEGIES]
    rows[-1]["f_measure"] = 0.9  # vgg10 + filter
    v = road.verdict(rows)
    assert v["complete_grid"] and v["vgg10_filter_best"] and v["best_f_measure"][:2] == ["vgg10", "filter"]
    partial = road.verdict(rows[:-2])
    assert not partial["complete_grid"] and not partial["vgg10_filter_best"]
    text = road.markdown({"settings": _settings(), "runs": rows[:-2], "paper": road.PAPER})
    assert "undecided (grid incomplete)" in text and "| VGG16 AE | few-data | 0.500 |" in text


def test_markdown_has_the_papers_tables_and_supplementary_rows(road: Any) -> None:
    rows = [_row(m, t, 0.6 if (m, t) == ("vgg12", "classic") else 0.4) for m in road.MODELS for t in road.STRATEGIES]
    doc = {"settings": _settings(), "runs": rows, "paper": road.PAPER, "supplementary": [_row("vgg16", "few-data", 0.3)]}
    text = road.markdown(doc)
    assert "## Table 2" in text and "## Table 3" in text and "10 held-out test images" in text
    assert "| VGG10 AE | 5,374,513 |" not in text and "| VGG10 AE | 1,000 | 5,460,097 | 10 (5) | 10 (5) | 10 (5) |" in text
    assert "## Supplementary runs" in text and "**not reproduced**" in text
    assert "Best F-measure: VGG12 AE + classic (0.600)" in text
