"""Judges: turn (question, answer) into a `Judgment` record, never a bare number.

`base` holds the record and the `Judge` protocol; `llm` is the judge that asks a language
model through a provider; `function` wraps a plain Python function; `rubrics` the built-in
rubrics; `logprobs` reads probabilities from next-token log-probabilities; `cache` the
SQLite judgment cache; `gate` the confidence gate.
"""

from judgerl.judges.base import Judge, Judgment, JudgeError

__all__ = ["Judge", "Judgment", "JudgeError"]
