"""`judgerl serve CONFIG`: the config's judge behind HTTP, for OpenRLHF, slime, TRL or anyone
(judgerl/serve/). The judge is built exactly as `judgerl train` builds it (the task's judge, the
config's confidence gate); `--set serve.FIELD=VALUE` sets the server's own settings
(serve/settings.py: window_ms, max_batch, group_size, ...), other `--set` pairs the config's."""

from __future__ import annotations

import argparse
import sys

from judgerl.cli_commands.common import SET_HELP, load_config, parse_overrides


def add_parser(subcommands) -> None:
    parser = subcommands.add_parser(
        "serve", help="serve the config's judge over HTTP (OpenRLHF /get_reward, slime, /v1/judge, /v1/rewards)")
    parser.add_argument("config", help="the config whose judge section (and task) builds the judge")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default 8000; 0: a free one)")
    parser.add_argument("--token-file", help="a file holding only the bearer token (default: $JUDGERL_SERVE_TOKEN)")
    parser.add_argument("--no-auth", action="store_true", help="serve without a token (only on a loopback address)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help=SET_HELP + "; serve.FIELD sets the server's own (e.g. --set serve.window_ms=50)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from judgerl.config import ConfigError
    from judgerl.serve.auth import TOKEN_ENV, read_token
    from judgerl.serve.settings import LOOPBACK_HOSTS

    overrides = parse_overrides(args.set)
    settings = _settings({key.removeprefix("serve."): value for key, value in overrides.items()
                          if key.startswith("serve.")}, args)
    token = read_token(args.token_file)
    if args.no_auth and (args.token_file or token):
        raise ConfigError(f"--no-auth with a token ({'--token-file' if args.token_file else '$' + TOKEN_ENV}): "
                          "choose one")
    if args.no_auth and settings.host not in LOOPBACK_HOSTS:
        raise ConfigError(f"--no-auth serves only on a loopback address (127.0.0.1, ::1), not {settings.host!r}: "
                          f"anyone who reaches it could use the judge; set ${TOKEN_ENV} or --token-file")
    if not token and not args.no_auth:
        raise ConfigError(f"no token: set ${TOKEN_ENV} or --token-file FILE (clients send Authorization: Bearer "
                          "TOKEN), or --no-auth to serve on loopback without one")
    config = load_config(args.config, {k: v for k, v in overrides.items() if not k.startswith("serve.")})
    service = _service(config, settings)
    from judgerl.serve.app import run_server

    try:
        run_server(service, token, say=lambda line: print(line, flush=True))
    except KeyboardInterrupt:  # uvicorn re-raises the signal it shut down on, after finishing in-flight requests
        pass
    except OSError as error:  # the port is taken, the address is not this machine's
        raise ConfigError(f"cannot listen on {settings.host}:{settings.port}: {error.strerror or error}") from None
    print("judgerl serve: stopped", file=sys.stderr, flush=True)
    return 0


def _settings(fields: dict, args: argparse.Namespace):
    from pydantic import ValidationError

    from judgerl.config import ConfigError
    from judgerl.serve.settings import ServeSettings

    if args.host is not None:
        fields["host"] = args.host
    if args.port is not None:
        fields["port"] = args.port
    try:
        return ServeSettings.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        flag = {"host": "--host", "port": "--port"}.get(where, f"--set serve.{where}")
        raise ConfigError(f"{flag}: {error['msg']}") from None


def _service(config, settings):
    """The judge `judgerl train` would build from this config, and its confidence gate."""
    from judgerl.judges.gate import ConfidenceGate
    from judgerl.serve.service import JudgeService
    from judgerl.tasks import build_task

    judge = build_task(config).judge()
    return JudgeService(judge, ConfidenceGate(config.judge.confidence_threshold), settings)
