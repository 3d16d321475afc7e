"""Small TRL-style reward functions shipped with judgerl, for `judge.provider: python` with
`judge.method: reward_function` (the shipped example config `smollm2-reward-function` uses one).

    reward(prompts, completions, **columns) -> list[float | None]

`prompts` are the prompts as the judge sees them (a chat conversation rendered as text), and
`completions` the policy's answers; `columns` are the data file's other columns, one list per
column, when the run passes them. None means "unscored" (no update from that completion).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


def one_short_sentence(prompts: Sequence[str], completions: Sequence[str], **columns: Any) -> list[float]:
    """1.0 for one sentence of at most 25 words, less for each extra sentence or word, 0 for nothing."""
    rewards = []
    for completion in completions:
        text = completion.strip()
        if not text:
            rewards.append(0.0)
            continue
        sentences = max(1, len(SENTENCE_END.findall(text)))
        words = len(text.split())
        reward = 1.0 - 0.25 * (sentences - 1) - 0.02 * max(0, words - 25)
        rewards.append(max(0.0, reward))
    return rewards
