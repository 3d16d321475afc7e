"""Both sides of benchmarks/rm_vs_judge/run.sh, side by side (issue 11, "Measured", third bullet).

    .venv/bin/python benchmarks/rm_vs_judge/summarise.py OUT [RM_DIR]

Reads OUT's two `judgerl train` run folders (smollm2-friendly__*: trained against the 1.5B judge;
rm-side__*: against the reward model distilled from it), scores both runs' held-out answers
(eval_before.json / eval_after.json: the same 12 prompts, the same sampling seed) with the LLM
judge of the example (the same judge section, a judgment cache of its own in OUT), and prints the
held-out judge reward and wall times of each side. A held-out answer the judge leaves unscored is
left out of the mean and counted, never read as 0. The goal: the RM side's held-out judge reward
>= 95% of the judge side's, in <= 1/3 of its wall time. RM_DIR: another RM side (its own pairs.jsonl,
rm__* and rm-side__* runs and timings.jsonl with label, train_rm, rm_train), compared with OUT's
judge side.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def run_folder(out: Path, prefix: str) -> Path:
    found = sorted(path for path in out.glob(f"{prefix}__*") if (path / "status.json").is_file())
    if not found:
        raise SystemExit(f"error: no {prefix}__* run folder in {out}")
    return found[-1]


def judge_scores(judge, samples: list[dict]) -> tuple[float | None, int, int]:
    """(mean LLM-judge reward over the scored answers, scored, unscored)."""
    from judgerl.rewards import judge_completions

    prompts = [sample["prompt"] for sample in samples]
    judgments = judge_completions(judge, prompts, list(range(len(prompts))), [s["completion"] for s in samples])
    scored = [j.reward for j in judgments if j.scored and j.reward is not None]
    return (sum(scored) / len(scored) if scored else None), len(scored), len(judgments) - len(scored)


def main(out: Path, rm_dir: Path) -> None:
    from judgerl.build import build_judge
    from judgerl.config import load_config

    config = load_config(out / "judge_side.yaml", {"judge.cache_path": str(out / "cache_summary.sqlite")})
    judge = build_judge(config.judge)  # the example's judge: the 1.5B model, its rubric and defences
    times = {row["phase"]: row for row in map(json.loads, (out / "timings.jsonl").read_text().splitlines())}
    if rm_dir != out:  # the RM side's phases from its own folder
        times.update({row["phase"]: row for row in map(json.loads, (rm_dir / "timings.jsonl").read_text().splitlines())})
    sides = {"judge": run_folder(out, "smollm2-friendly"), "rm": run_folder(rm_dir, "rm-side")}
    results = {}
    for side, folder in sides.items():
        for stage in ("before", "after"):
            data = json.loads((folder / f"eval_{stage}.json").read_text())
            results[side, stage] = judge_scores(judge, data["samples"])
            results[side, stage + "_own"] = data.get("mean_reward")
    judge_time = times["judge_train"]["seconds"]
    rm_rl = times["rm_train"]["seconds"]
    rm_all = rm_rl + times["label"]["seconds"] + times["train_rm"]["seconds"]
    pairs = sum(1 for _ in (rm_dir / "pairs.jsonl").open())

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    print(f"run folders: {sides['judge'].name} (judge side), {sides['rm'].name} (RM side); {pairs} labelled pairs")
    for rm_run in sorted(rm_dir.glob("rm__*")):
        epochs = [json.loads(line) for line in (rm_run / "metrics.jsonl").read_text().splitlines()]
        print(f"reward model {rm_run.name}: held-out agreement with the judge's pairs by epoch: "
              + ", ".join(f"{row['epoch']}: {row['eval/accuracy']:.3f}" for row in epochs if "eval/accuracy" in row))
    print("held-out reward as the LLM judge scores it (12 prompts; scored/unscored):")
    for side in ("judge", "rm"):
        (b, bs, bu), (a, as_, au) = results[side, "before"], results[side, "after"]
        print(f"  {side:5s} before RL {fmt(b)} ({bs}/{bu})  after RL {fmt(a)} ({as_}/{au})  "
              f"[training judge's own held-out reward after: {fmt(results[side, 'after_own'])}]")
    judge_after, rm_after = results["judge", "after"][0], results["rm", "after"][0]
    if judge_after and rm_after is not None:
        print(f"  RM side / judge side, after RL: {rm_after / judge_after:.1%} (goal >= 95%)")
    print("wall time (s):")
    print(f"  judge side: judgerl train {judge_time:.0f}")
    print(f"  RM side:    judgerl train {rm_rl:.0f} ({rm_rl / judge_time:.2f}x the judge side); with label "
          f"{times['label']['seconds']:.0f} + train-rm {times['train_rm']['seconds']:.0f}: {rm_all:.0f} "
          f"({rm_all / judge_time:.2f}x; goal <= 0.33x)")
    for side, folder in sides.items():
        steps = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        loop = sum(row.get("time/step_s") or 0.0 for row in steps if row.get("stage") == "rl")
        judging = sum(row.get("time/judge_s") or 0.0 for row in steps if row.get("stage") == "rl")
        print(f"  {side} side's RL steps alone: {loop:.0f} s ({judging:.0f} s of it judging, "
              f"{sum(1 for row in steps if row.get('stage') == 'rl')} steps)")
    print("load average at the end of each phase: " + ", ".join(f"{name} {row['loadavg']}" for name, row in times.items()))
    monitor = [json.loads(line) for line in (sides["rm"] / "metrics.jsonl").read_text().splitlines()]
    audits = [row for row in monitor if "monitor/audit_reward" in row or "monitor/audit_scored" in row]
    print("RM side, the LLM judge's audit of training samples (step: RM reward, LLM judge reward, gap, rank agreement):")
    for row in audits:
        print(f"  step {row.get('step')}: RM {fmt(row.get('monitor/train_reward'))}  LLM judge "
              f"{fmt(row.get('monitor/audit_reward'))}  gap {fmt(row.get('monitor/judge_gap'))}  rank agreement "
              f"{fmt(row.get('monitor/rank_agreement'))}  (compared {row.get('monitor/compared')}, audit unscored "
              f"{row.get('monitor/audit_unscored')})")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit("usage: summarise.py OUT [RM_DIR] (OUT: the folder run.sh wrote)")
    main(Path(sys.argv[1]), Path(sys.argv[-1]))
