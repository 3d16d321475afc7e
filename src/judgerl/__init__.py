"""judgerl: reinforcement fine-tuning where the reward comes from an LLM judge (RLAIF).

Data flows one way through the package:

    datasets -> policies (rollout) -> judges (via providers) -> algorithms (reward -> update)
             -> training (loop, checkpoints) -> report

A module never imports one further down that line; only `judgerl.cli` imports everything.
"""

__version__ = "0.1.0"

LABELS: tuple[str, ...] = ("Yes", "No", "Maybe")
"""The magic 8-ball's answers, in the order of the policy's output logits."""
