"""The lean engine on the user's path (LeanCausalLMPolicy, what `judgerl train` builds with
policy.engine auto/lean) against the Hugging Face models' own forward, on tiny random models of
each family built offline: Llama (grouped-query attention, Llama 3 rope, untied head), Qwen2
(q/k/v bias, tied head) and GPT-2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

transformers = pytest.importorskip("transformers")

from judgerl.config import ConfigError, RunConfig  # noqa: E402
from judgerl.policies.causal_lm import CausalLMPolicy, LoraSettings  # noqa: E402
from judgerl.policies.lean_causal_lm import LeanCausalLMPolicy, saved_engine  # noqa: E402
from judgerl.policies.lean_llama import LeanLlama  # noqa: E402
from judgerl.rollouts import SamplingSettings  # noqa: E402
from judgerl.tasks.generation import build_lm_policy  # noqa: E402
from tiny_hf import tokenizer  # noqa: E402

TESTS = Path(__file__).parent
FAMILIES = ["llama", "qwen2", "gpt2"]
PROMPTS = ["the question is good", "hi", "is the answer good or bad"]


def tiny_model(family: str, vocab: int, seed: int = 0):
    torch.manual_seed(seed)
    if family == "llama":
        config = transformers.LlamaConfig(
            vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False, pad_token_id=0,
            eos_token_id=4, bos_token_id=2, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                          "high_freq_factor": 4.0, "original_max_position_embeddings": 16})
        model = transformers.LlamaForCausalLM(config)
    elif family == "qwen2":
        config = transformers.Qwen2Config(
            vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=1, max_position_embeddings=256, tie_word_embeddings=True, pad_token_id=0,
            eos_token_id=4, bos_token_id=2)
        model = transformers.Qwen2ForCausalLM(config)
        with torch.no_grad():  # HF initialises biases to zero: make them count
            for layer in model.model.layers:
                for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                    proj.bias.normal_(0, 0.5)
    else:
        config = transformers.GPT2Config(vocab_size=vocab, n_positions=256, n_embd=32, n_layer=2, n_head=4,
                                         eos_token_id=4, bos_token_id=2, pad_token_id=0)
        model = transformers.GPT2LMHeadModel(config)
    return model.eval()


def tiny_folder(path: Path, family: str) -> Path:
    tok = tokenizer()
    tiny_model(family, len(tok)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_policy(family: str, lora: bool = False, **kwargs) -> LeanCausalLMPolicy:
    tok = tokenizer()
    return LeanCausalLMPolicy(tiny_model(family, len(tok)), tok, lora=LoraSettings(r=4) if lora else None, **kwargs)


def hf_logprobs(model, rollout, temperature):
    """The HF model's forward over [prompt | completion], log_softmax at the completion tokens."""
    out = torch.zeros(rollout.completion_ids.shape)
    for i in range(out.shape[0]):
        p = rollout.context["prompt_ids"][int(rollout.group[i])]
        c = rollout.completion_ids[i][rollout.completion_mask[i] > 0]
        with torch.no_grad():
            logits = model(torch.cat([p, c])[None]).logits[0, len(p) - 1:-1] / temperature
        out[i, :len(c)] = torch.log_softmax(logits.float(), -1).gather(1, c[:, None]).squeeze(1)
    return out


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_logits_match_hf_forward_with_and_without_left_padding(family):
    model = tiny_model(family, 40)
    engine = LeanLlama(model)
    ids = torch.randint(0, 40, (3, 9))
    attention = torch.ones(3, 9, dtype=torch.long)
    attention[0, :3] = 0
    with torch.no_grad():
        w = engine.weights(model)
        assert (engine.forward_logits(w, ids) - model(ids).logits).abs().max() < 1e-4
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        ref = model(ids, attention_mask=attention, position_ids=positions).logits
        assert (engine.forward_logits(w, ids, attention) - ref)[attention.bool()].abs().max() < 1e-4


@pytest.mark.parametrize("lora", [False, True])
@pytest.mark.parametrize("family", FAMILIES)
def test_sampled_logprobs_equal_rescored_ones_and_the_hf_forward(family, lora):
    policy = make_policy(family, lora)
    if lora:  # a non-zero adapter, so that it shows in the log-probs
        with torch.no_grad():
            for name, p in policy.model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.3)
    rollout = policy.sample(PROMPTS, 4, SamplingSettings(temperature=0.7, max_new_tokens=10),
                            torch.Generator().manual_seed(0))
    assert rollout.completion_ids.shape[0] == 12 and rollout.completion_mask.sum() > 12
    scores = policy.score(rollout)
    real = rollout.completion_mask > 0
    assert (scores.logprobs - rollout.old_logprobs)[real].abs().max() < 2e-5  # ratio = 1 up to rounding
    assert (hf_logprobs(policy.model, rollout, 0.7) - rollout.old_logprobs)[real].abs().max() < 2e-5
    # the HF-engine policy over the same model scores the same
    hf = CausalLMPolicy(policy.model, policy.tokenizer, lora=policy.lora)
    assert (hf.score(rollout).logprobs - scores.logprobs.detach())[real].abs().max() < 2e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_seeded_sampling_is_deterministic_and_tiny_top_p_is_greedy(family):
    policy = make_policy(family)
    settings = SamplingSettings(temperature=1.0, max_new_tokens=8)
    a = policy.sample(PROMPTS, 3, settings, torch.Generator().manual_seed(5))
    b = policy.sample(PROMPTS, 3, settings, torch.Generator().manual_seed(5))
    assert torch.equal(a.completion_ids, b.completion_ids) and torch.equal(a.old_logprobs, b.old_logprobs)
    greedy = SamplingSettings(temperature=1.0, top_p=1e-6, max_new_tokens=8)
    g1 = policy.sample(PROMPTS, 2, greedy, torch.Generator().manual_seed(1))
    g2 = policy.sample(PROMPTS, 2, greedy, torch.Generator().manual_seed(2))
    assert torch.equal(g1.completion_ids, g2.completion_ids)
    for i in range(g1.size):  # each token is the HF model's argmax after the tokens before it
        p = g1.context["prompt_ids"][int(g1.group[i])]
        c = g1.completion_ids[i][g1.completion_mask[i] > 0]
        with torch.no_grad():
            logits = policy.model(torch.cat([p, c])[None]).logits[0, len(p) - 1:-1]
        assert torch.equal(logits.argmax(-1), c)


@pytest.mark.parametrize("lora", [False, True])
@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_steps_change_every_trainable_parameter_and_gradients_match_hf(family, lora):
    policy = make_policy(family, lora)
    rollout = policy.sample(PROMPTS, 2, SamplingSettings(max_new_tokens=6), torch.Generator().manual_seed(0))
    params = policy.trainable_parameters()
    names = {id(p): n for n, p in policy.model.named_parameters()}
    assert all(("lora_" in names[id(p)]) == lora for p in params)
    advantage = torch.linspace(-1, 1, rollout.size)[:, None]

    def loss_of(scores):
        return -(scores.logprobs * advantage).sum() / rollout.completion_mask.sum() - 0.01 * scores.entropy.sum()

    loss_of(policy.score(rollout, with_entropy=True)).backward()
    lean_grads = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    hf = CausalLMPolicy(policy.model, policy.tokenizer, lora=policy.lora)
    loss_of(hf.score(rollout, with_entropy=True)).backward()
    for p, g in zip(params, lean_grads):
        assert (p.grad - g).abs().max() <= 1e-4 * (1 + g.abs().max()), names[id(p)]
    before = [p.detach().clone() for p in params]
    reference_before = policy.score(rollout, reference=True).logprobs  # (full fine-tuning: the frozen copy is made now)
    optimiser = torch.optim.Adam(params, lr=1e-2)
    for _ in range(2):  # LoRA's A gets a gradient once B is no longer zero: after the first step
        optimiser.zero_grad()
        loss_of(policy.score(rollout, with_entropy=True)).backward()
        optimiser.step()
    assert all(not torch.equal(p, b) for p, b in zip(params, before))
    # the reference is the weights before the update: a frozen copy, or the base with the adapter off
    reference = policy.score(rollout, reference=True).logprobs
    assert torch.equal(reference, reference_before)
    assert (reference - make_policy(family, False).score(rollout).logprobs.detach()).abs().max() < 1e-5
    assert (policy.score(rollout).logprobs.detach() - reference).abs().max() > 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_save_and_load_round_trip_with_either_engine(tmp_path, family):
    policy = make_policy(family, compute_dtype=torch.bfloat16, head_dtype=torch.float32)
    policy.add_value_head()
    with torch.no_grad():
        policy.value_head.bias.fill_(0.5)
    rollout = policy.sample(PROMPTS, 2, SamplingSettings(max_new_tokens=6), torch.Generator().manual_seed(0))
    policy.save(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "model.safetensors").is_file() and saved_engine(tmp_path / "ckpt") == "lean"
    loaded = LeanCausalLMPolicy.load(tmp_path / "ckpt")
    assert loaded.engine.compute_dtype == torch.bfloat16 and loaded.engine.head_dtype is None
    a, b = policy.score(rollout, with_values=True), loaded.score(rollout, with_values=True)
    assert torch.equal(a.logprobs, b.logprobs) and torch.equal(a.values, b.values)
    hf = CausalLMPolicy.load(tmp_path / "ckpt")  # the same files, read by the HF engine
    assert (hf.score(rollout).logprobs - a.logprobs.detach()).abs().max() < 0.05  # bf16 vs fp32


def base_config(model: Path, tmp_path: Path, **policy) -> RunConfig:
    return RunConfig.model_validate({
        "output_dir": str(tmp_path / "runs"), "policy": {"kind": "causal_lm", "model": str(model), **policy},
        "judge": {"provider": "python", "method": "reward_function", "function": "fake_judges:says_yes"},
        "rl": {"algorithm": "grpo"}})


def test_engine_auto_picks_lean_for_supported_architectures_and_lean_refuses_others(tmp_path):
    llama = tiny_folder(tmp_path / "llama", "llama")
    for lora in (False, True):
        policy = build_lm_policy(base_config(llama, tmp_path, lora=lora))
        assert isinstance(policy, LeanCausalLMPolicy) and (policy.lora is not None) == lora
    assert type(build_lm_policy(base_config(llama, tmp_path, engine="hf", lora=False))) is CausalLMPolicy
    tok = tokenizer()
    torch.manual_seed(0)
    transformers.OPTForCausalLM(transformers.OPTConfig(
        vocab_size=len(tok), hidden_size=16, ffn_dim=32, num_hidden_layers=1, num_attention_heads=2,
        word_embed_proj_dim=16)).save_pretrained(tmp_path / "opt")
    tok.save_pretrained(tmp_path / "opt")
    assert type(build_lm_policy(base_config(tmp_path / "opt", tmp_path, lora=False))) is CausalLMPolicy
    with pytest.raises(ConfigError, match="policy.engine lean: architecture 'opt' is not one the lean engine runs"):
        build_lm_policy(base_config(tmp_path / "opt", tmp_path, engine="lean"))
    with pytest.raises(ConfigError, match="compute_dtype bfloat16 needs the lean engine"):
        build_lm_policy(base_config(tmp_path / "opt", tmp_path, compute_dtype="bfloat16"))


def test_judgerl_train_runs_a_tiny_llama_on_the_lean_engine_end_to_end(tmp_path):
    model = tiny_folder(tmp_path / "model", "llama")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS * 2))
    config = tmp_path / "lm.yaml"
    config.write_text(yaml.safe_dump({
        "name": "lean-llama", "output_dir": str(tmp_path / "runs"),
        "policy": {"kind": "causal_lm", "model": str(model), "lora": False, "engine": "lean",
                   "compute_dtype": "bfloat16"},
        "judge": {"provider": "python", "method": "reward_function", "function": "fake_judges:says_yes"},
        "data": {"rl": str(prompts), "eval": str(prompts), "eval_limit": 2},
        "rl": {"algorithm": "grpo", "steps": 3, "batch_size": 2, "samples_per_question": 4, "max_new_tokens": 5,
               "learning_rate": 1e-2, "kl_coef": 0.05},
    }))
    result = subprocess.run([sys.executable, "-m", "judgerl.cli", "train", str(config)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(TESTS)})
    assert result.returncode == 0, result.stderr
    [run] = list((tmp_path / "runs").iterdir())
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    description = json.loads((run / "checkpoints/step-3/policy.json").read_text())
    assert description["engine"] == "lean" and description["compute_dtype"] == "bfloat16"
    assert (run / "checkpoints/step-3/model.safetensors").is_file()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in rows if r["stage"] == "rl"]) == 3
