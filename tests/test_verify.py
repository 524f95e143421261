"""Patch verification on a real bug (calc.stats.mean divides by len - 1), in a sandbox."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import bwrap_or_skip, tree_snapshot
from swe_reasoner.agent.repo import Repo
from swe_reasoner.agent.sandbox import BwrapSandbox, DockerSandbox, pick_sandbox
from swe_reasoner.agent.verify import (
    OTHER, REPRODUCED, RESOLVED, main, related_tests, repro_verdict, touched_files, verify_patch,
)
from test_sandbox import docker_engine  # noqa: F401  (the session fixture)

REPRO = '''from calc.stats import mean
got = mean([2, 4])
print("mean([2, 4]) =", got)
print("VERDICT:", "RESOLVED" if got == 3 else "REPRODUCED")
'''
NOT_REPRODUCING = '''from calc.stats import median
print("median:", median([1, 2, 3]))
print("VERDICT: RESOLVED" if median([1, 2, 3]) == 2 else "VERDICT: REPRODUCED")
'''
OLD = "    return sum(values) / (len(values) - 1)\n"


def make_patch(repo, old: str, new: str, path: str = "calc/stats.py") -> str:
    """A real `git diff` of one replacement, made in a throwaway clone."""
    work = repo.parent / "patch-work"
    subprocess.run(["git", "clone", "-q", str(repo), str(work)], check=True)
    target = work / path
    text = target.read_text()
    assert old in text
    target.write_text(text.replace(old, new))
    diff = subprocess.run(["git", "-C", str(work), "diff"], capture_output=True, text=True, check=True).stdout
    shutil.rmtree(work)
    return diff


RIGHT = "    return sum(values) / len(values)\n"
WRONG_STILL_FAILS = "    return sum(values) / (len(values) + 0.0) - 0 + (1 if len(values) == 2 else 0)\n"
MEDIAN_OLD = "    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2\n"


@pytest.fixture(params=["bwrap", "docker"])
def sandbox(request):
    if request.param == "bwrap":
        return bwrap_or_skip()
    url, image = request.getfixturevalue("docker_engine")
    return DockerSandbox(image, base_url=url)


def test_right_patch_verifies(bug_repo, sandbox):
    before = tree_snapshot(bug_repo)
    v = verify_patch(Repo.open(bug_repo), make_patch(bug_repo, OLD, RIGHT), sandbox, REPRO)
    assert v.verified, v.describe()
    assert v.status == "verified"
    assert v.touched_files == ["calc/stats.py"]
    assert v.test_files == ["tests/test_stats.py"]
    assert v.regression_tests == ["tests/test_stats.py::test_median"]
    assert v.failing_before == ["tests/test_stats.py::test_mean"]
    assert v.fixed_tests == ["tests/test_stats.py::test_mean"]
    assert (v.repro_before, v.repro_after) == (REPRODUCED, RESOLVED)
    assert [s.name for s in v.steps] == ["regression-before", "repro-before", "apply", "regression-after",
                                         "repro-after"]
    assert "mean([2, 4]) = 6.0" in v.steps[1].result.output
    assert tree_snapshot(bug_repo) == before


def test_wrong_patch_that_still_fails_is_not_verified(bug_repo, sandbox):
    before = tree_snapshot(bug_repo)
    v = verify_patch(Repo.open(bug_repo), make_patch(bug_repo, OLD, WRONG_STILL_FAILS), sandbox, REPRO)
    assert not v.verified and v.status == "not_verified", v.describe()
    assert v.repro_after == REPRODUCED
    assert "reproduction script says REPRODUCED after" in v.reason
    assert tree_snapshot(bug_repo) == before


def test_patch_that_breaks_median_is_not_verified(bug_repo, sandbox):
    patch = make_patch(bug_repo, OLD + "\n\ndef median(values):\n    \"\"\"The middle value of `values`.\"\"\"\n"
                       "    ordered = sorted(values)\n",
                       RIGHT + "\n\ndef median(values):\n    \"\"\"The middle value of `values`.\"\"\"\n"
                       "    ordered = sorted(values, reverse=len(values) > 2)[1:] + [0]\n")
    v = verify_patch(Repo.open(bug_repo), patch, sandbox, REPRO)
    assert not v.verified, v.describe()
    assert v.repro_after == RESOLVED  # the reproduction alone would have passed it
    assert v.regressions == ["tests/test_stats.py::test_median"]


def test_repro_that_does_not_reproduce_is_rejected(bug_repo, sandbox):
    before = tree_snapshot(bug_repo)
    v = verify_patch(Repo.open(bug_repo), make_patch(bug_repo, OLD, RIGHT), sandbox, NOT_REPRODUCING)
    assert not v.verified
    assert v.status == "repro_not_reproducing"
    assert v.repro_before == RESOLVED and v.repro_after is None
    assert "apply" not in [s.name for s in v.steps]
    assert tree_snapshot(bug_repo) == before


def test_patch_that_does_not_apply(bug_repo):
    sb = pick_sandbox("none")
    v = verify_patch(Repo.open(bug_repo), make_patch(bug_repo, OLD, RIGHT).replace("(len(values) - 1)", "(n - 7)"),
                     sb, None)
    assert v.status == "patch_does_not_apply" and not v.verified


def test_without_repro_the_regression_tests_decide(bug_repo):
    sb = pick_sandbox("none")
    v = verify_patch(Repo.open(bug_repo), make_patch(bug_repo, OLD, RIGHT), sb)
    assert v.verified and "no reproduction script" in v.reason
    assert v.fixed_tests == ["tests/test_stats.py::test_mean"]


def test_hostile_repro_cannot_touch_the_user_tree(bug_repo):
    if not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed")
    before = tree_snapshot(bug_repo)
    hostile = (f"import pathlib\ntry:\n    pathlib.Path({str(bug_repo / 'calc' / 'stats.py')!r}).write_text('x')\n"
               "except OSError as exc:\n    print('refused', exc)\nprint('VERDICT: REPRODUCED')\n")
    v = verify_patch(Repo.open(bug_repo), make_patch(bug_repo, OLD, RIGHT), BwrapSandbox(), hostile)
    assert v.repro_before == REPRODUCED and v.repro_after == REPRODUCED and not v.verified
    assert tree_snapshot(bug_repo) == before


def test_units():
    diff = "--- a/calc/stats.py\n+++ b/calc/stats.py\n@@ -1 +1 @@\n--- a/x.py\n+++ /dev/null\n"
    assert touched_files(diff) == ["calc/stats.py", "x.py"]
    from swe_reasoner.agent.sandbox import RunResult
    assert repro_verdict(RunResult(1, "noise\nVERDICT: REPRODUCED\n", 0.1)) == REPRODUCED
    assert repro_verdict(RunResult(0, "VERDICT: RESOLVED\nVERDICT: OTHER", 0.1)) == OTHER
    assert repro_verdict(RunResult(0, "resolved", 0.1)) == OTHER
    assert repro_verdict(RunResult(None, "VERDICT: RESOLVED", 0.1, timed_out=True, killed_reason="timeout")) == OTHER


def test_related_tests_by_name_and_import(tmp_path):
    from conftest import make_repo
    root = make_repo(tmp_path / "r", {"pkg/__init__.py": "", "pkg/core.py": "X = 1\n",
                                      "tests/test_core.py": "def test_a(): pass\n",
                                      "tests/test_uses.py": "from pkg import core\n",
                                      "tests/test_other.py": "import os\n"})
    assert related_tests(Repo.open(root), ["pkg/core.py"]) == ["tests/test_core.py", "tests/test_uses.py"]


def test_cli(bug_repo, tmp_path, capsys):
    if not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed")
    patch = tmp_path / "fix.diff"
    patch.write_text(make_patch(bug_repo, OLD, RIGHT))
    repro = tmp_path / "repro.py"
    repro.write_text(REPRO)
    assert main(["--repo", str(bug_repo), "--patch", str(patch), "--repro", str(repro)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("VERIFIED (verified)") and "repro-before" in out and "mean([2, 4]) = 6.0" in out
    repro.write_text(NOT_REPRODUCING)
    assert main(["--repo", str(bug_repo), "--patch", str(patch), "--repro", str(repro), "--json"]) == 1
    assert '"status": "repro_not_reproducing"' in capsys.readouterr().out
    assert main(["--repo", str(bug_repo), "--patch", str(tmp_path / "missing.diff")]) == 2
    assert main(["--repo", str(bug_repo), "--patch", str(patch), "--sandbox", "docker"]) == 2
    assert "image" in capsys.readouterr().err


def test_outcomes_of_a_big_test_file_come_from_the_junit_report(tmp_path):
    """600 tests print more summary lines than a run's output keeps; the JUnit report has them all,
    with class tests, parameters, a failure, a skip, an xfail and a teardown error."""
    import sys

    from swe_reasoner.agent.sandbox import OUTPUT_LIMIT, LocalSandbox
    from swe_reasoner.agent.verify import JUNIT_FILE, run_pytest

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_big.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.parametrize('i', range(600))\n"
        "def test_many(i):\n    print('x' * 50)\n    assert i != 599\n\n"
        "class TestGroup:\n    def test_in_class(self):\n        pass\n\n"
        "@pytest.mark.skip(reason='no')\ndef test_skipped():\n    pass\n\n"
        "@pytest.mark.xfail\ndef test_xfail():\n    assert False\n\n"
        "@pytest.fixture\ndef broken():\n    yield\n    raise RuntimeError('teardown')\n\n"
        "def test_teardown(broken):\n    pass\n")
    result, outcomes = run_pytest(LocalSandbox(i_understand_this_is_unsafe=True), tmp_path, sys.executable,
                                  ["tests/test_big.py"], timeout=120)
    assert len(result.output) <= OUTPUT_LIMIT + 200  # the output was cut ...
    many = {k: v for k, v in outcomes.items() if "test_many[" in k}
    assert len(many) == 600 and list(many.values()).count("PASSED") == 599  # ... the outcomes were not
    assert many["tests/test_big.py::test_many[599]"] == "FAILED"
    assert outcomes["tests/test_big.py::TestGroup::test_in_class"] == "PASSED"
    assert outcomes["tests/test_big.py::test_skipped"] == "SKIPPED"
    assert outcomes["tests/test_big.py::test_xfail"] == "XFAIL"
    assert outcomes["tests/test_big.py::test_teardown"] == "ERROR"
    assert not (tmp_path / JUNIT_FILE).exists()
