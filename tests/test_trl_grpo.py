"""A real trl.GRPOTrainer, 2 steps on a tiny offline model, rewarded by a judgerl judge through
judgerl.integrations.trl: the reference column reaches the judge, judgerl's metrics reach TRL's
logs, None rewards stay out, and the weights move. Under a minute on 2 CPU cores."""

import os

import pytest

pytest.importorskip("trl")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402

from fake_judges import ScriptedProvider  # noqa: E402
from judgerl.integrations.trl import make_reward_function  # noqa: E402
from judgerl.judges.pointwise import RubricJudge  # noqa: E402
from judgerl.providers.http import ProviderError  # noqa: E402
from tiny_hf import causal_lm, tokenizer  # noqa: E402

pytestmark = pytest.mark.slow


def test_grpo_trainer_runs_two_steps_with_a_judgerl_reward(tmp_path):
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(1)
    os.environ.setdefault("WANDB_DISABLED", "true")
    seen = []

    def answer(messages):  # the scripted judge: 5 when the answer holds the reference, else 1; one outage
        content = messages[-1]["content"]
        seen.append(content)
        if len(seen) == 3:
            return ProviderError("judge down (scripted)")
        reference = content.split("<reference>\n")[1].split("\n")[0]
        answer_text = content.split("<response>\n")[1].split("\n</response>")[0]
        return [("5", -0.01), ("1", -5.0)] if reference in answer_text.split() else [("1", -0.01), ("5", -5.0)]

    judge = RubricJudge(ScriptedProvider(answer), "Answers that give the reference score high.", name="reference")
    reward = make_reward_function(judge, num_generations=4)
    tok = tokenizer()
    model = causal_lm(len(tok))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    data = Dataset.from_list([{"prompt": "the question is", "reference": "good"},
                              {"prompt": "is the answer", "reference": "Yes"}] * 4)
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_steps=2,
                      max_completion_length=4, learning_rate=5e-2, logging_steps=1, report_to=[], use_cpu=True,
                      save_strategy="no", seed=0, dataloader_num_workers=0)
    trainer = GRPOTrainer(model=model, processing_class=tok, reward_funcs=[reward], args=args, train_dataset=data)
    trainer.train()

    assert trainer.state.global_step == 2
    assert seen and all("<reference>\n" in content for content in seen)  # the dataset column reached the judge
    logs = [entry for entry in trainer.state.log_history if "judgerl/unscored_share" in entry]
    assert len(logs) == 2
    assert all(0 <= entry["judgerl/accept_rate"] <= 1 and entry["judgerl/judge_seconds"] >= 0 for entry in logs)
    assert any(entry["judgerl/unscored_share"] > 0 for entry in logs)  # the scripted outage, reported
    assert f"rewards/{reward.__name__}/mean" in trainer.state.log_history[0]
    moved = [name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])]
    assert moved  # the judge's rewards moved the weights
