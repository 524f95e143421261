"""The server's state apart from LSP: the warm model, the running solve, finished results.

A solve runs in a worker thread so that the event loop keeps answering; its
events and its end are handed to callbacks, which the server forwards to the
loop. Nothing here writes to the user's files.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..agent.config import REPLAY, Settings, load_model, load_sandbox, load_test_env, solve_options
from ..agent.errors import Cancelled, SweReasonerError
from ..agent.model import Model
from ..agent.pipeline import SolveResult, solve
from ..agent.progress import CancelToken, Event
from ..agent.repo import Repo

log = logging.getLogger(__name__)


KEEP_FINISHED = 5  # finished solves kept for apply/reject, newest first out last


class Busy(SweReasonerError):
    pass


def new_id() -> str:
    return uuid.uuid4().hex[:12]


class ModelHost:
    """One loaded model, kept warm between solves and reloaded when its settings change."""

    def __init__(self, load: Callable[[Settings], Model] = load_model) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._model: Model | None = None
        self._key: tuple | None = None
        self.loads = 0

    def is_loaded(self, settings: Settings) -> bool:
        return self._model is not None and self._key == settings.model_key()

    def get(self, settings: Settings) -> Model:
        """The model for `settings`, loading it (and freeing the old one) when needed."""
        with self._lock:
            replay = settings.model.startswith(REPLAY)  # a recording is re-read for every solve
            if self._model is not None and self._key == settings.model_key() and not replay:
                return self._model
            self._close_locked()
            self._model = self._load(settings)
            self._key = settings.model_key()
            self.loads += 1
            return self._model

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._model is not None:
            self._model.close()
        self._model, self._key = None, None


@dataclass
class Job:
    id: str
    root: Path
    issue: str
    cancel: CancelToken = field(default_factory=CancelToken)
    status: str = "running"  # then "patched" | "no_patch" | "cancelled" | "error"
    message: str = ""
    result: SolveResult | None = None
    trajectory: Path | None = None
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Until the outcome is set, just before the result is handed on."""
        return self.status == "running"


class Solver:
    """One solve at a time; finished ones are kept until applied or rejected."""

    def __init__(self, models: ModelHost | None = None) -> None:
        self.models = models or ModelHost()
        self.current: Job | None = None
        self.finished: dict[str, Job] = {}

    def check_idle(self) -> None:
        if self.current is not None and self.current.running:
            raise Busy("a solve is already running in this workspace; wait for it or cancel it "
                       "(swe-reasoner: Cancel) before starting another")

    def start(self, root: Path, issue: str, settings: Settings, *, trace: bool = True, solve_id: str = "",
              on_event: Callable[[Job, Event], None], on_done: Callable[[Job], None]) -> Job:
        """Start a solve in a worker thread. Raises Busy, RepoError or SweReasonerError at once."""
        self.check_idle()
        if not issue.strip():
            raise SweReasonerError("the issue text is empty")
        repo = Repo.open(root)
        job = Job(solve_id or new_id(), repo.root, issue,
                  trajectory=settings.trajectory_file() if trace else None)
        job.thread = threading.Thread(target=self._run, args=(job, repo, settings, on_event, on_done),
                                      name=f"solve-{job.id}", daemon=True)
        self.current = job
        job.thread.start()
        return job

    def _run(self, job: Job, repo: Repo, settings: Settings, on_event, on_done) -> None:
        try:
            if not self.models.is_loaded(settings):
                on_event(job, Event("load", "loading the model"))
            model = self.models.get(settings)
            job.cancel.check()
            sandbox, note = load_sandbox(settings)
            if settings.test_env != "host" and sandbox is not None:
                on_event(job, Event("index", "preparing the test environment"))
            environment, env_note = load_test_env(settings, repo, sandbox)
            options = solve_options(settings, trajectory_path=job.trajectory, sandbox=sandbox,
                                    verification_note="; ".join(filter(None, [note, env_note])),
                                    environment=environment)
            job.result = solve(repo, job.issue, model, options, lambda e: on_event(job, e), job.cancel)
            job.status = job.result.trajectory.status
            job.message = _summary(job.result)
        except Cancelled:
            job.status, job.message = "cancelled", "cancelled"
        except SweReasonerError as exc:
            job.status, job.message = "error", str(exc)
        except Exception as exc:  # a bug: report it, keep serving
            log.exception("solve %s failed", job.id)
            job.status, job.message = "error", f"internal error: {type(exc).__name__}: {exc}"
        finally:
            self.finished[job.id] = job
            for old in list(self.finished)[:-KEEP_FINISHED]:
                del self.finished[old]
            on_done(job)

    def cancel(self, solve_id: str | None = None) -> bool:
        job = self.current
        if job is None or not job.running or (solve_id and solve_id != job.id):
            return False
        job.cancel.cancel()
        return True

    def discard(self, solve_id: str) -> bool:
        return self.finished.pop(solve_id, None) is not None

    def close(self) -> None:
        """Cancel what runs, wait for it briefly, free the model."""
        if self.cancel() and self.current and self.current.thread:
            self.current.thread.join(timeout=5)
        self.models.close()


def _summary(result: SolveResult) -> str:
    n = len(result.patches)
    if n:
        verified = sum(c.scores.get("verified", 0) for c in result.patches)
        checked = result.patches[0].verification is not None
        return (f"{n} patch{'es' if n > 1 else ''} to review"
                + (f", {verified:.0f} verified" if checked else " (not verified)"))
    reasons = "; ".join(c.error.splitlines()[0] for c in result.failed if c.error)
    return "no patch: " + (reasons or result.trajectory.error or "the model wrote no applicable edit")
