"""Browse zoo models: ``biodl zoo list``, ``show`` and ``pull``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from biodl.errors import BundleError
from biodl.model_card import CARD
from biodl.model_sources import all_entries, is_model_name, resolve_model_path

#: Keys of ``biodl zoo list --json`` rows (a contract).
LIST_KEYS = ("name", "version", "data_type", "task", "metrics", "licence", "size")


def list_models(*, all_versions: bool = False) -> list[dict[str, Any]]:
    """Models of the configured zoo folders (``BIODL_ZOO_PATH``) and the built-in zoo (the newest version of each name,
    first location wins); each a dict with at least :data:`LIST_KEYS`, plus ``zoo`` (where it is listed)."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for loc, entry in all_entries():
        key = (str(entry.get("name")), str(entry.get("version")) if all_versions else "")
        if key in seen:
            if all_versions or not _newer(entry, seen[key]) or seen[key]["zoo"] != loc:
                continue
        seen[key] = {**{k: entry.get(k) for k in LIST_KEYS}, **entry, "zoo": loc}
    rows = sorted(seen.values(), key=lambda e: (str(e["name"]), str(e["version"])))
    for r in rows:
        r.pop("files", None)
    return rows


def _newer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    from biodl.model_sources import _version_key

    return _version_key(a.get("version")) > _version_key(b.get("version"))


def headline(entry: dict[str, Any]) -> str:
    """``metric=value (split)`` of an index entry, or ``''``."""
    metric = entry.get("headline_metric")
    for split in ("validation", "test"):
        value = (entry.get("metrics") or {}).get(split, {}).get(metric)
        if value is not None:
            return f"{metric} {value:.3f} ({split})"
    return ""


def pull(spec: str) -> Path:
    """Fetch (or find) a model by name or URL and return its local folder; bare names mean ``zoo:NAME``."""
    target = resolve_model_path(spec if is_model_name(spec) else f"zoo:{spec}")
    from biodl.bundle import load

    load(target)  # verified and loadable
    return target


def show(spec: str) -> str:
    """The model card (Markdown) of a model named by zoo name, URL or path."""
    folder = pull(spec) if is_model_name(spec) or not Path(spec).exists() else Path(spec)
    from biodl.bundle import resolve_bundle_dir

    folder = resolve_bundle_dir(folder)
    card = folder / CARD
    if not card.is_file():
        raise BundleError(f"{folder}: the model has no card ({CARD}); biodl zoo push writes one")
    return card.read_text(encoding="utf-8")
