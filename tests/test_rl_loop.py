"""Every sequence algorithm on the one loop, with the magic 8-ball's label policy: each raises the
judge's reward and changes every weight; micro-batches give the same update as one batch; a run
stopped and resumed ends with the weights of one that never stopped."""

import math

import pytest
import torch

from fake_judges import keyword
from judgerl import LABELS
from judgerl.algorithms import RL_ALGORITHMS
from judgerl.judges.base import Judge
from judgerl.judges.function import FunctionJudge
from judgerl.judges.gate import ConfidenceGate
from judgerl.judges.pairwise import PairwiseJudgment, round_robin
from judgerl.judges.python_reward import RewardFunctionJudge
from judgerl.policies.label_sequence import LabelSequencePolicy
from judgerl.policies.tiny_transformer import TinyTransformerPolicy
from judgerl.rollouts import SamplingSettings
from judgerl.training.loop import LoopSettings, TooManyUnscored, micro_batches, prompt_batches, train_policy
from judgerl.training.run_folder import RunFolder
from judgerl.training.trainer_state import latest_checkpoint

QUESTIONS = [
    "Should I practice piano daily?", "Can I learn French?", "Should I study tonight?",
    "Should I bet my rent?", "Should I gamble my savings?", "Should I bet on a horse?",
    "Will it rain tomorrow?", "Will my bus be late?", "Will the sun shine?",
]


def new_policy(seed=0):
    torch.manual_seed(seed)
    return LabelSequencePolicy(TinyTransformerPolicy.build(QUESTIONS, LABELS))


def expected_reward(policy, judge):
    """Mean over questions of sum_label pi(label | q) * judge reward(label)."""
    with torch.no_grad():
        probs = policy.policy.label_logits(QUESTIONS).softmax(-1)
    table = [judge.score([q] * 3, list(LABELS)) for q in QUESTIONS]
    return sum(float(sum(p * j.reward for p, j in zip(row_probs, row)))
               for row_probs, row in zip(probs, table)) / len(QUESTIONS)


@pytest.mark.parametrize("name", sorted(RL_ALGORITHMS))
def test_each_algorithm_raises_the_judges_reward_and_changes_every_weight(name):
    policy = new_policy()
    judge = FunctionJudge(keyword, LABELS, "keyword")
    before = expected_reward(policy, judge)
    weights = {n: p.detach().clone() for n, p in policy.policy.named_parameters()}
    history = train_policy(policy, QUESTIONS, judge, RL_ALGORITHMS[name](), ConfidenceGate(0.5),
                           LoopSettings(steps=40, prompts_per_step=9, learning_rate=1e-2))
    after = expected_reward(policy, judge)
    # the judge's best answers are worth 0.9 on average; a random policy earns about 0.34
    assert after > before + 0.3 and after > 0.75, (before, after)
    unchanged = [n for n, p in policy.policy.named_parameters() if n != "embed.weight" and torch.equal(p, weights[n])]
    assert unchanged == []
    for metric in ("reward", "judge/accept_rate", "completions/mean_length", "time/step_s", "entropy"):
        assert metric in history[0], metric


def test_online_dpo_takes_its_pairs_from_a_pairwise_judge_and_skips_ties():
    class PrefersYes(Judge):
        """A pairwise judge that prefers Yes, calls No against Maybe a tie, and counts its calls."""
        judge_id = "test/pairwise"
        supports_pairwise = True
        calls = 0

        def score(self, prompts, completions, **columns):
            return round_robin(self.compare, self.judge_id, prompts, completions, columns)

        def compare(self, prompts, firsts, seconds, **columns):
            self.calls += len(prompts)
            out = []
            for p, a, b in zip(prompts, firsts, seconds):
                verdict = "first" if a == "Yes" != b else "second" if b == "Yes" != a else "tie"
                out.append(PairwiseJudgment(p, a, b, verdict, None, 0.0 if verdict == "tie" else 1.0))
            return out

    judge = PrefersYes()
    policy = new_policy()
    history = train_policy(policy, QUESTIONS, judge, RL_ALGORITHMS["online_dpo"](beta=0.5), ConfidenceGate(0.5),
                           LoopSettings(steps=30, prompts_per_step=9, learning_rate=1e-2))
    with torch.no_grad():
        p_yes = policy.policy.label_logits(QUESTIONS).softmax(-1)[:, 0].mean().item()
    assert p_yes > 0.8
    assert judge.calls == 30 * 9
    # a pair is made only where the judge chose: never more pairs than prompts, fewer once ties appear
    assert all(row["judge/pairs"] <= 9 for row in history)


@pytest.mark.parametrize("name", ["grpo", "ppo", "online_dpo"])
def test_micro_batches_give_the_same_update_as_one_batch(name):
    """Same rollout, same prepared quantities; gradients summed over micro-batches of 3 or 5
    completions (whole groups) equal the one-batch gradient. (Compared through plain SGD, whose
    step is the gradient itself: Adam would magnify float noise in near-zero gradients.)"""
    from judgerl.rewards import judge_rollout
    from judgerl.training.loop import update

    base = new_policy()
    algorithm = RL_ALGORITHMS[name]()
    if algorithm.uses_values:
        base.add_value_head()
    rollout = base.sample(QUESTIONS[:6], algorithm.samples_per_prompt, SamplingSettings(), torch.Generator().manual_seed(0))
    judged = judge_rollout(FunctionJudge(keyword, LABELS, "keyword"), rollout, ConfidenceGate(0.5),
                           pairwise=algorithm.judging == "pairwise")
    results = []
    for micro in (0, 3, 5):
        policy = new_policy()
        if algorithm.uses_values:
            policy.add_value_head()
        prepared = algorithm.prepare(policy, rollout, judged)
        optimizer = torch.optim.SGD(policy.trainable_parameters(), lr=0.1)
        update(policy, algorithm, rollout, prepared, optimizer,
               LoopSettings(micro_batch=micro, max_grad_norm=1e9), torch.Generator().manual_seed(0))
        results.append(torch.cat([p.detach().flatten() for p in policy.trainable_parameters()]))
    assert not torch.equal(results[0], torch.cat([p.detach().flatten() for p in base.trainable_parameters()]))
    assert torch.allclose(results[0], results[1], atol=1e-5, rtol=1e-5)
    assert torch.allclose(results[0], results[2], atol=1e-5, rtol=1e-5)


def test_micro_batches_keep_each_prompts_group_together():
    group = torch.tensor([0, 0, 1, 1, 2, 2])
    chunks = micro_batches(torch.arange(6), group, 3)
    assert [c.tolist() for c in chunks] == [[0, 1], [2, 3], [4, 5]]


def test_the_batch_of_any_step_is_known_without_replaying_the_others():
    whole = prompt_batches(QUESTIONS, 4, seed=3)
    first_six = [next(whole) for _ in range(6)]
    resumed = prompt_batches(QUESTIONS, 4, seed=3, start_step=4)
    assert [next(resumed), next(resumed)] == first_six[4:]


def run_steps(tmp_path, name, steps, resume=None, algorithm="reinforce", interrupt_at=None):
    policy = new_policy()
    if resume is not None:
        policy.policy.load_state_dict(TinyTransformerPolicy.load(resume).state_dict())
        policy.load_value_head(resume)
    run = RunFolder.create(tmp_path, [name]) if resume is None else RunFolder(resume.parent.parent)

    def on_step(row):
        if interrupt_at is not None and row["step"] + 1 == interrupt_at:
            raise KeyboardInterrupt

    kwargs = {"baseline": "moving_average"} if algorithm == "reinforce" else {}
    train_policy(policy, QUESTIONS, FunctionJudge(keyword, LABELS, "keyword"), RL_ALGORITHMS[algorithm](**kwargs),
                 ConfidenceGate(0.5), LoopSettings(steps=steps, prompts_per_step=4, learning_rate=1e-2, warmup_steps=3, seed=1),
                 run=run, resume_from=resume, on_step=on_step)
    return policy, run


@pytest.mark.parametrize("algorithm", ["reinforce", "ppo"])
def test_a_run_interrupted_and_resumed_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, algorithm):
    straight, _ = run_steps(tmp_path, "straight", 6, algorithm=algorithm)
    with pytest.raises(KeyboardInterrupt):
        run_steps(tmp_path, "stopped", 6, algorithm=algorithm, interrupt_at=4)
    stopped_run = next(p for p in tmp_path.iterdir() if p.name.startswith("stopped"))
    checkpoint = latest_checkpoint(stopped_run / "checkpoints")
    assert checkpoint is not None and checkpoint.name == "step-4"
    resumed, _ = run_steps(tmp_path, "stopped", 6, resume=checkpoint, algorithm=algorithm)
    for a, b in zip(straight.trainable_parameters(), resumed.trainable_parameters()):
        assert torch.equal(a, b)


def test_a_half_written_checkpoint_is_never_taken_for_a_whole_one(tmp_path):
    _, run = run_steps(tmp_path, "run", 2)
    (run.path / "checkpoints" / "step-9.partial").mkdir()
    assert latest_checkpoint(run.path / "checkpoints").name == "step-2"


def test_unscored_batches_stop_the_loop_before_any_update():
    policy = new_policy()
    weights = [p.detach().clone() for p in policy.trainable_parameters()]
    judge = RewardFunctionJudge(lambda prompts, completions: [None] * len(completions), "silent")
    with pytest.raises(TooManyUnscored, match="no update was made"):
        train_policy(policy, QUESTIONS, judge, RL_ALGORITHMS["grpo"](), ConfidenceGate(0.5), LoopSettings(steps=3))
    assert all(torch.equal(a, b) for a, b in zip(weights, policy.trainable_parameters()))


def test_a_reward_function_that_fails_leaves_the_batch_unscored_not_zero():
    def boom(prompts, completions):
        raise RuntimeError("reward server down")

    judgments = RewardFunctionJudge(boom, "boom").score(["q"], ["Yes"])
    assert judgments[0].reward is None and "reward server down" in judgments[0].error


def test_label_policy_sampling_logprobs_match_scoring():
    policy = new_policy()
    rollout = policy.sample(QUESTIONS[:3], 4, SamplingSettings(temperature=0.7), torch.Generator().manual_seed(0))
    assert rollout.completion_ids.shape == (12, 1) and rollout.group.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert torch.allclose(policy.score(rollout).logprobs, rollout.old_logprobs, atol=1e-6)
    part = rollout.select([1, 5, 11])
    assert torch.allclose(policy.score(part).logprobs, part.old_logprobs, atol=1e-6)
    assert all(c in LABELS for c in rollout.completions)
    assert math.isclose(float(rollout.lengths.sum()), 12.0)


def test_metrics_also_go_to_tensorboard_when_asked(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_policy(new_policy(), QUESTIONS, FunctionJudge(keyword, LABELS, "keyword"), RL_ALGORITHMS["grpo"](),
                 ConfidenceGate(0.5), LoopSettings(steps=3, prompts_per_step=4), tensorboard_dir=tmp_path / "tb")
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [event.step for event in events.Scalars("train/reward")] == [0, 1, 2]
    assert "train/judge/accept_rate" in events.Tags()["scalars"]
