"""OpenAI reinforcement fine-tuning grader configs, run locally and unchanged.

A user with an OpenAI grader JSON runs it here as it is:

    grader = build_grader(json.load(open("grader.json")), provider=make_provider(...))
    result = grader.grade(sample={"output_text": "..."}, item={"reference_answer": "..."})

Types: `string_check` (eq, ne, like = contains, ilike = contains ignoring case),
`text_similarity` (fuzzy_match, bleu, gleu, rouge_1..rouge_5, rouge_l; `cosine` and `meteor`
need models that are not here and are refused with a clear message), `score_model` and
`label_model` (through any judgerl provider), `python` (its `grade(sample, item)` run in the
sandbox of `judgerl.judges.sandbox`: no host files, no network, no view of the judging process,
process/time/memory limits; refused where that sandbox cannot be had, unless trust_grader_code),
and `multi` (named sub-graders combined by the `calculate_output` formula).
Templates `{{ item.x }}`, `{{ sample.output_text }}`, `{{ sample.output_json.a.b }}` are
filled from the dataset row (`item`) and the model's output (`sample`).
A grader that cannot produce a grade returns `score=None` with the reason: never a 0.

This module builds a grader from its JSON (`build_grader`), runs `python` and `multi` graders and
wraps a grader as a judge (`GraderJudge`). The other kinds live apart and are re-exported here:
`grader_spec` (GraderConfigError, GradeResult, templates), `grader_text` (string_check,
text_similarity and their metrics), `grader_model` (score_model, label_model) and
`grader_formula` (the `calculate_output` of multi).
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Sequence

from judgerl.judges.base import Judgment, check_columns
from judgerl.judges.evidence import distrust_all
from judgerl.judges.grader_formula import evaluate_formula
from judgerl.judges.grader_model import LabelModel, ScoreModel
from judgerl.judges.grader_spec import GradeResult, Grader, GraderConfigError, lookup, render, require
from judgerl.judges.grader_text import SIMILARITY, StringCheck, TextSimilarity, bleu, gleu, rouge_l, rouge_n
from judgerl.judges.sandbox import run_python, sandbox_available
from judgerl.providers import LogprobProvider

__all__ = [  # the graders' public names, wherever they are written
    "GradeResult", "Grader", "GraderConfigError", "GraderJudge", "LabelModel", "Multi", "PythonGrader", "SIMILARITY",
    "ScoreModel", "StringCheck", "TextSimilarity", "bleu", "build_grader", "evaluate_formula", "gleu", "lookup",
    "render", "rouge_l", "rouge_n", "untrusted_refusal",
]


# -- python ------------------------------------------------------------------------------------
# Here, not in a module of its own: it asks this module's `sandbox_available`, which is what a
# test replaces to stand for a machine without the sandbox.

_RUNNER = r"""
import json, socket, sys
def _no_network(*args, **kwargs):
    raise OSError("network access is disabled in judgerl python graders")
socket.socket = _no_network
socket.create_connection = _no_network
socket.getaddrinfo = _no_network
payload = json.loads(sys.stdin.read())
namespace = {"__name__": "grader"}
exec(compile(payload["source"], "<grader source>", "exec"), namespace)
if "grade" not in namespace:
    raise SystemExit("the grader source defines no grade(sample, item) function")
print(json.dumps({"score": float(namespace["grade"](payload["sample"], payload["item"]))}))
"""


def _network_namespace_available() -> bool:
    if not shutil.which("unshare"):
        return False
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def untrusted_refusal(name: str, reason: str) -> str:
    return (f"python grader {name!r} not run: its code runs only in a sandbox (namespaces, a private root, no "
            f"capabilities) and that cannot be had here: {reason}. To run it without isolation, trusting the "
            f"grader's code, pass --trust-grader-code (judgerl judge) or set judge.trust_grader_code: true "
            f"(config, or --set trust_grader_code=true)")


class PythonGrader:
    """Runs the grader's source in a child process.

    By default in `judgerl.judges.sandbox` (new user/pid/mount/network namespaces, a private
    read-only root with only the system libraries and Python, a fresh /proc, a scratch /tmp,
    uid 65534 without capabilities, process/memory/CPU/file limits, every process it started
    killed when it ends or times out). Where that sandbox cannot be set up the grader is refused
    when built (GraderConfigError naming why and --trust-grader-code); `trust_grader_code=True`
    runs it the old way instead: an environment with only PATH and LANG, CPU and memory limits,
    a network namespace where `unshare -n` works (else sockets disabled), its process group
    killed on a timeout; it can then read and write what the judging user can."""

    _netns: bool | None = None

    def __init__(self, spec: dict[str, Any], timeout_s: float = 10.0, memory_mb: int = 512,
                 trust_grader_code: bool = False):
        require(spec, "source")
        self.name, self.source = spec.get("name", "python"), spec["source"]
        self.timeout_s, self.memory_mb = timeout_s, memory_mb
        self.trusted = trust_grader_code
        if not trust_grader_code:
            available, reason = sandbox_available()
            if not available:
                raise GraderConfigError(untrusted_refusal(self.name, reason))
        elif PythonGrader._netns is None:
            PythonGrader._netns = _network_namespace_available()

    def _limits(self) -> None:  # runs in the child before exec
        memory = self.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        cpu = max(1, int(math.ceil(self.timeout_s)))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))

    def _run_trusted(self, payload: str) -> tuple[int | None, str, str, dict[str, Any]]:
        command = [sys.executable, "-I", "-c", _RUNNER]
        if self._netns:
            command = ["unshare", "-n", *command]
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        details = {"isolation": "none (trust_grader_code): environment without keys, CPU and memory limits, "
                   + ("network namespace" if self._netns else "sockets disabled")}
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=environment, preexec_fn=self._limits, start_new_session=True)
        try:
            stdout, stderr = process.communicate(payload, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # its children too (not those that left with setsid)
            except ProcessLookupError:
                pass
            process.communicate()
            return None, "", "", details
        return process.returncode, stdout, stderr, details

    def _run_sandboxed(self, payload: str) -> tuple[int | None, str, str, dict[str, Any]]:
        available, reason = sandbox_available()
        if not available:
            raise GraderConfigError(untrusted_refusal(self.name, reason))
        done = run_python(_RUNNER, payload.encode(), timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        details: dict[str, Any] = {"isolation": done.isolation}
        if done.setup_failed:
            last = (done.stderr.decode(errors="replace").strip().splitlines() or ["(no message)"])[-1]
            raise GraderConfigError(untrusted_refusal(self.name, last))
        return done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"), details

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        payload = json.dumps({"source": self.source, "sample": sample, "item": item})
        try:
            returncode, stdout, stderr, details = (self._run_trusted if self.trusted else self._run_sandboxed)(payload)
        except GraderConfigError as refusal:  # the sandbox went away since the grader was built
            return GradeResult(self.name, None, str(refusal), {"isolation": "refused"})
        except OSError as error:
            return GradeResult(self.name, None, f"python grader could not be started: {error}", {})
        if returncode is None:
            return GradeResult(self.name, None, f"python grader timed out after {self.timeout_s} s", details)
        if returncode != 0:
            last = (stderr.strip().splitlines() or ["(no message)"])[-1]
            return GradeResult(self.name, None, f"python grader failed (exit {returncode}): {last}", details)
        try:
            score = float(json.loads(stdout.strip().splitlines()[-1])["score"])
        except (ValueError, KeyError, IndexError, TypeError):
            return GradeResult(self.name, None, f"python grader printed no score: {stdout[-200:]!r}", details)
        if not math.isfinite(score):
            return GradeResult(self.name, None, f"python grader returned {score}", details)
        return GradeResult(self.name, score, details=details)


# -- multi, and building a grader from its JSON ---------------------------------------------


class Multi:
    def __init__(self, spec: dict[str, Any], provider: LogprobProvider | None, cache=None,
                 trust_grader_code: bool = False):
        require(spec, "graders", "calculate_output")
        graders = spec["graders"]
        if isinstance(graders, dict) and "type" in graders:  # one grader, named by its own name
            graders = {graders.get("name", "grader"): graders}
        if not isinstance(graders, dict) or not graders:
            raise GraderConfigError("multi grader: graders must be a mapping of names to grader configs")
        self.name, self.formula = spec.get("name", "multi"), spec["calculate_output"]
        self.graders = {name: build_grader(sub, provider, cache, trust_grader_code) for name, sub in graders.items()}
        evaluate_formula(self.formula, {name: 1.0 for name in self.graders})  # refuse a bad formula up front

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        results = {name: grader.grade(sample, item) for name, grader in self.graders.items()}
        failed = {name: r.error for name, r in results.items() if r.score is None}
        details = {"graders": {name: r.score for name, r in results.items()}}
        if failed:  # one missing input makes the whole formula unknowable: not a 0
            return GradeResult(self.name, None, f"sub-graders without a grade: {failed}", details)
        values = {name: float(r.score) for name, r in results.items()}  # type: ignore[arg-type]
        try:
            return GradeResult(self.name, evaluate_formula(self.formula, values), details=details)
        except (ZeroDivisionError, ValueError, OverflowError) as exc:
            return GradeResult(self.name, None, f"calculate_output failed: {exc}", details)


class _ItemErrorsUnscored:
    """A template that names something an item lacks makes that item's grade unknown (None with
    the reason), not a crash of the whole run and not a 0."""

    def __init__(self, grader: Grader):
        self.grader = grader
        self.name = grader.name

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        try:
            return self.grader.grade(sample, item)
        except GraderConfigError as error:
            return GradeResult(self.name, None, str(error))


def build_grader(spec: dict[str, Any], provider: LogprobProvider | None = None, cache=None,
                 trust_grader_code: bool = False) -> Grader:
    """`trust_grader_code`: run `python` graders without the sandbox (where it cannot be had
    they are otherwise refused with a GraderConfigError saying why)."""
    return _ItemErrorsUnscored(_build(spec, provider, cache, trust_grader_code))


def _build(spec: dict[str, Any], provider: LogprobProvider | None, cache, trust_grader_code: bool = False) -> Grader:
    kind = spec.get("type")
    if kind == "string_check":
        return StringCheck(spec)
    if kind == "text_similarity":
        return TextSimilarity(spec)
    if kind == "python":
        return PythonGrader(spec, trust_grader_code=trust_grader_code)
    if kind == "score_model":
        return ScoreModel(spec, provider, cache)
    if kind == "label_model":
        return LabelModel(spec, provider, cache)
    if kind == "multi":
        return Multi(spec, provider, cache, trust_grader_code)
    raise GraderConfigError(
        f"grader type {kind!r} is not one of string_check, text_similarity, score_model, label_model, python, multi"
    )


class GraderJudge:
    """An OpenAI grader as a pointwise judge: `score(prompts, completions, **columns) -> [Judgment]`.

    Each completion is the sample's `output_text`; the item is the dataset row: the prompt (as
    `prompt` and `question`) plus the row's value of every column (`{{ item.reference }}` reads
    the `reference` column; a None value is a field the row lacks). The reward is the grade as
    OpenAI defines it for the grader; a grade that could not be made is unscored, never 0."""

    supports_pairwise = False
    supports_groups = False

    def __init__(self, grader: Grader):
        self.grader = grader
        self.judge_id = f"grader/{grader.name}"

    def score(self, prompts: Sequence[str], completions: Sequence[str], **columns: Sequence[Any]) -> list[Judgment]:
        check_columns(columns, len(prompts))
        judgments = []
        for k, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            row = {name: values[k] for name, values in columns.items() if values[k] is not None}
            item = {"prompt": prompt, "question": prompt, **row}
            started = time.perf_counter()
            result = self.grader.grade({"output_text": completion}, item)
            scored = result.score is not None
            details = dict(result.details)
            cached = bool(details.pop("cached", False))  # a model grader's answer from the cache: the record says so
            judgments.append(Judgment(
                kind="score", question=prompt, answer=completion, judge_id=self.judge_id,
                status="scored" if scored else "unscored", score=result.score, reward=result.score,
                confidence=1.0 if scored else None, error=result.error, details=details, cached=cached,
                latency_s=time.perf_counter() - started,
            ))
        return distrust_all(judgments)  # a NaN or infinite grade is unscored, never a reward
