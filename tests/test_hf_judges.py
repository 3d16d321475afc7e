"""Local Hugging Face models as judges: a causal LM read from its logits, a sequence classifier."""

import pytest
import torch

pytest.importorskip("transformers")  # installed by scripts/setup.sh ('judgerl[hf]')

from judgerl import LABELS  # noqa: E402
from judgerl.algorithms import RL_ALGORITHMS  # noqa: E402
from judgerl.errors import JudgeError  # noqa: E402
from judgerl.judges.classifier import ClassifierJudge  # noqa: E402
from judgerl.judges.gate import ConfidenceGate  # noqa: E402
from judgerl.judges.pointwise import RubricJudge  # noqa: E402
from judgerl.policies.tiny_transformer import TinyTransformerPolicy  # noqa: E402
from judgerl.providers.transformers_local import TransformersProvider  # noqa: E402
from judgerl.policies.label_sequence import LabelSequencePolicy  # noqa: E402
from judgerl.training.loop import LoopSettings, train_policy  # noqa: E402
from tiny_hf import causal_lm, classifier, tokenizer  # noqa: E402


def test_causal_lm_logprobs_are_the_log_softmax_of_its_logits():
    tok = tokenizer()
    model = causal_lm(len(tok))
    provider = TransformersProvider.from_objects(model, tok, "tiny-llama")
    messages = [{"role": "user", "content": "hi the answer is good"}]
    response = provider.next_token_logprobs(messages, top_k=5)
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    expected = torch.log_softmax(model(input_ids=ids).logits[0, -1], -1).topk(5)
    assert [lp for _, lp in response["top_logprobs"]] == pytest.approx(expected.values.tolist(), abs=1e-5)
    assert [t for t, _ in response["top_logprobs"]] == [tok.decode([int(i)]) for i in expected.indices]
    assert response["prompt_tokens"] == ids.shape[1]


def test_a_rubric_judge_over_a_local_causal_lm():
    tok = tokenizer()
    provider = TransformersProvider.from_objects(causal_lm(len(tok)), tok, "tiny-llama")
    # a random model puts ~0.2 of its probability on the digits: no evidence, so unscored by default
    [refused] = RubricJudge(provider, "good answer", top_k=len(tok)).score(["question"], ["the answer is good"])
    assert not refused.scored and refused.details["valid_mass"] < 0.5
    [judgment] = RubricJudge(provider, "good answer", top_k=len(tok), min_valid_mass=0.0).score(
        ["question"], ["the answer is good"])
    assert judgment.status == "scored" and 1 <= judgment.score <= 5
    assert sum(judgment.score_probs.values()) == pytest.approx(1.0)
    other = TransformersProvider.from_objects(causal_lm(len(tok), seed=1), tok, "tiny-llama")
    assert other.identity() != provider.identity()  # different weights, different cache key


def test_a_missing_local_model_folder_is_refused():
    with pytest.raises(JudgeError, match="not a local folder"):
        TransformersProvider("/nonexistent/model")


def test_classifier_judge_softmax_is_the_label_distribution_and_rl_learns_its_preferences(tmp_path):
    tok = tokenizer()
    model = classifier(len(tok), ["yes", "no", "maybe"])
    model.save_pretrained(tmp_path / "clf")
    tok.save_pretrained(tmp_path / "clf")
    judge = ClassifierJudge.from_pretrained(str(tmp_path / "clf"), LABELS)
    questions = ["is the answer good", "is the answer bad", "hi", "the question", "good good", "bad answer"]
    judgments = judge.judge_labels(questions)
    batch = tok(questions, padding=True, return_tensors="pt")
    expected = model.eval()(**batch).logits.softmax(-1)
    assert [j.label_probs["Yes"] for j in judgments] == pytest.approx(expected[:, 0].tolist(), abs=1e-5)

    torch.manual_seed(0)
    policy = TinyTransformerPolicy.build(questions, LABELS)
    preferred = [j.preferred_label for j in judgments]
    agreement = lambda: sum(LABELS[i] == p for i, p in zip(policy.label_logits(questions).argmax(-1).tolist(), preferred))
    train_policy(LabelSequencePolicy(policy), questions, judge, RL_ALGORITHMS["judge_alignment"](), ConfidenceGate(0.0),
                 LoopSettings(steps=30, prompts_per_step=6, learning_rate=1e-2))
    assert agreement() == len(questions)


def test_a_classifier_without_the_needed_classes_is_refused():
    tok = tokenizer()
    with pytest.raises(JudgeError, match="none for"):
        ClassifierJudge(classifier(len(tok), ["positive", "negative"]), tok, LABELS, name="sentiment")


def test_a_classifier_judge_from_the_config_trains_the_magic_8_ball(tmp_path):
    import json
    import subprocess
    import sys

    import yaml

    tok = tokenizer()
    classifier(len(tok), ["Yes", "No", "Maybe"]).save_pretrained(tmp_path / "clf")
    tok.save_pretrained(tmp_path / "clf")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "runs"), "sft": {"epochs": 1},
                                      "rl": {"steps": 3, "batch_size": 4},
                                      "judge": {"provider": "classifier", "model": str(tmp_path / "clf"),
                                                "confidence_threshold": 0.0}}))
    result = subprocess.run([sys.executable, "-m", "judgerl.cli", "train", str(config)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    [run] = list((tmp_path / "runs").iterdir())
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"judge": {"provider": "classifier", "model": str(tmp_path / "nope")}}))
    refused = subprocess.run([sys.executable, "-m", "judgerl.cli", "train", str(bad)], capture_output=True, text=True)
    assert refused.returncode == 2 and "not a local model folder" in refused.stderr
