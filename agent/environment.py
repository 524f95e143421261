"""Test environments: a virtual environment where a Python repository's tests run.

`detect(root)` reads how the repository installs and tests (pyproject.toml, setup.py,
setup.cfg, requirements files, tox.ini, pytest configuration) without running
anything. `prepare(repo, spec)` builds a virtual environment with the repository's
dependencies (its test extra, requirements files, tox deps) and pytest, once, and
caches it by (repository, commit, hash of the dependency-defining files, Python).

The build runs the user's own repository code (setup.py, build backends) on the host,
with network access for pip; it never runs model-written code. The repository's own
package is uninstalled at the end: its code comes from the scratch copy (on
PYTHONPATH) in every sandboxed run, so a patched copy is what the tests import.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import SweReasonerError
from .repo import Repo, Scratch

FORMAT = 1  # bump when the layout of a built environment changes: old ones are not reused
TEST_EXTRAS = ("test", "tests", "testing")
FALLBACK_EXTRAS = ("dev",)
STEP_TIMEOUT = 900.0  # seconds per build command
TAIL_CHARS = 3000  # how much of a failed command's output an error keeps
READY = "environment.json"  # written last into a built environment: its presence means complete


class EnvironmentBuildError(SweReasonerError):
    """A test environment could not be built; names the step, the command and its output's tail."""

    def __init__(self, message: str, *, step: str = "", command: list[str] | None = None, output: str = "",
                 cached: bool = False):
        super().__init__(message)
        self.step = step
        self.command = list(command or [])
        self.output = output
        self.cached = cached  # raised from a recorded failure, without building again


# ---------------------------------------------------------------- detection


@dataclass
class EnvSpec:
    """How a repository installs and tests, as read from its files."""

    root: str
    project_name: str = ""
    installable: bool = False  # pyproject [project]/[build-system], setup.py or setup.cfg metadata
    install_source: str = ""  # "pyproject.toml", "setup.py", "setup.cfg" or ""
    extras: list[str] = field(default_factory=list)  # installed as .[extra,...]
    requirements: list[str] = field(default_factory=list)  # requirements files, relative paths
    extra_requirements: list[str] = field(default_factory=list)  # tox deps, dependency groups
    pytest_config: str = ""  # the file holding the pytest configuration, if any
    testpaths: list[str] = field(default_factory=list)
    pythonpath: list[str] = field(default_factory=lambda: ["."])  # relative to the root; "src" for a src layout
    tox_commands: list[str] = field(default_factory=list)
    dependency_files: list[str] = field(default_factory=list)  # what the cache key hashes
    notes: list[str] = field(default_factory=list)

    @property
    def needs_build(self) -> bool:
        """Whether the repository declares anything to install."""
        return self.installable or bool(self.requirements or self.extra_requirements)

    def describe(self) -> str:
        parts = []
        if self.installable:
            target = "." + (f"[{','.join(self.extras)}]" if self.extras else "")
            parts.append(f"pip install {target} (from {self.install_source})")
        parts += [f"pip install -r {r}" for r in self.requirements]
        if self.extra_requirements:
            parts.append("pip install " + " ".join(self.extra_requirements))
        parts.append("pytest" + (f" (config {self.pytest_config}" + (f", testpaths {' '.join(self.testpaths)}"
                                                                      if self.testpaths else "") + ")"
                                 if self.pytest_config else ""))
        return "; ".join(parts)


def _toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _ini(path: Path) -> configparser.ConfigParser | None:
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        cp.read_string(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, configparser.Error):
        return None
    return cp


def _lines(value: str) -> list[str]:
    """A multi-line ini value as its non-empty, non-comment lines (or whitespace-separated words)."""
    out = []
    for line in value.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _pick_extras(names) -> list[str]:
    names = list(names)
    chosen = [n for n in names if n.lower() in TEST_EXTRAS]
    return chosen or [n for n in names if n.lower() in FALLBACK_EXTRAS]


def _requirement_files(root: Path) -> list[str]:
    found = []
    for pattern in ("requirements*.txt", "*-requirements.txt", "*_requirements.txt", "requirements/*.txt"):
        for p in sorted(root.glob(pattern)):
            rel = p.relative_to(root).as_posix()
            if p.is_file() and "doc" not in rel.lower() and rel not in found:
                found.append(rel)
    return found


def _tox_deps(value: str) -> tuple[list[str], list[str]]:
    """tox [testenv] deps -> (requirement strings, requirements files they name with -r)."""
    reqs, files = [], []
    for line in _lines(value):
        line = line.replace("{toxinidir}/", "").replace("{toxinidir}", ".")
        if "{" in line:  # other substitutions (factors, env vars) are not resolved
            continue
        if line.startswith(("-r", "--requirement")):
            files.append(re.sub(r"^(-r|--requirement)[=\s]*", "", line))
        elif line.startswith("-"):
            continue  # -c constraints, -e ., options
        else:
            reqs.append(line)
    return reqs, files


def detect(repo_root: str | os.PathLike) -> EnvSpec:
    """How the repository at `repo_root` installs and tests. Reads files only; runs nothing."""
    root = Path(repo_root)
    spec = EnvSpec(root=str(root))
    deps_files: list[str] = []

    pyproject = _toml(root / "pyproject.toml") if (root / "pyproject.toml").is_file() else {}
    if (root / "pyproject.toml").is_file():
        deps_files.append("pyproject.toml")
    project = pyproject.get("project") or {}
    if project or pyproject.get("build-system"):
        spec.installable, spec.install_source = True, "pyproject.toml"
        spec.project_name = str(project.get("name", ""))
        spec.extras = _pick_extras((project.get("optional-dependencies") or {}).keys())
    if "poetry" in (pyproject.get("tool") or {}) and not project:
        spec.notes.append("a [tool.poetry] project: installed through its build backend; "
                          "poetry's dev groups are not installed")
    groups = pyproject.get("dependency-groups") or {}
    for name in _pick_extras(groups.keys()):
        spec.extra_requirements += [g for g in groups[name] if isinstance(g, str)]

    cfg = _ini(root / "setup.cfg") if (root / "setup.cfg").is_file() else None
    if cfg is not None:
        deps_files.append("setup.cfg")
        if cfg.has_section("metadata") or cfg.has_section("options"):
            if not spec.installable:
                spec.installable, spec.install_source = True, "setup.cfg"
            spec.project_name = spec.project_name or cfg.get("metadata", "name", fallback="")
            if not spec.extras and cfg.has_section("options.extras_require"):
                spec.extras = _pick_extras(cfg.options("options.extras_require"))
    if (root / "setup.py").is_file():
        deps_files.append("setup.py")
        if not spec.installable or spec.install_source == "setup.cfg" or not project:
            spec.installable, spec.install_source = True, "setup.py"

    spec.requirements = _requirement_files(root)

    tox = _ini(root / "tox.ini") if (root / "tox.ini").is_file() else None
    if tox is not None:
        deps_files.append("tox.ini")
        if tox.has_section("testenv"):
            reqs, files = _tox_deps(tox.get("testenv", "deps", fallback=""))
            spec.extra_requirements += [r for r in reqs if r not in spec.extra_requirements]
            spec.requirements += [f for f in files if (root / f).is_file() and f not in spec.requirements]
            spec.tox_commands = _lines(tox.get("testenv", "commands", fallback=""))
            for extra in re.split(r"[\s,]+", tox.get("testenv", "extras", fallback="").strip()):
                if extra and "{" not in extra and extra not in spec.extras:
                    spec.extras.append(extra)

    # pytest's own order: pytest.ini, pyproject.toml, tox.ini, setup.cfg.
    ini_options = ((pyproject.get("tool") or {}).get("pytest") or {}).get("ini_options")
    pytest_ini = _ini(root / "pytest.ini") if (root / "pytest.ini").is_file() else None
    if pytest_ini is not None and pytest_ini.has_section("pytest"):
        spec.pytest_config = "pytest.ini"
        spec.testpaths = _lines(pytest_ini.get("pytest", "testpaths", fallback="").replace(" ", "\n"))
        pp = _lines(pytest_ini.get("pytest", "pythonpath", fallback="").replace(" ", "\n"))
    elif isinstance(ini_options, dict):
        spec.pytest_config = "pyproject.toml"
        tp = ini_options.get("testpaths", [])
        spec.testpaths = [tp] if isinstance(tp, str) else [str(t) for t in tp]
        pp = ini_options.get("pythonpath", [])
        pp = [pp] if isinstance(pp, str) else [str(p) for p in pp]
    elif tox is not None and tox.has_section("pytest"):
        spec.pytest_config = "tox.ini"
        spec.testpaths = _lines(tox.get("pytest", "testpaths", fallback="").replace(" ", "\n"))
        pp = _lines(tox.get("pytest", "pythonpath", fallback="").replace(" ", "\n"))
    elif cfg is not None and cfg.has_section("tool:pytest"):
        spec.pytest_config = "setup.cfg"
        spec.testpaths = _lines(cfg.get("tool:pytest", "testpaths", fallback="").replace(" ", "\n"))
        pp = _lines(cfg.get("tool:pytest", "pythonpath", fallback="").replace(" ", "\n"))
    else:
        pp = []

    src = root / "src"
    if src.is_dir() and any(p.is_dir() and (p / "__init__.py").is_file() or p.suffix == ".py"
                            for p in src.iterdir()):
        spec.pythonpath = ["src", "."]
    for p in pp:  # pytest adds these itself; the reproduction script needs them too
        if p not in spec.pythonpath:
            spec.pythonpath.append(p)

    if pytest_ini is not None:
        deps_files.append("pytest.ini")
    spec.dependency_files = sorted(set(deps_files) | set(spec.requirements))
    return spec


# ---------------------------------------------------------------- building and caching


@dataclass
class Environment:
    """A built virtual environment; its interpreter runs the repository's tests."""

    root: Path  # the venv folder
    spec: EnvSpec
    key: str
    cached: bool  # found built, not built by this call
    seconds: float  # how long prepare() took

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def pythonpath(self) -> str:
        """PYTHONPATH for a run in the scratch copy (relative to its root)."""
        return os.pathsep.join(self.spec.pythonpath)


def default_cache_dir() -> Path:
    import platformdirs

    return Path(os.environ.get("SWE_REASONER_CACHE") or platformdirs.user_cache_dir("swe-reasoner"))


def environment_key(repo: Repo, spec: EnvSpec) -> tuple[str, str]:
    """(repository id, key): the key hashes the commit, the dependency files' contents and the Python."""
    repo_id = hashlib.sha256(str(repo.root.resolve()).encode()).hexdigest()[:16]
    h = hashlib.sha256()
    for part in (str(FORMAT), repo.root.resolve().as_posix(), repo.head() or "(no commit)", sys.version,
                 os.path.realpath(sys.executable)):
        h.update(part.encode() + b"\0")
    for rel in spec.dependency_files:
        try:
            data = (repo.root / rel).read_bytes()
        except OSError:
            data = b"(unreadable)"
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return repo_id, h.hexdigest()[:24]


def _build_env() -> dict[str, str]:
    """The host's environment (pip's index, find-links, proxy and certificate settings included),
    minus what would point pip or Python at another environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PIP_REQUIRE_VIRTUALENV")}
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def _host_python() -> str:
    """The interpreter a venv is created from: the base of this one (venv does the same)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _step(step: str, command: list[str], cwd: Path, log: list[dict], timeout: float) -> str:
    started = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=cwd, env=_build_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
        output = proc.stdout.decode("utf-8", errors="replace")
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode("utf-8", errors="replace")
        output += f"\n[timed out after {timeout:.0f}s]"
        code = None
    except OSError as exc:
        output, code = f"cannot start {command[0]}: {exc}", None
    log.append({"step": step, "command": command, "exit_code": code,
                "seconds": round(time.perf_counter() - started, 3)})
    if code != 0:
        tail = output[-TAIL_CHARS:]
        raise EnvironmentBuildError(
            f"step '{step}' failed ({'exit ' + str(code) if code is not None else 'no exit status'}): "
            f"$ {' '.join(command)}\n{tail.rstrip()}", step=step, command=command, output=tail)
    return output


# A distribution installed from the scratch copy itself: its name, found by its direct_url.json.
_FIND_OWN = """
import json, sys
from importlib.metadata import distributions
for d in distributions():
    try:
        url = json.loads(d.read_text("direct_url.json") or "{}").get("url", "")
    except ValueError:
        continue
    if url.rstrip("/") == sys.argv[1].rstrip("/"):
        print(d.metadata["Name"])
"""


def _build(repo: Repo, spec: EnvSpec, venv: Path, timeout: float) -> list[dict]:
    log: list[dict] = []
    _step("create the virtual environment", [_host_python(), "-m", "venv", str(venv)], repo.root, log, timeout)
    py = str(venv / "bin" / "python")
    pip = [py, "-m", "pip", "install", "--no-input"]
    # Install from a scratch copy: builds write build/ and *.egg-info into their source folder,
    # and the user's tree is never written.
    with Scratch(repo) as scratch:
        work = scratch.root
        for rel in spec.requirements:
            _step(f"install the requirements file {rel}", pip + ["-r", rel], work, log, timeout)
        if spec.extra_requirements:
            _step("install the tox / dependency-group requirements", pip + spec.extra_requirements, work, log,
                  timeout)
        if spec.installable:
            target = "." + (f"[{','.join(spec.extras)}]" if spec.extras else "")
            _step(f"install the repository ({target}, from {spec.install_source})", pip + [target], work, log,
                  timeout)
            # Its code must come from the (patched) scratch copy on PYTHONPATH, not from this install.
            own = _step("find the repository's installed copy", [py, "-c", _FIND_OWN, work.as_uri()], work, log,
                        timeout).split()
            if own:
                _step("uninstall the repository's own copy (its code comes from the scratch copy)",
                      [py, "-m", "pip", "uninstall", "-y", *own], work, log, timeout)
        if subprocess.run([py, "-c", "import pytest"], capture_output=True, env=_build_env()).returncode != 0:
            _step("install pytest", pip + ["pytest"], work, log, timeout)
        _step("check that pytest runs", [py, "-m", "pytest", "--version"], work, log, timeout)
    return log


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def prepare(repo: Repo, spec: EnvSpec | None = None, cache_dir: Path | None = None, *,
            retry_failed: bool = False, timeout: float = STEP_TIMEOUT) -> Environment:
    """The repository's test environment, built on first use and then taken from the cache.

    Raises EnvironmentBuildError naming the failing step, its command and its output's tail.
    A failure is recorded and raised again (without building) for the same key, until the
    key changes (a new commit, changed dependency files) or `retry_failed` is set.
    """
    started = time.perf_counter()
    spec = spec or detect(repo.root)
    repo_id, key = environment_key(repo, spec)
    folder = (cache_dir or default_cache_dir()) / "envs" / repo_id
    final = folder / key
    failed = folder / f"{key}.failed.json"
    if (final / READY).is_file():
        return Environment(final, spec, key, True, time.perf_counter() - started)
    where = f"{repo.root} at {(repo.head() or 'no commit')[:12]}"
    if failed.is_file() and not retry_failed:
        try:
            rec = json.loads(failed.read_text())
        except (OSError, ValueError):
            rec = {}
        raise EnvironmentBuildError(
            f"cannot build the test environment for {where} (recorded failure, not retried until the commit or "
            f"the dependency files change; record: {failed}): {rec.get('message', '?')}",
            step=rec.get("step", ""), command=rec.get("command"), output=rec.get("output", ""), cached=True)
    folder.mkdir(parents=True, exist_ok=True)
    # Build in a private folder, then rename: a concurrent build of the same key either
    # wins the rename or finds the other's complete environment; none sees a half-built one.
    tmp = folder / f".build-{key}-{uuid.uuid4().hex[:8]}"
    try:
        log = _build(repo, spec, tmp, timeout)
        _write_json(tmp / READY, {"key": key, "repo": str(repo.root), "commit": repo.head(), "spec": asdict(spec),
                                  "python": sys.version, "steps": log, "built_at": time.time()})
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / READY).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another build of this key won
        failed.unlink(missing_ok=True)
    except EnvironmentBuildError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        message = str(exc)
        _write_json(failed, {"message": message, "step": exc.step, "command": exc.command, "output": exc.output,
                             "at": time.time()})
        raise EnvironmentBuildError(f"cannot build the test environment for {where}: {message}", step=exc.step,
                                    command=exc.command, output=exc.output) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Environment(final, spec, key, False, time.perf_counter() - started)
