"""`CausalLMPolicy` with sampling and scoring through a lean engine: what `judgerl train` runs
for `policy.engine: lean` (and `auto`, when the architecture is supported).

Everything but the two passes is CausalLMPolicy's own: the prompts' encoding (chat template,
system prompt), the stop tokens, decoding, LoRA through peft, the KL reference (a frozen copy,
or the base weights with the adapter off), value heads and checkpoints (safetensors in the HF /
peft layout, so either engine can read them; policy.json records `"engine": "lean"` and the
compute dtype, and a checkpoint loads with the engine it was saved with).

    engines: gpt2 -> lean_gpt2.LeanGPT2; llama, qwen2 -> lean_llama.LeanLlama

LoRA: the adapter's update is added to its base weight once per pass (lean_common.lora_merged),
so a LoRA policy runs at the lean engine's full fine-tuning speed (the weight gradient of each
adapted matmul is computed, then reduced to lora_A / lora_B).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch

from judgerl.policies.causal_lm import CausalLMPolicy
from judgerl.policies.lean_common import _dtype_name, lora_merged, tune_glibc_malloc
from judgerl.policies.lean_gpt2 import GPT2Weights, LayerWeights, LeanGPT2
from judgerl.policies.lean_llama import LeanLlama
from judgerl.policies.lean_llama import unsupported as llama_unsupported
from judgerl.rollouts import CompletionsDone, PolicyScores, Rollout, SamplingSettings

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def lean_unsupported(config: Any) -> str | None:
    """Why no lean engine runs a model with this transformers config (None: one does)."""
    if getattr(config, "model_type", None) == "gpt2":
        if getattr(config, "add_cross_attention", False):
            return "gpt2 with cross-attention is not supported by the lean engine"
        return None
    return llama_unsupported(config)


def lean_unsupported_folder(folder: str | Path) -> str | None:
    """lean_unsupported for a model folder, reading only its config.json."""
    from transformers import AutoConfig

    return lean_unsupported(AutoConfig.from_pretrained(Path(folder).expanduser()))


def saved_engine(folder: str | Path) -> str:
    """The engine a checkpoint was saved with: "lean" or "hf" (checkpoints from before engines)."""
    description = json.loads((Path(folder) / "policy.json").read_text())
    return description.get("engine", "hf")


class LeanGPT2Engine(LeanGPT2):
    """LeanGPT2 reading the weights of a (possibly peft-wrapped) GPT2LMHeadModel, LoRA merged."""

    def __init__(self, model: Any, compute_dtype: torch.dtype | None = None, head_dtype: torch.dtype | None = None):
        super().__init__(model.config, compute_dtype=compute_dtype, head_dtype=head_dtype)

    def weights(self, model: Any) -> GPT2Weights:
        t = model.transformer
        layers = tuple(LayerWeights(b.ln_1.weight, b.ln_1.bias, *lora_merged(b.attn.c_attn), *lora_merged(b.attn.c_proj),
                                    b.ln_2.weight, b.ln_2.bias, *lora_merged(b.mlp.c_fc), *lora_merged(b.mlp.c_proj))
                       for b in t.h)
        head, head_b = lora_merged(model.lm_head)
        if head_b is not None:
            raise ValueError("an LM head with a bias is not GPT-2's")
        return GPT2Weights(t.wte.weight, t.wpe.weight, t.ln_f.weight, t.ln_f.bias, head, layers)  # cast by LeanGPT2


def make_engine(model: Any, compute_dtype: torch.dtype | None = None, head_dtype: torch.dtype | None = None):
    reason = lean_unsupported(model.config)
    if reason:
        raise ValueError(reason)
    if model.config.model_type == "gpt2":
        return LeanGPT2Engine(model, compute_dtype, head_dtype)
    return LeanLlama(model, compute_dtype, head_dtype)


class LeanCausalLMPolicy(CausalLMPolicy):
    """A CausalLMPolicy whose `sample` and `score` run on the lean engine (CPU only).
    `compute_dtype=torch.bfloat16` runs the blocks' matmuls in bf16 (weights, gradients and the
    optimiser stay fp32), `head_dtype` the LM head's (default: as compute_dtype)."""

    engine_name = "lean"

    def __init__(self, model: Any, tokenizer: Any, *, compute_dtype: torch.dtype | None = None,
                 head_dtype: torch.dtype | None = None, tune_malloc: bool = True, **kwargs: Any):
        super().__init__(model, tokenizer, **kwargs)
        if self.device.type != "cpu":
            raise ValueError("the lean engine runs on the CPU; use policy.engine: hf on other devices")
        self.set_compute_dtype(compute_dtype, head_dtype)
        if tune_malloc:
            tune_glibc_malloc()

    def set_compute_dtype(self, compute_dtype: torch.dtype | None, head_dtype: torch.dtype | None = None) -> None:
        self.engine = make_engine(self._base(self.model), compute_dtype, head_dtype)

    @classmethod
    def from_pretrained(cls, folder: str | Path, *args: Any, compute_dtype: torch.dtype | None = None,
                        head_dtype: torch.dtype | None = None, **kwargs: Any) -> "LeanCausalLMPolicy":
        policy = super().from_pretrained(folder, *args, **kwargs)
        policy.set_compute_dtype(compute_dtype, head_dtype)
        return policy

    # -- the two passes -----------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, prompts: Sequence[str], n: int, settings: SamplingSettings,
               generator: torch.Generator, *, on_completions_done: CompletionsDone | None = None) -> Rollout:
        self.model.eval()
        prompt_ids = self._encode(prompts)
        weights = self.engine.weights(self._base(self.model))
        tokens, logprobs, mask = self.engine.generate(
            weights, prompt_ids, n, settings.max_new_tokens, settings.temperature, settings.top_p,
            self.stop_ids.tolist(), int(self.pad_id), generator,
            watch=self.finished_rows(len(prompts) * n, settings, on_completions_done))
        return Rollout(prompts=list(prompts), group=torch.arange(len(prompts)).repeat_interleave(n),
                       completions=[self._decode(row, m) for row, m in zip(tokens, mask)],
                       completion_ids=tokens, completion_mask=mask, old_logprobs=logprobs,
                       temperature=settings.temperature, context={"prompt_ids": prompt_ids})

    def _score(self, model: Any, rollout: Rollout, with_entropy: bool, with_values: bool) -> PolicyScores:
        prompt_ids = rollout.context.get("prompt_ids") or self._encode(rollout.prompts)
        weights = self.engine.weights(self._base(model))
        logp, entropy, values = self.engine.score(
            weights, prompt_ids, rollout.group, rollout.completion_ids, rollout.completion_mask, rollout.temperature,
            int(self.pad_id), with_entropy, value_head=self.value_head if with_values else None)
        return PolicyScores(logprobs=logp, entropy=entropy, values=values)

    # -- checkpoints: CausalLMPolicy's files, plus the engine in policy.json --------------------

    def save(self, folder: Path) -> None:
        super().save(folder)
        path = Path(folder) / "policy.json"
        description = json.loads(path.read_text())
        description.update(engine="lean", compute_dtype=_dtype_name(self.engine.compute_dtype),
                           head_dtype=_dtype_name(self.engine.head_dtype))
        path.write_text(json.dumps(description, indent=1))

    @classmethod
    def load(cls, folder: Path, dtype: torch.dtype = torch.float32) -> "LeanCausalLMPolicy":
        policy = super().load(folder, dtype)
        description = json.loads((Path(folder) / "policy.json").read_text())
        policy.set_compute_dtype(DTYPES[description.get("compute_dtype", "float32")],
                                 DTYPES[description.get("head_dtype", description.get("compute_dtype", "float32"))])
        return policy
