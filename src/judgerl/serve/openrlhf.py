"""OpenRLHF's remote reward protocol, without HTTP (the server and the `--remote_rm_url file.py`
reward function both use it).

Request (openrlhf/utils/agent.py, SingleTurnAgentExecutor._fetch_rewards_via_http; OpenRLHF at
3c3be62, Aug 2026): {"query": [...], "prompts": [...], "labels": [...]}, one sample per request,
many at once, aiohttp with a 180 s total timeout, 5 tries 1 s apart. Each query is prompt +
response decoded with `skip_special_tokens=False`.
Answer: {"rewards": [...], "scores": [...], "extra_logs": {...}}, read as `rewards_info.get("rewards")`,
`get("scores")` (dynamic filtering, in [0, 1]) and `get("extra_logs")`.

Unscored is `null`. OpenRLHF has no way to leave a sample out of the update: it builds
`torch.tensor([reward])` from whatever comes back (samples_generator.py,
_process_response_into_experience). Any number would be taken as a real reward (0 or -1 would
be a low one; NaN passes through tensor() and poisons the group's normalised advantages);
`null` makes tensor() raise, so the run stops at that sample instead of training on an invented
reward. judgerl's judge retries and its cache keep unscored rare; the count is in extra_logs
("judgerl/unscored", of which "judgerl/gate_rejected" were scored but less confident than
judge.confidence_threshold: the gate of `judgerl train`). With `serve.unscored: retry` the
server answers 503 instead, and OpenRLHF's own retries ask again first.

extra_logs: OpenRLHF turns each value into `torch.tensor([value])` per sample and averages them
into its logs, so every value is a plain number and every answer has the same keys.
"""

from __future__ import annotations

from typing import Any, Sequence

from judgerl.judges.base import Judgment
from judgerl.serve.queries import label_column, prompt_from_template, response_text, split_query
from judgerl.serve.service import Row
from judgerl.serve.validation import BadRequest, field, string_list


def rows_from_queries(queries: Sequence[Any], prompts: Sequence[Any], labels: Sequence[Any] | None) -> list[Row | str]:
    """What to judge for each query: a Row, or (a string) why it cannot be judged."""
    rows: list[Row | str] = []
    for i, (query, prompt) in enumerate(zip(queries, prompts)):
        label = label_column(labels[i]) if labels is not None else None
        response = split_query(query, prompt)
        if response is None:
            rows.append(f"query {i} does not begin with its prompt (prompts[{i}]): nothing to judge")
            continue
        rows.append(Row(prompt_from_template(prompt), response_text(response), {"reference": label} if label is not None else {}))
    return rows


def parse_request(body: Any, max_items: int) -> tuple[list[str], list[str], list[Any] | None]:
    # An empty query list is answered with empty lists, not refused: given several URLs, OpenRLHF
    # shards each sample's one-query batch over all of them, so every server but the first gets
    # {"query": []}, and one failed shard would fail the sample (_fetch_rewards_via_http gathers them).
    queries = string_list(body, "query", max_items=max_items)
    prompts = string_list(body, "prompts", len(queries))
    labels = field(body, "labels", list, required=False)
    if labels is not None and len(labels) != len(queries):
        raise BadRequest(f"'labels' has {len(labels)} entries for {len(queries)} queries")
    return queries, prompts, labels  # type: ignore[return-value]


def answer(rewards: Sequence[float | None], judgments: Sequence[Judgment | None], waited_s: float) -> dict[str, Any]:
    """The reply: rewards and scores (the same: judgerl's rewards are in [0, 1]), null when unscored."""
    judged = [j for j in judgments if j is not None]
    extra_logs = {
        "judgerl/unscored": float(sum(r is None for r in rewards)),
        "judgerl/gate_rejected": float(sum(j.scored and r is None for r, j in zip(rewards, judgments) if j is not None)),
        "judgerl/cache_hits": float(sum(j.cached for j in judged)),
        "judgerl/judge_seconds": float(round(waited_s, 6)),
        "judgerl/model_seconds": float(round(sum(j.latency_s for j in judged), 6)),
    }
    return {"rewards": list(rewards), "scores": list(rewards), "extra_logs": extra_logs}
