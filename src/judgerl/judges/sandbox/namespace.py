"""The sandbox's namespaces and private root: the shell script that builds them (run by `unshare`
as the new pid namespace's init), the prelude that sets the rlimits, and the command line that
starts both with the base interpreter."""

from __future__ import annotations

import os
import sys
import sysconfig

SANDBOX_UID = 65534
MAX_PROCESSES = 16  # memory is limited per process: in all at most MAX_PROCESSES x memory_mb
SCRATCH_MB = 16
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

ENVIRONMENT = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}


def interpreter() -> tuple[str, str]:
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


def site_dirs() -> list[str]:
    """The running environment's package folders (a venv's site-packages), mounted read-only and
    put on sys.path in the sandbox so that graders can import numpy and the like, as before."""
    found: list[str] = []
    for key in ("purelib", "platlib"):
        path = os.path.realpath(sysconfig.get_paths()[key])
        if os.path.isdir(path) and ":" not in path and path not in found:
            found.append(path)
    return found


def user_namespace_default() -> bool:
    return os.geteuid() != 0


def isolation_summary(user_namespace: bool, memory_mb: int, timeout_s: float) -> str:
    who = "the mapped user without capabilities" if user_namespace else f"uid {SANDBOX_UID} without capabilities"
    spaces = ("user, " if user_namespace else "") + "pid, mount, network, ipc and uts namespaces"
    return (f"sandbox: {spaces}; a private read-only root (system libraries, Python and its packages only), a fresh /proc, "
            f"{SCRATCH_MB} MB scratch /tmp; {who}, no_new_privs; at most {MAX_PROCESSES} processes, "
            f"{memory_mb} MB, {max(1, int(timeout_s + 0.999))} s CPU; all its processes killed at the end")


def command(code: str, limits: list[int], root: str, user_namespace: bool) -> list[str]:
    prefix, python = interpreter()
    namespaces = ["--mount", "--pid", "--fork", "--kill-child", "--net", "--ipc", "--uts"]
    if user_namespace:
        namespaces = ["--user", "--map-root-user", *namespaces]
    sites = ":".join(site_dirs())
    return ["unshare", *namespaces, "--", "sh", "-c", _SETUP, "judgerl-sandbox", root, prefix, python,
            "caps" if user_namespace else "uid", str(SCRATCH_MB), sites,
            "-c", _PRELUDE, ",".join(str(v) for v in limits), code, sites]
