"""judgerl.integrations.verl: verl's call shapes always; verl 0.9.1's own reward managers when verl
imports (it does not install into .venv: scripts/setup_peers.sh puts it in .peers-site, see below)."""

import asyncio
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from judgerl.errors import JudgeError
from judgerl.integrations import verl as adapter
from loopback_servers import FaultyOpenAIServer

SECTION = {"provider": "python", "method": "reward_function", "function": "test_verl:matches_reference"}


def matches_reference(prompts, completions, reference=None, **columns):
    """A TRL-style reward: 1 when the completion holds the reference; None for "broken"."""
    reference = reference or [None] * len(completions)
    return [None if "broken" in c else float(r is not None and r in c) for c, r in zip(completions, reference)]


@pytest.fixture(autouse=True)
def fresh_sessions():
    adapter._sessions.clear()
    yield
    adapter._sessions.clear()


def test_per_item_call_shape_and_the_same_keys_for_every_item():
    out = adapter.compute_score("gsm8k", "the answer is 4", "4", {"question": "2+2?"}, judge=SECTION)
    assert out == {"score": 1.0, "judgerl_scored": 1.0, "judgerl_cached": 0.0, "judgerl_judge_seconds": out["judgerl_judge_seconds"]}
    off = adapter.compute_score("gsm8k", "5", "4", {"question": "2+2?"}, judge=SECTION, on_unscored=-7.0)
    assert set(off) == set(out) and off["score"] == 0.0


def test_unscored_raises_by_default_in_one_line_and_never_becomes_a_reward():
    with pytest.raises(adapter.UnscoredJudgment) as error:
        adapter.compute_score("gsm8k", "broken", "4", {"question": "2+2?"}, judge=SECTION)
    message = str(error.value)
    assert "\n" not in message and "item 0" in message and "on_unscored" in message


def test_an_explicit_on_unscored_number_is_used_and_flagged():
    out = adapter.compute_score("gsm8k", "broken", "4", {"question": "2+2?"}, judge=SECTION, on_unscored=0.25)
    assert out["score"] == 0.25 and out["judgerl_scored"] == 0.0


@pytest.mark.parametrize("solution,truth,extra,why", [
    (None, "4", {"question": "q"}, "response is a NoneType"),
    (["tokens"], "4", {"question": "q"}, "response is a list"),
    ("4", "4", None, "holds no question"),
    ("4", "4", {"other": "q"}, "holds no question"),
    ("4", "4", "not a dict", "holds no question"),
])
def test_wrong_types_from_the_engine_are_unscored_with_the_reason(solution, truth, extra, why):
    with pytest.raises(adapter.UnscoredJudgment, match=why):
        adapter.compute_score("src", solution, truth, extra, judge=SECTION)
    assert adapter.compute_score("src", solution, truth, extra, judge=SECTION, on_unscored=0.0)["judgerl_scored"] == 0.0


RECEIVED = []


def recording(prompts, completions, **columns):
    RECEIVED.append((list(prompts), columns.get("reference")))
    return [0.5] * len(completions)


def test_a_list_ground_truth_and_a_chat_prompt_reach_the_judge():
    RECEIVED.clear()
    section = {**SECTION, "function": "test_verl:recording"}
    adapter.compute_score("src", "I say Paris", ["Paris", "paris"],
                          {"prompt": [{"role": "user", "content": "Capital of France?"}]}, judge=section)
    assert RECEIVED == [(["Capital of France?"], ["any of: Paris | paris"])]
    adapter.compute_score("src", "x", {"answer": 4}, {"problem": "2+2"}, judge=section)
    assert RECEIVED[-1] == (["2+2"], ['{"answer": 4}'])
    adapter.compute_score("src", "x", None, {"question": "q"}, judge=section)
    assert RECEIVED[-1] == (["q"], None)  # no ground truth: no reference column at all


@pytest.mark.parametrize("kwargs,message", [
    ({}, "JUDGERL_VERL_CONFIG"),
    ({"judge": SECTION, "confidence_treshold": 0.5}, "unknown setting"),
    ({"judge": SECTION, "on_unscored": float("nan")}, "finite number"),
    ({"judge": SECTION, "on_unscored": "zero"}, "finite number"),
])
def test_configuration_mistakes_are_one_line(kwargs, message, monkeypatch):
    monkeypatch.delenv(adapter.CONFIG_ENV, raising=False)
    with pytest.raises(JudgeError, match=message) as error:
        adapter.compute_score("s", "a", "b", {"question": "q"}, **kwargs)
    assert "\n" not in str(error.value)


def test_the_config_comes_from_the_environment_variable(tmp_path, monkeypatch):
    import yaml

    path = tmp_path / "judge.yaml"
    path.write_text(yaml.safe_dump({"judge": SECTION}))
    monkeypatch.setenv(adapter.CONFIG_ENV, str(path))
    assert adapter.compute_score("s", "x 4", "4", {"question": "q"})["score"] == 1.0


def test_batch_form_one_call_with_verls_shapes():
    out = adapter.compute_score_batch(data_sources=np.array(["a", "a", "b"], dtype=object),
                                      solution_strs=["4", "5", "Paris"], ground_truths=["4", "4", "Paris"],
                                      extra_infos=[{"question": "2+2"}, {"question": "2+2"}, {"question": "capital"}],
                                      judge=SECTION)
    assert [o["score"] for o in out] == [1.0, 0.0, 1.0] and all(o["judgerl_scored"] == 1.0 for o in out)


def test_async_form_over_an_http_judge_with_the_confidence_gate():
    def five_or_unsure(content):
        return [("5", -0.01), ("1", -6.0)] if "sure" in content else [("1", -1.2), ("2", -1.2), ("3", -1.3)]

    with FaultyOpenAIServer(responder=five_or_unsure) as server:
        section = {"provider": "openai", "model": "m", "base_url": server.base_url, "api_key_env": None,
                   "method": "rubric", "cache": False}
        sure = asyncio.run(adapter.acompute_score("s", "I am sure", "x", {"question": "q"}, judge=section))
        assert sure["score"] == pytest.approx(1.0, abs=0.01) and sure["judgerl_scored"] == 1.0
        with pytest.raises(adapter.UnscoredJudgment, match="confidence gate"):
            asyncio.run(adapter.acompute_score("s", "maybe", "x", {"question": "q"}, judge=section))
        gated_off = asyncio.run(adapter.acompute_score("s", "maybe", "x", {"question": "q"}, judge=section,
                                                       confidence_threshold=None))
        assert gated_off["judgerl_scored"] == 1.0 and not math.isnan(gated_off["score"])


def test_all_replicas_down_is_unscored_not_a_reward():
    with FaultyOpenAIServer(p500=1.0) as a, FaultyOpenAIServer(p500=1.0) as b:
        section = {"provider": "openai", "model": "m", "api_key_env": None, "method": "rubric", "cache": False,
                   "max_retries": 1, "openai": {"base_urls": [a.base_url, b.base_url]}}
        with pytest.raises(adapter.UnscoredJudgment, match="replicas"):
            adapter.compute_score("s", "The capital of France is Paris.", "x", {"question": "q"}, judge=section)


# -- verl 0.9.1's own code ---------------------------------------------------------------------
# verl does not install into .venv (its pins: transformers<5.11, ray[default]): scripts/setup_peers.sh
# (run by scripts/setup.sh) puts verl 0.9.1 and its pinned dependencies in .peers-site, which goes at
# the END of sys.path, so that .venv's own packages come first wherever both have one.
_PEERS_SITE = Path(__file__).resolve().parents[1] / ".peers-site"


def _import_verl():
    if _PEERS_SITE.is_dir() and str(_PEERS_SITE) not in sys.path:
        sys.path.append(str(_PEERS_SITE))
    pytest.importorskip("verl", reason="verl 0.9.1 is not importable here: run scripts/setup_peers.sh")


def _data(tokenizer, responses, truths, questions):
    import torch
    from verl import DataProto

    prompt = torch.tensor([[5, 6]] * len(responses))
    response = torch.tensor([[tokenizer.convert_tokens_to_ids(r), 0] for r in responses])
    mask = torch.tensor([[1, 1, 1, 0]] * len(responses))
    return DataProto.from_dict(
        tensors={"prompts": prompt, "responses": response, "attention_mask": mask,
                 "input_ids": torch.cat([prompt, response], 1)},
        non_tensors={"data_source": np.array(["toy"] * len(responses), dtype=object),
                     "reward_model": np.array([{"ground_truth": t} for t in truths], dtype=object),
                     "extra_info": np.array([{"question": q} for q in questions], dtype=object)})


def test_verls_reward_loop_naive_manager_awaits_acompute_score():
    _import_verl()
    from omegaconf import OmegaConf
    from tiny_hf import tokenizer
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": "pkg://judgerl.integrations.verl", "name": "acompute_score", "reward_kwargs": {"judge": SECTION}}}})
    tok = tokenizer()
    manager = NaiveRewardManager(config, tok, get_custom_reward_fn(config))
    data = _data(tok, ["good", "bad"], ["good", "good"], ["is it good", "is it good"])
    results = [manager.loop.run_until_complete(manager.run_single(data[i:i + 1])) for i in range(2)]
    assert [r["reward_score"] for r in results] == [1.0, 0.0]
    assert set(results[0]["reward_extra_info"]) == {"score", "judgerl_scored", "judgerl_cached", "judgerl_judge_seconds"}
    scores = NaiveRewardManager.assemble_rm_scores(data, [r["reward_score"] for r in results])
    assert scores.sum().item() == 1.0


def test_verls_batch_reward_manager_calls_compute_score_batch():
    _import_verl()
    from functools import partial

    from tiny_hf import tokenizer
    from verl.workers.reward_manager.batch import BatchRewardManager

    tok = tokenizer()
    manager = BatchRewardManager(tok, num_examine=0, compute_score=partial(adapter.compute_score_batch, judge=SECTION))
    data = _data(tok, ["good", "bad", "Yes"], ["good", "good", "Yes"], ["q1", "q1", "q2"])
    out = manager(data, return_dict=True)
    assert out["reward_tensor"].sum(dim=1).tolist() == [1.0, 0.0, 1.0]
    assert out["reward_extra_info"]["judgerl_scored"] == [1.0, 1.0, 1.0]
