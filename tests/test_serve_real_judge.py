"""The served reward is the in-process reward, with the real local judge (few items, bounded).

llama.cpp's probabilities move a little with what its KV cache held before (the same question
judged twice in one process: P(Yes) 0.921 then 0.915), so the served and in-process readings
are compared through the judgment cache: the in-process run fills it, and the server must hit
it for every item, which it does only if its judge saw exactly the same prompt and answer (the
chat template taken off the query), then give exactly the same rewards."""

from __future__ import annotations

import concurrent.futures

import pytest

from judgerl.cli_commands.common import load_config
from judgerl.tasks import build_task
from test_serve_support import client, served

pytestmark = pytest.mark.judge

QUESTIONS = ["Will I pass my exam if I study?", "Should I bet my savings on one spin?", "Will it be sunny tomorrow?"]
CHATML = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"


def test_served_rewards_equal_in_process_rewards_with_the_local_judge(tmp_path):
    config_path = tmp_path / "judge.yaml"
    config_path.write_text(f"judge:\n  method: labels\n  cache_path: {tmp_path / 'cache'}\n")
    judge = build_task(load_config(str(config_path), {})).judge()  # the 8-ball's label judge, as `judgerl train` builds it
    prompts = [q for q in QUESTIONS for _ in range(2)]
    answers = ["Yes", "No", "Maybe", "No", "Yes", "Maybe"]
    in_process = [j.reward for j in judge.score(prompts, answers)]
    assert all(r is not None for r in in_process)
    post = lambda c, q, a: c.post("/get_reward", json={"query": [CHATML.format(q) + a + "<|im_end|>"],
                                                       "prompts": [CHATML.format(q)]}).json()
    with served(judge, threshold=0.0) as (base, _), client(base, timeout=120) as c:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            replies = list(pool.map(lambda pa: post(c, *pa), zip(prompts, answers)))
        fresh = post(c, "Will my plants grow if I water them?", "Yes")  # not cached: the judge is called
    assert [r["rewards"][0] for r in replies] == in_process
    assert all(r["extra_logs"]["judgerl/cache_hits"] == 1.0 for r in replies)
    assert fresh["extra_logs"]["judgerl/cache_hits"] == 0.0 and 0.0 <= fresh["rewards"][0] <= 1.0
