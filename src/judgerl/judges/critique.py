"""Critique then score: the judge writes a short critique first, then its score.

Reasoning before the verdict helps larger judges (Critique-out-Loud; Prometheus'
"Feedback: ... [RESULT] N"). The critique is kept in the judgment record (`critique`), the
score is parsed strictly from the final "Score: N" line (parsing.py), and anything else is
unscored. It costs a generation of up to `max_tokens` per judgment, so it is several times
slower than reading the score from log-probabilities (benchmarks/bench_judging.py measures it).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from judgerl.judges.base import Judgment, check_columns
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.calls import CachedCaller, judgment_from_call
from judgerl.judges.harm import counters_with, own_refusals_for, rule_on_compliance
from judgerl.judges.parsing import parse_score
from judgerl.judges.pointwise import GRADER_PREAMBLE, grading_messages, references_of, shown_to_judge
from judgerl.judges.substance import Defences, control_padding, judgment_by_rule
from judgerl.providers import LogprobProvider

TEMPLATE_VERSION = 1
SYSTEM = GRADER_PREAMBLE + (
    "First write a critique of the response against the rubric in one or two sentences. "
    "Then, on a last line of its own, write \"Score: N\" with N a whole number from {low} to {high}."
)
_SCORE_LINE = re.compile(r"\n?\s*(?:final\s+)?score\s*[:=].*$", re.IGNORECASE | re.DOTALL)


class CritiqueJudge:
    """Critique, then a score; a `reference` column is shown as the reference answer (as RubricJudge)."""

    supports_pairwise = False
    supports_groups = False
    supports_streaming = True  # each completion is judged on its own: the loop may send groups as they finish

    def __init__(self, provider: LogprobProvider, rubric: str, scale: tuple[int, int] = (1, 5),
                 cache: JudgmentCache | None = None, name: str = "critique", version: int = 1, max_tokens: int = 96,
                 guard_injections: bool = True, defences: Defences = Defences()):
        self.defences = defences
        """No-substance and padding defences, as RubricJudge's (judges/substance.py)."""
        self.rubric = rubric.strip()
        self.scale = scale
        self.max_tokens = max_tokens
        self.judge_id = f"{provider.name}#{name}"
        self.guard_injections = guard_injections
        self.caller = CachedCaller(
            provider, cache, self.judge_id,
            key_extra={"rubric": {"name": name, "version": version, "text": self.rubric, "scale": list(scale)},
                       "template_version": TEMPLATE_VERSION, "way": "critique-then-score",
                       "guard": guard_injections},
        )
        self.own_refusals = own_refusals_for(provider, cache, defences.harmful)
        """The harm check (judges/harm.py), as RubricJudge's."""

    @property
    def concurrent_calls(self) -> int:
        """`score` calls that may run at once from different threads (the provider's; judging_stream.py)."""
        return self.caller.concurrent_calls

    @property
    def counters(self) -> dict[str, float]:
        return counters_with(self.own_refusals, self.caller.counters)

    def messages(self, prompt: str, completion: str, reference: str | None = None) -> list[dict[str, str]]:
        return grading_messages(SYSTEM, self.rubric, self.scale, prompt, completion, reference)

    def score(self, prompts: Sequence[str], completions: Sequence[str], **columns: Sequence[Any]) -> list[Judgment]:
        """A completion with no substance is judged by rule, with no call; a padded one is capped."""
        check_columns(columns, len(prompts))
        references = references_of(columns, len(prompts))
        shown = [shown_to_judge(c, self.guard_injections, self.defences) for c in completions]
        ruled = [judgment_by_rule(p, c, g, self.judge_id, self.scale[0], self.defences)
                 for p, c, g in zip(prompts, completions, shown, strict=True)]
        ruled = rule_on_compliance(self.own_refusals, prompts, completions, shown, ruled, self.judge_id, self.scale[0],
                                   self.defences.harmful)
        batch = [self.messages(p, g.text, r) for p, g, r, rule in zip(prompts, shown, references, ruled) if rule is None]
        results = iter(self.caller.responses(batch, max_tokens=self.max_tokens, top_k=0))
        judgments = []
        for prompt, completion, guarded, reference, rule in zip(prompts, completions, shown, references, ruled):
            if rule is not None:
                judgments.append(rule)
                continue
            judgment = self._read(prompt, completion, next(results))
            judgment.flags = guarded.flags
            judgments.append(control_padding(judgment, guarded.text, reference, self.defences))
        return judgments

    def _read(self, prompt: str, completion: str, result: Any) -> Judgment:
        """The critique and the strictly parsed score of one answer."""
        judgment = judgment_from_call("score", prompt, completion, result, self.judge_id)
        if judgment.error:
            return judgment
        low, high = self.scale
        text = judgment.raw_text or ""
        judgment.critique = _SCORE_LINE.sub("", text).strip() or None
        parsed = parse_score(text, low, high)
        if parsed.parsed:
            judgment.status = "scored"
            judgment.score = parsed.value
            judgment.reward = (parsed.value - low) / (high - low)  # type: ignore[operator]
        else:
            judgment.error = f"unparsed: {parsed.reason}"
        return judgment
