"""The magic 8-ball: a tiny transformer that reads a question and picks Yes, No or Maybe.

    question -> word ids (B, T) -> embedding + position (B, T, D)
             -> multi-head self-attention with a padding mask, residual, LayerNorm (B, T, D)
             -> mean over real (non-pad) tokens (B, D) -> Linear-ReLU-Linear (B, n_labels)

Sampling an answer is sampling a label from softmax(logits). The vocabulary is built from
the training questions; words it has not seen become <unk>.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
from safetensors.torch import load_file, save_file
from torch import nn

PAD, UNK = "<pad>", "<unk>"
WORD_PATTERN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-cased words and single punctuation marks: "Will I?" -> ["will", "i", "?"]."""
    return WORD_PATTERN.findall(text.lower())


class Vocabulary:
    """Word <-> id. Id 0 is <pad>, id 1 is <unk>; the rest in order of first appearance."""

    def __init__(self, words: Sequence[str]):
        if list(words[:2]) != [PAD, UNK]:
            raise ValueError("a vocabulary starts with <pad>, <unk>")
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> "Vocabulary":
        counts = Counter(word for text in texts for word in tokenize(text))
        words = [PAD, UNK] + [word for word, count in counts.items() if count >= min_count]
        return cls(words)

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        unk = self.index[UNK]
        return [self.index.get(word, unk) for word in tokenize(text)]

    def batch(self, texts: Sequence[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids (B, T) and a mask (B, T), True on real tokens. T <= max_tokens."""
        encoded = [self.encode(text)[:max_tokens] or [self.index[UNK]] for text in texts]
        length = max(len(ids) for ids in encoded)
        ids = torch.zeros(len(texts), length, dtype=torch.long)
        for row, token_ids in enumerate(encoded):
            ids[row, : len(token_ids)] = torch.tensor(token_ids)
        return ids, ids != 0


@dataclass(frozen=True)
class TinyTransformerShape:
    d_model: int = 64
    n_heads: int = 4
    hidden: int = 64
    """Width of the head's hidden layer."""
    max_tokens: int = 32
    dropout: float = 0.0


class TinyTransformerPolicy(nn.Module):
    def __init__(self, vocabulary: Vocabulary, labels: Sequence[str], shape: TinyTransformerShape):
        super().__init__()
        self.vocabulary = vocabulary
        self.labels = tuple(labels)
        self.shape = shape
        self.embed = nn.Embedding(len(vocabulary), shape.d_model, padding_idx=0)
        self.position = nn.Embedding(shape.max_tokens, shape.d_model)
        self.attention = nn.MultiheadAttention(
            shape.d_model, shape.n_heads, dropout=shape.dropout, batch_first=True
        )
        self.norm = nn.LayerNorm(shape.d_model)
        self.head = nn.Sequential(
            nn.Linear(shape.d_model, shape.hidden), nn.ReLU(), nn.Linear(shape.hidden, len(labels))
        )

    @classmethod
    def build(
        cls, texts: Iterable[str], labels: Sequence[str], shape: TinyTransformerShape | None = None
    ) -> "TinyTransformerPolicy":
        return cls(Vocabulary.build(texts), labels, shape or TinyTransformerShape())

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # ids, mask: (B, T) -> logits (B, n_labels)
        return self.head(self.pooled(ids, mask))

    def pooled(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # ids, mask: (B, T) -> the question's features (B, D), what the head (and a value head) reads
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.embed(ids) + self.position(positions)[None]  # (B, T, D)
        attended, _ = self.attention(x, x, x, key_padding_mask=~mask, need_weights=False)
        x = self.norm(x + attended)  # (B, T, D)
        weights = mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, D), pads excluded

    def label_logits(self, questions: Sequence[str]) -> torch.Tensor:
        ids, mask = self.vocabulary.batch(questions, self.shape.max_tokens)
        return self(ids, mask)

    # -- checkpoints: safetensors for weights, JSON for the rest; nothing is unpickled -------

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {name: t.detach().contiguous() for name, t in self.state_dict().items()}
        save_file(tensors, str(folder / "model.safetensors"))
        description = {
            "policy": "tiny_transformer",
            "labels": list(self.labels),
            "shape": asdict(self.shape),
            "vocabulary": self.vocabulary.words,
        }
        (folder / "policy.json").write_text(json.dumps(description, indent=1))

    @classmethod
    def load(cls, folder: Path) -> "TinyTransformerPolicy":
        folder = Path(folder)
        description = json.loads((folder / "policy.json").read_text())
        policy = cls(
            Vocabulary(description["vocabulary"]),
            description["labels"],
            TinyTransformerShape(**description["shape"]),
        )
        policy.load_state_dict(load_file(str(folder / "model.safetensors")))
        return policy
