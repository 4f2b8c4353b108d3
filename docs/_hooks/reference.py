"""MkDocs hook: the experiment schema and the CLI reference, generated at build time.

* ``reference/schema.md`` walks the pydantic models of :mod:`biodl.config` (every section, key,
  type, default and description; every registered model's own parameters) — never hand-copied.
* ``reference/cli.md`` walks the argparse parsers of :func:`biodl.cli.main.build_parser`.
* ``results.md`` is the README's headline-figures section (one copy of the table).
* Pages listed under ``extra.optional_pages`` in ``mkdocs.yml`` leave the navigation when their
  file is absent (pages other contributors add), so ``mkdocs build --strict`` still checks the rest.

The two renderers are plain functions, also used by the tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import types
import typing
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.reference")

SCHEMA_PAGE = "reference/schema.md"
CLI_PAGE = "reference/cli.md"
RESULTS_PAGE = "results.md"
README = Path(__file__).resolve().parents[2] / "README.md"


# --------------------------------------------------------------------------- schema
def _type_name(ann: Any) -> str:
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" if isinstance(a, str) else str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin in (list, tuple, dict):
        inner = ", ".join(_type_name(a) for a in args if a is not Ellipsis)
        return f"{origin.__name__}[{inner}]"
    if ann is type(None):
        return "null"
    return getattr(ann, "__name__", str(ann))


def _default(field: Any) -> str:
    from pydantic_core import PydanticUndefined

    if field.default is not PydanticUndefined:
        value = field.default
    elif field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "–"
    else:
        return "required"
    if hasattr(value, "model_dump"):
        return "(section)"
    text = json.dumps(value, default=str)
    return f"`{text}`".replace("|", "\\|")


def _flag_help() -> dict[str, str]:
    """Config key → the help of the CLI flag that sets it (the description of keys that have none)."""
    from biodl.cli import options

    table: dict[str, str] = {}
    for value in vars(options).values():
        if isinstance(value, tuple):
            for flag in value:
                if isinstance(flag, options.Flag):
                    table.setdefault(flag.key, f"{flag.help} (`{flag.flag}`)")
    return table


def _section_rows(model: type, prefix: str) -> tuple[list[str], list[tuple[str, type]]]:
    from pydantic import BaseModel

    flags = _flag_help()
    rows, nested = [], []
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            nested.append((f"{prefix}{name}", ann))
            continue
        desc = (field.description or flags.get(f"{prefix}{name}", "")).replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{prefix}{name}` | {_type_name(ann)} | {_default(field)} | {desc} |")
    return rows, nested


def _section(model: type, key: str, level: int = 2) -> list[str]:
    doc = " ".join((model.__doc__ or "").strip().split("\n\n")[0].split())
    out = [f"{'#' * level} `{key}`", "", doc, "", "| key | type | default | description |", "|---|---|---|---|"]
    rows, nested = _section_rows(model, f"{key}.")
    out += [*rows, ""]
    for sub_key, sub_model in nested:
        out += _section(sub_model, sub_key, min(level + 1, 4))
    return out


def schema_markdown() -> str:
    """The experiment schema as Markdown, from :class:`biodl.config.ExperimentConfig` and the model registry."""
    from biodl.config import ExperimentConfig, ModelConfig
    from biodl.models import MODELS

    lines = [
        "# Experiment schema",
        "",
        "Generated from the pydantic models in `biodl.config` when the site is built: every key, its type, default "
        "and description. YAML files, `--set section.key=value` and the Python API share this schema; "
        "`biodl train --print-config` prints a resolved configuration. Unknown keys are errors that suggest the "
        "closest valid key.",
        "",
    ]
    for name, field in ExperimentConfig.model_fields.items():
        model = field.annotation
        if model is ModelConfig:
            lines += _models_section(MODELS)
        else:
            lines += _section(model, name)  # type: ignore[arg-type]
    return "\n".join(lines) + "\n"


def _models_section(registry: Any) -> list[str]:
    out = [
        "## `model`",
        "",
        "`model.name` picks a registered architecture (null: the data type's default); the other keys are that "
        "architecture's own parameters, validated against its `Params` class.",
        "",
        "| key | type | default | description |",
        "|---|---|---|---|",
        "| `model.name` | str \\| null | `null` | registered architecture |",
        "",
    ]
    for name in registry.names():
        spec = registry[name]
        params = getattr(spec, "Params", None)
        takes = ", ".join(getattr(spec, "data_types", ()) or ())
        out += [f"### `model.name: {name}`", "", f"Data types: {takes or '–'}.", ""]
        if params is None or not params.model_fields:
            out += ["No parameters.", ""]
            continue
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        rows, _ = _section_rows(params, "model.")
        out += [*rows, ""]
    return out


# --------------------------------------------------------------------------- CLI
def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%" in text:
        try:
            text = text % {"default": action.default, "prog": "biodl", "choices": action.choices}
        except (KeyError, TypeError, ValueError):
            pass
    return text.replace("|", "\\|").replace("\n", " ")


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices is not None:
        return "{" + ",".join(map(str, action.choices)) + "}"
    meta = action.metavar or action.dest.split("__")[-1].upper()
    nargs = action.nargs
    if nargs in ("+", "*"):
        return f"{meta} ..."
    if isinstance(nargs, int) and nargs > 1:
        return " ".join([str(meta)] * nargs)
    if nargs == "?":
        return f"[{meta}]"
    return str(meta)


def _command(lines: list[str], name: str, parser: argparse.ArgumentParser) -> None:
    lines += [f"## `biodl {name}`", ""]
    if parser.description:
        lines += [parser.description, ""]
    groups = parser._action_groups
    for group in groups:
        actions = [a for a in group._group_actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
        positional = [a for a in group._group_actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
        if not actions and not positional:
            continue
        title = group.title or "options"
        lines += [f"**{title}**", "", "| flag | value | description |", "|---|---|---|"]
        for a in positional:
            lines.append(f"| `{a.dest}` | {_value(a)} | {_help(a)} |")
        for a in actions:
            flags = ", ".join(f"`{f}`" for f in a.option_strings)
            value = _value(a).replace("|", "\\|")
            lines.append(f"| {flags} | {value} | {_help(a)} |")
        lines.append("")
    for sub_name, sub in _subparsers(parser).items():
        _command(lines, f"{name} {sub_name}", sub)


def cli_markdown() -> str:
    """The CLI reference as Markdown, from the argparse parsers."""
    from biodl.cli.main import build_parser

    parser = build_parser()
    lines = [
        "# Command-line reference",
        "",
        "Generated from the argparse parsers (`biodl.cli.main.build_parser`) when the site is built. A flag "
        "shown with `[section.key]` sets that configuration key (see the [experiment schema](schema.md)); "
        "`--set section.key=value` sets any key. User errors exit with status 2 and one line `error: ...` "
        "(`biodl --debug COMMAND ...` shows the traceback).",
        "",
        "```",
        parser.format_usage().strip(),
        "```",
        "",
    ]
    for name, sub in _subparsers(parser).items():
        _command(lines, name, sub)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- results
def results_markdown(readme: Path = README) -> str:
    """The README's headline figures (its ``## Results`` section), so the table lives in one place."""
    lines = readme.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("## Results")), None)
    if start is None:
        raise ValueError(f"{readme}: no '## Results' section to publish as {RESULTS_PAGE}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    title = lines[start].removeprefix("## ")
    body = "\n".join(lines[start + 1 : end]).strip()
    return (
        f"# Headline figures\n\n{title}.\n\n{body}\n\n"
        "AnnData at atlas scale (`benchmarks/anndata_backed.py`): see "
        "[AnnData in and out](tutorials/anndata.md#atlas-scale-benchmark).\n"
    )


# --------------------------------------------------------------------------- MkDocs hooks
def _prune(nav: Any, missing: set[str]) -> Any:
    if isinstance(nav, list):
        kept = [_prune(item, missing) for item in nav]
        return [k for k in kept if k is not None]
    if isinstance(nav, dict):
        out = {}
        for title, value in nav.items():
            pruned = _prune(value, missing)
            if pruned is None or pruned == []:
                continue
            out[title] = pruned
        return out or None
    if isinstance(nav, str) and nav in missing:
        return None
    return nav


def on_config(config: Any) -> Any:
    """Drop optional pages that are not there (yet) from the navigation."""
    docs = Path(config["docs_dir"])
    optional = set((config.get("extra") or {}).get("optional_pages") or [])
    missing = {p for p in optional if not (docs / p).is_file()}
    for page in sorted(missing):
        log.info("optional page %s is absent: left out of the navigation", page)
    if missing and config.get("nav"):
        config["nav"] = _prune(config["nav"], missing)
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated reference pages."""
    from mkdocs.structure.files import File

    for path, render in ((SCHEMA_PAGE, schema_markdown), (CLI_PAGE, cli_markdown), (RESULTS_PAGE, results_markdown)):
        existing = files.get_file_from_path(path)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, path, content=render()))
    return files
