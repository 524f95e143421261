"""Test environments: detection on synthetic layouts, real venv builds, the cache, failures,
and verify_patch running the tests with the environment's interpreter.

Offline: pip gets PIP_NO_INDEX=1 and a local wheelhouse holding pytest and its
dependencies and setuptools (packed from this venv's installed copies) and a tiny
`calcdep` wheel built here. `calcdep` is not installed in this venv, so a test that
imports it passes only with the built environment.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import bwrap_or_skip, make_repo, tree_snapshot
from swe_reasoner.agent.environment import EnvironmentBuildError, READY, detect, environment_key, prepare
from swe_reasoner.agent.repo import Repo
from swe_reasoner.agent.sandbox import pick_sandbox, venv_paths
from swe_reasoner.agent.verify import REPRODUCED, RESOLVED, verify_patch
from test_verify import make_patch

HOST_PACKAGES = ("pytest", "pluggy", "iniconfig", "packaging", "pygments", "setuptools")


# ---------------------------------------------------------------- detection (no builds)


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_detect_pyproject_with_test_extra_and_src_layout(tmp_path):
    root = write(tmp_path, {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
                          '[project]\nname = "pkg"\nversion = "1"\n'
                          '[project.optional-dependencies]\ndocs = ["sphinx"]\ntests = ["pytest-mock"]\n'
                          '[tool.pytest.ini_options]\ntestpaths = ["tests"]\npythonpath = ["helpers"]\n',
        "src/pkg/__init__.py": "",
        "requirements-docs.txt": "sphinx\n"})
    spec = detect(root)
    assert spec.installable and spec.install_source == "pyproject.toml" and spec.project_name == "pkg"
    assert spec.extras == ["tests"]
    assert spec.requirements == []  # docs requirements are not test requirements
    assert (spec.pytest_config, spec.testpaths) == ("pyproject.toml", ["tests"])
    assert spec.pythonpath == ["src", ".", "helpers"]
    assert spec.dependency_files == ["pyproject.toml"]
    assert "pip install .[tests]" in spec.describe()


def test_detect_setup_cfg_and_tox(tmp_path):
    root = write(tmp_path, {
        "setup.cfg": "[metadata]\nname = legacy\n[options]\npackages = find:\n"
                     "[options.extras_require]\ntesting = pytest\n[tool:pytest]\ntestpaths = t\n",
        "setup.py": "from setuptools import setup\nsetup()\n",
        "tox.ini": "[tox]\nenvlist = py311\n[testenv]\ndeps =\n    mock>=4\n    -r{toxinidir}/requirements-test.txt\n"
                   "    {env:EXTRA:}\ncommands = pytest {posargs}\n[pytest]\ntestpaths = tests other\n",
        "requirements-test.txt": "hypothesis\n"})
    spec = detect(root)
    assert spec.installable and spec.install_source == "setup.py" and spec.project_name == "legacy"
    assert spec.extras == ["testing"]
    assert spec.extra_requirements == ["mock>=4"]
    assert spec.requirements == ["requirements-test.txt"]
    assert spec.tox_commands == ["pytest {posargs}"]
    # pytest reads tox.ini before setup.cfg
    assert (spec.pytest_config, spec.testpaths) == ("tox.ini", ["tests", "other"])
    assert spec.pythonpath == ["."]
    assert spec.dependency_files == ["requirements-test.txt", "setup.cfg", "setup.py", "tox.ini"]


def test_detect_requirements_only_and_pytest_ini(tmp_path):
    root = write(tmp_path, {"requirements.txt": "attrs\n", "requirements/dev.txt": "pytest\n",
                            "pytest.ini": "[pytest]\ntestpaths = tests\n", "app.py": ""})
    spec = detect(root)
    assert not spec.installable and spec.needs_build
    assert spec.requirements == ["requirements.txt", "requirements/dev.txt"]
    assert (spec.pytest_config, spec.testpaths) == ("pytest.ini", ["tests"])
    assert not detect(write(tmp_path / "bare", {"m.py": ""})).needs_build


# ---------------------------------------------------------------- an offline wheelhouse


def pack_installed(name: str, dest: Path) -> Path:
    """A wheel of an installed distribution, from the files its RECORD lists."""
    dist = importlib.metadata.distribution(name)
    base = Path(dist.locate_file(""))
    info = next(p for p in (dist.files or []) if p.parts[0].endswith(".dist-info"))
    version = dist.version
    wheel = dest / f"{dist.metadata['Name'].replace('-', '_')}-{version}-py3-none-any.whl"
    record_name = f"{info.parts[0]}/RECORD"
    rows = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in dist.files:
            rel = f.as_posix()
            if rel.startswith("..") or "__pycache__" in rel or rel.endswith(".pyc") or rel == record_name:
                continue
            path = base / rel
            if not path.is_file():
                continue
            data = path.read_bytes()
            zf.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append(f"{rel},sha256={digest},{len(data)}")
        zf.writestr(record_name, "\n".join(rows + [f"{record_name},,"]) + "\n")
    return wheel


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """pytest, its dependencies and setuptools from this venv, and a `calcdep` wheel built with pip."""
    house = tmp_path_factory.mktemp("wheelhouse")
    for name in HOST_PACKAGES:
        pack_installed(name, house)
    src = write(tmp_path_factory.mktemp("calcdep-src"), {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
                          '[project]\nname = "calcdep"\nversion = "1.0"\n',
        "calcdep/__init__.py": "def divisor(values):\n    return len(values)\n"})
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(house)}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(house), str(src)],
                   check=True, env=env, capture_output=True)
    assert list(house.glob("calcdep-1.0-*.whl"))
    return house


@pytest.fixture
def offline(wheelhouse, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheelhouse))
    return wheelhouse


# The calc bug of conftest, as an installable project that needs `calcdep` to test.
DEP_FILES = {
    "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
                      '[project]\nname = "calc"\nversion = "0.1"\n'
                      '[project.optional-dependencies]\ntest = ["calcdep"]\n'
                      '[tool.setuptools]\npackages = ["calc"]\n'
                      '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
    "calc/__init__.py": "",
    "calc/stats.py": "def mean(values):\n    return sum(values) / (len(values) - 1)\n",
    "tests/test_stats.py": "import calcdep\nfrom calc.stats import mean\n\n\n"
                           "def test_mean():\n    assert mean([2, 4]) == 3\n\n\n"
                           "def test_dep():\n    assert calcdep.divisor([1, 2]) == 2\n",
}
REPRO = ("import calcdep\nfrom calc.stats import mean\nprint('mean', mean([2, 4]))\n"
         "print('VERDICT:', 'RESOLVED' if mean([2, 4]) == 3 else 'REPRODUCED')\n")
OLD = "    return sum(values) / (len(values) - 1)\n"
RIGHT = "    return sum(values) / len(values)\n"


def test_calcdep_is_not_in_the_host_venv():
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("calcdep")


def test_prepare_builds_once_then_hits_the_cache(tmp_path, offline):
    root = make_repo(tmp_path / "calc", DEP_FILES)
    before = tree_snapshot(root)
    repo = Repo.open(root)
    env = prepare(repo, cache_dir=tmp_path / "cache")
    assert not env.cached
    ready = env.root / READY
    record = json.loads(ready.read_text())
    assert [s["step"] for s in record["steps"]][:2] == ["create the virtual environment",
                                                        "install the repository (.[test], from pyproject.toml)"]
    check = subprocess.run([str(env.python), "-c", "import calcdep, pytest, sys; print(sys.prefix)"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert Path(check.stdout.strip()) == env.root
    # The repository's own package was uninstalled: its code comes from the scratch copy.
    own = subprocess.run([str(env.python), "-c", "import calc"], capture_output=True, cwd="/")
    assert own.returncode != 0 and any(s["step"].startswith("uninstall") for s in record["steps"])
    stamp = ready.stat().st_mtime_ns
    again = prepare(repo, cache_dir=tmp_path / "cache")
    assert again.cached and again.root == env.root and ready.stat().st_mtime_ns == stamp
    assert again.seconds < env.seconds
    assert [p.name for p in env.root.parent.iterdir()] == [env.key]  # no leftover build folders
    assert tree_snapshot(root) == before  # the user's tree is never written
    # A change of the dependency files (or the commit) is a new key.
    (root / "requirements-test.txt").write_text("calcdep\n")
    assert environment_key(repo, detect(root))[1] != env.key


def test_a_broken_package_names_the_failing_step_and_is_not_retried(tmp_path, offline):
    root = make_repo(tmp_path / "broken", {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n',
        "setup.py": "raise RuntimeError('this setup.py is broken on purpose')\n", "broken/__init__.py": ""})
    repo = Repo.open(root)
    with pytest.raises(EnvironmentBuildError) as info:
        prepare(repo, cache_dir=tmp_path / "cache")
    exc = info.value
    assert exc.step == "install the repository (., from setup.py)" and not exc.cached
    assert exc.command[-1] == "." and "pip" in exc.command
    assert "this setup.py is broken on purpose" in str(exc)
    assert "step 'install the repository" in str(exc) and str(root) in str(exc)
    with pytest.raises(EnvironmentBuildError) as again:  # recorded: no second build
        prepare(repo, cache_dir=tmp_path / "cache")
    assert again.value.cached and "recorded failure" in str(again.value)
    assert again.value.step == exc.step and "broken on purpose" in str(again.value)
    folder = next((tmp_path / "cache" / "envs").iterdir())
    assert [p.name for p in folder.iterdir() if not p.name.endswith(".failed.json")] == []
    with pytest.raises(EnvironmentBuildError) as retried:
        prepare(repo, cache_dir=tmp_path / "cache", retry_failed=True)
    assert not retried.value.cached


def test_a_missing_dependency_fails_offline_with_pip_output(tmp_path, offline):
    root = make_repo(tmp_path / "needs", {"requirements.txt": "no-such-package-swe-reasoner==1\n", "m.py": ""})
    with pytest.raises(EnvironmentBuildError) as info:
        prepare(Repo.open(root), cache_dir=tmp_path / "cache")
    assert info.value.step == "install the requirements file requirements.txt"
    assert "no-such-package-swe-reasoner" in str(info.value)


def test_concurrent_builds_of_one_key(tmp_path, offline):
    from concurrent.futures import ThreadPoolExecutor

    root = make_repo(tmp_path / "calc", DEP_FILES)
    repo = Repo.open(root)
    with ThreadPoolExecutor(2) as pool:
        envs = list(pool.map(lambda _: prepare(repo, cache_dir=tmp_path / "cache"), range(2)))
    assert envs[0].root == envs[1].root and (envs[0].root / READY).is_file()
    assert [p.name for p in envs[0].root.parent.iterdir()] == [envs[0].key]
    assert subprocess.run([str(envs[0].python), "-c", "import calcdep"], cwd=tmp_path).returncode == 0


# ---------------------------------------------------------------- verify with the environment


@pytest.mark.parametrize("box", ["bwrap", "none"])
def test_verify_runs_tests_in_the_environment(tmp_path, offline, box):
    sandbox = bwrap_or_skip() if box == "bwrap" else pick_sandbox("none")
    root = make_repo(tmp_path / "calc", DEP_FILES)
    repo = Repo.open(root)
    patch = make_patch(root, OLD, RIGHT)
    # Without the environment the host's python has no calcdep: the tests cannot even import.
    host = verify_patch(repo, patch, sandbox, REPRO)
    assert not host.verified and host.repro_before != REPRODUCED
    assert "No module named 'calcdep'" in host.steps[0].result.output
    env = prepare(repo, cache_dir=tmp_path / "cache")  # the cache is under /tmp: hidden by bwrap, then re-shown
    from swe_reasoner.agent.verify import VerifyOptions

    v = verify_patch(repo, patch, sandbox, REPRO, VerifyOptions(environment=env))
    assert v.verified, v.describe()
    assert v.steps[0].result.command[0] == str(env.python)
    assert v.regression_tests == ["tests/test_stats.py::test_dep"]
    assert v.fixed_tests == ["tests/test_stats.py::test_mean"]
    assert (v.repro_before, v.repro_after) == (REPRODUCED, RESOLVED)
    assert v.environment == str(env.root) and "test environment" in v.describe()


def test_verify_with_environment_src_layout(tmp_path, offline):
    sandbox = bwrap_or_skip()
    files = {k.replace("calc/", "src/calc/"): v.replace('packages = ["calc"]', 'package-dir = {"" = "src"}')
             for k, v in DEP_FILES.items()}
    root = make_repo(tmp_path / "calc", files)
    repo = Repo.open(root)
    env = prepare(repo, cache_dir=tmp_path / "cache")
    assert env.spec.pythonpath[0] == "src"
    from swe_reasoner.agent.verify import VerifyOptions

    v = verify_patch(repo, make_patch(root, OLD, RIGHT, "src/calc/stats.py"), sandbox, REPRO,
                     VerifyOptions(environment=env))
    assert v.verified and v.fixed_tests == ["tests/test_stats.py::test_mean"], v.describe()


def test_environment_with_docker_sandbox_says_not_supported(tmp_path):
    from swe_reasoner.agent.errors import SweReasonerError
    from swe_reasoner.agent.verify import VerifyOptions

    class FakeDocker:
        name = "docker"

    class FakeEnv:
        root = tmp_path
        python = tmp_path / "bin" / "python"

    with pytest.raises(SweReasonerError, match="docker sandbox"):
        verify_patch(Repo.open(make_repo(tmp_path / "r", {"a.py": ""})), "x", FakeDocker(), None,
                     VerifyOptions(environment=FakeEnv()))


def test_venv_paths_only_for_venvs(tmp_path):
    assert venv_paths("python3") == []
    fake = tmp_path / "notvenv" / "bin"
    fake.mkdir(parents=True)
    assert venv_paths(str(fake / "python")) == []
    (fake.parent / "pyvenv.cfg").write_text("home = /opt/py/bin\n")
    assert venv_paths(str(fake / "python")) == [os.path.realpath(fake.parent), "/opt/py"]


def test_cli_env_build(tmp_path, offline, capsys):
    bwrap_or_skip()
    from swe_reasoner.agent.verify import main

    root = make_repo(tmp_path / "calc", DEP_FILES)
    (tmp_path / "fix.diff").write_text(make_patch(root, OLD, RIGHT))
    (tmp_path / "repro.py").write_text(REPRO)
    args = ["--repo", str(root), "--patch", str(tmp_path / "fix.diff"), "--repro", str(tmp_path / "repro.py")]
    assert main(args + ["--env", "build"]) == 0
    out = capsys.readouterr()
    assert "test environment built" in out.err and out.out.startswith("VERIFIED")
    assert main(args + ["--env", "auto", "--json"]) == 0
    out = capsys.readouterr()
    assert "found in the cache" in out.err and '"environment": "' in out.out
    assert main(args) == 1  # --env host (the default): calcdep is missing, nothing reproduces
    broken = make_repo(tmp_path / "broken", {"requirements.txt": "no-such-package-swe-reasoner\n", "m.py": ""})
    assert main(["--repo", str(broken), "--patch", str(tmp_path / "fix.diff"), "--env", "build"]) == 2
    assert "step 'install the requirements file requirements.txt' failed" in capsys.readouterr().err


def test_solve_with_test_env_build_verifies_in_the_environment(tmp_path, offline):
    """`solve` with test_env = build: the reproduction script and the tests need `calcdep`,
    which only the built environment has."""
    from scripted import PATCH_ANSWER, good_answers

    from swe_reasoner.agent.config import Settings, load_test_env
    from swe_reasoner.agent.model import ScriptedModel
    from swe_reasoner.agent.pipeline import SolveOptions, solve

    sandbox = bwrap_or_skip()
    root = make_repo(tmp_path / "calc", {**DEP_FILES, "calc/stats.py": DEP_FILES["calc/stats.py"].replace(
        "def mean", '"""Descriptive statistics."""\n\n\ndef mean')})
    repo = Repo.open(root)

    def answers(messages):
        first = messages[1]["content"]
        if "reproduces this issue" in first:
            return f"```python\n{REPRO}```"
        if "search/replace edits" in first:
            return PATCH_ANSWER
        return good_answers(messages)

    environment, note = load_test_env(Settings(test_env="build"), repo, sandbox)
    assert environment is not None and not note
    result = solve(repo, "mean() returns the wrong value: mean([2, 4]) gives 6.0, not 3.0", ScriptedModel(answers),
                   SolveOptions(sandbox=sandbox, environment=environment))
    [cand] = result.patches
    assert cand.verification["verified"], cand.verification["reason"]
    assert cand.verification["environment"] == str(environment.root)
    assert result.trajectory.reproduction["attempts"][0]["verdict"] == REPRODUCED
