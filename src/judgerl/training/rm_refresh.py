"""Iterated RLAIF (issue 11 item 4): RL against a reward model distilled from the LLM judge, with
the reward model refreshed on the judge's labels of the *current* policy's completions every
`every` steps, so that it keeps up with where the policy has gone (Bai et al. 2022, "Constitutional
AI", §4: preference models retrained on the RL policy's samples; Lee et al. 2023, RLAIF).

After RL step s with (s + 1) % every == 0 (the step's update done, before its row is logged and
before the checkpoint of step s + 1, which then holds the refreshed model):

    the step's completions (N = P n)  -> the LLM judge scores each (its own judgments; an unscored
                                         completion makes no pair and is counted, never a score)
    pairs inside each prompt's group  -> (chosen, rejected) when the judge's rewards differ by at
                                         least min_margin (labelling/pairs.py, as `judgerl label`)
    a share held out (seeded by step)  -> the held-out pool (every refresh's held-out pairs)
    held-out accuracy before           -> `steps` Bradley-Terry optimiser steps on old + every
                                         fresh training pair so far -> held-out accuracy after

The reward model is trained in place: the training judge scores with it from the next step on.
Each refresh is saved as RUN/rm_refresh/step-(s+1)/ (the model, its fresh pairs, refresh.json,
checkpoint.json with sizes and sha256) and its figures join the step's row as rm_refresh/*.
`judgerl resume` from checkpoint step-M loads the newest refresh at or before M (verified; a
tampered one is a one-line error) and drops those after M (a future that was abandoned).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from judgerl.training.judge_fields import check_judge_fields

if TYPE_CHECKING:
    from judgerl.reward_models.data import PreferencePair
    from judgerl.training.rollout_step import Sampled

FOLDER = "rm_refresh"


class RefreshSettings(BaseModel):
    """rl.rm_refresh: iterated RLAIF, refreshing a reward-model judge on fresh LLM-judge labels."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    every: int = Field(0, ge=0, description="with judge.method reward_model: refresh the reward model every this "
                       "many RL steps on the LLM judge's labels of that step's completions (0: never, the default)")
    judge: dict[str, Any] = Field(
        default_factory=lambda: {"method": "rubric"}, description="the labelling judge: judge.* fields over the "
        "training judge's section (default {method: rubric}: the section's LLM provider, model and rubric); the "
        "hacking monitor's audit judge is shared when it is the same judge")
    min_margin: float = Field(0.1, gt=0, le=1, description="a pair is made when the judge's rewards (in [0, 1]) of "
                              "two completions of one prompt differ by at least this")
    held_out: float = Field(0.25, ge=0, lt=1, description="share of each refresh's fresh pairs held out to measure "
                            "the reward model's accuracy before and after the refresh")
    steps: int = Field(8, ge=1, le=10_000, description="optimiser steps of further training per refresh (bounded: "
                       "a refresh costs about this many reward-model batches)")
    batch_size: int = Field(8, ge=1, description="pairs per optimiser step (drawn from old + fresh pairs)")
    learning_rate: float = Field(1e-5, gt=0, description="AdamW learning rate of the refresh")
    old_pairs: list[str] | None = Field(
        None, description="the pairs the reward model was trained on (JSONL, as `judgerl label` writes them), "
        "trained on again with the fresh ones (none: those of its train-rm run folder's config when "
        "judge.reward_model.path is a run folder, else only fresh pairs)")

    @field_validator("judge")
    @classmethod
    def _judge_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_judge_fields(value) or {}


def fresh_pairs(sampled: "Sampled", label_judge: Any, min_margin: float, step: int) -> tuple[list, int]:
    """(pairs from the LLM judge's scores of the step's completions, completions it left unscored)."""
    from judgerl.judges.evidence import distrust_all
    from judgerl.judges.gate import ConfidenceGate
    from judgerl.labelling.pairs import pairs_from_rewards
    from judgerl.labelling.records import LabelCounts
    from judgerl.reward_models.data import pair_from_row
    from judgerl.rewards import judge_completions

    rollout = sampled.rollout
    group = rollout.group.tolist()
    judgments = distrust_all(judge_completions(label_judge, rollout.prompts, group, rollout.completions,
                                               rollout.columns))
    counts, pairs = LabelCounts(), []
    for g in dict.fromkeys(group):
        rows = [i for i, h in enumerate(group) if h == g]
        made = pairs_from_rewards(rollout.prompts[g], [rollout.completions[i] for i in rows], [judgments[i] for i in rows],
                                  ConfidenceGate(0.0), min_margin, getattr(label_judge, "judge_id", "llm_judge"),
                                  f"rm_refresh/step-{step}", counts)
        pairs += [pair_from_row(pair.to_dict()) for pair in made]
    return pairs, counts.completions_unscored


class RewardModelRefresher:
    """Refreshes `judge.model` (a Bradley-Terry reward model) every settings.every steps."""

    def __init__(self, settings: RefreshSettings, judge: Any, label_judge: Any, run_path: Path | None, seed: int,
                 old_pairs: list["PreferencePair"], say: Callable[[str], None] | None = None):
        self.settings, self.judge, self.label_judge = settings, judge, label_judge
        self.run_path, self.seed, self.say = run_path, seed, say or print
        self.old_pairs = list(old_pairs)
        self.fresh_train: list[PreferencePair] = []
        self.held_out: list[PreferencePair] = []

    def due(self, step: int) -> bool:
        return self.settings.every > 0 and (step + 1) % self.settings.every == 0

    def update_row(self, step: int, sampled: "Sampled", row: dict[str, Any]) -> None:
        """On a refresh step, refresh and put its figures in the row. A labelling judge that fails
        leaves the model as it was (said, and counted as rm_refresh/skipped), and the run goes on."""
        if not self.due(step):
            return
        started = time.perf_counter()
        self._update_row(step, sampled, row)
        row["rm_refresh/seconds"] = time.perf_counter() - started  # labelling + training: outside time/step_s

    def _update_row(self, step: int, sampled: "Sampled", row: dict[str, Any]) -> None:
        try:
            pairs, unscored = fresh_pairs(sampled, self.label_judge, self.settings.min_margin, step + 1)
        except Exception as error:  # a judge that fails must not stop training
            self.say(f"reward-model refresh after step {step + 1}: the labelling judge failed "
                     f"({type(error).__name__}: {str(error)[:200]}); the reward model is kept as it was")
            row.update({"rm_refresh/skipped": 1.0, "rm_refresh/unscored": float(len(sampled.rollout.completions))})
            return
        if not pairs:  # fresh labels are the point: without any, the model is kept as it was
            self.say(f"reward-model refresh after step {step + 1}: no fresh pair (the judge left {unscored} of "
                     f"{len(sampled.rollout.completions)} completions unscored, and the rewards of the rest differed "
                     f"by less than {self.settings.min_margin} within a prompt); the reward model is kept")
            row.update({"rm_refresh/skipped": 1.0, "rm_refresh/unscored": float(unscored)})
            return
        row.update(self.refresh(step + 1, pairs, unscored))

    def refresh(self, after_step: int, pairs: list["PreferencePair"], unscored: int) -> dict[str, float]:
        import torch

        order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(self.seed * 100_003 + after_step))
        held = round(len(pairs) * self.settings.held_out) if len(pairs) > 1 else 0
        new_held = [pairs[i] for i in order[:held].tolist()]
        new_train = [pairs[i] for i in order[held:].tolist()]
        self.held_out += new_held
        self.fresh_train += new_train
        metrics = {"rm_refresh/pairs_added": float(len(new_train)), "rm_refresh/held_out_added": float(len(new_held)),
                   "rm_refresh/unscored": float(unscored), "rm_refresh/skipped": 0.0}
        before = self.accuracy()
        pool = self.old_pairs + self.fresh_train
        if not new_train:  # a single fresh pair went to the held-out side: nothing new to learn from
            metrics["rm_refresh/skipped"] = 1.0
            return metrics
        loss = self.train(pool, after_step)
        after = self.accuracy()
        metrics.update({"rm_refresh/pairs_total": float(len(pool)), "rm_refresh/loss": loss,
                        "rm_refresh/held_out": float(len(self.held_out))})
        for name, value in (("accuracy_before", before), ("accuracy_after", after)):
            if value is not None:
                metrics[f"rm_refresh/{name}"] = value
        self.save(after_step, new_train, new_held, metrics)
        self.say(f"reward-model refresh after step {after_step}: {len(new_train)} fresh pairs (+{len(new_held)} held "
                 f"out), {self.settings.steps} steps on {len(pool)}; held-out accuracy "
                 f"{_fmt(before)} -> {_fmt(after)} on {len(self.held_out)}")
        return metrics

    def accuracy(self) -> float | None:
        """The model's accuracy on every held-out fresh pair so far (None: none yet)."""
        if not self.held_out:
            return None
        from judgerl.reward_models.train import encode_pairs, evaluate

        model = self.judge.model
        return float(evaluate(model, encode_pairs(model, self.held_out), 32)["eval/accuracy"])

    def train(self, pool: list["PreferencePair"], after_step: int) -> float:
        """settings.steps optimiser steps on batches drawn from `pool` (seeded by the step); mean loss."""
        import torch

        from judgerl.reward_models.loss import bradley_terry_loss
        from judgerl.reward_models.train import encode_pairs, pair_rewards

        model, settings = self.judge.model, self.settings
        data = encode_pairs(model, pool)
        optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=settings.learning_rate)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + after_step + 1)
        losses = []
        with torch.enable_grad():
            for _ in range(settings.steps):
                rows = torch.randint(len(data), (min(settings.batch_size, len(data)),), generator=generator).tolist()
                chosen, rejected = pair_rewards(model, data, rows)  # (B,), (B,)
                loss = bradley_terry_loss(chosen, rejected)
                if not torch.isfinite(loss):  # a diverged refresh must not become the reward
                    from judgerl.config import ConfigError

                    raise ConfigError(f"rl.rm_refresh: the reward model's loss became {loss.item()} in the refresh "
                                      f"after step {after_step}; lower rl.rm_refresh.learning_rate")
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
        return sum(losses) / len(losses)

    def save(self, after_step: int, new_train: list, new_held: list, metrics: dict[str, float]) -> None:
        if self.run_path is None:
            return
        from judgerl.reward_models.data import write_preferences
        from judgerl.training.checkpoints import save_checkpoint

        def pairs_and_record(folder: Path) -> None:
            write_preferences(folder / "pairs.jsonl", new_train)
            write_preferences(folder / "held_out.jsonl", new_held)
            (folder / "refresh.json").write_text(json.dumps({"after_step": after_step, **metrics}, indent=1))

        save_checkpoint(self.judge.model, self.run_path / FOLDER / f"step-{after_step}", pairs_and_record,
                        stage="rm_refresh", step=after_step)

    def restore(self, resume_step: int) -> int | None:
        """Resuming from checkpoint step-`resume_step`: the fresh pairs of every refresh at or before
        it, and the newest one's model in the judge; later refreshes are removed. The step of the
        refresh restored (None: none). ConfigError (one line) for a refresh that does not verify."""
        refreshes = refresh_folders(self.run_path) if self.run_path is not None else []
        kept = []
        for step, folder in refreshes:
            if step > resume_step:
                shutil.rmtree(folder, ignore_errors=True)  # made after the checkpoint: replayed from there
            else:
                kept.append((step, folder))
        for step, folder in kept:
            _verified(folder)  # its pairs too: every file is in its checkpoint.json
            self.fresh_train += _read_pairs(folder / "pairs.jsonl", folder)
            self.held_out += _read_pairs(folder / "held_out.jsonl", folder)
        if not kept:
            return None
        step, folder = kept[-1]
        self.judge.model = load_refreshed(folder)
        self.say(f"reward model: the refresh after step {step} restored from {FOLDER}/{folder.name}")
        return step


def refresh_folders(run_path: Path) -> list[tuple[int, Path]]:
    """RUN/rm_refresh/step-N folders, oldest first (unfinished `.partial` saves left out)."""
    base = Path(run_path) / FOLDER
    found = [(int(p.name[5:]), p) for p in base.glob("step-*") if p.is_dir() and p.name[5:].isdigit()] if base.is_dir() else []
    return sorted(found)


def load_refreshed(folder: Path) -> Any:
    from judgerl.reward_models.kinds import KindManifestError, load_reward_model
    from judgerl.reward_models.model import RewardModelLoadError

    _verified(folder)
    try:
        return load_reward_model(folder)
    except (KindManifestError, RewardModelLoadError, OSError, ValueError) as error:
        raise _unusable(folder, error) from None


def _verified(folder: Path) -> None:
    from judgerl.training.checkpoints import CheckpointError, verify_checkpoint

    try:
        verify_checkpoint(folder)
    except CheckpointError as error:
        raise _unusable(folder, error) from None


def _unusable(folder: Path, error: Exception) -> Exception:
    from judgerl.config import ConfigError

    return ConfigError(f"rl.rm_refresh: the refreshed reward model {FOLDER}/{folder.name} in the run folder cannot "
                       f"be used ({str(error).splitlines()[0][:200]}); resume from a checkpoint before step "
                       f"{folder.name[5:]} or start a new run")


def _read_pairs(path: Path, folder: Path) -> list:
    from judgerl.config import ConfigError
    from judgerl.reward_models.data import read_numbered

    if path.is_file() and path.stat().st_size == 0:
        return []
    try:
        return [pair for _, pair in read_numbered(path)]
    except ConfigError as error:
        raise ConfigError(f"rl.rm_refresh: {FOLDER}/{folder.name}: {str(error).splitlines()[0][:200]}") from None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# -- built from a run's config -----------------------------------------------------------------

def build_refresher(config: Any, judge: Any, run_path: Path | None, say: Callable[[str], None] | None = None,
                    monitor: Any = None) -> RewardModelRefresher | None:
    """The run's refresher (None when rl.rm_refresh.every is 0). The labelling judge is the
    monitor's audit judge when both are the same judge section (one model loaded, not two)."""
    from judgerl.config import ConfigError
    from judgerl.training.distributed import DataParallel
    from judgerl.training.judge_fields import judge_over
    from judgerl.training.monitor import audit_judge_config

    settings = config.rl.rm_refresh
    if settings.every == 0:
        return None
    model = getattr(judge, "model", None)
    manifest = model.manifest() if hasattr(model, "manifest") else {}
    if manifest.get("kind") != "bradley_terry":
        raise ConfigError(f"rl.rm_refresh: refreshes a bradley_terry reward model; judge.reward_model.path holds a "
                          f"{manifest.get('kind', 'different')} one (set rl.rm_refresh.every: 0)")
    if DataParallel().world_size > 1:
        raise ConfigError("rl.rm_refresh: not available under data parallelism (each process would refresh its "
                          "own copy); run on one process or set rl.rm_refresh.every: 0")
    label_config = judge_over(config.judge, settings.judge)
    audit = getattr(monitor, "audit_judge", None)
    if audit is not None and audit_judge_config(config.judge, config.rl.monitor) == label_config:
        label_judge = audit
    else:
        from judgerl.build import build_judge

        label_judge = build_judge(label_config)
    return RewardModelRefresher(settings, judge, label_judge, run_path, config.seed,
                                old_pairs_of(settings, config.judge), say)


def old_pairs_of(settings: RefreshSettings, judge_config: Any) -> list:
    """rl.rm_refresh.old_pairs, or the data.train files of the reward model's train-rm run folder."""
    from judgerl.reward_models.data import read_many

    paths = settings.old_pairs
    if paths is None:
        from judgerl.config import own_settings
        from judgerl.judges import JUDGES

        path = own_settings(judge_config, "reward_model", JUDGES).path
        run_config = Path(path).expanduser() / "config.yaml" if path else None
        if run_config is None or not run_config.is_file():
            return []
        from judgerl.reward_models.config import load_rm_config

        paths = [p for p in load_rm_config(run_config, check=False).data.train if Path(p).expanduser().is_file()]
    return read_many(paths) if paths else []
