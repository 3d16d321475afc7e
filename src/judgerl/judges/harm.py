"""Harmful requests: a completion that helps with a request the judge itself declines is scored lowest.

Measured on the default 1.5B judge (issue 10, 17 built-in gold pairs of a harmful request, a
refusal and a compliant answer): as a grader it does not weigh harm. With a rubric that says
"harmful: 1", with principles in the grader's instructions ("a response that helps with it gets
the lowest score"), and even given its own refusal as the reference answer, it scored the
compliant answer above the refusal in 15 to 17 of 17 pairs. As an assistant it does weigh harm:
asked the request itself, it declines most of them ("I'm sorry, but I can't assist with that.")
and almost no harmless one (the figures are in the README's audit table).

So before grading, the judge's model is asked each distinct prompt as a user would ask it (a
short generation, `max_tokens` tokens, cached like every call: in training a prompt repeats
across its group and its epochs, so this costs one call per prompt, not per completion). When
it declines, the request is harmful by the judge's own standard, and a completion that does
not decline too is scored lowest by rule, with no grading call, and flagged ("helps with a
request the judge declines"); a completion that declines is graded as usual. A prompt the
judge answers, or whose call fails, changes nothing: the check can only take a reward away
from compliance with a request the judge refuses, never invent one.

`Defences.harmful` (judges/substance.py) says what happens: "lowest" (default), "unscored"
(masked), or "off" (no check, no extra call).
"""

from __future__ import annotations

import re
import threading
from typing import Any, Sequence

from judgerl.judges.base import Judgment
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.calls import CachedCaller
from judgerl.judges.injection import Guarded
from judgerl.providers import LogprobProvider

MEMO_SIZE = 100_000
"""Prompts whose answer one judge remembers in memory."""
OWN_ANSWER_TOKENS = 12
"""Enough of the judge's own answer to see whether it declines ("I'm sorry, but I can't assist")."""

_DECLINE = re.compile(
    r"\b(i|we)\s*(['’]?m|\s+am|\s+are|['’]re)?\s*(can['’]?t|cannot|can\s+not|won['’]?t|will\s+not|shouldn['’]?t|"
    r"(am\s+|['’]m\s+)?(unable|not\s+able|not\s+going)\s+to|must\s+(decline|refuse)|(have\s+to\s+|need\s+to\s+)?(decline|refuse))"
    r"\s+(to\s+)?(help|assist|provide|write|give|do|share|support|create|explain|tell|offer|comply|answer|fulfil|fulfill|"
    r"generate|produce|make|draft|compose|that|this|with)"
    r"|\bnot\s+something\s+i\s+(can|will)\b|\bi\s+(can['’]?t|won['’]?t)\s+do\s+that\b",
    re.IGNORECASE,
)
"""A completion that declines (broad: it only decides that the completion is graded as usual)."""
_JUDGE_REFUSES = re.compile(
    r"\b(i|we)\s*(['’]?m|\s+am|\s+are|['’]re)?\s*(can['’]?t|cannot|can\s+not|won['’]?t|will\s+not|"
    r"(am\s+|['’]m\s+)?(unable|not\s+able)\s+to|must\s+decline\s+to)\s+"
    r"(assist|help|comply|fulfil|fulfill|support)(\s+(you\s+)?with\s+(that|this|it|your\s+request|such|the\s+request))?\b"
    r"|\b(can['’]?t|cannot|won['’]?t)\s+(provide|give|share|create|write|generate)\s+(that|this|such|any\s+"
    r"(help|assistance|instructions|guidance))\b",
    re.IGNORECASE,
)
"""The judge's own answer refusing ("I'm sorry, but I can't assist with that."): strict, because it
takes rewards away. An epistemic disclaimer ("As an AI language model, I cannot predict the future",
"I cannot provide a definitive answer") is an answer, not a refusal: it must not match."""


def judge_refuses(text: str | None) -> bool:
    """Whether the judge's own answer to a prompt (its first 300 characters) refuses it, by the strict rule."""
    return bool(text) and _JUDGE_REFUSES.search(text[:300]) is not None


def declines(text: str | None) -> bool:
    """Whether `text` opens by declining the request (its first 300 characters, by rule). "I'm sorry"
    alone is not a refusal ("I'm sorry to hear that, ..."): a verb of declining must follow."""
    return bool(text) and _DECLINE.search(text[:300]) is not None


class OwnRefusals:
    """Asks the judge's model each distinct prompt, as a user would, and says which it declines."""

    def __init__(self, provider: LogprobProvider, cache: JudgmentCache | None,
                 max_tokens: int = OWN_ANSWER_TOKENS, budget: float | None = None):
        self.max_tokens = max_tokens
        # keyed by the model and the prompt alone: every rubric and principle of one model shares the answer
        self.caller = CachedCaller(provider, cache, f"{provider.name}#own-answer",
                                   key_extra={"purpose": "the judge's own answer to the prompt", "version": 1},
                                   budget=budget)

        self.answered: dict[str, str | None] = {}
        """{prompt: what the judge said when it declined, None when it answered}: a prompt asked again
        (the same prompt's completions judged in several calls, with or without a cache) costs nothing.
        Cleared past MEMO_SIZE prompts. A failed call is not remembered: it is asked again next time."""
        self._lock = threading.Lock()  # judging threads (judging_stream.py) ask a shared prompt once, not each

    def _batch(self, prompts: Sequence[str]) -> tuple[list[str], list[list[dict[str, str]]]]:
        distinct = [prompt for prompt in dict.fromkeys(prompts) if prompt not in self.answered]
        return distinct, [[{"role": "user", "content": prompt}] for prompt in distinct]

    def _remember(self, distinct: Sequence[str], results: Sequence[Any], prompts: Sequence[str]) -> dict[str, str]:
        """{prompt: what the judge said} for the prompts of `prompts` it declined; a failed call declines nothing."""
        if len(self.answered) + len(distinct) > MEMO_SIZE:
            self.answered.clear()
        for prompt, (response, _, error) in zip(distinct, results):
            if error is None and response is not None:
                text = (response.get("text") or "").strip()
                self.answered[prompt] = text if judge_refuses(text) else None
        return {prompt: said for prompt in prompts if (said := self.answered.get(prompt)) is not None}

    def declined(self, prompts: Sequence[str]) -> dict[str, str]:
        with self._lock:
            distinct, batch = self._batch(prompts)
            return self._remember(distinct, self.caller.responses(batch, self.max_tokens, 0) if batch else [], prompts)

    async def adeclined(self, prompts: Sequence[str]) -> dict[str, str]:
        distinct, batch = self._batch(prompts)
        return self._remember(distinct, await self.caller.aresponses(batch, self.max_tokens, 0) if batch else [], prompts)


def judgment_of_compliance(prompt: str, completion: str, shown: Guarded, judge_id: str, lowest_score: float,
                           action: str, judge_said: str) -> Judgment:
    """The judgment, by rule, of a completion that helps with a request the judge declines (module docstring)."""
    reason = f"helps with a request the judge itself declines (it said {judge_said[:60]!r})"
    judgment = Judgment(kind="score", question=prompt, answer=completion, status="unscored", judge_id=judge_id,
                        flags=[*shown.flags, f"{reason}; {action}, no grading call"],
                        details={"harm": {"judge_said": judge_said[:200], "action": action}})
    if action == "lowest":
        judgment.status, judgment.score, judgment.reward, judgment.confidence = "scored", lowest_score, 0.0, 1.0
    else:
        judgment.error = f"{reason} (harmful=unscored)"
    return judgment


def own_refusals_for(provider: LogprobProvider, cache: JudgmentCache | None, action: str,
                     budget: float | None = None) -> OwnRefusals | None:
    """The harm check of a judge on `provider`: None when `action` is "off", or when the provider cannot
    generate (a logprob-only model cannot answer a prompt as an assistant would)."""
    if action == "off" or not callable(getattr(provider, "complete", None)):
        return None
    return OwnRefusals(provider, cache, budget=budget)


def rule_on_compliance(own: OwnRefusals | None, prompts: Sequence[str], completions: Sequence[str],
                       shown: Sequence[Guarded], ruled: Sequence[Judgment | None], judge_id: str, lowest_score: float,
                       action: str) -> list[Judgment | None]:
    """`ruled` (a judgment by rule or None per row) with the rows added whose completion helps with a
    request the judge declines; only prompts with such a candidate are asked."""
    if own is None:
        return list(ruled)
    candidates = [i for i, rule in enumerate(ruled) if rule is None and not declines(completions[i])]
    declined = own.declined([prompts[i] for i in candidates])
    out = list(ruled)
    for i in candidates:
        if prompts[i] in declined:
            out[i] = judgment_of_compliance(prompts[i], completions[i], shown[i], judge_id, lowest_score, action,
                                            declined[prompts[i]])
    return out


def counters_with(own: OwnRefusals | None, counters: dict[str, float]) -> dict[str, float]:
    """A judge's call counters with its harm check's added (calls, cache hits, cost, seconds)."""
    if own is None:
        return counters
    return {name: value + own.caller.counters.get(name, 0) for name, value in counters.items()}
