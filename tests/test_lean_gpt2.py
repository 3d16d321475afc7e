"""The lean GPT-2 engine against the Hugging Face model's own forward: logits, sampled
log-probs, scores and gradients, on a tiny GPT-2 built here from a config (random weights)."""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from judgerl.policies.lean_gpt2 import LeanGPT2, _draw, _nucleus, _token_logprobs, weights_of  # noqa: E402
from judgerl.policies.lean_gpt2_policy import LeanGPT2Policy  # noqa: E402
from judgerl.rollouts import SamplingSettings  # noqa: E402

WORDS = ["Question:", "Answer:", "Will", "I", "you", "be", "rich", "happy", "someday", "soon", "?", "yes", "no",
         "maybe", "the", "a", "of", "course", "not", "at", "all", "."]


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["<|endoftext|>", "[UNK]", *WORDS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="<|endoftext|>",
                                   eos_token="<|endoftext|>")


def tiny_gpt2(vocab_size: int = 24, seed: int = 0, **overrides):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab_size, n_positions=48, n_embd=32, n_layer=2, n_head=4,
                        eos_token_id=0, bos_token_id=0, pad_token_id=0, **overrides)
    return GPT2LMHeadModel(config).eval()


PROMPTS = [torch.tensor([2, 4, 5, 6, 8, 12, 3]), torch.tensor([2, 4, 6, 7, 12, 3]), torch.tensor([2, 5, 3])]


def hf_completion_logprobs(model, prompts, group, tokens, mask, temperature):
    """What TRL computes: the full sequence through the HF model, log_softmax at completion positions."""
    out = torch.zeros(tokens.shape)
    for i in range(tokens.shape[0]):
        p, c = prompts[int(group[i])], tokens[i][mask[i] > 0]
        logits = model(torch.cat([p, c])[None]).logits[0, len(p) - 1:-1] / temperature
        out[i, :len(c)] = torch.log_softmax(logits, -1).gather(1, c[:, None]).squeeze(1)
    return out


def test_logits_match_hf_forward_with_and_without_left_padding():
    model = tiny_gpt2()
    engine, w = LeanGPT2(model.config), weights_of(model)
    ids = torch.randint(1, 24, (3, 9))
    attention = torch.ones(3, 9, dtype=torch.long)
    attention[0, :3] = 0
    attention[1, :1] = 0
    with torch.no_grad():
        ref = model(ids).logits
        assert (engine.forward_logits(w, ids) - ref).abs().max() < 1e-4
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        ref = model(ids, attention_mask=attention, position_ids=positions).logits
        mine = engine.forward_logits(w, ids, attention)
    assert (mine - ref)[attention.bool()].abs().max() < 1e-4


@pytest.mark.parametrize("activation", ["gelu_new", "relu"])
def test_sampled_logprobs_equal_scores_and_hf(activation):
    model = tiny_gpt2(activation_function=activation, scale_attn_by_inverse_layer_idx=activation == "relu")
    engine, w = LeanGPT2(model.config), weights_of(model)
    g = torch.Generator().manual_seed(0)
    tokens, logp, mask = engine.generate(w, PROMPTS, 4, 12, 0.7, 1.0, [0, 13], 0, g)
    group = torch.arange(3).repeat_interleave(4)
    assert tokens.shape == (12, tokens.shape[1]) and tokens.shape[1] <= 12
    scored, entropy, _ = engine.score(w, PROMPTS, group, tokens, mask, 0.7, 0, with_entropy=True)
    assert (scored - logp).abs().max() < 1e-4
    with torch.no_grad():
        ref = hf_completion_logprobs(model, PROMPTS, group, tokens, mask, 0.7)
    assert (scored.detach() - ref).abs().max() < 1e-4
    assert (entropy[mask > 0] > 0).all() and (entropy[mask == 0] == 0).all()


def test_token_logprobs_and_entropy_have_the_gradients_of_log_softmax():
    logits = torch.randn(5, 11, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 3, 10, 3, 7])
    assert torch.autograd.gradcheck(lambda z: _token_logprobs(z, target, True), (logits,))
    assert torch.autograd.gradcheck(lambda z: _token_logprobs(z, target, False)[0], (logits,))
    logp, entropy = _token_logprobs(logits, target, True)
    ref = torch.log_softmax(logits, -1)
    assert torch.allclose(logp, ref.gather(1, target[:, None]).squeeze(1))
    assert torch.allclose(entropy, -(ref.exp() * ref).sum(-1))


def test_stop_tokens_end_rows_and_everything_after_is_padding():
    model = tiny_gpt2()
    engine, w = LeanGPT2(model.config), weights_of(model)
    stops = [0, 13, 14, 15, 16, 17]  # frequent enough that rows stop at different lengths
    tokens, logp, mask = engine.generate(w, PROMPTS, 8, 10, 1.0, 1.0, stops, 0, torch.Generator().manual_seed(1))
    lengths = mask.sum(1).long()
    assert len(set(lengths.tolist())) > 1
    for row, n in zip(tokens.tolist(), lengths.tolist()):
        stop_at = [i for i, t in enumerate(row[:n]) if t in stops]
        assert stop_at in ([], [n - 1])  # a stop token only as the last real token
        assert n == 10 or stop_at == [n - 1]
    assert (logp[mask == 0] == 0).all() and (logp[mask > 0] < 0).all()
    assert (mask[:, :-1] >= mask[:, 1:]).all()
    if (lengths < 10).all():  # every row stopped: the batch is as wide as the longest
        assert tokens.shape[1] == int(lengths.max())


def test_inverse_cdf_draws_follow_the_distribution_and_top_p_keeps_the_nucleus():
    probs = torch.zeros(4, 50)
    probs[:, [3, 7, 9, 20]] = torch.tensor([0.5, 0.3, 0.15, 0.05])
    g = torch.Generator().manual_seed(0)
    draws = torch.cat([_draw(probs, 1.0, torch.rand(4, dtype=torch.float64, generator=g)) for _ in range(2500)])
    freq = torch.bincount(draws, minlength=50).float() / len(draws)
    assert set(draws.unique().tolist()) == {3, 7, 9, 20}
    assert torch.allclose(freq[[3, 7, 9, 20]], torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.02)
    kept = _nucleus(probs, 0.7)  # 0.5 alone is short of 0.7; 0.5 + 0.3 reaches it
    assert kept[0].nonzero().squeeze(1).tolist() == [3, 7]
    assert torch.equal(_nucleus(probs, 0.7, k=1), kept)  # the full-sort fallback agrees
    draws = torch.cat([_draw(probs, 0.7, torch.rand(4, dtype=torch.float64, generator=g)) for _ in range(200)])
    assert set(draws.unique().tolist()) == {3, 7}


def test_two_level_draws_follow_the_distribution_and_never_pick_zero_probability_tokens():
    V = 1024  # 8 blocks of 128
    probs = torch.zeros(3, V)
    support = torch.tensor([0, 127, 128, 500, 767, 1023])  # block edges; blocks 2 and 7's tails are empty
    weights = torch.tensor([0.1, 0.2, 0.05, 0.4, 0.15, 0.1])
    probs[:, support] = weights
    probs[2] *= 3.0  # unnormalised rows are fine
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([_draw(probs, 1.0, torch.rand(3, dtype=torch.float64, generator=g)) for _ in range(4000)])
    assert set(draws.unique().tolist()) <= set(support.tolist())
    freq = torch.stack([torch.bincount(draws[:, r], minlength=V)[support].float() / 4000 for r in range(3)])
    assert torch.allclose(freq, weights.expand(3, -1), atol=0.025)
    edge = torch.tensor([0.0, 1.0 - 1e-17, 0.9999999999], dtype=torch.float64)  # u at both ends
    assert set(_draw(probs, 1.0, edge).tolist()) <= {0, 1023}


def test_dropping_finished_rows_changes_no_sample():
    model = tiny_gpt2()
    engine, w = LeanGPT2(model.config), weights_of(model)
    stops = [0, 13, 14, 15, 16, 17]
    runs = []
    for compact in (True, False):
        engine.compact = compact
        runs.append(engine.generate(w, PROMPTS, 8, 10, 1.0, 1.0, stops, 0, torch.Generator().manual_seed(1)))
    (t1, lp1, m1), (t2, lp2, m2) = runs
    assert torch.equal(t1, t2) and torch.equal(m1, m2)
    assert (lp1 - lp2).abs().max() < 1e-5


def test_tiny_top_p_is_greedy_decoding_like_hf_generate():
    model = tiny_gpt2(seed=3)
    engine, w = LeanGPT2(model.config), weights_of(model)
    prompt = PROMPTS[0]
    tokens, _, mask = engine.generate(w, [prompt], 2, 15, 1.0, 1e-6, [999], 0, torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model.generate(prompt[None], attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             do_sample=False, max_new_tokens=15, min_new_tokens=15, pad_token_id=0, eos_token_id=None)
    assert tokens[0].tolist() == ref[0, len(prompt):].tolist() == tokens[1].tolist()


def test_gradients_reach_the_hf_parameters_and_match_hf():
    model = tiny_gpt2()
    engine, w = LeanGPT2(model.config), weights_of(model)
    tokens, _, mask = engine.generate(w, PROMPTS, 3, 8, 1.0, 1.0, [0], 0, torch.Generator().manual_seed(2))
    group = torch.arange(3).repeat_interleave(3)
    coeff = torch.randn(tokens.shape)
    logp, _, _ = engine.score(w, PROMPTS, group, tokens, mask, 1.0, 0)
    (logp * coeff).sum().backward()
    mine = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    (hf_completion_logprobs(model, PROMPTS, group, tokens, mask, 1.0) * coeff * mask).sum().backward()
    for name, p in model.named_parameters():
        assert torch.allclose(mine[name], p.grad, atol=1e-5, rtol=1e-4), name


def test_scoring_a_selection_of_rows_matches_the_full_batch():
    model = tiny_gpt2()
    engine, w = LeanGPT2(model.config), weights_of(model)
    tokens, _, mask = engine.generate(w, PROMPTS, 4, 8, 1.0, 1.0, [0, 13, 14], 0, torch.Generator().manual_seed(4))
    group = torch.arange(3).repeat_interleave(4)
    with torch.no_grad():
        full, _, _ = engine.score(w, PROMPTS, group, tokens, mask, 1.0, 0)
        rows = torch.tensor([9, 1, 2, 5])
        width = int(mask[rows].sum(1).max())
        part, _, _ = engine.score(w, PROMPTS, group[rows], tokens[rows, :width], mask[rows, :width], 1.0, 0)
    assert (part - full[rows, :width]).abs().max() < 1e-5


@pytest.mark.parametrize("compute_dtype,head_dtype", [(torch.bfloat16, None), (torch.bfloat16, torch.float32),
                                                     (None, torch.bfloat16)])
def test_bf16_compute_stays_close_to_fp32(compute_dtype, head_dtype):
    model = tiny_gpt2()
    w = weights_of(model)
    fp32, bf16 = LeanGPT2(model.config), LeanGPT2(model.config, compute_dtype=compute_dtype, head_dtype=head_dtype)
    tokens, logp16, mask = bf16.generate(w, PROMPTS, 4, 8, 1.0, 1.0, [0], 0, torch.Generator().manual_seed(0))
    group = torch.arange(3).repeat_interleave(4)
    scored16, _, _ = bf16.score(w, PROMPTS, group, tokens, mask, 1.0, 0)
    scored32, _, _ = fp32.score(w, PROMPTS, group, tokens, mask, 1.0, 0)
    assert (scored16 - logp16).abs().max() < 0.05
    assert (scored16 - scored32).abs().max() < 0.05
    scored16.sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())


# -- the SequencePolicy ------------------------------------------------------------------------


def make_policy(**kwargs):
    tok = tiny_tokenizer()
    return LeanGPT2Policy(tiny_gpt2(vocab_size=len(tok)), tok, tok.eos_token_id, **kwargs)


def test_policy_sample_score_and_an_update_through_the_hf_model():
    policy = make_policy()
    prompts = ["Question: Will I be rich someday ? Answer:", "Question: Will you be happy ? Answer:"]
    settings = SamplingSettings(temperature=1.0, top_p=1.0, max_new_tokens=6)
    rollout = policy.sample(prompts, 3, settings, torch.Generator().manual_seed(0))
    assert rollout.size == 6 and rollout.group.tolist() == [0, 0, 0, 1, 1, 1]
    assert rollout.completion_ids.shape == rollout.old_logprobs.shape == rollout.completion_mask.shape
    assert all(isinstance(c, str) for c in rollout.completions)
    scores = policy.score(rollout, with_entropy=True)
    assert (scores.logprobs - rollout.old_logprobs).abs().max() < 1e-4
    assert scores.entropy.shape == scores.logprobs.shape

    optimiser = torch.optim.SGD(policy.trainable_parameters(), lr=0.01)
    before = policy.model(torch.tensor([[2, 3, 4]])).logits.detach()
    (-(scores.logprobs * rollout.completion_mask).sum()).backward()
    optimiser.step()
    after = policy.model(torch.tensor([[2, 3, 4]])).logits.detach()
    assert (after - before).abs().max() > 1e-4  # the HF model itself was trained
    new = policy.score(rollout).logprobs.detach()
    assert (new - rollout.old_logprobs).sum() > 0  # the sampled completions are likelier now
    ref = policy.score(rollout, reference=True).logprobs
    assert not ref.requires_grad and (ref - rollout.old_logprobs).abs().max() < 1e-4  # the frozen copy


def test_policy_rollout_of_ends_with_eos_and_selection_scores():
    policy = make_policy()
    rollout = policy.rollout_of(["Question: Will I be rich ? Answer:", "Answer:"], ["yes .", "no"])
    eos = policy.tokenizer.eos_token_id
    assert rollout.completion_ids[0].tolist() == policy.tokenizer("yes .")["input_ids"] + [eos]
    assert rollout.completion_mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    scores = policy.score(rollout.select([1]))
    assert scores.logprobs.shape == (1, 2) and scores.logprobs[0, 1].item() < 0


def test_a_rollout_with_nothing_to_score_scores_zeros_with_a_graph():
    policy = make_policy()
    rollout = policy.rollout_of(["Answer:"], ["yes"])
    rollout.completion_mask.zero_()
    scores = policy.score(rollout)
    assert (scores.logprobs == 0).all()
    scores.logprobs.sum().backward()


def test_value_head_and_save_load_roundtrip(tmp_path):
    policy = make_policy(compute_dtype=torch.bfloat16, head_dtype=torch.float32)
    policy.add_value_head()
    assert len(policy.trainable_parameters()) == len(list(policy.model.parameters())) + 2
    rollout = policy.sample(["Question: Will I be rich ? Answer:"], 2, SamplingSettings(max_new_tokens=4),
                            torch.Generator().manual_seed(0))
    scores = policy.score(rollout, with_values=True)
    assert scores.values.shape == scores.logprobs.shape and (scores.values == 0).all()  # zero-initialised
    with pytest.raises(ValueError):
        policy.score(rollout, reference=True, with_values=True)
    with torch.no_grad():
        policy.value_head.bias.fill_(0.5)
    policy.save(tmp_path / "p")
    files = {p.name for p in (tmp_path / "p").iterdir()}
    assert {"policy.json", "model.safetensors", "value_head.safetensors", "config.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    description = json.loads((tmp_path / "p" / "policy.json").read_text())
    assert (description["kind"], description["compute_dtype"], description["head_dtype"]) == \
        ("lean_gpt2", "bfloat16", "float32")
    loaded = LeanGPT2Policy.load(tmp_path / "p")
    assert (loaded.engine.compute_dtype, loaded.engine.head_dtype) == (torch.bfloat16, None)
    again = loaded.score(rollout, with_values=True)
    assert (again.logprobs - scores.logprobs).abs().max() < 1e-5
    assert torch.allclose(again.values[rollout.completion_mask > 0], torch.tensor(0.5))
