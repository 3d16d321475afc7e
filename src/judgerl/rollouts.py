"""Rollouts: what a policy sampled, kept so that the update can score it again.

The data flow of every RL step:

    prompts (P,) -> policy.sample(n) -> Rollout (N = P * n completions)
                 -> judge -> rewards (N,), unscored masked
                 -> algorithm: advantages -> policy.score(rollout) -> loss -> update

`SequencePolicy` is the interface every trainable policy implements: the tiny magic 8-ball
(a "completion" is one label token) and Hugging Face causal LMs (completions of many tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import torch


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    """Completions stop at the end-of-sequence token or after this many tokens."""


@dataclass
class Rollout:
    """N completions of P prompts; completion i answers prompts[group[i]].

    Tensors are right-padded over completion tokens: T is the longest completion in the batch.
    `old_logprobs` are the log-probabilities of the sampled tokens under the policy that sampled
    them, at the sampling temperature (the same distribution `SequencePolicy.score` computes),
    so that ratio = exp(new - old) is 1 before the first update.
    """

    prompts: list[str]
    """The prompts as judges read them: a chat conversation given is rendered whole as text here
    (`judgerl.datasets.prompt_text`); the policy keeps its own encoding of it in `context`."""
    group: torch.Tensor
    """(N,) long: index into `prompts`."""
    completions: list[str]
    """(N,) decoded text, end-of-sequence token excluded."""
    completion_ids: torch.Tensor
    """(N, T) long, padded with the policy's pad id."""
    completion_mask: torch.Tensor
    """(N, T) float: 1 on sampled tokens (the end-of-sequence token included), 0 on padding."""
    old_logprobs: torch.Tensor
    """(N, T) float, detached."""
    temperature: float = 1.0
    context: dict[str, Any] = field(default_factory=dict)
    """Policy-specific inputs needed to score again, indexed per prompt (e.g. "prompt_ids")."""
    columns: dict[str, list[Any]] = field(default_factory=dict)
    """The prompts' other dataset columns, one value per prompt (indexed like `prompts`): what a
    judge reads besides the text, e.g. "reference" (`judge.score(prompts, completions, **columns)`)."""
    precomputed: dict[str, Any] = field(default_factory=dict)
    """What an algorithm computed from this rollout before its judgments came (reference log-probs
    while the judge works; `computed_once`), by name. A `select`ed part starts empty."""

    def __post_init__(self) -> None:
        if not all(isinstance(prompt, str) for prompt in self.prompts):
            from judgerl.datasets import prompt_text

            self.prompts = [prompt_text(prompt) for prompt in self.prompts]

    @property
    def size(self) -> int:
        return len(self.completions)

    @property
    def prompt_per_completion(self) -> list[str]:
        return [self.prompts[i] for i in self.group.tolist()]

    @property
    def lengths(self) -> torch.Tensor:
        """(N,) tokens per completion."""
        return self.completion_mask.sum(-1)

    def select(self, rows: Sequence[int] | torch.Tensor) -> "Rollout":
        """The rollout of some completions; prompts and per-prompt context are kept whole."""
        index = torch.as_tensor(rows, dtype=torch.long)
        width = int(self.completion_mask[index].sum(-1).max().item()) if len(index) else 0
        width = max(width, 1)
        return replace(
            self,
            group=self.group[index],
            completions=[self.completions[i] for i in index.tolist()],
            completion_ids=self.completion_ids[index, :width],
            completion_mask=self.completion_mask[index, :width],
            old_logprobs=self.old_logprobs[index, :width],
            precomputed={},
        )

    def computed_once(self, name: str, compute: Callable[[], Any]) -> Any:
        """compute(), remembered under `name` (and the temperature) for this rollout."""
        key = f"{name}@{self.temperature}"
        if key not in self.precomputed:
            self.precomputed[key] = compute()
        return self.precomputed[key]


@dataclass
class PolicyScores:
    """What `SequencePolicy.score` returns for a rollout, all (N, T) over completion tokens."""

    logprobs: torch.Tensor
    """Log-probability of each completion token, at the rollout's temperature."""
    entropy: torch.Tensor | None = None
    """Entropy of each next-token distribution (when asked for)."""
    values: torch.Tensor | None = None
    """Value-head estimate at each completion token (when asked for; PPO)."""


class SequencePolicy(Protocol):
    """A trainable policy that writes completions to prompts."""

    name: str

    def sample(
        self, prompts: Sequence[str], n: int, settings: SamplingSettings, generator: torch.Generator
    ) -> Rollout:
        """n completions per prompt, without gradients. Row order: prompt 0's n, prompt 1's n, ...

        A policy that declares `streams_completions = True` also takes `on_completions_done` (a
        `CompletionsDone`, keyword) and calls it during sampling with the rows that have just
        stopped and the text the rollout will hold for them; the rollout is the same either way."""
        ...

    def rollout_of(self, prompts: Sequence[str], completions: Sequence[str]) -> Rollout:
        """A rollout of given texts (completion i answers prompts[i]), for supervised steps and
        for scoring completions the policy did not sample. `old_logprobs` are zeros."""
        ...

    def score(
        self,
        rollout: Rollout,
        *,
        reference: bool = False,
        with_entropy: bool = False,
        with_values: bool = False,
    ) -> PolicyScores:
        """Score the rollout's completions again, with gradients unless `reference`.

        reference=True scores with the frozen reference policy (no gradients): a frozen copy for
        full fine-tuning; the base weights with the adapter switched off for LoRA."""
        ...

    def add_value_head(self) -> None:
        """Attach a value head (PPO) if there is none: a Linear(hidden, 1) on the last hidden
        state, initialised to zero. Its parameters join `trainable_parameters`, and `save` keeps
        it. Called before the optimiser is built."""
        ...

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """What the optimiser updates: all weights, or the LoRA adapter's (plus any value head)."""
        ...

    def save(self, folder: Path) -> None:
        """Weights as safetensors plus a JSON description; nothing pickled."""
        ...


CompletionsDone = Callable[[list[int], list[str]], None]
"""(rows, their text): called during sampling for completions that have just stopped."""


class FinishedRows:
    """Watches a decode for rows that have stopped, so that their text can go to the judge while
    the other rows decode (judging_stream.py).

    After each decode step `step` records the tokens drawn for the rows still decoding; a row has
    stopped at its first stop token. Rows that stopped at this step are reported once, with their
    tokens (R, t + 1) up to it, to `report(rows, tokens, mask)`, where mask (R, t + 1) is 1 up to and
    including each row's stop token (as the rollout's completion_mask will be). On the last step
    every row not yet reported is."""

    def __init__(self, rows: int, max_new_tokens: int, stop_ids: Sequence[int], pad_id: int,
                 report: Callable[[list[int], torch.Tensor, torch.Tensor], None]):
        self.report = report
        self.stops = torch.tensor(sorted(set(int(s) for s in stop_ids)), dtype=torch.long)
        self.tokens = torch.full((rows, max_new_tokens), pad_id, dtype=torch.long)  # (N, T)
        self.stopped = torch.zeros(rows, dtype=torch.bool)  # (N,)
        self.reported = torch.zeros(rows, dtype=torch.bool)  # (N,)

    def step(self, t: int, rows: torch.Tensor | None, token: torch.Tensor, last: bool) -> None:
        """Step t drew `token` (B,) for `rows` (B,) (None: all N rows, in order)."""
        where = slice(None) if rows is None else rows
        self.tokens[where, t] = token
        self.stopped[where] |= torch.isin(token, self.stops)
        ready = (self.stopped if not last else torch.ones_like(self.stopped)) & ~self.reported
        if not bool(ready.any()):
            return
        self.reported |= ready
        tokens = self.tokens[ready, :t + 1]  # (R, t + 1)
        is_stop = torch.isin(tokens, self.stops)
        after = (is_stop.cumsum(1) - is_stop.long()) > 0  # tokens after a row's first stop
        self.report(ready.nonzero().flatten().tolist(), tokens, (~after).float())


def prompts_and_columns(batch: Sequence[Any]) -> tuple[list[Any], dict[str, list[Any]]]:
    """A batch of prompts (strings, chat conversations) or prompt rows ({"prompt": ..., other
    columns}, as `judgerl.datasets.load_prompt_rows` reads them), split into what the policy
    samples from and the other columns, one value per prompt (None where a row lacks one)."""
    if not any(isinstance(item, dict) for item in batch):
        return list(batch), {}
    rows = [item if isinstance(item, dict) else {"prompt": item} for item in batch]
    names = dict.fromkeys(name for row in rows for name in row if name != "prompt")
    return [row["prompt"] for row in rows], {name: [row.get(name) for row in rows] for name in names}


def rollout_of_token_ids(prompts: Sequence[str], completions: Sequence[str], encoded: Sequence[Sequence[int]],
                         pad_id: int, context: dict[str, Any]) -> Rollout:
    """A rollout of given completions (completion i answers prompts[i]) from their token ids,
    end-of-sequence included: right-padded (N, T) ids and mask, zero `old_logprobs`."""
    width = max(len(ids) for ids in encoded)
    completion_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)  # (N, T)
    completion_mask = torch.zeros(len(encoded), width)  # (N, T)
    for row, ids in enumerate(encoded):
        completion_ids[row, : len(ids)] = torch.tensor(list(ids), dtype=torch.long)
        completion_mask[row, : len(ids)] = 1.0
    return Rollout(prompts=list(prompts), group=torch.arange(len(prompts)), completions=list(completions),
                   completion_ids=completion_ids, completion_mask=completion_mask,
                   old_logprobs=torch.zeros(len(encoded), width), context=context)
