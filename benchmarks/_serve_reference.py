"""The reference server of ``serve_load.py``: a bare FastAPI app without a model.

``POST /predict`` reads the body, parses it with orjson (as ``biodl serve`` does) and answers
with a fixed body of the same size as biodl's answer to that payload (the answers are given as
``{"sequence": "...", "rows": "..."}`` in ``BIODL_REFERENCE_ANSWERS``). Run by uvicorn with
``python _serve_reference.py PORT WORKERS`` (a socket bound like ``biodl serve``'s).

Experiment hook: ``REF_HEAVY=torch,onnxruntime,biodl.bundle,freeze`` imports those modules (and
``freeze``: ``gc.freeze()``) first, to see what a process as large as biodl's costs the same
request path (3–6 % fewer requests/s at concurrency 1 in one run; see docs/performance.md).
"""

from __future__ import annotations

import json
import os

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response


def create_app() -> FastAPI:
    """The reference app (answers read from the environment)."""
    if os.environ.get("REF_HEAVY"):  # experiment: a process as large as biodl's
        import gc
        import importlib

        for mod in os.environ["REF_HEAVY"].split(","):
            if mod == "freeze":
                gc.collect()
                gc.freeze()
            else:
                importlib.import_module(mod)
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


def main() -> None:
    """``python _serve_reference.py PORT WORKERS``: serve on a socket bound as ``biodl serve`` binds it."""
    import socket
    import sys

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    port, workers = int(sys.argv[1]), int(sys.argv[2])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY, as biodl's
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    sock.set_inheritable(True)
    config = uvicorn.Config("_serve_reference:create_app", factory=True, workers=workers, log_level="warning")
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
