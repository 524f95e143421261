"""A whole solve with a scripted model on a real git repository with a real bug."""

import json
import subprocess

import pytest

from conftest import BUG_ISSUE, bwrap_or_skip, git, run_pytest, tree_snapshot
from scripted import PATCH_ANSWER, good_answers
from swe_reasoner.agent.errors import Cancelled, SweReasonerError
from swe_reasoner.agent.model import ScriptedModel
from swe_reasoner.agent.pipeline import SolveOptions, solve
from swe_reasoner.agent.progress import CancelToken
from swe_reasoner.agent.repo import Repo
from swe_reasoner.agent.trajectory import read_trajectories


def test_solve_produces_a_patch_that_fixes_the_bug(bug_repo, tmp_path):
    assert run_pytest(bug_repo).returncode == 1  # the bug is real
    before = tree_snapshot(bug_repo)
    events = []
    result = solve(Repo.open(bug_repo), BUG_ISSUE, ScriptedModel(good_answers),
                   SolveOptions(trajectory_path=tmp_path / "t.jsonl"), progress=events.append)
    assert tree_snapshot(bug_repo) == before  # the user's tree, .git included, is untouched
    patch = tmp_path / "fix.diff"
    patch.write_text(result.best)
    git(bug_repo, "apply", "--check", str(patch))
    git(bug_repo, "apply", str(patch))
    assert run_pytest(bug_repo).returncode == 0
    stages = [e.stage for e in events]
    assert stages[0] == "index" and stages[-1] == "done" and {"understand", "localize", "patch"} <= set(stages)
    assert [e.fraction for e in events] == sorted(e.fraction for e in events)


def test_trajectory_records_every_step(bug_repo, tmp_path):
    path = tmp_path / "t.jsonl"
    solve(Repo.open(bug_repo), BUG_ISSUE, ScriptedModel(good_answers), SolveOptions(trajectory_path=path))
    [record] = read_trajectories(path)
    assert record["status"] == "patched" and record["version"] == 1
    assert [s["stage"] for s in record["steps"]] == [
        "understand.files", "understand.locations", "localize", "localize", "patch"]
    assert record["steps"][0]["think"] == "The issue names mean()." and record["steps"][0]["parsed"] == ["calc/stats.py"]
    call = record["steps"][2]["tool_calls"][0]
    assert call["tool"] == "search_method" and "def mean(values):" in call["result"]
    assert record["locations"] == [{"file": "calc/stats.py", "class": "", "function": "mean", "reason": ""}]
    assert record["patches"][0]["files"] == ["calc/stats.py"] and record["patches"][0]["diff"].startswith("diff --git")
    assert record["tokens"]["completion"] > 0 and record["base_commit"] == git(bug_repo, "rev-parse", "HEAD").strip()
    # the think part of earlier answers never goes back into a prompt
    for step in record["steps"]:
        assert all("<think>" not in m["content"] for m in step["messages"] if m["role"] == "assistant")


def test_uncommitted_changes_are_the_base(bug_repo):
    (bug_repo / "calc/stats.py").write_text((bug_repo / "calc/stats.py").read_text().replace('"""Descriptive statistics."""', '"""Stats."""'))
    (bug_repo / "calc/extra.py").write_text("X = 1\n")
    result = solve(Repo.open(bug_repo), BUG_ISSUE, ScriptedModel(good_answers))
    assert "Stats." not in result.best and "extra" not in result.best
    assert subprocess.run(["git", "-C", str(bug_repo), "apply", "--check", "-"], input=result.best, text=True).returncode == 0


def test_patch_failures_go_back_to_the_model(bug_repo):
    wrong = "calc/stats.py\n<<<<<<< SEARCH\n    return total / count\n=======\n    return 0\n>>>>>>> REPLACE\n"

    def answers(messages):
        if "search/replace edits" in messages[1]["content"]:
            return wrong if len(messages) == 2 else PATCH_ANSWER
        return good_answers(messages)

    model = ScriptedModel(answers)
    result = solve(Repo.open(bug_repo), BUG_ISSUE, model)
    assert result.best and "does not match the file" in model.calls[-1][-1]["content"]


def test_escaping_edit_is_refused_and_nothing_is_written(bug_repo, tmp_path):
    evil = "../evil.py\n<<<<<<< SEARCH\n=======\nimport os\n>>>>>>> REPLACE\n"
    answers = lambda m: evil if "search/replace edits" in m[1]["content"] else good_answers(m)  # noqa: E731
    result = solve(Repo.open(bug_repo), BUG_ISSUE, ScriptedModel(answers))
    assert result.patches == [] and "outside the repository" in result.failed[0].error
    assert not (tmp_path / "evil.py").exists() and result.trajectory.status == "no_patch"


def test_budget_samples_candidates_and_dedupes(bug_repo):
    model = ScriptedModel(good_answers)
    result = solve(Repo.open(bug_repo), BUG_ISSUE, model, SolveOptions(budget=3, strategy="voting"))
    assert len(result.patches) == 1  # three identical candidates, one distinct patch
    assert sum("search/replace edits" in c[1]["content"] for c in model.calls) == 3


def test_hallucinated_locations_go_back_to_the_model(bug_repo):
    def answers(messages):
        if "Which classes and functions are suspicious" in messages[1]["content"] and len(messages) == 2:
            return json.dumps({"locations": [{"file": "calc/stats.py", "function": "average"}]})
        return good_answers(messages)

    model = ScriptedModel(answers)
    solve(Repo.open(bug_repo), BUG_ISSUE, model)
    assert any("defines no function 'average'" in c[-1]["content"] for c in model.calls)


def test_cancel_stops_the_solve_and_records_it(bug_repo, tmp_path):
    token = CancelToken()

    def answers(messages):
        token.cancel()
        return good_answers(messages)

    with pytest.raises(Cancelled):
        solve(Repo.open(bug_repo), BUG_ISSUE, ScriptedModel(answers), SolveOptions(trajectory_path=tmp_path / "t.jsonl"), cancel=token)
    assert read_trajectories(tmp_path / "t.jsonl")[0]["status"] == "cancelled"


def test_bad_input(bug_repo, tmp_path):
    with pytest.raises(SweReasonerError, match="empty"):
        solve(Repo.open(bug_repo), "  \n", ScriptedModel(good_answers))


def test_without_locations_the_files_read_are_patched(bug_repo):
    """A model that never names a valid location still gets to patch the files it read."""
    def answers(messages):
        if "search/replace edits" in messages[1]["content"]:
            return PATCH_ANSWER
        if "Which files" in messages[1]["content"]:
            return good_answers(messages)
        return "I am not sure."

    result = solve(Repo.open(bug_repo), BUG_ISSUE, ScriptedModel(answers))
    assert result.best and result.trajectory.locations[0] == {"file": "calc/stats.py", "class": "", "function": "", "reason": ""}


def test_candidates_that_make_the_same_change_are_voted_first(bug_repo):
    other = PATCH_ANSWER.replace("/ len(values)", "/ max(len(values), 1)")
    spaced = PATCH_ANSWER.replace("/ len(values)\n", "/ len(values)   \n")
    patches = iter([other, PATCH_ANSWER, spaced])

    def answers(messages):
        return next(patches) if "search/replace edits" in messages[1]["content"] else good_answers(messages)

    result = solve(Repo.open(bug_repo), BUG_ISSUE, ScriptedModel(answers), SolveOptions(budget=3, strategy="voting"))
    assert [c.candidate for c in result.patches] == [2, 1]  # two candidates agree (whitespace aside)
    assert [c.scores["votes"] for c in result.patches] == [2, 1]
    assert "max(len(values), 1)" in result.patches[1].diff
    assert [p["scores"] for p in result.trajectory.patches] == [{"votes": 2}, {"votes": 1}]


def test_verified_candidates_rank_first(bug_repo):
    sandbox = bwrap_or_skip()
    breaks_median = PATCH_ANSWER + """calc/stats.py
<<<<<<< SEARCH
        return ordered[n // 2]
=======
        return ordered[0]
>>>>>>> REPLACE
"""
    patches = iter([breaks_median, PATCH_ANSWER])

    def answers(messages):
        return next(patches) if "search/replace edits" in messages[1]["content"] else good_answers(messages)

    result = solve(Repo.open(bug_repo), BUG_ISSUE, ScriptedModel(answers), SolveOptions(budget=2, strategy="exec", sandbox=sandbox))
    assert [c.candidate for c in result.patches] == [2, 1]  # the verified one first, though written second
    good, bad = result.patches
    assert good.verification["verified"] and good.scores["verified"] == 1.0
    assert good.verification["repro_before"] == "REPRODUCED" and good.verification["repro_after"] == "RESOLVED"
    assert not bad.verification["verified"] and bad.verification["regressions"] == ["tests/test_stats.py::test_median"]
    assert result.trajectory.reproduction["attempts"][0]["verdict"] == "REPRODUCED"
    assert [s.stage for s in result.trajectory.steps].count("reproduce") == 1


def test_a_patch_that_fails_verification_is_revised_with_the_evidence(bug_repo):
    sandbox = bwrap_or_skip()
    breaks_median = PATCH_ANSWER + "calc/stats.py\n<<<<<<< SEARCH\n        return ordered[n // 2]\n=======\n" \
                                   "        return ordered[0]\n>>>>>>> REPLACE\n"
    seen = []

    def answers(messages):
        if "search/replace edits" not in messages[1]["content"]:
            return good_answers(messages)
        if "failed verification" in messages[-1]["content"]:
            seen.append(messages[-1]["content"])
            return PATCH_ANSWER
        return breaks_median

    result = solve(Repo.open(bug_repo), BUG_ISSUE, ScriptedModel(answers), SolveOptions(sandbox=sandbox))
    [feedback] = seen  # one revision, told which test regressed
    assert "REGRESSIONS: tests/test_stats.py::test_median" in feedback
    revised, first = result.patches
    assert revised.revision == 1 and revised.verification["verified"] and not first.verification["verified"]
    assert [s.stage for s in result.trajectory.steps].count("revise") == 1
    assert [p["revision"] for p in result.trajectory.patches] == [1, 0]
