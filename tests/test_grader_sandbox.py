"""OpenAI `python` graders are untrusted code: each test is an attack that worked before the
sandbox (judgerl.judges.sandbox) and must not now. Graders answer 1.0 when the attack worked and
0.0 when it was blocked; a blocked attack may also end unscored, never with the secret in the
result."""

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import judgerl
from judgerl.judges import openai_graders
from judgerl.judges.cache import JudgmentCache
from judgerl.judges.openai_graders import GraderConfigError, build_grader
from judgerl.judges.sandbox import MAX_PROCESSES, sandbox_available

AVAILABLE, WHY = sandbox_available()
needs_sandbox = pytest.mark.skipif(not AVAILABLE, reason=f"no sandbox here: {WHY}")
SAMPLE = {"output_text": "Paris"}


def grade(source, item=None, timeout_s=None):
    grader = build_grader({"type": "python", "name": "attack", "source": source})
    if timeout_s is not None:
        grader.grader.timeout_s = timeout_s
    return grader.grade(SAMPLE, item or {})


def marker():
    """A unique `sleep` duration: the command line of the attack's processes, looked for on the host."""
    return f"{40 + random.random():.9f}"


def alive(mark, wait_s=2.0):
    """Host processes (not zombies) whose command line holds `mark`, after up to wait_s for them to go."""
    deadline = time.monotonic() + wait_s
    while True:
        found = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if mark.encode() in cmdline and state != "Z":
                found.append(int(entry))
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def blocked(result):
    return result.score in (0.0, None)


@needs_sandbox
def test_a_normal_grader_still_grades_and_names_its_isolation():
    result = grade("def grade(sample, item):\n    return 0.75 if item['ref'] in sample['output_text'] else 0.0\n",
                   {"ref": "Paris"})
    assert result.score == 0.75 and result.error is None
    assert result.details["isolation"].startswith("sandbox:")
    scratch = grade("def grade(s, i):\n    open('notes.txt', 'w').write('x' * 1000)\n"
                    "    return len(open('notes.txt').read()) / 1000\n")
    assert scratch.score == 1.0  # a scratch folder of its own is writable


@needs_sandbox
def test_the_parent_environment_and_its_api_key_are_out_of_reach(tmp_path):
    # /proc/<pid>/environ shows a process's environment as it started, so the judging process is a
    # fresh interpreter started with the key, as `OPENAI_API_KEY=... judgerl judge` would be.
    canary = f"sk-canary-{random.getrandbits(64):016x}"
    source = (
        "import os\n"
        "def grade(sample, item):\n"
        "    seen = ''\n"
        "    for pid in {os.getppid(), 1, *(int(p) for p in os.listdir('/proc') if p.isdigit())}:\n"
        "        try:\n"
        "            seen += open('/proc/%d/environ' % pid, 'rb').read().decode('latin-1')\n"
        "        except OSError:\n"
        "            pass\n"
        "    if 'sk-canary' in seen:\n"
        "        raise RuntimeError('leaked ' + seen[seen.index('sk-canary'):][:60])\n"
        "    return float('OPENAI_API_KEY' in os.environ)\n"
    )
    script = ("import json, sys\nfrom judgerl.judges.openai_graders import build_grader\n"
              "r = build_grader({'type': 'python', 'name': 'p', 'source': sys.stdin.read()}).grade({'output_text': 'x'}, {})\n"
              "print(json.dumps({'score': r.score, 'error': r.error, 'details': r.details}))\n")
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OPENAI_API_KEY": canary,
                   "PYTHONPATH": str(Path(judgerl.__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", script], input=source, capture_output=True, text=True,
                          env=environment, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert canary not in done.stdout + done.stderr
    assert json.loads(done.stdout)["score"] == 0.0  # it ran, and found nothing


@needs_sandbox
def test_host_files_the_judgment_cache_and_the_repo_cannot_be_read(tmp_path):
    cache = JudgmentCache(tmp_path / "judgments.sqlite")
    cache.put("k" * 64, "judge", {"prompt": "p"}, {"top_logprobs": [["5", -0.01]], "text": "5"})
    cache.close()
    targets = ["/etc/passwd", str(tmp_path / "judgments.sqlite"), str(Path(__file__).resolve()),
               str(Path(judgerl.__file__).resolve()), str(Path.home() / ".cache" / "judgerl" / "judgments.sqlite"),
               str(Path.home() / ".ssh"), str(Path.home() / ".bashrc")]
    targets = [target for target in targets if os.path.exists(target)]
    assert len(targets) >= 4
    source = (
        "import os\n"
        "def grade(sample, item):\n"
        "    read = 0\n"
        "    for path in item['targets']:\n"
        "        try:\n"
        "            if os.path.isdir(path):\n"
        "                os.listdir(path)\n"
        "            else:\n"
        "                open(path, 'rb').read(1)\n"
        "            read += 1\n"
        "        except OSError:\n"
        "            pass\n"
        "    return float(read)\n"
    )
    for target in targets:  # one at a time, so a failure names the file
        assert grade(source, {"targets": [target]}).score == 0.0, target


@needs_sandbox
def test_host_files_cannot_be_written_nor_the_judgment_cache_rewritten(tmp_path):
    database = tmp_path / "judgments.sqlite"
    cache = JudgmentCache(database)
    cache.put("k" * 64, "judge", {"prompt": "p"}, {"top_logprobs": [["1", -0.01]], "text": "1"})
    cache.close()
    before = database.read_bytes()
    planted = [tmp_path / "planted.txt", Path.home() / f".judgerl-planted-{random.getrandbits(32):08x}"]
    source = (
        "def grade(sample, item):\n"
        "    wrote = 0\n"
        "    for path in item['plant']:\n"
        "        try:\n"
        "            open(path, 'w').write('planted')\n"
        "            wrote += 1\n"
        "        except OSError:\n"
        "            pass\n"
        "    try:\n"
        "        with open(item['cache'], 'r+b') as f:\n"
        "            f.write(b'tampered')\n"
        "        wrote += 1\n"
        "    except OSError:\n"
        "        pass\n"
        "    return float(wrote)\n"
    )
    try:
        result = grade(source, {"plant": [str(p) for p in planted], "cache": str(database)})
        assert result.score == 0.0
        assert not any(path.exists() for path in planted)
        assert database.read_bytes() == before
    finally:
        for path in planted:
            path.unlink(missing_ok=True)


@needs_sandbox
def test_a_fork_bomb_is_bounded_and_leaves_nothing_behind():
    mark = marker()
    source = (
        "import os\n"
        "def grade(sample, item):\n"
        "    made = 0\n"
        "    try:\n"
        "        while made < 150:\n"
        "            if os.fork() == 0:\n"
        "                os.execv('/usr/bin/sleep', ['sleep', item['mark']])\n"
        "            made += 1\n"
        "    except OSError:\n"
        "        pass\n"
        "    return float(made)\n"
    )
    started = time.monotonic()
    result = grade(source, {"mark": mark}, timeout_s=5.0)
    assert time.monotonic() - started < 8.0
    assert result.score is None or result.score <= MAX_PROCESSES
    assert alive(mark) == []


@needs_sandbox
def test_a_setsid_child_does_not_outlive_its_grader():
    mark = marker()
    source = (
        "import os\n"
        "def grade(sample, item):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            os.execv('/usr/bin/sleep', ['sleep', item['mark']])\n"
        "        os._exit(0)\n"
        "    return 1.0\n"
    )
    assert grade(source, {"mark": mark}).score == 1.0
    assert alive(mark) == []


@needs_sandbox
def test_a_grader_that_times_out_takes_all_its_processes_with_it():
    mark = marker()
    source = (  # a detached child, then the grader leaves our process group itself and hangs
        "import os\n"
        "def grade(sample, item):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        os.execv('/usr/bin/sleep', ['sleep', item['mark']])\n"
        "    os.setsid()\n"
        "    os.execv('/usr/bin/sleep', ['sleep', item['mark']])\n"
    )
    started = time.monotonic()
    result = grade(source, {"mark": mark}, timeout_s=1.0)
    assert result.score is None and "timed out" in result.error
    assert time.monotonic() - started < 5.0
    assert alive(mark) == []


@needs_sandbox
def test_no_network_not_even_loopback_nor_a_host_unix_socket(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    unix_path = str(tmp_path / "service.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    unix.listen()
    source = (  # _socket: the plain socket module is patched in the runner, the kernel must hold
        "import _socket\n"
        "def grade(sample, item):\n"
        "    reached = 0\n"
        "    for family, address in ((_socket.AF_INET, ('127.0.0.1', item['port'])), (_socket.AF_UNIX, item['unix'])):\n"
        "        s = _socket.socket(family, _socket.SOCK_STREAM)\n"
        "        s.settimeout(2)\n"
        "        try:\n"
        "            s.connect(address)\n"
        "            reached += 1\n"
        "        except OSError:\n"
        "            pass\n"
        "    return float(reached)\n"
    )
    try:
        assert blocked(grade(source, {"port": listener.getsockname()[1], "unix": unix_path}))
    finally:
        listener.close()
        unix.close()


def test_without_the_sandbox_python_graders_are_refused_unless_trusted(monkeypatch, tmp_path):
    reason = "unshare: user namespaces are not allowed here (test)"
    monkeypatch.setattr(openai_graders, "sandbox_available", lambda *args: (False, reason))
    spec = {"type": "python", "name": "p", "source": "def grade(s, i):\n    return 0.5\n"}
    with pytest.raises(GraderConfigError) as refused:
        build_grader(spec)
    assert reason in str(refused.value) and "--trust-grader-code" in str(refused.value)
    assert "trust_grader_code" in str(refused.value)
    with pytest.raises(GraderConfigError, match="--trust-grader-code"):  # inside a multi grader too
        build_grader({"type": "multi", "name": "m", "calculate_output": "p", "graders": {"p": spec}})
    trusted = build_grader(spec, trust_grader_code=True).grade(SAMPLE, {})
    assert trusted.score == 0.5 and trusted.details["isolation"].startswith("none (trust_grader_code)")
    # the judge built from a config: refused, or run when judge.trust_grader_code is set
    from judgerl.config import JudgeConfig
    from judgerl.build import build_judge

    grader_file = tmp_path / "grader.json"
    grader_file.write_text(json.dumps(spec))
    with pytest.raises(GraderConfigError, match="--trust-grader-code"):
        build_judge(JudgeConfig(method="grader", grader_file=str(grader_file), cache=False))
    judge = build_judge(JudgeConfig(method="grader", grader_file=str(grader_file), cache=False, trust_grader_code=True))
    assert judge.score(["q"], ["a"])[0].reward == 0.5
    from judgerl.cli import build_parser

    assert build_parser().parse_args(["judge", "in.jsonl", "--mode", "grader", "--grader", "g.json",
                                      "--trust-grader-code"]).trust_grader_code


@needs_sandbox
def test_a_sandbox_lost_after_the_grader_was_built_leaves_items_unscored(monkeypatch):
    grader = build_grader({"type": "python", "name": "p", "source": "def grade(s, i):\n    return 1.0\n"})
    monkeypatch.setattr(openai_graders, "sandbox_available", lambda *args: (False, "gone (test)"))
    result = grader.grade(SAMPLE, {})
    assert result.score is None and "--trust-grader-code" in result.error and "gone (test)" in result.error


@needs_sandbox
def test_output_is_capped_and_the_scratch_folder_is_size_limited():
    from judgerl.judges.sandbox import MAX_OUTPUT, run_python

    done = run_python("import sys\nsys.stdout.write('x' * (5 * 1024 * 1024))\n", timeout_s=10)
    assert done.returncode == 0 and len(done.stdout) == MAX_OUTPUT
    full = run_python("open('big', 'wb').write(b'x' * (64 * 1024 * 1024))\n", timeout_s=10)
    assert full.returncode != 0 and b"File too large" in full.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="as root, a user namespace maps the sandbox to root")
def test_the_probe_refuses_a_half_isolated_sandbox():
    # A user namespace started by root maps its processes to root, whom the process limit does not
    # bind: the probe notices and that mode is refused rather than used.
    available, reason = sandbox_available(user_namespace=True)
    assert not available and "process limit does not hold" in reason
