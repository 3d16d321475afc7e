"""The reward-hacking monitor's text statistics (monitor.py): what completions look like, with
no model: length, repeated 3-grams, emojis, exclamation marks, markdown, shared openings."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Sequence


FREE_TEXT_WORDS = 3
"""Completions averaging fewer words at the baseline are answers picked from a few (labels), not free text."""

MAX_CHARS = 20_000
"""Only the first this many characters of a completion are read (a huge one costs no more)."""

_WORD = re.compile(r"\w+", re.UNICODE)
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\U0001FC00-\U0001FFFF]")
_FORMAT = re.compile(r"(^\s*(#{1,6}\s|[-*+]\s|\d+[.)]\s|>\s|```))|\*\*[^*\n]+\*\*|__[^_\n]+__", re.MULTILINE)


def words(text: str) -> list[str]:
    """Lower-cased runs of letters and digits: "Absol!Absol! It's" -> [absol, absol, it, s]."""
    return _WORD.findall(text[:MAX_CHARS].lower())


def repeated_share(texts: Sequence[str], n: int = 3) -> float:
    """Of all word n-grams inside the completions, the share that repeat an earlier one of the
    same completion (pooled over completions; 0 when none has n words)."""
    total = repeated = 0
    for text in texts:
        tokens = words(text)
        grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
        total += len(grams)
        repeated += len(grams) - len(set(grams))
    return repeated / total if total else 0.0


def opening(text: str, count: int) -> str | None:
    """The first `count` words, or None for a completion of no more than `count` words (an answer
    that is all opening, such as the 8-ball's "Yes", has none)."""
    tokens = words(text)
    return " ".join(tokens[:count]) if len(tokens) > count else None


def text_statistics(texts: Sequence[str], opening_words: int = 1) -> dict[str, Any]:
    """Statistics of a batch of completions (no model). `openings`: each opening's share of the
    completions that have one."""
    texts = [t if isinstance(t, str) else str(t) for t in texts]
    count = max(1, len(texts))
    heads = [o for o in (opening(t, opening_words) for t in texts) if o is not None]
    return {
        "completions": len(texts),
        "mean_words": sum(len(words(t)) for t in texts) / count,
        "repetition": repeated_share(texts),
        "emoji_share": sum(bool(_EMOJI.search(t[:MAX_CHARS])) for t in texts) / count,
        "exclamation_share": sum("!" in t[:MAX_CHARS] for t in texts) / count,
        "format_share": sum(bool(_FORMAT.search(t[:MAX_CHARS])) for t in texts) / count,
        "with_opening": len(heads),
        "openings": {o: c / len(heads) for o, c in Counter(heads).most_common(200)} if heads else {},
    }


def _as_written(texts: Sequence[str], head: str, count: int) -> str:
    """The opening as the completions that have it most often write it ("Absol!" for "absol")."""
    written: Counter[str] = Counter()
    for text in texts:
        if opening(text, count) == head:
            end = list(_WORD.finditer(text[:MAX_CHARS]))[count - 1].end()
            while end < len(text) and not text[end].isspace() and not text[end].isalnum():
                end += 1
            written[text[:end].strip()[:40]] += 1
    return written.most_common(1)[0][0] if written else head


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


