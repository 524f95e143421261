"""One solve: issue text + repository -> ranked patches + the trajectory.

Index, then the search (agent/search.py): Understand, Localize, Patch, Verify
and Rank, with the budget and strategy of the options. The model, the progress
callback and the cancel token are injected; the user's working tree is never
written (edits go to a scratch copy). The trajectory is written in a `finally`,
whatever happens.
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
from .repo import Repo
from .retrieval import Retriever
from .rewards import OutcomeReward, ProcessReward
from .sandbox import Sandbox
from .config import STRATEGIES
from .search import Search
from .stages import Context
from .stages.patch import PatchCandidate
from .tools import SearchTools
from .trajectory import Trajectory

log = logging.getLogger(__name__)


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
    prm_adapter: str | None = None  # the model's LoRA adapter that is the PRM; None: the reasoner judges zero-shot
    orm_adapter: str | None = None  # the model's LoRA adapter that is the ORM; None: the zero-shot judge
    orm_beta: float = 0.1  # DPO beta of the ORM's implicit reward


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
    if options.strategy not in STRATEGIES:
        raise SweReasonerError(f"strategy must be one of {', '.join(STRATEGIES)}, not {options.strategy!r}")
    if options.budget < 1:
        raise SweReasonerError(f"budget must be at least 1, not {options.budget}")
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

        outcome = Search(ctx, repo, options, ProcessReward(model, options.prm_adapter),
                         OutcomeReward(model, options.orm_adapter, options.orm_beta)).run()
        if outcome.understanding:
            traj.files = outcome.understanding.files
            traj.file_reasons = outcome.understanding.why
        traj.locations = [loc.to_dict() for loc in outcome.locations or []]
        traj.search = [node.to_dict() for node in outcome.nodes]
        traj.budget = outcome.budget
        traj.reproduction = outcome.reproduction
        traj.verification_note = options.verification_note
        result.patches, result.failed = outcome.patches, outcome.failed
        if not outcome.locations:
            traj.status = "no_patch"
            traj.error = "no location to patch was found"
            return result
        traj.patches = [{"candidate": c.candidate, "node": c.node, "revision": c.revision, "diff": c.diff, "files": c.files,
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
