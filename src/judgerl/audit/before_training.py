"""`judge.audit: true`: `judgerl train` audits its judge on the built-in gold suite before anything
else runs (before SFT: a judge that fails costs no training), and refuses a judge that fails,
saying what failed and what to use instead.

The result is cached by the judge's identity: everything in the judge section that changes a
verdict (provider, model, method, rubric, scale, defences, ...; not how the judge is reached:
concurrency, retries, timeouts, keys, cache, budget, prices), the thresholds and the gold suite's
files. A second run of the same judge reads the cached audit.json and makes no model call.

    ~/.cache/judgerl/audits/<sha256 of identity>.json     the cached AuditResult
    RUN/audit/                                             audit.json, audit.md, plots (a fresh audit)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

from judgerl.audit.from_config import NotAuditable, audit_config
from judgerl.audit.run import AuditResult
from judgerl.audit.verdict import Thresholds
from judgerl.config import ConfigError, JudgeConfig
from judgerl.errors import JudgeError
from judgerl.paths import cache_dir

HOW_REACHED = frozenset({"max_concurrency", "requests_per_minute", "tokens_per_minute", "max_retries", "timeout_s",
                         "price_input_per_million", "price_output_per_million", "budget", "api_key_env",
                         "api_key_file", "threads", "cache", "cache_path", "audit", "audit_thresholds"})
"""Judge fields that change how the judge is reached or accounted, not what it answers."""

GOLD = Path(__file__).parent / "gold"


class JudgeAuditFailed(JudgeError):
    """The judge failed its audit before training (judge.audit); no training was done."""


def audit_identity(config: JudgeConfig, thresholds: Thresholds) -> str:
    """sha256 over what the judge answers (its verdict-changing settings), the thresholds and the suite."""
    judge = {name: value for name, value in config.model_dump(mode="json").items() if name not in HOW_REACHED}
    suite = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(GOLD.glob("*.jsonl"))}
    blob = json.dumps({"judge": judge, "thresholds": thresholds.to_dict(), "suite": suite}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _cached_result(path: Path) -> AuditResult | None:
    """The cached audit, or None when there is none or it cannot be read back whole (a truncated or
    edited file is audited again, never trusted)."""
    try:
        return AuditResult.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except Exception:  # anything a damaged file can raise: JSON, a missing key, a wrong type
        return None


def audit_before_training(config: JudgeConfig, run_dir: Path, say: Callable[[str], Any] = print,
                          audits: Path | None = None) -> AuditResult:
    """The judge's audit (cached, or run now into run_dir/audit); raises JudgeAuditFailed on FAIL."""
    try:
        thresholds = Thresholds.with_overrides(config.audit_thresholds)
    except ValueError as error:
        raise ConfigError(f"judge.audit_thresholds: {error}") from None
    cached = (audits or cache_dir() / "audits") / f"{audit_identity(config, thresholds)}.json"
    result = _cached_result(cached)
    if result is not None:
        (run_dir / "audit").mkdir(parents=True, exist_ok=True)
        (run_dir / "audit" / "audit.json").write_text(cached.read_text())
        say(f"judge audit (cached from an earlier run of the same judge, no model call): {result.summary()}")
    else:
        say("judge audit (judge.audit): the built-in gold suite, before training ...")
        try:
            result = audit_config(config, out_dir=run_dir / "audit", thresholds=thresholds)
        except NotAuditable as error:
            raise ConfigError(f"judge.audit: {error}") from None
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        partial.write_text(json.dumps(result.to_dict()))
        partial.replace(cached)
        say(f"judge audit: {result.summary()} (report: {run_dir / 'audit' / 'audit.md'})")
    if not result.passed:
        raise JudgeAuditFailed(f"the judge failed its audit (judge.audit): {result.summary()}. No training was done; "
                               "fix the judge, or set judge.audit: false to train with it anyway")
    return result
