"""Reward models distilled from a judge's preferences (issue 11).

    data.py      the preference-pair JSONL format `judgerl label` writes and train-rm reads
    loss.py      the Bradley–Terry loss (margin, TRL's reward centring) and held-out numbers
    kinds.py     the kinds of reward model (model.kind; a saved model's manifest "kind"), a registry
    model.py     BradleyTerryRewardModel: a scalar head on a local causal-LM backbone; save/load
                 (bradley_terry_kind.py: the kind that trains it)
    critiques.py (prompt, completion, critique) as token ids; the checks a critique must pass
    critique_conditioned.py  the head reads the judge's critique too (Ye et al. 2024)
    cloud.py, cloud_train.py Critique-out-Loud: the model writes its own critique, then scores (Ankner et al. 2024)
    saved.py     loading a saved critique-kind model (manifest checked, backbone or LoRA adapter)
    config.py    the `judgerl train-rm` config (YAML, validated by pydantic)
    train.py     training in a run folder: metrics per epoch, checkpoints, resume (any kind)
    report.py    the run's report.md
    judge.py     a trained reward model as a judge (judge.method: reward_model), any kind

Importing this package imports neither torch nor transformers; the model and training modules do.
"""
