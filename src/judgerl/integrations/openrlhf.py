"""OpenRLHF's `--remote_rm_url path/to/file.py` form: `reward_func(queries, prompts, labels)`,
judging in the trainer's own process with the judge of the judgerl config named by
$JUDGERL_OPENRLHF_CONFIG (built once per process, as `judgerl train` builds it, with its
confidence gate).

How OpenRLHF calls it (openrlhf/utils/agent.py, SingleTurnAgentExecutor; OpenRLHF at 3c3be62):
the file is loaded in each rollout worker; every sample calls `reward_func([query], [prompt],
[label])` through `asyncio.to_thread`, many at once, and reads `rewards`, `scores` and
`extra_logs` from the dict it returns. The calls are gathered here as the server gathers
requests (serve/batching.py: a 20 ms window), so a batching or group judge sees batches, not
single samples, and the query is split and cleaned by the server's own code (serve/openrlhf.py).

An unscored sample's reward is None, for the reason given in serve/openrlhf.py: OpenRLHF cannot
leave a sample out, and `torch.tensor([None])` stops the run instead of training on a number
judgerl did not give. A call whose judgments take longer than request_timeout_s (170 s) raises.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any, Sequence

from judgerl.serve import openrlhf as protocol
from judgerl.serve.service import JudgeService, Row

CONFIG_ENV = "JUDGERL_OPENRLHF_CONFIG"
"""The judgerl config (YAML) whose judge this reward function uses."""
SET_ENV = "JUDGERL_OPENRLHF_SET"
"""Optional `FIELD=VALUE` overrides of that config, separated by spaces (as `--set` takes them)."""

_lock = threading.Lock()
_state: dict[str, Any] = {}


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any] | None = None,
                **kwargs: Any) -> dict[str, Any]:
    """{"rewards": [float | None], "scores": [float | None], "extra_logs": {name: float}}, one
    reward per query; None when the judge could not score it (never 0)."""
    service, loop = _service()
    started = time.perf_counter()
    queries, prompts = list(queries), list(prompts)
    if len(prompts) != len(queries) or (labels is not None and len(labels) != len(queries)):
        raise ValueError(f"reward_func: {len(queries)} queries, {len(prompts)} prompts, "
                         f"{'no' if labels is None else len(labels)} labels: one of each per sample")
    rows = protocol.rows_from_queries(queries, prompts, list(labels) if labels is not None else None)
    wanted = [r for r in rows if isinstance(r, Row)]
    future = asyncio.run_coroutine_threadsafe(service.judge_rows(wanted), loop)
    judged = iter(future.result(timeout=service.settings.request_timeout_s))
    judgments = [next(judged) if isinstance(r, Row) else None for r in rows]
    rewards = [service.reward(j) if j is not None else None for j in judgments]
    return protocol.answer(rewards, judgments, time.perf_counter() - started)


def _service() -> tuple[JudgeService, asyncio.AbstractEventLoop]:
    """This process's judge service and the event loop its batcher runs on (a daemon thread)."""
    with _lock:
        if "service" not in _state:
            service = build_service(os.environ.get(CONFIG_ENV), os.environ.get(SET_ENV, ""))
            loop = asyncio.new_event_loop()
            started = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(lambda: (service.batcher.start(), started.set()))  # start() needs the running loop
                loop.run_forever()

            threading.Thread(target=run, name="judgerl-openrlhf-batcher", daemon=True).start()
            if not started.wait(30):
                raise RuntimeError("judgerl: the reward function's batching loop did not start")
            _state.update(service=service, loop=loop)
        return _state["service"], _state["loop"]


def build_service(config_path: str | None, overrides: str = "") -> JudgeService:
    """The judge service of a judgerl config: its task's judge and confidence gate, with the
    server's default batching."""
    from judgerl.cli_commands.common import load_config, parse_overrides
    from judgerl.config import ConfigError
    from judgerl.judges.gate import ConfidenceGate
    from judgerl.serve.settings import ServeSettings
    from judgerl.tasks import build_task

    if not config_path:
        raise ConfigError(f"set ${CONFIG_ENV} to the judgerl config whose judge gives OpenRLHF its rewards")
    config = load_config(config_path, parse_overrides(overrides.split()))
    return JudgeService(build_task(config).judge(), ConfidenceGate(config.judge.confidence_threshold), ServeSettings())
