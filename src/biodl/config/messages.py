"""Readable one-line messages for schema validation errors (with the closest valid key for unknown keys)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from biodl.config.model import ModelConfig


def _fields_at(schema: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Valid keys of the section at ``loc`` (best effort, for suggestions)."""
    cls: Any = schema
    for part in loc:
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        cls = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if cls is None:
            return []
    if cls is ModelConfig:
        return ["name"]
    return list(getattr(cls, "model_fields", {}))


def _format_errors(exc: ValidationError, *, prefix: str, schema: type[BaseModel]) -> str:
    msgs: list[str] = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(([prefix] if prefix else []) + loc)
        if err["type"] == "extra_forbidden":
            valid = _fields_at(schema, loc[:-1])
            close = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.5)
            hint = f" (did you mean '{'.'.join(([prefix] if prefix else []) + loc[:-1] + [close[0]])}'?)" if close else ""
            msgs.append(f"unknown key '{key}'{hint}")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            shown = f" (got {err['input']!r})" if err["type"] != "value_error" and "input" in err else ""
            msgs.append(f"{key}: {msg}{shown}" if key else msg)
    return "; ".join(msgs)
