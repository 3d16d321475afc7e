"""A constitution: a list of principles, each judged on its own, combined with weights.

    reward = sum_k w_k * reward_k / sum_k w_k      (each reward_k in [0, 1], from a RubricJudge)

Each principle is a separate rubric call (prompts share the system prefix per principle, so a
local server's prefix cache helps). If any principle is unscored the whole judgment is
unscored: a missing principle is not a zero. `details["principles"]` keeps every part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from judgerl.judges.base import Judgment
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.logprobs import MIN_VALID_MASS
from judgerl.judges.pointwise import RubricJudge
from judgerl.providers import LogprobProvider


@dataclass(frozen=True)
class Principle:
    text: str
    weight: float = 1.0


class ConstitutionJudge:
    supports_pairwise = False
    supports_groups = False
    supports_streaming = True  # each completion is judged on its own: the loop may send groups as they finish

    def __init__(self, provider: LogprobProvider, principles: Sequence[Principle | str],
                 cache: JudgmentCache | None = None, scale: tuple[int, int] = (1, 5), name: str = "constitution",
                 min_valid_mass: float = MIN_VALID_MASS):
        self.principles = [p if isinstance(p, Principle) else Principle(p) for p in principles]
        if not self.principles or any(p.weight < 0 for p in self.principles) or not sum(p.weight for p in self.principles):
            raise ValueError("a constitution needs at least one principle and positive weights")
        self.judges = [
            RubricJudge(provider, f"The response follows this principle: {p.text}", scale=scale, cache=cache,
                        name=f"{name}-{k}", min_valid_mass=min_valid_mass) for k, p in enumerate(self.principles)
        ]
        self.judge_id = f"{provider.name}#{name}"

    @property
    def concurrent_calls(self) -> int:
        """`score` calls that may run at once from different threads (the provider's; judging_stream.py)."""
        return min(judge.concurrent_calls for judge in self.judges)

    @property
    def counters(self) -> dict[str, float]:
        """Calls, cache hits, failures and seconds, summed over the principles' judges."""
        total: dict[str, float] = {}
        for judge in self.judges:
            for name, value in judge.counters.items():
                total[name] = total.get(name, 0) + value
        return total

    def score(self, prompts: Sequence[str], completions: Sequence[str], **columns: Sequence[Any]) -> list[Judgment]:
        """Each principle judged alone (a `reference` column reaches every principle's judge), then combined."""
        per_principle = [judge.score(prompts, completions, **columns) for judge in self.judges]  # [k][i]
        total_weight = sum(p.weight for p in self.principles)
        out = []
        for i, (prompt, completion) in enumerate(zip(prompts, completions)):
            parts = [per_principle[k][i] for k in range(len(self.principles))]
            judgment = Judgment(kind="score", question=prompt, answer=completion, status="unscored", judge_id=self.judge_id)
            judgment.details["principles"] = [
                {"principle": p.text, "weight": p.weight, "reward": part.reward, "error": part.error}
                for p, part in zip(self.principles, parts)
            ]
            judgment.flags = sorted({flag for part in parts for flag in part.flags})
            judgment.cached = all(part.cached for part in parts)
            judgment.latency_s = sum(part.latency_s for part in parts)
            unscored = [p.text for p, part in zip(self.principles, parts) if not part.scored]
            if unscored:
                judgment.error = f"principle(s) unscored: {unscored}"
            else:
                judgment.status = "scored"
                judgment.reward = sum(p.weight * part.reward for p, part in zip(self.principles, parts)) / total_weight  # type: ignore[operator]
                judgment.score = judgment.reward
                confidences = [part.confidence for part in parts]
                judgment.confidence = min(confidences) if all(c is not None for c in confidences) else None  # type: ignore[type-var]
            out.append(judgment)
        return out
