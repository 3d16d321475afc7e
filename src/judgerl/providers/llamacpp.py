"""In-process llama.cpp through `xllamacpp` (a prebuilt CPU wheel of llama.cpp).

The model is loaded on the first call, not when the provider is built, so a run whose
judgments all come from the cache never loads 1.1 GB of weights. llama.cpp keeps the
previous prompt's KV cache and reuses the longest shared prefix, so prompts are laid out
with what they share (rubric, instructions) first and what varies (question, answer) last.
"""

from __future__ import annotations

import os
import time
from typing import Any

from judgerl.errors import JudgeError
from judgerl.providers import ProviderResponse
from judgerl.providers.http import ProviderError
from judgerl.providers.openai_format import response_from_openai_json
from judgerl.providers.weights import KNOWN_GGUF_MODELS, resolve_gguf


class LlamaCppProvider:
    def __init__(self, model: str, threads: int | None = None, context_tokens: int = 2048):
        self.model = model
        self.name = f"llamacpp/{model if model in KNOWN_GGUF_MODELS else os.path.basename(model)}"
        self.threads = threads or min(2, os.cpu_count() or 1)
        self.context_tokens = context_tokens
        self._server: Any = None
        self._sha256: str | None = (
            KNOWN_GGUF_MODELS[model].sha256 if model in KNOWN_GGUF_MODELS else None
        )

    def identity(self) -> dict[str, Any]:
        if self._sha256 is None:
            _, self._sha256 = resolve_gguf(self.model)
        return {"provider": "llamacpp", "model": self.model, "model_sha256": self._sha256}

    def _load(self) -> Any:
        if self._server is not None:
            return self._server
        try:
            import xllamacpp
        except ImportError as exc:
            raise JudgeError(
                "the llamacpp judge provider needs the xllamacpp package: "
                "pip install xllamacpp   (or: pip install -e '.[llamacpp]')"
            ) from exc
        path, self._sha256 = resolve_gguf(self.model)
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = self.context_tokens
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.verbosity = -1  # llama.cpp's own log lines would bury the progress bar
        params.warmup = False
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:  # the C++ side reports load failures as generic errors
            raise JudgeError(f"llama.cpp could not load {path}: {exc}") from exc
        return self._server

    def next_token_logprobs(self, messages: list[dict[str, str]], top_k: int) -> ProviderResponse:
        return self.complete(messages, max_tokens=1, top_k=top_k)

    def complete(self, messages: list[dict[str, str]], max_tokens: int, top_k: int = 0) -> ProviderResponse:
        """Greedy completion of up to `max_tokens`; with top_k > 0 also the first token's top-k."""
        server = self._load()
        request: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "temperature": 0.0}
        if top_k:
            request.update(logprobs=True, top_logprobs=top_k)
        started = time.perf_counter()
        try:
            result = server.handle_chat_completions(request)
        except Exception as exc:  # one request's failure (e.g. too long for the context) is one item's
            raise ProviderError(f"{self.name}: llama.cpp refused the request: {str(exc)[:300]}") from None
        latency = time.perf_counter() - started
        if not isinstance(result, dict) or "choices" not in result:
            # e.g. {"error": {"message": "request exceeds the available context size ..."}}: this
            # item is unscored; the model and the run go on
            raise ProviderError(f"{self.name}: llama.cpp returned no completion: {str(result)[:300]}")
        return response_from_openai_json(result, latency, what=self.name)



def served_name(model: str) -> str:
    """The name a served GGUF answers to: a known model's name, else the file's stem."""
    return model if model in KNOWN_GGUF_MODELS else os.path.splitext(os.path.basename(model))[0]


def serve_http(model: str = "qwen2.5-coder-1.5b-instruct", threads: int = 2, parallel: int = 1,
               context_tokens: int = 4096, host: str = "127.0.0.1", port: int = 0,
               api_key_env: str | None = None) -> tuple[Any, str]:
    """llama.cpp's own OpenAI-compatible HTTP server for a GGUF model, in this process, on `host`
    and `port` (0: a free port): (server, base_url ending in /v1). Keep `server`
    alive while in use. The model answers to `served_name(model)`; llama.cpp splits the context
    among the `parallel` slots (each request gets context_tokens / parallel). With `api_key_env`,
    clients must send that variable's value as a Bearer token (the key is never printed)."""
    try:
        import xllamacpp
    except ImportError as exc:
        raise JudgeError("serving a GGUF judge needs the xllamacpp package: pip install xllamacpp   "
                         "(or: pip install -e '.[llamacpp]')") from exc

    path, _ = resolve_gguf(model)
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.model_alias = {served_name(model)}
    params.n_ctx = context_tokens
    params.n_parallel = parallel
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.verbosity = -1
    params.hostnames = [host]
    params.port = port
    if api_key_env:
        params.api_keys = [os.environ[api_key_env]]
    try:
        server = xllamacpp.Server(params)
    except Exception as exc:  # a port in use or a model that does not load: one line, not a C++ trace
        raise JudgeError(f"llama.cpp could not serve {path} on {host}:{port} (is the port free? does the "
                         f"context fit in memory?): {exc}") from exc
    return server, server.listening_address + "/v1"
