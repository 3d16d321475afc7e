"""A trained reward model as a judge (`judge: {method: reward_model, reward_model: {path: ...}}`).

    score(prompts, completions)  -> Judgment(kind="score", score = the raw reward r,
                                    reward = σ((r − offset) / temperature) in [0, 1], confidence None)
    compare(prompts, a, b)       -> PairwiseJudgment with P(a ≻ b) = σ(r_a − r_b)

The squashing is the Bradley–Terry model's own: σ(r_a − r_b) is the probability the model was
trained to give that a beats b, so σ(r − offset) is the probability that the completion beats one
whose reward is `offset` (0 by default; a model trained with reward centring has its rewards
around 0). A pointwise judgment has no confidence: a reward model states no uncertainty about a
single completion. A pairwise verdict's confidence is the probability of the side it picks,
max(p, 1 − p), which is what the model was trained to estimate.

A non-finite reward (a broken model) is unscored, never a reward. Torch and the model are
loaded only when the judge is built.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from pydantic import BaseModel, Field, field_validator

from judgerl.errors import JudgeError
from judgerl.judges.base import Judgment, check_columns

if TYPE_CHECKING:
    from judgerl.judges.pairwise import PairwiseJudgment


class RewardModelJudgeSettings(BaseModel):
    """judge.reward_model: {...}"""

    path: str | None = Field(None, validate_default=True, description="a reward model folder (with reward_model.json) "
                             "or a `judgerl train-rm` run folder (its newest whole epoch checkpoint is used)")
    batch_size: int = Field(16, ge=1, description="completions per forward pass")
    offset: float = Field(0.0, allow_inf_nan=False, description="reward = σ((r − offset) / temperature): the raw "
                          "reward that maps to 0.5")
    temperature: float = Field(1.0, gt=0, allow_inf_nan=False, description="reward = σ((r − offset) / temperature)")
    min_margin: float = Field(0.0, ge=0.0, le=0.5, description="compare: |P(first better) − 1/2| below this is a tie")

    @field_validator("path")
    @classmethod
    def _given(cls, path: str | None) -> str | None:
        if not path:
            raise ValueError("judge.method reward_model needs judge.reward_model.path: a reward model or train-rm "
                             "run folder")
        return path


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


class RewardModelJudge:
    supports_pairwise = True
    supports_groups = False
    supports_streaming = False
    """Batches are padded together: a completion's reward may differ in the last float bits with its
    batch, so it does not promise the same judgment judged alone."""
    concurrent_calls = 1

    def __init__(self, model: Any, name: str, batch_size: int = 16, offset: float = 0.0, temperature: float = 1.0,
                 min_margin: float = 0.0):
        self.model = model
        self.judge_id = f"reward_model/{name}"
        self.batch_size, self.offset, self.temperature, self.min_margin = batch_size, offset, temperature, min_margin
        self.counters = {"calls": 0, "cache_hits": 0, "failed_calls": 0, "call_seconds": 0.0}

    def raw_rewards(self, prompts: Sequence[Any], completions: Sequence[str]) -> tuple[list[float] | None, str | None]:
        """(one raw reward per completion, None) or (None, why they could not be computed)."""
        started = time.perf_counter()
        self.counters["calls"] += 1
        try:
            rewards = self.model.rewards(prompts, completions, batch_size=self.batch_size).tolist()
        except (RuntimeError, ValueError, IndexError) as error:  # torch's errors; a prompt the template refuses
            self.counters["failed_calls"] += 1
            return None, f"the reward model failed: {type(error).__name__}: {str(error)[:200]}"
        finally:
            self.counters["call_seconds"] += time.perf_counter() - started
        return rewards, None

    def score(self, prompts: Sequence[Any], completions: Sequence[str], **columns: Sequence[Any]) -> list[Judgment]:
        """One judgment per completion; dataset columns are accepted and not used."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        check_columns(columns, len(completions))
        if not completions:
            return []
        started = time.perf_counter()
        rewards, error = self.raw_rewards(prompts, completions)
        latency = (time.perf_counter() - started) / len(completions)
        return [self._judgment(prompt, completion, rewards[i] if rewards else None, error, latency)
                for i, (prompt, completion) in enumerate(zip(prompts, completions))]

    def _judgment(self, prompt: Any, completion: str, raw: float | None, error: str | None,
                  latency: float) -> Judgment:
        question = prompt if isinstance(prompt, str) else str(prompt)
        judgment = Judgment(kind="score", question=question, answer=completion, status="unscored",
                            judge_id=self.judge_id, latency_s=latency)
        if raw is None:
            judgment.error = error
        elif not math.isfinite(raw):
            judgment.error = f"the reward model gave a non-finite reward ({raw})"
        else:
            judgment.status, judgment.score = "scored", raw
            judgment.reward = _sigmoid((raw - self.offset) / self.temperature)
            judgment.details = {"raw_reward": raw}
        return judgment

    def compare(self, prompts: Sequence[Any], firsts: Sequence[str], seconds: Sequence[str],
                **columns: Sequence[Any]) -> list[PairwiseJudgment]:
        """One verdict per pair: P(first ≻ second) = σ(r_first − r_second); columns are not used."""
        from judgerl.judges.pairwise import PairwiseJudgment

        n = len(prompts)
        if not (len(firsts) == len(seconds) == n):
            raise ValueError(f"{n} prompts, {len(firsts)} firsts and {len(seconds)} seconds")
        check_columns(columns, n)
        judged = self.score(list(prompts) * 2, list(firsts) + list(seconds))
        verdicts = []
        for i in range(n):
            a, b = judged[i], judged[n + i]
            if not (a.scored and b.scored):
                errors = "; ".join(j.error for j in (a, b) if j.error)
                verdicts.append(PairwiseJudgment(a.question, firsts[i], seconds[i], "invalid", None, 0.0, [a, b], errors))
                continue
            p_first = _sigmoid(a.score - b.score)  # type: ignore[operator]
            tie = abs(p_first - 0.5) < self.min_margin or a.score == b.score
            verdict = "tie" if tie else ("first" if p_first > 0.5 else "second")
            verdicts.append(PairwiseJudgment(a.question, firsts[i], seconds[i], verdict, p_first,
                                             0.0 if tie else max(p_first, 1 - p_first), [a, b]))
        return verdicts


def resolve_model_folder(path: str | Path) -> Path:
    """A reward model folder, or a train-rm run folder's newest whole epoch checkpoint; JudgeError else."""
    from judgerl.reward_models.model import MANIFEST

    folder = Path(path).expanduser()
    if (folder / MANIFEST).is_file():
        return folder
    if not folder.is_dir():
        raise JudgeError(f"judge.reward_model.path: {str(folder)!r} does not exist")
    if (folder / "checkpoints").is_dir():
        from judgerl.reward_models.train import newest_verified_epoch

        newest = newest_verified_epoch(folder)
        if newest is None:
            raise JudgeError(f"judge.reward_model.path: run folder {str(folder)!r} has no whole epoch checkpoint yet")
        return newest
    raise JudgeError(f"judge.reward_model.path: {str(folder)!r} is neither a reward model folder (with {MANIFEST}) "
                     "nor a train-rm run folder")


def load_reward_model_judge(path: str | Path, **settings: Any) -> RewardModelJudge:
    from judgerl.reward_models.model import BradleyTerryRewardModel, RewardModelLoadError

    folder = resolve_model_folder(path)
    try:
        model = BradleyTerryRewardModel.load(folder)
    except RewardModelLoadError as error:
        raise JudgeError(f"judge.reward_model.path: {error}") from None
    name = folder.name if folder.parent.name != "checkpoints" else f"{folder.parent.parent.name}/{folder.name}"
    return RewardModelJudge(model, name, **settings)


def reward_model_judge(parts: Any, path: str, batch_size: int, offset: float, temperature: float,
                       min_margin: float) -> RewardModelJudge:
    """The JUDGES factory: `parts` (judgerl.build.JudgeParts) is not needed: no provider, no rubric."""
    return load_reward_model_judge(path, batch_size=batch_size, offset=offset, temperature=temperature,
                                   min_margin=min_margin)
