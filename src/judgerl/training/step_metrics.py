"""The metrics row of one RL step (TRL's names, see metrics.py), the judge's counters, and the
samples written to samples.jsonl."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any


from judgerl.algorithms import Prepared
from judgerl.judges.gate import ConfidenceGate
from judgerl.rewards import JudgedRollout
from judgerl.rollouts import Rollout, SequencePolicy
from judgerl.training.distributed import DataParallel
from judgerl.training.metrics import (completion_metrics, prompt_tokens, reward_group_metrics, terminated_rows,
                                      with_trl_names)
from judgerl.training.rollout_step import Sampled

if TYPE_CHECKING:
    from judgerl.training.loop import LoopSettings

def judge_counters(judge: Any) -> dict[str, float]:
    """Provider calls, cache hits, seconds spent calling and cost, where the judge counts them."""
    return dict(getattr(judge, "counters", {}))


def rollout_metrics(rollout: Rollout, judged: JudgedRollout, gate_threshold: float,
                    policy: Any = None) -> dict[str, float]:
    """TRL's reward and completions/* metrics of one rollout, and the judge's (judge/*)."""
    lengths = rollout.lengths
    judgments = judged.judgments
    latencies = [j.latency_s for j in judgments if not j.cached and j.latency_s]
    return {
        **reward_group_metrics(judged.rewards, judged.accepted, rollout.group, next((j.judge_id for j in judgments), None)),
        **completion_metrics(lengths, terminated_rows(policy, rollout.completion_ids, lengths)),
        "judge/accept_rate": float(judged.accepted.float().mean()) if len(judged.accepted) else 0.0,
        "judge/unscored": float(sum(not j.scored for j in judgments)),
        "judge/latency_s": sum(latencies) / len(latencies) if latencies else 0.0,
        "judge/cost": float(sum(j.cost for j in judgments)),
    }


def step_row(step: int, sampled: Sampled, prepared: Prepared, losses: dict[str, float], judge_calls: dict[str, float],
             seconds: float, policy: SequencePolicy, gate: ConfidenceGate, parallel: DataParallel) -> dict[str, Any]:
    """The step's metrics row (TRL's names; see training/metrics.py), before the loop's running totals."""
    rollout, judged = sampled.rollout, sampled.judged
    tokens = float(rollout.completion_mask.sum())
    row = {
        "stage": "rl", "step": step,
        **prepared.metrics, **losses, **rollout_metrics(rollout, judged, gate.threshold, policy),
        **{f"judge/{name}": value for name, value in judge_calls.items()},  # this step's calls, cache hits, cost, ...
        "time/step_s": seconds,
        **sampled.times,
        "time/update_s": seconds - sampled.times["time/sample_s"] - sampled.times["time/judge_wait_s"]
                         - sampled.times.get("time/before_judgments_s", 0.0),
        "time/tokens_per_s": tokens / max(sampled.times["time/sample_s"], 1e-9),
        "time/completions_per_s": parallel.sum(rollout.size) / seconds,
        "updated": bool(losses),
    }
    row = with_trl_names(row, drop_old=True)
    if parallel.world_size > 1:
        accepted = judged.rewards[judged.accepted]
        count = parallel.sum(float(len(accepted)))
        row["reward"] = parallel.sum(float(accepted.sum())) / count if count else math.nan
        for key in [k for k in row if k.startswith("rewards/") and k.endswith("/mean")]:
            row[key] = row["reward"]  # one judge: its mean is the reward, over every process's batch
        row["parallel/processes"] = parallel.world_size
    return row


def add_totals(row: dict[str, Any], totals: dict[str, float], rollout: Rollout, step: int, scheduler,
                settings: LoopSettings, prompt_count: int, parallel: DataParallel) -> None:
    """The running figures TRL logs: tokens seen since the run began, learning rate, epoch."""
    tokens = float(rollout.completion_mask.sum())
    totals["num_tokens"] += parallel.sum(tokens + prompt_tokens(rollout.context, rollout.group))
    row["learning_rate"] = scheduler.get_last_lr()[0]
    row["num_tokens"] = totals["num_tokens"]
    row["epoch"] = (step + 1) * min(settings.prompts_per_step, prompt_count) / prompt_count


def rollout_samples(rollout: Rollout, judged: JudgedRollout, prompts: int = 1, per_prompt: int = 2) -> list[dict[str, Any]]:
    """A few completions of the rollout's first prompt(s) with their rewards, for samples.jsonl."""
    out = []
    for g in range(min(prompts, len(rollout.prompts))):
        rows = (rollout.group == g).nonzero().flatten().tolist()[:per_prompt]
        for i in rows:
            accepted = bool(judged.accepted[i])
            out.append({"prompt": rollout.prompts[g], "completion": rollout.completions[i],
                        "reward": float(judged.rewards[i]) if accepted else None,
                        "length": int(rollout.lengths[i])})
    return out
