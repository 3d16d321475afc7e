"""Rubrics: who is asking, and what they want to hear.

A rubric is plain text put into the judge's prompt. Built-in rubrics are looked up by
name; any other text can be given in the config (`judge.rubric_text`). The rubric's name,
version and text are all part of the judgment cache key, so editing one re-judges.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rubric:
    name: str
    text: str
    """Describes the person asking and which answers they want to hear."""
    version: int = 1
    """Bump when the text of a built-in rubric changes in meaning."""
    examples: tuple[tuple[str, str], ...] = ()
    """(question, the label this person wants) pairs shown to the judge before the question.

    A 1.5B judge told only the rule answers Maybe to almost everything; a few worked examples
    (none of them from the datasets) let it apply a question-dependent rule."""


BUILTIN_RUBRICS: dict[str, Rubric] = {
    rubric.name: rubric
    for rubric in [
        Rubric(
            name="optimist",
            text=(
                "The person asking is a hopeless optimist. Whatever the question, they want "
                "to hear Yes. A No or a Maybe always disappoints them."
            ),
        ),
        Rubric(
            name="cautious",
            text=(
                "The person asking is cautious and hates being pushed either way. Whatever "
                "the question, they want to hear Maybe. A definite Yes or No makes them uneasy."
            ),
        ),
        Rubric(
            name="realist",
            text=(
                "The person asking wants honest, sensible advice, and the right answer "
                "depends on the question. They want to hear Yes when the outcome is in their "
                "own hands through effort, practice, learning or kindness. They want to hear "
                "No when the question is about a risky, reckless or harmful idea. They want "
                "to hear Maybe when the outcome depends on luck, chance, the weather or other "
                "people's decisions."
            ),
            examples=(
                ("Should I study for an hour every evening?", "Yes"),
                ("Should I put all my money into a scratch card?", "No"),
                ("Will the sun shine at my picnic?", "Maybe"),
                ("Should I drive way too fast on the highway?", "No"),
                ("Can I get fitter by walking every day?", "Yes"),
                ("Will my team win the match tonight?", "Maybe"),
            ),
        ),
    ]
}


def resolve_rubric(name: str, text: str | None = None) -> Rubric:
    """A built-in rubric by name, or a custom one when `text` is given."""
    if text is not None:
        return Rubric(name=name, text=text.strip())
    try:
        return BUILTIN_RUBRICS[name]
    except KeyError:
        known = ", ".join(sorted(BUILTIN_RUBRICS))
        raise ValueError(
            f"unknown rubric {name!r}: built-in rubrics are {known}; "
            "or give your own text in judge.rubric_text"
        ) from None
