"""Reward models distilled from a judge's preferences (issue 11).

    data.py    the preference-pair JSONL format `judgerl label` writes and train-rm reads
    loss.py    the Bradley–Terry loss (margin, TRL's reward centring) and held-out numbers
    model.py   BradleyTerryRewardModel: a scalar head on a local causal-LM backbone; save/load
    config.py  the `judgerl train-rm` config (YAML, validated by pydantic)
    train.py   training in a run folder: metrics per epoch, checkpoints, resume
    report.py  the run's report.md
    judge.py   a trained reward model as a judge (judge.method: reward_model)

Importing this package imports neither torch nor transformers; model.py and train.py do.
"""
