"""`judgerl audit [CONFIG]`: audit the judge a config builds on gold pairs, write audit.json and
audit.md (with plots) into a folder, and say PASS or FAIL (exit 0 or 5) with what failed.

The judge is the config's `judge:` section (any provider, any way of judging that judges free
text), changed by `--set judge.FIELD=VALUE` and the judge options (`--method`, `--rubric`, ...).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from judgerl.cli_commands.common import EXIT_AUDIT_FAILED, SET_HELP, parse_overrides, positive_int

"""The judge was audited and did not pass (bad input is 2, a judge that cannot be reached 3)."""


def add_parser(subcommands) -> None:
    audit = subcommands.add_parser(
        "audit", help="audit a judge on gold pairs (accuracy per kind, position and length bias, master keys, "
        "...): a report and PASS/FAIL (exit 5 on FAIL)")
    audit.add_argument("config", nargs="?", help="YAML config whose judge: section is audited (default: the "
                       "defaults, changed by --set and the options below)")
    audit.add_argument("--gold", metavar="FILE", help="a JSONL of gold pairs {id, kind, prompt, good, bad[, "
                       "reference]} instead of the built-in suite")
    audit.add_argument("--extend", action="store_true", help="with --gold: add the file's pairs to the built-in suite")
    audit.add_argument("-o", "--output-dir", help="where audit.json, audit.md and the plots go "
                       "(default: audits/<time>)")
    audit.add_argument("--method", help="judge.method: rubric, pairwise, pairwise_from_scores, critique, ...")
    rubric_source = audit.add_mutually_exclusive_group()
    rubric_source.add_argument("--rubric", help="judge.rubric_text: the judge's rubric")
    rubric_source.add_argument("--rubric-file", help="a file holding the judge's rubric")
    audit.add_argument("--scale", help="judge.scale, LOW-HIGH (e.g. 1-5)")
    audit.add_argument("--principle", action="append", help="judge.principles for --method constitution (repeat)")
    audit.add_argument("--grader", help="judge.grader_file for --method grader: an OpenAI grader JSON")
    audit.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE",
                       help="change a pass/fail threshold, e.g. --threshold overall=0.9 (overall, per_kind, "
                       "position_consistency, master_key_false_accepts, accept_reward, position_bias)")
    audit.add_argument("--no-stability", action="store_true",
                       help="skip the paraphrased-rubric stability probe (fewer judgments)")
    audit.add_argument("--batch-size", type=positive_int, default=16, help="items sent to the judge together")
    audit.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=SET_HELP)
    audit.set_defaults(handler=run)


def _judge_overrides(args: argparse.Namespace) -> dict:
    from judgerl.config import ConfigError, read_text_file

    overrides = parse_overrides(args.set)
    if args.method is not None:
        overrides["judge.method"] = args.method
    for option, field in ((args.scale, "scale"), (args.principle, "principles"), (args.grader, "grader_file")):
        if option is not None:
            overrides[f"judge.{field}"] = option
    if args.rubric_file is not None or args.rubric is not None:
        option = "--rubric-file" if args.rubric_file is not None else "--rubric"
        text = read_text_file(args.rubric_file, option) if args.rubric_file is not None else args.rubric
        if not text.strip():
            raise ConfigError(f"{option}: the rubric is empty; say what a good answer looks like")
        overrides["judge.rubric_text"] = text
        overrides.setdefault("judge.rubric", "custom")
    return overrides


def _judge_config(path: str | None, overrides: dict):
    """The judge section of the config file (only it: an audit trains nothing), with the overrides, validated."""
    import yaml
    from pydantic import ValidationError

    from judgerl.config import ConfigError, _explain, apply_overrides, judge_config_model, read_text_file
    from judgerl.registry import PluginError, load_plugins

    data, source = {}, "command line"
    if path is not None:
        source = path
        if not Path(path).exists():
            raise ConfigError(f"config file {path!r} does not exist")
        try:
            data = yaml.safe_load(read_text_file(path, "config file")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {str(getattr(exc, 'problem', None) or exc).splitlines()[0]}") \
                from None
        if not isinstance(data, dict) or not isinstance(data.get("judge", {}), dict):
            raise ConfigError(f"{path}: a config is a mapping with a judge: section (judge: {{provider: ..., method: ...}})")
    for key in overrides:
        if key.split(".")[0] not in ("judge", "plugins"):
            raise ConfigError(f"--set {key}: judgerl audit reads only the judge section (--set judge.FIELD=VALUE) and plugins")
    data = apply_overrides(data, overrides)
    try:
        load_plugins(data.get("plugins") or [])
    except (PluginError, TypeError) as error:
        raise ConfigError(f"{source}: plugins: {error}") from None
    model = judge_config_model()
    try:
        return model.model_validate(data.get("judge") or {})
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + "; ".join(f"judge.{_explain(e, model)}" for e in exc.errors())) from None


def _thresholds(pairs: list[str]):
    from judgerl.audit.verdict import Thresholds
    from judgerl.config import ConfigError

    values = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        try:
            values[name.strip()] = float(text)
        except ValueError:
            raise ConfigError(f"--threshold takes NAME=NUMBER (e.g. --threshold overall=0.9), got {pair!r}") from None
        if not sep:
            raise ConfigError(f"--threshold takes NAME=NUMBER (e.g. --threshold overall=0.9), got {pair!r}")
    try:
        return Thresholds.with_overrides(values)
    except ValueError as error:
        raise ConfigError(f"--threshold: {error}") from None


def _output_dir(option: str | None) -> Path:
    from judgerl.config import ConfigError

    folder = Path(option) if option else Path("audits") / time.strftime("%Y%m%d-%H%M%S")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"-o/--output-dir: {str(folder)!r} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"-o/--output-dir: cannot make {str(folder)!r}: {error.strerror or error}") from None
    return folder


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from judgerl.audit.from_config import NotAuditable, audit_judges, check_auditable
    from judgerl.audit.gold import GoldError, suite_from
    from judgerl.audit.run import run_audit
    from judgerl.config import ConfigError

    if args.extend and not args.gold:
        raise ConfigError("--extend adds a --gold FILE's pairs to the built-in suite: give --gold FILE")
    # Everything the user gave is checked before the judge (maybe a model) is built.
    judge_config = _judge_config(args.config, _judge_overrides(args))
    thresholds = _thresholds(args.threshold)
    try:
        suite = suite_from(args.gold, args.extend)
        check_auditable(judge_config)
    except (GoldError, NotAuditable) as error:
        raise ConfigError(str(error)) from None
    folder = _output_dir(args.output_dir)
    judge, variants = audit_judges(judge_config)
    with tqdm(desc="auditing", unit="judgment", disable=None, file=sys.stderr) as bar:
        result = run_audit(judge, suite, folder, thresholds, () if args.no_stability else variants,
                           batch_size=args.batch_size, progress=bar.update)
    print(result.summary())
    print(f"report: {folder / 'audit.md'} (every figure: {folder / 'audit.json'})", file=sys.stderr)
    return 0 if result.passed else EXIT_AUDIT_FAILED
