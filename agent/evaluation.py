"""`swe-reasoner eval`: SWE-bench-format instances in, official predictions out.

Each instance is solved on a shared clone of DIR/OWNER__NAME checked out at its
base commit (the clone under DIR is never changed). Predictions are appended
one line per instance as they finish ({instance_id, model_name_or_path,
model_patch}: what the `swebench` harness reads), so an interrupted run resumes
where it stopped. A report line per instance goes beside them: localization
against the gold patch's files and functions, tokens and seconds per stage.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import Cancelled, SweReasonerError
from .index import RepoIndex
from .model import Model
from .pipeline import SolveOptions, solve
from .progress import CancelToken, Event
from .repo import Repo, git

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


def repo_dir(repos: Path, inst: Instance) -> Path:
    path = repos / inst.repo.replace("/", "__")
    if not (path / ".git").exists():
        raise SweReasonerError(f"{inst.instance_id}: no git clone of {inst.repo} at {path}")
    return path


def checkout(source: Path, commit: str, work: Path) -> Repo:
    """A clone sharing `source`'s objects, at `commit`; `source` itself is not changed."""
    target = work / source.name
    git(work, "clone", "-q", "--shared", "--no-checkout", str(source), str(target))
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


def evaluate(instances: list[Instance], repos: Path, out: Path, model: Model, options: SolveOptions,
             model_name: str, progress=print, cancel: CancelToken | None = None) -> dict:
    """Solve every instance not yet in `out`; returns the summary (also written beside `out`)."""
    cancel = cancel or CancelToken()
    report = out.with_name(out.stem + ".report.jsonl")
    finished = done_ids(out)
    todo = [i for i in instances if i.instance_id not in finished]
    progress(f"{len(instances)} instances, {len(instances) - len(todo)} already done")
    for n, inst in enumerate(todo, start=1):
        cancel.check()
        source = repo_dir(repos, inst)
        started = time.perf_counter()
        work = Path(tempfile.mkdtemp(prefix="swe-reasoner-eval-"))
        try:
            repo = checkout(source, inst.base_commit, work)
            opts = SolveOptions(**{**options.__dict__, "instance_id": inst.instance_id})
            stage = [""]

            def show(event: Event) -> None:
                if event.stage != stage[0]:
                    stage[0] = event.stage
                    progress(f"[{n}/{len(todo)}] {inst.instance_id}: {event.describe()}")

            try:
                result = solve(repo, inst.problem_statement, model, opts, progress=show, cancel=cancel)
                traj, error = result.trajectory, ""
                patch = result.best
            except Cancelled:
                raise
            except SweReasonerError as exc:
                traj, error, patch = None, str(exc), ""
            record = {"instance_id": inst.instance_id, "patched": bool(patch), "error": error,
                      "seconds": round(time.perf_counter() - started, 2)}
            if traj is not None:
                index = RepoIndex.build(repo, options.cache_dir)
                record.update(status=traj.status, tokens=traj.tokens, stages=per_stage(traj.steps),
                              localization=localization(index, inst, traj.files, traj.locations))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _append(report, record)
        _append(out, {"instance_id": inst.instance_id, "model_name_or_path": model_name, "model_patch": patch})
        progress(f"[{n}/{len(todo)}] {inst.instance_id}: {'patch' if patch else 'no patch'} "
                 f"in {record['seconds']:.0f} s")
    summary = summarize(report)
    out.with_name(out.stem + ".summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def summarize(report: Path) -> dict:
    latest: dict[str, dict] = {}  # an instance that ran again after an interruption counts once
    for line in report.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            latest[record["instance_id"]] = record
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    records = list(latest.values())
    scored = [r["localization"] for r in records if r.get("localization")]
    n = len(records)

    def share(values: list[bool]) -> float | None:
        return round(sum(values) / len(values), 3) if values else None

    return {
        "instances": n,
        "patched": sum(r["patched"] for r in records),
        "errors": sum(bool(r["error"]) for r in records),
        "file_localization": share([loc["all_files_found"] for loc in scored]),
        "function_localization": share([bool(loc["functions_hit"]) for loc in scored if loc["gold_functions"]]),
        "completion_tokens": sum(r.get("tokens", {}).get("completion", 0) for r in records),
        "seconds": round(sum(r["seconds"] for r in records), 1),
    }


def _append(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
