"""Reading configurations: YAML files (paths relative to the file), ``--set key=value`` overrides."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from biodl.errors import ConfigError

#: Config keys holding file paths: relative ones in a YAML file are taken from the file's folder.
PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("data", "path"),
    ("data", "sequence", "genome"),
    ("data", "sequence", "label_table"),
    ("data", "image", "mask_dir"),
    ("data", "feature_columns"),  # @FILE lists
    ("data", "target_columns"),
)


def _resolve_path(text: str, base: Path, key: str) -> str:
    at = text.startswith("@")
    body = text[1:] if at else text
    if key in ("data.feature_columns", "data.target_columns") and not at:
        return text  # column names, not paths
    if not body or (body == "others" and at) or Path(body).is_absolute() or "://" in body:
        return text
    here = base / body
    if not here.exists() and Path(body).exists():
        # written relative to the working directory (the behaviour before paths were taken from the config's folder)
        print(f"note: {key}: {body!r} is not in the config's folder {base}; using ./{body} from the working directory")
        return text
    return ("@" if at else "") + os.path.normpath(here)


def resolve_config_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make the relative paths of :data:`PATH_KEYS` in ``raw`` relative to ``base`` (in place)."""
    for parts in PATH_KEYS:
        node: Any = raw
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or node.get(parts[-1]) is None:
            continue
        key, value = ".".join(parts), node[parts[-1]]
        if isinstance(value, str):
            node[parts[-1]] = _resolve_path(value, base, key)
        elif isinstance(value, list):
            node[parts[-1]] = [_resolve_path(v, base, key) if isinstance(v, str) else v for v in value]
    return raw


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (safe loader: no object construction).

    Relative file paths in the ``data`` section (:data:`PATH_KEYS`) are taken from the YAML
    file's folder, as with ``--config`` they are expected to be; a path that exists only
    relative to the working directory is still found there, with a note.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping with sections data/model/train/evaluate")
    return resolve_config_paths(data, p.parent)


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings in place; values are parsed as YAML scalars/lists."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, _, text = item.partition("=")
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        set_nested(raw, parts, value)
    return raw


def set_nested(raw: dict[str, Any], parts: Sequence[str], value: Any) -> None:
    """Set ``raw[parts[0]][parts[1]]... = value``, creating sections as needed."""
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set '{'.'.join(parts)}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value
