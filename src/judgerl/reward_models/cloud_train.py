"""Training a CLoud reward model (cloud.py) in train.py's run: epochs 1..sft_epochs are stage 1,
the rest stage 2.

    stage 1 "critique_sft":  loss = next-token loss on the judge's critiques (both completions of
                             each pair), given (prompt, completion): the LM learns to critique
    stage 2 "reward_model":  the model writes its own critique of every training completion once
                             (greedy, at stage 2's start; kept in own_critiques.jsonl so that a
                             resumed run reads the same ones), then
                             loss = −log σ(r⁺ − r⁻) + lm_loss_weight · next-token loss on those own critiques

What we chose, and why: Ankner et al. train the reward head on self-generated critiques, as here,
and keep a language-model loss during reward training; theirs is on the oracle (judge) critiques,
ours on the model's own, which are already in the same forward pass (no second pass), and which
pull the LM towards writing at reward time the critiques its head was trained to read. We do not
regenerate the training critiques every epoch (cost: a generation per completion per epoch).

Held-out numbers every epoch: eval/critique_lm_loss (the judge's held-out critiques, teacher
forced) and the reward stage's numbers (accuracy, margin, distribution) on critiques the model
writes for the held-out completions then and there, as it would at reward time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch

from judgerl.config.base import ConfigError
from judgerl.reward_models.cloud import CloudRewardModel
from judgerl.reward_models.critiques import CritiquedSequence, join
from judgerl.reward_models.data import PreferencePair
from judgerl.reward_models.loss import bradley_terry_loss, preference_accuracy, reward_summary

SFT_STAGE, REWARD_STAGE = "critique_sft", "reward_model"
OWN_CRITIQUES = "own_critiques.jsonl"


def _batch(model: CloudRewardModel, sequences: list[CritiquedSequence]):
    ids, mask = model.collate([s.ids for s in sequences])  # (B, L)
    return ids, mask, torch.tensor([s.critique_start for s in sequences])  # starts (B,)


class CloudTrainer:
    def __init__(self, kind: Any, model: CloudRewardModel, train_pairs: list[PreferencePair],
                 held_out_pairs: list[PreferencePair], run_path: Path, say: Callable[[str], None]):
        self.kind, self.train_pairs, self.held_out_pairs = kind, train_pairs, held_out_pairs
        self.run_path, self.say = run_path, say
        # (2P,) the judge's critiques: chosen of pair i at 2i, rejected at 2i + 1
        self.judge_train = self._with_judge_critiques(model, train_pairs)
        self.judge_held_out = self._with_judge_critiques(model, held_out_pairs)
        self.own_train: list[CritiquedSequence] | None = None

    @staticmethod
    def _with_judge_critiques(model: CloudRewardModel, pairs: list[PreferencePair]) -> list[CritiquedSequence]:
        return [sequence for p in pairs for sequence in (model.encode(p.prompt, p.chosen, p.critique_chosen),
                                                         model.encode(p.prompt, p.rejected, p.critique_rejected))]

    def epochs(self, config: Any) -> int:
        return self.kind.sft_epochs + config.train.epochs

    def stage(self, epoch: int) -> str:
        return SFT_STAGE if epoch <= self.kind.sft_epochs else REWARD_STAGE

    # -- own critiques -------------------------------------------------------------------------

    def _own_sequences(self, model: CloudRewardModel, pairs: list[PreferencePair]) -> list[CritiquedSequence]:
        """(2P,) context + own critique: chosen of pair i at 2i, rejected at 2i + 1."""
        prompts = [p.prompt for p in pairs for _ in range(2)]
        completions = [c for p in pairs for c in (p.chosen, p.rejected)]
        written = model.write_critiques(prompts, completions, self.kind.generation_batch_size)
        return [join(model.context(p, c), w, model.max_length) for p, c, w in zip(prompts, completions, written)]

    def _own_train(self, model: CloudRewardModel) -> list[CritiquedSequence]:
        """Written once at stage 2's start and kept; a resumed run reads the file back."""
        if self.own_train is not None:
            return self.own_train
        path = self.run_path / OWN_CRITIQUES
        if path.is_file():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if len(rows) == 2 * len(self.train_pairs) and all(isinstance(r.get("ids"), list) for r in rows):
                self.own_train = [CritiquedSequence(r["ids"], int(r["critique_start"])) for r in rows]
                return self.own_train
            self.say(f"{OWN_CRITIQUES} does not match the training pairs: writing the critiques again")
        self.say(f"stage 2: the model writes its own critique of {2 * len(self.train_pairs)} training completions")
        self.own_train = self._own_sequences(model, self.train_pairs)
        temporary = path.with_name(OWN_CRITIQUES + ".tmp")
        temporary.write_text("".join(json.dumps({"ids": s.ids, "critique_start": s.critique_start,
                                                 "critique": model.critique_text(s.ids[s.critique_start:])}) + "\n"
                                     for s in self.own_train))
        temporary.replace(path)
        return self.own_train

    # -- one epoch -----------------------------------------------------------------------------

    def train_epoch(self, model: CloudRewardModel, optimizer: torch.optim.Optimizer, config: Any,
                    epoch: int) -> dict[str, float]:
        """One pass over the pairs in the order fixed by (seed, epoch), as train.train_epoch."""
        sft = self.stage(epoch) == SFT_STAGE
        sequences = self.judge_train if sft else self._own_train(model)
        order = torch.randperm(len(self.train_pairs),
                               generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch)).tolist()
        totals: dict[str, list[float]] = {"train/loss": [], "train/lm_loss": [], "train/bt_loss": [], "train/accuracy": []}
        settings = config.train
        for start in range(0, len(order), settings.batch_size):
            rows = order[start:start + settings.batch_size]
            batch = [sequences[2 * i] for i in rows] + [sequences[2 * i + 1] for i in rows]  # (2B,): chosen, then rejected
            rewards, lm_loss = model.rewards_and_lm_loss(*_batch(model, batch))
            if sft:
                loss = lm_loss
            else:
                chosen, rejected = rewards[: len(rows)], rewards[len(rows):]
                bt = bradley_terry_loss(chosen, rejected, None, settings.center_rewards_coefficient)
                loss = bt + self.kind.lm_loss_weight * lm_loss if self.kind.lm_loss_weight else bt
                totals["train/bt_loss"].append(bt.item())
                totals["train/accuracy"].append(preference_accuracy(chosen.detach(), rejected.detach()))
            if not torch.isfinite(loss):
                raise ConfigError(f"train.learning_rate: the loss became {loss.item()} at epoch {epoch} (it "
                                  "diverged); lower train.learning_rate")
            loss.backward()
            if settings.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), settings.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            totals["train/loss"].append(loss.item())
            totals["train/lm_loss"].append(lm_loss.item())
            del rewards, lm_loss, loss
        row = {key: sum(values) / len(values) for key, values in totals.items() if values}
        return {**row, "train/steps": -(-len(order) // settings.batch_size)}

    @torch.no_grad()
    def evaluate(self, model: CloudRewardModel, config: Any, epoch: int) -> dict[str, float]:
        size = config.train.eval_batch_size
        losses, counts = [], []
        for start in range(0, len(self.judge_held_out), size):
            batch = self.judge_held_out[start:start + size]
            losses.append(model.rewards_and_lm_loss(*_batch(model, batch))[1].item())
            counts.append(sum(len(s.ids) - s.critique_start for s in batch))  # tokens predicted in the batch
        own = self._own_sequences(model, self.held_out_pairs)
        rewards = torch.cat([model(*model.collate([s.ids for s in own[start:start + size]]))
                             for start in range(0, len(own), size)]).float()  # (2P,)
        summary = reward_summary(rewards[0::2], rewards[1::2])
        return {"eval/critique_lm_loss": sum(l * c for l, c in zip(losses, counts)) / sum(counts),
                **{f"eval/{key}": value for key, value in summary.items()}}
