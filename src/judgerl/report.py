"""The before/after report, built from a run folder alone (so it also works after a crash).

Writes report.md and plots/*.png into the run folder and returns a short terminal summary.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from judgerl.training.run_folder import RunFolder


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _moving_average(values: list[float], window: int) -> list[float]:
    out, acc = [], []
    for value in values:
        acc.append(value)
        if len(acc) > window:
            acc.pop(0)
        finite = [v for v in acc if v is not None and not math.isnan(v)]
        out.append(sum(finite) / len(finite) if finite else math.nan)
    return out


def _plots(run: RunFolder, metrics: list[dict], before: dict | None, after: dict | None) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots_dir = run.path / "plots"
    plots_dir.mkdir(exist_ok=True)
    made: list[tuple[str, str]] = []

    rl_rows = [row for row in metrics if row.get("stage") == "rl"]
    if rl_rows:
        steps = [row["step"] for row in rl_rows]
        rewards = [row.get("reward/mean") if row.get("reward/mean") is not None else math.nan for row in rl_rows]
        accept = [row.get("judge/accept_rate", math.nan) for row in rl_rows]
        fig, ax = plt.subplots(figsize=(7, 3.6))
        ax.plot(steps, rewards, color="#9ab", lw=1, label="reward (batch mean)")
        ax.plot(steps, _moving_average(rewards, 10), color="#1f5fa0", lw=2, label="reward (10-step average)")
        ax.set_xlabel("RL step")
        ax.set_ylabel("judge reward")
        ax.set_ylim(0, 1)
        ax2 = ax.twinx()
        ax2.plot(steps, accept, color="#d08020", lw=1, ls="--", label="judge accept rate")
        ax2.set_ylabel("accept rate")
        ax2.set_ylim(0, 1.05)
        lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        ax.legend(lines, [line.get_label() for line in lines], loc="lower right", fontsize=8)
        ax.set_title("Judge reward over RL steps")
        fig.tight_layout()
        fig.savefig(plots_dir / "reward_curve.png", dpi=110)
        plt.close(fig)
        made.append(("Reward over RL steps", "plots/reward_curve.png"))

    if before and after and "greedy_share" in before:
        labels = list(before["greedy_share"])
        x = range(len(labels))
        width = 0.27
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        ax = axes[0]
        ax.bar([i - width for i in x], [before["greedy_share"][l] for l in labels], width, label="after SFT", color="#9ab")
        ax.bar(list(x), [after["greedy_share"][l] for l in labels], width, label="after RL", color="#1f5fa0")
        ax.bar([i + width for i in x], [before["judge_preferred_share"][l] for l in labels], width,
               label="judge's preferred", color="#d08020")
        ax.set_xticks(list(x), labels)
        ax.set_ylim(0, 1)
        ax.set_title("Held-out answers (share of questions)")
        ax.legend(fontsize=8)
        ax = axes[1]
        seed_before = before["seed_question"]["probabilities"]
        seed_after = after["seed_question"]["probabilities"]
        ax.bar([i - width / 2 for i in x], [seed_before[l] for l in labels], width, label="after SFT", color="#9ab")
        ax.bar([i + width / 2 for i in x], [seed_after[l] for l in labels], width, label="after RL", color="#1f5fa0")
        ax.set_xticks(list(x), labels)
        ax.set_ylim(0, 1)
        ax.set_title(f"\"{before['seed_question']['question']}\"")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(plots_dir / "before_after.png", dpi=110)
        plt.close(fig)
        made.append(("Answers before and after RL", "plots/before_after.png"))
    return made


def _cell(text: str | None, limit: int = 160) -> str:
    text = "" if text is None else " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _samples_section(before: dict, after: dict | None, shown: int = 12) -> list[str]:
    """A language model's held-out answers before and after RL, same prompts, same sampling seed."""
    rows = [
        "## Held-out prompts: the same prompts answered before and after RL",
        "",
        f"{len(before['samples'])} prompts, one sample each with the same seed before and after; "
        "the judge's reward in brackets (n/a: unscored or not confident).",
        "",
        "| | before RL | after RL |",
        "|---|---|---|",
        f"| mean judge reward | {_num(before['mean_reward'])} | {_num(after['mean_reward']) if after else 'n/a'} |",
        f"| mean length (tokens) | {before['mean_length_tokens']:.1f} | "
        f"{after['mean_length_tokens']:.1f} |" if after else f"| mean length (tokens) | {before['mean_length_tokens']:.1f} | n/a |",
        "",
        "| prompt | before RL | after RL |",
        "|---|---|---|",
    ]
    after_samples = after["samples"] if after else [None] * len(before["samples"])
    for old, new in list(zip(before["samples"], after_samples))[:shown]:
        def show(sample):
            return "n/a" if sample is None else f"{_cell(sample['completion'])} [{_num(sample['reward'], 2)}]"
        rows.append(f"| {_cell(old['prompt'], 80)} | {show(old)} | {show(new)} |")
    rows.append("")
    return rows


def write_report(run_dir: str | Path) -> str:
    """Write report.md (+ plots) into the run folder; return a terminal summary."""
    run = RunFolder(Path(run_dir))
    if not run.path.is_dir():
        raise FileNotFoundError(f"{run.path} is not a run folder")
    status = run.status()
    config_path = run.path / "config.yaml"
    config: dict[str, Any] = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
    metrics = run.read_metrics()
    before, after = run.read_json("eval_before.json"), run.read_json("eval_after.json")
    plots = _plots(run, metrics, before, after)

    judge = config.get("judge", {})
    rl = config.get("rl", {})
    lines = [
        f"# judgerl run report: {run.path.name}",
        "",
        f"**Status: {status.get('status', 'unknown')}**"
        + (f" — {status['message']}" if status.get("message") else ""),
        "",
        f"- judge: `{judge.get('provider')}/{judge.get('model')}`, rubric `{judge.get('rubric')}`, "
        f"method `{judge.get('method')}`, confidence threshold {judge.get('confidence_threshold')}",
        f"- RL: `{rl.get('algorithm')}`, {rl.get('steps')} steps of {rl.get('batch_size')} questions",
    ]
    rl_rows = [row for row in metrics if row.get("stage") == "rl"]
    if rl_rows:
        accept = [row["judge/accept_rate"] for row in rl_rows if row.get("judge/accept_rate") is not None]
        skipped = sum(not row.get("updated", True) for row in rl_rows)
        lines.append(
            f"- RL steps run: {len(rl_rows)}; judge accept rate {_pct(sum(accept) / len(accept))} "
            f"(rejected judgments are masked out of the update, not rewarded low); "
            f"steps with nothing accepted (no update): {skipped}"
        )
    counters = status.get("judge_counters")
    if counters:
        lines.append(
            f"- judge calls made: {counters.get('calls', 0)}, answered from the cache: {counters.get('cache_hits', 0)}, "
            f"time in judge calls: {counters.get('call_seconds', 0.0):.1f} s"
        )
    lines.append("")

    if before and "samples" in before:
        lines += _samples_section(before, after)
    elif before:
        columns = [("after SFT", before)] + ([("after RL", after)] if after else [])
        lines += [
            "## Held-out questions",
            "",
            f"{before['questions']} held-out questions; the judge scored {before['judge_scored']} "
            f"and was confident on {before['judge_confident']}.",
            "",
            "| | " + " | ".join(name for name, _ in columns) + " |",
            "|---|" + "---|" * len(columns),
            "| agreement with the judge's preferred label | " + " | ".join(_pct(c["agreement"]) for _, c in columns) + " |",
            "| agreement, judge-confident questions only | " + " | ".join(_pct(c["agreement_confident"]) for _, c in columns) + " |",
            "| mean judge reward (expected over the policy's answers) | " + " | ".join(_num(c["mean_judge_reward"]) for _, c in columns) + " |",
        ]
        for label in before["greedy_share"]:
            lines.append(
                f"| answers {label} (greedy share / mean probability) | "
                + " | ".join(f"{_pct(c['greedy_share'][label])} / {c['mean_probability'][label]:.2f}" for _, c in columns)
                + " |"
            )
        lines += [
            "",
            "The judge's preferred labels on these questions: "
            + ", ".join(f"{label} {_pct(share)}" for label, share in before["judge_preferred_share"].items()),
            "",
            f"## The seed question: \"{before['seed_question']['question']}\"",
            "",
            "| | " + " | ".join(f"logit {l}" for l in before["seed_question"]["logits"])
            + " | " + " | ".join(f"P({l})" for l in before["seed_question"]["probabilities"]) + " |",
            "|---|" + "---|" * (2 * len(before["seed_question"]["logits"])),
        ]
        for name, column in columns:
            seed = column["seed_question"]
            lines.append(
                f"| {name} | " + " | ".join(f"{v:+.2f}" for v in seed["logits"].values())
                + " | " + " | ".join(f"{v:.2f}" for v in seed["probabilities"].values()) + " |"
            )
        lines.append("")
    for title, path in plots:
        lines += [f"## {title}", "", f"![{title}]({path})", ""]
    (run.path / "report.md").write_text("\n".join(lines))

    summary = [f"run folder: {run.path}", f"status: {status.get('status', 'unknown')}"
               + (f" ({status['message']})" if status.get("message") else "")]
    if before and "samples" in before:
        summary.append(f"mean judge reward on held-out prompts: {_num(before['mean_reward'])} before RL"
                       + (f" -> {_num(after['mean_reward'])} after RL" if after else ""))
    elif before:
        summary.append(
            f"held-out agreement with the judge: {_pct(before['agreement'])} after SFT"
            + (f" -> {_pct(after['agreement'])} after RL" if after else "")
        )
        summary.append(
            f"mean judge reward: {_num(before['mean_judge_reward'])} after SFT"
            + (f" -> {_num(after['mean_judge_reward'])} after RL" if after else "")
        )
        for name, column in [("after SFT", before)] + ([("after RL", after)] if after else []):
            probs = column["seed_question"]["probabilities"]
            summary.append(
                f"\"{column['seed_question']['question']}\" {name}: "
                + ", ".join(f"{label} {p:.2f}" for label, p in probs.items())
            )
    if rl_rows:
        accept = [row["judge/accept_rate"] for row in rl_rows if row.get("judge/accept_rate") is not None]
        summary.append(f"judge accept rate during RL: {_pct(sum(accept) / len(accept))}")
    summary.append(f"report: {run.path / 'report.md'}")
    return "\n".join(summary)
