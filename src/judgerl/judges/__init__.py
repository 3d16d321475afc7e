"""Judges: turn what a policy produced into a `Judgment` record, never a bare number.

- `base`: the record and the one contract, `Judge.score(prompts, completions, **columns)`, with
  pairwise (`compare`) and group (`score_groups`) judging as declared capabilities;
- `llm`: the 8-ball judge over any provider (label probabilities or 1-5 scores);
- `pointwise`, `critique`, `pairwise`, `group`, `constitution`: general (prompt, completion) judges;
- `classifier`, `function`: a sequence classifier or a Python function as the 8-ball's judge;
- `openai_graders`: OpenAI RFT grader JSON run locally; `python_reward`: a TRL-style reward
  function as a judge; `reward_function`: any judge as a TRL reward function;
- `logprobs`, `parsing`: reading verdicts; `injection`: the guard; `calls`, `cache`: cached calls;
- `gate`: the confidence gate. Building a judge from a config is the app layer's (`judgerl.build`).
"""

from typing import Any, Callable

from judgerl.judges.base import Judge, JudgeError, Judgment
from judgerl.registry import Registry

JUDGES: Registry[Callable[..., Judge]] = Registry("judge method")
"""Ways of judging (judge.method), built-in and a plugin's alike: name -> factory(parts, **settings).
`parts` (`judgerl.build.JudgeParts`) carries what every judge may use: `provider` (the configured
model provider, built when first read), `rubric`, `scale` (low, high), `labels`, `cache` and
`config` (the judge section's shared settings); `settings` are the method's own (judge.<method>)."""


def register_judge(name: str, factory: Callable[..., Judge], settings: Any = None, help: str = "") -> None:
    JUDGES.register(name, factory, settings=settings, help=help)


__all__ = ["JUDGES", "Judge", "Judgment", "JudgeError", "register_judge"]
