"""The tokenizer, the vocabulary and the tiny transformer."""

import torch

from judgerl import LABELS
from judgerl.policies.tiny_transformer import TinyTransformerPolicy, Vocabulary, tokenize
from judgerl.training.checkpoints import load_policy, save_checkpoint


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("Will I be rich someday?") == ["will", "i", "be", "rich", "someday", "?"]
    assert tokenize("Should I text my ex's friend?") == ["should", "i", "text", "my", "ex's", "friend", "?"]


def test_vocabulary_has_pad_and_unk_first_and_maps_unknown_words_to_unk():
    vocab = Vocabulary.build(["Will I win?", "Will I lose?"])
    assert vocab.words[:2] == ["<pad>", "<unk>"]
    assert vocab.encode("Will I fly?") == [vocab.index["will"], vocab.index["i"], 1, vocab.index["?"]]


def test_batch_pads_on_the_right_with_a_mask():
    vocab = Vocabulary.build(["a b c", "a"])
    ids, mask = vocab.batch(["a b c", "a"], max_tokens=8)
    assert ids.shape == (2, 3)
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    assert ids[1, 1:].tolist() == [0, 0]


def test_padding_does_not_change_a_questions_logits():
    torch.manual_seed(0)
    policy = TinyTransformerPolicy.build(["Will I win the big prize?", "Should I go?"], LABELS)
    alone = policy.label_logits(["Should I go?"])
    padded = policy.label_logits(["Should I go?", "Will I win the big prize?"])[:1]
    assert torch.allclose(alone, padded, atol=1e-5)


def test_logits_have_one_column_per_label_and_save_load_round_trips(tmp_path):
    torch.manual_seed(0)
    policy = TinyTransformerPolicy.build(["Will I be rich?"], LABELS)
    logits = policy.label_logits(["Will I be rich?", "Unknown words here"])
    assert logits.shape == (2, 3)
    save_checkpoint(policy, tmp_path / "ckpt", stage="test")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["checkpoint.json", "model.safetensors", "policy.json"]
    reloaded = load_policy(tmp_path / "ckpt")
    assert torch.equal(reloaded.label_logits(["Will I be rich?", "Unknown words here"]), logits)
    assert not (tmp_path / "ckpt.partial").exists()
