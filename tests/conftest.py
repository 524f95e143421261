"""Shared fixtures: a real git repository with a real bug, and its issue."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BUG_FILES = {
    "calc/__init__.py": '"""A small statistics package."""\nfrom .stats import mean, median\n',
    "calc/stats.py": '''"""Descriptive statistics."""


def mean(values):
    """The arithmetic mean of `values`."""
    if not values:
        raise ValueError("mean of empty data")
    return sum(values) / (len(values) - 1)


def median(values):
    """The middle value of `values`."""
    ordered = sorted(values)
    n = len(ordered)
    if n % 2:
        return ordered[n // 2]
    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2


class Histogram:
    """Counts of values in equal-width bins."""

    def __init__(self, bins=10):
        self.bins = bins
        self.counts = [0] * bins

    def add(self, value, low=0.0, high=1.0):
        width = (high - low) / self.bins
        index = min(int((value - low) / width), self.bins - 1)
        self.counts[index] += 1
''',
    "calc/text.py": '''"""Formatting of numbers for reports."""


def format_number(x, digits=2):
    """`x` rounded to `digits` decimals, as text."""
    return f"{x:.{digits}f}"


class Table:
    def __init__(self, rows):
        self.rows = rows

    def render(self):
        return "\\n".join(" | ".join(format_number(v) for v in row) for row in self.rows)
''',
    "tests/test_stats.py": '''from calc.stats import mean, median


def test_mean():
    assert mean([2, 4]) == 3


def test_median():
    assert median([3, 1, 2]) == 2
''',
    "README.md": "# calc\n",
}

BUG_ISSUE = """mean() returns the wrong value

`mean([2, 4])` gives 6.0 but it should be 3.0:

Traceback (most recent call last):
  File "tests/test_stats.py", line 5, in test_mean
    assert mean([2, 4]) == 3
AssertionError
"""

FIXED_MEAN = "    return sum(values) / len(values)\n"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


def make_repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "initial")
    return root


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root, .git included, for byte-for-byte comparisons."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture
def bug_repo(tmp_path) -> Path:
    return make_repo(tmp_path / "calc-repo", BUG_FILES)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """Caches and settings of the tests never touch the user's."""
    monkeypatch.setenv("SWE_REASONER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SWE_REASONER_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def run_pytest(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
                          cwd=root, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)})


def bwrap_or_skip(**limits):
    """A bubblewrap sandbox (with `limits`), or the test is skipped saying why there is none."""
    from swe_reasoner.agent.sandbox import BwrapSandbox, SandboxUnavailable

    if not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed (apt install bubblewrap)")
    try:
        return BwrapSandbox(**limits)
    except SandboxUnavailable as exc:
        pytest.skip(f"bubblewrap cannot run here: {str(exc).splitlines()[0]}")
