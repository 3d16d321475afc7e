"""`judgerl`: the command line. Each command is a few lines over the library.

    judgerl demo                 SFT + RL against the local judge + report, all defaults
    judgerl sft [CONFIG]         supervised fine-tuning only; prints the checkpoint folder
    judgerl train CONFIG         the whole experiment from a config file
    judgerl resume RUN_DIR       continue a stopped run from its last checkpoint, exactly
    judgerl report RUN_DIR       (re)write a run folder's report
    judgerl judge FILE           judge a JSONL file of completions (or pairs) with a rubric
    judgerl config               the default config, every field with its help
    judgerl judge-model          assemble and verify the default judge's weights
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, Sequence

import yaml

EXIT_CONFIG, EXIT_JUDGE, EXIT_UNSCORED, EXIT_INTERRUPTED = 2, 3, 4, 130


def _parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set takes FIELD=VALUE (e.g. rl.steps=20), got {pair!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def _config(path: str | None, overrides: dict[str, Any]):
    from judgerl.config import apply_overrides, config_from_dict, load_config

    if path:
        return load_config(path, overrides)
    return config_from_dict(apply_overrides({}, overrides), source="the default config with your --set values")


def _run_experiment(config, run=None, resume_from=None) -> int:
    from judgerl.report import write_report
    from judgerl.training.experiment import create_run_folder, run_experiment
    from judgerl.training.rl import TooManyUnscored

    from judgerl.training.distributed import DataParallel

    parallel = DataParallel()
    if not parallel.is_main:  # data-parallel helper process: process 0 writes the run folder and speaks
        return _run_helper_process(config, resume_from)
    run = run or create_run_folder(config)
    print(f"run folder: {run.path}", file=sys.stderr)
    if config.policy.kind == "causal_lm":
        from judgerl.training.lm_experiment import run_lm_experiment as run_experiment  # noqa: F811
    code = 0
    try:
        run_experiment(config, run, say=lambda text: print(text, file=sys.stderr), resume_from=resume_from)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except TooManyUnscored as error:
        print(f"error: {error}", file=sys.stderr)
        code = EXIT_UNSCORED
    finally:
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


def cmd_demo(args: argparse.Namespace) -> int:
    overrides = _parse_overrides(args.set)
    if args.rubric:
        overrides["judge.rubric"] = args.rubric
    if args.algorithm:
        overrides["rl.algorithm"] = args.algorithm
    if args.output_dir:
        overrides["output_dir"] = args.output_dir
    return _run_experiment(_config(None, overrides))


def cmd_train(args: argparse.Namespace) -> int:
    return _run_experiment(_config(args.config, _parse_overrides(args.set)))


def _run_helper_process(config, resume_from) -> int:
    import tempfile

    from judgerl.training.experiment import run_experiment
    from judgerl.training.run_folder import RunFolder

    if config.policy.kind == "causal_lm":
        from judgerl.training.lm_experiment import run_lm_experiment as run_experiment  # noqa: F811
    with tempfile.TemporaryDirectory(prefix="judgerl-helper-") as scratch:
        run = RunFolder.create(scratch, ["helper"])
        if resume_from is not None:  # the same checkpoint as process 0; the scratch folder holds the rest
            import shutil

            shutil.copytree(resume_from.parent.parent / "checkpoints", run.path / "checkpoints")
            resume_from = run.path / "checkpoints" / resume_from.name
        try:
            run_experiment(config, run, say=lambda text: None, resume_from=resume_from)
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
    from judgerl.report import write_report

    try:
        print(write_report(args.run_dir))
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


JUDGE_FILE_MODES = {  # --mode -> (judge.method, the file layout judge_file reads)
    "pointwise": ("rubric", "pointwise"), "critique": ("critique", "pointwise"),
    "constitution": ("constitution", "pointwise"), "grader": ("grader", "pointwise"),
    "pairwise": ("pairwise", "pairwise"), "pairwise-from-scores": ("pairwise_from_scores", "pairwise-from-scores"),
    "group": ("group", "group"),
}


def cmd_judge(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from judgerl.config import JudgeConfig, apply_overrides
    from judgerl.judge_files import judge_file
    from judgerl.judges.factory import build_judge

    method, layout = JUDGE_FILE_MODES[args.mode]
    overrides = {key.removeprefix("judge."): value for key, value in _parse_overrides(args.set).items()}
    if args.rubric_file or args.rubric:
        overrides["rubric_text"] = Path(args.rubric_file).read_text() if args.rubric_file else args.rubric
        overrides.setdefault("rubric", "custom")
    overrides.update(method=method, scale=args.scale, principles=args.principle or [],
                     grader_file=args.grader)
    if args.trust_grader_code:
        overrides["trust_grader_code"] = True
    judge_config = _judge_config(JudgeConfig, apply_overrides({}, overrides))
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
    if args.grader and not Path(args.grader).is_file():
        print(f"error: grader file {args.grader!r} does not exist", file=sys.stderr)
        return EXIT_CONFIG
    judge = build_judge(judge_config)
    input_path = Path(args.input)
    if not input_path.is_file():
        print(f"error: input file {str(input_path)!r} does not exist", file=sys.stderr)
        return EXIT_CONFIG
    output = Path(args.output) if args.output else input_path.with_name(input_path.stem + ".judged.jsonl")
    try:
        summary = judge_file(input_path, output, judge, layout, batch_size=args.batch_size)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    print(json.dumps({"output": str(output), **summary}))
    return 0


def _judge_config(model, data):
    from pydantic import ValidationError

    from judgerl.config import ConfigError, _explain

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join("  judge." + _explain(error) for error in exc.errors())
        raise ConfigError(f"your --set judge.* values are not valid:\n{problems}") from None


def cmd_config(args: argparse.Namespace) -> int:
    from judgerl.config import commented_defaults

    sys.stdout.write(commented_defaults())
    return 0


def cmd_judge_model(args: argparse.Namespace) -> int:
    from judgerl.providers.weights import resolve_gguf

    path, sha256 = resolve_gguf(args.model)
    print(f"{path}\nsha256 {sha256} (verified)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="judgerl", description="Reinforcement fine-tuning with an LLM as the judge."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    set_help = "override a config field, e.g. --set rl.steps=20 --set judge.rubric=realist"

    demo = commands.add_parser("demo", help="the magic 8-ball experiment end to end with defaults")
    demo.add_argument("--rubric", help="optimist (default), cautious, realist")
    demo.add_argument("--algorithm", choices=["judge_alignment", "reinforce", "rloo", "grpo", "ppo", "online_dpo",
                                              "rejection_sampling"])
    demo.add_argument("--output-dir", help="where run folders go (default: runs)")
    demo.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=set_help)
    demo.set_defaults(handler=cmd_demo)

    resume = commands.add_parser("resume", help="continue a stopped run from its last checkpoint")
    resume.add_argument("run_dir", help="the run folder (runs/...)")
    resume.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a field, e.g. --set rl.steps=120 to train longer")
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
    judge.add_argument("--batch-size", type=int, default=16, help="items sent to the provider together")
    judge.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="judge settings, e.g. --set provider=openai --set base_url=http://127.0.0.1:8000/v1")
    judge.set_defaults(handler=cmd_judge)

    config = commands.add_parser("config", help="print the default config with help on every field")
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

    try:
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


if __name__ == "__main__":
    sys.exit(main())
