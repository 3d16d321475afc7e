"""slime's remote reward model shape (`--rm-type remote_rm --rm-url URL`), without HTTP.

Request (slime/rollout/rm_hub/__init__.py, remote_rm; slime at 624b824, Aug 2026):
{"prompt": sample.prompt, "response": sample.response, "label": sample.label}, one sample per
request, aiohttp (120 s total timeout), 10 tries with exponential back-off. The whole JSON answer
becomes `sample.reward`; with `--reward-key K` slime reads `sample.reward[K]` (types.py,
get_reward_value). So /slime answers a bare number, /slime/dict an object whose "reward" is the
number (`--reward-key reward`) beside the judgment's score, confidence and reason.

Unscored is `null` (at /slime, or as "reward" at /slime/dict). slime cannot leave one sample out
of a group: it builds `torch.tensor(raw_rewards)` (ray/rollout.py, _post_process_rewards), which
raises on a None, so the run stops rather than train on an invented reward.
"""

from __future__ import annotations

from typing import Any

from judgerl.judges.base import Judgment
from judgerl.serve.queries import any_prompt_text, label_column, response_text
from judgerl.serve.service import Row
from judgerl.serve.validation import BadRequest, field


def row_from_request(body: Any) -> Row:
    prompt = field(body, "prompt", (str, list))
    if isinstance(prompt, list) and (not prompt or not all(isinstance(m, dict) for m in prompt)):
        raise BadRequest("'prompt' must be a string or a list of chat messages ({\"role\", \"content\"})")
    response = field(body, "response", str)
    label = label_column(body.get("label"))
    return Row(any_prompt_text(prompt), response_text(response), {"reference": label} if label is not None else {})


def dict_answer(reward: float | None, judgment: Judgment) -> dict[str, Any]:
    return {"reward": reward, "score": judgment.score if reward is not None else None,
            "confidence": judgment.confidence if reward is not None else None, "scored": reward is not None,
            "cached": judgment.cached, "error": judgment.error or (None if reward is not None else "; ".join(judgment.flags)),
            "judge_id": judgment.judge_id}
