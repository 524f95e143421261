"""The test-time search: each strategy picks what it should, the budget is spent exactly.

A scripted model writes known good and bad patches, and a scripted judge gives
known log-probabilities; verification runs for real in bubblewrap.
"""

import json
import math

import pytest

from conftest import BUG_ISSUE, bwrap_or_skip
from scripted import PATCH_ANSWER, good_answers
from swe_reasoner.agent.model import ScriptedModel
from swe_reasoner.agent.pipeline import SolveOptions, solve
from swe_reasoner.agent.ranking import rank
from swe_reasoner.agent.repo import Repo
from swe_reasoner.agent.rewards import OutcomeReward, ProcessReward, beats
from swe_reasoner.agent.search import Plan
from swe_reasoner.agent.stages.patch import PatchCandidate

GOOD = PATCH_ANSWER  # fixes mean(); verifies
GOOD2 = PATCH_ANSWER.replace("/ len(values)", "/ max(len(values), 1)")  # also fixes it; verifies
NOFIX = PATCH_ANSWER.replace("    return sum(values) / len(values)\n",
                             "    return sum(values) / (len(values) - 1)  # the mean\n")  # changes nothing that matters


def log_yes(p: float, continuation: str) -> float:
    return math.log(p if continuation == "Yes" else 1 - p)


def judge(messages, continuation, adapter):
    """A judge that likes patches dividing by len(values) exactly, and readings naming mean()."""
    text = messages[-1]["content"]
    if "A proposed patch" in text:  # the zero-shot ORM
        patch = text.split("A proposed patch:")[1]
        return log_yes(0.9 if "+    return sum(values) / len(values)\n" in patch else 0.3, continuation)
    engineer = text.split("The engineer's")[1]
    return log_yes(0.8 if "mean" in engineer and "max(" not in engineer else 0.2, continuation)


def scripted(patches, judge=judge, localizations=None):
    """good_answers, with the patch stage's answers (and optionally localize's final answers) in turn."""
    patches = iter(patches)
    locs = iter(localizations or [])

    def answers(messages):
        first = messages[1]["content"]
        if "search/replace edits" in first and len(messages) == 2:
            return next(patches)
        if localizations and "search tools" in first:
            return json.dumps({"locations": [next(locs)]})
        return good_answers(messages)

    return ScriptedModel(answers, logprob=judge)


def run(patches, strategy, budget, sandbox=None, **kw):
    model = scripted(patches, **{k: kw.pop(k) for k in ("judge", "localizations") if k in kw})
    events = kw.pop("events", [])
    result = solve(Repo.open(kw.pop("repo")), BUG_ISSUE, model,
                   SolveOptions(budget=budget, strategy=strategy, sandbox=sandbox, **kw), progress=events.append)
    return result, model


def patch_prompts(model) -> int:
    return sum("search/replace edits" in c[1]["content"] and len(c) == 2 for c in model.calls)


@pytest.mark.parametrize("strategy, best", [("voting", NOFIX), ("exec", GOOD2), ("orm-exec", GOOD), ("dev-search", GOOD)])
def test_each_strategy_picks_what_it_should(bug_repo, strategy, best):
    """Four rollouts write NOFIX twice, GOOD2 and GOOD: voting takes the commonest, exec the first
    that verifies, orm-exec and dev-search the verified one the ORM prefers."""
    result, model = run([NOFIX, GOOD2, NOFIX, GOOD], strategy, 4, bwrap_or_skip(), repo=bug_repo)
    marker = {NOFIX: "# the mean", GOOD2: "max(len(values), 1)", GOOD: "+    return sum(values) / len(values)\n"}
    assert marker[best] in result.best
    assert len(result.patches) == 3  # the two NOFIX candidates are one
    budget = result.trajectory.budget
    assert budget["planned"] == budget["sampled"] == {"understand": 4, "localize": 4, "patch": 4}
    if strategy == "voting":
        assert budget["verifications"] == 0 and all(c.verification is None for c in result.patches)
    else:
        assert budget["verifications"] == 3
        assert [c.scores["verified"] for c in result.patches][:2] == [1.0, 1.0]
    assert budget["orm_calls"] == (2 if strategy in ("orm-exec", "dev-search") else 0)


@pytest.mark.parametrize("strategy", ["exec", "orm-exec", "voting", "dev-search"])
@pytest.mark.parametrize("budget", [1, 2, 4, 8])
def test_budget_bookkeeping_is_exact(bug_repo, strategy, budget):
    """Every strategy samples exactly B candidates at each stage; dev-search spends PRM calls only
    where there is a choice (all candidates here are alike until the patch stage)."""
    result, model = run([GOOD] * budget, strategy, budget, repo=bug_repo)
    assert patch_prompts(model) == budget
    assert sum(c[1]["content"].startswith("<issue>") and "Which files" in c[1]["content"] for c in model.calls) == budget
    book = result.trajectory.budget
    assert book["sampled"] == book["planned"] == dict.fromkeys(("understand", "localize", "patch"), budget)
    assert book["saved"] == {"patch": 0} and book["keep"] == Plan(budget, strategy).keep
    prm_patches = budget if strategy == "dev-search" and budget > 1 else 0
    assert book["prm_calls"] == prm_patches  # identical readings and localizations: nothing to choose
    stages = [n["stage"] for n in result.trajectory.search]
    assert stages.count("understand") == stages.count("localize") == stages.count("patch") == budget


def test_plan_keeps_the_square_root_and_spreads_the_budget():
    assert [Plan(b, "dev-search").keep for b in (1, 2, 4, 8, 16)] == [1, 1, 2, 2, 4]
    assert Plan(8, "exec").keep == 8
    assert Plan(8, "dev-search").shares(2) == [4, 4] and Plan(7, "dev-search").shares(2) == [4, 3]
    assert sum(Plan(8, "dev-search").shares(3)) == 8


def test_dev_search_keeps_the_readings_the_prm_prefers(bug_repo):
    """Four different localizations; the PRM keeps the two naming mean() and only those are patched."""
    locs = [{"file": "calc/stats.py", "function": "median"}, {"file": "calc/stats.py", "function": "mean"},
            {"file": "calc/stats.py", "function": "median", "reason": "sorting"},
            {"file": "calc/stats.py", "function": "mean", "reason": "divisor"}]
    result, model = run([GOOD] * 4, "dev-search", 4, repo=bug_repo, localizations=locs)
    nodes = {n["id"]: n for n in result.trajectory.search}
    localized = [n for n in nodes.values() if n["stage"] == "localize"]
    assert [n["kept"] for n in localized] == [False, True, False, True]
    assert all(n["prm"] is not None for n in localized)
    patched_from = {n["parent"] for n in nodes.values() if n["stage"] == "patch"}
    assert patched_from == {n["id"] for n in localized if n["kept"]}
    assert result.trajectory.locations[0]["function"] == "mean"
    assert result.trajectory.budget["sampled"]["patch"] == 4


@pytest.mark.parametrize("strategy", ["exec", "orm-exec"])
def test_adaptive_stops_once_a_patch_verifies(bug_repo, strategy):
    result, model = run([GOOD, NOFIX, GOOD2, NOFIX], strategy, 4, bwrap_or_skip(), repo=bug_repo, adaptive=True)
    assert patch_prompts(model) == 1
    book = result.trajectory.budget
    assert book["sampled"]["patch"] == 1 and book["saved"] == {"patch": 3} and book["verifications"] == 1
    assert result.patches[0].verification["verified"]


def test_adaptive_dev_search_needs_a_clear_orm_margin(bug_repo):
    """Two kept localizations, two patches each. The first wave is GOOD and NOFIX: GOOD verifies and
    the ORM prefers it with P = sigmoid(logit .9 - logit .3) = .95: the second wave is saved."""
    locs = [{"file": "calc/stats.py", "function": "mean"}, {"file": "calc/stats.py", "function": "mean", "reason": "x"}] * 2
    events = []
    result, model = run([GOOD, NOFIX, GOOD2, GOOD2], "dev-search", 4, bwrap_or_skip(), repo=bug_repo,
                        localizations=locs, adaptive=True, events=events)
    assert result.trajectory.budget["saved"] == {"patch": 2} and patch_prompts(model) == 2
    assert [e.fraction for e in events] == sorted(e.fraction for e in events)  # progress never goes back
    assert {"scoring with the PRM", "running the tests"} <= {e.message for e in events}
    # Without a clear margin (the judge can't tell them apart) the search goes on.
    flat = lambda messages, continuation, adapter: math.log(0.5)  # noqa: E731
    result, model = run([GOOD, NOFIX, GOOD2, GOOD2], "dev-search", 4, bwrap_or_skip(), repo=bug_repo,
                        localizations=locs, adaptive=True, judge=flat)
    assert result.trajectory.budget["saved"] == {"patch": 0} and patch_prompts(model) == 4


def test_rewards_compute_what_the_docs_say():
    calls = []

    def lp(messages, continuation, adapter):
        calls.append(adapter)
        return {("Yes", "prm"): math.log(0.6), ("No", "prm"): math.log(0.2), ("diff", "orm"): -10.0,
                ("diff", None): -14.0}[(continuation, adapter)]

    model = ScriptedModel([], logprob=lp)
    assert ProcessReward(model, "prm").score("issue", "patch", "diff") == pytest.approx(0.75)
    assert OutcomeReward(model, "orm", beta=0.5).score("issue", "diff") == pytest.approx(2.0)
    assert calls == ["prm", "prm", "orm", None]
    assert beats(1.0, 1.0) == 0.5 and beats(2.0, 0.0) == pytest.approx(1 / (1 + math.exp(-2)))


def test_rank_orders_by_each_rule():
    def cand(i, **scores):
        return PatchCandidate(i, diff=f"d{i}", scores=scores)

    pool = [cand(1, votes=1, verified=0.0, prm=0.9), cand(2, votes=3, verified=0.0, prm=0.1),
            cand(3, votes=1, verified=1.0, orm=-1.0, prm=0.2), cand(4, votes=1, verified=1.0, orm=2.0, prm=0.3)]
    order = {s: [c.candidate for c in rank(s, pool)] for s in ("voting", "exec", "orm-exec", "dev-search")}
    assert order == {"voting": [2, 1, 3, 4], "exec": [3, 4, 1, 2], "orm-exec": [4, 3, 1, 2], "dev-search": [4, 3, 1, 2]}


def test_dev_search_at_budget_one_needs_no_reward_model(bug_repo):
    result = solve(Repo.open(bug_repo), BUG_ISSUE, ScriptedModel(good_answers), SolveOptions(strategy="dev-search"))
    assert result.best and result.trajectory.budget["prm_calls"] == 0


def test_unknown_strategy_is_refused(bug_repo):
    from swe_reasoner.agent.errors import SweReasonerError

    with pytest.raises(SweReasonerError, match="strategy must be one of"):
        solve(Repo.open(bug_repo), BUG_ISSUE, ScriptedModel(good_answers), SolveOptions(strategy="best"))
