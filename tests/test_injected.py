"""benchmarks/injected: the bug specs, and the builder on a tiny synthetic project (no network)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from swe_reasoner.agent.harness import read_instances

HERE = Path(__file__).resolve().parent.parent / "benchmarks" / "injected"


def _load_builder():
    spec = importlib.util.spec_from_file_location("injected_build", HERE / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build = _load_builder()

CALC = {
    "calc/__init__.py": "from .ops import clamp, mean\n",
    "calc/ops.py": '''"""Small numeric helpers."""


def clamp(x, low=0, high=10):
    if x < low:
        return low
    if x > high:
        return high
    return x


def mean(values):
    return sum(values) / len(values)
''',
    "tests/test_ops.py": '''from calc import clamp, mean


def test_clamp_inside():
    assert clamp(5) == 5


def test_mean_of_one():
    assert mean([4]) == 4
''',
    "README.md": "# calc\n",
}

PROJECT = '''
[projects.calc]
version = "1.0"
sdist = "calc-1.0.tar.gz"
sha256 = "{sha256}"
license = "MIT"
'''

BUG = """
[[bugs]]
id = "{id}"
project = "calc"
kind = "{kind}"
split = "{split}"
file = "calc/ops.py"
original = '''
{original}'''
buggy = '''
{buggy}'''
issue = '''
{issue}
'''
test_file = "{test_file}"
test = '''
from calc import clamp, mean


def test_{n}():
    {check}
'''
pass_to_pass = {p2p}
"""

MEAN_BUG = dict(id="calc-1", n=1, kind="off-by-one", split="dev", test_file="tests/test_injected_1.py",
                original="    return sum(values) / len(values)\n", buggy="    return sum(values) / (len(values) + 1)\n",
                issue="mean([2, 4]) gives 2.0, expected 3.0", check="assert mean([2, 4]) == 3",
                p2p='["tests/test_ops.py::test_clamp_inside"]')
CLAMP_BUG = dict(id="calc-2", n=2, kind="wrong-default", split="test", test_file="tests/test_injected_2.py",
                 original="def clamp(x, low=0, high=10):\n", buggy="def clamp(x, low=0, high=1):\n",
                 issue="clamp(7) gives 1; the docs say the default range is 0 to 10", check="assert clamp(7) == 7",
                 p2p='["tests/test_ops.py::test_mean_of_one"]')
# its test is appended to the project's own test file
LOW_BUG = dict(id="calc-3", n=3, kind="missing-case", split="dev", test_file="tests/test_ops.py",
               original="    if x < low:\n        return low\n    if x > high:\n", buggy="    if x > high:\n",
               issue="clamp(-3) returns -3 instead of 0", check="assert clamp(-3) == 0",
               p2p='["tests/test_ops.py::test_clamp_inside", "tests/test_ops.py::test_mean_of_one"]')


def write_tree(root: Path) -> Path:
    for rel, text in CALC.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def write_spec(path: Path, *bugs: dict, sha256: str = "0" * 64) -> Path:
    path.write_text(PROJECT.format(sha256=sha256) + "".join(BUG.format(**b) for b in bugs))
    return path


def run_build(tmp_path: Path, *bugs: dict) -> dict:
    projects, specs = build.load_spec(write_spec(tmp_path / "spec.toml", *bugs))
    tree = write_tree(tmp_path / "calc-1.0")
    return build.build(projects, specs, {"calc": tree}, tmp_path / "out", sys.executable)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("injected")
    rows = run_build(tmp, MEAN_BUG, CLAMP_BUG, LOW_BUG)
    return tmp / "out", rows


def test_the_build_makes_one_commit_per_bug_on_the_pristine_release(built):
    out, _ = built
    repo = out / "repos" / "injected__calc"
    pristine = git(repo, "rev-parse", "main").strip()
    assert git(repo, "rev-list", "--count", "main").strip() == "1"
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "calc" / "ops.py").read_text() == CALC["calc/ops.py"]  # the checkout is the release
    for tag in ("calc-1", "calc-2", "calc-3"):
        assert git(repo, "rev-parse", f"{tag}^").strip() == pristine
        assert git(repo, "diff", "--name-only", pristine, tag).split() == ["calc/ops.py"]
    assert "(len(values) + 1)" in git(repo, "show", "calc-1:calc/ops.py")
    assert git(repo, "worktree", "list").count("\n") == 1  # the check worktrees are gone


def test_the_instances_are_swe_bench_rows_that_read_instances_accepts(built):
    out, rows = built
    dev, test = read_instances(out / "dev.jsonl"), read_instances(out / "test.jsonl")
    assert [i.instance_id for i in dev] == ["injected__calc-1", "injected__calc-3"]
    assert [i.instance_id for i in test] == ["injected__calc-2"]
    row, appended = (json.loads(line) for line in (out / "dev.jsonl").read_text().splitlines())
    assert row["repo"] == "injected/calc" and row["version"] == "1.0" and row["hints_text"] == ""
    assert row["environment_setup_commit"] == row["base_commit"]
    assert json.loads(row["FAIL_TO_PASS"]) == ["tests/test_injected_1.py::test_1"]
    assert json.loads(row["PASS_TO_PASS"]) == ["tests/test_ops.py::test_clamp_inside"]
    assert row["problem_statement"].startswith("mean([2, 4]) gives 2.0")
    assert "+    return sum(values) / len(values)" in row["patch"]
    assert row["test_patch"].startswith("diff --git a/tests/test_injected_1.py")
    assert "new file mode" in row["test_patch"]
    assert json.loads(appended["FAIL_TO_PASS"]) == ["tests/test_ops.py::test_3"]
    assert appended["test_patch"].startswith("diff --git a/tests/test_ops.py")
    assert "new file" not in appended["test_patch"]
    repo = out / "repos" / "injected__calc"
    assert git(repo, "rev-parse", "calc-1").strip() == dev[0].base_commit == rows["dev"][0]["base_commit"]


def test_the_gold_patch_turns_the_bug_commit_back_into_the_release(built, tmp_path):
    out, _ = built
    row = json.loads((out / "test.jsonl").read_text())
    check = tmp_path / "check"
    git(tmp_path, "clone", "-q", str(out / "repos" / "injected__calc"), str(check))
    git(check, "checkout", "-q", row["base_commit"])
    (tmp_path / "gold.diff").write_text(row["patch"])
    git(check, "apply", str(tmp_path / "gold.diff"))
    assert (check / "calc" / "ops.py").read_text() == CALC["calc/ops.py"]


def test_the_cli_builds_from_a_local_sdist_with_the_same_hashes(built, tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the build must not download with --sdists")

    monkeypatch.setattr(build.urllib.request, "urlopen", no_network)
    tree = write_tree(tmp_path / "calc-1.0")
    sdists = tmp_path / "sdists"
    sdists.mkdir()
    with tarfile.open(sdists / "calc-1.0.tar.gz", "w:gz") as tar:
        tar.add(tree, arcname="calc-1.0")
    sha = hashlib.sha256((sdists / "calc-1.0.tar.gz").read_bytes()).hexdigest()
    spec = write_spec(tmp_path / "spec.toml", MEAN_BUG, CLAMP_BUG, LOW_BUG, sha256=sha)
    out = tmp_path / "out"
    assert build.main(["--out", str(out), "--spec", str(spec), "--sdists", str(sdists)]) == 0
    first, _ = built
    assert (out / "dev.jsonl").read_text() == (first / "dev.jsonl").read_text()  # reproducible commit hashes
    assert (out / "test.jsonl").read_text() == (first / "test.jsonl").read_text()


def test_an_sdist_with_another_sha256_is_refused(tmp_path, capsys):
    sdists = tmp_path / "sdists"
    sdists.mkdir()
    (sdists / "calc-1.0.tar.gz").write_bytes(b"not the release")
    spec = write_spec(tmp_path / "spec.toml", MEAN_BUG)
    assert build.main(["--out", str(tmp_path / "out"), "--spec", str(spec), "--sdists", str(sdists)]) == 1
    assert "does not have the pinned sha256" in capsys.readouterr().err


@pytest.mark.parametrize("original, found", [("        return ", 2), ("    return nothing\n", 0)])
def test_a_substitution_that_does_not_apply_exactly_once_is_refused(tmp_path, original, found):
    bad = {**MEAN_BUG, "original": original}
    with pytest.raises(build.BuildError, match=rf"calc-1: the original snippet occurs {found} times"):
        run_build(tmp_path, bad, CLAMP_BUG)
    assert not (tmp_path / "out" / "dev.jsonl").exists()  # nothing is written when an instance fails


def test_a_test_that_passes_before_the_fix_is_refused(tmp_path):
    bad = {**MEAN_BUG, "check": "assert clamp(5) == 5"}
    with pytest.raises(build.BuildError, match=r"calc-1: before the fix: tests/test_injected_1.py::test_1 PASSED"):
        run_build(tmp_path, bad)


def test_a_pass_to_pass_test_that_the_bug_breaks_is_refused(tmp_path):
    bad = {**CLAMP_BUG, "p2p": '["tests/test_ops.py::test_clamp_inside"]'}
    with pytest.raises(build.BuildError, match=r"calc-2: before the fix: tests/test_ops.py::test_clamp_inside FAILED"):
        run_build(tmp_path, bad)


@pytest.mark.parametrize("change, message", [
    ({"kind": "typo"}, "kind must be one of"),
    ({"split": "train"}, "split must be dev or test"),
    ({"id": "other-1"}, "the id must be calc-<number>"),
    ({"issue": " "}, "missing or empty issue"),
    ({"p2p": '["test_ops"]'}, "pass_to_pass must be pytest node ids"),
    ({"p2p": '[]\nfail_to_pass = "x"'}, "unknown field fail_to_pass"),
    ({"test_file": "calc/ops.py"}, "the test must not go into the file that has the bug"),
    ({"check": "pass\n\n\ndef test_two():\n    pass"}, "exactly one test function, not 2"),
])
def test_the_spec_is_checked_field_by_field(tmp_path, change, message):
    with pytest.raises(build.BuildError, match=message):
        build.load_spec(write_spec(tmp_path / "spec.toml", {**MEAN_BUG, **change}))


def test_a_repeated_id_is_refused(tmp_path):
    with pytest.raises(build.BuildError, match="calc-1: the id appears twice"):
        build.load_spec(write_spec(tmp_path / "spec.toml", MEAN_BUG, {**CLAMP_BUG, "id": "calc-1"}))


def test_a_failed_subtest_fails_its_test():
    out = ("PASSED tests/t.py::T::test_a\nSUBFAILED(x=[1, 2]) tests/t.py::T::test_a\n"
           "PASSED tests/t.py::T::test_b\nFAILED tests/t.py::test_c - assert 0\n"
           "PASSED tests/t.py::test_d\nERROR tests/t.py::test_d - teardown\n")
    nodes = ["tests/t.py::T::test_a", "tests/t.py::T::test_b", "tests/t.py::test_c", "tests/t.py::test_d",
             "tests/t.py::test_e"]
    got = build.parse_outcomes(out, nodes)
    assert got == {"tests/t.py::T::test_a": "FAILED", "tests/t.py::T::test_b": "PASSED",
                   "tests/t.py::test_c": "FAILED", "tests/t.py::test_d": "ERROR"}


def test_bugs_toml_is_complete_and_balanced():
    projects, bugs = build.load_spec(build.SPEC)  # every field present, ids unique, kinds and splits known
    assert len(bugs) >= 25
    assert len({b.id for b in bugs}) == len(bugs)
    assert len({(b.project, b.test_file) for b in bugs}) == len(bugs)
    for split in build.SPLITS:
        assert {b.kind for b in bugs if b.split == split} == set(build.KINDS), split
    for project in {b.project for b in bugs}:
        assert {b.split for b in bugs if b.project == project} == set(build.SPLITS), project
        assert projects[project].license in ("MIT", "BSD-3-Clause"), project
    for bug in bugs:
        assert bug.pass_to_pass, bug.id  # every project ships tests that run with plain pytest
        changed = [line.strip() for line in (bug.buggy + bug.original).splitlines() if len(line.strip()) > 12]
        leaks = [text for text in [bug.file, *changed] if text in bug.issue]
        assert not leaks, f"{bug.id}: the issue names the fix: {leaks}"
