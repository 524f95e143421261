"""`swe-reasoner eval`: SWE-bench-format instances in, official predictions out,
each judged resolved or not the way the SWE-bench harness judges it.

Each instance is solved on a clone of DIR/OWNER__NAME checked out at its base
commit (the clone under DIR is never changed), with its candidates verified in
the sandbox when there is one. Predictions are appended one line per instance as
they finish ({instance_id, model_name_or_path, model_patch}: what the `swebench`
harness reads), so an interrupted run resumes where it stopped. A report line per
instance goes beside them: localization against the gold patch's files and
functions, tokens and seconds per stage, and, for an instance with a test_patch
and FAIL_TO_PASS tests, whether the prediction resolves it (docs/eval.md).
`workers` instances run at a time, in threads sharing one model.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import re
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import Cancelled, SweReasonerError
from .harness import Instance, judge
from .index import RepoIndex, default_cache_dir
from .model import Model, SerializedModel, concurrency_safe
from .pipeline import SolveOptions, solve
from .progress import CancelToken, Event
from .repo import Repo, git

def repo_dir(repos: Path, inst: Instance) -> Path:
    path = repos / inst.repo.replace("/", "__")
    if not (path / ".git").exists():
        raise SweReasonerError(f"{inst.instance_id}: no git clone of {inst.repo} at {path}")
    if not git(path, "rev-parse", "--verify", "-q", f"{inst.base_commit}^{{commit}}", check=False).strip():
        raise SweReasonerError(f"{inst.instance_id}: the clone {path} has no commit {inst.base_commit} (git fetch?)")
    return path


def checkout(source: Path, commit: str, work: Path) -> Repo:
    """A clone sharing `source`'s objects, at `commit`; `source` itself is not changed."""
    target = work / source.name
    git(work, "clone", "-q", "--shared", "--no-checkout", str(source.resolve()), str(target))
    git(target, "-c", "advice.detachedHead=false", "checkout", "-q", commit)
    return Repo.open(target)


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@", re.M)


def gold_locations(patch: str) -> dict[str, list[tuple[int, int]]]:
    """file -> changed line ranges (old side) of a unified diff."""
    found: dict[str, list[tuple[int, int]]] = {}
    for part in re.split(r"^diff --git ", patch, flags=re.M)[1:]:
        m = re.match(r"a/(\S+) b/", part)
        if not m:
            continue
        spans = [(int(h.group(1)), int(h.group(1)) + max(int(h.group(2) or 1), 1) - 1) for h in _HUNK.finditer(part)]
        found[m.group(1)] = spans
    return found


def gold_functions(index: RepoIndex, patch: str) -> set[str]:
    """'file:qualname' of the innermost definitions the gold patch changes."""
    names = set()
    for path, spans in gold_locations(patch).items():
        if path not in index.files:
            continue
        symbols = index.entry(path).symbols
        for lo, hi in spans:
            hits = [s for s in symbols if s.start <= hi and lo <= s.end]
            if hits:
                inner = min(hits, key=lambda s: s.end - s.start)
                names.add(f"{path}:{inner.qualname}")
    return names


def localization(index: RepoIndex, inst: Instance, files: list[str], locations: list[dict]) -> dict:
    """How the solve's files and locations compare with the gold patch's."""
    if not inst.patch:
        return {}
    gold_files = set(gold_locations(inst.patch))
    gold_funcs = gold_functions(index, inst.patch)
    found_funcs = {f"{loc['file']}:{'.'.join(p for p in (loc.get('class'), loc.get('function')) if p)}"
                   for loc in locations}
    return {"gold_files": sorted(gold_files), "files_hit": sorted(gold_files & set(files)),
            "all_files_found": gold_files <= set(files),
            "gold_functions": sorted(gold_funcs), "functions_hit": sorted(gold_funcs & found_funcs)}


def per_stage(steps: list) -> dict:
    stages: dict[str, dict] = {}
    for s in steps:
        stage = stages.setdefault(s.stage.split(".")[0], {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                                           "seconds": 0.0})
        stage["calls"] += 1
        stage["prompt_tokens"] += s.prompt_tokens
        stage["completion_tokens"] += s.completion_tokens
        stage["seconds"] = round(stage["seconds"] + s.seconds, 3)
    return stages


def done_ids(out: Path) -> set[str]:
    """The instances `out` holds; a last line cut by an interruption is dropped (it runs again)."""
    if not out.exists():
        return set()
    text = out.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        out.write_text(text[: text.rfind("\n") + 1], encoding="utf-8")
    ids = set()
    for line in out.read_text(encoding="utf-8").splitlines():
        try:
            ids.add(json.loads(line)["instance_id"])
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return ids


# ------------------------------------------------------------------ the run


EnvironmentFor = Callable[[Repo], "tuple[object, str]"]


def evaluate(instances: list[Instance], repos: Path, out: Path, model: Model, options: SolveOptions,
             model_name: str, progress=print, cancel: CancelToken | None = None, *, workers: int = 1,
             environment_for: EnvironmentFor | None = None) -> dict:
    """Solve every instance not yet in `out`, and judge those with tests; returns the summary (also
    written beside `out`).

    `options.sandbox` verifies the candidates and runs the instances' tests (None: neither).
    `environment_for(checkout)` gives an instance's test environment as (environment or None for
    the host's Python, a note); it runs once per instance. `workers` instances run at a time; the
    model is then called by one at a time unless it is a server's client. Raises Cancelled, and
    SweReasonerError before any work when an instance's clone is missing.
    """
    if workers < 1:
        raise SweReasonerError(f"workers must be at least 1, not {workers}")
    cancel = cancel or CancelToken()
    finished = done_ids(out)
    todo = [i for i in instances if i.instance_id not in finished]
    sources = {i.instance_id: repo_dir(repos, i) for i in todo}
    if workers > 1 and not concurrency_safe(model):
        model = SerializedModel(model)
    run = _Run(out, sources, model, options, model_name, progress, cancel, environment_for, len(todo))
    progress(f"{len(instances)} instances, {len(instances) - len(todo)} already done"
             + (f", {workers} at a time" if workers > 1 and todo else ""))
    if workers == 1:
        for n, inst in enumerate(todo, start=1):
            run.one(n, inst)
    else:
        _in_threads(run.one, todo, workers, cancel)
    summary = {"strategy": options.strategy, "budget": options.budget, "adaptive": options.adaptive,
               **summarize(run.report)}
    out.with_name(out.stem + ".summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _in_threads(work: Callable[[int, Instance], None], items: list[Instance], workers: int,
                cancel: CancelToken) -> None:
    """work(n, item) for every item, `workers` at a time. The first error (a Ctrl-C included)
    cancels the rest; it is raised once every worker has stopped."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eval") as pool:
        futures = [pool.submit(work, n, item) for n, item in enumerate(items, start=1)]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            cancel.cancel()
            for future in futures:
                future.cancel()
            raise


class _Run:
    """What the workers share; appends and progress lines go under one lock."""

    def __init__(self, out: Path, sources: dict[str, Path], model: Model, options: SolveOptions, model_name: str,
                 progress, cancel: CancelToken, environment_for: EnvironmentFor | None, total: int):
        self.out, self.report = out, out.with_name(out.stem + ".report.jsonl")
        self.sources, self.model, self.options, self.model_name = sources, model, options, model_name
        self.progress, self.cancel, self.environment_for, self.total = progress, cancel, environment_for, total
        self.checkouts = (options.cache_dir or default_cache_dir()) / "eval"
        self._lock = threading.Lock()

    def say(self, line: str) -> None:
        with self._lock:
            self.progress(line)

    def one(self, n: int, inst: Instance) -> None:
        """Solve, judge and record one instance. Raises Cancelled; a SweReasonerError is recorded."""
        self.cancel.check()
        tag = f"[{n}/{self.total}] {inst.instance_id}"
        started = time.perf_counter()
        record: dict = {"instance_id": inst.instance_id, "strategy": self.options.strategy,
                        "budget": self.options.budget}
        with _checkout_dir(self.checkouts, inst) as work:
            repo = checkout(self.sources[inst.instance_id], inst.base_commit, work)
            patch, environment = self._solve(tag, repo, inst, record)
            if inst.has_tests:
                if patch:
                    self.say(f"{tag}: running FAIL_TO_PASS and PASS_TO_PASS")
                verdict = judge(repo, inst, patch, self.options.sandbox, environment=environment,
                                timeout=self.options.verify_timeout, cancel=self.cancel,
                                note=self.options.verification_note)
                record.update(resolved=verdict.resolved, resolution=verdict.to_dict())
        record["seconds"] = round(time.perf_counter() - started, 2)
        judged = ""
        if "resolved" in record:
            judged = {True: ", resolved", False: ", not resolved"}.get(
                record["resolved"], f", not judged ({record['resolution']['reason']})")
        with self._lock:
            _append(self.report, record)
            _append(self.out, {"instance_id": inst.instance_id, "model_name_or_path": self.model_name,
                               "model_patch": patch})
            self.progress(f"{tag}: {'patch' if patch else 'no patch'}{judged} in {record['seconds']:.0f} s")

    def _solve(self, tag: str, repo: Repo, inst: Instance, record: dict) -> tuple[str, object]:
        """(the best patch or "", the test environment), with what happened added to `record`."""
        stage = [""]

        def show(event: Event) -> None:
            if event.stage != stage[0]:
                stage[0] = event.stage
                self.say(f"{tag}: {event.describe()}")

        traj, error, patch, environment = None, "", "", None
        try:
            if self.environment_for is not None:
                environment, note = self.environment_for(repo)
                if note:
                    record["test_env_note"] = note
                    self.say(f"{tag}: {note}")
            opts = dataclasses.replace(self.options, instance_id=inst.instance_id, environment=environment)
            result = solve(repo, inst.problem_statement, self.model, opts, progress=show, cancel=self.cancel)
            traj, patch = result.trajectory, result.best
        except Cancelled:
            raise
        except SweReasonerError as exc:
            error = str(exc)
        record.update(patched=bool(patch), error=error)
        if traj is not None:
            index = RepoIndex.build(repo, self.options.cache_dir)
            record.update(status=traj.status, tokens=traj.tokens, stages=per_stage(traj.steps), spent=traj.budget,
                          localization=localization(index, inst, traj.files, traj.locations))
        return patch, environment


@contextmanager
def _checkout_dir(root: Path, inst: Instance) -> Iterator[Path]:
    """An empty folder for the instance's checkout, removed afterwards. Its path is fixed by the
    repository and commit, because the test environment and index caches are keyed by the
    checkout's path: a rerun finds them. While another worker or run holds that path, a
    temporary folder instead."""
    root.mkdir(parents=True, exist_ok=True)
    fixed = root / re.sub(r"[^\w.@-]", "_", f"{inst.repo.replace('/', '__')}@{inst.base_commit[:16]}")
    lock = open(f"{fixed}.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        shutil.rmtree(fixed, ignore_errors=True)  # left by a run that was killed
        fixed.mkdir()
        work = fixed
    except OSError:
        lock.close()
        work = Path(tempfile.mkdtemp(prefix="swe-reasoner-eval-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        lock.close()


def summarize(report: Path) -> dict:
    latest: dict[str, dict] = {}  # an instance that ran again after an interruption counts once
    if report.exists():
        for line in report.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                latest[record["instance_id"]] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    records = list(latest.values())
    scored = [r["localization"] for r in records if r.get("localization")]
    judged = [r for r in records if "resolved" in r]
    n = len(records)

    def share(values: list[bool]) -> float | None:
        return round(sum(values) / len(values), 3) if values else None

    return {
        "instances": n,
        "patched": sum(r["patched"] for r in records),
        "errors": sum(bool(r["error"]) for r in records),
        "with_tests": len(judged),
        "resolved": sum(r["resolved"] is True for r in judged),
        "resolved_rate": share([r["resolved"] is True for r in judged]),
        "not_judged": sum(r["resolved"] is None for r in judged),
        "file_localization": share([loc["all_files_found"] for loc in scored]),
        "function_localization": share([bool(loc["functions_hit"]) for loc in scored if loc["gold_functions"]]),
        "prompt_tokens": sum(r.get("tokens", {}).get("prompt", 0) for r in records),
        "completion_tokens": sum(r.get("tokens", {}).get("completion", 0) for r in records),
        "patch_samples_saved": sum(r.get("spent", {}).get("saved", {}).get("patch", 0) for r in records),
        "seconds": round(sum(r["seconds"] for r in records), 1),
    }


def _append(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
