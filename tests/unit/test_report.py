"""Tests of the HTML report and the atomic-write helpers."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

from biodl._version import __version__
from biodl.io_utils import atomic_write_bytes, atomic_write_text
from biodl.report import format_value, write_report
from biodl.training.diagnostics import Finding

# A valid 1x1 PNG.
TINY_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
EVIL = "<script>alert('x')</script>"

METRICS = {
    "train": {"auroc": 0.912345, "loss": 0.2, "n": 800},
    "val": {"auroc": 0.8765432, "loss": 0.31, "n": 100},
    "test": {
        "auroc": 0.86549,
        "loss": None,
        "n": 100,
        "per_task": {"taskA": {"auroc": 0.9}, "taskB": {"auroc": float("nan")}},
    },
    "baseline": {"name": "logreg", "test": {"auroc": 0.7512, "n": 100}},
}


def _write(tmp_path: Path, **overrides: object) -> str:
    figure = tmp_path / "curves.png"
    figure.write_bytes(TINY_PNG)
    kwargs: dict = {
        "title": "Run <1>",
        "config": {
            "model": {"name": "cnn", "note": EVIL},
            "lr": np.float64(0.001),
            "data": tmp_path / "data.csv",
            "url": "https://example.org/data",
        },
        "data_summary": {"rows": 1000, "tasks": 2, "source": "a & b"},
        "split_sizes": {"train": 800, "val": 100, "test": 100},
        "metrics": METRICS,
        "baseline": None,
        "findings": [Finding("overfitting", "val loss rose after epoch 7", {"best_epoch": 7})],
        "figures": {"learning curves": figure},
        "sections": [("Extra <stuff>", "<p>pre-rendered <b>html</b></p>")],
    }
    kwargs.update(overrides)
    out = write_report(tmp_path / "report.html", **kwargs)
    assert out == tmp_path / "report.html"
    return out.read_text(encoding="utf-8")


def test_report_has_sections_and_values(tmp_path: Path) -> None:
    text = _write(tmp_path)
    for heading in (
        "Data",
        "Metrics vs baseline",
        "Learning curves and diagnostics",
        "Figures",
        "Config",
    ):
        assert f"<h2>{heading}</h2>" in text
    assert "Run &lt;1&gt;" in text
    assert __version__ in text
    # 4 significant digits, None and NaN shown as an en dash.
    assert "<td>0.9123</td>" in text
    assert "<td>0.8765</td>" in text
    assert "<td>0.8655</td>" in text
    assert "<td>0.7512</td>" in text
    assert "baseline (logreg) test" in text
    assert "\u2013" in text
    assert "Per-task test metrics" in text and "taskB" in text
    assert "a &amp; b" in text
    assert "<td>800</td>" in text
    assert "overfitting" in text and "val loss rose after epoch 7" in text
    assert "<h2>Extra &lt;stuff&gt;</h2>" in text
    assert "<p>pre-rendered <b>html</b></p>" in text  # trusted HTML kept as is


def test_report_embeds_figures_inline(tmp_path: Path) -> None:
    text = _write(tmp_path)
    match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert match is not None
    assert base64.b64decode(match.group(1)) == TINY_PNG
    assert "<figcaption>learning curves</figcaption>" in text


def test_report_is_offline_and_escapes_user_strings(tmp_path: Path) -> None:
    text = _write(tmp_path)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.IGNORECASE)
    assert "<link" not in text
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "lr: 0.001" in text  # numpy scalar dumped as plain YAML


def test_report_without_findings_figures_or_baseline(tmp_path: Path) -> None:
    metrics = {"test": {"rmse": 1.23456}}
    text = _write(tmp_path, metrics=metrics, findings=[], figures={}, sections=())
    assert "no problems found in the learning curves" in text
    assert "<td>1.235</td>" in text
    assert "data:image/png" not in text


def test_baseline_argument_and_bad_figures(tmp_path: Path) -> None:
    not_png = tmp_path / "fake.png"
    not_png.write_text("hello")
    text = _write(
        tmp_path,
        baseline={"name": "mean", "test": {"auroc": 0.5}},
        figures={"fake": not_png, "gone": tmp_path / "missing.png"},
    )
    assert "baseline (mean) test" in text and "<td>0.5</td>" in text
    assert "figure fake is not a PNG file" in text
    assert "figure gone could not be read" in text


def test_report_overwrite_is_atomic(tmp_path: Path) -> None:
    _write(tmp_path)
    text = _write(tmp_path, title="second")
    assert "<h1>second</h1>" in text
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "\u2013"),
        (float("nan"), "\u2013"),
        (0.123456, "0.1235"),
        (12345.0, "1.234e+04"),
        (7, "7"),
        (np.int64(3), "3"),
        (np.float32(0.5), "0.5"),
        (True, "true"),
        ("x", "x"),
    ],
)
def test_format_value(value: object, expected: str) -> None:
    assert format_value(value) == expected


def test_atomic_write_helpers(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "dir" / "f.txt"
    atomic_write_text(target, "héllo\n")
    assert target.read_bytes() == "héllo\n".encode()
    target.chmod(0o640)
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert target.stat().st_mode & 0o777 == 0o640  # existing mode is kept
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.txt"]


def test_atomic_write_cleans_up_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
