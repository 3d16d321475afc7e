"""A language-model policy trained end to end from a config, as a user runs it (a real subprocess),
on a tiny Llama built offline; and supervised fine-tuning on prompt/response and chat data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

pytest.importorskip("transformers")

from judgerl.datasets import load_sft_pairs  # noqa: E402
from judgerl.policies.causal_lm import CausalLMPolicy  # noqa: E402
from judgerl.training.lm_sft import train_lm_sft  # noqa: E402
from tiny_hf import causal_lm, tokenizer  # noqa: E402

TESTS = Path(__file__).parent
# What TRL's GRPOTrainer logs, by the same names (kl only with a KL coefficient: TRL's beta)
TRL_GRPO_NAMES = ("reward", "reward_std", "frac_reward_zero_std", "entropy", "loss", "grad_norm", "learning_rate",
                  "num_tokens", "epoch", "completions/mean_length", "completions/min_length", "completions/max_length",
                  "completions/clipped_ratio", "completions/mean_terminated_length", "clip_ratio/region_mean", "kl")
PROMPTS = ["the question is good", "the answer is bad", "hi question", "is the answer good",
           "the good question", "bad answer hi"]


def tiny_model_folder(path: Path) -> Path:
    tok = tokenizer()
    model = causal_lm(len(tok))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_a_causal_lm_trains_from_a_config_and_reports_the_same_prompts_before_and_after(tmp_path):
    model = tiny_model_folder(tmp_path / "model")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    config = tmp_path / "lm.yaml"
    config.write_text(yaml.safe_dump({
        "name": "tiny-lm", "output_dir": str(tmp_path / "runs"),
        "policy": {"kind": "causal_lm", "model": str(model), "lora": True, "lora_r": 4},
        "judge": {"provider": "python", "method": "reward_function", "function": "fake_judges:says_yes"},
        "data": {"rl": str(prompts), "eval": str(prompts), "eval_limit": 4},
        "rl": {"algorithm": "grpo", "steps": 4, "batch_size": 2, "samples_per_question": 4, "max_new_tokens": 5,
               "learning_rate": 1e-2, "checkpoint_every": 2},
    }))
    result = subprocess.run([sys.executable, "-m", "judgerl.cli", "train", str(config)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(TESTS)})
    assert result.returncode == 0, result.stderr
    [run] = list((tmp_path / "runs").iterdir())
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    before = json.loads((run / "eval_before.json").read_text())
    after = json.loads((run / "eval_after.json").read_text())
    assert [s["prompt"] for s in before["samples"]] == [s["prompt"] for s in after["samples"]] == PROMPTS[:4]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["stage"] == "rl"] == [0, 1, 2, 3]
    rl_rows = [r for r in rows if r["stage"] == "rl"]
    for metric in TRL_GRPO_NAMES + ("judge/accept_rate", "judge/latency_s", "time/tokens_per_s"):
        assert metric in rl_rows[0], metric
    assert "rewards/says_yes/mean" in rl_rows[0] and "reward/mean" not in rl_rows[0]
    assert 0.0 <= rl_rows[0]["completions/clipped_ratio"] <= 1.0
    assert rl_rows[0]["completions/max_length"] <= 5 and rl_rows[-1]["num_tokens"] > rl_rows[0]["num_tokens"] > 0
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert samples and {"step", "prompt", "completion", "reward"} <= set(samples[0])
    # LoRA checkpoints hold the adapter, not a second copy of the model
    assert (run / "checkpoints/step-4/adapter_model.safetensors").is_file()
    assert not (run / "checkpoints/step-4/model.safetensors").exists()
    assert (run / "checkpoints/step-2/trainer_state.safetensors").is_file()
    report = (run / "report.md").read_text()
    assert "the same prompts answered before and after RL" in report and PROMPTS[0] in report
    assert "mean judge reward on held-out prompts" in result.stdout


def test_sft_data_as_prompt_response_or_chat(tmp_path):
    data = tmp_path / "sft.jsonl"
    data.write_text(
        json.dumps({"prompt": "hi", "response": "Yes good"}) + "\n"
        + json.dumps({"messages": [{"role": "system", "content": "be kind"}, {"role": "user", "content": "the question"},
                                   {"role": "assistant", "content": "Yes the answer"}]}) + "\n")
    assert load_sft_pairs(str(data)) == [("hi", "Yes good"), ([{"role": "system", "content": "be kind"},
                                                               {"role": "user", "content": "the question"}],
                                                              "Yes the answer")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(ValueError, match="line 1: column \"messages\": the last message must be the assistant's reply"):
        load_sft_pairs(str(bad))


def test_lm_sft_lowers_the_loss_on_its_data_and_only_counts_response_tokens():
    tok = tokenizer()
    policy = CausalLMPolicy(causal_lm(len(tok)), tok)
    pairs = [("hi", "Yes good answer"), ("the question", "No bad answer")] * 4
    losses = train_lm_sft(policy, pairs, epochs=6, batch_size=4, learning_rate=1e-2,
                          generator=torch.Generator().manual_seed(0))
    assert losses[-1] < 0.5 * losses[0], losses
    rollout = policy.rollout_of(["hi"], ["Yes good answer"])
    assert int(rollout.completion_mask.sum()) == len(tok("Yes good answer")["input_ids"]) + 1  # + end of sequence


@pytest.mark.parametrize("name", ["reinforce", "rloo", "grpo", "ppo", "online_dpo", "rejection_sampling"])
def test_every_algorithm_updates_a_language_model_through_the_loop(name):
    """The plumbing each algorithm needs from a real LM (value head, pairs, best-of-n, KL reference)."""
    from fake_judges import says_yes
    from judgerl.algorithms import RL_ALGORITHMS
    from judgerl.judges.gate import ConfidenceGate
    from judgerl.judges.python_reward import RewardFunctionJudge
    from judgerl.rollouts import SamplingSettings
    from judgerl.training.loop import LoopSettings, train_policy

    tok = tokenizer()
    torch.manual_seed(0)
    policy = CausalLMPolicy(causal_lm(len(tok)), tok)

    def varied(prompts, completions, **kwargs):  # some signal in every group: length, and Yes
        return [0.1 * len(c.split()) + r for c, r in zip(completions, says_yes(prompts, completions))]

    before = [p.detach().clone() for p in policy.trainable_parameters()]
    history = train_policy(policy, PROMPTS, RewardFunctionJudge(varied, "varied"), RL_ALGORITHMS[name](),
                           ConfidenceGate(0.5), LoopSettings(steps=2, prompts_per_step=3, learning_rate=1e-3,
                                                             sampling=SamplingSettings(max_new_tokens=6)))
    assert any(row["updated"] for row in history)
    changed = [not torch.equal(a, b) for a, b in zip(before, policy.trainable_parameters())]
    assert sum(changed) >= 0.9 * len(changed)  # embeddings of tokens never seen may stay put


def test_a_lora_run_resumed_from_its_checkpoint_ends_with_the_adapter_of_an_unbroken_run(tmp_path):
    from fake_judges import says_yes
    from judgerl.algorithms import RL_ALGORITHMS
    from judgerl.judges.gate import ConfidenceGate
    from judgerl.policies.causal_lm import LoraSettings
    from judgerl.judges.python_reward import RewardFunctionJudge
    from judgerl.rollouts import SamplingSettings
    from judgerl.training.loop import LoopSettings, train_policy
    from judgerl.training.run_folder import RunFolder
    from judgerl.training.trainer_state import latest_checkpoint

    folder = tiny_model_folder(tmp_path / "model")

    def varied(prompts, completions, **kwargs):
        return [0.1 * len(c.split()) + r for c, r in zip(completions, says_yes(prompts, completions))]

    def train(policy, run, steps_run, resume=None):
        settings = LoopSettings(steps=4, prompts_per_step=2, learning_rate=1e-2, seed=3, checkpoint_every=2,
                                sampling=SamplingSettings(max_new_tokens=5))

        def stop_after(row):
            if row["step"] + 1 == steps_run:
                raise KeyboardInterrupt

        try:
            train_policy(policy, PROMPTS, RewardFunctionJudge(varied, "varied"), RL_ALGORITHMS["grpo"](samples_per_prompt=3),
                         ConfidenceGate(0.5), settings, run=run, resume_from=resume, on_step=stop_after)
        except KeyboardInterrupt:
            pass
        return policy

    lora = LoraSettings(r=4)
    torch.manual_seed(0)  # the adapter's initial weights
    straight = train(CausalLMPolicy.from_pretrained(folder, lora=lora), RunFolder.create(tmp_path, ["straight"]), 99)
    broken_run = RunFolder.create(tmp_path, ["broken"])
    torch.manual_seed(0)
    train(CausalLMPolicy.from_pretrained(folder, lora=lora), broken_run, 3)  # killed after step 3 of 4
    checkpoint = latest_checkpoint(broken_run.path / "checkpoints")
    assert checkpoint.name == "step-3"
    assert (checkpoint / "adapter_model.safetensors").is_file() and not (checkpoint / "model.safetensors").exists()
    resumed = train(CausalLMPolicy.load(checkpoint), broken_run, 99, resume=checkpoint)
    for a, b in zip(straight.trainable_parameters(), resumed.trainable_parameters()):
        assert torch.equal(a, b)
