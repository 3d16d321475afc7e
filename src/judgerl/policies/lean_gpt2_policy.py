"""`LeanGPT2Policy`: a standalone `SequencePolicy` over a GPT-2 model on the lean engine
(lean_gpt2.py), prompts as raw text, fully fine-tuned. It is what the older benchmarks
(benchmarks/judgerl_grpo_bench.py, bench_lean_gpt2.py) and the engine's own tests drive directly;
`judgerl train` runs GPT-2 through `LeanCausalLMPolicy` (lean_causal_lm.py: chat templates, LoRA,
checkpoints in the Hugging Face layout) on the same engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from judgerl.policies.lean_common import _dtype_name, tune_glibc_malloc
from judgerl.policies.lean_gpt2 import LeanGPT2, frozen_copy, weights_of
from judgerl.rollouts import PolicyScores, Rollout, SamplingSettings, rollout_of_token_ids


class LeanGPT2Policy:
    """A `SequencePolicy` over a Hugging Face GPT2LMHeadModel, fully fine-tuned, prompts as raw
    text (no chat template, e.g. "Question: ... Answer:"), through the lean engine above.

    The engine reads the HF model's parameters in place: `trainable_parameters()` are the
    model's own, and an optimiser step on them is what the next `sample` sees.
    `score(reference=True)` uses a frozen copy of the weights made at construction
    (`keep_reference=False` skips it, e.g. for GRPO with beta = 0; reference scoring then fails).
    `compute_dtype=torch.bfloat16` runs the blocks' matmuls in bf16, `head_dtype` the LM head's
    (default: as compute_dtype; see the module docstring).
    `tune_malloc=True` calls `tune_glibc_malloc()` (a process-wide setting, see there).
    """

    name = "lean_gpt2"

    def __init__(self, model: Any, tokenizer: Any, eos_token_id: int | Sequence[int] | None = None, *,
                 compute_dtype: torch.dtype | None = None, head_dtype: torch.dtype | None = None,
                 keep_reference: bool = True, tune_malloc: bool = True):
        if tune_malloc:
            tune_glibc_malloc()
        self.model = model.eval()  # eval or train: the engine never applies dropout
        self.tokenizer = tokenizer
        eos = tokenizer.eos_token_id if eos_token_id is None else eos_token_id
        self.stop_ids = sorted({int(i) for i in (eos if isinstance(eos, (list, tuple)) else [eos])})
        self.eos_token_id = self.stop_ids[0] if len(self.stop_ids) == 1 else self.stop_ids
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else self.stop_ids[0])
        self.engine = LeanGPT2(model.config, compute_dtype=compute_dtype, head_dtype=head_dtype)
        self.weights = weights_of(model)
        self.reference_weights = frozen_copy(self.weights) if keep_reference else None
        self.value_head: nn.Linear | None = None

    @classmethod
    def from_pretrained(cls, folder: str | Path, **kwargs: Any) -> "LeanGPT2Policy":
        from transformers import AutoTokenizer, GPT2LMHeadModel

        folder = Path(folder).expanduser()
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} is not a local transformers model folder (nothing is downloaded)")
        return cls(GPT2LMHeadModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder), **kwargs)

    def _encode(self, prompts: Sequence[str]) -> list[torch.Tensor]:
        out = []
        for p in prompts:
            ids = self.tokenizer(p)["input_ids"]
            out.append(torch.tensor(ids if ids else [self.stop_ids[0]], dtype=torch.long))
        return out

    def _decode(self, tokens: torch.Tensor, mask: torch.Tensor) -> list[str]:
        rows = []
        for ids, m in zip(tokens.tolist(), mask.sum(1).long().tolist()):
            ids = ids[:m]
            if ids and ids[-1] in self.stop_ids:
                ids = ids[:-1]
            rows.append(ids)
        return self.tokenizer.batch_decode(rows, skip_special_tokens=True)

    # -- SequencePolicy ---------------------------------------------------------------------------

    def sample(self, prompts: Sequence[str], n: int, settings: SamplingSettings,
               generator: torch.Generator) -> Rollout:
        prompt_ids = self._encode(prompts)
        self.weights = weights_of(self.model)  # cheap; follows a model whose parameters were replaced
        tokens, logprobs, mask = self.engine.generate(
            self.weights, prompt_ids, n, settings.max_new_tokens, settings.temperature, settings.top_p,
            self.stop_ids, self.pad_id, generator)
        return Rollout(prompts=list(prompts), group=torch.arange(len(prompts)).repeat_interleave(n),
                       completions=self._decode(tokens, mask), completion_ids=tokens, completion_mask=mask,
                       old_logprobs=logprobs, temperature=settings.temperature,
                       context={"prompt_ids": prompt_ids})

    def rollout_of(self, prompts: Sequence[str], completions: Sequence[str]) -> Rollout:
        if len(prompts) != len(completions):
            raise ValueError("one prompt per completion")
        eos = self.stop_ids[0]
        encoded = [self.tokenizer(text, add_special_tokens=False)["input_ids"] + [eos] for text in completions]
        return rollout_of_token_ids(prompts, completions, encoded, self.pad_id, {"prompt_ids": self._encode(prompts)})

    def score(self, rollout: Rollout, *, reference: bool = False, with_entropy: bool = False,
              with_values: bool = False) -> PolicyScores:
        if with_values and (reference or self.value_head is None):
            raise ValueError("values need a value head (add_value_head) and come from the policy, not the reference")
        prompt_ids = rollout.context.get("prompt_ids") or self._encode(rollout.prompts)
        args = (prompt_ids, rollout.group, rollout.completion_ids, rollout.completion_mask, rollout.temperature,
                self.pad_id, with_entropy)
        if reference:
            if self.reference_weights is None:
                raise ValueError("this policy keeps no reference weights (keep_reference=False)")
            with torch.no_grad():
                logp, entropy, _ = self.engine.score(self.reference_weights, *args)
            return PolicyScores(logprobs=logp, entropy=entropy)
        self.weights = weights_of(self.model)
        logp, entropy, values = self.engine.score(self.weights, *args,
                                                  value_head=self.value_head if with_values else None)
        return PolicyScores(logprobs=logp, entropy=entropy, values=values)

    def add_value_head(self) -> None:
        if self.value_head is None:
            self.value_head = nn.Linear(self.model.config.n_embd, 1)
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)

    def trainable_parameters(self) -> list[nn.Parameter]:
        params = list(self.model.parameters())  # tied wte / lm_head counted once
        return params + (list(self.value_head.parameters()) if self.value_head is not None else [])

    # -- checkpoints: safetensors and JSON; nothing is unpickled ----------------------------------

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)  # config.json + model.safetensors
        self.tokenizer.save_pretrained(folder)
        if self.value_head is not None:
            save_file({k: v.detach().contiguous() for k, v in self.value_head.state_dict().items()},
                      str(folder / "value_head.safetensors"))
        description = {
            "kind": "lean_gpt2", "name": self.name, "eos_token_id": self.eos_token_id,
            "compute_dtype": _dtype_name(self.engine.compute_dtype),
            "head_dtype": _dtype_name(self.engine.head_dtype),
            "value_head": self.value_head is not None,
        }
        (folder / "policy.json").write_text(json.dumps(description, indent=1))

    @classmethod
    def load(cls, folder: Path, keep_reference: bool = True) -> "LeanGPT2Policy":
        """A saved policy; its reference is the loaded weights (as for any new policy)."""
        from transformers import AutoTokenizer, GPT2LMHeadModel

        folder = Path(folder)
        description = json.loads((folder / "policy.json").read_text())
        if description.get("kind") != "lean_gpt2":
            raise ValueError(f"{folder} holds a {description.get('kind')!r} policy, not a lean_gpt2 one")
        policy = cls(GPT2LMHeadModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder),
                     description["eos_token_id"], compute_dtype=getattr(torch, description["compute_dtype"]),
                     head_dtype=getattr(torch, description["head_dtype"]), keep_reference=keep_reference)
        if description["value_head"]:
            policy.add_value_head()
            policy.value_head.load_state_dict(load_file(str(folder / "value_head.safetensors")))
        return policy
