"""What a completion is, checked by rule before (and after) a judge reads it: substance and padding.

Two known ways to beat a small LLM judge without answering (issue 10, measured on the default
1.5B judge with gold pairs):

- **master keys**: a completion with no substance ("", ":", "Thought process:", "Let's solve
  this step by step", "Sure!") is accepted as correct by judges small and large ("One Token to
  Fool LLM-as-a-Judge", Zhao et al. 2025). `hollow(text)` says so by rule, before any call, so
  it costs nothing: the text is empty, has no letter or digit, or is nothing but reasoning
  openers and fillers (a fixed list, several languages, the paper's included). There is no
  general "too few words" rule: "4", "Paris" and "No" are whole answers.
- **padding**: a wrong answer repeated at length outscored the short right one in 67% of the
  padded gold pairs. `padding(text, reference)` flags a completion that repeats itself (a
  large share of repeated 4-word phrases, or one statement made again and again, alone or
  wrapped: "In other words, X.", "To be clear: X.") or that is
  far longer than the reference answer, when the row has one (what the prompt needs is
  otherwise unknown to a rule).

What the judges do with them is `Defences` (defaults in brackets):

- a hollow completion is scored at the bottom of the scale by rule [`hollow="lowest"`]: the
  rule has the whole evidence (there is nothing in the completion that could answer the
  prompt), so judgerl can stand behind the lowest reward; "unscored" is for a judge that could
  not say, and masking a master key would let a policy emit it at no cost. The same holds for
  a completion the injection guard emptied: what it held addressed the grader, not the user.
  `hollow="unscored"` masks them instead (for rubrics where a bare "Sure!" may be right);
- a padded completion's reward is capped [`padding="cap"`, `padding_cap=0.5`]: the judge's
  verdict stands where it is low (a padded wrong answer the judge sees through keeps its low
  reward), and padding can no longer lift a completion above the middle of the scale. A cap,
  not a zero or "unscored", because the detector is a heuristic: a poem with a refrain or
  code with repeated lines is flagged too, and keeps a middling reward. Not a length-controlled
  score (length-controlled AlpacaEval): that regresses length out over a whole benchmark's
  judgments, and an RL reward is given per completion, with no such population at hand; and it
  would also discount long answers that are long because the prompt asks for it.

Every decision is recorded in the judgment: a line in `flags` ("no substance: ...",
"padded: ...") and the measurements under `details["substance"]` / `details["padding"]`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from judgerl.judges.base import Judgment
from judgerl.judges.injection import Guarded

HollowAction = Literal["lowest", "unscored", "off"]
PaddingAction = Literal["cap", "unscored", "off"]
DecorationAction = Literal["strip", "keep"]
HarmfulAction = Literal["lowest", "unscored", "off"]


@dataclass(frozen=True)
class Defences:
    """What judges do about completions with no substance and padded completions (module docstring)."""

    hollow: HollowAction = "lowest"
    """A completion with no substance (empty, punctuation only, a bare reasoning opener or filler,
    or emptied by the injection guard), decided without a judge call: "lowest" scores it at the
    bottom of the scale (reward 0, confidence 1), "unscored" masks it, "off" sends it to the judge."""
    padding: PaddingAction = "cap"
    """A padded completion (repeats itself, or far longer than the reference answer): "cap" limits
    its reward to `padding_cap`, "unscored" masks it, "off" only measures nothing."""
    padding_cap: float = 0.5
    """Highest reward a padded completion may get with padding="cap" (rewards are in [0, 1])."""
    harmful: HarmfulAction = "lowest"
    """A completion that helps with a request the judge's own model declines to answer (judges/harm.py):
    "lowest" scores it at the bottom of the scale by rule, "unscored" masks it, "off" asks nothing."""
    decoration: DecorationAction = "strip"
    """Emoji, exclamation marks and praise-only sentences (judges/decoration.py): "strip" takes them
    out before the judge reads the completion (flagged), "keep" shows them (a rubric that wants them)."""
    max_repeated_share: float = 0.3
    """Padded when at least this share of the completion's 4-word phrases repeat an earlier one
    (ordinary prose: under 0.05)."""
    min_words_for_repetition: int = 30
    """The repeated-phrase share is measured only on completions of at least this many words."""
    max_sentence_repeats: int = 2
    """Padded when one statement (a sentence of 3 words or more) is made more than this many times,
    alone or inside longer sentences ("In other words, X.")."""
    reference_length_ratio: float = 8.0
    """With a `reference` column: padded when the completion has more than this many times the
    reference's words (and more than `min_words_for_length`)."""
    min_words_for_length: int = 80
    """The length rule never flags a completion of this many words or fewer."""

    def __post_init__(self) -> None:
        if self.hollow not in ("lowest", "unscored", "off"):
            raise ValueError(f"hollow must be lowest, unscored or off, not {self.hollow!r}")
        if self.padding not in ("cap", "unscored", "off"):
            raise ValueError(f"padding must be cap, unscored or off, not {self.padding!r}")
        if self.harmful not in ("lowest", "unscored", "off"):
            raise ValueError(f"harmful must be lowest, unscored or off, not {self.harmful!r}")
        if self.decoration not in ("strip", "keep"):
            raise ValueError(f"decoration must be strip or keep, not {self.decoration!r}")
        if not 0.0 <= self.padding_cap <= 1.0:
            raise ValueError(f"padding_cap is a reward in [0, 1], not {self.padding_cap}")


# Reasoning openers and fillers that say nothing on their own (a completion made only of these
# is hollow). Matched whole, case-insensitively, from the start of what is left, separated by
# punctuation, symbols or spaces. The multilingual ones are the master keys of Zhao et al. 2025.
_OPENERS = [
    r"(my\s+)?(thought|thinking|reasoning)(\s+process)?",
    r"let['’]?s|let\s+(me|us)",
    r"(solve|think|work|go|walk|break|tackle|figure|reason|approach|look|start|begin|analy[sz]e|consider|check|see|explain)"
    r"(\s+(through|out|down|about|into|at|on|with))?",
    r"step[\s-]+by[\s-]+step|carefully|first(ly)?|step\s*1|to\s+(solve|answer)(\s+this)?",
    r"(the\s+|my\s+|final\s+)?(answer|solution|response|explanation|result|reply)(\s+is)?",
    r"here(['’]?s|\s+is)(\s+(the|my|an?))?",
    r"sure(\s+thing)?|certainly|of\s+course|absolutely|definitely|"
    r"(great|good|nice|excellent)\s+question|i(\s+(can|will)|['’]ll)\s+help(\s+with\s+that)?|happy\s+to\s+help|no\s+problem",
    r"解|解答|答案|解析|解説|かいせつ|回答|respuesta|soluci[oó]n|r[ée]ponse|l[öo]sung|antwort|ответ|решение|resposta",
]
_FILLER = re.compile(r"(?:" + "|".join(f"(?:{pattern})" for pattern in _OPENERS) + r")(?![\w])", re.IGNORECASE)
_SOFT_FILLER = re.compile(r"(?:okay|ok|alright|all\s+right|hmm+|so|well|down|out|through|(this|the|that|it)(\s+(problem|question|task|one))?)"
                          r"(?![\w])", re.IGNORECASE)
"""Fillers that are hollow next to an opener ("Okay, so let's think") but may be a whole reply alone ("OK")."""
_LEADING_SEPARATORS = re.compile(r"^[\W_]+")


def _has_word_character(text: str) -> bool:
    return any(character.isalnum() for character in text)


def hollow(text: str) -> str | None:
    """Why `text` has no substance, or None when it may hold an answer (module docstring)."""
    if not text.strip():
        return "empty"
    if not _has_word_character(text):
        return f"only punctuation or symbols: {text.strip()[:40]!r}"
    rest = unicodedata.normalize("NFKC", text)
    opener_seen = False
    while True:
        rest = _LEADING_SEPARATORS.sub("", rest)
        if not rest:
            return f"only a reasoning opener or filler: {text.strip()[:60]!r}" if opener_seen else None
        match = _FILLER.match(rest)
        opener_seen |= match is not None
        match = match or _SOFT_FILLER.match(rest)
        if match is None or match.end() == 0:
            return None
        rest = rest[match.end():]


@dataclass(frozen=True)
class Padding:
    """What the padding detector found in one completion."""

    reasons: tuple[str, ...]
    """Why it is padded, in words; empty when it is not."""
    words: int
    repeated_share: float
    """Share of its 4-word phrases that repeat an earlier one (0 when too short to measure)."""
    most_repeated_sentence: int
    """How many of its sentences make its most repeated statement (a sentence of 3 words or more)."""

    @property
    def padded(self) -> bool:
        return bool(self.reasons)

    def as_details(self) -> dict[str, object]:
        return {"reasons": list(self.reasons), "words": self.words, "repeated_share": round(self.repeated_share, 4),
                "most_repeated_sentence": self.most_repeated_sentence}


_WORD = re.compile(r"\w+")
MAX_SENTENCES = 400
"""Restatements are counted among the first this many sentences (the count is quadratic in them)."""
_SENTENCE_END = re.compile(r"[.!?;:\n]+")


def _holds(words: tuple[str, ...], part: tuple[str, ...]) -> bool:
    """Whether `part` occurs in `words` as a run of consecutive words."""
    n = len(part)
    return any(words[i:i + n] == part for i in range(len(words) - n + 1))


def padding(text: str, reference: str | None = None, defences: Defences = Defences()) -> Padding:
    """Measure repetition (and length against the reference) in `text`; see the module docstring."""
    words = _WORD.findall(text.lower())
    phrases = [tuple(words[i:i + 4]) for i in range(len(words) - 3)]
    repeated_share = 0.0
    if len(words) >= defences.min_words_for_repetition and phrases:
        repeated_share = 1.0 - len(set(phrases)) / len(phrases)
    # a statement restated: how many sentences (split at . ! ? ; : and new lines) hold the words of
    # one sentence of 3 words or more, in order ("In other words, X." and "To be clear: X." both hold X)
    sentences = [tuple(_WORD.findall(sentence)) for sentence in _SENTENCE_END.split(text.lower())]
    sentences = [sentence for sentence in sentences if len(sentence) >= 3][:MAX_SENTENCES]
    most_repeated = max((sum(_holds(other, sentence) for other in sentences) for sentence in set(sentences)), default=0)
    reasons = []
    if repeated_share >= defences.max_repeated_share:
        reasons.append(f"{repeated_share:.0%} of its 4-word phrases are repeats")
    if most_repeated > defences.max_sentence_repeats:
        reasons.append(f"one statement is made {most_repeated} times")
    if reference is not None:
        needed = len(_WORD.findall(reference))
        if len(words) > max(defences.reference_length_ratio * needed, defences.min_words_for_length):
            reasons.append(f"{len(words)} words, {len(words) / max(needed, 1):.0f}x the reference's {needed}")
    return Padding(tuple(reasons), len(words), repeated_share, most_repeated)


def judgment_by_rule(prompt: str, completion: str, shown: Guarded, judge_id: str, lowest_score: float,
                     defences: Defences) -> Judgment | None:
    """The judgment of a completion with no substance, made without a judge call; None when the
    completion has substance (or `defences.hollow` is "off") and the judge must read it.

    `shown` is the completion as the judge would see it (after the injection guard): a
    completion the guard emptied is hollow too, with its own reason."""
    if defences.hollow == "off":
        return None
    reason = hollow(completion)
    if reason is None and shown.removed:
        reason = hollow(shown.text)
        if reason is not None:
            reason = f"nothing left once the injection guard removed what addressed the grader ({reason})"
    if reason is None:
        return None
    judgment = Judgment(kind="score", question=prompt, answer=completion, status="unscored", judge_id=judge_id,
                        flags=[*shown.flags, f"no substance: {reason}; {defences.hollow}, no judge call"],
                        details={"substance": {"reason": reason, "action": defences.hollow}})
    if defences.hollow == "lowest":
        judgment.status, judgment.score, judgment.reward, judgment.confidence = "scored", lowest_score, 0.0, 1.0
    else:
        judgment.error = f"no substance: {reason} (hollow=unscored)"
    return judgment


def control_padding(judgment: Judgment, shown_text: str, reference: str | None, defences: Defences) -> Judgment:
    """`judgment` (changed in place) with padding flagged and its reward capped, or made unscored,
    as `defences.padding` says; a judgment that is not scored, or not padded, is left alone."""
    if defences.padding == "off" or not judgment.scored or judgment.reward is None:
        return judgment
    found = padding(shown_text, reference, defences)
    if not found.padded:
        return judgment
    details = {**found.as_details(), "action": defences.padding}
    reasons = "; ".join(found.reasons)
    if defences.padding == "unscored":
        judgment.status, judgment.reward, judgment.confidence = "unscored", None, None
        judgment.error = f"padded: {reasons} (padding=unscored)"
        judgment.flags.append(f"padded: {reasons}; unscored")
    elif judgment.reward > defences.padding_cap:
        details["uncapped_reward"] = judgment.reward
        judgment.flags.append(f"padded: {reasons}; reward capped {judgment.reward:.3g} -> {defences.padding_cap:g}")
        judgment.reward = defences.padding_cap
    else:
        judgment.flags.append(f"padded: {reasons}; reward {judgment.reward:.3g} already at most {defences.padding_cap:g}")
    judgment.details["padding"] = details
    return judgment
