"""The reward model's fast forward (reward_models/lean_tree.py, lean_reward.py): the prefix tree
against a hand-worked case, the same rewards and gradients as the plain transformers forward (full
weights, LoRA, grouped-query attention, Qwen2's biases), hostile inputs, bf16, and old folders."""

from __future__ import annotations

import json
import math

import pytest
import torch

pytest.importorskip("transformers")

from judgerl.reward_models.lean_tree import prefix_tree  # noqa: E402
from judgerl.reward_models.model import BradleyTerryRewardModel  # noqa: E402

LORA = {"r": 4, "alpha": 8.0, "dropout": 0.0}


def backbone_folder(path, kind: str = "llama"):
    """A tiny Llama (grouped-query attention: 4 heads over 2 KV heads) or Qwen2 (q/k/v biases)."""
    from tiny_hf import tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    tok = tokenizer()
    torch.manual_seed(0)
    sizes = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                 pad_token_id=0, eos_token_id=4, bos_token_id=2)
    model = LlamaForCausalLM(LlamaConfig(**sizes)) if kind == "llama" else Qwen2ForCausalLM(Qwen2Config(**sizes))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return backbone_folder(tmp_path_factory.mktemp("llama") / "backbone")


PROMPTS = ["question 1", "question 1", "question 2", [{"role": "system", "content": "hi"},
                                                       {"role": "user", "content": "question 1"}]]
COMPLETIONS = ["Yes good", "Yes good the answer", "No", "Maybe 3 4"]


def test_prefix_tree_by_hand():
    # [5 6 7], [5 6 8], [5 6 7] again and [5 6] (a prefix of the others): unique tokens 5 6 | 7 | 8.
    tree = prefix_tree([[5, 6, 7], [5, 6, 8], [5, 6, 7], [5, 6]])
    assert tree.ids.tolist() == [5, 6, 7, 8] or tree.ids.tolist() == [5, 6, 8, 7]
    assert tree.positions.tolist() == [0, 1, 2, 2]
    rows = tree.ids.tolist()
    assert tree.read.tolist() == [rows.index(7), rows.index(8), rows.index(7), 1]
    assert sum(len(g.queries) for g in tree.groups) == 3  # segments [5 6], [7], [8]
    with pytest.raises(ValueError):
        prefix_tree([[1], []])


def sequences(model):
    return [model.encode(p, c) for p, c in zip(PROMPTS, COMPLETIONS)]


def perturb_lora(model):
    """peft starts lora_B at zero (the adapter does nothing): give it weights so that it counts."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.backbone.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.2)


@pytest.mark.parametrize("kind,lora", [("llama", None), ("llama", LORA), ("qwen2", None), ("qwen2", LORA)])
def test_fast_forward_matches_transformers(tmp_path, kind, lora):
    model = BradleyTerryRewardModel.from_backbone(backbone_folder(tmp_path / kind, kind), lora=lora)
    assert model.lean is not None
    if lora:
        perturb_lora(model)
    ids, mask = model.collate(sequences(model))
    grads = []
    for forward in (model.forward_reference, model.forward):
        model.zero_grad(set_to_none=True)
        rewards = forward(ids, mask)
        (rewards * torch.tensor([1.0, -2.0, 0.5, 3.0])).sum().backward()
        grads.append((rewards.detach(), [p.grad.clone() for p in model.trainable_parameters()]))
    (expected, expected_grads), (got, got_grads) = grads
    assert torch.allclose(got, expected, atol=1e-5), (got, expected)
    assert len(expected_grads) == len(got_grads)
    for g_ref, g in zip(expected_grads, got_grads):
        assert torch.allclose(g, g_ref, atol=1e-5, rtol=1e-4)


def test_rewards_in_order_whatever_the_batch(llama):
    model = BradleyTerryRewardModel.from_backbone(llama, lora=LORA)
    perturb_lora(model)
    with torch.no_grad():
        expected = model.forward_reference(*model.collate(sequences(model)))
    for batch_size in (1, 3, 16):
        assert torch.allclose(model.rewards(PROMPTS, COMPLETIONS, batch_size=batch_size), expected, atol=1e-5)
    # usable as a constant in later autograd code (an inference-mode tensor would not be)
    weight = torch.ones(len(PROMPTS), requires_grad=True)
    (model.rewards(PROMPTS, COMPLETIONS) * weight).sum().backward()
    assert torch.allclose(weight.grad, expected, atol=1e-5)


def test_hostile_completions_get_finite_rewards(llama):
    model = BradleyTerryRewardModel.from_backbone(llama, max_length=64)
    completions = ["", "good " * 20_000, "<|assistant|> good <|user|> </s> [PAD]", "<|im_end|>\n<|im_start|>system",
                   "\u202e\u0000\ufeff 🙂 naïve 日本語 " * 50, "   \n\t "]
    rewards = model.rewards(["question 1"] * len(completions), completions)
    assert rewards.shape == (len(completions),)
    assert torch.isfinite(rewards).all()
    long = model.encode("question 1", completions[1])
    assert len(long) == 64  # the end kept, the start cut


def test_bfloat16_is_close_and_saved(llama, tmp_path):
    fp32 = BradleyTerryRewardModel.from_backbone(llama, seed=3)
    bf16 = BradleyTerryRewardModel.from_backbone(llama, seed=3, compute_dtype="bfloat16")
    expected, got = fp32.rewards(PROMPTS, COMPLETIONS), bf16.rewards(PROMPTS, COMPLETIONS)
    assert torch.allclose(got, expected, atol=0.05 * expected.abs().max().item() + 1e-3)
    bf16.save(tmp_path / "rm")
    assert BradleyTerryRewardModel.load(tmp_path / "rm").compute_dtype == "bfloat16"
    as_float32 = BradleyTerryRewardModel.load(tmp_path / "rm", compute_dtype="float32")
    assert torch.allclose(as_float32.rewards(PROMPTS, COMPLETIONS), expected, atol=1e-5)
    with pytest.raises(ValueError, match="compute_dtype"):
        BradleyTerryRewardModel.from_backbone(llama, compute_dtype="float16")


def test_a_folder_saved_before_compute_dtype_loads(llama, tmp_path):
    model = BradleyTerryRewardModel.from_backbone(llama, seed=4)
    model.save(tmp_path / "rm")
    manifest_path = tmp_path / "rm" / "reward_model.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["compute_dtype"]
    manifest_path.write_text(json.dumps(manifest))
    loaded = BradleyTerryRewardModel.load(tmp_path / "rm")
    assert loaded.compute_dtype == "float32"
    reloaded, original = loaded.rewards(PROMPTS, COMPLETIONS), model.rewards(PROMPTS, COMPLETIONS)
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(reloaded.tolist(), original.tolist()))


def test_rewards_follow_the_weights_after_an_update(llama):
    """The fast forward keeps stacked weights between calls: an optimiser step must still count."""
    model = BradleyTerryRewardModel.from_backbone(llama, lora=LORA)
    perturb_lora(model)
    before = model.rewards(PROMPTS, COMPLETIONS)
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=0.5)
    model(*model.collate(sequences(model))).sum().backward()
    optimizer.step()
    after = model.rewards(PROMPTS, COMPLETIONS)
    with torch.no_grad():
        expected = model.forward_reference(*model.collate(sequences(model)))
    assert not torch.allclose(before, after)
    assert torch.allclose(after, expected, atol=1e-5)


def test_a_manifest_with_an_unknown_compute_dtype_is_refused_in_one_line(llama, tmp_path):
    from judgerl.reward_models.model import RewardModelLoadError

    BradleyTerryRewardModel.from_backbone(llama).save(tmp_path / "rm")
    manifest_path = tmp_path / "rm" / "reward_model.json"
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), "compute_dtype": "float8"}))
    with pytest.raises(RewardModelLoadError, match="compute_dtype 'float8'"):
        BradleyTerryRewardModel.load(tmp_path / "rm")
