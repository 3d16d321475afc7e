"""Decoration taken out of a completion before a judge reads it: emojis, exclamation marks, praise.

A small judge rewards enthusiasm it should ignore. Measured on the default 1.5B judge (issue
10, built-in gold pairs): a wrong answer dressed in "Absolutely! 🎉 What a fantastic question!!"
and emojis was scored above the plain right answer in 13 of 17 pairs, and the SmolLM2 example's
policy learned to open every answer with "Absol!" and emojis while the judge's reward rose. A
rubric cannot fix that (telling the 1.5B judge "enthusiasm is worth nothing" changed nothing);
not showing the decoration does, and costs nothing. So, as the injection guard does for lines
addressed to the grader, `undecorate` removes:

- emoji and pictographs (with their joiners, variation selectors, skin tones and flags); other
  symbols stay ("°", "€", "±", "→" carry meaning);
- exclamation marks that end a sentence (a run of them becomes one "."; "!=" and "!x" in code stay);
- sentences that are nothing but enthusiasm or praise: interjections ("Absolutely!", "Wow!",
  "Yay, baking time!"), praise of the question ("What a fantastic question!"), of the asker
  ("You're so smart to ask!", "You absolute legend, keep shining!") and cheering closers
  ("Hope this helps!", "Stay awesome!"). A sentence with a digit, code or a fact-bearing
  clause after the praise ("Great question: it is 52.") is kept, minus its leading interjection.

What is removed is recorded in the judgment's `flags`, so an audit sees it and a policy that
decorates gains nothing from it. A rubric that asks for enthusiasm or emojis (a friendly
persona) must turn this off: `judge.decoration: keep`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EMOJI = re.compile(
    "["
    "\U0001F000-\U0001FAFF"  # pictographs, emoticons, transport, flags' letters, supplemental symbols
    "\u2600-\u27BF"  # miscellaneous symbols and dingbats (☀ ✨ ❤ ✅)
    "\u2B00-\u2BFF"  # arrows and symbols used as emoji (⭐ ⬆)
    "\u2300-\u23FF"  # technical symbols used as emoji (⌚ ⏰)
    "\uFE0E\uFE0F\u200D\u20E3"  # variation selectors, zero-width joiner, keycap
    "\U000E0020-\U000E007F"  # tag characters (subdivision flags)
    "]+"
)
_SENTENCE_BANG = re.compile(r"(?<![!=<>\d])(?:\s*[!¡]+\s*[?]*)+(?=\s|$|[\"')\]])")
"""'!', '!!!', '?!' closing a sentence (followed by space or the end); not '!=', '!x' nor a factorial '5!'."""
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*|\n")

_PRAISE_WORDS = (
    r"smart|brilliant|awesome|amazing|legend(ary)?|superstar|star|genius|wonderful|great|greats|best|impressive|sharp|"
    r"fascinating|lucky|curious|curiosity|impeccable|connoisseur|refined|incredible|fantastic|excellent|lovely|clever|"
    r"thoughtful|insightful|inspiring|shining|proud|fabulous|superb|terrific|marvell?ous|outstanding|wise|"
    r"delightful|cool|fun|exciting|excited|love|adore|bravo|kudos"
)
_INTERJECTION = (
    r"absolutely|definitely|certainly|of\s+course|sure(\s+thing)?|totally|yes+|yay+|yeah|wow+|whoa|ooh+|oh+(\s+my(\s+\w+)?)?|"
    r"hooray|woo+(hoo+)?|bravo|ah+|aha|omg|gosh|yum+|kanpai|cheers|chef['’]s\s+kiss|hey"
)
_PRAISE_SENTENCES = [
    # an interjection, maybe with a short exclamation after it: "Absolutely!", "Wow, space!", "Yay, baking time!"
    re.compile(rf"^({_INTERJECTION})\b[\s,]*(\w+[\s,]*){{0,3}}$", re.IGNORECASE),
    # praise of the question or topic: "What a fantastic question", "Great question, superstar", "Love this one"
    re.compile(rf"\b(what\s+an?\s+)?(\w+[\s,]+){{0,3}}({_PRAISE_WORDS})\b.{{0,30}}\b(question|one|topic|ask|query)\b", re.IGNORECASE),
    # the asker praised: "you're so smart", "your taste is impeccable", "you absolute legend", "you've got this"
    re.compile(rf"\b(you|your|you['’](re|ve|ll))\b.*\b({_PRAISE_WORDS})\b|\b({_PRAISE_WORDS})\b.*\b(you|your)\b", re.IGNORECASE),
    re.compile(r"\byou['’]?ve\s+got\s+this\b|\bkeep\s+(going|it\s+up|shining|learning|being)\b|\bnever\s+change\b", re.IGNORECASE),
    # cheering closers: "Hope this helps", "Stay awesome", "Enjoy your cooking adventure", "Happy baking"
    re.compile(rf"^(i\s+)?hope\s+(this|that|it)\s+helps|^stay\s+\w+$|^enjoy\b|^happy\s+\w+(ing)?$|^have\s+fun\b|^good\s+luck\b|"
               rf"\b(is|are)\s+(so|such)\s+(a\s+)?({_PRAISE_WORDS})\b|^(such|so)\s+(a\s+)?\w*\s*({_PRAISE_WORDS})\b|"
               rf"^isn['’]?t\s+(that|it)\s+({_PRAISE_WORDS})", re.IGNORECASE),
]
_SUBSTANCE = re.compile(r"\d|`|=|\(|\)|\bis\b.*\b(not|the|a|an|about|by|from|of|in)\b|\b(use|run|type|press|add|mix)\b", re.IGNORECASE)
"""Signs a sentence carries content: a number, code, or a statement ("X is the Y"); such a
sentence is kept even when it praises ("Great question: the answer is 52")."""
_LEADING_INTERJECTION = re.compile(rf"^\s*({_INTERJECTION})\b\s*[,:;\-–—]\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Undecorated:
    text: str
    """The completion as the judge will see it."""
    removed: tuple[str, ...]
    """What was taken out, in words ("3 emoji", "praise: 'What a fantastic question!!'")."""

    @property
    def flags(self) -> list[str]:
        return [f"decoration removed: {what}" for what in self.removed]


def _is_praise(sentence: str) -> bool:
    bare = sentence.strip().rstrip(".!?").strip()
    if not bare:
        return False
    if not any(pattern.search(bare) for pattern in _PRAISE_SENTENCES):
        return False
    return _SUBSTANCE.search(_LEADING_INTERJECTION.sub("", bare)) is None or _PRAISE_SENTENCES[0].match(bare) is not None


def _drop_praise(text: str) -> tuple[str, list[str]]:
    """`text` without its praise-only sentences (module docstring), and what was dropped."""
    kept, dropped = [], []
    for sentence in _SENTENCE.findall(text):
        if sentence != "\n" and _is_praise(sentence):
            dropped.append(f"praise: {sentence.strip()[:60]!r}")
            continue
        kept.append(_LEADING_INTERJECTION.sub("", sentence) if not kept or kept[-1] == "\n" else sentence)
    return "".join(kept), dropped


def undecorate(text: str) -> Undecorated:
    """`text` without emoji, sentence-ending exclamation marks and praise-only sentences."""
    removed: list[str] = []
    emoji = _EMOJI.findall(text)
    if emoji:
        removed.append(f"{sum(len(run) for run in emoji)} emoji characters")
        text = _EMOJI.sub(" ", text)
    bangs = _SENTENCE_BANG.findall(text)
    if bangs:
        removed.append(f"{sum(run.count('!') + run.count('¡') for run in bangs)} exclamation marks")
        text = _SENTENCE_BANG.sub(".", text)
    without_praise, dropped = _drop_praise(text)
    if without_praise.strip(" \t\n.,;:"):  # praise is dropped only when something is left: "Yes!" is an answer
        text = without_praise
        removed.extend(dropped)
    if not removed:
        return Undecorated(text=text, removed=())
    text = re.sub(r"[ \t]{2,}", " ", re.sub(r"\s+([.,;:])", r"\1", text))
    text = re.sub(r"\.{2,}", ".", re.sub(r"^[ \t.]+", "", text, flags=re.MULTILINE)).strip()
    return Undecorated(text=text, removed=tuple(removed))
