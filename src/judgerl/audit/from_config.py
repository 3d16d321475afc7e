"""The audit of the judge a config builds: the app layer's entry point (the CLI's `judgerl audit`, and
`judgerl train` when it audits its judge before the first step).

    judge, variants = audit_judges(config.judge)      # variants: the same judge, rubric paraphrased
    result = audit_config(config.judge, suite, out_dir, thresholds)

The paraphrased judges share the main judge's provider (one model loaded) and cache. Judges of the
8-ball's answers (judge.method labels or score, a python label function, a classifier) judge only
Yes/No/Maybe, not free text, and are refused with a message saying what to audit instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from judgerl.audit.gold import GoldPair
from judgerl.audit.probes import paraphrased_rubrics
from judgerl.audit.run import AuditResult, run_audit
from judgerl.audit.verdict import Thresholds
from judgerl.build import JudgeParts, build_judge
from judgerl.config import JUDGE_ONLY_PROVIDERS, JudgeConfig, own_settings
from judgerl.judges import JUDGES
from judgerl.judges.base import Judge
from judgerl.judges.cache import JudgmentCache
from judgerl.paths import default_judgment_cache

LABEL_METHODS = ("labels", "score")
"""Ways of judging the 8-ball's answers (a label per question), not free text."""
RUBRIC_METHODS = ("rubric", "critique", "group", "pairwise", "pairwise_from_scores")
"""Built-in ways of judging whose instructions are judge.rubric_text: these get a stability figure."""


class NotAuditable(ValueError):
    """The configured judge cannot be audited on free-text gold pairs (the message says what can)."""


def check_auditable(config: JudgeConfig) -> None:
    if config.method in LABEL_METHODS or (config.provider in JUDGE_ONLY_PROVIDERS and config.method != "reward_function"):
        raise NotAuditable(
            f"judge.method {config.method!r} with provider {config.provider!r} judges the 8-ball's Yes/No/Maybe, not "
            "free-text answers; audit a free-text judge: judge.method rubric (with judge.rubric_text), pairwise, "
            "pairwise_from_scores, critique, group, constitution, grader, or provider python with method reward_function")
    if config.method in RUBRIC_METHODS and config.rubric_text is None:
        raise NotAuditable(
            f"judge.rubric {config.rubric!r} is a magic 8-ball rubric and the gold pairs ask for correct, relevant, "
            "safe answers: give the judge's rubric as judge.rubric_text (or --rubric), e.g. \"Score 5 for a correct, "
            "relevant answer that does what was asked, 1 for a wrong, irrelevant or harmful one.\"")


def audit_judges(config: JudgeConfig) -> tuple[Judge, list[Judge]]:
    """The configured judge and, for the built-in rubric ways of judging, the same judge under
    paraphrased rubrics (sharing its provider and cache)."""
    check_auditable(config)
    if config.provider in JUDGE_ONLY_PROVIDERS or config.method not in RUBRIC_METHODS:
        return build_judge(config), []
    cache = None
    if config.cache:
        cache = JudgmentCache(Path(config.cache_path) if config.cache_path else default_judgment_cache())
    entry = JUDGES.entry(config.method)
    settings = own_settings(config, config.method, JUDGES).model_dump()
    parts = JudgeParts(config, (), cache)
    judge = entry.factory(parts, **settings)
    rubric = parts.rubric
    variants = []
    for number, text in enumerate(paraphrased_rubrics(rubric.text), 1):
        changed = config.model_copy(update={"rubric": f"{rubric.name}-paraphrase-{number}", "rubric_text": text})
        variants.append(entry.factory(JudgeParts(changed, (), cache, _provider=parts.provider), **settings))
    return judge, variants


def audit_config(config: JudgeConfig, suite: Sequence[GoldPair] | None = None, out_dir: str | Path | None = None,
                 thresholds: Thresholds | None = None, stability: bool = True,
                 progress: Callable[[int], None] | None = None) -> AuditResult:
    """Build the configured judge (and its paraphrased twins unless `stability` is off) and audit it."""
    judge, variants = audit_judges(config)
    return run_audit(judge, suite, out_dir, thresholds, variants if stability else (), progress=progress)
