"""Judges as TRL-style reward functions."""

import asyncio
import inspect
import math

import pytest

from fake_judges import ScriptedProvider
from judgerl.judges.pointwise import RubricJudge
from judgerl.judges.reward_function import as_async_reward_function, as_reward_function


def judge():
    def answer(messages):
        content = messages[-1]["content"]
        if "broken" in content:
            return [("nonsense", 0.0)]
        return [("5", 0.0)] if "thanks" in content else [("1", 0.0)]
    return RubricJudge(ScriptedProvider(answer), "Polite answers score high.", name="politeness")


def test_plain_strings_and_unscored_as_none():
    reward = as_reward_function(judge())
    assert reward.__name__ == "judgerl_politeness"
    assert list(inspect.signature(reward).parameters) == ["prompts", "completions", "kwargs"]
    out = reward(prompts=["hi", "hi", "hi"], completions=["thanks!", "go away", "broken"], completion_ids=[[1], [2], [3]])
    assert out == [1.0, 0.0, None]


def test_conversational_format():
    reward = as_reward_function(judge())
    prompts = [[{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}]]
    completions = [[{"role": "assistant", "content": "thanks for asking"}]]
    assert reward(prompts, completions) == [1.0]


def test_async_form():
    reward = as_async_reward_function(judge())
    assert inspect.iscoroutinefunction(reward.__call__)  # how TRL (is_async_callable) tells an async callable
    assert asyncio.run(reward(["hi", "hi"], ["thanks", "no"])) == [1.0, 0.0]


def test_rejects_other_inputs():
    with pytest.raises(TypeError):
        as_reward_function(judge())([42], ["x"])


def test_dataset_columns_reach_the_judge_and_trls_own_arguments_do_not():
    seen = []

    def answer(messages):
        seen.append(messages)
        return [("5", 0.0)]

    reward = as_reward_function(RubricJudge(ScriptedProvider(answer), "Correct answers score high."))
    out = reward(["2+2?", "2+2?"], ["4", "5"], reference=["4", "4"], topic=["sums", "sums"],
                 trainer_state=object(), completion_ids=[[1], [2]], log_extra=print, log_metric=print)
    assert out == [1.0, 1.0]
    assert all("<reference>\n4\n</reference>" in messages[1]["content"] for messages in seen)

    from judgerl.judges.python_reward import RewardFunctionJudge
    received = []
    wrapped = as_reward_function(RewardFunctionJudge(lambda prompts, completions, **kw: received.append(kw) or [0.5], "f"))
    assert wrapped(["p"], ["c"], reference=["r"], trainer_state=object(), completion_ids=[[7]], log_metric=print) == [0.5]
    assert received == [{"reference": ["r"]}]


def test_a_conversational_prompt_reaches_the_judge_whole():
    seen = []

    def answer(messages):
        seen.append(messages[1]["content"])
        return [("5", 0.0)]

    reward = as_reward_function(RubricJudge(ScriptedProvider(answer), "Follow the system prompt."))
    conversation = [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Bonjour !"}, {"role": "user", "content": "And thanks?"}]
    reward([conversation, [{"role": "user", "content": "Just this"}]],
           [[{"role": "assistant", "content": "Merci"}], [{"role": "assistant", "content": "ok"}]])
    assert ("<prompt>\nSystem: Answer in French.\n\nUser: Hi\n\nAssistant: Bonjour !\n\nUser: And thanks?\n</prompt>"
            in seen[0])
    assert "<prompt>\nJust this\n</prompt>" in seen[1]  # a lone user turn is judged as the same string prompt
    assert "<response>\nMerci\n</response>" in seen[0]
