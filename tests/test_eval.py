"""`swe-reasoner eval`: SWE-bench-format instances on local clones, predictions, resume, report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import BUG_FILES, BUG_ISSUE, FIXED_MEAN, git, make_repo, run_pytest, tree_snapshot
from scripted import good_answers
from swe_reasoner.agent.errors import SweReasonerError
from swe_reasoner.agent.evaluation import evaluate, gold_locations, read_instances
from swe_reasoner.agent.model import ScriptedModel
from swe_reasoner.agent.pipeline import SolveOptions, solve
from swe_reasoner.agent.repo import Repo


@pytest.fixture
def setup(tmp_path):
    """DIR/acme__calc whose HEAD has moved on past the instances' base commit, and two instances."""
    clone = make_repo(tmp_path / "repos" / "acme__calc", BUG_FILES)
    base = git(clone, "rev-parse", "HEAD").strip()
    stats = clone / "calc" / "stats.py"
    gold = stats.read_text().replace("    return sum(values) / (len(values) - 1)\n", FIXED_MEAN)
    stats.write_text(gold)
    patch = git(clone, "diff")
    (clone / "calc" / "text.py").unlink()  # later history the solve must not see
    git(clone, "add", "-A")
    git(clone, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "fix and move on")
    instances = tmp_path / "instances.jsonl"
    rows = [{"instance_id": f"acme__calc-{n}", "repo": "acme/calc", "base_commit": base,
             "problem_statement": BUG_ISSUE, "patch": patch, "FAIL_TO_PASS": '["tests/test_stats.py::test_mean"]'}
            for n in (1, 2)]
    instances.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path / "repos", instances, base


def test_eval_writes_predictions_that_fix_the_bug_and_resumes(setup, tmp_path):
    repos, instances, base = setup
    before = tree_snapshot(repos)
    out = tmp_path / "preds.jsonl"
    model = ScriptedModel(good_answers)
    summary = evaluate(read_instances(instances), repos, out, model, SolveOptions(), "scripted", progress=lambda s: None)
    assert tree_snapshot(repos) == before  # the clones under DIR are not changed
    preds = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p["instance_id"] for p in preds] == ["acme__calc-1", "acme__calc-2"]
    assert all(set(p) == {"instance_id", "model_name_or_path", "model_patch"} for p in preds)
    # the prediction is a patch against the base commit that makes the failing test pass
    check = tmp_path / "check"
    git(tmp_path, "clone", "-q", str(repos / "acme__calc"), str(check))
    git(check, "checkout", "-q", base)
    (tmp_path / "p.diff").write_text(preds[0]["model_patch"])
    git(check, "apply", str(tmp_path / "p.diff"))
    assert run_pytest(check).returncode == 0
    report = [json.loads(line) for line in (tmp_path / "preds.report.jsonl").read_text().splitlines()]
    loc = report[0]["localization"]
    assert loc["all_files_found"] and loc["functions_hit"] == ["calc/stats.py:mean"]
    assert set(report[0]["stages"]) == {"understand", "localize", "patch"}
    assert summary == json.loads((tmp_path / "preds.summary.json").read_text())
    assert summary["instances"] == 2 and summary["patched"] == 2 and summary["file_localization"] == 1.0
    assert summary["function_localization"] == 1.0
    # a rerun resumes: nothing is solved again, nothing is written twice
    calls = len(model.calls)
    evaluate(read_instances(instances), repos, out, model, SolveOptions(), "scripted", progress=lambda s: None)
    assert len(model.calls) == calls and len(out.read_text().splitlines()) == 2


def test_a_cut_last_line_runs_that_instance_again(setup, tmp_path):
    repos, instances, _ = setup
    out = tmp_path / "preds.jsonl"
    out.write_text('{"instance_id": "acme__calc-1", "model_name_or_path": "s", "model_patch": ""}\n{"instance_id": "acme__')
    model = ScriptedModel(good_answers)
    evaluate(read_instances(instances), repos, out, model, SolveOptions(), "s", progress=lambda s: None)
    ids = [json.loads(line)["instance_id"] for line in out.read_text().splitlines()]
    assert ids == ["acme__calc-1", "acme__calc-2"] and len(model.calls) > 0


def test_gold_locations_parse_hunks():
    patch = ("diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -10,3 +10,4 @@ def f():\n a\n+b\n"
             "@@ -40 +41 @@\n-c\n+d\n")
    assert gold_locations(patch) == {"x.py": [(10, 12), (40, 40)]}


def test_bad_instances_get_clear_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instance_id": "a", "repo": "o/n", "base_commit": "abc"}\n')
    with pytest.raises(SweReasonerError, match=r"bad.jsonl:1: missing or empty problem_statement"):
        read_instances(bad)
    bad.write_text("{not json\n")
    with pytest.raises(SweReasonerError, match=r"bad.jsonl:1: not JSON"):
        read_instances(bad)


def test_eval_cli_with_a_recorded_model(setup, tmp_path):
    repos, instances, base = setup
    # record the solve once (the replay model answers the same prompts the same way)
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", "--shared", str(repos / "acme__calc"), str(work))
    git(work, "checkout", "-q", base)
    recording = tmp_path / "rec.jsonl"
    solve(Repo.open(work), BUG_ISSUE, ScriptedModel(good_answers), SolveOptions(trajectory_path=recording))
    out = tmp_path / "preds.jsonl"
    r = subprocess.run([sys.executable, "-m", "swe_reasoner.agent.cli", "eval", "--instances", str(instances),
                        "--repos", str(repos), "--out", str(out), "--model", f"replay:{recording}"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["patched"] == 2
    assert all(json.loads(line)["model_name_or_path"] == f"replay:{recording}" for line in out.read_text().splitlines())
    r = subprocess.run([sys.executable, "-m", "swe_reasoner.agent.cli", "eval", "--instances", str(instances),
                        "--repos", str(tmp_path / "nowhere"), "--out", str(out), "--model", f"replay:{recording}"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "is not a folder" in r.stderr
