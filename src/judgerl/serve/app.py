"""The ASGI app (starlette) and its server (uvicorn): routes over the protocols, behind the limits
and the token. Layers, outermost first: accounting (every answer counted in /metrics, the 401s
and 413s too), bearer auth (before any body is read), limits (body size and time, per-client
concurrency), then the routes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from judgerl.judges.base import Judgment
from judgerl.serve import openrlhf, slime, v1
from judgerl.serve.auth import BearerAuth
from judgerl.serve.http import error_response, json_body
from judgerl.serve.limits import Limits
from judgerl.serve.service import JudgeService, Row
from judgerl.serve.settings import ServeSettings
from judgerl.serve.validation import BadRequest

ROUTES = ("/get_reward", "/slime", "/slime/dict", "/v1/judge", "/v1/rewards", "/health", "/metrics")


class Routes:
    """The handlers, over one JudgeService."""

    def __init__(self, service: JudgeService):
        self.service, self.settings = service, service.settings

    async def within_timeout(self, work: Awaitable[Any]) -> Any:
        try:
            return await asyncio.wait_for(work, self.settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise BadRequest(f"the judgments were not ready within {self.settings.request_timeout_s:g} s "
                             "(request_timeout_s); retry later", 504) from None

    async def get_reward(self, request: Request) -> Response:
        started, service = time.perf_counter(), self.service
        queries, prompts, labels = openrlhf.parse_request(await json_body(request), self.settings.max_items)
        rows = openrlhf.rows_from_queries(queries, prompts, labels)
        judged = iter(await self.within_timeout(service.judge_rows([r for r in rows if isinstance(r, Row)])))
        judgments: list[Judgment | None] = [next(judged) if isinstance(r, Row) else None for r in rows]
        rewards = [service.reward(j) if j is not None else None for j in judgments]
        if None in rewards and self.settings.unscored == "retry":
            return self.retry_later(rewards.count(None), len(rewards))
        return JSONResponse(openrlhf.answer(rewards, judgments, time.perf_counter() - started))

    def retry_later(self, unscored: int, asked: int) -> Response:
        """serve.unscored retry: the engine's retry loop asks again (a failed judgment is never cached)."""
        return error_response(f"{unscored} of {asked} completions could not be scored; ask again", 503,
                              {"Retry-After": "1"})

    async def slime(self, request: Request) -> Response:
        row = slime.row_from_request(await json_body(request))
        [judgment] = await self.within_timeout(self.service.judge_rows([row]))
        reward = self.service.reward(judgment)
        if reward is None and self.settings.unscored == "retry":
            return self.retry_later(1, 1)
        if request.url.path.endswith("/dict"):
            return JSONResponse(slime.dict_answer(reward, judgment))
        return JSONResponse(reward)

    async def judge(self, request: Request) -> Response:
        service = self.service
        mode, items = v1.judge_items(await json_body(request), self.settings.max_items)
        if mode == "pairwise":
            return JSONResponse(await self.within_timeout(_compare(service, items)))
        if mode == "group":
            groups = await self.within_timeout(asyncio.gather(*(
                service.judge_group(item["prompt"], item["completions"], item["columns"]) for item in items)))
            rewards = [[service.reward(j) for j in group] for group in groups]
            return JSONResponse({"groups": [[v1.record(j) for j in group] for group in groups], "rewards": rewards})
        rows = [Row(item["prompt"], item["completion"], item["columns"]) for item in items]
        judgments = await self.within_timeout(service.judge_rows(rows))
        rewards = [service.reward(j) for j in judgments]  # first: a gate's rejection is flagged in the record
        return JSONResponse({"judgments": [v1.record(j) for j in judgments], "rewards": rewards})

    async def rewards(self, request: Request) -> Response:
        rows = v1.rewards_rows(await json_body(request), self.settings.max_items)
        judgments = await self.within_timeout(self.service.judge_rows(rows))
        return JSONResponse({"rewards": [self.service.reward(j) for j in judgments]})

    async def health(self, request: Request) -> Response:
        batcher = self.service.batcher
        return JSONResponse({"status": "stuck" if batcher.stuck else "ok", "judge": self.service.judge_id,
                             "queued": len(batcher.queue), "judge_calls_in_flight": batcher.in_flight,
                             "judge_calls_stuck": batcher.stuck}, status_code=503 if batcher.stuck else 200)

    async def metrics(self, request: Request) -> Response:
        batcher = self.service.batcher
        return PlainTextResponse(self.service.metrics.text(batcher.in_flight, len(batcher.queue), batcher.stuck),
                                 media_type="text/plain; version=0.0.4")


def build_app(service: JudgeService, token: str | None) -> ASGIApp:
    """The whole server as one ASGI app; `token` None: no auth (the CLI allows it on loopback only)."""
    settings, routes = service.settings, Routes(service)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        service.batcher.start()
        yield
        await service.batcher.stop()

    post = ["POST"]
    app = Starlette(routes=[Route("/get_reward", routes.get_reward, methods=post),
                            Route("/slime", routes.slime, methods=post), Route("/slime/dict", routes.slime, methods=post),
                            Route("/v1/judge", routes.judge, methods=post), Route("/v1/rewards", routes.rewards, methods=post),
                            Route("/health", routes.health, methods=["GET"]), Route("/metrics", routes.metrics, methods=["GET"])],
                    exception_handlers={BadRequest: _refused, HTTPException: _http_error, Exception: _internal},
                    lifespan=lifespan)
    limited = Limits(app, settings.max_body_bytes, settings.body_timeout_s, settings.client_concurrency)
    return Accounting(BearerAuth(limited, token) if token else limited, service)


async def _compare(service: JudgeService, items: list[dict[str, Any]]) -> dict[str, Any]:
    judge = service.judge
    if not getattr(judge, "supports_pairwise", False):
        raise BadRequest(f"the judge {service.judge_id} does not compare pairs (judge.method pairwise or "
                         "pairwise_from_scores does)")
    names = sorted({name for item in items for name in item["columns"]})
    columns = {name: [item["columns"].get(name) for item in items] for name in names}
    verdicts = await service.batcher.exclusive(lambda: judge.compare(  # type: ignore[attr-defined]
        [i["prompt"] for i in items], [i["completion_a"] for i in items], [i["completion_b"] for i in items], **columns))
    if len(verdicts) != len(items):
        raise BadRequest(f"the judge returned {len(verdicts)} verdicts for {len(items)} pairs", 502)
    return {"verdicts": [v1.verdict_record(v) for v in verdicts]}


async def _refused(request: Request, error: Exception) -> Response:
    return error_response(str(error), getattr(error, "status", 400))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return error_response(error.detail or "refused", error.status_code, dict(error.headers or {}))


async def _internal(request: Request, error: Exception) -> Response:
    # A bug in judgerl: said on the server's stderr (type and message, never the request or a token);
    # the client gets a 500 and the server goes on.
    print(f"judgerl serve: internal error on {request.url.path}: {type(error).__name__}: {error}", file=sys.stderr)
    return error_response(f"internal error ({type(error).__name__}); see the server's log", 500)


class Accounting:
    """Counts every answer by route and status, and its time, for /metrics."""

    def __init__(self, app: ASGIApp, service: JudgeService):
        self.app, self.metrics = app, service.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [0]

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, counted)
        finally:
            route = scope.get("path") if scope.get("path") in ROUTES else "other"
            self.metrics.request(route, status[0], time.perf_counter() - started)


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def run_server(service: JudgeService, token: str | None, say: Callable[[str], None] = print) -> None:
    """Serve until SIGINT/SIGTERM; then stop accepting, finish the requests in flight (up to
    request_timeout_s), and return."""
    import uvicorn

    settings: ServeSettings = service.settings
    sock = listening_socket(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    say(f"judgerl serve: listening on http://{shown}:{port} (judge {service.judge_id}; "
        f"auth: {'bearer token' if token else 'off, loopback only'})")
    config = uvicorn.Config(build_app(service, token), log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=int(settings.request_timeout_s) + 5, server_header=False,
                            limit_concurrency=settings.max_connections)
    uvicorn.Server(config).run(sockets=[sock])
