"""Read a probability for each allowed answer from a judge's next-token log-probabilities.

A judge asked to reply with one word (or one digit) puts its probability mass on a few
tokens: "Yes", " Yes", "YES", "yes" all mean Yes. We sum the mass of every variant of a
choice and renormalise over the choices, rather than parse generated text, so one call
gives a full distribution and a calibrated confidence.

Providers return only the top-k tokens. A choice absent from that list has probability at
most that of the k-th token (and at most the mass the list leaves over); we give it that
upper bound, so a reading never claims more confidence than the evidence allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class ChoiceReading:
    probs: dict[str, float]
    """Probability of each choice, renormalised to sum to 1, in the order of the choices."""
    coverage: float
    """Probability mass the judge put on tokens that name a choice (before renormalising)."""
    filled_by_bound: tuple[str, ...]
    """Choices absent from the top-k list, given the upper bound described above."""


def normalise_token(token: str) -> str:
    """" Yes" -> "yes", "Maybe." -> "maybe", "**No" -> "no": case, spaces and decoration off."""
    return token.strip().strip(".,!:;*\"'`").strip().lower()


def read_choices(
    top_logprobs: Sequence[tuple[str, float]], choices: Sequence[str]
) -> ChoiceReading | None:
    """Probability of each choice from (token, logprob) pairs; None when no choice appears.

    None means "unscored": the judge said none of the expected tokens, which must never be
    read as a low score.
    """
    wanted = {normalise_token(choice): choice for choice in choices}
    mass = {choice: 0.0 for choice in choices}
    seen: set[str] = set()
    for token, logprob in top_logprobs:
        choice = wanted.get(normalise_token(token))
        if choice is not None:
            mass[choice] += math.exp(logprob)
            seen.add(choice)
    if not seen:
        return None

    listed_probs = [math.exp(logprob) for _, logprob in top_logprobs]
    leftover = max(0.0, 1.0 - sum(listed_probs))
    bound = min(min(listed_probs), leftover)
    filled = tuple(choice for choice in choices if choice not in seen)
    for choice in filled:
        mass[choice] = bound

    coverage = sum(mass[choice] for choice in seen)
    total = sum(mass.values())
    probs = {choice: mass[choice] / total for choice in choices}
    return ChoiceReading(probs=probs, coverage=coverage, filled_by_bound=filled)


def expected_value(probs: dict[str, float]) -> float:
    """E[score] for a distribution over numeric choices: {"1": .1, "5": .9} -> 4.6."""
    return sum(float(value) * p for value, p in probs.items())
