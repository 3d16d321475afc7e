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

The package: `namespace` (the setup script run in the new namespaces and the command that starts
it), `runner` (run_python: starting, feeding, draining and killing the namespace) and `probe`
(sandbox_available: does the isolation hold here).
"""

from judgerl.judges.sandbox.namespace import MAX_PROCESSES, SANDBOX_UID, SCRATCH_MB, isolation_summary
from judgerl.judges.sandbox.probe import sandbox_available
from judgerl.judges.sandbox.runner import MAX_OUTPUT, SandboxResult, run_python, wait_gone

__all__ = ["MAX_OUTPUT", "MAX_PROCESSES", "SANDBOX_UID", "SCRATCH_MB", "SandboxResult", "isolation_summary",
           "run_python", "sandbox_available", "wait_gone"]
