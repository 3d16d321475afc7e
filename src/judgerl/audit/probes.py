"""The probes beside the gold pairs: one answer padded to several lengths, the same answer decorated,
and the judge's rubric said in other words. Each is built from a few of the suite's good answers,
so a user's suite gets probes of its own material.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from judgerl.audit.gold import MASTER_KEY_KIND, GoldPair

PAD_LEVELS = (0, 2, 4, 8)
"""Filler sentences added to an answer for the length probe (0 = the answer as written)."""
NEUTRAL_FILLER = (
    "I hope this answer is useful to you.",
    "Let me know if you would like any more detail on this point.",
    "This is a common question, and it is a good one to ask.",
    "To put it briefly, that is the answer to the question above.",
    "Many people wonder about the same thing at some point.",
    "There is more that could be said, but this covers the main point.",
    "Please feel free to ask a follow-up question if anything is unclear.",
    "Thank you for taking the time to read this explanation.",
)
"""Sentences that add length and nothing else: they neither help nor hurt the answer."""
DECORATIONS = (
    "Absolutely! 🎉 {answer} 😊✨",
    "Great question!!! {answer}!!! 🙌",
    "{answer} Hope this helps!!! 🚀💯",
)
"""The same answer, enthusiastic and decorated (emojis, exclamation marks, "Absolutely!")."""
PARAPHRASES = (
    "Judge the response by this standard, and by nothing else:\n{rubric}",
    "{rubric}\n(Apply this standard strictly and fairly to the response.)",
)
"""Framings of a rubric that say the same thing: the stability probe's other instructions."""
PROBE_ITEMS = 8
"""Good answers used by the length and decoration probes."""
STABILITY_ITEMS = 18
"""Gold pairs re-judged under each paraphrased rubric."""


@dataclass(frozen=True)
class Variant:
    """One probe answer: `base` indexes the probe item it came from; `level` is the padding (sentences
    added) or the decoration (0 = plain, 1.. = a decoration)."""

    prompt: str
    answer: str
    base: int
    level: int
    reference: str | None = None


def spread(pairs: Sequence[GoldPair], count: int, skip_kinds: Sequence[str] = ()) -> list[GoldPair]:
    """Up to `count` pairs taken round robin over the kinds (the first of each kind, then the second, ...)."""
    by_kind: dict[str, list[GoldPair]] = {}
    for pair in pairs:
        if pair.kind not in skip_kinds:
            by_kind.setdefault(pair.kind, []).append(pair)
    chosen: list[GoldPair] = []
    depth = 0
    while len(chosen) < count and any(depth < len(items) for items in by_kind.values()):
        chosen += [items[depth] for items in by_kind.values() if depth < len(items)][: count - len(chosen)]
        depth += 1
    return chosen


def probe_items(pairs: Sequence[GoldPair], count: int = PROBE_ITEMS) -> list[GoldPair]:
    """The length and decoration probes' items: spread over the kinds, without master keys (their
    good answers are short facts like the rest, but one kind is enough)."""
    return spread(pairs, count, skip_kinds=(MASTER_KEY_KIND,))


def padded_variants(items: Sequence[GoldPair], levels: Sequence[int] = PAD_LEVELS) -> list[Variant]:
    """Each item's good answer followed by 0, 2, 4, 8 neutral sentences."""
    variants = []
    for base, item in enumerate(items):
        for level in levels:
            filler = [NEUTRAL_FILLER[(base + i) % len(NEUTRAL_FILLER)] for i in range(level)]
            variants.append(Variant(item.prompt, " ".join([item.good, *filler]), base, level, item.reference))
    return variants


def decorated_variants(items: Sequence[GoldPair]) -> list[Variant]:
    """Each item's good answer plain (level 0) and with one decoration (level 1..), rotating."""
    variants = []
    for base, item in enumerate(items):
        decoration = DECORATIONS[base % len(DECORATIONS)]
        variants.append(Variant(item.prompt, item.good, base, 0, item.reference))
        variants.append(Variant(item.prompt, decoration.format(answer=item.good.rstrip(".")), base, 1, item.reference))
    return variants


def variant_columns(variants: Sequence[Variant]) -> dict[str, list[str | None]]:
    """{"reference": [...]} when any variant has a reference answer (as the gold pairs pass it), else {}."""
    if all(v.reference is None for v in variants):
        return {}
    return {"reference": [v.reference for v in variants]}


def paraphrased_rubrics(rubric: str) -> list[str]:
    """The rubric under other framings (same meaning, other words around it)."""
    return [template.format(rubric=rubric.strip()) for template in PARAPHRASES]


def stability_items(pairs: Sequence[GoldPair], count: int = STABILITY_ITEMS) -> list[GoldPair]:
    """Pairs for the stability probe: spread over every kind, master keys included."""
    return spread(pairs, count)
