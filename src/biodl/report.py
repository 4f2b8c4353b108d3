"""Self-contained HTML reports: the one renderer of the run, explanation and tune reports.

:func:`write_report` renders the data summary, metrics against the baseline,
learning-curve diagnostics, figures (embedded as base64 PNG) and the
configuration into a single ``report.html`` that works offline: no external
stylesheets, scripts, fonts or images. The HTML comes from Jinja2 templates in
``biodl/resources/templates`` with autoescaping on, so every user-supplied string
is escaped; :func:`html_table`, :func:`html_frame`, :func:`html_section` and
:func:`html_figure` are the building blocks the explanation and tune reports use too.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from markupsafe import Markup

from biodl.io_utils import atomic_write_text

if TYPE_CHECKING:
    from biodl.training.diagnostics import Finding

__all__ = ["escape", "format_value", "html_figure", "html_frame", "html_section", "html_table", "render", "write_report"]

#: Shown for missing (None) or non-finite metric values.
MISSING = "\u2013"
#: Keys of a metrics block that are not scalar metrics.
_NON_METRIC_KEYS = frozenset({"per_task", "n"})
_SPLITS = ("train", "val", "test")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1100px;padding:0 1rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.meta{color:#666;font-size:.9rem}nav a{margin-right:.8rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}
td.text{text-align:left}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:.7rem;overflow-x:auto;font-size:.85rem}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9rem}
.finding{margin:.4rem 0}.kind{font-family:monospace;background:#fde8e8;color:#9b1c1c;
padding:0 .3rem;border-radius:3px}.ok{color:#1e7b34}.note{color:#666}
"""


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "resources" / "templates"),
        autoescape=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        finalize=_escape,
    )


def _escape(value: Any) -> Any:
    """Escape as :func:`html.escape` (quotes as ``&quot;``/``&#x27;``) before autoescaping sees the value."""
    if hasattr(value, "__html__"):  # trusted HTML (Markup)
        return value
    return escape(value)


def escape(value: object) -> Markup:
    """``value`` as escaped HTML text (for the few headings built around a user string)."""
    return Markup(html.escape(str(value), quote=True))


def render(template: str, **context: Any) -> Markup:
    """Render ``biodl/resources/templates/<template>`` (autoescaped; pass trusted HTML as :class:`Markup`)."""
    return Markup(_environment().get_template(template).render(**context))


def html_table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], *, fmt: Any = None, text_columns: Sequence[int] | None = None
) -> Markup:
    """An HTML table; cells are formatted with ``fmt`` (default :func:`format_value`) and escaped.

    Left-aligned (``class="text"``): string cells, or exactly the columns ``text_columns`` when given.
    """
    formatter = fmt or format_value

    def is_text(j: int, v: Any) -> bool:
        return isinstance(v, str) if text_columns is None else j in text_columns

    cells = [[{"value": formatter(v), "text": is_text(j, v)} for j, v in enumerate(row)] for row in rows]
    return render("table.html.j2", header=[str(h) for h in header], rows=cells)


def html_frame(frame: Any, *, fmt: Any = None) -> Markup:
    """:func:`html_table` of a pandas DataFrame (its columns as the header; NaN shown as missing)."""

    def plain(v: Any) -> Any:
        return None if isinstance(v, float) and math.isnan(v) else v

    rows = [[plain(v) for v in row] for row in frame.itertuples(index=False)]
    return html_table([str(c) for c in frame.columns], rows, fmt=fmt)


def html_section(anchor: str, title: str, body: str) -> Markup:
    """A ``<section>`` with a heading; ``body`` is trusted HTML (build it with these helpers)."""
    return render("section.html.j2", anchor=anchor, title=title, body=Markup(body))


def html_figure(png: bytes, alt: str, caption: str | None = None) -> Markup:
    """A PNG embedded as base64 (no external file), with an optional caption."""
    return render("figure.html.j2", alt=alt, data=base64.b64encode(png).decode("ascii"), caption=caption)


def format_value(value: Any) -> str:
    """Format a table cell: 4 significant digits, an en dash for None and NaN.

    Parameters
    ----------
    value
        A number, string, None, or a (nested) container.

    Returns
    -------
    str
        Unescaped text (callers escape it).
    """
    if value is None:
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return MISSING if math.isnan(number) else f"{number:.4g}"
    if isinstance(value, (str, Path)):
        return str(value)
    return json.dumps(_plain(value), ensure_ascii=False, default=str)


def _plain(value: Any) -> Any:
    """Convert mappings, sequences, paths and numpy values to YAML/JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if value is None:
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    for kind in (bool, int, float, str):  # exact builtin types (no subclasses)
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return html_table(header, rows)


def _section(anchor: str, title: str, body: str) -> str:
    return html_section(anchor, title, body)


def _block(source: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    value = source.get(key) if source else None
    return value if isinstance(value, Mapping) else {}


def _baseline_parts(metrics: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> tuple[str | None, Mapping[str, Any]]:
    """Name and test block of the baseline (argument first, then metrics)."""
    source = baseline if baseline is not None else _block(metrics, "baseline")
    if not source:
        return None, {}
    name = source.get("name")
    test = source.get("test")
    if isinstance(test, Mapping):
        block: Mapping[str, Any] = test
    else:
        block = {k: v for k, v in source.items() if k != "name"}
    return (str(name) if name is not None else None), block


def _metric_names(*blocks: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for block in blocks:
        for key in block:
            if key not in _NON_METRIC_KEYS and key not in names:
                names.append(str(key))
    return names


def _per_task_rows(per_task: Any, metric_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Normalise ``per_task`` to ``{task: {metric: value}}``.

    Accepts ``{task: {metric: value}}`` or, when every outer key is a metric
    name of the block, ``{metric: {task: value}}``.
    """
    if not isinstance(per_task, Mapping) or not per_task:
        return {}
    outer = {str(k): v for k, v in per_task.items() if isinstance(v, Mapping)}
    if metric_names and set(outer) <= set(metric_names):
        rows: dict[str, dict[str, Any]] = {}
        for metric, by_task in outer.items():
            for task, value in by_task.items():
                rows.setdefault(str(task), {})[metric] = value
        return rows
    return {task: {str(k): v for k, v in values.items()} for task, values in outer.items()}


def _metrics_section(metrics: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> str:
    blocks = {split: _block(metrics, split) for split in _SPLITS}
    base_name, base_test = _baseline_parts(metrics, baseline)
    names = _metric_names(*blocks.values(), base_test)
    base_label = f"baseline ({base_name}) test" if base_name else "baseline test"
    header = ["metric", "network train", "network val", "network test", base_label]
    rows: list[list[Any]] = []
    if any("n" in b for b in (*blocks.values(), base_test)):
        rows.append(["n", *(blocks[s].get("n") for s in _SPLITS), base_test.get("n")])
    for name in names:
        rows.append([name, *(blocks[s].get(name) for s in _SPLITS), base_test.get(name)])
    parts = [_table(header, rows) if rows else '<p class="note">no metrics recorded</p>']

    test_names = _metric_names(blocks["test"])
    per_task = _per_task_rows(blocks["test"].get("per_task"), test_names)
    if per_task:
        base_per_task = _per_task_rows(base_test.get("per_task"), _metric_names(base_test))
        task_metrics = _metric_names(*per_task.values())
        columns: list[tuple[str, str, bool]] = []
        for metric in task_metrics:
            columns.append((metric, metric, False))
            if any(metric in v for v in base_per_task.values()):
                columns.append((f"baseline {metric}", metric, True))
        task_rows = [
            [
                task,
                *((base_per_task.get(task, {}) if is_base else values).get(metric) for _, metric, is_base in columns),
            ]
            for task, values in per_task.items()
        ]
        parts.append("<h3>Per-task test metrics</h3>")
        parts.append(_table(["task", *(label for label, _, _ in columns)], task_rows))
    return _section("metrics", "Metrics vs baseline", "\n".join(parts))


def _data_section(data_summary: Mapping[str, Any], split_sizes: Mapping[str, int]) -> str:
    parts = []
    if data_summary:
        parts.append(_table(["property", "value"], [[str(k), v] for k, v in data_summary.items()]))
    else:
        parts.append('<p class="note">no data summary</p>')
    if split_sizes:
        total = sum(int(v) for v in split_sizes.values())
        rows = [[str(split), int(n), (int(n) / total) if total else None] for split, n in split_sizes.items()]
        parts.append("<h3>Splits</h3>")
        parts.append(_table(["split", "n", "fraction"], rows))
    return _section("data", "Data", "\n".join(parts))


def _findings_section(findings: Sequence[Finding]) -> str:
    if not findings:
        body = '<p class="ok">no problems found in the learning curves</p>'
    else:
        items = [
            {
                "kind": finding.kind,
                "message": finding.message,
                "evidence": "\n".join(f"{k}: {json.dumps(v, default=str)}" for k, v in _plain(finding.evidence).items()),
            }
            for finding in findings
        ]
        body = render("findings.html.j2", findings=items)
    return _section("diagnostics", "Learning curves and diagnostics", body)


def _figures_section(figures: Mapping[str, Path]) -> str:
    if not figures:
        return _section("figures", "Figures", '<p class="note">no figures</p>')
    parts = []
    for caption, fig_path in figures.items():
        try:
            data = Path(fig_path).read_bytes()
        except OSError as exc:
            parts.append(render("note.html.j2", text=f"figure {caption} could not be read: {exc.strerror or exc}"))
            continue
        if not data.startswith(_PNG_SIGNATURE):
            parts.append(render("note.html.j2", text=f"figure {caption} is not a PNG file"))
            continue
        parts.append(html_figure(data, caption, caption))
    return _section("figures", "Figures", "\n".join(parts))


def _config_section(config: Mapping[str, Any]) -> str:
    plain = _plain(config)
    try:
        import yaml

        text = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, default_flow_style=False)
    except ImportError:  # pragma: no cover - PyYAML is a dependency of the CLI
        text = json.dumps(plain, indent=2, ensure_ascii=False)
    return _section("config", "Config", render("pre.html.j2", text=text))


def write_report(
    path: Path,
    *,
    title: str,
    config: Mapping[str, Any],
    data_summary: Mapping[str, Any],
    split_sizes: Mapping[str, int],
    metrics: Mapping[str, Any],
    baseline: Mapping[str, Any] | None,
    findings: Sequence[Finding],
    figures: Mapping[str, Path],
    sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write a self-contained HTML report atomically.

    Parameters
    ----------
    path
        Destination file (usually ``<run>/report.html``).
    title
        Report title.
    config
        Experiment configuration, shown as YAML.
    data_summary
        Key/value facts about the data set (rows, tasks, features, ...).
    split_sizes
        Number of examples per split.
    metrics
        Layout of ``metrics.json``: ``{"train": {...}, "val": {...},
        "test": {...}, "baseline": {"name": ..., "test": {...}}}``; each block
        maps metric names to numbers or None and may hold ``n`` and
        ``per_task`` (``{task: {metric: value}}``).
    baseline
        ``{"name": ..., "test": {...}}`` of the baseline model; when None,
        ``metrics["baseline"]`` is used if present.
    findings
        Learning-curve diagnostics (:func:`biodl.training.diagnostics.diagnose`).
    figures
        Caption → PNG path; each is embedded inline as base64.
    sections
        Extra ``(title, html)`` sections; the HTML is trusted and inserted as is.

    Returns
    -------
    Path
        ``path``.
    """
    from biodl._version import __version__

    target = Path(path)
    created = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
    extra = [_section(f"extra-{i}", sec_title, sec_html) for i, (sec_title, sec_html) in enumerate(sections, start=1)]
    nav_items = [
        ("data", "Data"),
        ("metrics", "Metrics"),
        ("diagnostics", "Diagnostics"),
        ("figures", "Figures"),
        *((f"extra-{i}", t) for i, (t, _) in enumerate(sections, start=1)),
        ("config", "Config"),
    ]
    body = [
        _data_section(data_summary, split_sizes),
        _metrics_section(metrics, baseline),
        _findings_section(findings),
        _figures_section(figures),
        *extra,
        _config_section(config),
    ]
    document = render(
        "page.html.j2",
        title=title,
        css=Markup(_CSS),
        created=created,
        version=__version__,
        nav=nav_items,
        sections=[Markup(b) for b in body],
    )
    atomic_write_text(target, str(document))
    return target
