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


def _series(rows: list[dict], key: str) -> list[float]:
    return [math.nan if row.get(key) is None else float(row[key]) for row in rows]


def _training_curves(plt: Any, rl_rows: list[dict], path: Path) -> bool:
    """One figure, four panels over RL steps: reward (with reward_std), KL to the reference,
    entropy, completion length (mean, min-max band). A panel whose metric the run did not log
    says so (e.g. no KL without a KL coefficient)."""
    steps = [row["step"] for row in rl_rows]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True)
    panels = [
        (axes[0][0], "reward", "reward (accepted judgments)", "#1f5fa0"),
        (axes[0][1], "kl", "KL to the reference", "#a0301f"),
        (axes[1][0], "entropy", "entropy (nats per token)", "#2f8f3f"),
        (axes[1][1], "completions/mean_length", "completion length (tokens)", "#d08020"),
    ]
    drawn = 0
    for ax, key, title, colour in panels:
        values = _series(rl_rows, key)
        ax.set_title(title, fontsize=10)
        if all(math.isnan(v) for v in values):
            ax.text(0.5, 0.5, f"{key}: not logged by this run", ha="center", va="center", transform=ax.transAxes,
                    fontsize=9, color="#777")
            continue
        drawn += 1
        ax.plot(steps, values, color=colour, lw=1.2)
        if len(values) >= 10:
            ax.plot(steps, _moving_average(values, 10), color="black", lw=1, alpha=0.6, label="10-step average")
            ax.legend(fontsize=7)
        if key == "completions/mean_length":
            low, high = _series(rl_rows, "completions/min_length"), _series(rl_rows, "completions/max_length")
            if not all(math.isnan(v) for v in low + high):
                ax.fill_between(steps, low, high, color=colour, alpha=0.15, lw=0)
    for ax in axes[1]:
        ax.set_xlabel("RL step")
    fig.tight_layout()
    if drawn:
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return bool(drawn)


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
        rewards = _series(rl_rows, "reward")
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
        if _training_curves(plt, rl_rows, plots_dir / "training_curves.png"):
            made.append(("Reward, KL, entropy and completion length over RL steps", "plots/training_curves.png"))

    sft_rows = [row for row in metrics if row.get("stage") == "sft" and row.get("loss") is not None]
    if sft_rows:
        fig, ax = plt.subplots(figsize=(7, 3))
        x = [row["epoch"] if "step" not in row else row["step"] for row in sft_rows]
        ax.plot(x, _series(sft_rows, "loss"), color="#1f5fa0", lw=1.5)
        ax.set_xlabel("SFT step" if "step" in sft_rows[0] else "SFT epoch")
        ax.set_ylabel("loss")
        ax.set_title("Supervised fine-tuning loss")
        fig.tight_layout()
        fig.savefig(plots_dir / "sft_loss.png", dpi=110)
        plt.close(fig)
        made.append(("SFT loss", "plots/sft_loss.png"))

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


def _training_samples_section(samples: list[dict], shown_steps: int = 8) -> list[str]:
    """Completions sampled during RL (samples.jsonl), at a few steps spread over the run."""
    steps = sorted({row["step"] for row in samples if row.get("step") is not None})
    if not steps:
        return []
    if len(steps) > shown_steps:
        steps = [steps[round(i * (len(steps) - 1) / (shown_steps - 1))] for i in range(shown_steps)]
    lines = ["## Completions during RL", "",
             "A few completions of each logged step's first prompt, as sampled for training, with the judge's reward "
             "(n/a: not accepted).", "", "| step | prompt | completion | reward |", "|---|---|---|---|"]
    for step in steps:
        for row in [r for r in samples if r.get("step") == step]:
            lines.append(f"| {step} | {_cell(row.get('prompt'), 60)} | {_cell(row.get('completion'))} | "
                         f"{_num(row.get('reward'), 2)} |")
    return lines + [""]


def _trend(rows: list[dict], key: str) -> str | None:
    """"a -> b (first/last k steps)": the mean of `key` over the first and the last k logged steps."""
    values = [v for v in _series(rows, key) if not math.isnan(v)]
    if not values:
        return None
    k = max(1, min(10, len(values) // 2))
    first, last = sum(values[:k]) / k, sum(values[-k:]) / k
    return f"{_num(first)} -> {_num(last)} (first/last {k} steps)"


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
        trends = [f"{label} {trend}" for label, key in (("reward", "reward"), ("KL", "kl"), ("entropy", "entropy"),
                                                        ("completion length", "completions/mean_length"))
                  if (trend := _trend(rl_rows, key)) is not None]
        if trends:
            lines.append("- over RL (mean of the first steps -> of the last): " + "; ".join(trends))
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
    lines += _training_samples_section(run.read_samples())
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
        if (trend := _trend(rl_rows, "reward")) is not None:
            summary.append(f"judge reward during RL: {trend}")
    summary.append(f"report: {run.path / 'report.md'}")
    return "\n".join(summary)
