"""The Critique-out-Loud (CLoud) reward model (Ankner et al. 2024): a causal LM that first writes
its own critique of a completion, then a reward head scores (prompt, completion, own critique).

    (prompt, completion)  -> critiques.context_ids -> LM greedy decoding, at most max_critique_tokens,
                             stops at eos                                       -> own critique
    context + critique    -> decoder -> hidden states (B, L, H)
                          -> at the last real token (the critique's eos) (B, H) -> head Linear(H, 1) -> reward (B,)
                          -> at the critique's positions, the LM head -> next-token loss (training)

Training (cloud_train.py): stage 1 fine-tunes the LM on the judge's critiques (next-token loss on
the critique tokens only); stage 2 trains the head (and the backbone) with the Bradley–Terry loss on
the model's own critiques, written once after stage 1. The backbone keeps its LM head
(AutoModelForCausalLM); with LoRA the adapter sits on the decoder's linear layers and the LM head
stays frozen. A saved CLoud model is a folder like a Bradley–Terry one (manifest kind "cloud",
the causal LM's weights or adapter, the tokenizer, head.safetensors).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from judgerl.reward_models.critiques import CritiquedSequence, checked_critique, context_ids, critique_ids, join
from judgerl.reward_models.model import HEAD_FILE, RewardModelLoadError, _quiet_from_pretrained, \
    _quiet_transformers, save_parts
from judgerl.reward_models.saved import load_backbone, read_kind_manifest, with_lora

KIND = "cloud"


class CloudRewardModel(nn.Module):
    kind = KIND
    needs_critique = False
    writes_critique = True
    """The judge (judge.py) asks `critique_and_rewards` and puts each own critique in its Judgment."""

    def __init__(self, lm: Any, tokenizer: Any, *, backbone_folder: Path, max_length: int = 512,
                 use_chat_template: bool = True, max_critique_tokens: int = 64, lora: dict[str, Any] | None = None,
                 name: str | None = None):
        super().__init__()
        self.lm = with_lora(lm, lora, "CAUSAL_LM")
        self.tokenizer = tokenizer
        self.backbone_folder = Path(backbone_folder)
        self.max_length, self.max_critique_tokens, self.lora = max_length, max_critique_tokens, lora
        self.use_chat_template = use_chat_template and bool(getattr(tokenizer, "chat_template", None))
        self.name = name or self.backbone_folder.name
        hidden = self._base().config.hidden_size
        self.head = nn.Linear(hidden, 1)
        nn.init.normal_(self.head.weight, std=0.1 / math.sqrt(hidden))  # as model.py: small, not all equal
        nn.init.zeros_(self.head.bias)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        self.eval()  # no dropout: a pair's rewards, and the critiques written, come from one function

    @classmethod
    def from_backbone(cls, folder: str | Path, *, lora: dict[str, Any] | None = None, max_length: int = 512,
                      use_chat_template: bool = True, max_critique_tokens: int = 64, seed: int = 0) -> "CloudRewardModel":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(folder).expanduser()
        if not (folder / "config.json").is_file():
            raise RewardModelLoadError(f"backbone {str(folder)!r} is not a local transformers model folder (it has "
                                       "no config.json; nothing is downloaded)")
        lm = _quiet_from_pretrained(AutoModelForCausalLM, folder)
        torch.manual_seed(seed)  # the head's (and LoRA's) initial weights
        return cls(lm, AutoTokenizer.from_pretrained(folder), backbone_folder=folder.resolve(), lora=lora,
                   max_length=max_length, use_chat_template=use_chat_template, max_critique_tokens=max_critique_tokens)

    def _base(self) -> Any:
        """The transformers causal LM under the peft wrapper (its LoRA layers are in place in it)."""
        return self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm

    # -- text -> ids ---------------------------------------------------------------------------

    def context(self, prompt: Any, completion: str) -> list[int]:
        """The ids the critique follows, cut (start first) to leave room for a whole critique + eos."""
        ids = context_ids(self.tokenizer, self.use_chat_template, prompt, completion)
        room = self.max_length - self.max_critique_tokens - 1
        return ids[-room:] if len(ids) > room else ids

    def encode(self, prompt: Any, completion: str, critique: Any) -> CritiquedSequence:
        """A given critique (the judge's) after the context; CritiqueError for a missing or empty one."""
        return join(self.context(prompt, completion),
                    critique_ids(self.tokenizer, checked_critique(critique), self.max_critique_tokens), self.max_length)

    def collate(self, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) ids right-padded with pad_id, and the (B, L) mask (1 on real tokens)."""
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(sequences), width, dtype=torch.long)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = torch.tensor(list(sequence), dtype=torch.long)
            mask[row, : len(sequence)] = 1
        return ids, mask

    # -- forward -------------------------------------------------------------------------------

    def rewards_and_lm_loss(self, ids: torch.Tensor, mask: torch.Tensor, starts: torch.Tensor | None = None,
                            ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ids, mask: (B, L) right-padded; starts: (B,) index of each critique's first token.
        -> rewards (B,), and the mean next-token loss over every critique token (None without starts).
        The LM head is applied at the critique's positions only: (B, L, V) logits for a 49k vocabulary
        would be most of the memory."""
        base = self._base()
        hidden = base.get_decoder()(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state  # (B, L, H)
        lengths = mask.sum(dim=1)  # (B,)
        rewards = self.head(hidden[torch.arange(hidden.shape[0]), lengths - 1]).squeeze(-1)  # (B,)
        if starts is None:
            return rewards, None
        # position p predicts token p + 1: the critique's tokens ids[start:length] from positions start-1 .. length-2
        positions = torch.arange(ids.shape[1] - 1).unsqueeze(0)  # (1, L-1)
        predicts = (positions >= (starts - 1).unsqueeze(1)) & (positions < (lengths - 1).unsqueeze(1))  # (B, L-1)
        logits = base.get_output_embeddings()(hidden[:, :-1][predicts])  # (N, V)
        return rewards, F.cross_entropy(logits.float(), ids[:, 1:][predicts])

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.rewards_and_lm_loss(ids, mask)[0]

    @torch.no_grad()
    def write_critiques(self, prompts: Sequence[Any], completions: Sequence[str], batch_size: int = 8,
                        ) -> list[list[int]]:
        """The model's own critique of each completion as ids (greedy, at most max_critique_tokens,
        ending with eos when it stopped by itself), in order."""
        from transformers import GenerationConfig

        contexts = [self.context(p, c) for p, c in zip(prompts, completions)]
        eos = self.tokenizer.eos_token_id
        settings = GenerationConfig(max_new_tokens=self.max_critique_tokens, do_sample=False, eos_token_id=eos,
                                    pad_token_id=self.pad_id)
        order = sorted(range(len(contexts)), key=lambda i: len(contexts[i]))  # batches pad little
        written: list[list[int]] = [[] for _ in contexts]
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = max(len(contexts[i]) for i in rows)
            ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)  # left-padded for generation
            mask = torch.zeros(len(rows), width, dtype=torch.long)
            for row, i in enumerate(rows):
                ids[row, width - len(contexts[i]):] = torch.tensor(contexts[i])
                mask[row, width - len(contexts[i]):] = 1
            with _quiet_transformers():
                out = self.lm.generate(input_ids=ids, attention_mask=mask, generation_config=settings)
            for row, i in enumerate(rows):
                new = out[row, width:].tolist()
                written[i] = new[: new.index(eos) + 1] if eos in new else new
        return written

    def critique_text(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True).strip()

    @torch.no_grad()
    def critique_and_rewards(self, prompts: Sequence[Any], completions: Sequence[str], batch_size: int = 16,
                             ) -> tuple[torch.Tensor, list[str]]:
        """(N,) raw rewards and the N critiques the model wrote for them, in order."""
        written = self.write_critiques(prompts, completions, batch_size)
        sequences = [join(self.context(p, c), w, self.max_length).ids for p, c, w in zip(prompts, completions, written)]
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        out = torch.empty(len(sequences))
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            out[rows] = self(*self.collate([sequences[i] for i in rows])).float()
        return out, [self.critique_text(w) for w in written]

    def rewards(self, prompts: Sequence[Any], completions: Sequence[str], batch_size: int = 16) -> torch.Tensor:
        return self.critique_and_rewards(prompts, completions, batch_size)[0]

    def trainable_parameters(self) -> list[nn.Parameter]:
        if self.lora is not None:
            backbone = [p for n, p in self.lm.named_parameters() if "lora_" in n and p.requires_grad]
        else:
            backbone = list(self.lm.parameters())
        return backbone + list(self.head.parameters())

    # -- save / load ---------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        return {
            "kind": KIND, "version": 1, "name": self.name,
            "backbone": {"folder": str(self.backbone_folder), "weights": "lora" if self.lora else "full",
                         "architecture": type(self._base()).__name__},
            "head": {"file": HEAD_FILE, "hidden_size": self.head.in_features},
            "tokenizer": ".", "max_length": self.max_length, "use_chat_template": self.use_chat_template,
            "max_critique_tokens": self.max_critique_tokens, "lora": self.lora,
        }

    def save(self, folder: str | Path) -> None:
        save_parts(folder, self.lm, self.tokenizer, self.head, self.manifest())

    @classmethod
    def load(cls, folder: str | Path) -> "CloudRewardModel":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(folder).expanduser()
        manifest = read_kind_manifest(folder, KIND)
        lm, base_folder = load_backbone(folder, manifest, AutoModelForCausalLM)
        model = cls(lm, AutoTokenizer.from_pretrained(folder), backbone_folder=base_folder,
                    max_length=manifest["max_length"], use_chat_template=manifest["use_chat_template"],
                    max_critique_tokens=manifest["max_critique_tokens"], lora=manifest.get("lora"),
                    name=manifest.get("name"))
        model.head.load_state_dict(load_file(str(folder / HEAD_FILE)))
        return model


class CloudKind:
    name = KIND

    def __init__(self, max_critique_tokens: int = 64, sft_epochs: int = 1, lm_loss_weight: float = 1.0,
                 generation_batch_size: int = 8):
        self.max_critique_tokens, self.sft_epochs = max_critique_tokens, sft_epochs
        self.lm_loss_weight, self.generation_batch_size = lm_loss_weight, generation_batch_size

    def fresh(self, backbone: Path, model_config: Any, seed: int) -> CloudRewardModel:
        if model_config.compute_dtype != "float32":  # CLoud writes with the transformers forward, not the fast one
            from judgerl.config import ConfigError

            raise ConfigError(f"model.compute_dtype {model_config.compute_dtype}: the cloud kind runs in float32 only; "
                              "leave compute_dtype float32")
        return CloudRewardModel.from_backbone(
            backbone, lora=model_config.lora_settings(), max_length=model_config.max_length,
            use_chat_template=model_config.chat_template, max_critique_tokens=self.max_critique_tokens, seed=seed)

    def load(self, folder: Path) -> CloudRewardModel:
        return CloudRewardModel.load(folder)

    def check_pairs(self, numbered: list, path: str) -> None:
        from judgerl.reward_models.critique_conditioned import check_critiques

        check_critiques(numbered, path, KIND)  # stage 1 learns to write the judge's critiques

    def epochs(self, config: Any) -> int:
        return self.sft_epochs + config.train.epochs

    def trainer(self, model: CloudRewardModel, train_pairs: list, held_out_pairs: list, run_path: Path,
                say: Any = None) -> Any:
        from judgerl.reward_models.cloud_train import CloudTrainer

        return CloudTrainer(self, model, train_pairs, held_out_pairs, Path(run_path), say or (lambda _: None))
