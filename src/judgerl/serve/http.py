"""What every route shares: the JSON body, read strictly; errors as one-line JSON."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from judgerl.serve.validation import loads


async def json_body(request: Request) -> Any:
    return loads(await request.body())


def error_response(message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)
