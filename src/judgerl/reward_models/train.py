"""Training a reward model on preference pairs, in a run folder like an RL run's. The kind
(model.kind: bradley_terry, critique_conditioned, cloud, a plugin's; kinds.py) builds the model and
its `KindTrainer` (what one epoch and one evaluation are); this file owns the run's life.

    {output_dir}/{name}__{kind}__{seed}__{YYYYmmdd-HHMMSS}/
        config.yaml      the resolved train-rm config
        status.json      running | completed | interrupted | failed, with the epoch
        metrics.jsonl    one row per epoch (epoch 0: before training): train/loss, train/accuracy,
                         eval/accuracy, eval/margin, eval/reward_{mean,std,min,q10,q50,q90,max}
        checkpoints/epoch-N/   the reward model after epoch N (load it with
                         kinds.load_reward_model, or name the run folder as a judge's path),
                         its trainer state (AdamW moments) and checkpoint.json (sizes and sha256);
                         the newest train.keep_checkpoints are kept
        report.md        the per-epoch table

One epoch visits every training pair once in an order fixed by (seed, epoch), and the model runs
without dropout: a run resumed from epoch N's checkpoint continues exactly as if never stopped.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from judgerl.config.base import ConfigError
from judgerl.reward_models.config import RewardModelRunConfig, backbone_folder, rm_config_yaml
from judgerl.reward_models.data import PreferencePair, read_numbered
from judgerl.reward_models.kinds import RM_KINDS, KindManifestError, manifest_kind
from judgerl.reward_models.loss import bradley_terry_loss, preference_accuracy, reward_summary
from judgerl.reward_models.model import BradleyTerryRewardModel, RewardModelLoadError
from judgerl.reward_models.report import write_report
from judgerl.training.checkpoints import CheckpointError, save_checkpoint, verify_checkpoint
from judgerl.training.run_folder import RunFolder
from judgerl.training.trainer_state import load_trainer_state, save_trainer_state

STAGE = "reward_model"
Say = Callable[[str], None]


@dataclass
class EncodedPairs:
    """Pairs as token ids: chosen[i], rejected[i] (lists of ids) and margins (P,)."""

    chosen: list[list[int]]
    rejected: list[list[int]]
    margins: torch.Tensor

    def __len__(self) -> int:
        return len(self.chosen)


def encode_pairs(model: BradleyTerryRewardModel, pairs: list[PreferencePair]) -> EncodedPairs:
    return EncodedPairs([model.encode(p.prompt, p.chosen) for p in pairs],
                        [model.encode(p.prompt, p.rejected) for p in pairs],
                        torch.tensor([p.margin if p.margin is not None else 0.0 for p in pairs]))


class KindTrainer(Protocol):
    """What a kind of reward model trains and evaluates in one epoch (epochs count from 1)."""

    def epochs(self, config: RewardModelRunConfig) -> int:
        """Epochs in all (cloud: its critique fine-tuning epochs, then train.epochs)."""
        ...

    def stage(self, epoch: int) -> str:
        """The stage epoch `epoch` belongs to, as written in metrics.jsonl ("reward_model", ...)."""
        ...

    def train_epoch(self, model: Any, optimizer: torch.optim.Optimizer, config: RewardModelRunConfig,
                    epoch: int) -> dict[str, float]: ...

    def evaluate(self, model: Any, config: RewardModelRunConfig, epoch: int) -> dict[str, float]: ...


class PairsTrainer:
    """Bradley–Terry training on pairs encoded once (bradley_terry; critique_conditioned, whose
    encoding carries the judge's critiques)."""

    def __init__(self, train_data: EncodedPairs, held_out: EncodedPairs):
        self.train_data, self.held_out = train_data, held_out

    def epochs(self, config: RewardModelRunConfig) -> int:
        return config.train.epochs

    def stage(self, epoch: int) -> str:
        return STAGE

    def train_epoch(self, model: Any, optimizer: torch.optim.Optimizer, config: RewardModelRunConfig,
                    epoch: int) -> dict[str, float]:
        return train_epoch(model, optimizer, self.train_data, config, epoch)

    def evaluate(self, model: Any, config: RewardModelRunConfig, epoch: int) -> dict[str, float]:
        return evaluate(model, self.held_out, config.train.eval_batch_size)


def config_kind(config: RewardModelRunConfig) -> Any:
    """The kind object model.kind names, built with its settings (model.kind_settings)."""
    return RM_KINDS.build(config.model.kind, config.model.own_settings())


def _read_checked(path: str, kind: Any) -> list[PreferencePair]:
    numbered = read_numbered(path)
    kind.check_pairs(numbered, path)  # e.g. critique_conditioned: every pair has both critiques
    return [pair for _, pair in numbered]


def split_pairs(config: RewardModelRunConfig) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(training pairs, held-out pairs): a held-out file, or a share drawn with the seed; each
    file checked by the kind (PreferenceDataError naming the file and line)."""
    kind = config_kind(config)
    pairs = [pair for path in config.data.train for pair in _read_checked(path, kind)]
    held_out = config.data.held_out
    if isinstance(held_out, str):
        return pairs, _read_checked(held_out, kind)
    count = max(1, round(len(pairs) * held_out))
    if len(pairs) - count < 1:
        raise ConfigError(f"data.train: {len(pairs)} pair(s) cannot be split into training and held-out pairs "
                          f"(data.held_out {held_out}); give more pairs or a held-out file")
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(config.seed)).tolist()
    return [pairs[i] for i in order[count:]], [pairs[i] for i in order[:count]]


def pair_rewards(model: BradleyTerryRewardModel, data: EncodedPairs, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards of the pairs `rows`: chosen and rejected ones in one forward pass -> (B,), (B,)."""
    ids, mask = model.collate([data.chosen[i] for i in rows] + [data.rejected[i] for i in rows])  # (2B, L)
    rewards = model(ids, mask)  # (2B,)
    return rewards[: len(rows)], rewards[len(rows):]


@torch.no_grad()
def evaluate(model: BradleyTerryRewardModel, data: EncodedPairs, batch_size: int) -> dict[str, float]:
    """Held-out accuracy, margin and reward distribution (loss.reward_summary), with eval/ names."""
    chosen, rejected = [], []
    for start in range(0, len(data), batch_size):
        c, r = pair_rewards(model, data, list(range(start, min(start + batch_size, len(data)))))
        chosen.append(c)
        rejected.append(r)
    summary = reward_summary(torch.cat(chosen), torch.cat(rejected))
    return {f"eval/{key}": value for key, value in summary.items()}


def train_epoch(model: BradleyTerryRewardModel, optimizer: torch.optim.Optimizer, data: EncodedPairs,
                config: RewardModelRunConfig, epoch: int) -> dict[str, float]:
    """One pass over the training pairs in the order fixed by (seed, epoch); mean loss and accuracy."""
    settings = config.train
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch)).tolist()
    losses, accuracies, steps = [], [], 0
    for start in range(0, len(order), settings.batch_size):
        rows = order[start:start + settings.batch_size]
        chosen, rejected = pair_rewards(model, data, rows)
        margin = data.margins[rows] if settings.use_margin else None
        loss = bradley_terry_loss(chosen, rejected, margin, settings.center_rewards_coefficient)
        if not torch.isfinite(loss):
            raise ConfigError(f"train.learning_rate: the loss became {loss.item()} at epoch {epoch} (the rewards "
                              f"diverged); lower train.learning_rate")
        loss.backward()
        if settings.max_grad_norm is not None:  # as TRL's default (1.0): one bad batch cannot wreck the backbone
            torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), settings.max_grad_norm)
        optimizer.step()
        # Right after the step, not before the next backward: the next forward's activations then
        # never share memory with a whole backbone's gradients.
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        accuracies.append(preference_accuracy(chosen.detach(), rejected.detach()))
        steps += 1
        # Drop this step's outputs before the next forward: the autograd graph they hold would
        # otherwise live through it (measured: ~0.6 GB more peak RSS and slower steps on SmolLM2).
        del chosen, rejected, loss
    return {"train/loss": sum(losses) / len(losses), "train/accuracy": sum(accuracies) / len(accuracies),
            "train/steps": steps}


def make_optimizer(model: BradleyTerryRewardModel, config: RewardModelRunConfig) -> torch.optim.Optimizer:
    # fused: one kernel over every parameter (as the HF Trainer's default); foreach would also hold
    # temporaries the size of the parameters, which for a full backbone is most of a gigabyte.
    return torch.optim.AdamW(model.trainable_parameters(), lr=config.train.learning_rate,
                             weight_decay=config.train.weight_decay, fused=True)


def save_epoch(run: RunFolder, model: BradleyTerryRewardModel, optimizer: torch.optim.Optimizer, epoch: int,
               step: int, keep: int) -> Path:
    """checkpoints/epoch-N: the model, the optimiser's state, checkpoint.json; older ones past `keep` go."""
    def trainer_state(folder: Path) -> None:
        save_trainer_state(folder, step=step, optimizer=optimizer, scheduler=None,
                           rng_states=(torch.Generator().get_state(), torch.get_rng_state()),
                           algorithm_state={"epoch": epoch})

    folder = save_checkpoint(model, run.checkpoint_dir(f"epoch-{epoch}"), trainer_state,
                             stage=STAGE, epoch=epoch, step=step)
    for old in epoch_checkpoints(run.path)[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def epoch_checkpoints(run_path: Path) -> list[Path]:
    """checkpoints/epoch-N folders, newest first (`.partial` ones, saves that never finished, excluded)."""
    found = [p for p in (Path(run_path) / "checkpoints").glob("epoch-*") if p.is_dir() and p.name[6:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[6:]), reverse=True)


def newest_verified_epoch(run_path: Path, say: Say = lambda _: None) -> Path | None:
    """The newest epoch checkpoint whose files match its checkpoint.json; each one passed over is said."""
    for folder in epoch_checkpoints(run_path):
        try:
            verify_checkpoint(folder)
        except CheckpointError as error:
            say(f"checkpoints/{folder.name}: {error}; trying an older one")
            continue
        return folder
    return None


def start_run(config: RewardModelRunConfig) -> RunFolder:
    run = RunFolder.create(config.output_dir, [config.name, config.model.kind, str(config.seed)])
    (run.path / "config.yaml").write_text(rm_config_yaml(config))
    run.set_status("running", stage=STAGE, epoch=0)
    return run


def train_reward_model(config: RewardModelRunConfig, run: RunFolder, say: Say = lambda _: None,
                       resume_from: Path | None = None) -> Path:
    """Train (or continue from `resume_from`, an epoch-N checkpoint) to config.train.epochs; returns
    the newest checkpoint folder. The status says how the run ended."""
    try:
        folder = _train(config, run, say, resume_from)
    except KeyboardInterrupt:
        run.set_status("interrupted")
        raise
    except BaseException as error:
        run.set_status("failed", error=f"{type(error).__name__}: {error}")
        raise
    run.set_status("completed", model=str(folder))
    write_report(run, config)
    return folder


def _train(config: RewardModelRunConfig, run: RunFolder, say: Say, resume_from: Path | None) -> Path:
    train_pairs, held_out_pairs = split_pairs(config)
    kind = config_kind(config)
    model, optimizer, epoch, step = _model_and_state(config, kind, resume_from)
    trainer = kind.trainer(model, train_pairs, held_out_pairs, run.path, say)
    total = trainer.epochs(config)
    say(f"reward model ({config.model.kind}): {len(train_pairs)} training pairs, {len(held_out_pairs)} held out; "
        f"epochs {epoch + 1}..{total}; run folder {run.path}")
    if resume_from is None:  # epoch 0: the untrained model, the baseline the epochs are compared with
        run.log_metrics({"stage": trainer.stage(0), "epoch": 0, "step": 0, **trainer.evaluate(model, config, 0)})
    folder = resume_from
    while epoch < total:
        epoch += 1
        stage = trainer.stage(epoch)
        run.set_status("running", stage=stage, epoch=epoch)
        started = time.perf_counter()
        trained = trainer.train_epoch(model, optimizer, config, epoch)
        seconds = time.perf_counter() - started
        step += int(trained["train/steps"])
        row = {"stage": stage, "epoch": epoch, "step": step, **trained, **trainer.evaluate(model, config, epoch),
               "time/epoch_s": seconds,
               "time/pairs_per_s": len(train_pairs) / seconds if seconds > 0 else math.nan}
        run.log_metrics(row)
        say(f"epoch {epoch} ({stage}): " + ", ".join(f"{key.split('/')[-1]} {row[key]:.4f}" for key in
            ("train/loss", "train/lm_loss", "eval/accuracy", "eval/margin") if isinstance(row.get(key), float))
            + f" ({seconds:.1f} s)")
        folder = save_epoch(run, model, optimizer, epoch, step, config.train.keep_checkpoints)
        write_report(run, config)
    if folder is None:
        raise ConfigError("train.epochs: nothing to train")
    return folder


def _model_and_state(config: RewardModelRunConfig, kind: Any, resume_from: Path | None):
    """(model, optimizer, epochs done, optimiser steps done): fresh, or as saved at `resume_from`."""
    torch.manual_seed(config.seed)
    if resume_from is None:
        try:
            model = kind.fresh(backbone_folder(config.model.backbone), config.model, config.seed)
        except RewardModelLoadError as error:
            raise ConfigError(f"model.backbone: {error}") from None
        return model, make_optimizer(model, config), 0, 0
    try:
        if manifest_kind(resume_from) != config.model.kind:
            raise ConfigError(f"--resume: {resume_from} holds a {manifest_kind(resume_from)} reward model but the "
                              f"run's config says model.kind {config.model.kind}")
        model = kind.load(resume_from)
    except (RewardModelLoadError, KindManifestError) as error:
        raise ConfigError(f"--resume: {error}") from None
    optimizer = make_optimizer(model, config)
    state = load_trainer_state(resume_from, optimizer=optimizer, scheduler=None, sampling_generator=torch.Generator())
    return model, optimizer, int(state["algorithm"]["epoch"]), int(state["step"])


def resume_run(run_path: Path, epochs: int | None = None, say: Say = lambda _: None) -> Path:
    """Continue the run in `run_path` from its newest whole epoch checkpoint, with its own config
    (`epochs`: train to this many instead, to go on past a finished run); the newest checkpoint."""
    from judgerl.reward_models.config import load_rm_config

    run_path = Path(run_path)
    if not (run_path / "config.yaml").is_file() or not (run_path / "checkpoints").is_dir():
        raise ConfigError(f"--resume: {str(run_path)!r} is not a train-rm run folder (it has no config.yaml "
                          "and checkpoints/)")
    config = load_rm_config(run_path / "config.yaml")
    if epochs is not None:
        config.train.epochs = epochs
    checkpoint = newest_verified_epoch(run_path, say)
    run = RunFolder(run_path)
    if checkpoint is None:
        say("no whole epoch checkpoint to resume from: starting again from the backbone")
        return train_reward_model(config, run, say)
    total = config_kind(config).epochs(config)
    if int(checkpoint.name[6:]) >= total:
        say(f"{checkpoint.name} is already the last epoch of {total} (--epochs trains longer)")
        return checkpoint
    (run_path / "config.yaml").write_text(rm_config_yaml(config))
    say(f"resuming from checkpoints/{checkpoint.name}")
    return train_reward_model(config, run, say, resume_from=checkpoint)
