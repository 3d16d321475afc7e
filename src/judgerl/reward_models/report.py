"""report.md of a train-rm run: the data, the model, and one row per epoch of held-out numbers."""

from __future__ import annotations

from typing import Any

from judgerl.reward_models.config import RewardModelRunConfig
from judgerl.training.run_folder import RunFolder

COLUMNS = [  # (metrics key, column title, format)
    ("train/loss", "train loss", "{:.4f}"), ("eval/accuracy", "held-out accuracy", "{:.3f}"),
    ("eval/margin", "mean margin r⁺−r⁻", "{:.3f}"), ("eval/reward_mean", "reward mean", "{:.3f}"),
    ("eval/reward_std", "std", "{:.3f}"), ("eval/reward_q10", "q10", "{:.3f}"),
    ("eval/reward_q50", "q50", "{:.3f}"), ("eval/reward_q90", "q90", "{:.3f}"),
    ("time/epoch_s", "epoch s", "{:.1f}"),
]


def _cell(row: dict[str, Any], key: str, form: str) -> str:
    value = row.get(key)
    return form.format(value) if isinstance(value, (int, float)) else "–"


TITLES = {"bradley_terry": "Bradley–Terry", "critique_conditioned": "critique-conditioned (reads the judge's critique)",
          "cloud": "Critique-out-Loud (writes its own critique)"}
STAGES = ("reward_model", "critique_sft")
CLOUD_COLUMNS = [("train/lm_loss", "train critique LM loss", "{:.4f}"),
                 ("eval/critique_lm_loss", "held-out critique LM loss", "{:.4f}")]
KIND_NOTES = {
    "critique_conditioned": "The reward head reads (prompt, completion, the judge's critique); held-out pairs are "
                            "scored with their judge critiques.",
    "cloud": "Epochs of stage critique_sft fine-tune the language-model head on the judge's critiques; the "
             "reward_model epochs train the reward head on the model's own critiques (own_critiques.jsonl). "
             "Held-out accuracy is always on critiques the model writes itself, as at reward time (during "
             "critique_sft the reward head is still untrained).",
}


def report_text(run: RunFolder, config: RewardModelRunConfig) -> str:
    rows = [row for row in run.read_metrics() if row.get("stage") in STAGES]
    rows.sort(key=lambda row: row.get("epoch", 0))
    status = run.status()
    model = config.model
    columns = COLUMNS[:1] + CLOUD_COLUMNS + COLUMNS[1:] if model.kind == "cloud" else COLUMNS
    lines = [
        f"# Reward model ({TITLES.get(model.kind, model.kind)}): {run.path.name}", "",
        f"- status: {status.get('status', '?')}" + (f" (model: `{status['model']}`)" if status.get("model") else ""),
        f"- data: {', '.join(config.data.train)}; held out: {config.data.held_out}",
        f"- backbone: {model.backbone} ({'LoRA r=' + str(model.lora_r) if model.lora else 'full fine-tuning'}), "
        f"max_length {model.max_length}, chat template {'on' if model.chat_template else 'off'}",
        f"- loss: −log σ(r⁺ − r⁻{' − margin' if config.train.use_margin else ''})"
        + (f" + {config.train.center_rewards_coefficient} · mean((r⁺ + r⁻)²)"
           if config.train.center_rewards_coefficient else ""),
        f"- AdamW lr {config.train.learning_rate}, batch {config.train.batch_size} pairs, "
        f"{config.train.epochs} epoch(s), seed {config.seed}", "",
        "Held-out preference accuracy is the share of held-out pairs whose chosen completion gets the higher "
        "reward; epoch 0 is the untrained model. The reward distribution is over every held-out completion "
        "(chosen and rejected). " + KIND_NOTES.get(model.kind, ""), "",
        "| epoch | stage | " + " | ".join(title for _, title, _ in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for row in rows:
        lines.append(f"| {row.get('epoch')} | {row.get('stage')} | "
                     + " | ".join(_cell(row, key, form) for key, _, form in columns) + " |")
    return "\n".join(lines) + "\n"


def write_report(run: RunFolder, config: RewardModelRunConfig) -> None:
    path = run.path / "report.md"
    temporary = path.with_name("report.md.tmp")
    temporary.write_text(report_text(run, config))
    temporary.replace(path)
