"""`judgerl label`: preference pairs (chosen, rejected) from the judge, to train a reward model on.

    judgerl label --input FILE [CONFIG]     pair up each line's completions: {prompt, completions, reference?}
    judgerl label CONFIG -o OUT [--samples N] [--checkpoint DIR]
                                            sample N completions of each data.rl prompt from the policy

The judge (provider, rubric, cache) and its confidence gate are the config's judge: section, the
same config `judgerl train` reads, changed by --set. Everything the user gave (options, input
file, output place) is checked before the judge or the policy, maybe a model, is built.
Prints one line on stderr and writes OUT and OUT's summary (pairs.summary.json); exit 4 when no
pair at all could be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from judgerl.cli_commands.common import EXIT_UNSCORED, SET_HELP, load_config, parse_overrides, positive_int
from judgerl.labelling.records import METHODS


def add_parser(subcommands) -> None:
    label = subcommands.add_parser("label", help="preference pairs from the judge (pairwise, from scores, or a group "
                                   "ranking), for training a reward model")
    label.add_argument("config", nargs="?", help="YAML config: its judge (and, to sample, its policy and data.rl); "
                       "default: the defaults changed by --set")
    label.add_argument("--input", metavar="FILE", help="JSONL of {\"prompt\": str, \"completions\": [str, ...], "
                       "\"reference\": str (optional)} to pair up, instead of sampling from the policy")
    label.add_argument("-o", "--output", help="the pairs' JSONL (default with --input: INPUT.pairs.jsonl)")
    label.add_argument("--method", choices=METHODS, help="pairwise: A vs B in both orders (position-calibrated; "
                       "orders that disagree are dropped); pairwise_from_scores: each completion scored alone; "
                       "group: a prompt's completions scored together (default: the config's judge.method where it "
                       "is pairwise or group, else pairwise_from_scores)")
    label.add_argument("--min-margin", type=_fraction, help="pairwise_from_scores and group: the least reward "
                       "difference (rewards in [0, 1]) that makes a pair (default 0.1)")
    label.add_argument("--samples", type=_at_least_two, help="completions sampled per prompt (default: "
                       "rl.samples_per_question)")
    label.add_argument("--checkpoint", metavar="DIR", help="sample from this checkpoint of a run (RUN/checkpoints/"
                       "step-N) instead of the config's fresh policy")
    label.add_argument("--limit", type=positive_int, help="label only the first N prompts")
    label.add_argument("--batch-size", type=positive_int, default=8, help="prompts sampled and judged together")
    label.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=SET_HELP)
    label.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from judgerl.config import ConfigError
    from judgerl.input_checks import check_output_file
    from judgerl.labelling.run import label_to_file, one_line

    if args.input is None and args.config is None:
        raise ConfigError("give --input FILE (prompts with completions), or a config whose policy samples them")
    if args.input is not None and (args.samples is not None or args.checkpoint is not None):
        raise ConfigError("--samples and --checkpoint sample from the policy; with --input the completions are the file's")
    if args.output is None and args.input is None:
        raise ConfigError("-o/--output: where to write the pairs (e.g. -o pairs.jsonl)")
    # With --input only the judge section counts (a judge-only file will do); to sample, the whole config.
    overrides = parse_overrides(args.set)
    config = load_config(args.config, overrides) if args.input is None else None
    judge_config = config.judge if config is not None else _judge_section(args.config, overrides)
    output = Path(args.output) if args.output else _beside(Path(args.input))
    check_output_file(output, "-o/--output" if args.output else "output file")
    if args.input is not None and output.resolve() == Path(args.input).resolve():
        raise ConfigError(f"-o/--output {str(output)!r} is the input file; the pairs would replace it")
    _check_judge_inputs(judge_config)
    rows = _file_rows(args) if args.input is not None else None
    prompts = _sampling_prompts(config, args) if config is not None else None
    from judgerl.labelling.from_config import config_labeller, policy_of, sampled_rows

    labeller = config_labeller(judge_config, args.method, args.min_margin, args.batch_size)
    if rows is None:
        from judgerl.rollouts import SamplingSettings

        policy = policy_of(config, Path(args.checkpoint) if args.checkpoint else None)
        sampling = SamplingSettings(config.rl.temperature, config.rl.top_p, config.rl.max_new_tokens)
        rows = sampled_rows(policy, prompts, args.samples or config.rl.samples_per_question, sampling, config.seed,
                            args.batch_size)
    from tqdm.auto import tqdm

    # a progress bar on a terminal only (disable=None), counted in prompts done
    with tqdm(total=len(prompts if prompts is not None else rows), desc="labelling", unit="prompt", disable=None) as bar:
        summary = label_to_file(labeller, rows, output, on_batch=lambda counts: bar.update(counts.prompts - bar.n))
    print(one_line(summary), file=sys.stderr)
    if summary["pairs_written"] == 0:
        print(f"error: no preference pair could be written{_why_none(summary)}", file=sys.stderr)
        return EXIT_UNSCORED
    return 0


def _why_none(summary: dict) -> str:
    """What the gate did, when it dropped pairs: judgments with no confidence (scores read from text),
    or less sure than judge.confidence_threshold (for a score, the probability of the judge's most
    likely score, often below 0.5 on a 1-5 scale for a small judge)."""
    threshold, dropped = summary["confidence_threshold"], summary["dropped"]
    if summary["completions_without_confidence"] and threshold > 0:
        return (f": {summary['completions_without_confidence']} judgments carry no confidence (a score read from "
                "text, as critique and group judges give), and only judge.confidence_threshold: 0 accepts them")
    if dropped["unsure"]:
        return (f": the confidence gate (judge.confidence_threshold {threshold:g}) dropped {dropped['unsure']} pairs "
                "as unsure; a lower threshold (--set judge.confidence_threshold=...) takes less sure judgments")
    return " (see the dropped counts above)"


def _beside(input_path: Path) -> Path:
    """prompts.jsonl -> prompts.pairs.jsonl, beside the input."""
    return input_path.with_name(input_path.stem + ".pairs.jsonl")


def _file_rows(args: argparse.Namespace) -> list:
    from judgerl.config import ConfigError, read_text_file
    from judgerl.labelling.records import LabelInputError, read_label_rows

    read_text_file(args.input, "--input")  # missing, a folder, unreadable, not UTF-8: one line
    try:
        return read_label_rows(Path(args.input), args.limit)
    except LabelInputError as error:
        raise ConfigError(f"--input: {error}") from None


def _sampling_prompts(config, args: argparse.Namespace) -> list:
    """data.rl's prompt rows (the first --limit), with the policy and --checkpoint, checked before any
    model is built."""
    from judgerl.config import ConfigError
    from judgerl.datasets import load_prompt_rows
    from judgerl.labelling.from_config import check_sampling

    check_sampling(config, Path(args.checkpoint) if args.checkpoint else None)
    try:
        rows = load_prompt_rows(config.data.rl)
    except (ValueError, OSError) as error:
        raise ConfigError(f"data.rl: {error}") from None
    return rows[:args.limit] if args.limit else rows


def _judge_section(path: str | None, overrides: dict):
    """The config file's judge section alone (as `judgerl audit` reads it), with the overrides, validated."""
    from judgerl.cli_commands.audit import _judge_config
    from judgerl.config import ConfigError

    try:
        return _judge_config(path, overrides)
    except ConfigError as error:  # audit's wording, for the one refusal that names the command
        raise ConfigError(str(error).replace("judgerl audit reads", "judgerl label --input reads")) from None


def _check_judge_inputs(judge) -> None:
    """The files the judge will read or write (cache, grader, function), as `judgerl train` checks them."""
    from judgerl.input_checks import check_cache_path, check_function, check_grader_file

    if judge.grader_file:
        check_grader_file(judge.grader_file, "judge.grader_file")
    if judge.provider == "python" and judge.function:
        check_function(judge.function)
    if judge.cache and judge.cache_path:
        check_cache_path(judge.cache_path, "judge.cache_path")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}")
    return value


def _at_least_two(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"a pair needs at least 2 completions per prompt, got {value}")
    return value
