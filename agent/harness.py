"""SWE-bench instances, and whether a prediction resolves one, decided as the harness decides it.

An instance (instance_id, repo, base_commit, problem_statement; optionally the
gold patch, test_patch, FAIL_TO_PASS and PASS_TO_PASS) is read from JSONL as
SWE-bench writes it. `judge` applies a prediction and then the test_patch at the
base commit and runs the listed tests in the sandbox (docs/eval.md).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import Cancelled, SweReasonerError
from .progress import CancelToken
from .repo import Repo, Scratch, git, safe_join
from .sandbox import RunResult, Sandbox
from .verify import apply_patch, interpreter, run_pytest, touched_files

REQUIRED = ("instance_id", "repo", "base_commit", "problem_statement")


@dataclass
class Instance:
    instance_id: str
    repo: str  # "owner/name"
    base_commit: str
    problem_statement: str
    patch: str = ""  # the gold patch, when given
    test_patch: str = ""
    fail_to_pass: list[str] = field(default_factory=list)
    pass_to_pass: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict, where: str) -> Instance:
        missing = [k for k in REQUIRED if not isinstance(data.get(k), str) or not data[k]]
        if missing:
            raise SweReasonerError(f"{where}: missing or empty {', '.join(missing)}")
        return cls(data["instance_id"], data["repo"], data["base_commit"], data["problem_statement"],
                   data.get("patch") or "", data.get("test_patch") or "",
                   _tests(data.get("FAIL_TO_PASS")), _tests(data.get("PASS_TO_PASS")))

    @property
    def has_tests(self) -> bool:
        """Whether the instance can be judged resolved: it has a test_patch and FAIL_TO_PASS tests."""
        return bool(self.test_patch.strip() and self.fail_to_pass)


def _tests(value) -> list[str]:
    """SWE-bench stores test lists as JSON text; accept a list too."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    return [str(v) for v in value or []]


def read_instances(path: str | Path) -> list[Instance]:
    out = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SweReasonerError(f"cannot read the instances {path}: {exc.strerror}") from None
    for n, line in enumerate(lines, start=1):
        if line.strip():
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SweReasonerError(f"{path}:{n}: not JSON ({exc.msg})") from None
            out.append(Instance.from_dict(data, f"{path}:{n}"))
    ids = [i.instance_id for i in out]
    if len(set(ids)) != len(ids):
        raise SweReasonerError(f"{path}: an instance_id appears twice")
    return out


# ------------------------------------------------------------------ resolved, as the harness judges it

# swebench.harness.grading: a FAIL_TO_PASS test must pass (or xfail); a PASS_TO_PASS test
# may also be skipped; a test missing from the run's output has failed.
PASSING = ("PASSED", "XFAIL")
MAINTAINED = (*PASSING, "SKIPPED")
OUTPUT_TAIL = 3000  # characters of a failed test run's output kept in the report


@dataclass
class Resolution:
    resolved: bool | None  # None: could not be judged; `reason` says why
    reason: str
    fail_to_pass_failed: list[str] = field(default_factory=list)
    pass_to_pass_failed: list[str] = field(default_factory=list)
    run: RunResult | None = None  # the test run, when there was one
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = {"reason": self.reason, "fail_to_pass_failed": self.fail_to_pass_failed,
             "pass_to_pass_failed": self.pass_to_pass_failed, "seconds": round(self.seconds, 2)}
        if self.run is not None:
            d["command"] = self.run.command
            d["run"] = self.run.describe()
            if self.resolved is not True:
                d["output_tail"] = self.run.output[-OUTPUT_TAIL:]
        return d


def judge(repo: Repo, inst: Instance, model_patch: str, sandbox: Sandbox | None, *, environment=None,
          timeout: float = 300.0, cancel: CancelToken | None = None, note: str = "") -> Resolution:
    """Whether `model_patch` resolves `inst`, as the SWE-bench harness decides: on a fresh copy of
    `repo` (at the base commit) apply the patch, reset the files the test_patch touches, apply the
    test_patch, run the FAIL_TO_PASS and PASS_TO_PASS tests' files with pytest in `sandbox`. Resolved
    iff every FAIL_TO_PASS test passes and no PASS_TO_PASS test fails. Raises Cancelled."""
    started = time.perf_counter()
    tests = inst.fail_to_pass + inst.pass_to_pass
    if not model_patch.strip():
        return Resolution(False, "the prediction is empty")
    if sandbox is None:
        return Resolution(None, note or "no sandbox to run the tests in")
    if not_ids := [t for t in tests if "::" not in t]:
        return Resolution(None, f"the tests are not pytest node ids (e.g. {not_ids[0]!r}): only pytest "
                                "repositories are judged")
    files = list(dict.fromkeys(t.split("::", 1)[0] for t in tests))
    try:
        python, pythonpath = interpreter(sandbox, environment)
        with Scratch(repo) as scratch:
            work = scratch.root
            applied = apply_patch(work, model_patch)
            if applied.exit_code != 0:
                return Resolution(None, f"the prediction does not apply: {_first_line(applied.output)}")
            _reset(work, touched_files(inst.test_patch))
            applied = apply_patch(work, inst.test_patch)
            if applied.exit_code != 0:
                return Resolution(None, "the test_patch does not apply after the prediction: "
                                        + _first_line(applied.output))
            run, outcomes = run_pytest(sandbox, work, python, files, timeout=timeout, cancel=cancel,
                                       env={"PYTHONPATH": pythonpath})
    except Cancelled:
        raise
    except SweReasonerError as exc:
        return Resolution(None, f"the tests could not be run: {exc}")
    verdict = Resolution(False, "", [t for t in inst.fail_to_pass if outcomes.get(t) not in PASSING],
                         [t for t in inst.pass_to_pass if outcomes.get(t) not in MAINTAINED], run,
                         time.perf_counter() - started)
    f2p, p2p = len(inst.fail_to_pass), len(inst.pass_to_pass)
    if not verdict.fail_to_pass_failed and not verdict.pass_to_pass_failed:
        verdict.resolved, verdict.reason = True, f"all {f2p} FAIL_TO_PASS and {p2p} PASS_TO_PASS tests pass"
        return verdict
    verdict.reason = (f"{len(verdict.fail_to_pass_failed)} of {f2p} FAIL_TO_PASS and "
                      f"{len(verdict.pass_to_pass_failed)} of {p2p} PASS_TO_PASS tests fail")
    if run.timed_out or run.killed_reason:
        verdict.reason += f" (the run: {run.describe()})"
    elif not outcomes:
        verdict.reason += f" (pytest reported no test outcome: {run.describe()})"
    return verdict


def _reset(work: Path, files: list[str]) -> None:
    """The harness's `git checkout BASE -- TEST_FILES`: the test_patch's files as at the base commit
    (whatever the prediction did to them), and those it creates not there at all."""
    at_base = set(git(work, "ls-tree", "-r", "-z", "--name-only", "HEAD", "--", *files).split("\0")) if files else set()
    for rel in files:
        if rel in at_base:
            git(work, "checkout", "-q", "HEAD", "--", rel)
        else:
            safe_join(work, rel).unlink(missing_ok=True)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "git apply failed")
