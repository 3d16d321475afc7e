"""An audit's files: audit.json (every figure and every pair's outcome) and audit.md (tables), with a
reliability diagram and a length-bias plot as PNG when matplotlib is installed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from judgerl.audit.run import AuditResult


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _num(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _write(path: Path, text: str) -> None:
    """Written whole or not at all: a .partial file renamed."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_report(result: "AuditResult", folder: Path) -> list[str]:
    """Write audit.json, audit.md and the plots into `folder` (made if missing); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "audit.json", json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    plots = _plots(result, folder)
    _write(folder / "audit.md", markdown(result, [Path(p).name for p in plots]))
    return [str(folder / "audit.json"), str(folder / "audit.md"), *plots]


def _cell(text: str) -> str:
    """Text for a Markdown table cell (a user's kind may hold a pipe)."""
    return text.replace("|", "\\|")


def _accuracy_table(figures: dict[str, Any]) -> list[str]:
    lines = ["| kind | pairs | right | wrong | ties | unscored | accuracy |", "|---|---|---|---|---|---|---|"]
    accuracy = figures["accuracy"]
    for kind, row in [*accuracy["by_kind"].items(), ("**overall**", accuracy["overall"])]:
        lines.append(f"| {_cell(kind)} | {row['pairs']} | {row['correct']} | {row['wrong']} | {row['ties']} | "
                     f"{row['unscored']} | {_pct(row['accuracy'])} |")
    return lines


def _bias_lines(figures: dict[str, Any], mode: str) -> list[str]:
    length, decoration = figures["length_bias"], figures["decoration_bias"]
    if mode == "pairwise":
        return [f"- Length: preference for the padded answer over the same answer unpadded "
                f"{_num(length['preference'], 2)} (+1 always, -1 never; by sentences added: "
                f"{', '.join(f'{k}: {_num(v, 2)}' for k, v in length['by_level'].items())})",
                f"- Decoration: preference for the decorated answer {_num(decoration['preference'], 2)}, "
                f"won {_pct(decoration['changed_won_share'])} of {decoration['pairs']}"]
    return [f"- Length: reward per 100 characters of neutral padding {_num(length['slope_per_100_chars'])}, "
            f"correlation {_num(length['correlation'], 2)} ({length['items']} answers; mean reward by sentences "
            f"added: {', '.join(f'{k}: {_num(v)}' for k, v in length['by_level'].items())})",
            f"- Decoration (emojis, \"Absolutely!\", exclamation marks): mean reward change "
            f"{_num(decoration['mean_change'])}, scored higher in {_pct(decoration['higher_share'])} of "
            f"{decoration['pairs']}"]


def _other_lines(figures: dict[str, Any]) -> list[str]:
    lines = []
    if figures.get("position"):
        p = figures["position"]
        lines.append(f"- Position (the judge's verdicts, pair shown in both orders): consistency "
                     f"{_pct(p['position_consistency'])}, first-position rate {_pct(p['first_position_rate'])}, "
                     f"flip rate under order swap {_pct(p['flip_rate'])}")
        if p.get("model"):
            m = p["model"]
            lines.append(f"- Position (the model's reading in each order, before the judge combines them): "
                         f"consistency {_pct(m['position_consistency'])}, first-position rate "
                         f"{_pct(m['first_position_rate'])}, flip rate {_pct(m['flip_rate'])}")
    keys = figures.get("master_key")
    if keys:
        lines.append(f"- Master keys accepted: {_pct(keys['rate'])} ({keys['false_accepts']} of {keys['pairs']}; "
                     f"{keys['unscored']} unscored)")
    stability = figures.get("stability")
    lines.append("- Stability under paraphrased rubrics: " + ("n/a (no rubric to paraphrase)" if not stability else
                 f"{_pct(stability['share'])} of {stability['items']} pairs unchanged under {stability['paraphrases']}"
                 " paraphrases"))
    scale = figures.get("scale_use")
    if scale:
        lines.append(f"- Scale use: {_pct(scale['share'])} of the values ({', '.join(f'{v:g}' for v in scale['used'])}"
                     f" of {len(scale['values'])}, read from {scale['read_from']})")
    calibration = figures.get("calibration")
    if calibration:
        lines.append(f"- Calibration: expected calibration error {_num(calibration['ece'])} over "
                     f"{calibration['points']} verdicts")
    speed = figures["speed"]
    counters = speed.get("judge_counters", {})
    lines.append(f"- Speed: {speed['judgments']} judgments in {speed['seconds']:.1f} s "
                 f"({_num(speed['judgments_per_s'], 2)}/s), cost {speed['cost']:.4f}"
                 + (f"; model calls {counters.get('calls', 0):g}, cache hits {counters.get('cache_hits', 0):g}"
                    if counters else ""))
    return lines


def markdown(result: "AuditResult", plots: list[str]) -> str:
    figures = result.figures
    lines = [f"# Judge audit: {result.judge_id}", "",
             f"**{'PASS' if result.passed else 'FAIL'}** ({result.mode}, {figures['suite']['pairs']} gold pairs)", ""]
    lines += [f"- failed: {failure}" for failure in result.failures]
    lines += [f"- instead: {advice}" for advice in result.advice]
    lines += ["", "## Gold pairs", "", *_accuracy_table(figures), "", "## Biases and the rest", "",
              *_bias_lines(figures, result.mode), *_other_lines(figures), ""]
    calibration = figures.get("calibration")
    if calibration and calibration["bins"]:
        lines += ["## Reliability", "", "| confidence bin | verdicts | mean confidence | accuracy |", "|---|---|---|---|"]
        lines += [f"| {b['low']:.1f}-{b['high']:.1f} | {b['count']} | {b['confidence']:.3f} | {b['accuracy']:.3f} |"
                  for b in calibration["bins"]] + [""]
    if figures.get("judge_warnings"):
        lines += ["## What the judge warned about", "", *[f"- {w}" for w in figures["judge_warnings"]], ""]
    lines += [f"![{name}]({name})" for name in plots]
    thresholds = ", ".join(f"{k} {v:g}" for k, v in result.thresholds.to_dict().items())
    lines += ["", f"Thresholds: {thresholds}.", ""]
    return "\n".join(lines)


def _plots(result: "AuditResult", folder: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the report is whole without them
        return []
    written = []
    calibration = result.figures.get("calibration")
    if calibration and calibration["bins"]:
        figure, axis = plt.subplots(figsize=(4.5, 4.5))
        axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
        bins = calibration["bins"]
        axis.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", label="judge")
        axis.set(xlabel="confidence in the verdict", ylabel="share of verdicts right", xlim=(0, 1), ylim=(0, 1),
                 title="Reliability")
        axis.legend(loc="upper left")
        written.append(_save(figure, folder / "reliability.png", plt))
    points = result.figures["length_bias"].get("points")
    if points:
        figure, axis = plt.subplots(figsize=(5.5, 4))
        for item in sorted({p["item"] for p in points}):
            mine = [p for p in points if p["item"] == item and p["reward"] is not None]
            axis.plot([p["chars"] for p in mine], [p["reward"] for p in mine], marker="o", alpha=0.7)
        axis.set(xlabel="answer length (characters)", ylabel="reward", ylim=(-0.05, 1.05),
                 title="One answer padded with neutral sentences")
        written.append(_save(figure, folder / "length_bias.png", plt))
    return written


def _save(figure: Any, path: Path, plt: Any) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return str(path)
