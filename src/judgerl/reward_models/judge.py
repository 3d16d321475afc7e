"""A trained reward model as a judge (`judge: {method: reward_model, reward_model: {path: ...}}`).

    score(prompts, completions)  -> Judgment(kind="score", score = the raw reward r,
                                    reward = σ((r − offset) / temperature) in [0, 1], confidence None)
    compare(prompts, a, b)       -> PairwiseJudgment with P(a ≻ b) = σ(r_a − r_b)

The squashing is the Bradley–Terry model's own: σ(r_a − r_b) is the probability the model was
trained to give that a beats b, so σ(r − offset) is the probability that the completion beats one
whose reward is `offset` (0 by default; a model trained with reward centring has its rewards
around 0). A pointwise judgment has no confidence: a reward model states no uncertainty about a
single completion. A pairwise verdict's confidence is the probability of the side it picks,
max(p, 1 − p), which is what the model was trained to estimate.

A non-finite reward (a broken model) is unscored, never a reward. Torch and the model are
loaded only when the judge is built, by the kind its manifest names (kinds.py).

The critique kinds: a critique_conditioned model reads a critique of each completion: the
`critique` column when the data has one, else the critique the critic judge
(judge.reward_model.critic, e.g. `critique`) writes; a completion left without a usable critique
(none, empty, not a string) is unscored, never given a reward. A cloud model writes its own
critique. Either way the Judgment carries the critique it was scored with (`critique`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

from pydantic import BaseModel, Field, field_validator

from judgerl.errors import JudgeError
from judgerl.judges.base import Judgment, check_columns

if TYPE_CHECKING:
    from judgerl.judges.pairwise import PairwiseJudgment


class RewardModelJudgeSettings(BaseModel):
    """judge.reward_model: {...}"""

    path: str | None = Field(None, validate_default=True, description="a reward model folder (with reward_model.json) "
                             "or a `judgerl train-rm` run folder (its newest whole epoch checkpoint is used)")
    batch_size: int = Field(16, ge=1, description="completions per forward pass")
    offset: float = Field(0.0, allow_inf_nan=False, description="reward = σ((r − offset) / temperature): the raw "
                          "reward that maps to 0.5")
    temperature: float = Field(1.0, gt=0, allow_inf_nan=False, description="reward = σ((r − offset) / temperature)")
    min_margin: float = Field(0.0, ge=0.0, le=0.5, description="compare: |P(first better) − 1/2| below this is a tie")
    compute_dtype: Literal["as_saved", "float32", "bfloat16"] = Field(
        "as_saved", description="the matmul dtype the reward model scores with: as_saved (the one it was trained "
        "with), float32, or bfloat16 (about 2.4x faster on this CPU, rewards within about 1%; Llama / Qwen2 "
        "backbones of bradley_terry and critique_conditioned models)")
    critic: str | None = Field(None, description="critique_conditioned models: the judge method that writes each "
                               "completion's critique when the data has no `critique` column (e.g. critique), built "
                               "from this judge section's provider and rubric")

    @field_validator("critic")
    @classmethod
    def _a_critic(cls, critic: str | None) -> str | None:
        if critic == "reward_model":
            raise ValueError("judge.reward_model.critic must be a judge method that writes critiques (e.g. critique), "
                             "not reward_model")
        return critic

    @field_validator("path")
    @classmethod
    def _given(cls, path: str | None) -> str | None:
        if not path:
            raise ValueError("judge.method reward_model needs judge.reward_model.path: a reward model or train-rm "
                             "run folder")
        return path


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


class RewardModelJudge:
    supports_pairwise = True
    supports_groups = False
    supports_streaming = False
    """Batches are padded together: a completion's reward may differ in the last float bits with its
    batch, so it does not promise the same judgment judged alone."""
    concurrent_calls = 1

    def __init__(self, model: Any, name: str, batch_size: int = 16, offset: float = 0.0, temperature: float = 1.0,
                 min_margin: float = 0.0, critic: Any = None):
        self.model = model
        self.critic = critic
        """A judge whose judgments carry a `critique` (critique_conditioned models only)."""
        self.judge_id = f"reward_model/{name}"
        self.batch_size, self.offset, self.temperature, self.min_margin = batch_size, offset, temperature, min_margin
        self.counters = {"calls": 0, "cache_hits": 0, "failed_calls": 0, "call_seconds": 0.0}

    def raw_rewards(self, prompts: Sequence[Any], completions: Sequence[str], critiques: Sequence[str] | None = None,
                    ) -> tuple[list[float] | None, list[str] | None, str | None]:
        """(one raw reward per completion, the critiques the model wrote or None, None), or
        (None, None, why they could not be computed)."""
        started = time.perf_counter()
        self.counters["calls"] += 1
        written = None
        try:
            if getattr(self.model, "writes_critique", False):
                tensor, written = self.model.critique_and_rewards(prompts, completions, batch_size=self.batch_size)
            elif getattr(self.model, "needs_critique", False):
                tensor = self.model.rewards(prompts, completions, batch_size=self.batch_size, critiques=critiques)
            else:
                tensor = self.model.rewards(prompts, completions, batch_size=self.batch_size)
            rewards = tensor.tolist()
        except (RuntimeError, ValueError, IndexError) as error:  # torch's errors; a prompt the template refuses
            self.counters["failed_calls"] += 1
            return None, None, f"the reward model failed: {type(error).__name__}: {str(error)[:200]}"
        finally:
            self.counters["call_seconds"] += time.perf_counter() - started
        return rewards, written, None

    def critiques_for(self, prompts: Sequence[Any], completions: Sequence[str],
                      columns: dict[str, Sequence[Any]]) -> list[tuple[str | None, str | None]]:
        """(critique, None) or (None, why there is none) per completion, for a model that reads one."""
        from judgerl.reward_models.critiques import CritiqueError, checked_critique

        if "critique" in columns:
            given, source = list(columns["critique"]), "the critique column"
        elif self.critic is not None:
            rest = {name: values for name, values in columns.items() if name != "critique"}
            source = f"the critic judge {self.critic.judge_id}"
            try:
                given = [j.critique for j in self.critic.score(prompts, completions, **rest)]
            except (JudgeError, RuntimeError, ValueError, OSError) as error:
                return [(None, f"{source} failed: {type(error).__name__}: {str(error)[:200]}")] * len(completions)
        else:
            reason = ("a critique_conditioned reward model reads a critique of each completion: give a `critique` "
                      "column or judge.reward_model.critic (a judge method that writes one, e.g. critique)")
            return [(None, reason)] * len(completions)
        found: list[tuple[str | None, str | None]] = []
        for value in given:
            try:
                found.append((checked_critique(value), None))
            except CritiqueError as error:
                found.append((None, f"{source}: {error}; unscored rather than a reward made up without it"))
        return found

    def score(self, prompts: Sequence[Any], completions: Sequence[str], **columns: Sequence[Any]) -> list[Judgment]:
        """One judgment per completion; dataset columns are accepted (a critique_conditioned model
        reads `critique`), the others not used."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        check_columns(columns, len(completions))
        if not completions:
            return []
        started = time.perf_counter()
        n = len(completions)
        critiques: list[tuple[str | None, str | None]] = [(None, None)] * n
        if getattr(self.model, "needs_critique", False):
            critiques = self.critiques_for(prompts, completions, dict(columns))
        rows = [i for i in range(n) if critiques[i][1] is None]  # the completions that can be scored
        rewards, written, error = self.raw_rewards(
            [prompts[i] for i in rows], [completions[i] for i in rows], [critiques[i][0] for i in rows]) \
            if rows else (None, None, None)
        latency = (time.perf_counter() - started) / n
        judgments = [self._judgment(prompt, completion, None, critiques[i][1] or error, latency)
                     for i, (prompt, completion) in enumerate(zip(prompts, completions))]
        for place, i in enumerate(rows):
            judgments[i] = self._judgment(prompts[i], completions[i], rewards[place] if rewards else None, error,
                                          latency)
            judgments[i].critique = written[place] if written is not None else critiques[i][0]
        return judgments

    def _judgment(self, prompt: Any, completion: str, raw: float | None, error: str | None,
                  latency: float) -> Judgment:
        question = prompt if isinstance(prompt, str) else str(prompt)
        judgment = Judgment(kind="score", question=question, answer=completion, status="unscored",
                            judge_id=self.judge_id, latency_s=latency)
        if raw is None:
            judgment.error = error
        elif not math.isfinite(raw):
            judgment.error = f"the reward model gave a non-finite reward ({raw})"
        else:
            judgment.status, judgment.score = "scored", raw
            judgment.reward = _sigmoid((raw - self.offset) / self.temperature)
            judgment.details = {"raw_reward": raw}
        return judgment

    def compare(self, prompts: Sequence[Any], firsts: Sequence[str], seconds: Sequence[str],
                **columns: Sequence[Any]) -> list[PairwiseJudgment]:
        """One verdict per pair: P(first ≻ second) = σ(r_first − r_second); columns are not used."""
        from judgerl.judges.pairwise import PairwiseJudgment

        n = len(prompts)
        if not (len(firsts) == len(seconds) == n):
            raise ValueError(f"{n} prompts, {len(firsts)} firsts and {len(seconds)} seconds")
        check_columns(columns, n)
        judged = self.score(list(prompts) * 2, list(firsts) + list(seconds))
        verdicts = []
        for i in range(n):
            a, b = judged[i], judged[n + i]
            if not (a.scored and b.scored):
                errors = "; ".join(j.error for j in (a, b) if j.error)
                verdicts.append(PairwiseJudgment(a.question, firsts[i], seconds[i], "invalid", None, 0.0, [a, b], errors))
                continue
            p_first = _sigmoid(a.score - b.score)  # type: ignore[operator]
            tie = abs(p_first - 0.5) < self.min_margin or a.score == b.score
            verdict = "tie" if tie else ("first" if p_first > 0.5 else "second")
            verdicts.append(PairwiseJudgment(a.question, firsts[i], seconds[i], verdict, p_first,
                                             0.0 if tie else max(p_first, 1 - p_first), [a, b]))
        return verdicts


def resolve_model_folder(path: str | Path) -> Path:
    """A reward model folder, or a train-rm run folder's newest whole epoch checkpoint; JudgeError else."""
    from judgerl.reward_models.model import MANIFEST

    folder = Path(path).expanduser()
    if (folder / MANIFEST).is_file():
        return folder
    if not folder.is_dir():
        raise JudgeError(f"judge.reward_model.path: {str(folder)!r} does not exist")
    if (folder / "checkpoints").is_dir():
        from judgerl.reward_models.train import newest_verified_epoch

        newest = newest_verified_epoch(folder)
        if newest is None:
            raise JudgeError(f"judge.reward_model.path: run folder {str(folder)!r} has no whole epoch checkpoint yet")
        return newest
    raise JudgeError(f"judge.reward_model.path: {str(folder)!r} is neither a reward model folder (with {MANIFEST}) "
                     "nor a train-rm run folder")


def load_reward_model_judge(path: str | Path, compute_dtype: str = "as_saved", **settings: Any) -> RewardModelJudge:
    """The reward model in `path` (its manifest's kind loads it) as a judge; JudgeError in one line."""
    from judgerl.reward_models.kinds import KindManifestError, load_reward_model
    from judgerl.reward_models.model import RewardModelLoadError

    folder = resolve_model_folder(path)
    try:
        model = load_reward_model(folder, None if compute_dtype == "as_saved" else compute_dtype)
    except (RewardModelLoadError, KindManifestError) as error:
        raise JudgeError(f"judge.reward_model.path: {error}") from None
    name = folder.name if folder.parent.name != "checkpoints" else f"{folder.parent.parent.name}/{folder.name}"
    return RewardModelJudge(model, name, **settings)


def reward_model_judge(parts: Any, path: str, batch_size: int, offset: float, temperature: float,
                       min_margin: float, critic: str | None = None, compute_dtype: str = "as_saved") -> RewardModelJudge:
    """The JUDGES factory. `parts` (judgerl.build.JudgeParts) is used only to build the critic, a
    judge of this judge section (its provider, rubric and judge.<critic> settings)."""
    judge = load_reward_model_judge(path, compute_dtype, batch_size=batch_size, offset=offset,
                                    temperature=temperature, min_margin=min_margin)
    if critic is not None:
        if not getattr(judge.model, "needs_critique", False):
            raise JudgeError(f"judge.reward_model.critic: the {getattr(judge.model, 'kind', 'bradley_terry')} reward "
                             "model reads no judge's critique; leave critic unset")
        judge.critic = build_critic(parts, critic)
    return judge


def build_critic(parts: Any, method: str) -> Any:
    """The judge method `method` built as judgerl.build builds any judge: from the registry, with
    this judge section's shared settings and its own (judge.<method>)."""
    from judgerl.config.components import own_settings
    from judgerl.judges import JUDGES
    from judgerl.registry import UnknownName

    try:
        entry = JUDGES.entry(method)
    except UnknownName as error:
        raise JudgeError(f"judge.reward_model.critic: {error}") from None
    return entry.factory(parts, **own_settings(parts.config, method, JUDGES).model_dump())
