"""The critique-conditioned reward model (Ye et al. 2024, "Improving Reward Models with Synthetic
Critiques"): the Bradley–Terry model of model.py reading (prompt, completion, critique), where the
critique is the judge's (an LLM's synthetic critique of the completion).

    (prompt, completion, critique) -> critiques.critiqued_sequence: context + critique + eos (B, L)
                                   -> backbone -> hidden state at the last real token (B, H)
                                   -> head Linear(H, 1) -> reward (B,)

Training pairs need both critiques (critique_chosen, critique_rejected: `judgerl label` with a
critique-writing judge writes them). At reward time the critique comes from the judge (a
`critique` column, or the critic judge named in judge.reward_model.critic); a completion with no
usable critique is unscored by the judge (judge.py), never given a reward.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load_file

from judgerl.reward_models.critiques import checked_critique, critiqued_sequence
from judgerl.reward_models.data import PreferenceDataError, PreferencePair
from judgerl.reward_models.model import DTYPES, HEAD_FILE, BradleyTerryRewardModel, RewardModelLoadError
from judgerl.reward_models.saved import load_backbone, read_kind_manifest

KIND = "critique_conditioned"
HOW_TO_GET_CRITIQUES = ("label the pairs with a judge that writes critiques, e.g. `judgerl label --method "
                        "pairwise_from_scores --set judge.method=critique --set judge.confidence_threshold=0` (a "
                        "critique judge states no confidence, which only a gate at 0 accepts)")


class CritiqueConditionedRewardModel(BradleyTerryRewardModel):
    kind = KIND
    needs_critique = True
    """The judge (judge.py) gives `rewards` one critique per completion; see the module docstring."""
    writes_critique = False
    max_critique_tokens = 128

    @classmethod
    def from_backbone(cls, folder: str | Path, *, max_critique_tokens: int = 128,  # type: ignore[override]
                      **settings: Any) -> "CritiqueConditionedRewardModel":
        model = super().from_backbone(folder, **settings)
        model.max_critique_tokens = max_critique_tokens
        return model

    def encode(self, prompt: Any, completion: str, critique: Any = None) -> list[int]:  # type: ignore[override]
        """(prompt, completion, critique) as ids (critiques.py); CritiqueError for a missing,
        empty or non-string critique."""
        return critiqued_sequence(self.tokenizer, self.use_chat_template, self.max_length, self.max_critique_tokens,
                                  prompt, completion, checked_critique(critique)).ids

    @torch.no_grad()
    def rewards(self, prompts: Sequence[Any], completions: Sequence[str], batch_size: int = 16,
                critiques: Sequence[Any] | None = None) -> torch.Tensor:
        """(N,) raw rewards, in order; CritiqueError unless every completion has a critique."""
        if critiques is None or len(critiques) != len(completions):
            raise ValueError(f"a {KIND} reward model needs one critique per completion")
        encoded = [self.encode(p, c, k) for p, c, k in zip(prompts, completions, critiques)]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))  # batches pad little
        out = torch.empty(len(encoded))
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            out[rows] = self(*self.collate([encoded[i] for i in rows])).float()
        return out

    def manifest(self) -> dict[str, Any]:
        return {**super().manifest(), "kind": KIND, "max_critique_tokens": self.max_critique_tokens}

    @classmethod
    def load(cls, folder: str | Path, compute_dtype: str | None = None) -> "CritiqueConditionedRewardModel":
        from transformers import AutoModel, AutoTokenizer

        folder = Path(folder).expanduser()
        manifest = read_kind_manifest(folder, KIND)
        compute_dtype = compute_dtype or manifest.get("compute_dtype", "float32")  # model.py's fast forward's
        if compute_dtype not in DTYPES:
            raise RewardModelLoadError(f"{folder}: compute_dtype {str(compute_dtype)[:40]!r} is not one of "
                                       f"{', '.join(DTYPES)}")
        backbone, base_folder = load_backbone(folder, manifest, AutoModel)
        model = cls(backbone, AutoTokenizer.from_pretrained(folder), backbone_folder=base_folder,
                    max_length=manifest["max_length"], use_chat_template=manifest["use_chat_template"],
                    lora=manifest.get("lora"), name=manifest.get("name"), compute_dtype=compute_dtype)
        model.max_critique_tokens = manifest["max_critique_tokens"]
        model.head.load_state_dict(load_file(str(folder / HEAD_FILE)))
        return model


def check_critiques(numbered: list[tuple[int, PreferencePair]], path: str, kind: str) -> None:
    """PreferenceDataError at the first pair without both critiques, naming the file, line and remedy."""
    for line, pair in numbered:
        for name in ("critique_chosen", "critique_rejected"):
            value = getattr(pair, name)
            if value is None or not value.strip():
                raise PreferenceDataError(f"{path}:{line}: {name} is {'null' if value is None else 'empty'}; a {kind} "
                                          f"reward model trains on the judge's critiques of both completions: "
                                          f"{HOW_TO_GET_CRITIQUES}")


class CritiqueConditionedKind:
    name = KIND

    def __init__(self, max_critique_tokens: int = 128):
        self.max_critique_tokens = max_critique_tokens

    def fresh(self, backbone: Path, model_config: Any, seed: int) -> CritiqueConditionedRewardModel:
        return CritiqueConditionedRewardModel.from_backbone(
            backbone, max_critique_tokens=self.max_critique_tokens, lora=model_config.lora_settings(),
            max_length=model_config.max_length, use_chat_template=model_config.chat_template, seed=seed,
            compute_dtype=model_config.compute_dtype)

    def load(self, folder: Path, compute_dtype: str | None = None) -> CritiqueConditionedRewardModel:
        return CritiqueConditionedRewardModel.load(folder, compute_dtype=compute_dtype)

    def check_pairs(self, numbered: list[tuple[int, PreferencePair]], path: str) -> None:
        check_critiques(numbered, path, KIND)

    def epochs(self, config: Any) -> int:
        return config.train.epochs

    def trainer(self, model: CritiqueConditionedRewardModel, train_pairs: list[PreferencePair],
                held_out_pairs: list[PreferencePair], run_path: Path, say: Any = None) -> Any:
        from judgerl.reward_models.train import EncodedPairs, PairsTrainer

        def encoded(pairs: list[PreferencePair]) -> EncodedPairs:
            return EncodedPairs([model.encode(p.prompt, p.chosen, p.critique_chosen) for p in pairs],
                                [model.encode(p.prompt, p.rejected, p.critique_rejected) for p in pairs],
                                torch.tensor([p.margin if p.margin is not None else 0.0 for p in pairs]))

        return PairsTrainer(encoded(train_pairs), encoded(held_out_pairs))
