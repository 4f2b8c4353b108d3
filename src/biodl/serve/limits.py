"""Request-body size limit as plain ASGI middleware (answers 413 before the body is parsed).

The middleware already holds every accepted ``POST`` body, so it can also answer the hot
endpoint itself: a ``POST`` to one of ``routes`` is handed to its handler (raw body in, JSON
bytes out) without FastAPI's routing, dependency solving, request and response objects, which
cost more than a small model's forward pass. A handler's :class:`~biodl.serve.payload.RequestError`
becomes a 4xx JSON answer; any other exception reaches FastAPI's error middleware (500) as before.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from biodl.serve.payload import RequestError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: A fast route: the raw request body → the JSON answer (raises RequestError for client errors).
Handler = Callable[[bytes], Awaitable[bytes]]


async def _reply(send: Send, status: int, detail: str, *, close: bool = True) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _answer(send: Send, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Refuse HTTP requests whose body exceeds ``max_bytes`` with ``413``.

    A declared ``Content-Length`` over the limit is refused without reading the body; a body
    without one (chunked) is read up to the limit and refused as soon as it passes it. An
    accepted body is replayed to the application unchanged.

    Parameters
    ----------
    app
        The wrapped ASGI application.
    max_bytes
        Largest accepted body in bytes.
    routes
        ``POST`` paths answered here by their handler (raw body → JSON bytes), not by ``app``.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, routes: Mapping[str, Handler] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.routes = dict(routes or {})

    def _too_large(self) -> str:
        return f"request body too large: the limit is {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _reply(send, 400, "invalid Content-Length header")
                return
            if length > self.max_bytes:
                await _reply(send, 413, self._too_large())
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _reply(send, 413, self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        handler = self.routes.get(scope.get("path", "")) if scope.get("method") == "POST" else None
        if handler is not None:
            try:
                answer = await handler(body)
            except RequestError as exc:
                await _reply(send, exc.status, exc.detail, close=False)
                return
            await _answer(send, answer)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
