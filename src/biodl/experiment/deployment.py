"""The "Deployment" section of a run's ``report.html``: what the model takes and gives, and how to use it.

Built from ``<run>/model/bundle.json`` alone (nothing is loaded or executed), so it is cheap to
add at the end of every run.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from biodl.data import DATA_TYPES
from biodl.report import html_table, render

TITLE = "Deployment"


def _rows(rows: list[tuple[str, str]]) -> str:
    return html_table(["property", "value"], rows, fmt=str, text_columns=(1,))


def _outputs(meta: dict[str, Any]) -> str:
    kind = meta.get("kind")
    classes = meta.get("classes")
    if kind == "multiclass":
        return f"class probabilities over {len(classes or [])} classes: {', '.join(map(str, classes or []))}"
    if kind == "binary" and classes and len(meta.get("target_names", [])) == 1:
        return f"probability of {classes[1]!r} (vs {classes[0]!r})"
    if kind == "binary":
        return f"probability per task: {', '.join(meta.get('target_names', []))}"
    return f"predicted values: {', '.join(meta.get('target_names', []))}"


def deployment_section(run_dir: str | Path) -> tuple[str, str] | None:
    """``(title, html)`` for :func:`biodl.report.write_report`'s ``sections``; ``None`` without a bundle."""
    run = Path(run_dir)
    meta_path = run / "model" / "bundle.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    spec = meta.get("model", {})
    data_type = str(meta.get("data", {}).get("type", "tabular"))
    files = []
    for name in sorted(p.name for p in (run / "model").iterdir() if p.is_file()):
        size = (run / "model" / name).stat().st_size
        digest = meta.get("sha256", {}).get(name)
        files.append(f"{name} ({size / 1024:.1f} KiB{', sha256 ' + digest[:12] + '…' if digest else ''})")
    table = _rows(
        [
            ("input", f"{data_type}: {_input_hint(data_type)}"),
            ("model input shape", f"(batch, {', '.join(str(s) for s in spec.get('in_shape', []))})"),
            ("architecture", f"{spec.get('name')} ({spec.get('trainable_parameters', '?')} trainable parameters)"),
            ("output", _outputs(meta)),
            ("bundle", "; ".join(files)),
            ("format", f"{meta.get('format')} v{meta.get('format_version')} (safetensors + JSON, no pickles)"),
        ]
    )
    where = shlex.quote(str(run))
    commands = "\n".join(
        [
            f"biodl predict --model-path {where} --data-path NEW_DATA --output predictions.csv   # --engine auto|torch|onnx",
            f"biodl export  --model-path {where} --format onnx --output model.onnx   # or --format torchscript",
            f"biodl serve   --model-path {where} --port 8000   # web page at http://127.0.0.1:8000/",
            "curl -s -X POST http://127.0.0.1:8000/predict -H 'Content-Type: application/json' -d '{\"inputs\": [...]}'",
        ]
    )
    body = (
        f"{table}\n<h3>Use this model</h3>\n{render('pre.html.j2', text=commands)}\n"
        '<p class="note">The export writes the preprocessing (normalisation arrays, alphabets, class names) and a '
        "parity report (max |Δ| ≤ 1e-4 against PyTorch) to model.onnx.json.</p>"
    )
    return TITLE, body


def _input_hint(data_type: str) -> str:
    cls = DATA_TYPES[data_type] if data_type in DATA_TYPES else None
    return getattr(cls, "input_hint", "") or "one record"
