"""`judgerl`: the command line. Each command is a few lines over the library.

    judgerl demo                 SFT + RL against the local judge + report, all defaults
    judgerl sft [CONFIG]         supervised fine-tuning only; prints the checkpoint folder
    judgerl train CONFIG         the whole experiment from a config file (its task: magic8ball, generation, ...)
    judgerl resume RUN_DIR       continue a stopped run from its last checkpoint, exactly
    judgerl report RUN_DIR       (re)write a run folder's report
    judgerl judge FILE           judge a JSONL file of completions (or pairs) with a rubric
    judgerl config               the default config, every field with its help
    judgerl config --task NAME   a starter config for a task (magic8ball, generation)
    judgerl config --example [NAME]  the shipped example configs (without NAME: the list)
    judgerl judge-model          assemble and verify the default judge's weights
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

import yaml

EXIT_CONFIG, EXIT_JUDGE, EXIT_UNSCORED, EXIT_INTERRUPTED = 2, 3, 4, 130


def _parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    from judgerl.config import ConfigError

    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set takes FIELD=VALUE (e.g. --set rl.steps=20), got {pair!r}")
        try:
            overrides[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            # Not YAML (`[`, `a: b: c`): the text as written; the field's own check then names it.
            overrides[key] = value
    return overrides


def _positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (a batch of 0 or -1 judges nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {value}")
    return value


def _config(path: str | None, overrides: dict[str, Any]):
    from judgerl.config import apply_overrides, config_from_dict, load_config

    if path:
        return load_config(path, overrides)
    return config_from_dict(apply_overrides({}, overrides), source="command line")


def _checked_config(path: str | None, overrides: dict[str, Any], command: str):
    """The config, with every data file it names read and checked: a bad line is a one-line error
    before any run folder is made or model loaded."""
    from judgerl.input_checks import check_run_inputs

    config = _config(path, overrides)
    check_run_inputs(config, command)
    return config


def _run_experiment(config, run=None, resume_from=None) -> int:
    import shutil

    from judgerl.config import ConfigError
    from judgerl.report import write_report
    from judgerl.training.experiment import create_run_folder
    from judgerl.training.loop import TooManyUnscored
    from judgerl.training.runner import run_task

    from judgerl.training.distributed import DataParallel

    parallel = DataParallel()
    if not parallel.is_main:  # data-parallel helper process: process 0 writes the run folder and speaks
        return _run_helper_process(config, resume_from)
    created = run is None
    run = run or create_run_folder(config)
    print(f"run folder: {run.path}", file=sys.stderr)
    code, removed = 0, False
    try:
        run_task(config, run, say=lambda text: print(text, file=sys.stderr), resume_from=resume_from)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except TooManyUnscored as error:
        print(f"error: {error}", file=sys.stderr)
        code = EXIT_UNSCORED
    except ConfigError:
        # An input found wrong only once the run had started (the checks before it catch the rest):
        # a new run folder holding nothing but its config is removed, not left behind as "failed".
        removed = created and _holds_nothing(run.path)
        if removed:
            shutil.rmtree(run.path, ignore_errors=True)
            print(f"(removed {run.path}: nothing had been done)", file=sys.stderr)
        raise
    finally:
        if not removed:
            try:
                summary = write_report(run.path)
            except Exception as report_error:  # the run folder stays as it is; say why
                summary = f"(no report: {type(report_error).__name__}: {report_error})"
    print(summary)
    if code == EXIT_INTERRUPTED:
        print(
            f"interrupted: {run.status().get('message', '')}. Everything done so far is in {run.path} "
            f"(metrics.jsonl, judgments.jsonl, checkpoints/); `judgerl report {run.path}` rebuilds the report.",
            file=sys.stderr,
        )
    return code


def _holds_nothing(folder: Path) -> bool:
    """A run folder with only what create_run_folder wrote: config.yaml, status.json, empty checkpoints/."""
    return all(path.name in ("config.yaml", "status.json", "status.json.tmp")
               or (path.name == "checkpoints" and path.is_dir() and not any(path.iterdir()))
               for path in folder.iterdir())


def cmd_demo(args: argparse.Namespace) -> int:
    overrides = _parse_overrides(args.set)
    if args.rubric:
        overrides["judge.rubric"] = args.rubric
    if args.algorithm:
        overrides["rl.algorithm"] = args.algorithm
    if args.output_dir:
        overrides["output_dir"] = args.output_dir
    # The 8-ball's checkpoints are a few hundred KB: checkpoint often, so that a demo killed
    # outright (kill -9, a closed laptop) still resumes (`judgerl resume RUN`).
    overrides.setdefault("rl.checkpoint_every", 10)
    return _run_experiment(_checked_config(None, overrides, "demo"))


def cmd_train(args: argparse.Namespace) -> int:
    return _run_experiment(_checked_config(args.config, _parse_overrides(args.set), "train"))


def _run_helper_process(config, resume_from) -> int:
    import tempfile

    from judgerl.training.run_folder import RunFolder
    from judgerl.training.runner import run_task

    with tempfile.TemporaryDirectory(prefix="judgerl-helper-") as scratch:
        run = RunFolder.create(scratch, ["helper"])
        if resume_from is not None:  # the same checkpoint as process 0; the scratch folder holds the rest
            import shutil

            shutil.copytree(resume_from.parent.parent / "checkpoints", run.path / "checkpoints")
            resume_from = run.path / "checkpoints" / resume_from.name
        try:
            run_task(config, run, say=lambda text: None, resume_from=resume_from)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from pathlib import Path

    from judgerl.training.resume import check_steps, resume_config, write_config
    from judgerl.training.run_folder import RunFolder
    from judgerl.training.trainer_state import resumable_checkpoint

    folder = Path(args.run_dir)
    if not (folder / "config.yaml").is_file():
        print(f"error: {folder} is not a run folder (it has no config.yaml)", file=sys.stderr)
        return EXIT_CONFIG
    # Refusals come before anything is written: a refused resume leaves the run as it was.
    config, changed = resume_config(folder, _parse_overrides(args.set))  # ConfigError -> one line, exit 2
    checkpoint, notes = resumable_checkpoint(folder / "checkpoints")
    if checkpoint is None:
        why = "; ".join(notes) if notes else "it has no checkpoints/step-N with its trainer state"
        print(f"error: {folder} has no whole checkpoint to resume from: {why}. A run stopped before its first RL "
              "step starts again with `judgerl train`", file=sys.stderr)
        return EXIT_CONFIG
    check_steps(config, checkpoint)
    for note in notes:
        print(note, file=sys.stderr)
    if changed:
        write_config(folder, config)
        print(f"resume: {', '.join(changed)} changed; written into {folder / 'config.yaml'}", file=sys.stderr)
    return _run_experiment(config, RunFolder(folder), resume_from=checkpoint)


def cmd_sft(args: argparse.Namespace) -> int:
    from judgerl.training.experiment import run_sft

    config = _checked_config(args.config, _parse_overrides(args.set), "sft")
    try:
        run = run_sft(config, say=lambda text: print(text, file=sys.stderr))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    print(run.checkpoint_dir("sft"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from judgerl.report import write_report

    folder = Path(args.run_dir)
    if not folder.is_dir() or not any((folder / name).is_file() for name in ("config.yaml", "status.json")):
        # write_report would put report.md and plots/ into whatever folder it is given
        raise _not_a_run_folder(folder)
    try:
        print(write_report(args.run_dir))
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def _not_a_run_folder(folder):
    from judgerl.config import ConfigError

    if not folder.exists():
        return ConfigError(f"run folder {str(folder)!r} does not exist (run folders are made inside output_dir, "
                           "e.g. runs/NAME__ALGORITHM__RUBRIC__SEED__TIME)")
    if not folder.is_dir():
        return ConfigError(f"{str(folder)!r} is a file, not a run folder")
    return ConfigError(f"{str(folder)!r} is not a run folder (it has no config.yaml or status.json)")


JUDGE_FILE_MODES = {  # --mode -> (judge.method, the file layout judge_file reads)
    "pointwise": ("rubric", "pointwise"), "critique": ("critique", "pointwise"),
    "constitution": ("constitution", "pointwise"), "grader": ("grader", "pointwise"),
    "pairwise": ("pairwise", "pairwise"), "pairwise-from-scores": ("pairwise_from_scores", "pairwise-from-scores"),
    "group": ("group", "group"),
}
JUDGE_FLAGS = {"scale": "--scale", "principles": "--principle", "grader_file": "--grader",
               "rubric_text": "--rubric"}
"""Judge fields `judgerl judge` sets from its own options: errors in them name the option."""


def cmd_judge(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from judgerl.config import ConfigError, apply_overrides, judge_config_model, read_text_file
    from judgerl.input_checks import check_cache_path, check_grader_file, check_output_file
    from judgerl.judge_files import EXAMPLE, judge_file, read_rows

    method, layout = JUDGE_FILE_MODES[args.mode]
    overrides = {key.removeprefix("judge."): value for key, value in _parse_overrides(args.set).items()}
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
    judge_config = _judge_config(judge_config_model(), apply_overrides({}, overrides))  # with plugins' sections
    if judge_config.provider == "python":
        print("error: judgerl judge needs a model provider (llamacpp, openai, anthropic, transformers), not python",
              file=sys.stderr)
        return EXIT_CONFIG
    problem = {"constitution": (not args.principle, "--mode constitution needs --principle (one per principle)"),
               "grader": (not args.grader, "--mode grader needs --grader FILE (an OpenAI grader JSON)")}.get(args.mode)
    if problem and problem[0]:
        print(f"error: {problem[1]}", file=sys.stderr)
        return EXIT_CONFIG
    if method not in ("constitution", "grader") and judge_config.rubric_text is None:
        print("error: give the rubric with --rubric TEXT or --rubric-file FILE", file=sys.stderr)
        return EXIT_CONFIG
    if any(not principle.strip() for principle in args.principle or []):
        raise ConfigError("--principle: a principle is empty")
    if args.grader:
        check_grader_file(args.grader, "--grader")
    # The input and the output place are checked before the judge (maybe a model) is built.
    input_path = Path(args.input)
    read_text_file(input_path, "input file")  # missing, a folder, unreadable, not UTF-8
    try:
        rows = read_rows(input_path, layout)
    except ValueError as error:  # names the file, the line and the fields the mode needs
        hint = f"; each line must be {EXAMPLE[layout]}" if "not JSON" in str(error) else ""
        raise ConfigError(f"input file: {error}{hint}") from None
    if not rows:
        raise ConfigError(f"input file: {str(input_path)!r} has no lines to judge")
    output = Path(args.output) if args.output else input_path.with_name(input_path.stem + ".judged.jsonl")
    check_output_file(output, "-o/--output" if args.output else "output file")
    if judge_config.cache and judge_config.cache_path:
        check_cache_path(judge_config.cache_path, "--set cache_path")
    from judgerl.build import build_judge

    try:
        judge = build_judge(judge_config)
    except ValueError as error:  # a grader spec's GraderConfigError: name the file it came from
        if not (args.grader and type(error).__name__ == "GraderConfigError"):
            raise
        raise ConfigError(f"--grader {args.grader!r}: {error}") from None
    summary = judge_file(input_path, output, judge, layout, batch_size=args.batch_size, rows=rows)
    print(json.dumps({"output": str(output), **summary}))
    return 0


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


def _judge_config(model, data):
    from pydantic import ValidationError

    from judgerl.config import ConfigError, _explain

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            flag = JUDGE_FLAGS.get(str(error["loc"][0])) if error["loc"] else None
            explained = _explain(error, model)
            # "--scale: ..." for a field set by an option, "--set provider: ..." for the rest
            if not error["loc"]:  # a check across fields: its message names them
                problems.append(explained)
            else:
                problems.append(f"{flag}: {explained.partition(': ')[2]}" if flag else f"--set {explained}")
        if len(problems) == 1:
            raise ConfigError(problems[0]) from None
        raise ConfigError("these judge settings are not valid:\n" + "\n".join("  " + p for p in problems)) from None


def cmd_config(args: argparse.Namespace) -> int:
    from judgerl.config import commented_defaults

    if args.task is not None:
        sys.stdout.write(_starter_config(args.task))
        return 0
    if args.example is None:
        sys.stdout.write(commented_defaults())
        return 0
    from judgerl.example_configs import example_names, example_summary, example_text

    if not args.example:  # `judgerl config --example`: the list
        names = example_names()
        width = max(len(name) for name in names)
        for name in names:
            print(f"{name:<{width}}  {example_summary(name)}")
        print("\n`judgerl config --example NAME > run.yaml` writes one; `judgerl train run.yaml` runs it.")
        return 0
    sys.stdout.write(example_text(args.example))
    return 0


def _starter_config(task: str) -> str:
    """The shipped example config a task names as its starter, with `task:` set."""
    from judgerl.config import ConfigError
    from judgerl.example_configs import example_text
    from judgerl.tasks import STARTERS, TASKS

    if task not in TASKS:
        raise ConfigError(f"--task: no task called {task!r}; the tasks are: {', '.join(sorted(TASKS))}")
    if task not in STARTERS:
        raise ConfigError(f"--task: task {task!r} ships no starter config; `judgerl config` prints every field")
    lines = example_text(STARTERS[task]).splitlines(keepends=True)
    first = next((i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")), len(lines))
    return "".join(lines[:first] + [f"task: {task}\n"] + lines[first:])


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("judgerl")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from judgerl import __version__

        return __version__


def cmd_judge_model(args: argparse.Namespace) -> int:
    from judgerl.providers.weights import resolve_gguf

    path, sha256 = resolve_gguf(args.model)
    print(f"{path}\nsha256 {sha256} (verified)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="judgerl", description="Reinforcement fine-tuning with an LLM as the judge."
    )
    parser.add_argument("--version", action="version", version=f"judgerl {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    set_help = "override a config field, e.g. --set rl.steps=20 --set judge.rubric=realist"

    demo = commands.add_parser("demo", help="the magic 8-ball experiment end to end with defaults")
    demo.add_argument("--rubric", help="optimist (default), cautious, realist")
    demo.add_argument("--algorithm", help="a registered algorithm: judge_alignment (default), reinforce, rloo, grpo, "
                      "ppo, online_dpo, rejection_sampling, or a plugin's (--set plugins=[module])")
    demo.add_argument("--output-dir", help="where run folders go (default: runs)")
    demo.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=set_help)
    demo.set_defaults(handler=cmd_demo)

    resume = commands.add_parser("resume", help="continue a stopped run from its last checkpoint")
    resume.add_argument("run_dir", help="the run folder (runs/...)")
    resume.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a setting that may change on resume (rl.steps, rl.checkpoint_every, "
                        "rl.tensorboard, rl.report_to, judge call limits), e.g. --set rl.steps=120 to train longer; "
                        "the algorithm, model, judge, seed and data are fixed")
    resume.set_defaults(handler=cmd_resume)

    train = commands.add_parser("train", help="SFT + RL + report from a config file")
    train.add_argument("config", help="YAML config (see `judgerl config`)")
    train.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=set_help)
    train.set_defaults(handler=cmd_train)

    sft = commands.add_parser("sft", help="supervised fine-tuning only")
    sft.add_argument("config", nargs="?", help="YAML config (default: the defaults)")
    sft.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=set_help)
    sft.set_defaults(handler=cmd_sft)

    report = commands.add_parser("report", help="(re)write the report of a run folder")
    report.add_argument("run_dir")
    report.set_defaults(handler=cmd_report)

    judge = commands.add_parser(
        "judge", help="judge a JSONL file of prompts and completions (or pairs) and write the judgments"
    )
    judge.add_argument("input", help="JSONL of items to judge (fields depend on --mode)")
    judge.add_argument("-o", "--output", help="output JSONL (default: INPUT.judged.jsonl)")
    judge.add_argument("--mode", choices=list(JUDGE_FILE_MODES), default="pointwise",
                       help="pointwise, critique (critique then score), constitution (--principle ...), grader "
                       "(--grader FILE): {prompt, completion}; pairwise (both orders) and pairwise-from-scores: "
                       "{prompt, completion_a, completion_b}; group: {prompt, completions: [...]} scored in one call")
    judge.add_argument("--principle", action="append", help="constitution: a principle (repeat for each)")
    judge.add_argument("--grader", help="grader: a JSON file holding an OpenAI reinforcement fine-tuning grader")
    judge.add_argument("--trust-grader-code", action="store_true",
                       help="grader: run `python` graders without the sandbox (only code you trust)")
    rubric_source = judge.add_mutually_exclusive_group()
    rubric_source.add_argument("--rubric", help="the rubric text")
    rubric_source.add_argument("--rubric-file", help="a file holding the rubric text")
    judge.add_argument("--scale", default="1-5", help="score scale LOW-HIGH (default 1-5)")
    judge.add_argument("--batch-size", type=_positive_int, default=16, help="items sent to the provider together")
    judge.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="judge settings, e.g. --set provider=openai --set base_url=http://127.0.0.1:8000/v1")
    judge.set_defaults(handler=cmd_judge)

    config = commands.add_parser("config", help="print the default config with help on every field, or an example")
    config.add_argument("--example", nargs="?", const="", metavar="NAME",
                        help="print the shipped example config NAME (without NAME: list them)")
    config.add_argument("--task", metavar="NAME", help="print a starter config for the task NAME (magic8ball, generation)")
    config.set_defaults(handler=cmd_config)

    judge_model = commands.add_parser("judge-model", help="assemble and verify a known judge model's weights")
    judge_model.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    judge_model.set_defaults(handler=cmd_judge_model)
    return parser


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    from judgerl.config import ConfigError
    from judgerl.judges.base import JudgeError

    # The safety net. What a user can get wrong (a config, a data file, an option, a path) is a
    # ConfigError (or a grader spec's GraderConfigError, or an OSError naming a file): one line,
    # exit 2. A judge that cannot be built or reached is a JudgeError: one line, exit 3. Anything
    # else is a bug in judgerl, not in the input: it is NOT reduced to one line; the traceback is
    # printed, then "internal error: ...", exit 1, so that it can be reported and fixed.
    try:
        if args.command == "resume" and not Path(args.run_dir).is_dir():
            raise _not_a_run_folder(Path(args.run_dir))
        return args.handler(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except JudgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_JUDGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `judgerl config | head`: the reader left; nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        graders = sys.modules.get("judgerl.judges.openai_graders")
        if graders is not None and isinstance(error, graders.GraderConfigError):
            print(f"error: grader: {error}", file=sys.stderr)
            return EXIT_CONFIG
        if isinstance(error, OSError) and error.filename is not None:  # a path the user gave or chose
            print(f"error: {error.filename}: {error.strerror or error}", file=sys.stderr)
            return EXIT_CONFIG
        traceback.print_exc()
        print(f"internal error: {type(error).__name__}: {error}. This is a bug in judgerl, not in your input; "
              "please report it with the traceback above.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
