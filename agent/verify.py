"""Verify a patch: a reproduction script and the related regression tests, in a sandbox.

In a scratch copy of the repository (the user's tree is never written):
1. find the tests related to the files the patch touches (tests/test_<module>.py by
   name, and test files that import a touched module) and run them on the original
   code; the ones that pass are the regression tests;
2. run the reproduction script on the original code: it must say REPRODUCED;
3. apply the patch and run both again.
The patch is verified when the script now says RESOLVED (if one was given) and no
regression test fails. The reproduction protocol is in docs/verify.md: the script's
last line starting with `VERDICT:` names the verdict (REPRODUCED, RESOLVED or OTHER).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import RepoError, SweReasonerError
from .repo import Repo, Scratch, git
from .sandbox import RunResult, Sandbox

REPRODUCED, RESOLVED, OTHER = "REPRODUCED", "RESOLVED", "OTHER"
VERDICT_RE = re.compile(r"^VERDICT:\s*(REPRODUCED|RESOLVED|OTHER)\s*$")
REPRO_PATH = ".swe-reasoner/repro.py"  # where the script is written in the scratch copy
JUNIT_FILE = ".swe-reasoner-junit.xml"  # written by pytest in the scratch copy, read and removed after each run
RESULT_RE = re.compile(r"^(PASSED|FAILED|ERROR|XPASS|XFAIL|SKIPPED)\s+(\S+::\S+)")


@dataclass
class Step:
    """One sandboxed command and what it showed."""

    name: str  # "regression-before", "repro-before", "apply", "regression-after", "repro-after"
    result: RunResult

    def to_dict(self) -> dict:
        return {"step": self.name, **self.result.to_dict()}


@dataclass
class Verdict:
    verified: bool
    status: str  # verified | not_verified | repro_not_reproducing | patch_does_not_apply | error
    reason: str
    touched_files: list[str] = field(default_factory=list)
    test_files: list[str] = field(default_factory=list)  # related test files that were run
    regression_tests: list[str] = field(default_factory=list)  # passed before the patch
    failing_before: list[str] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)  # passed before, not after
    fixed_tests: list[str] = field(default_factory=list)  # failed before, pass after
    repro_before: str | None = None
    repro_after: str | None = None
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0
    sandbox: str = ""
    environment: str = ""  # the test environment's folder; "" for the host's interpreter

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("verified", "status", "reason", "touched_files", "test_files",
                                           "regression_tests", "failing_before", "regressions", "fixed_tests",
                                           "repro_before", "repro_after", "sandbox", "environment")}
        d["seconds"] = round(self.seconds, 3)
        d["steps"] = [s.to_dict() for s in self.steps]
        return d

    def describe(self, *, output_lines: int = 30) -> str:
        lines = [f"{'VERIFIED' if self.verified else 'NOT VERIFIED'} ({self.status}): {self.reason}",
                 f"sandbox: {self.sandbox}; {self.seconds:.1f}s"
                 + (f"; test environment {self.environment}" if self.environment else ""),
                 f"touched files: {', '.join(self.touched_files) or '-'}",
                 f"related test files: {', '.join(self.test_files) or '-'}",
                 f"regression tests (passed before): {len(self.regression_tests)}"]
        if self.failing_before:
            lines.append(f"failing before the patch: {', '.join(self.failing_before)}")
        if self.fixed_tests:
            lines.append(f"fixed by the patch: {', '.join(self.fixed_tests)}")
        if self.regressions:
            lines.append(f"REGRESSIONS: {', '.join(self.regressions)}")
        if self.repro_before is not None:
            lines.append(f"reproduction: before {self.repro_before}, after {self.repro_after or '-'}")
        for step in self.steps:
            lines.append(f"--- {step.name}: $ {' '.join(step.result.command)}  [{step.result.describe()}]")
            out = step.result.output.rstrip().splitlines()
            if len(out) > output_lines:
                out = [f"[... {len(out) - output_lines} lines ...]", *out[-output_lines:]]
            lines.extend("    " + line for line in out)
        return "\n".join(lines)


# ------------------------------------------------------------------ what the patch touches


def touched_files(patch: str) -> list[str]:
    """Paths a unified diff changes (old and new names), relative POSIX paths, in order."""
    found: list[str] = []
    for line in patch.splitlines():
        m = re.match(r"^(?:---|\+\+\+) (?:[ab]/)?(\S+)", line)
        if m and m.group(1) != "/dev/null" and m.group(1) not in found:
            found.append(m.group(1))
    return found


def is_test_file(rel: str) -> bool:
    name = PurePosixPath(rel).name
    return rel.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def module_name(rel: str) -> str | None:
    """calc/stats.py -> calc.stats; src/pkg/mod.py -> pkg.mod; calc/__init__.py -> calc."""
    if not rel.endswith(".py"):
        return None
    parts = list(PurePosixPath(rel).with_suffix("").parts)
    if parts and parts[0] in ("src", "lib"):
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or None


def imported_modules(source: str) -> set[str]:
    """Absolute modules a file imports, with `from a import b` also giving `a.b`."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def related_tests(repo: Repo, touched: list[str]) -> list[str]:
    """Test files related to the touched files: by name and by imports."""
    tests = [rel for rel in repo.python_files() if is_test_file(rel)]
    modules = {m for rel in touched if not is_test_file(rel) and (m := module_name(rel))}
    stems = {PurePosixPath(rel).stem for rel in touched if rel.endswith(".py") and not is_test_file(rel)}
    chosen = [rel for rel in touched if is_test_file(rel)]
    for rel in tests:
        name = PurePosixPath(rel).stem
        if name.removeprefix("test_").removesuffix("_test") in stems - {"__init__"}:
            chosen.append(rel)
            continue
        try:
            imports = imported_modules(repo.read_text(rel))
        except OSError:
            continue
        if imports & modules:
            chosen.append(rel)
    return sorted(dict.fromkeys(chosen))


# ------------------------------------------------------------------ running


def pytest_outcomes(output: str) -> dict[str, str]:
    """node id -> PASSED/FAILED/ERROR/... from `pytest -rA` output."""
    outcomes: dict[str, str] = {}
    for line in output.splitlines():
        if m := RESULT_RE.match(line.strip()):
            outcomes.setdefault(m.group(2), m.group(1))
    return outcomes


def repro_verdict(result: RunResult) -> str:
    """The script's verdict: its last `VERDICT: X` line; OTHER if none, or it timed out or was killed."""
    if result.timed_out or result.killed_reason:
        return OTHER
    verdict = OTHER
    for line in result.output.splitlines():
        if m := VERDICT_RE.match(line.strip()):
            verdict = m.group(1)
    return verdict


@dataclass
class VerifyOptions:
    timeout: float = 300.0  # per sandboxed command
    python: str = ""  # the interpreter inside the sandbox; default: this one (bwrap, none) or python3
    cancel: object = None  # agent.progress.CancelToken
    environment: object = None  # agent.environment.Environment: its python runs the tests and the script


def interpreter(sandbox: Sandbox, environment=None) -> tuple[str, str]:
    """The Python that runs tests and scripts in `sandbox`, and its PYTHONPATH (relative to the
    scratch copy, the current folder in every sandbox): the test environment's, else the host's
    (bubblewrap, none) or the image's python3 (docker)."""
    if environment is None:
        return ("python3" if sandbox.name == "docker" else sys.executable), "."
    if sandbox.name == "docker":
        raise SweReasonerError("a built test environment lives on the host and cannot be used by the docker "
                               "sandbox yet; use --sandbox bwrap, or --env host with an image that has the "
                               "repository's dependencies")
    return str(environment.python), environment.pythonpath()


def pytest_command(python: str) -> list[str]:
    """pytest as verification and `eval` run it: every outcome listed (-rA) and in a JUnit report,
    no cache written."""
    return [python, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "--color=no",
            f"--junitxml={JUNIT_FILE}", "-o", "junit_family=xunit1"]


def run_pytest(sandbox: Sandbox, workdir: Path, python: str, targets: list[str], *, timeout: float, cancel=None,
               env: dict[str, str] | None = None) -> tuple[RunResult, dict[str, str]]:
    """pytest on `targets` in the sandbox, and each test's outcome (node id -> PASSED, FAILED, ...).

    The outcomes come from the JUnit report pytest writes into `workdir`: the run's output is
    kept only in part (its head and tail) and a big test file's summary lines would be cut. The
    output is read only when there is no report (pytest did not get that far)."""
    report = workdir / JUNIT_FILE
    report.unlink(missing_ok=True)
    result = run_sandboxed(sandbox, workdir, pytest_command(python) + targets, timeout=timeout, cancel=cancel,
                           env=env)
    outcomes = junit_outcomes(report) or pytest_outcomes(result.output)
    report.unlink(missing_ok=True)
    return result, outcomes


def junit_outcomes(path: Path) -> dict[str, str]:
    """node id -> outcome from a pytest JUnit report (xunit1: each case has its file); {} if none.
    A test reported twice (a teardown error after it passed) keeps the worse outcome."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    outcomes: dict[str, str] = {}
    for case in root.iter("testcase"):
        file, name, classname = case.get("file"), case.get("name"), case.get("classname") or ""
        if not file or not name:
            continue
        module = file[:-3].replace("/", ".") if file.endswith(".py") else file
        classes = classname[len(module) + 1:].split(".") if classname.startswith(module + ".") else []
        node = "::".join([file, *classes, name])
        tags = {child.tag: child for child in case}
        if "failure" in tags:
            outcome = "FAILED"
        elif "error" in tags:
            outcome = "ERROR"
        elif "skipped" in tags:
            outcome = "XFAIL" if tags["skipped"].get("type") == "pytest.xfail" else "SKIPPED"
        else:
            outcome = "PASSED"
        if outcomes.get(node, "PASSED") == "PASSED":
            outcomes[node] = outcome
    return outcomes


def run_sandboxed(sandbox: Sandbox, workdir: Path, command: list[str], *, timeout: float, cancel=None,
                  env: dict[str, str] | None = None, files: dict[str, str] | None = None) -> RunResult:
    """One command in the sandbox; a cancel, before it starts or while it runs, raises Cancelled."""
    if cancel is not None:
        cancel.check()
    result = sandbox.run(workdir, command, timeout=timeout, files=files, cancel=cancel, env=env)
    if result.killed_reason == "cancelled" and cancel is not None:
        cancel.check()
    return result


def verify_patch(repo: Repo, patch: str, sandbox: Sandbox, repro: str | None = None,
                 options: VerifyOptions | None = None) -> Verdict:
    """Check `patch` against the repository's current state. Never writes the user's tree."""
    options = options or VerifyOptions()
    environment = options.environment
    python, pythonpath = interpreter(sandbox, environment)
    if options.python and environment is None:
        python = options.python
    started = time.perf_counter()
    touched = touched_files(patch)
    verdict = Verdict(False, "error", "", touched_files=touched, sandbox=sandbox.name,
                      environment=str(environment.root) if environment is not None else "")
    if not patch.strip():
        verdict.status, verdict.reason = "patch_does_not_apply", "the patch is empty"
        return verdict
    env = {"PYTHONPATH": pythonpath}

    def run(name: str, workdir: Path, command: list[str], files: dict[str, str] | None = None) -> RunResult:
        result = run_sandboxed(sandbox, workdir, command, timeout=options.timeout, cancel=options.cancel, env=env,
                               files=files)
        verdict.steps.append(Step(name, result))
        return result

    def run_tests(name: str, workdir: Path, targets: list[str]) -> dict[str, str]:
        result, outcomes = run_pytest(sandbox, workdir, python, targets, timeout=options.timeout,
                                      cancel=options.cancel, env=env)
        verdict.steps.append(Step(name, result))
        return outcomes

    repro_cmd = [python, REPRO_PATH]
    try:
        with Scratch(repo) as scratch:
            work = scratch.root
            verdict.test_files = related_tests(Repo(work), touched)
            before: dict[str, str] = {}
            if verdict.test_files:
                before = run_tests("regression-before", work, verdict.test_files)
            verdict.regression_tests = sorted(t for t, o in before.items() if o == "PASSED")
            verdict.failing_before = sorted(t for t, o in before.items() if o in ("FAILED", "ERROR"))
            if repro is not None:
                verdict.repro_before = repro_verdict(run("repro-before", work, repro_cmd, {REPRO_PATH: repro}))
                if verdict.repro_before != REPRODUCED:
                    verdict.status = "repro_not_reproducing"
                    verdict.reason = (f"the reproduction script says {verdict.repro_before} on the original code; "
                                      f"it must print `VERDICT: {REPRODUCED}` there")
                    return verdict
            # Apply on the base as committed: drop whatever the runs left behind first.
            scratch.reset()
            applied = apply_patch(work, patch)
            verdict.steps.append(Step("apply", applied))
            if applied.exit_code != 0:
                verdict.status, verdict.reason = "patch_does_not_apply", "git apply refused the patch"
                return verdict
            after: dict[str, str] = {}
            rerun = sorted(set(verdict.regression_tests) | set(verdict.failing_before))
            if rerun:
                after = run_tests("regression-after", work, rerun)
            verdict.regressions = [t for t in verdict.regression_tests if after.get(t) != "PASSED"]
            verdict.fixed_tests = [t for t in verdict.failing_before if after.get(t) == "PASSED"]
            if repro is not None:
                verdict.repro_after = repro_verdict(run("repro-after", work, repro_cmd, {REPRO_PATH: repro}))
            problems = []
            if verdict.regressions:
                problems.append(f"{len(verdict.regressions)} regression test(s) fail after the patch")
            if repro is not None and verdict.repro_after != RESOLVED:
                problems.append(f"the reproduction script says {verdict.repro_after} after the patch")
            if problems:
                verdict.status, verdict.reason = "not_verified", "; ".join(problems)
            else:
                verdict.verified, verdict.status = True, "verified"
                verdict.reason = (("the reproduction is resolved" if repro is not None else
                                   "no reproduction script; only regression tests were checked") +
                                  f"; {len(verdict.regression_tests)} regression test(s) still pass")
            return verdict
    finally:
        verdict.seconds = time.perf_counter() - started


def apply_patch(work: Path, patch: str) -> RunResult:
    """git apply on the host side: it only writes the scratch copy and runs no repository code."""
    started = time.perf_counter()
    cmd = ["git", "apply", "--whitespace=nowarn", "-"]
    try:
        git(work, *cmd[1:], input=patch.encode())
        return RunResult(0, "", time.perf_counter() - started, command=cmd, sandbox="host")
    except RepoError as exc:
        return RunResult(1, str(exc), time.perf_counter() - started, command=cmd, sandbox="host")


# ------------------------------------------------------------------ command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", default=".", help="the git repository (default: the current folder)")
    p.add_argument("--patch", required=True, help="the unified diff to check, or - for standard input")
    p.add_argument("--repro", help="a reproduction script (prints `VERDICT: REPRODUCED|RESOLVED|OTHER`)")
    p.add_argument("--sandbox", default="auto", choices=["auto", "bwrap", "docker", "none"],
                   help="where the code runs (default auto: bubblewrap, else docker with --image); "
                        "none runs it unsandboxed")
    p.add_argument("--image", default="", help="the container image for --sandbox docker")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per command (default 300)")
    p.add_argument("--env", default="host", choices=["host", "build", "auto"],
                   help="the Python the tests run with: host (this one, PYTHONPATH=.), build (a virtual "
                        "environment built once per commit from pyproject/setup.py/requirements/tox.ini; pip "
                        "runs on the host, with network), auto (build when the repository declares dependencies)")
    p.add_argument("--json", action="store_true", help="print the verdict and its evidence as JSON")


def cli_main(args: argparse.Namespace) -> int:
    """`swe-reasoner verify`: 0 verified, 1 not verified, 2 usage or environment error."""
    import json

    from .cli import read_input
    from .progress import CancelToken
    from .sandbox import pick_sandbox

    try:
        repo = Repo.open(args.repo)
        patch = read_input(args.patch, "patch")
        repro = read_input(args.repro, "reproduction script") if args.repro else None
        sandbox = pick_sandbox(args.sandbox, image=args.image)
        environment = _environment(repo, getattr(args, "env", "host"))
        cancel = CancelToken()
        try:
            verdict = verify_patch(repo, patch, sandbox, repro, VerifyOptions(timeout=args.timeout, cancel=cancel,
                                                                              environment=environment))
        except KeyboardInterrupt:
            cancel.cancel()
            raise
    except SweReasonerError as exc:
        print(f"swe-reasoner: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(verdict.to_dict(), indent=2) if args.json else verdict.describe())
    return 0 if verdict.verified else 1


def _environment(repo: Repo, mode: str):
    """The test environment `--env` asks for, or None for the host's interpreter."""
    if mode == "host":
        return None
    from .environment import detect, prepare

    spec = detect(repo.root)
    if mode == "auto" and not spec.needs_build:
        return None
    print(f"swe-reasoner: test environment: {spec.describe()}", file=sys.stderr)
    env = prepare(repo, spec)
    print(f"swe-reasoner: test environment {'found in the cache' if env.cached else 'built'} "
          f"({env.seconds:.1f}s): {env.root}", file=sys.stderr)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swe-reasoner verify", description="check a patch in a sandbox")
    add_arguments(parser)
    return cli_main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
