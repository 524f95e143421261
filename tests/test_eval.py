"""`swe-reasoner eval`: SWE-bench-format instances on local clones, predictions, resume, report,
resolved as the harness judges it, workers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from conftest import BUG_FILES, BUG_ISSUE, FIXED_MEAN, bwrap_or_skip, git, make_repo, run_pytest, tree_snapshot
from scripted import PATCH_ANSWER, good_answers
from swe_reasoner.agent import cli, config, evaluation, pipeline
from swe_reasoner.agent.errors import Cancelled, SweReasonerError
from swe_reasoner.agent.evaluation import checkout, evaluate, gold_locations
from swe_reasoner.agent.harness import judge, read_instances
from swe_reasoner.agent.model import SerializedModel, concurrency_safe
from swe_reasoner.agent.model import ScriptedModel
from swe_reasoner.agent.pipeline import SolveOptions, SolveResult, solve
from swe_reasoner.agent.progress import CancelToken
from swe_reasoner.agent.repo import Repo
from swe_reasoner.agent.trajectory import Trajectory

TEST_PATCH_ADDS = """

def test_mean_of_three():
    assert mean([1, 2, 3]) == 2
"""
F2P = ["tests/test_stats.py::test_mean", "tests/test_stats.py::test_mean_of_three"]
P2P = ["tests/test_stats.py::test_median"]
WRONG_PATCH = PATCH_ANSWER.replace("    return sum(values) / len(values)\n",
                                   "    return sum(values) / max(len(values) - 1, 1)\n")


def quiet(line: str) -> None:
    pass


def write_instances(path, base, patch, test_patch, ids):
    rows = [{"instance_id": f"acme__calc-{n}", "repo": "acme/calc", "base_commit": base,
             "problem_statement": BUG_ISSUE, "patch": patch, "test_patch": test_patch,
             "FAIL_TO_PASS": json.dumps(F2P), "PASS_TO_PASS": json.dumps(P2P)} for n in ids]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def setup(tmp_path):
    """DIR/acme__calc whose HEAD has moved on past the instances' base commit, and two instances,
    each with a test_patch that adds a FAIL_TO_PASS test."""
    clone = make_repo(tmp_path / "repos" / "acme__calc", BUG_FILES)
    base = git(clone, "rev-parse", "HEAD").strip()
    tests = clone / "tests" / "test_stats.py"
    tests.write_text(tests.read_text() + TEST_PATCH_ADDS)
    test_patch = git(clone, "diff")
    stats = clone / "calc" / "stats.py"
    gold = stats.read_text().replace("    return sum(values) / (len(values) - 1)\n", FIXED_MEAN)
    stats.write_text(gold)
    patch = git(clone, "diff", "--", "calc")
    (clone / "calc" / "text.py").unlink()  # later history the solve must not see
    git(clone, "add", "-A")
    git(clone, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "fix and move on")
    instances = write_instances(tmp_path / "instances.jsonl", base, patch, test_patch, (1, 2))
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
    assert (summary["strategy"], summary["budget"]) == ("dev-search", 1)
    # no sandbox: the instances have tests but cannot be judged, and the report says why
    assert report[0]["resolved"] is None and report[0]["resolution"]["reason"] == "no sandbox to run the tests in"
    assert (summary["with_tests"], summary["resolved"], summary["not_judged"], summary["resolved_rate"]) == (2, 0, 2, 0.0)
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
                        "--repos", str(repos), "--out", str(out), "--model", f"replay:{recording}",
                        "--sandbox", "off", "--workers", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["patched"] == 2 and summary["not_judged"] == 2
    assert "verification is off" in r.stderr and "2 at a time" in r.stderr
    assert all(json.loads(line)["model_name_or_path"] == f"replay:{recording}" for line in out.read_text().splitlines())
    r = subprocess.run([sys.executable, "-m", "swe_reasoner.agent.cli", "eval", "--instances", str(instances),
                        "--repos", str(tmp_path / "nowhere"), "--out", str(out), "--model", f"replay:{recording}"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "is not a folder" in r.stderr


# ------------------------------------------------------------------ resolved


def wrong_answers(messages) -> str:
    """Like good_answers, but the patch keeps the bug."""
    return WRONG_PATCH if "search/replace edits" in messages[1]["content"] else good_answers(messages)


def test_resolved_as_the_harness_judges_it(setup, tmp_path):
    repos, instances, _ = setup
    sandbox = bwrap_or_skip()
    [inst] = read_instances(instances)[:1]
    trajectories = tmp_path / "t.jsonl"
    options = SolveOptions(sandbox=sandbox, strategy="exec", trajectory_path=trajectories)
    out = tmp_path / "good.jsonl"
    summary = evaluate([inst], repos, out, ScriptedModel(good_answers), options, "good", progress=quiet)
    [traj] = [json.loads(line) for line in trajectories.read_text().splitlines()]
    assert traj["patches"][0]["verification"]["verified"]  # the solve verified its candidate in the sandbox
    [record] = [json.loads(line) for line in (tmp_path / "good.report.jsonl").read_text().splitlines()]
    assert record["resolved"] is True, record["resolution"]
    assert record["resolution"]["fail_to_pass_failed"] == record["resolution"]["pass_to_pass_failed"] == []
    assert record["resolution"]["command"][-1] == "tests/test_stats.py"  # the tests' file, as the harness runs it
    assert (summary["with_tests"], summary["resolved"], summary["resolved_rate"]) == (1, 1, 1.0)
    assert summary["strategy"] == "exec"

    out = tmp_path / "wrong.jsonl"  # voting: no verification in the solve, to be quick; the judging is the same
    summary = evaluate([inst], repos, out, ScriptedModel(wrong_answers), SolveOptions(sandbox=sandbox, strategy="voting"),
                       "wrong", progress=quiet)
    [record] = [json.loads(line) for line in (tmp_path / "wrong.report.jsonl").read_text().splitlines()]
    assert record["patched"] and record["resolved"] is False
    assert record["resolution"]["fail_to_pass_failed"] == F2P and record["resolution"]["pass_to_pass_failed"] == []
    assert "2 of 2 FAIL_TO_PASS and 0 of 1 PASS_TO_PASS tests fail" in record["resolution"]["reason"]
    assert "test_mean_of_three" in record["resolution"]["output_tail"]
    assert (summary["with_tests"], summary["resolved"], summary["resolved_rate"]) == (1, 0, 0.0)


@pytest.fixture
def base_checkout(setup, tmp_path):
    repos, instances, base = setup
    [inst] = read_instances(instances)[:1]
    (tmp_path / "co").mkdir()
    return checkout(repos / "acme__calc", base, tmp_path / "co"), inst


def test_edits_to_the_test_files_are_reset_before_the_test_patch(base_checkout):
    """A prediction that 'fixes' the bug by weakening the test is not resolved: the harness
    puts the test_patch's files back as they were at the base commit first."""
    repo, inst = base_checkout
    sandbox = bwrap_or_skip()
    cheat = ("diff --git a/tests/test_stats.py b/tests/test_stats.py\n--- a/tests/test_stats.py\n"
             "+++ b/tests/test_stats.py\n@@ -4,3 +4,3 @@ from calc.stats import mean, median\n"
             " def test_mean():\n-    assert mean([2, 4]) == 3\n+    assert True\n \n")
    verdict = judge(repo, inst, cheat, sandbox)
    # both fail: test_mean as at the base commit, not as the prediction left it
    assert verdict.resolved is False and verdict.fail_to_pass_failed == F2P, verdict.reason


class NoRun:
    """A sandbox that must not be used."""

    name = "bwrap"

    def run(self, *args, **kwargs):
        raise AssertionError("nothing should run")


@pytest.mark.parametrize("case, resolved, reason", [
    ("empty", False, "the prediction is empty"),
    ("no sandbox", None, 'verification is off (sandbox = "off")'),
    ("does not apply", None, "the prediction does not apply"),
    ("not node ids", None, "the tests are not pytest node ids (e.g. 'test_mean (calc.tests.StatsTest)')"),
])
def test_what_cannot_be_judged_says_why(base_checkout, case, resolved, reason):
    repo, inst = base_checkout
    patch, sandbox = inst.patch, NoRun()
    if case == "empty":
        patch = ""
    elif case == "no sandbox":
        sandbox = None
    elif case == "does not apply":
        patch = inst.patch.replace("(len(values) - 1)", "(len(values) - 2)")
    else:
        inst.fail_to_pass = ["test_mean (calc.tests.StatsTest)"]
    verdict = judge(repo, inst, patch, sandbox, note='verification is off (sandbox = "off")')
    assert verdict.resolved is resolved and verdict.reason.startswith(reason)


def test_an_unjudged_instance_is_recorded_with_its_reason(setup, tmp_path):
    """--sandbox off: the instances are not judged, with the reason, and that is no error."""
    repos, instances, base = setup
    out = tmp_path / "p.jsonl"
    checkouts = []

    def environment_for(repo):
        checkouts.append(repo.root)
        return None, "tests ran on the host's Python: ..."

    summary = evaluate(read_instances(instances), repos, out, ScriptedModel(good_answers),
                       SolveOptions(verification_note='verification is off (sandbox = "off")'), "s", progress=quiet,
                       environment_for=environment_for)
    report = [json.loads(line) for line in (tmp_path / "p.report.jsonl").read_text().splitlines()]
    assert {r["resolution"]["reason"] for r in report} == {'verification is off (sandbox = "off")'}
    assert summary["not_judged"] == 2 and summary["resolved"] == 0
    assert [r["test_env_note"] for r in report] == ["tests ran on the host's Python: ..."] * 2
    # one test environment per instance, for a checkout whose path the repository and commit fix
    assert checkouts == [tmp_path / "cache" / "eval" / f"acme__calc@{base[:16]}" / "acme__calc"] * 2
    assert not checkouts[0].exists()


# ------------------------------------------------------------------ workers


class Overlap:
    """Wraps a model and notes the most calls that were ever running at once."""

    def __init__(self, model, pause: float = 0.02):
        self.model, self.name, self.pause = model, model.name, pause
        self.running = self.most = 0
        self._lock = threading.Lock()

    def _enter(self):
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.pause)

    def _leave(self):
        with self._lock:
            self.running -= 1

    def complete(self, messages, **kwargs):
        self._enter()
        try:
            return self.model.complete(messages, **kwargs)
        finally:
            self._leave()

    def logprob(self, messages, continuation, **kwargs):
        self._enter()
        try:
            return self.model.logprob(messages, continuation, **kwargs)
        finally:
            self._leave()

    def close(self):
        pass


def test_the_lock_wrapper_serializes_calls():
    raw = Overlap(ScriptedModel(lambda messages: "ok", logprob=lambda m, c, a: -1.0), pause=0.05)
    locked = SerializedModel(raw)
    for model in (raw, locked):
        raw.most = 0
        threads = [threading.Thread(target=model.complete, args=([{"role": "user", "content": "hi"}],))
                   for _ in range(3)]
        threads += [threading.Thread(target=model.logprob, args=([{"role": "user", "content": "hi"}], "x"),
                                     kwargs={"adapter": None}) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert (raw.most == 1) if model is locked else (raw.most > 1)  # the detector does see overlaps
    assert locked.name == "scripted"


def test_an_http_model_is_called_concurrently():
    from swe_reasoner.agent.openai_http import OpenAIModel

    assert concurrency_safe(OpenAIModel("http://127.0.0.1:9/v1", "m"))
    assert not concurrency_safe(ScriptedModel([]))


def test_workers_give_the_same_predictions_and_resume(setup, tmp_path):
    repos, _, base = setup
    some = read_instances(setup[1])[0]
    instances = read_instances(write_instances(tmp_path / "four.jsonl", base, some.patch, some.test_patch, (1, 2, 3, 4)))

    def run(out, workers, model):
        lines = []
        evaluate(instances, repos, out, model, SolveOptions(), "s", progress=lines.append, workers=workers)
        return {p["instance_id"]: p["model_patch"] for p in map(json.loads, out.read_text().splitlines())}, lines

    one, _ = run(tmp_path / "one.jsonl", 1, ScriptedModel(good_answers))
    model = Overlap(ScriptedModel(good_answers))
    two, lines = run(tmp_path / "two.jsonl", 2, model)
    assert one == two and len(one) == 4 and all(one.values())
    assert model.most == 1  # the in-process model was called by one worker at a time
    assert lines[0] == "4 instances, 0 already done, 2 at a time"
    assert all(any(f"acme__calc-{n}" in line for n in (1, 2, 3, 4)) for line in lines[1:])
    calls_for_four = len(model.model.calls)
    # resume: one instance done, another cut off mid-line by an interruption
    out = tmp_path / "resumed.jsonl"
    out.write_text(json.dumps({"instance_id": "acme__calc-3", "model_name_or_path": "s", "model_patch": one["acme__calc-3"]})
                   + '\n{"instance_id": "acme__calc-1", "mod')
    model = ScriptedModel(good_answers)
    resumed, _ = run(out, 2, model)
    assert resumed == one and len(out.read_text().splitlines()) == 4
    assert len(model.calls) == calls_for_four * 3 // 4


class WaitsForCancel:
    """A model whose every call runs until it is cancelled."""

    name = "waits"

    def __init__(self):
        self.started = threading.Event()

    def complete(self, messages, *, cancel=None, **kwargs):
        self.started.set()
        while True:
            cancel.check()
            time.sleep(0.01)

    def logprob(self, messages, continuation, **kwargs):
        raise AssertionError("not reached")

    def close(self):
        pass


def test_a_cancel_stops_every_worker_promptly(setup, tmp_path):
    repos, instances, _ = setup
    token, model, raised = CancelToken(), WaitsForCancel(), []
    out = tmp_path / "p.jsonl"

    def run():
        try:
            evaluate(read_instances(instances), repos, out, model, SolveOptions(), "w", progress=quiet,
                     cancel=token, workers=2)
        except Cancelled as exc:
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert model.started.wait(20)
    time.sleep(0.2)  # both workers are in (or waiting for) the model
    cancelled = time.perf_counter()
    token.cancel()
    thread.join(10)
    assert not thread.is_alive() and raised and time.perf_counter() - cancelled < 2
    assert not out.exists() or out.read_text() == ""


# ------------------------------------------------------------------ the command line


def test_solve_and_eval_flags_land_in_the_solve_options(setup, tmp_path, monkeypatch, bug_repo):
    repos, instances, _ = setup
    seen = {}
    monkeypatch.setattr(config, "load_model", lambda settings: ScriptedModel([]))

    def fake_evaluate(instances, repos, out, model, options, name, progress, cancel, **kwargs):
        seen["eval"] = options, kwargs
        return {}

    def fake_solve(repo, issue, model, options, progress, cancel):
        seen["solve"] = options
        return SolveResult([], Trajectory(issue, str(repo.root), "", model.name, {}))

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    monkeypatch.setattr(pipeline, "solve", fake_solve)
    flags = ["--strategy", "voting", "--adaptive", "--budget", "3", "--sandbox", "off", "--test-env", "build"]
    assert cli.main(["eval", "--instances", str(instances), "--repos", str(repos), "--out", str(tmp_path / "p.jsonl"),
                     "--workers", "2", *flags]) == 0
    options, kwargs = seen["eval"]
    assert (options.strategy, options.adaptive, options.budget, options.sandbox) == ("voting", True, 3, None)
    assert options.verification_note.startswith("verification is off")
    assert kwargs["workers"] == 2
    assert kwargs["environment_for"](Repo.open(bug_repo)) == (None, "")  # no sandbox: nothing to build
    issue = tmp_path / "issue.md"
    issue.write_text(BUG_ISSUE)
    assert cli.main(["solve", "--repo", str(bug_repo), "--issue", str(issue), *flags]) == 1  # the fake found nothing
    options = seen["solve"]
    assert (options.strategy, options.adaptive, options.budget, options.sandbox) == ("voting", True, 3, None)
    # not given: the settings' defaults, not False
    assert cli.main(["solve", "--repo", str(bug_repo), "--issue", str(issue), "--sandbox", "off"]) == 1
    assert (seen["solve"].strategy, seen["solve"].adaptive) == ("dev-search", False)
    (tmp_path / "config.toml").write_text('strategy = "exec"\nadaptive = true\n')
    assert cli.main(["solve", "--repo", str(bug_repo), "--issue", str(issue), "--sandbox", "off"]) == 1
    assert (seen["solve"].strategy, seen["solve"].adaptive) == ("exec", True)


def test_bad_eval_flags_exit_2(setup, tmp_path, capsys):
    repos, instances, _ = setup
    args = ["eval", "--instances", str(instances), "--repos", str(repos), "--out", str(tmp_path / "p.jsonl")]
    assert cli.main([*args, "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main([*args, "--strategy", "best"])
    assert exc.value.code == 2


# ------------------------------------------------------------------ the swebench harness reads the predictions


def test_the_swebench_harness_loads_the_predictions(setup, tmp_path, monkeypatch):
    """swebench's own loaders, offline: the predictions file, and the instances from the local
    JSONL file (a dataset name ending in .jsonl is read from disk, never downloaded)."""
    pytest.importorskip("swebench")
    from swebench.harness.run_evaluation import get_dataset_from_preds
    from swebench.harness.utils import get_predictions_from_file

    repos, instances, _ = setup
    out = tmp_path / "preds.jsonl"
    evaluate(read_instances(instances), repos, out, ScriptedModel(good_answers), SolveOptions(), "scripted/model",
             progress=quiet)
    monkeypatch.chdir(tmp_path)  # the harness looks for earlier runs' logs under ./logs
    predictions = get_predictions_from_file(str(out), str(instances), "test")
    assert sorted(p["instance_id"] for p in predictions) == ["acme__calc-1", "acme__calc-2"]
    by_id = {p["instance_id"]: p for p in predictions}
    # the harness's selection of what to run: every prediction matches an instance, none is empty
    dataset = get_dataset_from_preds(str(instances), "test", None, by_id, "run", rewrite_reports=False)
    assert sorted(i["instance_id"] for i in dataset) == ["acme__calc-1", "acme__calc-2"]
    assert all(p["model_name_or_path"] == "scripted/model" and "+    return sum(values) / len(values)" in p["model_patch"]
               for p in predictions)
