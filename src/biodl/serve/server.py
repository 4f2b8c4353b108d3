"""Run the app with uvicorn on a socket bound here, so a port in use is a clear error."""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING

from biodl.errors import BiodlError

if TYPE_CHECKING:
    from fastapi import FastAPI


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
