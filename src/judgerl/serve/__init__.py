"""`judgerl serve CONFIG`: any judge a config builds, behind HTTP (starlette + uvicorn).

    POST /get_reward        OpenRLHF's remote reward model protocol (openrlhf.py)
    POST /slime, /slime/dict  slime's --rm-url shape: a scalar, or a dict read with --reward-key (slime.py)
    POST /v1/judge          judgerl's own: pointwise, pairwise or group, full judgment records (v1.py)
    POST /v1/rewards        TRL-shaped: {"prompts", "completions", columns...} -> {"rewards": [float | null]}
    GET  /health, /metrics  liveness (and a judge stuck past its timeout), Prometheus text (metrics.py)

Requests arriving within a short window are judged in one batch (batching.py), so a group
judge sees a prompt's completions together and a batching judge is as fast served as in-process.
Unscored is never a number: `null` in every protocol (why, per engine, in each protocol's file).
"""
