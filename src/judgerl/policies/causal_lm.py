"""A Hugging Face causal LM as the policy: it writes completions to prompts, and scores them again.

    prompts (P,) -> chat template -> left-padded ids (P, L) -> prefill once per prompt -> KV cache
                 -> cache repeated n times (N = P * n rows) -> decode token by token:
                    logits / temperature -> top-p -> sample; log-prob kept from the untruncated softmax
    score:  [prompt | completion] (N, L + T - 1) -> last hidden states at the T positions that
            predict completion tokens (N, T, H) -> lm_head there only -> log_softmax -> gather (N, T)

Log-probabilities are always those of softmax(logits / temperature), never of the top-p
truncated distribution, in `sample` and `score` alike (as TRL does): so ratio = exp(new - old)
is 1 before the first update. The model stays in eval mode (no dropout, LoRA's included), so
the two see the same distribution. Logits are lm_head(last hidden state): true of Llama, Qwen,
Mistral, SmolLM, GPT-2; not of models that cap or scale logits after the head (e.g. Gemma 2).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from judgerl.datasets import Prompt
from judgerl.rollouts import CompletionsDone, FinishedRows, PolicyScores, Rollout, SamplingSettings, rollout_of_token_ids

END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")
"""Chat templates' end-of-turn tokens: sampling also stops at those the template uses."""


@dataclass(frozen=True)
class LoraSettings:
    r: int = 16
    """Rank of each adapter's update B @ A."""
    alpha: int = 32
    """The update is scaled by alpha / r."""
    dropout: float = 0.0
    """Dropout on the adapter's input; it acts only in train mode, and the policy stays in eval mode."""
    target_modules: str | tuple[str, ...] = "all-linear"
    """Where adapters go: "all-linear" (every linear layer but the output head) or module names,
    e.g. the attention projections ("q_proj", "k_proj", "v_proj", "o_proj")."""


class CausalLMPolicy:
    """A `SequencePolicy` over a transformers causal LM, fully fine-tuned or with a LoRA adapter."""

    streams_completions = True
    """`sample` takes `on_completions_done` and reports each completion as soon as it has stopped."""

    def __init__(self, model: Any, tokenizer: Any, *, lora: LoraSettings | None = None,
                 use_chat_template: bool = True, system_prompt: str | None = None,
                 name: str | None = None, base_folder: Path | None = None):
        if lora is not None:
            import peft

            config = peft.LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, task_type="CAUSAL_LM",
                                     target_modules=lora.target_modules if isinstance(lora.target_modules, str)
                                     else list(lora.target_modules))
            model = model if isinstance(model, peft.PeftModel) else peft.get_peft_model(model, config)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.lora = lora
        self.use_chat_template = use_chat_template
        self.system_prompt = system_prompt
        self.base_folder = Path(base_folder) if base_folder is not None else None
        self.name = name or f"causal_lm:{self._base(model).config.name_or_path or type(model).__name__}"
        self.value_head: nn.Linear | None = None
        self._frozen_reference: Any = None  # full fine-tuning: a copy made at the first reference call
        eos = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
        stops = {eos, *_as_list(getattr(self._base(model).generation_config, "eos_token_id", None))}
        for token in END_OF_TURN_TOKENS:
            if token in (tokenizer.chat_template or "") and token in tokenizer.get_vocab():
                stops.add(tokenizer.convert_tokens_to_ids(token))
        self.stop_ids = torch.tensor(sorted(i for i in stops if i is not None))

    @classmethod
    def from_pretrained(cls, folder: str | Path, lora: LoraSettings | None = None, use_chat_template: bool = True,
                        system_prompt: str | None = None, dtype: torch.dtype = torch.float32) -> "CausalLMPolicy":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(folder).expanduser()
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} is not a local transformers model folder (nothing is downloaded)")
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        return cls(model, AutoTokenizer.from_pretrained(folder), lora=lora, use_chat_template=use_chat_template,
                   system_prompt=system_prompt, name=f"causal_lm:{folder.name}", base_folder=folder)

    # -- the parts of the model ---------------------------------------------------------------

    @staticmethod
    def _base(model: Any) -> Any:
        """The transformers model (under the peft wrapper, with its LoRA layers in place)."""
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _last_hidden(self, model: Any, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
                     cache: Any = None, use_cache: bool = False) -> Any:
        """The decoder alone (no lm_head): (last_hidden_state (B, S, H), past_key_values)."""
        return self._base(model).get_decoder()(input_ids=ids, attention_mask=mask, position_ids=positions,
                                                past_key_values=cache, use_cache=use_cache)

    def _encode(self, prompts: Sequence[Prompt]) -> list[torch.Tensor]:
        """Each prompt's token ids (1-D): a string as a user turn of the chat template (or as raw
        text without it); a chat conversation whole through the chat template, system prompt and
        earlier turns included (`system_prompt` goes first unless the conversation has its own)."""
        if not self.use_chat_template:
            if any(not isinstance(p, str) for p in prompts):
                raise ValueError("a chat conversation prompt needs the chat template (policy.chat_template: true)")
            return [torch.tensor(self.tokenizer(p)["input_ids"], dtype=torch.long) for p in prompts]
        encoded = []
        for prompt in prompts:
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
            has_system = bool(messages) and messages[0].get("role") == "system"
            system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt and not has_system else []
            ids = self.tokenizer.apply_chat_template(system + messages,
                                                     add_generation_prompt=True, tokenize=True, return_dict=True)
            encoded.append(torch.tensor(ids["input_ids"], dtype=torch.long))
        return encoded

    def _left_pad(self, sequences: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) ids left-padded with pad_id, and the (B, L) attention mask (1 on real tokens)."""
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(sequences), width, dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, width - len(seq):] = seq
            mask[row, width - len(seq):] = 1
        return ids.to(self.device), mask.to(self.device)

    # -- SequencePolicy -----------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, prompts: Sequence[Prompt], n: int, settings: SamplingSettings,
               generator: torch.Generator, *, on_completions_done: CompletionsDone | None = None) -> Rollout:
        if settings.temperature <= 0:
            raise ValueError("sampling needs a temperature > 0 (log-probs are taken at that temperature)")
        self.model.eval()
        prompt_ids = self._encode(prompts)
        ids, mask = self._left_pad(prompt_ids)  # (P, L)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (P, L): real tokens at 0..len-1 whatever the padding
        out = self._last_hidden(self.model, ids, mask, positions, use_cache=True)
        # Prefill once per prompt, then copy its KV cache for its n samples: rows i*n .. i*n+n-1.
        cache = out.past_key_values
        cache.batch_repeat_interleave(n)
        hidden = out.last_hidden_state[:, -1].repeat_interleave(n, 0)  # (N, H)
        mask = mask.repeat_interleave(n, 0)  # (N, L)
        next_position = positions[:, -1].repeat_interleave(n, 0) + 1  # (N,)
        rows = hidden.shape[0]
        finished = torch.zeros(rows, dtype=torch.bool, device=self.device)
        stop_ids = self.stop_ids.to(self.device)
        tokens, logprobs, sampled = [], [], []
        lm_head = self._base(self.model).get_output_embeddings()
        watch = self.finished_rows(len(prompts) * n, settings, on_completions_done)
        for step in range(settings.max_new_tokens):
            logp = torch.log_softmax(lm_head(hidden).float() / settings.temperature, -1)  # (N, V)
            token = _sample_top_p(logp, settings.top_p, generator).to(self.device)  # (N,)
            token = torch.where(finished, torch.full_like(token, self.pad_id), token)
            tokens.append(token)
            logprobs.append(logp.gather(-1, token[:, None]).squeeze(-1).masked_fill(finished, 0.0))
            sampled.append(~finished)
            finished = finished | torch.isin(token, stop_ids)
            last = bool(finished.all()) or step == settings.max_new_tokens - 1
            if watch is not None:
                watch.step(step, None, token.cpu(), last)
            if last:
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)  # (N, L + step + 1)
            out = self._last_hidden(self.model, token[:, None], mask, next_position[:, None], cache, use_cache=True)
            hidden, next_position = out.last_hidden_state[:, -1], next_position + 1
        completion_ids = torch.stack(tokens, 1).cpu()  # (N, T)
        completion_mask = torch.stack(sampled, 1).float().cpu()  # (N, T)
        return Rollout(
            prompts=list(prompts),  # a conversation becomes the text judges read (Rollout.prompts)
            group=torch.arange(len(prompts)).repeat_interleave(n),
            completions=[self._decode(row, row_mask) for row, row_mask in zip(completion_ids, completion_mask)],
            completion_ids=completion_ids,
            completion_mask=completion_mask,
            old_logprobs=torch.stack(logprobs, 1).cpu(),
            temperature=settings.temperature,
            context={"prompt_ids": prompt_ids},
        )

    def rollout_of(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> Rollout:
        eos = self.tokenizer.eos_token_id
        encoded = [self.tokenizer(text, add_special_tokens=False)["input_ids"] + [eos] for text in completions]
        return rollout_of_token_ids(prompts, completions, encoded, self.pad_id, {"prompt_ids": self._encode(prompts)})

    def score(self, rollout: Rollout, *, reference: bool = False, with_entropy: bool = False,
              with_values: bool = False) -> PolicyScores:
        if with_values and (reference or self.value_head is None):
            raise ValueError("values need a value head (add_value_head) and come from the policy, not the reference")
        if not reference:
            return self._score(self.model, rollout, with_entropy, with_values)
        with torch.no_grad():
            if self.lora is not None:
                with self.model.disable_adapter():  # the base weights, without a second copy of them
                    return self._score(self.model, rollout, with_entropy, False)
            if self._frozen_reference is None:
                # Full fine-tuning: the reference is the weights as they are at the first reference
                # call (the training loop makes it before the first update).
                self._frozen_reference = copy.deepcopy(self.model).eval().requires_grad_(False)
            return self._score(self._frozen_reference, rollout, with_entropy, False)

    def _score(self, model: Any, rollout: Rollout, with_entropy: bool, with_values: bool) -> PolicyScores:
        prompt_ids = rollout.context.get("prompt_ids") or self._encode(rollout.prompts)
        prompts, prompt_mask = self._left_pad([prompt_ids[g] for g in rollout.group.tolist()])  # (N, L)
        completion_ids = rollout.completion_ids.to(self.device)  # (N, T)
        completion_mask = rollout.completion_mask.to(self.device)  # (N, T)
        width = prompts.shape[1]
        # [pad.. prompt | completion ..pad] without the last completion token: the hidden state at
        # column L-1+t predicts completion token t, so the last T columns are the ones needed.
        ids = torch.cat([prompts, completion_ids[:, :-1]], 1)  # (N, L + T - 1)
        mask = torch.cat([prompt_mask, completion_mask[:, :-1].long()], 1)  # (N, L + T - 1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        hidden = self._last_hidden(model, ids, mask, positions).last_hidden_state[:, width - 1:]  # (N, T, H)
        logits = self._base(model).get_output_embeddings()(hidden).float() / rollout.temperature  # (N, T, V)
        logp = torch.log_softmax(logits, -1)  # (N, T, V)
        real = completion_mask > 0
        scores = PolicyScores(logprobs=logp.gather(-1, completion_ids[..., None]).squeeze(-1) * real)  # (N, T)
        if with_entropy:
            scores.entropy = -(logp.exp() * logp).sum(-1) * real  # (N, T)
        if with_values:
            scores.values = self.value_head(hidden.float()).squeeze(-1) * real  # (N, T)
        return scores

    def finished_rows(self, rows: int, settings: SamplingSettings,
                      on_completions_done: CompletionsDone | None) -> FinishedRows | None:
        """A watch that decodes completions as they stop and reports them (None: nobody asked)."""
        if on_completions_done is None:
            return None
        return FinishedRows(rows, settings.max_new_tokens, self.stop_ids.tolist(), int(self.pad_id),
                            lambda done, tokens, mask: on_completions_done(
                                done, [self._decode(row, m) for row, m in zip(tokens, mask)]))

    def _decode(self, ids: torch.Tensor, mask: torch.Tensor) -> str:
        kept = ids[mask > 0].tolist()
        if kept and kept[-1] in self.stop_ids.tolist():
            kept = kept[:-1]
        return self.tokenizer.decode(kept, skip_special_tokens=True)

    def set_reference(self, model: Any) -> None:
        """Full fine-tuning: score references with this model (e.g. the weights before RL, when
        resuming) instead of a copy of the current weights. With LoRA the base is the reference."""
        if self.lora is not None:
            raise ValueError("a LoRA policy's reference is its base model with the adapter off")
        self._frozen_reference = model.to(self.device).eval().requires_grad_(False)

    def add_value_head(self) -> None:
        if self.value_head is None:
            self.value_head = nn.Linear(self._base(self.model).config.hidden_size, 1).to(self.device)
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)

    def trainable_parameters(self) -> list[nn.Parameter]:
        if self.lora is not None:
            params = [p for name, p in self.model.named_parameters() if "lora_" in name and p.requires_grad]
        else:
            params = list(self.model.parameters())
        return params + (list(self.value_head.parameters()) if self.value_head is not None else [])

    # -- checkpoints: safetensors and JSON; nothing is unpickled ------------------------------

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        if self.lora is not None and self.base_folder is None:
            raise ValueError("a LoRA policy built from objects has no base folder to record: build it with "
                             "from_pretrained, or pass base_folder=")
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)  # peft: adapter_model.safetensors; transformers: model.safetensors
        self.tokenizer.save_pretrained(folder)
        if self.value_head is not None:
            save_file({k: v.detach().contiguous() for k, v in self.value_head.state_dict().items()},
                      str(folder / "value_head.safetensors"))
        description = {
            "kind": "causal_lm", "name": self.name,
            "base": str(self.base_folder.resolve()) if self.lora is not None else None,
            "lora": asdict(self.lora) if self.lora is not None else None,
            "use_chat_template": self.use_chat_template, "system_prompt": self.system_prompt,
            "value_head": self.value_head is not None,
        }
        (folder / "policy.json").write_text(json.dumps(description, indent=1))

    @classmethod
    def load(cls, folder: Path, dtype: torch.dtype = torch.float32) -> "CausalLMPolicy":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(folder)
        description = json.loads((folder / "policy.json").read_text())
        if description.get("kind") != "causal_lm":
            raise ValueError(f"{folder} holds a {description.get('kind')!r} policy, not a causal_lm one")
        lora = description["lora"]
        if lora is not None:
            import peft

            lora = LoraSettings(**{**lora, "target_modules": _as_modules(lora["target_modules"])})
            base = AutoModelForCausalLM.from_pretrained(description["base"], dtype=dtype)
            model = peft.PeftModel.from_pretrained(base, folder, is_trainable=True)
        else:
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        policy = cls(model, AutoTokenizer.from_pretrained(folder), lora=lora, name=description["name"],
                     use_chat_template=description["use_chat_template"], system_prompt=description["system_prompt"],
                     base_folder=Path(description["base"]) if lora is not None else folder)
        if description["value_head"]:
            policy.add_value_head()
            policy.value_head.load_state_dict(load_file(str(folder / "value_head.safetensors")))
        return policy


def _sample_top_p(logp: torch.Tensor, top_p: float, generator: torch.Generator) -> torch.Tensor:
    """(N,) tokens drawn from the smallest set of most likely tokens whose mass reaches top_p."""
    probs = logp.exp()  # (N, V)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs >= top_p  # the mass before them already reaches top_p
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs.masked_fill(outside, 0.0))
    return torch.multinomial(probs.to(generator.device), 1, generator=generator).squeeze(-1)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _as_modules(value: str | list[str]) -> str | tuple[str, ...]:
    return value if isinstance(value, str) else tuple(value)
