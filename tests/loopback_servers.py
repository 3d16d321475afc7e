"""Small HTTP servers on 127.0.0.1 for provider tests: an OpenAI-compatible fake that can
inject faults, bounded in time and requests and stopped by the test."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def yes_no_maybe(content: str) -> list[tuple[str, float]]:
    return [("Yes", -0.15), ("No", -2.5), ("Maybe", -3.0)]  # probabilities summing below 1


def completion_body(top_pairs: list[tuple[str, float]]) -> dict:
    token = top_pairs[0][0]
    top = [{"token": t, "logprob": lp} for t, lp in top_pairs]
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": token},
                     "logprobs": {"content": [{"token": token, "logprob": -0.1, "top_logprobs": top}]}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1},
    }


class FaultyOpenAIServer:
    """Answers POST /v1/chat/completions. Per request, with the given probabilities: HTTP 429
    with Retry-After, HTTP 500, a dropped connection, a hang (longer than the client's timeout),
    else a valid completion. Records attempts per item (the last message's content)."""

    def __init__(self, p429=0.0, p500=0.0, pdrop=0.0, phang=0.0, hang_s=2.0, retry_after="0.05",
                 seed=0, require_key: str | None = None, max_requests=5000, responder=yes_no_maybe,
                 style="openai", body_responder=None):
        self.rates = (p429, p500, pdrop, phang)
        self.hang_s, self.retry_after = hang_s, retry_after
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.authorizations: list[str] = []
        self.require_key = require_key
        self.max_requests = max_requests
        self.responder = responder
        self.style = style
        self.body_responder = body_responder
        """(last message content, request headers) -> the whole response body (JSON-ready, or raw bytes)"""
        """"openai": /v1/chat/completions, Bearer key; "anthropic": /v1/messages, x-api-key."""
        self.payloads: list[dict] = []
        self.headers: list[dict] = []
        """last message content -> [(token, logprob), ...], best first"""
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length) or b"{}")
                item = payload.get("messages", [{}])[-1].get("content", "")
                with server.lock:
                    server.requests += 1
                    server.attempts[item] += 1
                    server.authorizations.append(self.headers.get("Authorization") or self.headers.get("x-api-key") or "")
                    server.payloads.append(payload)
                    server.headers.append(dict(self.headers))
                    draw = server.rng.random()
                    over_budget = server.requests > server.max_requests
                if over_budget:
                    return self._send(503, {"error": "test request budget exhausted"})
                sent_key = (self.headers.get("x-api-key") if server.style == "anthropic"
                            else (self.headers.get("Authorization") or "").removeprefix("Bearer "))
                if server.require_key and sent_key != server.require_key:
                    return self._send(401, {"error": {"message": "invalid api key"}})
                p429, p500, pdrop, phang = server.rates
                if draw < p429:
                    server._count("429")
                    return self._send(429, {"error": "slow down"}, {"Retry-After": server.retry_after})
                draw -= p429
                if draw < p500:
                    server._count("500")
                    # like a debugging proxy: the error body echoes the request's headers
                    echoed = self.headers.get("Authorization") or self.headers.get("x-api-key")
                    return self._send(500, {"echo": echoed, "error": "boom"})
                draw -= p500
                if draw < pdrop:
                    server._count("drop")
                    self.close_connection = True
                    self.connection.close()
                    return
                draw -= pdrop
                if draw < phang:
                    server._count("hang")
                    time.sleep(server.hang_s)
                    self.close_connection = True
                    return
                server._count("ok")
                if server.body_responder is not None:  # a hostile server: any body at all
                    body = server.body_responder(item, dict(self.headers))
                    return self._send(200, body) if not isinstance(body, bytes) else self._send_raw(body)
                top = server.responder(item)
                if server.style == "anthropic":
                    return self._send(200, {"content": [{"type": "text", "text": top[0][0]}],
                                            "usage": {"input_tokens": 20, "output_tokens": 1}})
                self._send(200, completion_body(top))

            def _send_raw(self, data: bytes):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _send(self, status, body, headers=None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _count(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] += 1

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
