"""Sandboxes: run a command in a scratch copy of a repository, contained.

One protocol, `Sandbox.run(workdir, command, timeout=..., files=..., cancel=...)`,
and three implementations:

- `BwrapSandbox` (bubblewrap): new user, PID, network, IPC, UTS and mount
  namespaces; the host read-only, the places that hold secrets or sockets
  (/root, /home, /run, /tmp, ...) replaced by empty tmpfs, the scratch copy the
  only writable host folder. Limits: wall time (the whole process tree is
  killed), CPU seconds and address space (rlimits), and, where this process
  may create cgroups (root, or a delegated cgroup v2 subtree), a pids and a
  memory cgroup per run; without cgroups, RLIMIT_NPROC inside the user
  namespace (it works for a non-root user, not for root: the kernel exempts
  uid 0's processes).
- `DockerSandbox`: any engine serving the Docker API (Docker, Podman's
  service) through the `docker` SDK: no network, memory, pids, CPU and wall
  time limits, a read-only root, the scratch copy bind-mounted as the only
  writable mount.
- `LocalSandbox`: no isolation at all; only when the user opts in
  (`sandbox = "none"`).

`pick_sandbox(name)` chooses one; asking for one that is not available raises
`SandboxUnavailable`, whose message says how to get one.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol, Sequence, runtime_checkable

from .errors import SweReasonerError
from .repo import safe_join

OUTPUT_LIMIT = 20_000  # bytes of output kept per run: the head and the tail, half each
DEFAULT_MEMORY_MB = 2048
DEFAULT_PIDS = 256
DEFAULT_TIMEOUT = 300.0
POLL_SECONDS = 0.1  # how often a running command's cancel token is checked

# Host paths a sandboxed command must not see: homes (ssh keys, tokens), sockets of
# daemons (a Docker socket is root on the host), temporary files of other programs.
HIDDEN_DIRS = ("/root", "/home", "/run", "/var/run", "/tmp", "/var/tmp", "/mnt", "/media",
               "/var/lib/docker", "/var/lib/containers", "/etc/ssh", "/var/mail", "/var/spool")
# Secret files readable by root; when bwrap runs as root the sandbox's uid maps to
# host uid 0, so owner-only files would be readable.
HIDDEN_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers")

INSTALL_HINT = """to run model-written code, swe-reasoner needs a sandbox. Either:
  - install bubblewrap:   sudo apt install bubblewrap   (dnf install bubblewrap, pacman -S bubblewrap)
  - or run a Docker-API engine (Docker, or Podman's service: podman system service) and
    pip install 'swe-reasoner[docker]', then pass --sandbox docker and an image with your toolchain
  - or, at your own risk, run it unsandboxed: --sandbox none (setting sandbox = "none")"""


class SandboxUnavailable(SweReasonerError):
    """The chosen sandbox cannot run here; the message says how to get one."""


@dataclass
class RunResult:
    exit_code: int | None  # None when there was no exit status (killed before it started)
    output: str  # stdout and stderr interleaved, head and tail kept when long
    seconds: float
    timed_out: bool = False
    killed_reason: str | None = None  # "timeout", "cancelled", "memory limit", "process limit", ...
    command: list[str] = field(default_factory=list)
    sandbox: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.killed_reason

    def describe(self) -> str:
        status = f"exit {self.exit_code}" if self.exit_code is not None else "no exit status"
        if self.timed_out:
            status = "timed out"
        if self.killed_reason and not self.timed_out:
            status += f", {self.killed_reason}"
        return f"{status} in {self.seconds:.2f}s"

    def to_dict(self) -> dict:
        return {"command": self.command, "exit_code": self.exit_code, "seconds": round(self.seconds, 3),
                "timed_out": self.timed_out, "killed_reason": self.killed_reason, "sandbox": self.sandbox,
                "output": self.output}


@runtime_checkable
class Sandbox(Protocol):
    name: str

    def run(self, workdir: Path, command: list[str], *, timeout: float,
            files: dict[str, str] | None = None, cancel=None,
            env: Mapping[str, str] | None = None) -> RunResult:
        """Run `command` with `workdir` (a scratch copy) as its current and only writable folder.

        `files` (relative path -> text) are written into `workdir` first. `cancel` is an
        agent.progress.CancelToken; a cancel kills the command within a second.
        """
        ...


# ---------------------------------------------------------------- output capture


class _Capture:
    """Reads a pipe to the end in a thread, keeping the first and last `limit`/2 bytes."""

    def __init__(self, stream, limit: int = OUTPUT_LIMIT):
        self.stream = stream
        self.half = limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while chunk := self.stream.read1(65536) if hasattr(self.stream, "read1") else self.stream.read(65536):
                self.total += len(chunk)
                room = self.half - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    chunk = chunk[room:]
                if chunk:
                    self.tail += chunk
                    if len(self.tail) > self.half:
                        del self.tail[: len(self.tail) - self.half]
        except (OSError, ValueError):
            pass

    def text(self, wait: float = 2.0) -> str:
        self.thread.join(wait)
        return join_truncated(bytes(self.head), bytes(self.tail), self.total)


def join_truncated(head: bytes, tail: bytes, total: int) -> str:
    omitted = total - len(head) - len(tail)
    text = head.decode("utf-8", errors="replace")
    if omitted > 0:
        text += f"\n[... {omitted} bytes of output omitted ...]\n"
    return text + tail.decode("utf-8", errors="replace")


def truncate_output(data: bytes, limit: int = OUTPUT_LIMIT) -> str:
    half = limit // 2
    if len(data) <= limit:
        return data.decode("utf-8", errors="replace")
    return join_truncated(data[:half], data[-half:], len(data))


# ---------------------------------------------------------------- shared process runner


def _write_files(workdir: Path, files: dict[str, str] | None) -> None:
    for rel, text in (files or {}).items():
        path = safe_join(workdir, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _base_env(home: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PIP_NO_INPUT": "1",
        "GIT_TERMINAL_PROMPT": "0",
    }
    env.update(extra or {})
    return env


def _stop_reason(cancel, deadline: float) -> str | None:
    """Why a run must be stopped now: "cancelled", "timeout", or None to let it go on."""
    if cancel is not None and cancel.cancelled:
        return "cancelled"
    if time.perf_counter() >= deadline:
        return "timeout"
    return None


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _run_process(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float, cancel,
                 on_stop=None) -> tuple[int | None, str, float, str | None]:
    """Run argv in a new session; kill its process group on timeout or cancel.

    Returns (exit code, output, seconds, reason it was stopped or None). A negative exit
    code -N means killed by signal N (bwrap reports those as 128+N).
    """
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        return None, f"cannot start {argv[0]}: {exc}", time.perf_counter() - started, "not started"
    capture = _Capture(proc.stdout)
    reason = None
    deadline = started + timeout
    try:
        while True:
            try:
                proc.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            reason = _stop_reason(cancel, deadline)
            if reason:
                _kill_group(proc)
                if on_stop:
                    on_stop()
                proc.wait()
                break
    except BaseException:
        _kill_group(proc)
        if on_stop:
            on_stop()
        proc.wait()
        raise
    finally:
        # A daemonized grandchild may hold the pipe open: the group is killed anyway.
        _kill_group(proc)
    seconds = time.perf_counter() - started
    output = capture.text()
    proc.stdout.close()
    return proc.returncode, output, seconds, reason


def _signal_reason(code: int | None) -> str | None:
    sig = -code if code is not None and code < 0 else (code - 128 if code is not None and 128 < code < 160 else 0)
    if sig == signal.SIGXCPU:
        return "CPU time limit"
    if sig == signal.SIGKILL:
        return "killed (SIGKILL)"
    return None


# ---------------------------------------------------------------- no isolation


class LocalSandbox:
    """Runs commands directly on the host: no isolation. Only on explicit opt-in."""

    name = "none"

    def __init__(self, *, i_understand_this_is_unsafe: bool = False, memory_mb: int = DEFAULT_MEMORY_MB):
        if not i_understand_this_is_unsafe:
            raise SandboxUnavailable("running model-written code without a sandbox needs an explicit opt-in "
                                     "(--sandbox none / sandbox = \"none\")")
        self.memory_mb = memory_mb

    def run(self, workdir: Path, command: list[str], *, timeout: float = DEFAULT_TIMEOUT,
            files: dict[str, str] | None = None, cancel=None, env: Mapping[str, str] | None = None) -> RunResult:
        workdir = Path(workdir)
        _write_files(workdir, files)
        full_env = {**os.environ, **(env or {}), "PYTHONDONTWRITEBYTECODE": "1"}
        code, output, seconds, reason = _run_process(list(command), cwd=workdir, env=full_env,
                                                     timeout=timeout, cancel=cancel)
        return RunResult(code, output, seconds, timed_out=reason == "timeout", killed_reason=reason,
                         command=list(command), sandbox=self.name)


# ---------------------------------------------------------------- cgroups (when allowed)


class _Cgroups:
    """A pids and a memory cgroup for one run, under this process's own cgroups.

    Works where this process may create child cgroups: root with cgroup v1 (as on many
    CI machines) or a delegated cgroup v2 subtree. `create` returns None otherwise.
    """

    def __init__(self, dirs: dict[str, Path]):
        self.dirs = dirs  # controller -> cgroup folder

    @staticmethod
    def _own_paths() -> dict[str, str]:
        paths = {}
        try:
            for line in Path("/proc/self/cgroup").read_text().splitlines():
                _, controllers, path = line.split(":", 2)
                for c in controllers.split(",") if controllers else [""]:
                    paths[c] = path
        except (OSError, ValueError):
            pass
        return paths

    @classmethod
    def create(cls, pids_max: int, memory_bytes: int) -> _Cgroups | None:
        own = cls._own_paths()
        name = f"swe-reasoner-{uuid.uuid4().hex[:12]}"
        dirs: dict[str, Path] = {}
        root = Path("/sys/fs/cgroup")
        v1 = {"pids": [("pids.max", str(pids_max))],
              "memory": [("memory.limit_in_bytes", str(memory_bytes)),
                         ("memory.memsw.limit_in_bytes", str(memory_bytes))]}
        if (root / "cgroup.controllers").exists():  # pure cgroup v2
            d = root / own.get("", "/").lstrip("/") / name
            try:
                d.mkdir()
                (d / "pids.max").write_text(str(pids_max))
                (d / "memory.max").write_text(str(memory_bytes))
                try:
                    (d / "memory.swap.max").write_text("0")
                except OSError:
                    pass
                dirs["v2"] = d
            except OSError:
                _rmdir(d)
        else:
            for controller, settings in v1.items():
                if controller not in own or not (root / controller).is_dir():
                    continue
                d = root / controller / own[controller].lstrip("/") / name
                try:
                    d.mkdir()
                except OSError:
                    continue
                try:
                    for i, (fname, value) in enumerate(settings):
                        try:
                            (d / fname).write_text(value)
                        except OSError:
                            if i == 0:
                                raise
                    dirs[controller] = d
                except OSError:
                    _rmdir(d)
        return cls(dirs) if dirs else None

    @property
    def limits_pids(self) -> bool:
        return "pids" in self.dirs or "v2" in self.dirs

    @property
    def limits_memory(self) -> bool:
        return "memory" in self.dirs or "v2" in self.dirs

    def join_prefix(self) -> list[str]:
        """A command prefix that moves itself into the cgroups, then execs the rest."""
        writes = "; ".join(f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))}" for d in self.dirs.values())
        return ["/bin/sh", "-c", f'{writes} && exec "$@"', "sh"]

    def kill_all(self) -> None:
        for _ in range(50):
            pids = set()
            for d in self.dirs.values():
                try:
                    pids.update(int(p) for p in (d / "cgroup.procs").read_text().split())
                except OSError:
                    pass
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def _read(self, key: str, fname: str) -> str:
        d = self.dirs.get(key) or self.dirs.get("v2")
        try:
            return (d / fname).read_text() if d else ""
        except OSError:
            return ""

    def pids_hit(self) -> bool:
        events = self._read("pids", "pids.events")  # "max N" in v1 and v2
        m = re.search(r"^max (\d+)", events, re.M)
        return bool(m and int(m.group(1)) > 0)

    def memory_hit(self) -> bool:
        if "v2" in self.dirs:
            m = re.search(r"^oom_kill (\d+)", self._read("v2", "memory.events"), re.M)
            return bool(m and int(m.group(1)) > 0)
        m = re.search(r"^oom_kill (\d+)", self._read("memory", "memory.oom_control"), re.M)
        if m:
            return int(m.group(1)) > 0
        return self._read("memory", "memory.failcnt").strip() not in ("", "0")

    def remove(self) -> None:
        self.kill_all()
        for d in self.dirs.values():
            _rmdir(d)


def _rmdir(d: Path) -> None:
    for _ in range(50):
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


# ---------------------------------------------------------------- bubblewrap


def _python_paths() -> list[str]:
    """The folders the running interpreter needs: its prefix, base prefix and executable."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths.add(str(Path(sys.executable).resolve().parent.parent))
    return sorted(os.path.realpath(p) for p in paths if p)


def venv_paths(executable: str) -> list[str]:
    """The folders a virtual environment's interpreter needs: the venv and its base Python's prefix.

    Empty unless `executable` is an absolute path to a program in `VENV/bin/` next to a
    `VENV/pyvenv.cfg`: only a venv's folder is ever re-shown, whatever the command names.
    """
    if not os.path.isabs(executable):
        return []
    venv = Path(executable).parent.parent  # not resolved: bin/python is a link to the base interpreter
    cfg = venv / "pyvenv.cfg"
    if Path(executable).parent.name != "bin" or not cfg.is_file():
        return []
    paths = [os.path.realpath(venv)]
    try:
        for line in cfg.read_text(errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                paths.append(os.path.realpath(Path(value.strip()).parent))  # home is the base's bin folder
    except OSError:
        pass
    return paths


def _under(path: str, folders: Sequence[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


class BwrapSandbox:
    """bubblewrap: no network, the host read-only with secrets hidden, the scratch copy writable."""

    name = "bwrap"
    _checked: dict[str, str | None] = {}  # bwrap path -> None if usable, else why not

    def __init__(self, *, memory_mb: int = DEFAULT_MEMORY_MB, pids: int = DEFAULT_PIDS,
                 cpu_seconds: int | None = None, ro_paths: Sequence[str] = (), bwrap: str | None = None,
                 use_cgroups: bool = True, sandbox_uid: int = 1000):
        self.bwrap = bwrap or shutil.which("bwrap") or ""
        self.memory_mb = memory_mb
        self.pids = pids
        self.cpu_seconds = cpu_seconds
        self.use_cgroups = use_cgroups
        self.sandbox_uid = sandbox_uid
        # Paths to show read-only even if they lie in a hidden folder: the interpreter
        # (a pyenv or a venv under /root or /tmp) and what the caller names.
        self.ro_paths = [os.path.realpath(p) for p in [*_python_paths(), *ro_paths]]
        self.prlimit = shutil.which("prlimit")
        why = self.unavailable_reason()
        if why:
            raise SandboxUnavailable(f"bubblewrap cannot be used here: {why}\n{INSTALL_HINT}")

    def unavailable_reason(self) -> str | None:
        if not self.bwrap:
            return "bwrap is not installed"
        if self.bwrap not in self._checked:
            try:
                proc = subprocess.run([self.bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/",
                                       "--proc", "/proc", "--dev", "/dev", "true"],
                                      capture_output=True, text=True, timeout=20)
                self._checked[self.bwrap] = None if proc.returncode == 0 else (
                    f"a test run failed ({proc.stderr.strip() or proc.returncode}); unprivileged user "
                    "namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu "
                    "an AppArmor profile for bwrap)")
            except (OSError, subprocess.TimeoutExpired) as exc:
                self._checked[self.bwrap] = f"a test run failed: {exc}"
        return self._checked[self.bwrap]

    def argv(self, workdir: Path, command: list[str], cgroups: _Cgroups | None, timeout: float) -> list[str]:
        work = os.path.realpath(workdir)
        args = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session",
                "--uid", str(self.sandbox_uid), "--gid", str(self.sandbox_uid),
                "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
        for d in HIDDEN_DIRS:
            if os.path.isdir(d) and not os.path.islink(d):
                args += ["--tmpfs", d]
        for f in HIDDEN_FILES:
            if os.path.isfile(f):
                args += ["--ro-bind", "/dev/null", f]
        hidden = [d for d in HIDDEN_DIRS if os.path.isdir(d)]
        # The interpreter asked for may be a test environment's venv (agent/environment.py),
        # e.g. in ~/.cache: show that venv (and its base Python) read-only too.
        for p in [*self.ro_paths, *(venv_paths(command[0]) if command else [])]:
            if _under(p, hidden) and os.path.exists(p) and not _under(p, [work]):
                args += ["--ro-bind", p, p]
        args += ["--bind", work, work, "--dir", "/tmp/home", "--chdir", work]
        limits = [f"--as={self.memory_mb * 1024 * 1024}" if not (cgroups and cgroups.limits_memory) else None,
                  f"--cpu={self.cpu_seconds or int(timeout) + 1}", "--core=0",
                  f"--nproc={self.pids}" if not (cgroups and cgroups.limits_pids) else None]
        if self.prlimit:
            args += ["--", self.prlimit, *[x for x in limits if x], "--"]
        else:
            args += ["--"]
        return args + list(command)

    def run(self, workdir: Path, command: list[str], *, timeout: float = DEFAULT_TIMEOUT,
            files: dict[str, str] | None = None, cancel=None, env: Mapping[str, str] | None = None) -> RunResult:
        workdir = Path(workdir)
        _write_files(workdir, files)
        cgroups = _Cgroups.create(self.pids, self.memory_mb * 1024 * 1024) if self.use_cgroups else None
        try:
            argv = self.argv(workdir, command, cgroups, timeout)
            if cgroups:
                argv = cgroups.join_prefix() + argv
            code, output, seconds, reason = _run_process(
                argv, cwd=workdir, env=_base_env("/tmp/home", env), timeout=timeout, cancel=cancel,
                on_stop=cgroups.kill_all if cgroups else None)
            hit = None
            if cgroups:
                if cgroups.memory_hit():
                    hit = f"memory limit ({self.memory_mb} MiB)"
                elif cgroups.pids_hit():
                    hit = f"process limit ({self.pids})"
            reason = _combine(reason, hit or _heuristic_reason(code, output, self), code)
        finally:
            if cgroups:
                cgroups.remove()
        if code is not None and 128 < code < 160:
            code = -(code - 128)
        return RunResult(code, output, seconds, timed_out=bool(reason and reason.startswith("timeout")),
                         killed_reason=reason, command=list(command), sandbox=self.name)


def _heuristic_reason(code: int | None, output: str, sb) -> str | None:
    """Where no cgroup can be read, limit hits show only as errors in the output."""
    if code == 0:
        return None
    if "MemoryError" in output or "Cannot allocate memory" in output:
        return f"memory limit ({sb.memory_mb} MiB)"
    if "Resource temporarily unavailable" in output:  # EAGAIN from fork/clone
        return f"process limit ({sb.pids})"
    return None


def _combine(stopped: str | None, hit: str | None, code: int | None) -> str | None:
    """One killed_reason: why we stopped it, a limit it hit, or the signal that ended it."""
    if stopped and hit:
        return f"{stopped}; {hit} reached"
    return stopped or hit or _signal_reason(code)


# ---------------------------------------------------------------- Docker API


class DockerSandbox:
    """A container per run through the Docker API (Docker, or Podman's service)."""

    name = "docker"

    def __init__(self, image: str, *, base_url: str | None = None, memory_mb: int = DEFAULT_MEMORY_MB,
                 pids: int = DEFAULT_PIDS, cpus: float = 2.0, client=None):
        if not image:
            raise SandboxUnavailable("the docker sandbox needs an image with the repository's toolchain "
                                     "(--image NAME / setting sandbox_image)")
        try:
            import docker
        except ModuleNotFoundError:
            raise SandboxUnavailable("the docker sandbox needs the docker SDK: pip install 'swe-reasoner[docker]'"
                                     f"\n{INSTALL_HINT}") from None
        try:
            self.client = client or (docker.DockerClient(base_url=base_url) if base_url else docker.from_env())
            self.client.ping()
        except Exception as exc:  # the SDK raises several unrelated types
            raise SandboxUnavailable(f"no Docker-API engine answers ({exc}); start Docker, or Podman's service "
                                     f"(podman system service) and set DOCKER_HOST\n{INSTALL_HINT}") from None
        try:
            self.client.images.get(image)
        except Exception as exc:
            raise SandboxUnavailable(f"the image {image!r} is not available to the engine: {exc}") from None
        self.image = image
        self.memory_mb = memory_mb
        self.pids = pids
        self.cpus = cpus

    def run(self, workdir: Path, command: list[str], *, timeout: float = DEFAULT_TIMEOUT,
            files: dict[str, str] | None = None, cancel=None, env: Mapping[str, str] | None = None) -> RunResult:
        workdir = Path(workdir)
        _write_files(workdir, files)
        work = os.path.realpath(workdir)
        started = time.perf_counter()
        container = self.client.containers.create(
            self.image, command=list(command), working_dir="/work", user=f"{os.getuid()}:{os.getgid()}",
            environment=_base_env("/tmp", env), network_mode="none", mem_limit=f"{self.memory_mb}m",
            memswap_limit=f"{self.memory_mb}m", pids_limit=self.pids, nano_cpus=int(self.cpus * 1e9),
            read_only=True, tmpfs={"/tmp": "rw,size=512m"}, volumes={work: {"bind": "/work", "mode": "rw"}},
            cap_drop=["ALL"], security_opt=["no-new-privileges"], detach=True)
        reason = None
        code = None
        try:
            container.start()
            deadline = started + timeout
            while True:
                try:
                    code = container.wait(timeout=POLL_SECONDS * 2)["StatusCode"]
                    break
                except Exception:  # requests' ReadTimeout / ConnectionError: still running
                    pass
                reason = _stop_reason(cancel, deadline)
                if reason:
                    try:
                        container.kill()
                    except Exception:
                        pass
                    code = None
                    break
            container.reload()
            state = container.attrs.get("State", {})
            output = truncate_output(container.logs(stdout=True, stderr=True))
            hit = _heuristic_reason(code, output, self)
            if state.get("OOMKilled"):
                hit = f"memory limit ({self.memory_mb} MiB)"
            elif reason is None and code == 137 and not hit:
                # Podman on cgroup v1 does not always set OOMKilled; nothing else here sends SIGKILL.
                hit = f"killed (SIGKILL), most likely the memory limit ({self.memory_mb} MiB)"
        finally:
            try:
                container.remove(force=True)
            except Exception:
                pass
        seconds = time.perf_counter() - started
        reason = _combine(reason, hit, code)
        if code is not None and 128 < code < 160:
            code = -(code - 128)
        return RunResult(code, output, seconds, timed_out=bool(reason and reason.startswith("timeout")),
                         killed_reason=reason, command=list(command), sandbox=self.name)


# ---------------------------------------------------------------- choice


SANDBOX_NAMES = ("auto", "bwrap", "docker", "none")


def pick_sandbox(name: str = "auto", *, image: str = "", docker_url: str | None = None, **limits) -> Sandbox:
    """The sandbox `name` names. "auto": bubblewrap, else a Docker-API engine if an image is named.

    Never falls back to no sandbox: "none" must be asked for.
    """
    if name not in SANDBOX_NAMES:
        raise SandboxUnavailable(f"unknown sandbox {name!r}; choose one of {', '.join(SANDBOX_NAMES)}")
    if name == "none":
        return LocalSandbox(i_understand_this_is_unsafe=True,
                            **{k: v for k, v in limits.items() if k == "memory_mb"})
    if name == "bwrap":
        return BwrapSandbox(**limits)
    if name == "docker":
        return DockerSandbox(image, base_url=docker_url,
                             **{k: v for k, v in limits.items() if k in ("memory_mb", "pids")})
    reasons = []
    try:
        return BwrapSandbox(**limits)
    except SandboxUnavailable as exc:
        reasons.append(str(exc).split("\n")[0])
    if image:
        try:
            return DockerSandbox(image, base_url=docker_url,
                                 **{k: v for k, v in limits.items() if k in ("memory_mb", "pids")})
        except SandboxUnavailable as exc:
            reasons.append(str(exc).split("\n")[0])
    raise SandboxUnavailable("no sandbox is available (" + "; ".join(reasons) + f")\n{INSTALL_HINT}")
