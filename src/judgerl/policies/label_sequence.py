"""The magic 8-ball as a `SequencePolicy`: a completion is one token, the label.

So every sequence algorithm (REINFORCE, RLOO, GRPO, PPO, online DPO, rejection sampling) trains
the tiny label policy through the same loop as a language model: T = 1, completion_ids (N, 1)
hold label indices, the completion text is the label itself.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import torch
from safetensors.torch import load_file, save_file

from judgerl.policies.tiny_transformer import TinyTransformerPolicy
from judgerl.rollouts import PolicyScores, Rollout, SamplingSettings


class LabelSequencePolicy:
    def __init__(self, policy: TinyTransformerPolicy, reference: TinyTransformerPolicy | None = None):
        """`reference`: the KL penalty's reference (the SFT policy); default, a frozen copy of
        `policy` as it is now. A resumed run passes the SFT checkpoint: its weights moved on."""
        self.policy = policy
        self.labels = policy.labels
        self.name = "tiny_transformer"
        self.value_head: torch.nn.Linear | None = None
        self.reference = copy.deepcopy(reference if reference is not None else policy).requires_grad_(False)

    def _features(self, module: TinyTransformerPolicy, prompts: Sequence[str]) -> torch.Tensor:
        ids, mask = module.vocabulary.batch(prompts, module.shape.max_tokens)
        return module.pooled(ids, mask)  # (B, D)

    def sample(self, prompts: Sequence[str], n: int, settings: SamplingSettings, generator: torch.Generator) -> Rollout:
        with torch.no_grad():
            logits = self.policy.label_logits(prompts) / settings.temperature  # (P, L)
            log_probs = torch.log_softmax(logits, -1)
            sampling = log_probs.exp()
            if settings.top_p < 1.0:
                sampling = _top_p(sampling, settings.top_p)
            choices = torch.multinomial(sampling, n, replacement=True, generator=generator)  # (P, n)
        actions = choices.reshape(-1, 1)  # (N, 1), prompt-major
        group = torch.arange(len(prompts)).repeat_interleave(n)
        return Rollout(
            prompts=list(prompts),
            group=group,
            completions=[self.labels[i] for i in actions.flatten().tolist()],
            completion_ids=actions,
            completion_mask=torch.ones(len(actions), 1),
            old_logprobs=log_probs[group].gather(-1, actions),
            temperature=settings.temperature,
        )

    def rollout_of(self, prompts: Sequence[str], completions: Sequence[str]) -> Rollout:
        unknown = sorted(set(completions) - set(self.labels))
        if unknown:
            raise ValueError(f"the label policy answers only {self.labels}; got {unknown}")
        actions = torch.tensor([[self.labels.index(c)] for c in completions], dtype=torch.long)
        return Rollout(prompts=list(prompts), group=torch.arange(len(prompts)), completions=list(completions),
                       completion_ids=actions, completion_mask=torch.ones(len(actions), 1),
                       old_logprobs=torch.zeros(len(actions), 1))

    def score(self, rollout: Rollout, *, reference: bool = False, with_entropy: bool = False,
              with_values: bool = False) -> PolicyScores:
        module = self.reference if reference else self.policy
        # Score each distinct prompt once, then spread to its completions: (P, D) -> (N, D).
        with torch.set_grad_enabled(torch.is_grad_enabled() and not reference):
            features = self._features(module, rollout.prompts)[rollout.group]  # (N, D)
            log_probs = torch.log_softmax(module.head(features) / rollout.temperature, -1)  # (N, L)
            scores = PolicyScores(logprobs=log_probs.gather(-1, rollout.completion_ids))  # (N, 1)
            if with_entropy:
                scores.entropy = -(log_probs.exp() * log_probs).sum(-1, keepdim=True)  # (N, 1)
            if with_values:
                if self.value_head is None:
                    raise RuntimeError("with_values needs add_value_head() first")
                scores.values = self.value_head(features)  # (N, 1)
        return scores

    def add_value_head(self) -> None:
        if self.value_head is None:
            self.value_head = torch.nn.Linear(self.policy.shape.d_model, 1)
            torch.nn.init.zeros_(self.value_head.weight)
            torch.nn.init.zeros_(self.value_head.bias)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        extra = list(self.value_head.parameters()) if self.value_head is not None else []
        return list(self.policy.parameters()) + extra

    def save(self, folder: Path) -> None:
        self.policy.save(folder)
        if self.value_head is not None:
            save_file({k: v.detach().contiguous() for k, v in self.value_head.state_dict().items()},
                      str(Path(folder) / "value_head.safetensors"))

    def load_value_head(self, folder: Path) -> None:
        path = Path(folder) / "value_head.safetensors"
        if path.exists():
            self.add_value_head()
            assert self.value_head is not None
            self.value_head.load_state_dict(load_file(str(path)))


def _top_p(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely choices whose mass reaches top_p; renormalise. (B, L)."""
    sorted_probs, order = probs.sort(-1, descending=True)
    keep_sorted = (sorted_probs.cumsum(-1) - sorted_probs) < top_p  # the first always stays
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    kept = probs * keep
    return kept / kept.sum(-1, keepdim=True)
