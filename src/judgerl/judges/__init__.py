"""Judges: turn what a policy produced into a `Judgment` record, never a bare number.

- `base`: the record and the `Judge` protocol of the magic 8-ball (labels, answers);
- `llm`: the 8-ball judge over any provider (label probabilities or 1-5 scores);
- `pointwise`, `critique`, `pairwise`, `group`, `constitution`: general (prompt, completion) judges;
- `classifier`, `function`: a sequence classifier or a Python function as the judge;
- `openai_graders`: OpenAI RFT grader JSON run locally; `reward_function`: TRL-style adapters;
- `logprobs`, `parsing`: reading verdicts; `injection`: the guard; `calls`, `cache`: cached calls;
- `gate`: the confidence gate; `factory`: the judge a config asks for.
"""

from judgerl.judges.base import Judge, JudgeError, Judgment

__all__ = ["Judge", "Judgment", "JudgeError"]
