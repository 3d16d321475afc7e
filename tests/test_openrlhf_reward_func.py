"""The `--remote_rm_url file.py` reward function, loaded and called as OpenRLHF does
(openrlhf/utils/agent.py: spec_from_file_location, then one sample per call through
asyncio.to_thread, many at once)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

import judgerl.integrations.openrlhf_reward_func as shipped

TESTS = Path(__file__).parent
EXAMPLE = TESTS.parent / "examples" / "openrlhf" / "reward_func.py"
CHATML = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"

SCRIPT = """
import asyncio, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("reward_func", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
queries, prompts, labels = json.loads(sys.stdin.read())

async def main():  # as SingleTurnAgentExecutor._fetch_rewards_via_func: one sample per thread, all at once
    return await asyncio.gather(*(asyncio.to_thread(module.reward_func, [q], [p], [l])
                                  for q, p, l in zip(queries, prompts, labels)))

answers = asyncio.run(main())
from judgerl.integrations.openrlhf import _state
calls = _state["service"].metrics.batch_rows.count
print(json.dumps({"answers": answers, "judge_calls": calls}))
"""


def run_as_openrlhf(tmp_path, file, queries, prompts, labels):
    config = tmp_path / "judge.yaml"
    config.write_text(yaml.safe_dump({"task": "generation", "policy": {"kind": "causal_lm"}, "judge": {
        "provider": "python", "method": "reward_function", "function": "test_serve_support:length_reward"}}))
    env = {"PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1", "JUDGERL_OPENRLHF_CONFIG": str(config),
           "PATH": "/usr/bin:/bin"}
    import json

    result = subprocess.run([sys.executable, "-c", SCRIPT, str(file)], input=json.dumps([queries, prompts, labels]),
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_shipped_file_and_the_example_give_openrlhf_its_rewards_in_batches(tmp_path):
    answers = ["x" * n for n in range(1, 41)]
    prompts = [CHATML.format(q=f"question {i % 5}") for i in range(40)]
    queries = [p + a + "<|im_end|>" for p, a in zip(prompts, answers)]
    for file in (Path(shipped.__file__), EXAMPLE):
        out = run_as_openrlhf(tmp_path, file, queries, prompts, ["ref"] * 40)
        assert [a["rewards"] for a in out["answers"]] == [[len(a) / 100] for a in answers]
        assert [a["scores"] for a in out["answers"]] == [[len(a) / 100] for a in answers]
        assert all(set(a["extra_logs"]) == {"judgerl/unscored", "judgerl/gate_rejected", "judgerl/cache_hits",
                                       "judgerl/judge_seconds",
                                            "judgerl/model_seconds"} for a in out["answers"])
        assert out["judge_calls"] < 40  # 40 concurrent one-sample calls, judged in batches


def test_an_unscored_sample_is_none_which_openrlhf_cannot_train_on(tmp_path):
    out = run_as_openrlhf(tmp_path, Path(shipped.__file__), ["not the prompt at all"], [CHATML.format(q="q")], [None])
    answer = out["answers"][0]
    assert answer["rewards"] == [None] and answer["scores"] == [None] and answer["extra_logs"]["judgerl/unscored"] == 1
    # What OpenRLHF does with it (samples_generator.py, _process_response_into_experience): torch.tensor([reward])
    import pytest
    import torch

    with pytest.raises((TypeError, RuntimeError)):
        torch.tensor([answer["rewards"]])
    assert torch.tensor([[0.25]]).shape == (1, 1)  # a scored one goes through


def test_without_a_config_the_reward_function_says_what_to_set(monkeypatch):
    import pytest

    from judgerl.config import ConfigError
    from judgerl.integrations import openrlhf

    monkeypatch.delenv(openrlhf.CONFIG_ENV, raising=False)
    monkeypatch.setattr(openrlhf, "_state", {})
    with pytest.raises(ConfigError, match="JUDGERL_OPENRLHF_CONFIG"):
        openrlhf.reward_func(["q"], ["q"], [None])


def test_the_example_judge_config_is_valid():
    from judgerl.cli_commands.common import load_config

    config = load_config(str(EXAMPLE.parent / "judge.yaml"), {})
    assert config.judge.method == "rubric" and config.task == "generation"
