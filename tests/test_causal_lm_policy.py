"""CausalLMPolicy on tiny Llamas built offline: sampling, scoring, LoRA, value head, checkpoints."""

import copy
import json
from dataclasses import replace

import pytest
import torch

pytest.importorskip("transformers")  # installed by scripts/setup.sh ('judgerl[hf]')

from judgerl.policies.causal_lm import CausalLMPolicy, LoraSettings  # noqa: E402
from judgerl.rollouts import SamplingSettings  # noqa: E402
from tiny_hf import causal_lm, tokenizer  # noqa: E402

PROMPTS = ["hi", "the answer is good question", "Score the answer A B 1 2 3"]  # different lengths: padding
EOS = 4


def gpt2(vocab_size: int, seed: int = 0):
    """A tiny GPT-2: absolute position embeddings, so left padding needs the right position ids."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=128,
                                      eos_token_id=EOS, bos_token_id=2, pad_token_id=0))


def policy(seed: int = 0, architecture: str = "llama", **kwargs) -> CausalLMPolicy:
    tok = tokenizer()
    model = (causal_lm if architecture == "llama" else gpt2)(len(tok), seed=seed)
    return CausalLMPolicy(model, tok, **kwargs)


def sample(p: CausalLMPolicy, n: int = 3, seed: int = 0, prompts=PROMPTS, **settings):
    settings = SamplingSettings(**{"max_new_tokens": 6, **settings})
    return p.sample(prompts, n, settings, torch.Generator().manual_seed(seed))


def with_eos_bias(p: CausalLMPolicy, bias: float, token: int = EOS) -> CausalLMPolicy:
    """Give the output head a bias that favours one token: bias 3 stops about half the time."""
    head = p.model.lm_head
    biased = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        biased.weight.copy_(head.weight)
        biased.bias.zero_()
        biased.bias[token] = bias
    p.model.lm_head = biased
    return p


def unpadded_logprobs(p: CausalLMPolicy, prompt_ids: torch.Tensor, completion: torch.Tensor, temperature: float):
    """Log-probs of a completion from the plain model forward over one unpadded sequence (T,)."""
    ids = torch.cat([prompt_ids, completion])[None]
    logits = p.model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1] / temperature  # (T, V)
    return torch.log_softmax(logits, -1).gather(-1, completion[:, None]).squeeze(-1)


def adam_steps(p: CausalLMPolicy, rollout, steps: int = 2, values: bool = False):
    # Two steps: LoRA's B starts at zero, so A gets no gradient until B has moved once.
    optimiser = torch.optim.Adam(p.trainable_parameters(), lr=1e-2)
    for _ in range(steps):
        scores = p.score(rollout, with_values=values)
        loss = -scores.logprobs.sum() - (scores.values.sum() if values else 0.0)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def test_shapes_row_order_and_prompt_ids():
    p = policy()
    rollout = sample(p, n=3)
    assert rollout.group.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert rollout.completion_ids.shape == rollout.completion_mask.shape == rollout.old_logprobs.shape
    assert rollout.completion_ids.shape[0] == 9 and 1 <= rollout.completion_ids.shape[1] <= 6
    assert len(rollout.completions) == 9 and rollout.temperature == 1.0
    assert [ids.tolist() for ids in rollout.context["prompt_ids"]] == [
        tokenizer().apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)["input_ids"]
        for q in PROMPTS]
    # Near-greedy sampling: each row's first token is its own prompt's argmax, computed unpadded.
    cold = sample(p, n=2, temperature=1e-3)
    for row, g in enumerate(cold.group.tolist()):
        ids = cold.context["prompt_ids"][g][None]
        assert cold.completion_ids[row, 0] == p.model(input_ids=ids).logits[0, -1].argmax()


def test_same_seed_same_rollout_other_seed_other_rollout():
    p = policy()
    first, again, other = sample(p, seed=7), sample(p, seed=7), sample(p, seed=8)
    assert torch.equal(first.completion_ids, again.completion_ids) and first.completions == again.completions
    assert torch.equal(first.old_logprobs, again.old_logprobs)
    assert not torch.equal(first.completion_ids, other.completion_ids)


def test_forced_eos_stops_every_completion_at_once():
    p = with_eos_bias(policy(), 100.0)
    rollout = sample(p, n=2)
    assert rollout.completion_ids.tolist() == [[EOS]] * 6
    assert rollout.completion_mask.tolist() == [[1.0]] * 6  # the stop token is a sampled token
    assert rollout.completions == [""] * 6
    assert rollout.old_logprobs.abs().max() < 1e-4  # log(1)


def test_completions_stop_at_eos_and_padding_is_masked():
    p = with_eos_bias(policy(), 3.0)
    rollout = sample(p, n=8, max_new_tokens=10)
    lengths = rollout.lengths.long().tolist()
    assert min(lengths) < max(lengths)
    for ids, mask, logprobs, text, length in zip(rollout.completion_ids, rollout.completion_mask,
                                                rollout.old_logprobs, rollout.completions, lengths):
        assert mask[:length].eq(1).all() and mask[length:].eq(0).all()
        stops = (ids[:length] == EOS).nonzero().flatten().tolist()
        assert stops in ([], [length - 1])  # an EOS only ever ends a completion
        if stops or length < rollout.completion_ids.shape[1]:
            assert ids[length - 1] == EOS
        assert ids[length:].eq(p.pad_id).all() and logprobs[length:].eq(0).all()
        assert logprobs[:length].lt(0).all() and "</s>" not in text


def test_sampling_stops_at_the_chat_templates_end_of_turn_token():
    tok = tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|im_end|>"]})
    tok.chat_template = "{% for m in messages %}<|user|> {{ m['content'] }} <|im_end|> {% endfor %}<|assistant|>"
    end_of_turn = tok.convert_tokens_to_ids("<|im_end|>")
    p = with_eos_bias(CausalLMPolicy(causal_lm(len(tok)), tok), 100.0, token=end_of_turn)
    assert set(p.stop_ids.tolist()) == {EOS, end_of_turn}
    rollout = sample(p, n=2)
    assert rollout.completion_ids.tolist() == [[end_of_turn]] * 6 and rollout.completions == [""] * 6


@pytest.mark.parametrize("temperature, top_p, architecture", [(1.0, 1.0, "llama"), (0.7, 0.9, "llama"),
                                                             (1.5, 0.5, "llama"), (0.7, 0.9, "gpt2")])
def test_sampling_logprobs_equal_score_logprobs_also_after_select(temperature, top_p, architecture):
    p = with_eos_bias(policy(architecture=architecture), 2.0)  # completions of different lengths
    rollout = sample(p, n=3, temperature=temperature, top_p=top_p, max_new_tokens=8)
    assert rollout.lengths.unique().numel() > 1
    scores = p.score(rollout)
    torch.testing.assert_close(scores.logprobs.detach(), rollout.old_logprobs, atol=1e-4, rtol=0)
    for rows in ([1, 4], [8, 0, 5], [2]):
        picked = rollout.select(rows)
        torch.testing.assert_close(p.score(picked).logprobs.detach(), picked.old_logprobs, atol=1e-4, rtol=0)


@pytest.mark.parametrize("architecture", ["llama", "gpt2"])
def test_prefill_once_per_group_matches_prefill_per_sample(architecture):
    p = policy(architecture=architecture)
    grouped = sample(p, n=3, seed=3, temperature=0.9)
    one_each = sample(p, n=1, seed=3, temperature=0.9, prompts=[q for q in PROMPTS for _ in range(3)])
    assert torch.equal(grouped.completion_ids, one_each.completion_ids)
    torch.testing.assert_close(grouped.old_logprobs, one_each.old_logprobs, atol=1e-5, rtol=0)
    # And the first token's log-prob is the one the model gives the prompt alone, without padding.
    for row, g in enumerate(grouped.group.tolist()):
        expected = unpadded_logprobs(p, grouped.context["prompt_ids"][g], grouped.completion_ids[row, :1], 0.9)
        torch.testing.assert_close(grouped.old_logprobs[row, :1], expected, atol=1e-5, rtol=0)


def test_score_divides_logits_by_the_rollouts_temperature():
    p = policy()
    rollout = sample(p, n=1, max_new_tokens=5)
    for temperature in (0.5, 1.0, 2.0):
        scores = p.score(replace(rollout, temperature=temperature), with_entropy=True)
        for row in range(rollout.size):
            length = int(rollout.lengths[row])
            expected = unpadded_logprobs(p, rollout.context["prompt_ids"][row],
                                         rollout.completion_ids[row, :length], temperature)
            torch.testing.assert_close(scores.logprobs[row, :length], expected, atol=1e-5, rtol=0)
    hot = p.score(replace(rollout, temperature=3.0), with_entropy=True).entropy
    cold = p.score(replace(rollout, temperature=0.3), with_entropy=True).entropy
    assert (hot > cold)[rollout.completion_mask > 0].all()


def test_tiny_top_p_samples_the_argmax_but_keeps_the_untruncated_logprob():
    p = policy()
    rollout = sample(p, n=2, top_p=1e-6, max_new_tokens=1)
    for row, g in enumerate(rollout.group.tolist()):
        logits = p.model(input_ids=rollout.context["prompt_ids"][g][None]).logits[0, -1].detach()
        assert rollout.completion_ids[row, 0] == logits.argmax()
        assert rollout.old_logprobs[row, 0] == pytest.approx(float(torch.log_softmax(logits, -1).max()), abs=1e-5)


def test_rollout_of_given_texts_and_raw_text_prompts():
    p = policy(use_chat_template=False, system_prompt=None)
    rollout = p.rollout_of(["hi the", "good question"], ["Yes", "No the answer"])
    assert rollout.group.tolist() == [0, 1] and rollout.completions == ["Yes", "No the answer"]
    ids = tokenizer().convert_tokens_to_ids
    assert rollout.completion_ids.tolist() == [[ids("Yes"), EOS, 0, 0], [ids("No"), ids("the"), ids("answer"), EOS]]
    assert rollout.completion_mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert rollout.old_logprobs.eq(0).all()
    assert [x.tolist() for x in rollout.context["prompt_ids"]] == [ids(["hi", "the"]), ids(["good", "question"])]
    assert p.score(rollout).logprobs.shape == (2, 4)
    with_system = policy(system_prompt="be good").rollout_of(["hi"], ["Yes"])
    assert with_system.context["prompt_ids"][0].tolist() == tokenizer()(
        "<|system|> be good <|user|> hi <|assistant|>")["input_ids"]


def test_lora_trains_only_the_adapter_and_its_reference_is_the_base_model():
    tok = tokenizer()
    base = causal_lm(len(tok))
    untouched = CausalLMPolicy(copy.deepcopy(base), tok)
    p = CausalLMPolicy(base, tok, lora=LoraSettings(r=4, alpha=8))
    trainable = p.trainable_parameters()
    names = {id(param): name for name, param in p.model.named_parameters()}
    assert trainable and all("lora_" in names[id(param)] for param in trainable)
    assert sum(x.numel() for x in trainable) < sum(x.numel() for x in p.model.parameters()) / 5
    rollout = sample(p, n=2)
    base_scores = untouched.score(rollout).logprobs.detach()
    torch.testing.assert_close(p.score(rollout, reference=True).logprobs, base_scores)
    before = p.score(rollout).logprobs.detach()
    adam_steps(p, rollout)
    reference = p.score(rollout, reference=True)
    assert not reference.logprobs.requires_grad
    torch.testing.assert_close(reference.logprobs, base_scores)  # the adapter is off for the reference
    assert (p.score(rollout).logprobs.detach() - before).abs().max() > 1e-3  # the policy moved
    lora_attention = CausalLMPolicy(causal_lm(len(tok)), tok, lora=LoraSettings(target_modules=("q_proj", "v_proj")))
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, _ in lora_attention.model.named_parameters()
            if "lora_" in n} == {"q_proj", "v_proj"}


def test_full_fine_tuning_reference_is_a_frozen_copy_made_at_the_first_reference_call():
    p = policy()
    rollout = sample(p)
    reference = p.score(rollout, reference=True).logprobs
    assert not reference.requires_grad
    assert all(not x.requires_grad for x in p._frozen_reference.parameters())
    adam_steps(p, rollout)
    torch.testing.assert_close(p.score(rollout, reference=True).logprobs, reference)
    assert (p.score(rollout).logprobs.detach() - reference).abs().max() > 1e-3


def test_a_given_reference_model_replaces_the_copy_of_the_current_weights():
    p, before_rl = policy(seed=0), policy(seed=1)
    rollout = sample(p)
    p.set_reference(before_rl.model)
    torch.testing.assert_close(p.score(rollout, reference=True).logprobs, before_rl.score(rollout).logprobs.detach())
    with pytest.raises(ValueError, match="LoRA"):
        policy(lora=LoraSettings(r=2)).set_reference(before_rl.model)


def test_value_head_is_zero_initialised_and_trainable():
    p = policy()
    rollout = sample(p)
    with pytest.raises(ValueError, match="value head"):
        p.score(rollout, with_values=True)
    p.add_value_head()
    head = p.value_head
    p.add_value_head()  # a second call keeps the first head
    assert p.value_head is head and head.weight.shape == (1, 32)
    assert {id(x) for x in head.parameters()} <= {id(x) for x in p.trainable_parameters()}
    scores = p.score(rollout, with_values=True, with_entropy=True)
    assert scores.values.shape == scores.entropy.shape == rollout.completion_ids.shape
    assert scores.values.eq(0).all()


@pytest.mark.parametrize("lora", [None, LoraSettings(r=4, alpha=8)])
def test_a_gradient_step_changes_every_trainable_parameter(lora):
    p = policy(lora=lora)
    p.add_value_head()
    rollout = sample(p)
    before = [param.detach().clone() for param in p.trainable_parameters()]
    adam_steps(p, rollout, values=True)
    unchanged = [i for i, (old, param) in enumerate(zip(before, p.trainable_parameters())) if torch.equal(old, param)]
    assert not unchanged


@pytest.mark.parametrize("lora", [None, LoraSettings(r=4, alpha=8, target_modules=("q_proj", "v_proj"))])
def test_save_and_load_give_identical_scores_and_pickle_nothing(tmp_path, lora):
    tok = tokenizer()
    base = tmp_path / "tiny-llama"
    causal_lm(len(tok)).save_pretrained(base)
    tok.save_pretrained(base)
    p = CausalLMPolicy.from_pretrained(base, lora=lora, system_prompt="be good")
    assert p.name == "causal_lm:tiny-llama"
    p.add_value_head()
    rollout = sample(p)
    adam_steps(p, rollout, values=True)  # the adapter and the value head away from their zero init
    p.save(tmp_path / "saved")
    loaded = CausalLMPolicy.load(tmp_path / "saved")
    description = json.loads((tmp_path / "saved" / "policy.json").read_text())
    assert description["kind"] == "causal_lm" and description["system_prompt"] == "be good"
    assert description["lora"] == (None if lora is None else {"r": 4, "alpha": 8, "dropout": 0.0,
                                                             "target_modules": ["q_proj", "v_proj"]})
    assert description["base"] == (None if lora is None else str(base.resolve()))
    assert loaded.lora == lora and loaded.name == p.name and loaded.system_prompt == "be good"
    saved, again = p.score(rollout, with_values=True), loaded.score(rollout, with_values=True)
    torch.testing.assert_close(again.logprobs, saved.logprobs, atol=1e-6, rtol=0)
    torch.testing.assert_close(again.values, saved.values, atol=1e-6, rtol=0)
    assert not saved.values.eq(0).all()
    assert not [f for f in (tmp_path / "saved").iterdir() if f.suffix in {".bin", ".pt", ".pth", ".pkl"}]
    if lora is not None:
        torch.testing.assert_close(loaded.score(rollout, reference=True).logprobs,
                                   p.score(rollout, reference=True).logprobs)
        assert {id(x) for x in loaded.trainable_parameters()} and all(
            "lora_" in n or "value" in n for n, x in loaded.model.named_parameters() if x.requires_grad)


def test_a_lora_policy_built_from_objects_refuses_to_save_without_a_base_folder(tmp_path):
    with pytest.raises(ValueError, match="base folder"):
        policy(lora=LoraSettings(r=2)).save(tmp_path / "saved")


@pytest.mark.slow
def test_smollm2_samples_chat_answers_whose_logprobs_score_the_same():
    """About 2 s once converted; the first run converts the GGUF (about 25 s)."""
    from judgerl.policies import smollm2

    if not smollm2.is_converted() and smollm2.gguf_path() is None:
        pytest.skip(f"SmolLM2 is not installed: {smollm2.INSTALL_COMMAND}")
    p = CausalLMPolicy.from_pretrained(smollm2.smollm2_folder())
    assert p.tokenizer.convert_ids_to_tokens(p.stop_ids.tolist()) == ["<|im_end|>"]
    rollout = p.sample(["What is the capital of France?"], 2, SamplingSettings(temperature=0.7, max_new_tokens=8),
                       torch.Generator().manual_seed(0))
    assert all(text.strip() for text in rollout.completions)
    torch.testing.assert_close(p.score(rollout).logprobs.detach(), rollout.old_logprobs, atol=2e-4, rtol=0)
