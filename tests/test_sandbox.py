"""Sandboxes against hostile model-written scripts: each is contained and reported,
and the host (its network, processes, files and the user's home) is unaffected.

The bubblewrap cases need `bwrap`; the Docker-API cases need Podman (or Docker)
and an image with python3 (see `docker_sandbox` below). Each skips, with the
reason, when its engine is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from swe_reasoner.agent.errors import SweReasonerError
from swe_reasoner.agent.progress import CancelToken
from swe_reasoner.agent.sandbox import (
    OUTPUT_LIMIT, BwrapSandbox, DockerSandbox, LocalSandbox, RunResult, Sandbox, SandboxUnavailable, _Cgroups, pick_sandbox,
    truncate_output,
)

from conftest import bwrap_or_skip, tree_snapshot

HAVE_BWRAP = shutil.which("bwrap") is not None
TEST_IMAGE = os.environ.get("SWE_REASONER_TEST_IMAGE", "localhost/swe-reasoner-test-py:bookworm")
CONTAINERS_CONF = """[containers]
default_ulimits=["nofile=1024:1024","nproc=4096:4096"]
[engine]
runtime="runc"
"""


def _build_test_image(env: dict) -> str | None:
    """A Debian image with python3 and pytest, built locally (no registry is reachable)."""
    if subprocess.run(["podman", "image", "exists", TEST_IMAGE], env=env).returncode == 0:
        return None
    if not shutil.which("mmdebstrap"):
        return f"image {TEST_IMAGE} is missing and mmdebstrap is not installed to build it (apt install mmdebstrap)"
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "rootfs.tar"
        proc = subprocess.run(["mmdebstrap", "--variant=minbase", "--include=python3,python3-pytest", "bookworm",
                               str(tar)], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            return f"mmdebstrap could not build a Debian root filesystem: {proc.stderr[-300:]}"
        proc = subprocess.run(["podman", "import", str(tar), TEST_IMAGE], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            return f"podman import failed: {proc.stderr[-300:]}"
    return None


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory):
    """(base_url, image) of a Docker-API engine: $SWE_REASONER_DOCKER_URL, or Podman's service started here."""
    try:
        import docker  # noqa: F401
    except ModuleNotFoundError:
        pytest.skip("the docker SDK is not installed (pip install 'swe-reasoner[docker]')")
    if url := os.environ.get("SWE_REASONER_DOCKER_URL"):
        yield url, TEST_IMAGE
        return
    if not shutil.which("podman"):
        pytest.skip("no Docker-API engine: podman is not installed (apt install podman runc), "
                    "and SWE_REASONER_DOCKER_URL is not set")
    folder = tmp_path_factory.mktemp("podman")
    (folder / "containers.conf").write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(folder / "containers.conf")}
    why = _build_test_image(env)
    if why:
        pytest.skip(why)
    sock = folder / "podman.sock"
    # cwd: conmon drops an `oom` marker file into its working directory when a container is OOM-killed
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"], env=env, cwd=folder,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        if not sock.exists():
            pytest.skip("podman system service did not start")
        yield f"unix://{sock}", TEST_IMAGE
    finally:
        service.terminate()
        try:
            service.wait(10)
        except subprocess.TimeoutExpired:
            service.kill()


@pytest.fixture(params=["bwrap", "docker"])
def sandbox(request) -> tuple[Sandbox, str]:
    """A sandbox and the python to run inside it."""
    if request.param == "bwrap":
        return bwrap_or_skip(memory_mb=512, pids=128), sys.executable
    url, image = request.getfixturevalue("docker_engine")
    return DockerSandbox(image, base_url=url, memory_mb=512, pids=128), "python3"


@pytest.fixture
def work(tmp_path) -> Path:
    d = tmp_path / "scratch"
    d.mkdir()
    return d


def leftover_processes(token: str) -> list[int]:
    """Host processes whose command line holds `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline:
            found.append(int(entry.name))
    return found


def wait_gone(token: str, seconds: float = 3.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := leftover_processes(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


# ------------------------------------------------------------------ plain behaviour


def test_runs_in_workdir_with_files_and_reports(sandbox, work):
    sb, py = sandbox
    r = sb.run(work, [py, "hello.py", "a b"], timeout=60, files={"hello.py": "import os, sys\n"
               "print('cwd-ok', os.listdir('.'), sys.argv[1])\nopen('out.txt', 'w').write('made')\nsys.exit(3)\n"})
    assert isinstance(r, RunResult)
    assert r.exit_code == 3, r.output
    assert "cwd-ok" in r.output and "a b" in r.output and "hello.py" in r.output
    assert (work / "out.txt").read_text() == "made"  # the scratch copy is writable
    assert not r.timed_out and r.killed_reason is None
    assert r.seconds > 0


def test_long_output_keeps_head_and_tail(sandbox, work):
    sb, py = sandbox
    r = sb.run(work, [py, "-c", "print('FIRST'); [print('x' * 99) for _ in range(5000)]; print('LAST')"],
               timeout=60)
    assert r.exit_code == 0
    assert r.output.startswith("FIRST") and r.output.rstrip().endswith("LAST")
    assert "bytes of output omitted" in r.output
    assert len(r.output) < OUTPUT_LIMIT + 200


def test_truncate_output_unit():
    assert truncate_output(b"abc") == "abc"
    text = truncate_output(b"H" * 15_000 + b"T" * 15_000, limit=20_000)
    assert text.startswith("H" * 10_000) and text.endswith("T" * 10_000)
    assert "[... 10000 bytes of output omitted ...]" in text


# ------------------------------------------------------------------ hostile scripts


def test_network_is_unreachable(sandbox, work):
    sb, py = sandbox
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        end = time.monotonic() + 15
        while time.monotonic() < end:
            try:
                conn, _ = server.accept()
                accepted.append(conn)
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    script = f"""
import socket
for host, port in [("1.1.1.1", 53), ("127.0.0.1", {port}), ("::1", {port})]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        print("CONNECTED", host, port)
    except OSError as exc:
        print("BLOCKED", host, port, type(exc).__name__, exc)
try:
    socket.getaddrinfo("example.com", 80)
    print("CONNECTED dns")
except OSError as exc:
    print("BLOCKED dns", exc)
"""
    # The host itself can reach the loopback server (so the check is meaningful).
    socket.create_connection(("127.0.0.1", port), timeout=3).close()
    time.sleep(0.3)
    host_accepted = len(accepted)
    r = sb.run(work, [py, "net.py"], timeout=60, files={"net.py": script})
    t.join()
    server.close()
    assert host_accepted == 1
    assert "CONNECTED" not in r.output, r.output
    assert r.output.count("BLOCKED") == 4, r.output
    assert len(accepted) == 1, "the sandbox reached a server on the host's loopback"


def _pid_limit_enforceable(sb) -> bool:
    if not isinstance(sb, BwrapSandbox):
        return True  # containers: the engine's pids cgroup
    cg = _Cgroups.create(16, 64 << 20)
    if cg:
        cg.remove()
        return cg.limits_pids
    return os.geteuid() != 0  # RLIMIT_NPROC in the user namespace; root's processes are exempt


def test_fork_bomb_is_contained(sandbox, work):
    sb, py = sandbox
    if not _pid_limit_enforceable(sb):
        pytest.skip("as root without a writable pids cgroup nothing limits processes; refusing to fork-bomb the host")
    token = f"bomb{uuid.uuid4().hex[:10]}"
    bomb = ("import os, time\nsaid = False\nwhile True:\n    try:\n        os.fork()\n        said = False\n"
            "    except OSError as exc:\n        if not said:\n            print('fork refused:', exc, flush=True)\n"
            "            said = True\n        time.sleep(0.01)\n")
    started = time.monotonic()
    r = sb.run(work, [py, f"{token}.py"], timeout=5, files={f"{token}.py": bomb})
    assert r.timed_out
    assert time.monotonic() - started < 20
    assert "process limit" in (r.killed_reason or ""), r.killed_reason
    assert wait_gone(token) == [], "fork bomb processes survived the run"
    # The host still starts processes.
    assert subprocess.run([sys.executable, "-c", "print('alive')"], capture_output=True, text=True).stdout == "alive\n"


def test_memory_hog_is_killed(sandbox, work):
    sb, py = sandbox
    hog = "x = []\nwhile True:\n    x.append(bytearray(b'x' * (50 << 20)))\n"
    r = sb.run(work, [py, "hog.py"], timeout=60, files={"hog.py": hog})
    assert r.exit_code != 0
    assert not r.timed_out
    assert "memory limit" in (r.killed_reason or ""), (r.killed_reason, r.output[-500:])


def test_endless_loop_times_out_and_leaves_nothing(sandbox, work):
    sb, py = sandbox
    token = f"loop{uuid.uuid4().hex[:10]}"
    # The loop also starts a child in its own session, as a daemon would: it must die too.
    script = (f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', "
              f"'{token}'], start_new_session=True)\nprint('started', flush=True)\nwhile True:\n    pass\n")
    started = time.monotonic()
    r = sb.run(work, [py, f"{token}.py"], timeout=2, files={f"{token}.py": script})
    elapsed = time.monotonic() - started
    assert r.timed_out and r.killed_reason.startswith("timeout")
    assert elapsed < 6, elapsed
    assert "started" in r.output
    assert wait_gone(token) == [], "processes of a timed-out run survived"


def test_cancel_kills_within_a_second(sandbox, work):
    sb, py = sandbox
    token = f"cancel{uuid.uuid4().hex[:10]}"
    cancel = CancelToken()
    box: list[RunResult] = []
    t = threading.Thread(target=lambda: box.append(
        sb.run(work, [py, f"{token}.py"], timeout=120, cancel=cancel,
               files={f"{token}.py": "print('running', flush=True)\nwhile True:\n    pass\n"})))
    t.start()
    time.sleep(1.5)
    cancelled_at = time.monotonic()
    cancel.cancel()
    t.join(10)
    assert not t.is_alive()
    assert time.monotonic() - cancelled_at < 1.0 + (1.0 if not isinstance(sb, BwrapSandbox) else 0.0)
    assert box[0].killed_reason == "cancelled" and not box[0].timed_out
    assert wait_gone(token) == []


def test_writes_outside_the_scratch_copy_fail(sandbox, work, bug_repo):
    sb, py = sandbox
    token = uuid.uuid4().hex[:10]
    # A folder outside the hidden ones (so it is visible, read-only, in the sandbox).
    visible = Path(tempfile.mkdtemp(prefix="swe-sbx-visible-", dir="/var/cache"))
    (visible / "keep.txt").write_text("original")
    real_home = Path.home()
    # Host places the sandbox sees read-only (or not at all): every write fails.
    must_fail = [str(bug_repo / "calc" / "stats.py"), str(bug_repo / f"new-{token}"), str(visible / "keep.txt"),
                 str(visible / f"new-{token}"), "/etc/passwd-" + token, "/usr/bin/x-" + token]
    # Places replaced by a private tmpfs: a write may succeed there, but never reaches the host.
    private = [f"/tmp/x-{token}", str(real_home / f"x-{token}"), "~/x-" + token]
    targets = must_fail + private
    script = "import os, sys\nfor t in sys.argv[1:]:\n    p = os.path.expanduser(t)\n    try:\n" \
             "        with open(p, 'a') as fh:\n            fh.write('pwned')\n        print('WROTE', p)\n" \
             "    except OSError as exc:\n        print('FAILED', p, type(exc).__name__)\n"
    before = tree_snapshot(bug_repo)
    try:
        r = sb.run(work, [py, "w.py", *targets], timeout=60, files={"w.py": script})
        assert r.exit_code == 0, r.output
        for t in must_fail:
            assert f"FAILED {t} " in r.output, r.output
        assert r.output.count("FAILED") + r.output.count("WROTE") == len(targets), r.output
        assert tree_snapshot(bug_repo) == before
        assert not Path(f"/tmp/x-{token}").exists()
        assert not (real_home / f"x-{token}").exists()
        assert (visible / "keep.txt").read_text() == "original"
        assert sorted(p.name for p in visible.iterdir()) == ["keep.txt"]
    finally:
        shutil.rmtree(visible, ignore_errors=True)
        for p in (Path(f"/tmp/x-{token}"), real_home / f"x-{token}"):
            p.unlink(missing_ok=True)


def test_home_and_secrets_are_not_readable(sandbox, work):
    sb, py = sandbox
    token = uuid.uuid4().hex[:10]
    real_home = Path.home()
    fake = real_home / f".swe-reasoner-test-{token}"  # a secret in the real home, made by this test
    (fake / ".ssh").mkdir(parents=True)
    key = fake / ".ssh" / "id_rsa"
    key.write_text(f"-----BEGIN OPENSSH PRIVATE KEY----- {token}\n")
    script = f"""
import os, sys
home = {str(real_home)!r}
try:
    print("HOME-LISTING", sorted(os.listdir(home)))
except OSError as exc:
    print("HOME-LISTING-FAILED", type(exc).__name__)
for p in [{str(key)!r}, os.path.join(home, ".ssh", "id_rsa"), os.path.join(home, ".ssh", "id_ed25519"),
          os.path.expanduser("~/.ssh/id_rsa"), "/etc/shadow"]:
    try:
        print("READ", p, open(p).read()[:80])
    except OSError as exc:
        print("DENIED", p, type(exc).__name__)
"""
    try:
        r = sb.run(work, [py, "r.py"], timeout=60, files={"r.py": script})
    finally:
        shutil.rmtree(fake, ignore_errors=True)
    assert r.exit_code == 0, r.output
    assert token not in r.output.replace(f"swe-reasoner-test-{token}", "")  # the key's content
    reads = [line for line in r.output.splitlines() if line.startswith("READ")]
    if isinstance(sb, BwrapSandbox):
        assert reads == [], r.output
    else:  # a container's /etc/shadow is the image's own file, not the host's
        assert all(line.startswith("READ /etc/shadow") for line in reads), r.output
    listing = next(line for line in r.output.splitlines() if line.startswith("HOME-LISTING"))
    assert f".swe-reasoner-test-{token}" not in listing  # the home's listing is empty or refused
    if isinstance(sb, BwrapSandbox):  # a container's /etc/shadow is the image's, not the host's
        assert "DENIED /etc/shadow" in r.output
    # Only the folders shown on purpose (the interpreter's, e.g. a pyenv under /root) may appear.
    exposed = {Path(p).relative_to(real_home).parts[0] for p in getattr(sb, "ro_paths", [])
               if Path(p).is_relative_to(real_home) and Path(p) != real_home}
    for name in os.listdir(real_home) if isinstance(sb, BwrapSandbox) else []:
        if not name.startswith(".swe-reasoner-test") and name not in exposed:
            assert f"'{name}'" not in listing, f"the sandbox lists {name} in the real home"


# ------------------------------------------------------------------ choosing a sandbox


def test_no_sandbox_needs_an_explicit_opt_in(work):
    with pytest.raises(SandboxUnavailable, match="opt-in"):
        LocalSandbox()
    sb = pick_sandbox("none")
    r = sb.run(work, [sys.executable, "-c", "print('unsafe but asked for')"], timeout=30)
    assert r.ok and "asked for" in r.output and r.sandbox == "none"


def test_local_sandbox_times_out_and_cancels(work):
    sb = pick_sandbox("none")
    r = sb.run(work, [sys.executable, "-c", "while True: pass"], timeout=1)
    assert r.timed_out


def test_unavailable_sandbox_says_how_to_get_one(monkeypatch):
    with pytest.raises(SandboxUnavailable) as info:
        BwrapSandbox(bwrap="/nonexistent/bwrap")
    assert "apt install bubblewrap" in str(info.value)
    assert isinstance(info.value, SweReasonerError)
    with pytest.raises(SandboxUnavailable, match="unknown sandbox"):
        pick_sandbox("chroot")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(SandboxUnavailable, match="no sandbox is available") as info:
        pick_sandbox("auto")
    assert "--sandbox none" in str(info.value)
    with pytest.raises(SandboxUnavailable, match="image"):
        pick_sandbox("docker")


@pytest.mark.skipif(not HAVE_BWRAP, reason="bubblewrap is not installed (apt install bubblewrap)")
def test_auto_prefers_bubblewrap():
    assert pick_sandbox("auto").name == "bwrap"
