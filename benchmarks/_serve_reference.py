"""The reference server of ``serve_load.py``: a bare FastAPI app without a model.

``POST /predict`` reads the body, parses it with orjson (as ``biodl serve`` does) and answers
with a fixed body of the same size as biodl's answer to that payload (the answers are given as
``{"sequence": "...", "rows": "..."}`` in ``BIODL_REFERENCE_ANSWERS``). Run by uvicorn with
``--factory _serve_reference:create_app``.
"""

from __future__ import annotations

import json
import os

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response


def create_app() -> FastAPI:
    """The reference app (answers read from the environment)."""
    answers = {k: v.encode() for k, v in json.loads(os.environ["BIODL_REFERENCE_ANSWERS"]).items()}
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        body = orjson.loads(await request.body())
        first = body["inputs"][0]
        return Response(answers["sequence" if isinstance(first, str) else "rows"], media_type="application/json")

    return app
