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
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Callable, Protocol, Sequence

from judgerl.judges.base import Judgment, check_columns
from judgerl.judges.calls import CachedCaller
from judgerl.judges.evidence import distrust_all
from judgerl.judges.logprobs import read_choices
from judgerl.judges.parsing import parse_score
from judgerl.judges.sandbox import run_python, sandbox_available
from judgerl.providers import LogprobProvider


class GraderConfigError(ValueError):
    """The grader JSON cannot be run: the message names the field."""


@dataclass
class GradeResult:
    name: str
    score: float | None
    """The grade as OpenAI defines it for this grader type; None when it could not be made."""
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Grader(Protocol):
    name: str

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult: ...


# -- templates ---------------------------------------------------------------------------------

_TEMPLATE = re.compile(r"\{\{\s*([a-zA-Z_]+)\.([^}\s]+)\s*\}\}")


def lookup(root: Any, path: str) -> Any:
    """'a.b[0].c' into nested dicts and lists."""
    current = root
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            current = current[int(part[1:-1])]
        else:
            current = current[part]
    return current


def render(template: str, sample: dict[str, Any], item: dict[str, Any]) -> str:
    namespaces = {"sample": sample, "item": item}

    def fill(match: re.Match[str]) -> str:
        namespace, path = match.group(1), match.group(2)
        if namespace not in namespaces:
            raise GraderConfigError(f"template {match.group(0)!r}: the namespaces are item and sample")
        try:
            value = lookup(namespaces[namespace], path)
        except (KeyError, IndexError, TypeError):
            raise GraderConfigError(f"template {match.group(0)!r}: no {path!r} in {namespace}") from None
        return value if isinstance(value, str) else json.dumps(value)

    return _TEMPLATE.sub(fill, template)


def _require(spec: dict[str, Any], *keys: str) -> None:
    missing = [key for key in keys if key not in spec]
    if missing:
        raise GraderConfigError(f"{spec.get('type')} grader {spec.get('name', '')!r} needs the field(s) {missing}")


# -- string_check ------------------------------------------------------------------------------


class StringCheck:
    OPERATIONS: dict[str, Callable[[str, str], bool]] = {
        "eq": lambda a, b: a == b,
        "ne": lambda a, b: a != b,
        "like": lambda a, b: b in a,
        "ilike": lambda a, b: b.lower() in a.lower(),
    }

    def __init__(self, spec: dict[str, Any]):
        _require(spec, "input", "reference", "operation")
        if spec["operation"] not in self.OPERATIONS:
            raise GraderConfigError(f"string_check operation must be one of {list(self.OPERATIONS)}, got {spec['operation']!r}")
        self.name, self.spec = spec.get("name", "string_check"), spec

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        text, reference = render(self.spec["input"], sample, item), render(self.spec["reference"], sample, item)
        return GradeResult(self.name, 1.0 if self.OPERATIONS[self.spec["operation"]](text, reference) else 0.0)


# -- text_similarity ---------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _ngrams(words: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def bleu(candidate: str, reference: str, max_n: int = 4) -> float:
    """Sentence BLEU with add-one smoothing of the higher orders (Lin & Och 2004) and brevity penalty."""
    cand, ref = _words(candidate), _words(reference)
    if not cand or not ref:
        return 0.0
    log_precisions = []
    for n in range(1, max_n + 1):
        overlap = sum((_ngrams(cand, n) & _ngrams(ref, n)).values())
        total = max(len(cand) - n + 1, 0)
        if n == 1:
            if overlap == 0:
                return 0.0
            log_precisions.append(math.log(overlap / total))
        else:
            log_precisions.append(math.log((overlap + 1) / (total + 1)))
    brevity = 1.0 if len(cand) > len(ref) else math.exp(1 - len(ref) / len(cand))
    return brevity * math.exp(sum(log_precisions) / max_n)


def gleu(candidate: str, reference: str, max_n: int = 4) -> float:
    """Google-BLEU: min(precision, recall) over all 1..4-grams together (Wu et al. 2016)."""
    cand, ref = _words(candidate), _words(reference)
    cand_grams = sum((_ngrams(cand, n) for n in range(1, max_n + 1)), Counter())
    ref_grams = sum((_ngrams(ref, n) for n in range(1, max_n + 1)), Counter())
    if not cand_grams or not ref_grams:
        return 0.0
    overlap = sum((cand_grams & ref_grams).values())
    return min(overlap / sum(cand_grams.values()), overlap / sum(ref_grams.values()))


def rouge_n(candidate: str, reference: str, n: int) -> float:
    """ROUGE-N F1."""
    cand, ref = _ngrams(_words(candidate), n), _ngrams(_words(reference), n)
    overlap = sum((cand & ref).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(cand.values()), overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 from the longest common subsequence of words."""
    cand, ref = _words(candidate), _words(reference)
    if not cand or not ref:
        return 0.0
    table = [[0] * (len(ref) + 1) for _ in range(len(cand) + 1)]
    for i, a in enumerate(cand):
        for j, b in enumerate(ref):
            table[i + 1][j + 1] = table[i][j] + 1 if a == b else max(table[i][j + 1], table[i + 1][j])
    lcs = table[-1][-1]
    if not lcs:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


SIMILARITY: dict[str, Callable[[str, str], float]] = {
    "fuzzy_match": lambda a, b: SequenceMatcher(None, a, b).ratio(),
    "bleu": bleu,
    "gleu": gleu,
    **{f"rouge_{n}": (lambda a, b, n=n: rouge_n(a, b, n)) for n in range(1, 6)},
    "rouge_l": rouge_l,
}


class TextSimilarity:
    def __init__(self, spec: dict[str, Any]):
        _require(spec, "input", "reference", "evaluation_metric")
        metric = spec["evaluation_metric"]
        if metric in ("cosine", "meteor"):
            raise GraderConfigError(
                f"text_similarity metric {metric!r} needs an embedding model or WordNet that judgerl does not "
                f"ship; use one of {sorted(SIMILARITY)}, or a score_model grader"
            )
        if metric not in SIMILARITY:
            raise GraderConfigError(f"text_similarity evaluation_metric must be one of {sorted(SIMILARITY)}, got {metric!r}")
        self.name, self.spec, self.metric = spec.get("name", "text_similarity"), spec, SIMILARITY[metric]

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        text, reference = render(self.spec["input"], sample, item), render(self.spec["reference"], sample, item)
        score = self.metric(text, reference)
        result = GradeResult(self.name, score)
        if "pass_threshold" in self.spec:
            result.details["passed"] = score >= float(self.spec["pass_threshold"])
        return result


# -- python ------------------------------------------------------------------------------------

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
        _require(spec, "source")
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


# -- model graders -----------------------------------------------------------------------------


def _messages(spec: dict[str, Any], sample: dict[str, Any], item: dict[str, Any]) -> list[dict[str, str]]:
    messages = []
    for message in spec["input"]:
        content = message.get("content", "")
        if isinstance(content, dict):  # {"type": "input_text", "text": ...}
            content = content.get("text", "")
        elif isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        role = "system" if message.get("role") == "developer" else message.get("role", "user")
        messages.append({"role": role, "content": render(str(content), sample, item)})
    return messages


class ScoreModel:
    def __init__(self, spec: dict[str, Any], provider: LogprobProvider | None, cache=None):
        _require(spec, "input", "model")
        if provider is None:
            raise GraderConfigError(f"score_model grader {spec.get('name', '')!r} needs a provider to run its model")
        self.name, self.spec = spec.get("name", "score_model"), spec
        self.low, self.high = (float(v) for v in spec.get("range", [0, 1]))
        params = spec.get("sampling_params") or {}
        self.max_tokens = int(params.get("max_completions_tokens") or 256)
        self.caller = CachedCaller(provider, cache, f"{provider.name}#{self.name}", {"grader": spec})

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        messages = _messages(self.spec, sample, item)
        messages.append({"role": "user", "content": (
            f"Give your grade as a number from {self.low:g} to {self.high:g}. You may explain first; end with a "
            f"last line \"Score: N\", or reply with the JSON {{\"result\": N}}.")})
        [(response, cached, error)] = self.caller.responses([messages], max_tokens=self.max_tokens, top_k=0)
        if error or response is None:
            return GradeResult(self.name, None, error)
        text = response.get("text") or ""
        value = _json_result(text)
        if value is None:
            parsed = parse_score(text, self.low, self.high)
            value = parsed.value
            if value is None:
                return GradeResult(self.name, None, f"unparsed: {parsed.reason}", {"output": text})
        if not self.low <= value <= self.high:
            return GradeResult(self.name, None, f"score {value} outside {self.low:g}-{self.high:g}", {"output": text})
        return GradeResult(self.name, value, details={"output": text, "cached": cached})


def _json_result(text: str) -> float | None:
    match = re.search(r"\{[^{}]*\"result\"[^{}]*\}", text)
    if not match:
        return None
    try:
        return float(json.loads(match.group(0))["result"])
    except (ValueError, KeyError, TypeError):
        return None


class LabelModel:
    def __init__(self, spec: dict[str, Any], provider: LogprobProvider | None, cache=None):
        _require(spec, "input", "model", "labels", "passing_labels")
        if provider is None:
            raise GraderConfigError(f"label_model grader {spec.get('name', '')!r} needs a provider to run its model")
        if not set(spec["passing_labels"]) <= set(spec["labels"]):
            raise GraderConfigError("label_model passing_labels must be a subset of labels")
        self.name, self.spec, self.labels = spec.get("name", "label_model"), spec, list(spec["labels"])
        self.caller = CachedCaller(provider, cache, f"{provider.name}#{self.name}", {"grader": spec})

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> GradeResult:
        messages = _messages(self.spec, sample, item)
        messages.append({"role": "user", "content": "Reply with exactly one of these labels: " + ", ".join(self.labels)})
        [(response, cached, error)] = self.caller.responses([messages], max_tokens=8, top_k=20)
        if error or response is None:
            return GradeResult(self.name, None, error)
        reading = read_choices([tuple(pair) for pair in response["top_logprobs"]], self.labels)
        text = (response.get("text") or "").strip().strip(".").strip()
        if reading is not None and reading.refused:
            return GradeResult(self.name, None, reading.refused, details={"valid_mass": reading.coverage})
        if reading is not None:
            label = max(reading.probs, key=reading.probs.__getitem__)
            details = {"label": label, "label_probs": reading.probs}
        elif text.lower() in {label.lower() for label in self.labels}:
            label = next(label for label in self.labels if label.lower() == text.lower())
            details = {"label": label}
        else:
            return GradeResult(self.name, None, f"the model answered {text!r}, not one of {self.labels}")
        return GradeResult(self.name, 1.0 if label in self.spec["passing_labels"] else 0.0, details=details)


# -- multi -------------------------------------------------------------------------------------

_FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": min, "max": max, "abs": abs, "floor": math.floor, "ceil": math.ceil,
    "exp": math.exp, "sqrt": math.sqrt, "log": math.log,
}
_OPERATORS: dict[type, Callable[..., float]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a**b, ast.USub: lambda a: -a, ast.UAdd: lambda a: a,
}


def evaluate_formula(formula: str, values: dict[str, float]) -> float:
    """Arithmetic over grader names: numbers, + - * / **, min max abs floor ceil exp sqrt log."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise GraderConfigError(f"calculate_output names {node.id!r}, which is not one of the graders {sorted(values)}")
            return values[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.operand))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
            return float(_FUNCTIONS[node.func.id](*(walk(arg) for arg in node.args)))
        raise GraderConfigError(f"calculate_output: {ast.unparse(node)!r} is not allowed in a formula")

    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError as exc:
        raise GraderConfigError(f"calculate_output {formula!r} is not a formula: {exc.msg}") from None
    return walk(tree)


class Multi:
    def __init__(self, spec: dict[str, Any], provider: LogprobProvider | None, cache=None,
                 trust_grader_code: bool = False):
        _require(spec, "graders", "calculate_output")
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
