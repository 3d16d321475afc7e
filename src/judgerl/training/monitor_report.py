"""The reward-hacking monitor's part of the report (monitor.py): a plot of the monitored signals
and of the training judge's vs the audit judge's reward per check, and the warnings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from judgerl.training.monitor_text import _finite


TEXT_SIGNALS = (("monitor/opening_share", "same opening"), ("monitor/emoji_share", "emojis"),
                ("monitor/exclamation_share", "exclamation marks"), ("monitor/format_share", "markdown"),
                ("monitor/repetition", "repeated 3-grams"))


def report_lines(rl_rows: Sequence[dict[str, Any]], plt: Any, plots_dir: Path, shown: int = 20) -> list[str]:
    """The monitor's part of report.md, from the monitor/* keys of metrics.jsonl: a plot of the
    signals and of the training vs audit judge's reward per check (plots_dir/monitor.png), and
    the warnings. [] for a run the monitor did not watch."""
    checks = [row for row in rl_rows if "monitor/warnings" in row]
    if not checks:
        return refresh_lines(rl_rows)
    steps = [row["step"] for row in checks]
    warned = [row for row in checks if row.get("monitor/warnings")]

    def series(key: str) -> list[float]:
        return [v if (v := _finite(row.get(key))) is not None else math.nan for row in checks]

    audited = any(_finite(row.get("monitor/audit_reward")) is not None for row in checks)
    fig, axes = plt.subplots(1, 3 if audited else 2, figsize=(14 if audited else 10, 3.6))
    for key, label in TEXT_SIGNALS:
        axes[0].plot(steps, series(key), marker="o", ms=3, lw=1.2, label=label)
    axes[0].set_ylim(-0.05, 1.05)
    axes[0].set_title("Share of completions (repeated: of 3-grams)")
    for key, label in (("monitor/length_ratio", "length / baseline"), ("monitor/entropy_ratio", "entropy / first"),
                       ("monitor/kl", "KL (per token)")):
        axes[1].plot(steps, series(key), marker="o", ms=3, lw=1.2, label=label)
    axes[1].set_title("Length, entropy, KL")
    if audited:
        axes[2].plot(steps, series("monitor/train_reward"), marker="o", ms=3, color="#1f5fa0", label="training judge")
        axes[2].plot(steps, series("monitor/audit_reward"), marker="o", ms=3, color="#d08020", label="audit judge")
        axes[2].set_title("Mean reward on the same completions")
    for ax in axes:
        for row in warned:
            ax.axvline(row["step"], color="#c03030", alpha=0.25, lw=3)
        ax.set_xlabel("RL step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    plots_dir.mkdir(exist_ok=True)
    fig.savefig(plots_dir / "monitor.png", dpi=110)
    plt.close(fig)
    lines = ["## Reward-hacking monitor", "",
             f"{len(checks)} checks (steps {steps[0]}-{steps[-1]}), compared with the completions of step {steps[0]}; "
             f"{len(warned)} with warnings" + (" (red bands)." if warned else "."), ""]
    texts = [text for row in warned for text in str(row.get("monitor/warning_text", "")).split(" | ") if text]
    lines += [f"- {text}" for text in texts[:shown]]
    if len(texts) > shown:
        lines.append(f"- ... and {len(texts) - shown} more (metrics.jsonl, monitor/warning_text)")
    lines += ([] if texts else ["No warnings."]) + ["", "![Reward-hacking monitor](plots/monitor.png)", ""]
    return lines + audit_lines(checks) + refresh_lines(rl_rows)


def _cell(value: Any, digits: int = 3) -> str:
    number = _finite(value)
    return "n/a" if number is None else f"{number:.{digits}f}"


def audit_lines(checks: Sequence[dict[str, Any]]) -> list[str]:
    """The audit judge against the training judge on the same completions, per check (a reward
    model against the LLM judge it was distilled from: their gap and whether they rank alike)."""
    audited = [row for row in checks if "monitor/audit_scored" in row]
    if not audited:
        return []
    lines = ["### Training judge vs audit judge, on the same completions", "",
             "rank agreement: Spearman's rho of the two judges' rewards; pairs: share of completion pairs both "
             "judges order alike; n/a: too few completions both scored, or one judge gave all the same.", "",
             "| step | training judge | audit judge | gap | rank agreement | pairs | compared | audit unscored |",
             "|---|---|---|---|---|---|---|---|"]
    for row in audited:
        lines.append(f"| {row['step']} | {_cell(row.get('monitor/train_reward'))} | {_cell(row.get('monitor/audit_reward'))} "
                     f"| {_cell(row.get('monitor/judge_gap'))} | {_cell(row.get('monitor/rank_agreement'), 2)} "
                     f"| {_cell(row.get('monitor/pair_agreement'), 2)} | {_cell(row.get('monitor/compared'), 0)} "
                     f"| {_cell(row.get('monitor/audit_unscored'), 0)} |")
    return lines + [""]


def refresh_lines(rl_rows: Sequence[dict[str, Any]]) -> list[str]:
    """The reward-model refreshes (training/rm_refresh.py): fresh pairs and held-out accuracy."""
    refreshes = [row for row in rl_rows if "rm_refresh/skipped" in row]
    if not refreshes:
        return []
    lines = ["## Reward-model refreshes (iterated RLAIF)", "",
             "After each of these steps the LLM judge labelled the step's completions and the reward model trained "
             "further on old + fresh pairs; accuracy on every held-out fresh pair so far, before and after.", "",
             "| after step | fresh pairs | held out | trained on | accuracy before | accuracy after | unscored | skipped |",
             "|---|---|---|---|---|---|---|---|"]
    for row in refreshes:
        lines.append(f"| {row['step'] + 1} | {_cell(row.get('rm_refresh/pairs_added'), 0)} "
                     f"| {_cell(row.get('rm_refresh/held_out'), 0)} | {_cell(row.get('rm_refresh/pairs_total'), 0)} "
                     f"| {_cell(row.get('rm_refresh/accuracy_before'))} | {_cell(row.get('rm_refresh/accuracy_after'))} "
                     f"| {_cell(row.get('rm_refresh/unscored'), 0)} | {'yes' if row.get('rm_refresh/skipped') else 'no'} |")
    return lines + [""]
