"""Run an untrusted Python snippet with nothing of the host in reach (Linux namespaces, no root).

    result = run_python(code, stdin=b"...", timeout_s=10, memory_mb=512)

`code` (trusted: the caller's runner) is run by the base interpreter (`sys.base_prefix`, with
`-I -S`) inside `unshare --mount --pid --net --ipc --uts` (plus `--user` when not root):

- a private root on a tmpfs holding only read-only bind mounts of /usr, /bin, /lib, /lib64,
  /etc/ld.so.cache, the Python prefix and the running environment's site-packages (on sys.path,
  so numpy & co. import as before; .pth files are not run), /dev/null, /dev/zero and /dev/urandom,
  then made read-only itself; no /etc (no passwd, no keys), no home folder, repo, run folder or
  judgment cache;
- a fresh /proc of a new pid namespace: the snippet is pid 1 and sees only its own processes, so
  the judging process (its environment, its memory) is not there to be read;
- a size-limited tmpfs as /tmp, the working directory, gone when the snippet ends;
- a network namespace with no interface up (not even loopback), its own System V IPC;
- uid/gid 65534 with no supplementary groups (as root; in a user namespace the mapped user),
  an empty capability bounding set, no_new_privs;
- rlimits set before the snippet runs: processes, address space, CPU seconds, file size, open
  files, no core dumps;
- on a timeout the namespace's init is killed (SIGKILL through a pidfd: it may have left our
  process group), which makes the kernel kill every process in the namespace, `setsid` children
  included; when the snippet ends by itself the same happens. stdout/stderr are read up to a cap.

`sandbox_available()` runs a probe snippet once per process and checks that the isolation really
holds (a host canary file, the judging process's working directory and /etc/passwd are not
visible, pid 1 is the probe, no capability, no network, a read-only root); where it does not, it
says why, and callers must refuse to run untrusted code rather than run it half-isolated.
Standard library only.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SANDBOX_UID = 65534
MAX_PROCESSES = 16  # memory is limited per process: in all at most MAX_PROCESSES x memory_mb
SCRATCH_MB = 16
MAX_OUTPUT = 1 << 20  # bytes kept of stdout and of stderr each; the rest is read and dropped
SETUP_FAILED = 125  # exit status of the setup script when a step fails (its stderr names the step)

# Run by `sh` as the namespace's pid 1, as root of the new namespaces; ends by exec'ing the
# interpreter inside the new root, so the sandboxed code itself becomes pid 1.
_SETUP = r"""
fail() { echo "judgerl sandbox setup failed: $*" >&2; exit 125; }
R="$1"; PREFIX="$2"; PY="$3"; DROP="$4"; SCRATCH="$5"; SITES="$6"; shift 6
robind() {
  mount --bind "$1" "$2" || fail "bind mount of $1"
  mount -o remount,bind,ro,nosuid,nodev "$2" || fail "read-only remount of $1"
}
mount -t tmpfs -o size=1m,mode=755,nosuid,nodev judgerl-sandbox "$R" || fail "tmpfs root on $R"
for d in /usr /bin /lib /lib64; do
  if [ -L "$d" ]; then ln -s "$(readlink "$d")" "$R$d" || fail "symlink $d"
  elif [ -d "$d" ]; then mkdir "$R$d" || fail "mkdir $d"; robind "$d" "$R$d"; fi
done
mkdir "$R/etc" "$R/dev" "$R/proc" "$R/tmp" || fail "mkdir etc dev proc tmp"
if [ -f /etc/ld.so.cache ]; then : > "$R/etc/ld.so.cache"; robind /etc/ld.so.cache "$R/etc/ld.so.cache"; fi
if [ ! -e "$R$PREFIX" ]; then mkdir -p "$R$PREFIX" || fail "mkdir $PREFIX"; robind "$PREFIX" "$R$PREFIX"; fi
rest="$SITES"
while [ -n "$rest" ]; do  # package folders (a venv's site-packages), separated by ':'
  site="${rest%%:*}"
  case "$rest" in *:*) rest="${rest#*:}" ;; *) rest="" ;; esac
  if [ -n "$site" ] && [ ! -e "$R$site" ]; then mkdir -p "$R$site" || fail "mkdir $site"; robind "$site" "$R$site"; fi
done
for f in null zero urandom; do
  : > "$R/dev/$f" || fail "/dev/$f"
  mount --bind "/dev/$f" "$R/dev/$f" || fail "bind mount of /dev/$f"
done
mount -t proc -o nosuid,nodev,noexec proc "$R/proc" || fail "fresh /proc (new pid namespace)"
mount -t tmpfs -o "size=${SCRATCH}m,mode=1777,nosuid,nodev" judgerl-scratch "$R/tmp" || fail "scratch tmpfs"
mount -o remount,bind,ro,nosuid,nodev "$R" || fail "read-only root"
SETPRIV="$(command -v setpriv)" || fail "setpriv not found"  # under /usr or /bin: the same path inside
if [ "$DROP" = uid ]; then
  exec chroot "$R" "$SETPRIV" --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
    --bounding-set=-all --no-new-privs -- "$PY" -I -S "$@"
fi
exec chroot "$R" "$SETPRIV" --inh-caps=-all --bounding-set=-all --no-new-privs -- "$PY" -I -S "$@"
"""

# Trusted: runs inside the sandbox first, sets the limits, then runs the caller's code.
_PRELUDE = r"""
import os, resource, sys
for _name, _value in zip(("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE"),
                         (int(v) for v in sys.argv[1].split(","))):
    resource.setrlimit(getattr(resource, _name), (_value, _value))
os.chdir("/tmp")
sys.path.extend(p for p in sys.argv[3].split(":") if p)  # the package folders; .pth files are not run
_code = sys.argv[2]
del sys.argv[1:], _name, _value
exec(compile(_code, "<judgerl sandbox>", "exec"), {"__name__": "__main__"})
"""

_ENVIRONMENT = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}


@dataclass
class SandboxResult:
    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool
    setup_failed: bool
    isolation: str
    """What held the code, for the record."""


def _interpreter() -> tuple[str, str]:
    """(prefix, interpreter) of the base Python, both with symlinks resolved (the chroot holds
    only the prefix, so the interpreter must be a real file inside it)."""
    prefix = os.path.realpath(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [getattr(sys, "_base_executable", ""), os.path.join(prefix, "bin", version),
                  os.path.join(prefix, "bin", "python3"), sys.executable]
    for candidate in candidates:
        if candidate:
            real = os.path.realpath(candidate)
            if os.path.isfile(real) and os.access(real, os.X_OK) and (
                    real.startswith(prefix + os.sep) or real.startswith("/usr/")):
                return prefix, real
    raise FileNotFoundError(f"no Python interpreter under {prefix}")


def _site_dirs() -> list[str]:
    """The running environment's package folders (a venv's site-packages), mounted read-only and
    put on sys.path in the sandbox so that graders can import numpy and the like, as before."""
    found: list[str] = []
    for key in ("purelib", "platlib"):
        path = os.path.realpath(sysconfig.get_paths()[key])
        if os.path.isdir(path) and ":" not in path and path not in found:
            found.append(path)
    return found


def _user_namespace_default() -> bool:
    return os.geteuid() != 0


def isolation_summary(user_namespace: bool, memory_mb: int, timeout_s: float) -> str:
    who = "the mapped user without capabilities" if user_namespace else f"uid {SANDBOX_UID} without capabilities"
    spaces = ("user, " if user_namespace else "") + "pid, mount, network, ipc and uts namespaces"
    return (f"sandbox: {spaces}; a private read-only root (system libraries, Python and its packages only), a fresh /proc, "
            f"{SCRATCH_MB} MB scratch /tmp; {who}, no_new_privs; at most {MAX_PROCESSES} processes, "
            f"{memory_mb} MB, {max(1, int(timeout_s + 0.999))} s CPU; all its processes killed at the end")


def _command(code: str, limits: list[int], root: str, user_namespace: bool) -> list[str]:
    prefix, interpreter = _interpreter()
    namespaces = ["--mount", "--pid", "--fork", "--kill-child", "--net", "--ipc", "--uts"]
    if user_namespace:
        namespaces = ["--user", "--map-root-user", *namespaces]
    sites = ":".join(_site_dirs())
    return ["unshare", *namespaces, "--", "sh", "-c", _SETUP, "judgerl-sandbox", root, prefix, interpreter,
            "caps" if user_namespace else "uid", str(SCRATCH_MB), sites,
            "-c", _PRELUDE, ",".join(str(v) for v in limits), code, sites]


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
        user_namespace = _user_namespace_default()
    cpu = max(1, int(timeout_s + 0.999))
    limits = [memory_mb * 1024 * 1024, cpu, SCRATCH_MB * 1024 * 1024, 64, max_processes, 0]
    root = tempfile.mkdtemp(prefix="judgerl-sandbox-")  # only a mount point, left empty on the host
    isolation = isolation_summary(user_namespace, memory_mb, timeout_s)
    try:
        proc = subprocess.Popen(_command(code, limits, root, user_namespace), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(_ENVIRONMENT),
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


# -- the probe ---------------------------------------------------------------------------------

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
        user_namespace = _user_namespace_default()
    with _probe_lock:
        if user_namespace not in _probed:
            _probed[user_namespace] = _probe(user_namespace)
        return _probed[user_namespace]


_IN_THE_SANDBOX = {"/", "/tmp", "/dev", "/proc", "/etc", "/etc/ld.so.cache"}  # exist there, as its own


def _mounted() -> list[str]:
    """Host folders the sandbox shows (read-only), on purpose."""
    return [os.path.realpath(sys.base_prefix), *_site_dirs(), "/usr", "/bin", "/lib", "/lib64"]


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
    if sys.platform != "linux":
        return False, f"the sandbox needs Linux namespaces; this is {sys.platform}"
    for tool in ("unshare", "setpriv", "chroot", "mount", "sh"):
        if not shutil.which(tool, path=_ENVIRONMENT["PATH"]):
            return False, f"{tool} (util-linux/coreutils) is not installed"
    try:
        _interpreter()
    except FileNotFoundError as error:
        return False, str(error)
    canary_dir = tempfile.mkdtemp(prefix="judgerl-canary-")
    try:
        canary = os.path.join(canary_dir, "canary")
        Path(canary).write_text("canary")
        hidden = _canaries([canary, "/etc/passwd", str(Path(__file__).resolve()), str(Path.home()), os.getcwd()])
        try:
            readonly = [path for path in _mounted() if os.path.isdir(path)]
            result = run_python(_PROBE, json.dumps([hidden, readonly]).encode(), timeout_s=20.0, memory_mb=256,
                                max_processes=4, user_namespace=user_namespace)
        except OSError as error:
            return False, f"unshare could not be started: {error}"
    finally:
        shutil.rmtree(canary_dir, ignore_errors=True)
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
    extra = set(seen["environment"]) - set(_ENVIRONMENT) - {"PWD"}  # sh exports PWD=/
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
    if problems:
        return False, f"the sandbox does not hold ({mode}): " + "; ".join(problems)
    return True, isolation_summary(user_namespace, 512, 10.0)


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
