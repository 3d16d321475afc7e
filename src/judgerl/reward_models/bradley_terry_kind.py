"""The bradley_terry kind (kinds.py): model.py's BradleyTerryRewardModel, trained on (prompt,
completion) pairs by train.py's Bradley–Terry epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from judgerl.reward_models.data import PreferencePair
from judgerl.reward_models.model import BradleyTerryRewardModel


class BradleyTerryKind:
    name = "bradley_terry"

    def fresh(self, backbone: Path, model_config: Any, seed: int) -> BradleyTerryRewardModel:
        return BradleyTerryRewardModel.from_backbone(
            backbone, lora=model_config.lora_settings(), max_length=model_config.max_length,
            use_chat_template=model_config.chat_template, seed=seed, compute_dtype=model_config.compute_dtype)

    def load(self, folder: Path, compute_dtype: str | None = None) -> BradleyTerryRewardModel:
        return BradleyTerryRewardModel.load(folder, compute_dtype=compute_dtype)

    def check_pairs(self, numbered: list[tuple[int, PreferencePair]], path: str) -> None:
        """Every well-formed pair will do (critiques, if any, are not read)."""

    def epochs(self, config: Any) -> int:
        return config.train.epochs

    def trainer(self, model: BradleyTerryRewardModel, train_pairs: list[PreferencePair],
                held_out_pairs: list[PreferencePair], run_path: Path, say: Any = None) -> Any:
        from judgerl.reward_models.train import PairsTrainer, encode_pairs

        return PairsTrainer(encode_pairs(model, train_pairs), encode_pairs(model, held_out_pairs))
