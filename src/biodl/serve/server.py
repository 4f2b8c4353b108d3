"""Run the app with uvicorn on a socket bound here, so a port in use is a clear error.

With ``workers > 1`` the socket is shared by that many worker processes (uvicorn's supervisor,
spawned, not forked): each loads the model once and builds its own engine, with
``cores // workers`` CPU threads so that the workers do not oversubscribe the cores.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import socket
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from biodl.errors import BiodlError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from biodl.engine import EngineChoice

#: Environment variable that hands the :class:`ServeSpec` to spawned workers.
SPEC_ENV = "BIODL_SERVE_SPEC"
#: Seconds a worker may take to answer uvicorn's health ping before it is killed and respawned.
WORKER_HEALTHCHECK_S = 120


@dataclass
class ServeSpec:
    """Everything a worker process needs to build the app."""

    model_path: str
    engine: str = "auto"
    max_body_bytes: int = 8 * 1024 * 1024
    max_batch: int = 256
    threads: int | None = None


def worker_threads(workers: int, threads: int | None = None) -> int:
    """CPU threads per worker: ``threads`` if given, else the cores shared out (at least 1)."""
    if threads is not None:
        return max(1, int(threads))
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def build_app(spec: ServeSpec) -> tuple[FastAPI, EngineChoice]:
    """Load the bundle once, set the thread count, pick the engine and build the app."""
    import torch

    from biodl.bundle import load
    from biodl.engine import select_engine
    from biodl.export.parity import sample_inputs
    from biodl.serve.app import create_app
    from biodl.serve.card import example_input

    if spec.threads is not None:
        torch.set_num_threads(spec.threads)
    bundle = load(spec.model_path)
    sample = sample_inputs(bundle, rows=64)
    choice = select_engine(bundle, spec.engine, sample, threads=spec.threads)
    app = create_app(bundle, choice, spec.max_body_bytes, spec.max_batch, example=example_input(bundle, sample.raw))
    # Everything loaded so far (torch, the model, the engine: some 10^5 objects) lives as long as the
    # server: move it out of the garbage collector's generations, or every full collection walks it
    # again (about half a second on a busy machine, a stall for every request in flight).
    gc.collect()
    gc.freeze()
    return app, choice


def app_from_env() -> FastAPI:
    """The uvicorn app factory of a worker process (the spec comes in :data:`SPEC_ENV`)."""
    spec = ServeSpec(**json.loads(os.environ[SPEC_ENV]))
    app, choice = build_app(spec)
    print(f"engine: {choice.engine.name} ({choice.reason}) [worker {os.getpid()}]", flush=True)
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    Raises
    ------
    BiodlError
        When the port is in use or the address cannot be bound.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BiodlError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    # proto must be IPPROTO_TCP (not 0): asyncio only sets TCP_NODELAY on accepted sockets of such a
    # listener, and without it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BiodlError(
                f"port {port} on {host} is already in use; stop the other server or choose another port with --port "
                "(--port 0 picks a free one)"
            ) from None
        raise BiodlError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def run(app: FastAPI, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Serve ``app`` on ``sock`` until interrupted (SIGINT/SIGTERM stop it gracefully)."""
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=log_level in ("debug", "info"), timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(spec: ServeSpec, sock: socket.socket, workers: int, *, log_level: str = "warning") -> None:
    """Serve with ``workers`` spawned processes sharing ``sock``, each building its own app from ``spec``."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    os.environ[SPEC_ENV] = json.dumps(asdict(spec))
    options: dict[str, Any] = {"log_level": log_level, "access_log": log_level in ("debug", "info")}
    # uvicorn kills and respawns a worker that does not answer its health ping within the timeout
    # (5 s by default); a worker busy loading torch and the model on a loaded machine can take longer,
    # and was then respawned for ever without serving.
    config = uvicorn.Config(
        "biodl.serve.server:app_from_env",
        factory=True,
        workers=workers,
        timeout_graceful_shutdown=5,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        **options,
    )
    Multiprocess(config, sockets=[sock]).run()
