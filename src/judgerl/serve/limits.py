"""What protects the server from its clients, before a route sees a request: a body larger than
max_body_bytes (413, refused on its Content-Length before any of it is read), a body that does
not arrive within body_timeout_s (408: a slow client holds no slot for long), and more than
client_concurrency requests in flight from one address (429 with Retry-After)."""

from __future__ import annotations

import asyncio
from collections import Counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from judgerl.serve.http import error_response


class _TooLarge(Exception):
    pass


class _Gone(Exception):
    pass


class Limits:
    def __init__(self, app: ASGIApp, max_body_bytes: int, body_timeout_s: float, client_concurrency: int):
        self.app = app
        self.max_body_bytes, self.body_timeout_s, self.client_concurrency = max_body_bytes, body_timeout_s, client_concurrency
        self.active: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        client = scope["client"][0] if scope.get("client") else "unknown"
        if self.active[client] >= self.client_concurrency:
            response = error_response(f"more than {self.client_concurrency} requests in flight from {client}; "
                                      "retry later", 429, {"Retry-After": "1"})
            return await response(scope, receive, send)
        self.active[client] += 1
        try:
            await self._serve(scope, receive, send)
        finally:
            self.active[client] -= 1
            if not self.active[client]:
                del self.active[client]

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            return await self._too_large(scope, receive, send)
        try:
            body = await asyncio.wait_for(self._read(receive), self.body_timeout_s)
        except _TooLarge:
            return await self._too_large(scope, receive, send)
        except asyncio.TimeoutError:
            response = error_response(f"the body did not arrive within {self.body_timeout_s:g} s", 408,
                                      {"Connection": "close"})
            return await response(scope, receive, send)
        except _Gone:  # the client left before sending its body: nobody to answer
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Gone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(f"the body is larger than {self.max_body_bytes} bytes", 413, {"Connection": "close"})
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read, then waits on the client (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
