"""Read a probability for each allowed answer from a judge's next-token log-probabilities.

A judge asked to reply with one word (or one digit) puts its probability mass on a few
tokens: "Yes", " Yes", "YES", "yes" all mean Yes. We sum the mass of every variant of a
choice, rather than parse generated text, so one call gives a full distribution and a
calibrated confidence.

No reward without evidence. The valid tokens must hold a real share of the judge's
probability: a judge that says "banana" with probability 1 and "5" at logprob -30 has said
nothing about the score, and renormalising its 1e-13 over the digits would invent a
confident 5. So:
- `valid_mass` = the probability the judge put on tokens naming a choice (not renormalised);
  a reading below `MIN_VALID_MASS` (documented default 0.5, the judge's setting
  `min_valid_mass`) is refused: unscored, with the share in the record;
- the distribution over choices (`probs`, used for the expected score and P(label)) is
  renormalised, but the confidence is the probability the judge actually gave its most likely
  choice, `valid_mass * max(probs)` before the bound below: what the judge said, not what
  was left after renormalising the rest away.

Providers return only the top-k tokens. A choice absent from that list has probability at
most that of the k-th token (and at most the mass the list leaves over); we give it that
upper bound, so a reading never claims more confidence than the evidence allows.

The (token, logprob) pairs are checked by `check_top_logprobs` before they get here (see
judges/evidence.py): finite, at most 0, a total probability of at most 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

MIN_VALID_MASS = 0.5
"""Least probability the valid tokens must hold for a reading to be scored (the judges'
`min_valid_mass`). The local 1.5B judge puts 0.99+ on the digits of a 1-5 rubric."""


@dataclass(frozen=True)
class ChoiceReading:
    probs: dict[str, float]
    """Probability of each choice, renormalised to sum to 1, in the order of the choices."""
    coverage: float
    """Probability mass the judge put on tokens that name a choice (before renormalising)."""
    filled_by_bound: tuple[str, ...]
    """Choices absent from the top-k list, given the upper bound described above."""
    confidence: float
    """Probability the judge gave its most likely choice, as it said it (not renormalised)."""
    refused: str | None = None
    """Why this reading may not be scored (too little mass on the valid tokens); None if it may."""

    @property
    def best(self) -> str:
        return max(self.probs, key=self.probs.__getitem__)


def normalise_token(token: str) -> str:
    """" Yes" -> "yes", "Maybe." -> "maybe", "**No" -> "no": case, spaces and decoration off."""
    return token.strip().strip(".,!:;*\"'`").strip().lower()


def read_choices(
    top_logprobs: Sequence[tuple[str, float]], choices: Sequence[str], min_valid_mass: float = MIN_VALID_MASS
) -> ChoiceReading | None:
    """Probability of each choice from (token, logprob) pairs; None when no choice appears.

    None means "unscored": the judge said none of the expected tokens, which must never be
    read as a low score. A reading whose valid tokens hold less than `min_valid_mass` comes
    back with `refused` set: the caller records it unscored, with the share.
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
    coverage = min(1.0, sum(mass[choice] for choice in seen))
    said_best = max(mass[choice] for choice in seen)
    for choice in filled:
        mass[choice] = bound

    total = sum(mass.values())
    probs = {choice: mass[choice] / total for choice in choices}
    # never more sure than the judge said, nor than the renormalised distribution allows
    confidence = min(said_best, max(probs.values()))
    refused = None
    if coverage < min_valid_mass:
        refused = (f"the valid tokens {list(choices)} hold {coverage:.3g} of the judge's probability, "
                   f"below the {min_valid_mass:g} needed (min_valid_mass)")
    return ChoiceReading(probs=probs, coverage=coverage, filled_by_bound=filled, confidence=confidence,
                         refused=refused)


def expected_value(probs: dict[str, float]) -> float:
    """E[score] for a distribution over numeric choices: {"1": .1, "5": .9} -> 4.6."""
    return sum(float(value) * p for value, p in probs.items())
