"""Fast request and response bodies for ``POST /predict``: orjson in, numpy rows, orjson out.

FastAPI's default path decodes the body with the standard library, validates every value
against :class:`~biodl.serve.schemas.PredictRequest` with pydantic, then serialises the answer
through ``jsonable_encoder`` and pydantic models. On single-row requests that bookkeeping costs
more than the model. Here the body is decoded once with orjson, only its outer structure is
checked (an object with ``inputs``: a non-empty list of strings, lists or objects), numeric rows
go straight to one ``float32`` array, and the answer is written by orjson. Anything unusual is
handed to the pydantic model, so every invalid body is still answered with the same message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError

from biodl.serve.schemas import Prediction, PredictRequest

_KEYS = frozenset(("inputs", "probability_maps"))
#: Every field of a prediction, so a fast answer has the same keys as the pydantic one.
_EMPTY: dict[str, None] = dict.fromkeys(Prediction.model_fields)


class RequestError(Exception):
    """A client error answered with ``status`` and ``{"detail": detail}``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class BodyError(RequestError):
    """An unusable request body, answered with ``status`` and ``detail``."""


@dataclass
class PredictBody:
    """A decoded ``POST /predict`` body."""

    inputs: list[Any]
    probability_maps: bool = False


def validation_detail(errors: list[Any]) -> str:
    """One line for pydantic/FastAPI validation errors (the first five)."""
    parts = []
    for err in errors[:5]:
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "JSON decode error")
            position = err.get("loc", ("body", "?"))[-1]
            return f"malformed JSON: {reason} (at character {position})"
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def decode_predict(body: bytes) -> PredictBody:
    """The request of a raw ``/predict`` body.

    Raises
    ------
    BodyError
        400 for bodies nested too deeply to parse, 422 for malformed JSON or a wrong structure.
    """
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:  # the standard library names the problem as before (and reads 1e999)
        try:
            obj = json.loads(body)
        except json.JSONDecodeError as exc:
            raise BodyError(422, f"malformed JSON: {exc.msg} (at character {exc.pos})") from None
        except (RecursionError, UnicodeDecodeError, ValueError):
            raise BodyError(400, "There was an error parsing the body") from None
    if isinstance(obj, dict) and obj.keys() <= _KEYS:
        inputs = obj.get("inputs")
        maps = obj.get("probability_maps", False)
        if (
            isinstance(inputs, list)
            and inputs
            and isinstance(maps, bool)
            and all(isinstance(r, (str, list, dict)) for r in inputs)
        ):
            return PredictBody(inputs, maps)
    try:  # the slow path only to name what is wrong
        req = PredictRequest.model_validate(obj)
    except ValidationError as exc:
        raise BodyError(422, validation_detail(exc.errors())) from None
    return PredictBody(list(req.inputs), req.probability_maps)


def numeric_rows(inputs: list[Any], width: int) -> np.ndarray | None:
    """``(N, width)`` float32 rows when every input is a list of ``width`` finite numbers, else ``None``."""
    if not all(type(r) is list for r in inputs):
        return None
    try:
        X = np.array(inputs, dtype=np.float32)
    except (TypeError, ValueError):
        return None
    if X.ndim != 2 or X.shape[1] != width or not np.isfinite(X).all():
        return None
    return X


def sequence_rows(inputs: list[Any], table: bytes, size: int, length: int) -> np.ndarray | None:
    """One-hot ``(N, size, length)`` float32 rows when every input is a string of ``length`` symbols.

    ``table`` is the alphabet's 256-byte lookup table (codes ``0..size-1`` for its symbols, either
    case). Anything else (another length, wildcards such as ``N``, characters outside the alphabet,
    non-strings) gives ``None``: the data type's own parser handles it and names what is wrong.
    Equal to the data type's ``transform(parse_inputs(inputs))`` where it applies, in one pass
    over all characters instead of a few array operations per input.
    """
    if not all(type(r) is str and len(r) == length for r in inputs):
        return None
    try:
        raw = "".join(inputs).encode("ascii")
    except UnicodeEncodeError:
        return None
    codes = np.frombuffer(raw.translate(table), dtype=np.uint8).reshape(len(inputs), length)
    if int(codes.max(initial=0)) >= size:
        return None
    return _eye(size).take(codes, axis=0).transpose(0, 2, 1).copy()


_EYES: dict[int, np.ndarray] = {}


def _eye(size: int) -> np.ndarray:
    eye = _EYES.get(size)
    if eye is None:
        eye = _EYES[size] = np.eye(size, dtype=np.float32)
    return eye


def encode_predictions(records: list[dict[str, Any]]) -> bytes:
    """``{"predictions": [...]}`` with every field of :class:`Prediction` (absent ones ``null``)."""
    return orjson.dumps({"predictions": [{**_EMPTY, **r} for r in records]}, option=orjson.OPT_SERIALIZE_NUMPY)
