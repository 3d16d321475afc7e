"""Against the real local judge (Qwen2.5-Coder-1.5B-Instruct GGUF through llama.cpp): few and short.

These need the judge weights (scripts/setup.sh installs them); each call takes ~0.3-1 s.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from judgerl import LABELS
from judgerl.judges.llm import LLMJudge
from judgerl.judges.rubrics import BUILTIN_RUBRICS
from judgerl.providers import make_provider

pytestmark = pytest.mark.judge


@pytest.fixture(scope="module")
def provider():
    return make_provider("llamacpp", model="qwen2.5-coder-1.5b-instruct")


def test_optimist_judge_prefers_yes_and_reads_labels_from_logprobs(provider):
    judge = LLMJudge(provider, BUILTIN_RUBRICS["optimist"], LABELS)
    [judgment] = judge.judge_labels(["Will I be successful?"])
    assert judgment.status == "scored"
    assert judgment.preferred_label == "Yes" and judgment.confidence > 0.6
    assert sum(judgment.label_probs.values()) == pytest.approx(1.0)
    assert judgment.latency_s > 0 and judgment.prompt_tokens > 20


def test_realist_judge_answer_depends_on_the_question(provider):
    judge = LLMJudge(provider, BUILTIN_RUBRICS["realist"], LABELS)
    practice, gamble = judge.judge_labels(
        ["Will I get better at chess if I practice every day?", "Should I bet all my savings on one roll of the dice?"]
    )
    assert practice.preferred_label == "Yes"
    assert gamble.preferred_label == "No"


def test_rubric_score_ranks_the_wanted_answer_higher(provider):
    judge = LLMJudge(provider, BUILTIN_RUBRICS["optimist"], LABELS, method="score")
    yes, no = judge.score(["Will I be successful?"] * 2, ["Yes", "No"])
    assert yes.scored and no.scored
    assert 1.0 <= no.score < yes.score <= 5.0


def test_demo_end_to_end_with_the_real_judge_then_warm_from_the_cache(tmp_path):
    """A short run: 12 RL questions, 8 held-out, 6 steps; then the same run makes no judge call."""
    rl = tmp_path / "rl.jsonl"
    evaluation = tmp_path / "eval.jsonl"
    questions = [json.loads(line) for line in (Path(__file__).parents[1] / "src/judgerl/data/rl.jsonl").read_text().splitlines()]
    rl.write_text("".join(json.dumps(q) + "\n" for q in questions[:12]))
    evaluation.write_text("".join(json.dumps(q) + "\n" for q in questions[12:20]))
    args = [
        sys.executable, "-m", "judgerl.cli", "demo", "--output-dir", str(tmp_path / "runs"),
        "--set", f"data.rl={rl}", "--set", f"data.eval={evaluation}", "--set", "rl.steps=6",
        "--set", "rl.batch_size=6", "--set", f"judge.cache_path={tmp_path / 'judgments.sqlite'}",
    ]
    first = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    runs = sorted((tmp_path / "runs").iterdir())
    cold, warm = (json.loads((run / "status.json").read_text()) for run in runs)
    assert cold["status"] == warm["status"] == "completed"
    assert cold["judge_counters"]["calls"] == 20  # 12 RL + 8 held-out questions, one label call each
    assert warm["judge_counters"]["calls"] == 0
    assert warm["judge_counters"]["cache_hits"] > 0
    after = json.loads((runs[0] / "eval_after.json").read_text())
    before = json.loads((runs[0] / "eval_before.json").read_text())
    assert after["mean_judge_reward"] > before["mean_judge_reward"]


def test_openai_compatible_provider_against_a_real_llama_cpp_server_on_loopback(provider):
    """llama.cpp's own OpenAI-compatible HTTP server (started by xllamacpp on 127.0.0.1, a free
    port) gives the same label probabilities over HTTP as the in-process provider."""
    from judgerl.providers.llamacpp import serve_http
    from judgerl.providers.openai_compatible import OpenAICompatibleProvider

    server, base_url = serve_http("qwen2.5-coder-1.5b-instruct", context_tokens=2048)
    assert base_url.startswith("http://127.0.0.1:")
    http = OpenAICompatibleProvider("qwen2.5-coder-1.5b-instruct", base_url=base_url, api_key_env=None)
    questions = ["Will I be successful?", "Should I bet my savings on a horse race?"]
    over_http = LLMJudge(http, BUILTIN_RUBRICS["realist"], LABELS).judge_labels(questions)
    in_process = LLMJudge(provider, BUILTIN_RUBRICS["realist"], LABELS).judge_labels(questions)
    for remote, local in zip(over_http, in_process):
        assert remote.status == local.status == "scored"
        assert remote.preferred_label == local.preferred_label
        for label in LABELS:
            assert remote.label_probs[label] == pytest.approx(local.label_probs[label], abs=0.05)  # KV-cache reuse shifts logits slightly
        assert len(remote.top_logprobs) == 20


def test_an_item_too_long_for_the_context_is_one_unscored_judgment(provider):
    from judgerl.judges.pointwise import RubricJudge

    judge = RubricJudge(provider, "Score 5 for a correct answer, 1 for a wrong one.")
    huge = "Paris is the capital of France. " * 1500  # ~10k tokens, beyond the 2048-token context
    short, long_, again = judge.score(["Capital of France?"] * 3, ["Paris.", huge, "Paris."])
    assert short.scored and again.scored
    assert not long_.scored and long_.reward is None and "llama.cpp" in long_.error
