"""run_python: start the sandbox (namespace.command), feed its stdin, read its output up to a cap,
and on a timeout or at the end kill everything in its pid namespace."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from judgerl.judges.sandbox.namespace import (ENVIRONMENT, MAX_PROCESSES, SCRATCH_MB, SETUP_FAILED, command,
                                              isolation_summary, user_namespace_default)

MAX_OUTPUT = 1 << 20  # bytes kept of stdout and of stderr each; the rest is read and dropped


@dataclass
class SandboxResult:
    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool
    setup_failed: bool
    isolation: str
    """What held the code, for the record."""


def _drain(stream, keep: int, out: list[bytes]) -> None:
    kept = 0
    try:
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                break
            if kept < keep:
                out.append(chunk[: keep - kept])
                kept += len(out[-1])
    except (OSError, ValueError):
        pass


def _feed(stream, data: bytes) -> None:
    try:
        stream.write(data)
    except (BrokenPipeError, OSError, ValueError):
        pass
    finally:
        try:
            stream.close()
        except OSError:
            pass


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _parent_of(int(entry)) == pid:
            found.append(int(entry))
    return found


def _kill_namespace(proc: subprocess.Popen) -> None:
    """SIGKILL the pid namespace's init (unshare's only child): the kernel then kills every process
    in the namespace and unshare's wait for it returns only after they are gone. The init is found
    by its parent and held by a pidfd, since the sandboxed code may have left our process group."""
    for pid in _children(proc.pid):
        try:
            pidfd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            try:
                if _parent_of(pid) == proc.pid:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            continue
        try:
            if _parent_of(pid) == proc.pid:  # the pidfd holds unshare's child, not a reused pid
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                select.select([pidfd], [], [], 5.0)  # readable once it (and so its namespace) is gone
        except OSError:
            pass
        finally:
            os.close(pidfd)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # unshare itself (its child gets SIGKILL as parent-death signal)
    except (ProcessLookupError, PermissionError):
        pass


def run_python(code: str, stdin: bytes = b"", *, timeout_s: float = 10.0, memory_mb: int = 512,
               max_processes: int = MAX_PROCESSES, max_output: int = MAX_OUTPUT,
               user_namespace: bool | None = None) -> SandboxResult:
    """Run `code` in the sandbox with `stdin` as its standard input. Never raises for what the
    code does; raises OSError/FileNotFoundError only when unshare or Python cannot be started."""
    if user_namespace is None:
        user_namespace = user_namespace_default()
    cpu = max(1, int(timeout_s + 0.999))
    limits = [memory_mb * 1024 * 1024, cpu, SCRATCH_MB * 1024 * 1024, 64, max_processes, 0]
    root = tempfile.mkdtemp(prefix="judgerl-sandbox-")  # only a mount point, left empty on the host
    isolation = isolation_summary(user_namespace, memory_mb, timeout_s)
    try:
        proc = subprocess.Popen(command(code, limits, root, user_namespace), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(ENVIRONMENT),
                                cwd="/", start_new_session=True, close_fds=True)
        out: list[bytes] = []
        err: list[bytes] = []
        threads = [threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True),
                   threading.Thread(target=_drain, args=(proc.stdout, max_output, out), daemon=True),
                   threading.Thread(target=_drain, args=(proc.stderr, max_output, err), daemon=True)]
        for thread in threads:
            thread.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if proc.returncode is None:
                _kill_namespace(proc)
                proc.wait()
        for thread in threads:
            thread.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            stream.close()
        # unshare's own complaint when its child was killed by a signal it cannot re-raise
        stderr = b"".join(line for line in b"".join(err).splitlines(keepends=True)
                          if not line.startswith(b"unshare: sigprocmask"))
        setup_failed = proc.returncode == SETUP_FAILED and b"judgerl sandbox setup failed" in stderr
        return SandboxResult(None if timed_out else proc.returncode, b"".join(out), stderr, timed_out,
                             setup_failed, isolation)
    finally:
        try:
            os.rmdir(root)
        except OSError:
            pass


def wait_gone(marker: str, timeout_s: float = 5.0) -> list[int]:
    """Pids of host processes whose command line holds `marker`, after waiting up to timeout_s
    for them to go (for tests and diagnostics)."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker.encode() in cmdline and state != "Z":
                alive.append(int(entry))
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)
