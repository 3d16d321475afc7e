"""The before/after report, built from a run folder alone (so it also works after a crash).

Writes report.md and plots/*.png into the run folder and returns a short terminal summary. This
module writes what every run has (status; judge and RL lines; reward, KL, entropy, length and SFT
loss plots; completions during RL; the judge's counters); the run's task writes its own section
(`judgerl.tasks.Task.report_section`: the held-out evaluation before and after RL), built from the
folder's config.yaml.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from judgerl.tasks import ReportSection, build_task
from judgerl.training.run_folder import RunFolder


def pyplot() -> Any:
    """matplotlib's pyplot, drawing to files (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def num(value: float | None, digits: int = 3) -> str:
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


def _reward_curve(plt: Any, rl_rows: list[dict], path: Path) -> None:
    """The batch-mean reward, its 10-step average and the judge's accept rate over RL steps."""
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
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sft_loss(plt: Any, sft_rows: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3))
    x = [row["epoch"] if "step" not in row else row["step"] for row in sft_rows]
    ax.plot(x, _series(sft_rows, "loss"), color="#1f5fa0", lw=1.5)
    ax.set_xlabel("SFT step" if "step" in sft_rows[0] else "SFT epoch")
    ax.set_ylabel("loss")
    ax.set_title("Supervised fine-tuning loss")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plots(run: RunFolder, metrics: list[dict]) -> list[tuple[str, str]]:
    """The plots every run has, from metrics.jsonl: (title, path inside the run folder)."""
    plt = pyplot()
    (run.path / "plots").mkdir(exist_ok=True)
    made: list[tuple[str, str]] = []
    rl_rows = [row for row in metrics if row.get("stage") == "rl"]
    if rl_rows:
        _reward_curve(plt, rl_rows, run.path / "plots/reward_curve.png")
        made.append(("Reward over RL steps", "plots/reward_curve.png"))
        if _training_curves(plt, rl_rows, run.path / "plots/training_curves.png"):
            made.append(("Reward, KL, entropy and completion length over RL steps", "plots/training_curves.png"))
    sft_rows = [row for row in metrics if row.get("stage") == "sft" and row.get("loss") is not None]
    if sft_rows:
        _sft_loss(plt, sft_rows, run.path / "plots/sft_loss.png")
        made.append(("SFT loss", "plots/sft_loss.png"))
    return made


def cell(text: str | None, limit: int = 160) -> str:
    text = "" if text is None else " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")


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
            lines.append(f"| {step} | {cell(row.get('prompt'), 60)} | {cell(row.get('completion'))} | "
                         f"{num(row.get('reward'), 2)} |")
    return lines + [""]


def _trend(rows: list[dict], key: str) -> str | None:
    """"a -> b (first/last k steps)": the mean of `key` over the first and the last k logged steps."""
    values = [v for v in _series(rows, key) if not math.isnan(v)]
    if not values:
        return None
    k = max(1, min(10, len(values) // 2))
    first, last = sum(values[:k]) / k, sum(values[-k:]) / k
    return f"{num(first)} -> {num(last)} (first/last {k} steps)"


def _header(run: RunFolder, status: dict, config: dict, rl_rows: list[dict]) -> list[str]:
    """Status, the judge and RL in a line each, how RL went, the judge's counters."""
    judge, rl = config.get("judge", {}), config.get("rl", {})
    lines = [
        f"# judgerl run report: {run.path.name}",
        "",
        f"**Status: {status.get('status', 'unknown')}**" + (f" — {status['message']}" if status.get("message") else ""),
        "",
        f"- judge: `{judge.get('provider')}/{judge.get('model')}`, rubric `{judge.get('rubric')}`, "
        f"method `{judge.get('method')}`, confidence threshold {judge.get('confidence_threshold')}",
        f"- RL: `{rl.get('algorithm')}`, {rl.get('steps')} steps of {rl.get('batch_size')} questions",
    ]
    if rl_rows:
        skipped = sum(not row.get("updated", True) for row in rl_rows)
        lines.append(
            f"- RL steps run: {len(rl_rows)}; judge accept rate {pct(_accept_rate(rl_rows))} "
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
    return lines + [""]


def _accept_rate(rl_rows: list[dict]) -> float | None:
    accept = [row["judge/accept_rate"] for row in rl_rows if row.get("judge/accept_rate") is not None]
    return sum(accept) / len(accept) if accept else None


def _task_section(run: RunFolder, config: dict) -> ReportSection:
    """The section of the run's task (config.yaml's task, or the one of its policy.kind). A folder
    whose task cannot be built (a plugin no longer installed, ...) gets a report without it, saying why."""
    from judgerl.config import config_from_dict

    try:
        task = build_task(config_from_dict(config, source=str(run.path / "config.yaml"), check_files=False))
    except Exception as exc:  # the rest of the report is still worth writing
        why = f"the task's section of the report could not be written: {type(exc).__name__}: {exc}"
        return ReportSection(lines=[f"_{why}_", ""], summary=[why])
    return task.report_section(run)


def write_report(run_dir: str | Path) -> str:
    """Write report.md (+ plots) into the run folder; return a terminal summary."""
    run = RunFolder(Path(run_dir))
    if not run.path.is_dir():
        raise FileNotFoundError(f"{run.path} is not a run folder")
    status = run.status()
    config_path = run.path / "config.yaml"
    config: dict[str, Any] = (yaml.safe_load(config_path.read_text()) if config_path.is_file() else None) or {}
    metrics = run.read_metrics()
    rl_rows = [row for row in metrics if row.get("stage") == "rl"]
    section = _task_section(run, config)
    lines = _header(run, status, config, rl_rows) + section.lines + _training_samples_section(run.read_samples())
    for title, path in _plots(run, metrics) + section.plots:
        lines += [f"## {title}", "", f"![{title}]({path})", ""]
    from judgerl.training.monitor import report_lines as monitor_lines

    lines += monitor_lines(rl_rows, pyplot(), run.path / "plots")
    (run.path / "report.md").write_text("\n".join(lines))

    summary = [f"run folder: {run.path}", f"status: {status.get('status', 'unknown')}"
               + (f" ({status['message']})" if status.get("message") else ""), *section.summary]
    if rl_rows:
        summary.append(f"judge accept rate during RL: {pct(_accept_rate(rl_rows))}")
        if (trend := _trend(rl_rows, "reward")) is not None:
            summary.append(f"judge reward during RL: {trend}")
    summary.append(f"report: {run.path / 'report.md'}")
    return "\n".join(summary)
