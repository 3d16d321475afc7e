"""sandbox_available: run a probe snippet in the sandbox once per process and check that the
isolation really holds; where it does not, say why (callers then refuse untrusted code)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from judgerl.judges.sandbox.namespace import (ENVIRONMENT, SANDBOX_UID, interpreter, isolation_summary, site_dirs,
                                              user_namespace_default)
from judgerl.judges.sandbox.runner import SandboxResult, run_python

_PROBE = r"""
import json, os, socket, sys
paths, readonly = json.loads(sys.stdin.read())
def visible(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False
def writable(path):
    try:
        open(path, "w").close()
        return True
    except OSError:
        return False
try:
    socket.create_connection(("127.0.0.1", 9), timeout=1).close()
    network = True
except OSError:
    network = False
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
forked = 0
try:
    for _ in range(12):  # the probe runs with a limit of 4 processes: a fork past it must fail
        if os.fork() == 0:
            os.execv("/usr/bin/sleep", ["sleep", "60"])
        forked += 1
except OSError:
    pass
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({
    "pid": os.getpid(), "uid": os.getuid(), "cap_eff": int(status["CapEff"].strip(), 16),
    "cap_bnd": int(status["CapBnd"].strip(), 16), "no_new_privs": status.get("NoNewPrivs", "").strip(),
    "pids": pids,
    "environment": sorted(os.environ), "visible": [p for p in paths if visible(p)],
    "network": network, "forked": forked, "root_writable": writable("/judgerl-probe"), "scratch_writable": writable("/tmp/probe"),
    "mounts_writable": [p for p in readonly if writable(os.path.join(p, ".judgerl-probe"))],
}))
"""

_probed: dict[bool, tuple[bool, str]] = {}
_probe_lock = threading.Lock()


def sandbox_available(user_namespace: bool | None = None) -> tuple[bool, str]:
    """(True, what isolates) when the sandbox can be built here and holds; else (False, why not).
    Runs a probe once per process (and mode) and remembers the answer."""
    if user_namespace is None:
        user_namespace = user_namespace_default()
    with _probe_lock:
        if user_namespace not in _probed:
            _probed[user_namespace] = _probe(user_namespace)
        return _probed[user_namespace]


_IN_THE_SANDBOX = {"/", "/tmp", "/dev", "/proc", "/etc", "/etc/ld.so.cache"}  # exist there, as its own


def _mounted() -> list[str]:
    """Host folders the sandbox shows (read-only), on purpose."""
    return [os.path.realpath(sys.base_prefix), *site_dirs(), "/usr", "/bin", "/lib", "/lib64"]


def _canaries(paths: list[str]) -> list[str]:
    """Host paths the sandbox must not see. Skips what is inside a folder it mounts on purpose;
    an ancestor of such a folder (the home folder holding ~/.pyenv, the repo holding .venv)
    stands in by its other entries."""
    mounted = _mounted()
    found: list[str] = []
    for path in paths:
        path = os.path.realpath(path)
        if not os.path.exists(path) or path in _IN_THE_SANDBOX or any(path == m or path.startswith(m + os.sep) for m in mounted):
            continue
        on_the_way = {m[len(path) + 1:].split(os.sep)[0] for m in mounted if m.startswith(path + os.sep)}
        if on_the_way:
            try:
                found += [os.path.join(path, e) for e in sorted(os.listdir(path)) if e not in on_the_way][:5]
            except OSError:
                pass
        else:
            found.append(path)
    return found


def _probe(user_namespace: bool) -> tuple[bool, str]:
    missing = _missing_prerequisite()
    if missing:
        return False, missing
    result = _run_probe(user_namespace)
    if isinstance(result, str):
        return False, result
    mode = "unshare --user (not root)" if user_namespace else "unshare as root"
    if result.timed_out:
        return False, f"the sandbox probe ({mode}) did not finish"
    if result.returncode != 0:
        last = (result.stderr.decode(errors="replace").strip().splitlines() or [f"exit {result.returncode}"])[-1]
        return False, f"the sandbox cannot be set up ({mode}): {last}"
    try:
        seen = json.loads(result.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False, f"the sandbox probe printed no report: {result.stdout[-200:]!r}"
    problems = _isolation_problems(seen, user_namespace)
    if problems:
        return False, f"the sandbox does not hold ({mode}): " + "; ".join(problems)
    return True, isolation_summary(user_namespace, 512, 10.0)


def _missing_prerequisite() -> str | None:
    """Why the sandbox cannot even be started here (not Linux, a tool or the interpreter missing), or None."""
    if sys.platform != "linux":
        return f"the sandbox needs Linux namespaces; this is {sys.platform}"
    for tool in ("unshare", "setpriv", "chroot", "mount", "sh"):
        if not shutil.which(tool, path=ENVIRONMENT["PATH"]):
            return f"{tool} (util-linux/coreutils) is not installed"
    try:
        interpreter()
    except FileNotFoundError as error:
        return str(error)
    return None


def _run_probe(user_namespace: bool) -> SandboxResult | str:
    """The probe's result, with a fresh canary file among the host paths it must not see; or why
    unshare could not be started."""
    canary_dir = tempfile.mkdtemp(prefix="judgerl-canary-")
    try:
        canary = os.path.join(canary_dir, "canary")
        Path(canary).write_text("canary")
        hidden = _canaries([canary, "/etc/passwd", str(Path(__file__).resolve()), str(Path.home()), os.getcwd()])
        try:
            readonly = [path for path in _mounted() if os.path.isdir(path)]
            return run_python(_PROBE, json.dumps([hidden, readonly]).encode(), timeout_s=20.0, memory_mb=256,
                              max_processes=4, user_namespace=user_namespace)
        except OSError as error:
            return f"unshare could not be started: {error}"
    finally:
        shutil.rmtree(canary_dir, ignore_errors=True)


def _isolation_problems(seen: dict, user_namespace: bool) -> list[str]:
    """What the probe's report (`seen`, printed by _PROBE from inside) shows leaking; empty when it holds."""
    problems = []
    if seen["forked"] >= 4:
        problems.append(f"the process limit does not hold ({seen['forked']} processes under a limit of 4)")
    if seen["pid"] != 1 or len(seen["pids"]) > 2:
        problems.append(f"the probe is not alone in a new pid namespace (pid {seen['pid']}, {len(seen['pids'])} processes)")
    if not user_namespace and seen["uid"] != SANDBOX_UID:
        problems.append(f"the probe runs as uid {seen['uid']}, not {SANDBOX_UID}")
    if seen["cap_eff"] or seen["cap_bnd"]:
        problems.append("the probe holds capabilities")
    if seen["no_new_privs"] != "1":
        problems.append("no_new_privs is not set")
    visible = seen["visible"]  # canaries are never inside the folders mounted on purpose
    if visible:
        problems.append(f"host paths are visible: {visible}")
    extra = set(seen["environment"]) - set(ENVIRONMENT) - {"PWD"}  # sh exports PWD=/
    if extra:
        problems.append(f"environment variables leak in: {sorted(extra)}")
    if seen["network"]:
        problems.append("127.0.0.1 is reachable")
    if seen["root_writable"]:
        problems.append("the root is writable")
    if seen["mounts_writable"]:
        problems.append(f"host folders are writable: {seen['mounts_writable']}")
    if not seen["scratch_writable"]:
        problems.append("the scratch /tmp is not writable")
    return problems
