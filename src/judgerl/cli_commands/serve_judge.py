"""`judgerl serve-judge [MODEL]`: a local GGUF judge behind llama.cpp's own OpenAI-compatible
server, in the foreground until Ctrl-C or SIGTERM.

It prints the base URL and the judge section that points judgerl (or anything that speaks
OpenAI's chat API) at it. The printed `model_revision` is the GGUF's sha256: the judgment cache
knows the model by name and weights, so a server restarted on another port answers from the
same cached judgments, and other weights under the same name miss.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any, Callable

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def add_parser(subcommands) -> None:
    parser = subcommands.add_parser(
        "serve-judge", help="serve a local GGUF judge over llama.cpp's OpenAI-compatible HTTP API (foreground)",
        description="Serve a GGUF judge model with llama.cpp's OpenAI-compatible server until Ctrl-C/SIGTERM.")
    parser.add_argument("model", nargs="?", default="qwen2.5-coder-1.5b-instruct",
                        help="a known model (qwen2.5-coder-1.5b-instruct, qwen2.5-coder-0.5b-instruct) or a .gguf path")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (0: any free port; default 8080)")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="CPU threads")
    parser.add_argument("--parallel", type=int, default=1,
                        help="requests decoded at once (llama.cpp slots; each gets context/parallel tokens)")
    parser.add_argument("--context", type=int, default=4096, help="context tokens, shared by the slots")
    parser.add_argument("--api-key-env", default=None,
                        help="environment variable holding a key clients must send (required off loopback)")
    parser.set_defaults(handler=run)


def _check(args: argparse.Namespace) -> str | None:
    """The first thing wrong with the options, as one line, or None."""
    if not 0 <= args.port <= 65535:
        return f"--port {args.port} is not a port (0-65535)"
    for name in ("threads", "parallel", "context"):
        if getattr(args, name) < 1:
            return f"--{name} must be at least 1, not {getattr(args, name)}"
    if args.context < 256 * args.parallel:
        return f"--context {args.context} leaves fewer than 256 tokens to each of the {args.parallel} slots"
    if args.api_key_env and not os.environ.get(args.api_key_env):
        return f"--api-key-env {args.api_key_env}: that environment variable is not set"
    if args.host not in LOOPBACK and not args.api_key_env:
        return (f"--host {args.host} would serve the judge to the network without a key: "
                "give --api-key-env NAME (clients send it as a Bearer token), or bind 127.0.0.1")
    return None


def config_lines(model_name: str, base_url: str, sha256: str, api_key_env: str | None) -> list[str]:
    """The judge section to point judgerl at this server (YAML)."""
    return ["judge:", "  provider: openai", f"  model: {model_name}", f"  base_url: {base_url}",
            f"  api_key_env: {api_key_env or 'null'}", "  openai:", f"    model_revision: gguf-sha256:{sha256}"]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM. The handlers are set again here because llama.cpp's server
    installs its own when it starts (SIGTERM then killed the process without a clean stop)."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


def run(args: argparse.Namespace, wait: Callable[[], None] = _wait_for_stop, serve: Any = None) -> int:
    from judgerl.config import ConfigError
    from judgerl.providers.llamacpp import serve_http, served_name
    from judgerl.providers.weights import resolve_gguf

    problem = _check(args)
    if problem is not None:
        raise ConfigError(problem)
    _, sha256 = resolve_gguf(args.model)  # assembles and verifies a known model's weights first
    serve = serve or serve_http
    server, base_url = serve(args.model, threads=args.threads, parallel=args.parallel,
                             context_tokens=args.context, host=args.host, port=args.port,
                             **({"api_key_env": args.api_key_env} if args.api_key_env else {}))
    name = served_name(args.model)
    print(f"judgerl serve-judge: {name} at {base_url} (threads {args.threads}, parallel {args.parallel}, "
          f"context {args.context}); Ctrl-C to stop", flush=True)
    print("Point judgerl at it with this judge section (log-probability judging works: llama.cpp "
          "returns top_logprobs):", flush=True)
    print("\n".join(config_lines(name, base_url, sha256, args.api_key_env)), flush=True)
    try:
        wait()
    finally:
        del server  # llama.cpp's server stops when its object goes
    print("judgerl serve-judge: stopped", file=sys.stderr, flush=True)
    return 0
