"""One solve: issue text + repository -> ranked patches + the trajectory.

Index, Understand, Localize, Patch. The model, the progress callback and the
cancel token are injected; the user's working tree is never written (edits go
to a scratch copy). The trajectory is written in a `finally`, whatever happens.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from .answers import Ask
from .errors import Cancelled, SweReasonerError
from .index import RepoIndex
from .model import Model
from .progress import CancelToken, Event, ProgressFn, no_progress
from .ranking import by_execution, vote
from .repo import Repo, Scratch
from .retrieval import Retriever
from .sandbox import Sandbox
from .stages import Context, Location
from .stages.localize import localize
from .stages.patch import PatchCandidate, code_context, patch, revise
from .stages.reproduce import reproduce
from .stages.understand import understand
from .tools import SearchTools
from .trajectory import Trajectory
from .verify import VerifyOptions, verify_patch

log = logging.getLogger(__name__)

FALLBACK_FILES = 2
REVISIONS = 1  # rounds in which candidates that failed verification are rewritten, when none passed
FEEDBACK_CHARS = 4000  # of a failed verification's evidence, shown to the model


@dataclass
class SolveOptions:
    budget: int = 1  # rollouts: candidates sampled at each stage
    strategy: str = "dev-search"  # exec | orm-exec | voting | dev-search (agent.search)
    adaptive: bool = False  # stop sampling patches once one verifies with a clear ORM margin
    temperature: float = 0.7  # for candidates beyond the first
    max_tokens: int = 4096
    retries: int = 2  # re-asks after a malformed structured answer
    cache_dir: Path | None = None
    trajectory_path: Path | None = None  # JSONL file the trajectory is appended to
    instance_id: str = ""
    sandbox: Sandbox | None = None  # where model-written code runs; None: patches are not verified
    verification_note: str = ""  # why there is no sandbox, for the record
    verify_timeout: float = 300.0  # seconds per sandboxed command
    environment: object = None  # agent.environment.Environment the tests run in; None: the host's Python


@dataclass
class SolveResult:
    patches: list[PatchCandidate]  # distinct diffs, best first
    trajectory: Trajectory
    failed: list[PatchCandidate] = field(default_factory=list)

    @property
    def best(self) -> str:
        return self.patches[0].diff if self.patches else ""


def solve(repo: Repo, issue: str, model: Model, options: SolveOptions | None = None,
          progress: ProgressFn = no_progress, cancel: CancelToken | None = None) -> SolveResult:
    """Run the pipeline. Raises Cancelled, or SweReasonerError for unusable input."""
    options = options or SolveOptions()
    if not issue.strip():
        raise SweReasonerError("the issue text is empty")
    cancel = cancel or CancelToken()
    traj = Trajectory(issue=issue, repo=str(repo.root), base_commit=repo.head(), model=model.name,
                      settings=dataclasses.asdict(options), instance_id=options.instance_id)
    started = time.perf_counter()
    result = SolveResult([], traj)
    try:
        progress(Event("index", "reading the repository", fraction=0.0))
        index = RepoIndex.build(repo, options.cache_dir)
        cancel.check()
        tokens = [0]

        def count(n: int) -> None:
            tokens[0] += n

        ask = Ask(model, traj, cancel, max_tokens=options.max_tokens, retries=options.retries, on_tokens=count)
        ctx = Context(issue, index, Retriever(index), SearchTools(index), ask, progress, tokens)

        found = understand(ctx)
        traj.files = found.files
        traj.file_reasons = found.why
        located = localize(ctx, found)
        # No precise location from the model: patch the files it read, best first.
        locations = located.locations or [Location(f) for f in found.files[:FALLBACK_FILES]]
        traj.locations = [loc.to_dict() for loc in locations]
        if not locations:
            traj.status = "no_patch"
            traj.error = "no location to patch was found"
            return result
        with Scratch(repo) as scratch:
            candidates = patch(ctx, scratch, locations, n=options.budget,
                               temperature=options.temperature if options.budget > 1 else 0.0)
        result.patches = vote(candidates)
        result.failed = [c for c in candidates if not c.diff]
        traj.verification_note = options.verification_note
        if options.sandbox is not None and result.patches:
            _verify(ctx, repo, options, locations, result)
        traj.patches = [{"candidate": c.candidate, "revision": c.revision, "diff": c.diff, "files": c.files,
                         "scores": c.scores, "verification": c.verification} for c in result.patches]
        traj.status = "patched" if result.patches else "no_patch"
        progress(Event("done", f"{len(result.patches)} patch(es)", tokens=tokens[0], fraction=1.0))
        return result
    except Cancelled:
        traj.status = "cancelled"
        raise
    except BaseException as exc:
        traj.status = "error"
        traj.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        traj.seconds = time.perf_counter() - started
        if options.trajectory_path:
            try:
                traj.append_to(options.trajectory_path)
            except OSError as exc:
                log.error("could not write the trajectory to %s: %s", options.trajectory_path, exc)


def _verify(ctx: Context, repo: Repo, options: SolveOptions, locations: list[Location], result: SolveResult) -> None:
    """A reproduction script, then each candidate in the sandbox; verified candidates rank first."""
    found = reproduce(ctx, repo, options.sandbox, code_context(ctx, locations), timeout=options.verify_timeout,
                      environment=options.environment)
    result.trajectory.reproduction = found.to_dict()
    verdicts = _run_checks(ctx, repo, options, found.script, result.patches, 0.96, 0.02)
    for _ in range(REVISIONS):
        failed = [(c, v) for c, v in zip(result.patches, verdicts) if not v.verified and v.status != "error"]
        if not failed or len(failed) < len(result.patches):
            break  # nothing to revise, or some candidate already passed
        revised = []
        with Scratch(repo) as scratch:
            for cand, verdict in failed:
                ctx.report("verify", 0.98, "revising a failed patch", cand.candidate, len(failed))
                new = revise(ctx, scratch, cand, "Your patch failed verification.\n"
                             + verdict.describe(output_lines=20)[-FEEDBACK_CHARS:])
                if new.diff and new.diff not in {c.diff for c in result.patches + revised}:
                    revised.append(new)
        verdicts += _run_checks(ctx, repo, options, found.script, revised, 0.98, 0.01)
        result.patches += revised
    result.patches = by_execution(result.patches)


def _run_checks(ctx: Context, repo: Repo, options: SolveOptions, script: str | None,
                candidates: list[PatchCandidate], start: float, span: float) -> list:
    verdicts = []
    for i, cand in enumerate(candidates, start=1):
        ctx.report("verify", start + span * (i - 1) / len(candidates), "running the tests", i, len(candidates))
        verdict = verify_patch(repo, cand.diff, options.sandbox, script,
                               VerifyOptions(timeout=options.verify_timeout, cancel=ctx.ask.cancel,
                                             environment=options.environment))
        cand.verification = verdict.to_dict()
        cand.scores["verified"] = 1.0 if verdict.verified else 0.0
        verdicts.append(verdict)
    return verdicts
