"""`judgerl audit`: can this judge be trusted to give the reward? (issue 10)

Any judge of the one contract is run over gold pairs (a prompt, a good answer, a bad twin) in nine
kinds (factual, relevance, instruction_following, format, refusal, padding, injection, master_key,
flattery) and over probes (one answer padded to several lengths, the same answer decorated, the
rubric paraphrased), and passes or fails against thresholds, saying what failed and what to use
instead where that is known.

    from judgerl.audit import run_audit, builtin_suite, Thresholds
    result = run_audit(judge, builtin_suite(), out_dir="audit", thresholds=Thresholds(overall=0.9))
    result.passed, result.failures, result.advice, result.figures

Modules: `gold` (the suite, package data in gold/*.jsonl, and user files), `probes` (length,
decoration and rubric variants), `metrics` (the figures, pure functions), `pointwise` / `pairwise`
(auditing through score / compare), `timing` (judgments/s, cost), `verdict` (thresholds, pass/fail,
advice), `report` (audit.json, audit.md, plots), `run` (run_audit), `from_config` (the judge a
config builds, with paraphrased twins: the entry point for the CLI and for training).
"""

from judgerl.audit.gold import KINDS, GoldError, GoldPair, builtin_suite, load_gold
from judgerl.audit.run import AuditResult, run_audit
from judgerl.audit.verdict import Thresholds

__all__ = ["KINDS", "AuditResult", "GoldError", "GoldPair", "Thresholds", "builtin_suite", "load_gold", "run_audit"]
