"""Judging overlapped with generation (judging_stream.py, rl.overlap_judging): the judge gets each
prompt's completions while the others still generate, and the step's results are exactly those of
generating everything first and judging after: same completions, rewards, gate, judgments in
the same order; a judge that fails mid-stream stops the step with its error; a judge that sees
whole batches (a TRL reward function) still gets the whole batch in one call."""

from __future__ import annotations

import threading
import time

import pytest
import torch

pytest.importorskip("transformers")

from judgerl.algorithms.grpo import GRPO  # noqa: E402
from judgerl.errors import JudgeError  # noqa: E402
from judgerl.judges.base import Judgment  # noqa: E402
from judgerl.judges.gate import ConfidenceGate  # noqa: E402
from judgerl.policies.causal_lm import CausalLMPolicy  # noqa: E402
from judgerl.policies.lean_causal_lm import LeanCausalLMPolicy  # noqa: E402
from judgerl.rollouts import SamplingSettings  # noqa: E402
from judgerl.training.loop import LoopSettings  # noqa: E402
from judgerl.training.rollout_step import sample_and_judge  # noqa: E402
from test_lean_llama import tiny_model  # noqa: E402
from tiny_hf import tokenizer  # noqa: E402

PROMPTS = [{"prompt": p, "reference": f"ref-{i}"} for i, p in
           enumerate(["the question is good", "hi", "is the answer good or bad", "the answer", "question is", "bad"])]


class RecordingJudge:
    """Scores by length and by whether the row's reference arrived; records each call's batch and
    which thread made it. `fail_on_call`: that call raises JudgeError (a spent budget, say)."""

    supports_pairwise = False
    supports_groups = False
    judge_id = "recording"

    def __init__(self, streaming: bool = True, delay_s: float = 0.0, fail_on_call: int | None = None):
        self.supports_streaming = streaming
        self.delay_s, self.fail_on_call = delay_s, fail_on_call
        self.calls: list[list[str]] = []
        self.threads: list[str] = []

    def score(self, prompts, completions, reference=None, **columns):
        self.calls.append(list(completions))
        self.threads.append(threading.current_thread().name)
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise JudgeError("the judge budget of 0.01 is spent")
        time.sleep(self.delay_s)
        out = []
        for prompt, completion, ref in zip(prompts, completions, reference or [None] * len(prompts)):
            reward = (len(completion) % 5) / 4 if ref is not None else None
            out.append(Judgment(kind="score", question=prompt, answer=completion, judge_id=self.judge_id,
                                status="scored" if reward is not None else "unscored", reward=reward,
                                confidence=0.4 + 0.6 * (len(completion) % 2), error=None if ref else "no reference"))
        return out


def policy(engine: str, family: str = "llama"):
    tok = tokenizer()
    cls = LeanCausalLMPolicy if engine == "lean" else CausalLMPolicy
    made = cls(tiny_model(family, len(tok)), tok)
    # Five stop tokens of ~26: rows stop early at different steps, so groups finish apart.
    made.stop_ids = torch.tensor([4, 5, 6, 7, 8])
    return made


def step(made, judge, overlap: bool, seed: int = 3):
    settings = LoopSettings(overlap_judging=overlap, sampling=SamplingSettings(temperature=1.0, max_new_tokens=14))
    algorithm = GRPO(samples_per_prompt=3, kl_coef=0.1)
    return sample_and_judge(made, PROMPTS, judge, algorithm, ConfidenceGate(0.5), settings,
                            torch.Generator().manual_seed(seed)), algorithm


@pytest.mark.parametrize("engine,family", [("lean", "llama"), ("lean", "gpt2"), ("hf", "llama")])
def test_overlapped_judging_gives_exactly_the_results_of_judging_after_generation(engine, family):
    made = policy(engine, family)
    streamed_judge, plain_judge = RecordingJudge(), RecordingJudge()
    streamed, _ = step(made, streamed_judge, overlap=True)
    plain, _ = step(made, plain_judge, overlap=False)
    assert streamed.rollout.completions == plain.rollout.completions
    assert torch.equal(streamed.rollout.completion_ids, plain.rollout.completion_ids)
    assert torch.equal(streamed.judged.rewards, plain.judged.rewards)
    assert torch.equal(streamed.judged.accepted, plain.judged.accepted)
    assert [(j.answer, j.reward, j.status) for j in streamed.judged.judgments] == \
           [(j.answer, j.reward, j.status) for j in plain.judged.judgments]
    assert all(j.answer == c for j, c in zip(streamed.judged.judgments, streamed.rollout.completions))
    # the reference column reached the judge on both paths (else every judgment is unscored)
    assert any(j.scored for j in streamed.judged.judgments)
    # Streamed: the judge was called with parts of the batch, on its own thread, each completion once.
    assert len(plain_judge.calls) == 1 and len(plain_judge.calls[0]) == 18
    assert len(streamed_judge.calls) > 1, "no group finished before the others: nothing was streamed"
    assert sorted(c for call in streamed_judge.calls for c in call) == sorted(plain.rollout.completions)
    assert all(name.startswith("judgerl-judge") for name in streamed_judge.threads)


def test_completions_reported_during_generation_hold_the_rollouts_final_text():
    made = policy("lean")
    reported: dict[int, str] = {}
    order: list[list[int]] = []

    def done(rows, texts):
        order.append(rows)
        for row, text in zip(rows, texts):
            assert row not in reported  # each row once
            reported[row] = text

    prompts = ["hi", "the question is good", "bad"]
    rollout = made.sample(prompts, 4, SamplingSettings(max_new_tokens=14), torch.Generator().manual_seed(0),
                          on_completions_done=done)
    assert [reported[row] for row in range(12)] == rollout.completions
    assert len(order) > 1  # reported over several decode steps, not all at the end
    plain = made.sample(prompts, 4, SamplingSettings(max_new_tokens=14), torch.Generator().manual_seed(0))
    assert plain.completions == rollout.completions and torch.equal(plain.old_logprobs, rollout.old_logprobs)


def test_a_judge_that_fails_mid_stream_stops_the_step_with_its_error():
    with pytest.raises(JudgeError, match="budget"):
        step(policy("lean"), RecordingJudge(fail_on_call=1, delay_s=0.05), overlap=True)


def test_a_judge_that_reads_whole_batches_gets_the_whole_batch_once():
    judge = RecordingJudge(streaming=False)
    sampled, _ = step(policy("lean"), judge, overlap=True)
    assert len(judge.calls) == 1 and judge.calls[0] == sampled.rollout.completions


def test_the_reference_is_scored_once_while_the_judge_works():
    made = policy("lean")
    calls: list[bool] = []
    original = made.score

    def counting(rollout, **kwargs):
        calls.append(bool(kwargs.get("reference")))
        return original(rollout, **kwargs)

    made.score = counting
    sampled, algorithm = step(made, RecordingJudge(delay_s=0.05), overlap=True)
    assert calls == [True]  # before the judgments came back
    assert sampled.times["time/before_judgments_s"] > 0
    algorithm.prepare(made, sampled.rollout, sampled.judged)
    assert calls == [True]  # prepare used the reference log-probs computed while the judge worked


class RecordingGroupJudge(RecordingJudge):
    """Ranks each prompt's group in one call (RULER-style): reward by rank of length in the group."""

    supports_groups = True

    def score_groups(self, prompts, groups, **columns):
        self.calls.append([len(group) for group in groups])
        out = []
        for prompt, group in zip(prompts, groups):
            ranks = sorted(range(len(group)), key=lambda i: (len(group[i]), i))
            out.append([Judgment(kind="score", question=prompt, answer=text, judge_id=self.judge_id, status="scored",
                                 reward=ranks.index(i) / max(1, len(group) - 1), confidence=1.0)
                        for i, text in enumerate(group)])
        return out


def test_a_group_judge_is_streamed_whole_groups_only_with_the_same_rankings():
    made = policy("lean")
    streamed_judge, plain_judge = RecordingGroupJudge(), RecordingGroupJudge()
    streamed, _ = step(made, streamed_judge, overlap=True)
    plain, _ = step(made, plain_judge, overlap=False)
    assert torch.equal(streamed.judged.rewards, plain.judged.rewards)
    assert all(size == 3 for call in streamed_judge.calls for size in call)  # never a part of a group
    assert sum(len(call) for call in streamed_judge.calls) == 6


def test_a_rubric_judge_over_loopback_http_gives_the_same_rewards_streamed_with_requests_in_parallel():
    """The real path: RubricJudge -> OpenAI-compatible provider -> a local HTTP server that answers
    each request after 50 ms with a score read from the request; 4 requests may be in flight."""
    import zlib

    from judgerl.judges.pointwise import RubricJudge
    from judgerl.providers.openai_compatible import OpenAICompatibleProvider
    from loopback_servers import FaultyOpenAIServer

    def score_of(content: str):
        time.sleep(0.05)
        digit = str(1 + zlib.crc32(content.encode()) % 5)
        return [(digit, -0.05)] + [(str(d), -5.0) for d in range(1, 6) if str(d) != digit]

    made = policy("lean")
    with FaultyOpenAIServer(responder=score_of) as server:
        def judge():
            provider = OpenAICompatibleProvider("m", base_url=server.base_url, api_key_env=None, max_concurrency=4)
            return RubricJudge(provider, "Score the answer.", scale=(1, 5))

        streaming, plain_judge = judge(), judge()
        assert streaming.supports_streaming and streaming.concurrent_calls == 4
        streamed, _ = step(made, streaming, overlap=True)
        plain, _ = step(made, plain_judge, overlap=False)
    assert streamed.rollout.completions == plain.rollout.completions
    assert torch.equal(streamed.judged.rewards, plain.judged.rewards)
    assert torch.equal(streamed.judged.accepted, plain.judged.accepted)
    assert [j.score for j in streamed.judged.judgments] == [j.score for j in plain.judged.judgments]
    same = ("calls", "failed_calls", "cache_hits")
    assert [streaming.counters[k] for k in same] == [plain_judge.counters[k] for k in same]  # nothing asked twice
    assert streaming.counters["calls"] > 0


class ShortJudge(RecordingJudge):
    """A plugin judge with a bug: one judgment too few."""

    def score(self, prompts, completions, **columns):
        return super().score(prompts, completions, **columns)[:-1]


@pytest.mark.parametrize("overlap", [True, False])
def test_a_judge_returning_too_few_judgments_stops_the_step_with_a_clear_error(overlap):
    with pytest.raises(JudgeError, match="returned .* judgments .* for .* completions"):
        step(policy("lean"), ShortJudge(), overlap=overlap)
