"""An example judgerl plugin: a provider, a way of judging, an algorithm and a task, registered through
the same registries as judgerl's own, each with its own settings (a pydantic model, help on
every field). A config names them and sets their settings in sections named after them:

    plugins: [judgerl_example_plugin]       # imported before the config is checked
    judge:
      provider: echo                        # PROVIDERS
      model: echo-7                         # a flat field fills the setting of the same name
      echo: {favourite: "Yes"}              # EchoSettings
      method: likes                         # JUDGES
      likes: {bonus: 0.8}                   # LikesSettings
    rl:
      algorithm: scaled_reinforce           # RL_ALGORITHMS
      scaled_reinforce: {scale: 0.5}        # ScaledSettings
    task: short_questions                   # TASKS

(examples/plugin/plugin.yaml). An installed package can instead advertise the module in the
entry point group `judgerl.plugins`:

    [project.entry-points."judgerl.plugins"]
    example = "judgerl_example_plugin"

A misspelt name or setting is refused with a did-you-mean before anything runs. tests/test_plugins.py
runs this file with `judgerl train`.
"""

from pydantic import BaseModel, Field

from judgerl.algorithms import register_rl_algorithm
from judgerl.algorithms.reinforce import Reinforce
from judgerl.judges import register_judge
from judgerl.judges.base import Judgment
from judgerl.providers import register_provider
from judgerl.tasks import TASKS
from judgerl.tasks.eightball import EightBallTask


class EchoSettings(BaseModel):
    model: str = Field("echo-1", description="the model's name")
    favourite: str = Field("Yes", description="the answer this provider likes")


class EchoProvider:
    """Says 1 when the text holds its favourite word, else 0. A provider is called with its own
    settings as keywords (`EchoSettings`), and has `name`, `identity()` and `next_token_logprobs`."""

    def __init__(self, model, favourite):
        self.name, self.favourite = f"echo/{model}", favourite

    def identity(self):
        return {"provider": "echo", "model": self.name}

    def next_token_logprobs(self, messages, top_k):
        liked = self.favourite in messages[-1]["content"]
        return {"top_logprobs": [["1" if liked else "0", 0.0]], "text": "1" if liked else "0",
                "prompt_tokens": None, "completion_tokens": None, "latency_s": 0.0}


class LikesSettings(BaseModel):
    bonus: float = Field(1.0, ge=0, le=1, description="reward of a completion the provider likes")


class LikesJudge:
    """The judge contract: score(prompts, completions, **columns) -> one Judgment each. A way of
    judging is built by factory(parts, **its own settings); `parts.provider` is the configured
    provider (see judgerl.build.JudgeParts for the rest: rubric, scale, labels, cache, config)."""

    supports_pairwise = False
    supports_groups = False

    def __init__(self, provider, bonus):
        self.provider, self.bonus = provider, bonus

    def score(self, prompts, completions, **columns):
        judgments = []
        for prompt, completion in zip(prompts, completions):
            said = self.provider.next_token_logprobs([{"role": "user", "content": completion}], 1)["text"]
            reward = self.bonus if said == "1" else 0.0
            judgments.append(Judgment(kind="score", question=prompt, answer=completion, status="scored",
                                      judge_id=f"likes/{self.provider.name}", score=reward, reward=reward,
                                      confidence=1.0))
        return judgments


class ScaledSettings(BaseModel):
    scale: float = Field(1.0, gt=0, description="the loss is multiplied by this")
    samples_per_prompt: int = Field(4, ge=1, description="completions sampled per prompt")


class ScaledReinforce(Reinforce):
    """REINFORCE with its loss scaled. An algorithm is called with its own settings only."""

    name = "scaled_reinforce"

    def __init__(self, scale, samples_per_prompt):
        super().__init__(samples_per_prompt=samples_per_prompt)
        self.scale = scale

    def loss(self, policy, rollout, per_row):
        total, metrics = super().loss(policy, rollout, per_row)
        return total * self.scale, {**metrics, "plugin/scale": self.scale}


class ShortQuestionsTask(EightBallTask):
    """The 8-ball trained with RL on its short questions only (at most `MAX_WORDS` words). A task is
    built from the run's config and supplies the policy, the judge, the RL prompts, the held-out
    evaluation and what it leaves after RL (judgerl.tasks.Task); here all but the prompts are the 8-ball's."""

    name = "short_questions"
    MAX_WORDS = 6

    def rl_prompts(self):
        return [question for question in super().rl_prompts() if len(question.split()) <= self.MAX_WORDS]


register_provider("echo", EchoProvider, settings=EchoSettings, help="says 1 for its favourite word")
register_judge("likes", lambda parts, bonus: LikesJudge(parts.provider, bonus), settings=LikesSettings,
               help="bonus when the provider likes the completion")
register_rl_algorithm("scaled_reinforce", ScaledReinforce, settings=ScaledSettings)
TASKS.register("short_questions", ShortQuestionsTask, help="the 8-ball on its short questions only")
