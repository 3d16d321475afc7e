"""`judgerl judge FILE`: judge a JSONL file of completions (or pairs, or groups) and write the judgments.

The options become a judge config (the same fields as a config file's `judge:` section); everything
the user gave (options, input file, output place) is checked before the judge, maybe a model, is built.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from judgerl.cli_commands.common import EXIT_CONFIG, parse_overrides, positive_int

JUDGE_FILE_MODES = {  # --mode -> (judge.method, the file layout judge_file reads)
    "pointwise": ("rubric", "pointwise"), "critique": ("critique", "pointwise"),
    "constitution": ("constitution", "pointwise"), "grader": ("grader", "pointwise"),
    "pairwise": ("pairwise", "pairwise"), "pairwise-from-scores": ("pairwise_from_scores", "pairwise-from-scores"),
    "group": ("group", "group"),
    "reward-model": ("reward_model", "pointwise"), "reward-model-pairwise": ("reward_model", "pairwise"),
}
JUDGE_FLAGS = {"scale": "--scale", "principles": "--principle", "grader_file": "--grader",
               "rubric_text": "--rubric"}
"""Judge fields `judgerl judge` sets from its own options: errors in them name the option."""


def add_parser(subcommands) -> None:
    judge = subcommands.add_parser(
        "judge", help="judge a JSONL file of prompts and completions (or pairs) and write the judgments"
    )
    judge.add_argument("input", help="JSONL of items to judge (fields depend on --mode)")
    judge.add_argument("-o", "--output", help="output JSONL (default: INPUT.judged.jsonl)")
    judge.add_argument("--mode", choices=list(JUDGE_FILE_MODES), default="pointwise",
                       help="pointwise, critique (critique then score), constitution (--principle ...), grader "
                       "(--grader FILE): {prompt, completion}; pairwise (both orders) and pairwise-from-scores: "
                       "{prompt, completion_a, completion_b}; group: {prompt, completions: [...]} scored in one call; "
                       "reward-model (pointwise) and reward-model-pairwise: a trained reward model, "
                       "--set reward_model.path=FOLDER")
    judge.add_argument("--principle", action="append", help="constitution: a principle (repeat for each)")
    judge.add_argument("--grader", help="grader: a JSON file holding an OpenAI reinforcement fine-tuning grader")
    judge.add_argument("--trust-grader-code", action="store_true",
                       help="grader: run `python` graders without the sandbox (only code you trust)")
    rubric_source = judge.add_mutually_exclusive_group()
    rubric_source.add_argument("--rubric", help="the rubric text")
    rubric_source.add_argument("--rubric-file", help="a file holding the rubric text")
    judge.add_argument("--scale", default="1-5", help="score scale LOW-HIGH (default 1-5)")
    judge.add_argument("--batch-size", type=positive_int, default=16, help="items sent to the provider together")
    judge.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="judge settings, e.g. --set provider=openai --set base_url=http://127.0.0.1:8000/v1")
    judge.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json

    from judgerl.config import ConfigError
    from judgerl.input_checks import check_cache_path, check_grader_file, check_output_file
    from judgerl.judge_files import judge_file

    method, layout = JUDGE_FILE_MODES[args.mode]
    judge_config = _judge_config_from_options(args, method)
    refusal = _missing_option(args, method, judge_config)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return EXIT_CONFIG
    if any(not principle.strip() for principle in args.principle or []):
        raise ConfigError("--principle: a principle is empty")
    if args.grader:
        check_grader_file(args.grader, "--grader")
    # The input and the output place are checked before the judge (maybe a model) is built.
    input_path = Path(args.input)
    rows = _read_input(input_path, layout)
    output = Path(args.output) if args.output else input_path.with_name(input_path.stem + ".judged.jsonl")
    check_output_file(output, "-o/--output" if args.output else "output file")
    if judge_config.cache and judge_config.cache_path:
        check_cache_path(judge_config.cache_path, "--set cache_path")
    judge = _build_judge(judge_config, args.grader)
    summary = judge_file(input_path, output, judge, layout, batch_size=args.batch_size, rows=rows)
    print(json.dumps({"output": str(output), **summary}))
    return 0


def _judge_config_from_options(args: argparse.Namespace, method: str):
    """The judge config the options and `--set` pairs describe (plugins loaded first: their providers
    and config sections count)."""
    from judgerl.config import ConfigError, apply_overrides, judge_config_model, read_text_file

    overrides = {key.removeprefix("judge."): value for key, value in parse_overrides(args.set).items()}
    _load_plugins(overrides.pop("plugins", None))  # --set plugins=[module]: a plugin's provider can judge too
    if args.rubric_file is not None or args.rubric is not None:
        text = read_text_file(args.rubric_file, "--rubric-file") if args.rubric_file is not None else args.rubric
        if not text.strip():
            raise ConfigError(f"{'--rubric-file' if args.rubric_file is not None else '--rubric'}: the rubric is "
                              "empty; say who is asking and what a good answer looks like")
        overrides["rubric_text"] = text
        overrides.setdefault("rubric", "custom")
    overrides.update(method=method, scale=args.scale, principles=args.principle or [],
                     grader_file=args.grader)
    if args.trust_grader_code:
        overrides["trust_grader_code"] = True
    return _validated(judge_config_model(), apply_overrides({}, overrides))  # with plugins' sections


def _missing_option(args: argparse.Namespace, method: str, judge_config) -> str | None:
    """What the options lack for this mode (a model provider, principles, a grader, a rubric), or None."""
    if judge_config.provider == "python":
        return "judgerl judge needs a model provider (llamacpp, openai, anthropic, transformers), not python"
    if args.mode == "constitution" and not args.principle:
        return "--mode constitution needs --principle (one per principle)"
    if args.mode == "grader" and not args.grader:
        return "--mode grader needs --grader FILE (an OpenAI grader JSON)"
    if method == "reward_model":  # a trained reward model has no rubric; it needs its folder
        return None if judge_config.reward_model is not None else \
            "--mode reward-model needs --set reward_model.path=FOLDER (a reward model or train-rm run folder)"
    if method not in ("constitution", "grader") and judge_config.rubric_text is None:
        return "give the rubric with --rubric TEXT or --rubric-file FILE"
    return None


def _read_input(input_path: Path, layout: str) -> list:
    """The input file's rows; a file that cannot be read, a bad line or no lines is a ConfigError."""
    from judgerl.config import ConfigError, read_text_file
    from judgerl.judge_files import EXAMPLE, read_rows

    read_text_file(input_path, "input file")  # missing, a folder, unreadable, not UTF-8
    try:
        rows = read_rows(input_path, layout)
    except ValueError as error:  # names the file, the line and the fields the mode needs
        hint = f"; each line must be {EXAMPLE[layout]}" if "not JSON" in str(error) else ""
        raise ConfigError(f"input file: {error}{hint}") from None
    if not rows:
        raise ConfigError(f"input file: {str(input_path)!r} has no lines to judge")
    return rows


def _build_judge(judge_config, grader_file: str | None):
    from judgerl.build import build_judge
    from judgerl.config import ConfigError

    try:
        return build_judge(judge_config)
    except ValueError as error:  # a grader spec's GraderConfigError: name the file it came from
        if not (grader_file and type(error).__name__ == "GraderConfigError"):
            raise
        raise ConfigError(f"--grader {grader_file!r}: {error}") from None


def _load_plugins(modules: Any) -> None:
    """The plugin modules named (and those advertised in the judgerl.plugins entry point group)."""
    from judgerl.config import ConfigError
    from judgerl.registry import PluginError, load_plugins

    if modules is not None and not (isinstance(modules, list) and all(isinstance(m, str) for m in modules)):
        raise ConfigError(f"--set plugins: a list of module names, e.g. --set plugins=[my_plugin], got {modules!r}")
    try:
        load_plugins(modules or [])
    except PluginError as error:
        raise ConfigError(str(error)) from None


def _validated(model, data):
    """`data` validated as the judge config `model`; each error names the option that set the field
    ("--scale: ...") or the `--set` field ("--set provider: ...")."""
    from pydantic import ValidationError

    from judgerl.config import ConfigError, _explain

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            flag = JUDGE_FLAGS.get(str(error["loc"][0])) if error["loc"] else None
            explained = _explain(error, model)
            if not error["loc"]:  # a check across fields: its message names them
                problems.append(explained)
            else:
                problems.append(f"{flag}: {explained.partition(': ')[2]}" if flag else f"--set {explained}")
        if len(problems) == 1:
            raise ConfigError(problems[0]) from None
        raise ConfigError("these judge settings are not valid:\n" + "\n".join("  " + p for p in problems)) from None
