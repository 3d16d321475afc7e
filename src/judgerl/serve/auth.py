"""Bearer-token auth: the token from $JUDGERL_SERVE_TOKEN or a file, compared in constant time,
never logged, printed or echoed. /health answers without it (load balancers probe it)."""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from judgerl.serve.http import error_response

TOKEN_ENV = "JUDGERL_SERVE_TOKEN"
MIN_TOKEN_CHARS = 16
OPEN_PATHS = frozenset({"/health"})


def read_token(token_file: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The token from `token_file` (its only line) or $JUDGERL_SERVE_TOKEN; None when neither is
    set. A token that is short, holds whitespace or is not printable ASCII is a ConfigError (whose
    message never shows the token)."""
    from judgerl.config import ConfigError, read_text_file

    if token_file is not None:
        token, source = read_text_file(Path(token_file).expanduser(), "--token-file").strip(), f"--token-file {token_file}"
    else:
        token, source = (environ if environ is not None else os.environ).get(TOKEN_ENV, "").strip(), f"${TOKEN_ENV}"
        if not token:
            return None
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"{source}: the token is {len(token)} characters; use at least {MIN_TOKEN_CHARS} "
                          "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    if not all(33 <= ord(ch) <= 126 for ch in token):
        raise ConfigError(f"{source}: the token must be one line of printable ASCII without spaces")
    return token


class BearerAuth:
    """ASGI middleware: 401 unless `Authorization: Bearer <token>`, before the body is read."""

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            return await self.app(scope, receive, send)
        sent = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                sent = credentials.strip() if scheme.lower() == b"bearer" else b""
                break
        # compare_digest: the time taken does not tell an attacker how much of a guess was right
        if not sent or not hmac.compare_digest(sent, self.token):
            message = "a bearer token is needed (Authorization: Bearer ...)" if not sent else "the token is not valid"
            response = error_response(message, 401, {"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        await self.app(scope, receive, send)
