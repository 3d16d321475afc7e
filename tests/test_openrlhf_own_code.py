"""judgerl serve and the reward_func file against OpenRLHF 0.11.2's own reward client
(openrlhf.utils.agent.SingleTurnAgentExecutor: it decodes prompt + response with special tokens,
POSTs {"query", "prompts", "labels"} to --reward.remote_url, or calls a reward_func file, and keeps
the answer's "rewards" / "scores" / "extra_logs"). OpenRLHF does not install into .venv (vLLM,
DeepSpeed): scripts/setup_peers.sh puts it in .peers-site, appended to sys.path here. Only its
vLLM engine is faked: it "generates" fixed tokens."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from test_serve_support import LengthJudge, NaNJudge, served

PEERS_SITE = Path(__file__).resolve().parents[1] / ".peers-site"
if PEERS_SITE.is_dir() and str(PEERS_SITE) not in sys.path:
    sys.path.append(str(PEERS_SITE))
agent = pytest.importorskip("openrlhf.utils.agent", reason="OpenRLHF 0.11.2 is not importable: run scripts/setup_peers.sh")


class FakeEngine:
    """vLLM's engine as the executor awaits it: the response is the given words' token ids."""

    def __init__(self, token_ids):
        self.token_ids = token_ids

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        output = SimpleNamespace(token_ids=self.token_ids, finish_reason="stop", logprobs=None)
        return SimpleNamespace(outputs=[output])


def rollout(executor, prompt, answer_words):
    from tiny_hf import tokenizer

    tok = tokenizer()
    answer_ids = tok(" ".join(answer_words), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    params = SimpleNamespace(max_tokens=16, logprobs=None)
    return asyncio.run(executor.execute(prompt, "the answer", params, 64, tok, FakeEngine(answer_ids)))


def test_openrlhf_gets_the_judges_reward_from_judgerl_serve():
    with served(LengthJudge(), token=None) as (base, service):
        executor = agent.SingleTurnAgentExecutor(f"{base}/get_reward")
        output = rollout(executor, "is the answer good", ["Yes", "good"])
    # OpenRLHF decoded "is the answer good Yes good </s>"; the server split off the prompt and the
    # template's </s>: the judge saw "Yes good" (8 characters -> 0.08)
    assert output["reward"] == [0.08] and output["scores"] == [0.08]
    assert output["extra_logs"]["judgerl/unscored"] == 0


def test_an_unscored_sample_reaches_openrlhf_as_none_which_it_cannot_train_on():
    import torch

    with served(NaNJudge(), token=None) as (base, service):
        output = rollout(agent.SingleTurnAgentExecutor(f"{base}/get_reward"), "is the answer good", ["Yes"])
    assert output["reward"] == [None] and output["extra_logs"]["judgerl/unscored"] == 1
    # samples_generator._process_response_into_experience (it imports vLLM, so not importable here)
    # builds rewards=torch.tensor([reward]): a None stops the run there, a number would be trained on
    with pytest.raises((TypeError, RuntimeError)):
        torch.tensor([output["reward"]])


def test_a_dead_server_leaves_openrlhf_with_no_reward_not_a_number(monkeypatch):
    monkeypatch.setattr(agent.asyncio, "sleep", _no_wait)  # its 5 tries wait 1 s each
    executor = agent.SingleTurnAgentExecutor("http://127.0.0.1:9/get_reward")
    output = rollout(executor, "is the answer good", ["Yes"])
    assert output["reward"] is None  # caught by OpenRLHF; its Experience then has rewards=None


async def _no_wait(seconds):
    return None


def test_openrlhf_loads_and_calls_the_reward_func_file(tmp_path, monkeypatch):
    config = tmp_path / "judge.yaml"
    config.write_text(yaml.safe_dump({"task": "generation", "policy": {"kind": "causal_lm"}, "judge": {
        "provider": "python", "method": "reward_function", "function": "test_serve_support:length_reward"}}))
    monkeypatch.setenv("JUDGERL_OPENRLHF_CONFIG", str(config))
    import judgerl.integrations.openrlhf_reward_func as shipped

    executor = agent.SingleTurnAgentExecutor(shipped.__file__)
    assert executor.reward_func is not None
    output = rollout(executor, "is the answer good", ["No", "bad", "answer"])
    assert output["reward"] == [0.13]  # "No bad answer"
