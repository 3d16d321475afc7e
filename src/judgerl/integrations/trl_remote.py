"""A TRL reward function that judges through a running `judgerl serve` (POST /v1/rewards).

    from judgerl.integrations.trl import make_remote_reward_function
    reward = make_remote_reward_function("http://judge-host:8000")   # token from $JUDGERL_SERVE_TOKEN
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], ...)

TRL's arguments go over as they are: prompts, completions (text or chat messages) and the
dataset's columns (e.g. `reference`); TRL's own keyword arguments do not. The server judges them
with the judge its config builds, applies its own confidence gate, and answers one reward per
completion, null when unscored. The function reports through TRL's `log_metric`
`judgerl/accept_rate`, `judgerl/unscored_share`, `judgerl/unscored`, `judgerl/judge_seconds`
(the whole round trip) and `judgerl/remote_failed` (1 when the call brought no answer). The
server's answer does not tell an unscored judgment from one its confidence gate rejected: here
`unscored_share` counts every None (the in-process function counts the gate's rejections only in
`accept_rate`).

What a failure gives (the choice, for TRL users):
- a call that may work next time (connection refused or dropped, timeout, 5xx, 408, 429, an
  answer that is not JSON, not one reward per completion, or holds a value that is not a finite
  number): None for every completion of that call, and one line on stderr naming the problem.
  TRL's GRPOTrainer turns None into NaN; a completion every reward function gave NaN is left out
  of its group's mean and std (nanmean, nanstd) and gets advantage 0, so a judge outage costs
  that step's learning signal and never trains on an invented reward. (With several reward
  functions and TRL's default "sum_then_normalize" a NaN counts as 0 in the row's nansum: use
  this as the only reward function, or "normalize_then_sum".)
- a call that can never work as configured (401/403: wrong or missing token; any other 4xx: the
  server refuses the request itself, e.g. more completions than serve.max_items): raises
  RemoteJudgeError at once, with a message saying what to fix, instead of a whole run of Nones.

The function pickles (for AsyncGRPOTrainer's reward process) holding only the URL, the name of
the environment variable with the token, the timeout and its name: each process reads the token
from its own environment and opens its own HTTP client. The token is never logged or shown.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Sequence
from urllib.parse import urlsplit, urlunsplit

import httpx

from judgerl.errors import JudgeError
from judgerl.judges.reward_function import columns_from_trl

__all__ = ["RemoteRewardFunction", "RemoteJudgeError", "make_remote_reward_function"]


class RemoteJudgeError(JudgeError):
    """The server refused the request as configured (wrong token, request too large, bad columns)."""


class _Unscored(Exception):
    """A call that brought no usable answer: every completion of it is None."""


def _shown(url: str) -> str:
    """The URL as said in messages: without any user:password part."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class RemoteRewardFunction:
    """`(prompts, completions, **kwargs) -> list[float | None]`, judged by `judgerl serve` at `url`."""

    def __init__(self, url: str, *, token_env: str | None = "JUDGERL_SERVE_TOKEN", timeout_s: float = 180.0,
                 name: str | None = None):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be the server's http:// or https:// address, not {_shown(url)!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s}")
        self.url, self.token_env, self.timeout_s = url.rstrip("/"), token_env, float(timeout_s)
        self.__name__ = name or "judgerl_remote"
        self._client: httpx.Client | None = None
        self._token()  # a missing token is said here, in the caller's process, not at the first step

    def _token(self) -> str | None:
        if self.token_env is None:
            return None
        token = os.environ.get(self.token_env)
        if not token:
            raise ValueError(f"${self.token_env} is not set: it holds the token `judgerl serve` was started with "
                             "(or pass token_env=None for a server started with --no-auth)")
        return token

    def _http(self) -> httpx.Client:
        if self._client is None:
            token = self._token()
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            self._client = httpx.Client(headers=headers, timeout=self.timeout_s)
        return self._client

    def __repr__(self) -> str:
        return f"RemoteRewardFunction({_shown(self.url)!r}, name={self.__name__!r})"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        started, n = time.perf_counter(), len(completions)
        body = {"prompts": list(prompts), "completions": list(completions), **columns_from_trl(kwargs, n)}
        try:
            content = json.dumps(body, allow_nan=False).encode()
        except (TypeError, ValueError) as error:
            raise RemoteJudgeError(f"{self.__name__}: the prompts, completions or dataset columns cannot be sent "
                                   f"as JSON ({error})") from None
        try:
            rewards: list[float | None] = self._post(content, n)
            failed = False
        except _Unscored as problem:
            print(f"judgerl: {self.__name__}: {n} completions unscored (None): {problem}", file=sys.stderr)
            rewards, failed = [None] * n, True
        _report(kwargs.get("log_metric"), rewards, time.perf_counter() - started, failed)
        return rewards

    def _post(self, content: bytes, n: int) -> list[float | None]:
        where = _shown(self.url) + "/v1/rewards"
        try:
            reply = self._http().post(self.url + "/v1/rewards", content=content,
                                      headers={"Content-Type": "application/json"})
        except httpx.TimeoutException:
            raise _Unscored(f"{where} gave no answer within {self.timeout_s:g} s (timeout_s)") from None
        except httpx.HTTPError as error:
            raise _Unscored(f"{where} unreachable ({type(error).__name__}: {str(error)[:200]})") from None
        if reply.status_code != 200:
            said = _error_text(reply)
            if reply.status_code in (401, 403):
                raise RemoteJudgeError(f"{where} refused the token ({reply.status_code}: {said}): set "
                                       f"${self.token_env or 'JUDGERL_SERVE_TOKEN'} to the server's token")
            if 400 <= reply.status_code < 500 and reply.status_code not in (408, 429):
                raise RemoteJudgeError(f"{where} refused the request ({reply.status_code}: {said})")
            raise _Unscored(f"{where} answered {reply.status_code} ({said})")
        return _rewards(reply, n, where)

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "token_env": self.token_env, "timeout_s": self.timeout_s, "name": self.__name__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.url, self.token_env, self.timeout_s = state["url"], state["token_env"], state["timeout_s"]
        self.__name__, self._client = state["name"], None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _error_text(reply: httpx.Response) -> str:
    try:
        said = reply.json().get("error")
    except Exception:
        said = None
    return str(said or reply.text or reply.reason_phrase)[:200].replace("\n", " ")


def _rewards(reply: httpx.Response, n: int, where: str) -> list[float | None]:
    """The answer's rewards, checked: one per completion, each null or a finite number."""
    try:
        answer = json.loads(reply.content)
    except ValueError:
        raise _Unscored(f"{where} answered 200 with a body that is not JSON ({reply.text[:80]!r})") from None
    rewards = answer.get("rewards") if isinstance(answer, dict) else None
    if not isinstance(rewards, list):
        raise _Unscored(f"{where} answered 200 without a 'rewards' list")
    if len(rewards) != n:
        raise _Unscored(f"{where} answered {len(rewards)} rewards for {n} completions")
    for value in rewards:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise _Unscored(f"{where} answered a reward that is not a finite number ({str(value)[:40]!r})")
    return [None if value is None else float(value) for value in rewards]


def _report(log_metric: Any, rewards: list[float | None], seconds: float, failed: bool) -> None:
    if not callable(log_metric) or not rewards:
        return
    n, unscored = len(rewards), sum(r is None for r in rewards)
    log_metric("judgerl/accept_rate", (n - unscored) / n)
    log_metric("judgerl/unscored_share", unscored / n)
    log_metric("judgerl/unscored", float(unscored))
    log_metric("judgerl/judge_seconds", float(seconds))
    log_metric("judgerl/remote_failed", 1.0 if failed else 0.0)


def make_remote_reward_function(url: str, *, token_env: str | None = "JUDGERL_SERVE_TOKEN", timeout_s: float = 180.0,
                                name: str | None = None) -> RemoteRewardFunction:
    """A TRL reward function judged by the `judgerl serve` at `url` (its base address).

    - `token_env`: the environment variable holding the server's bearer token (None: a server
      started with --no-auth); read in each process that calls the function, never stored;
    - `timeout_s`: longest wait for one call's answer (then that call's completions are None);
      keep it above the server's serve.request_timeout_s (170 s by default) so that the server's
      own 504 comes first;
    - `name`: TRL's name for it in the logs (`rewards/<name>/mean`), default "judgerl_remote".
    """
    return RemoteRewardFunction(url, token_env=token_env, timeout_s=timeout_s, name=name)
