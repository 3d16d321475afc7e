"""Reading a request strictly (no starlette here: the OpenRLHF reward function uses it too).
A client's mistake is a BadRequest: answered with its status and a one-line message."""

from __future__ import annotations

import json
from typing import Any


class BadRequest(Exception):
    """The client's mistake: answered with `status` and {"error": message}; the server goes on."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _no_constants(name: str) -> Any:
    raise BadRequest(f"{name} is not JSON (no NaN or Infinity in a request)")


def loads(body: bytes) -> Any:
    """The body's JSON; NaN and Infinity (which Python's json would accept) are refused."""
    try:
        return json.loads(body, parse_constant=_no_constants)
    except BadRequest:
        raise
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise BadRequest(f"the body is not JSON: {str(error)[:120]}") from None


def field(body: Any, name: str, kind: type | tuple[type, ...], required: bool = True) -> Any:
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    if name not in body or body[name] is None:
        if required:
            raise BadRequest(f"{name!r} is missing")
        return None
    value = body[name]
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        wanted = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise BadRequest(f"{name!r} must be {wanted}, got {type(value).__name__}")
    return value


def string_list(body: Any, name: str, length: int | None = None, required: bool = True, max_items: int = 4096) -> list | None:
    values = field(body, name, list, required)
    if values is None:
        return None
    if length is not None and len(values) != length:
        raise BadRequest(f"{name!r} has {len(values)} entries for {length}")
    if len(values) > max_items:
        raise BadRequest(f"{name!r} has {len(values)} entries; at most {max_items} per request", 413)
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise BadRequest(f"{name}[{i}] must be a string, got {type(value).__name__}")
    return values
