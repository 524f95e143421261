"""Progress events and cancellation: one contract for the CLI, the server and eval."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from .errors import Cancelled


@dataclass(frozen=True)
class Event:
    """Where a solve is. `fraction` is the share of the whole solve done, 0..1."""

    stage: str  # "load" | "index" | "understand" | "localize" | "patch" | "done"
    message: str = ""
    candidate: int = 0  # 1-based; 0 when the stage has no candidates
    candidates: int = 0
    round: int = 0
    tokens: int = 0  # tokens generated so far in the solve
    fraction: float = 0.0

    def describe(self) -> str:
        """A status line: "Localizing · candidate 3/8 · round 2"."""
        parts = [STAGE_TITLES.get(self.stage, self.stage.title())]
        if self.candidates > 1:
            parts.append(f"candidate {self.candidate}/{self.candidates}")
        if self.round:
            parts.append(f"round {self.round}")
        if self.message:
            parts.append(self.message)
        return " · ".join(parts)


STAGE_TITLES = {
    "load": "Loading",
    "index": "Indexing",
    "understand": "Understanding",
    "localize": "Localizing",
    "patch": "Patching",
    "verify": "Verifying",
    "done": "Done",
}

ProgressFn = Callable[[Event], None]


def no_progress(event: Event) -> None:
    pass


class CancelToken:
    """Set from any thread; checked by the solve between steps and tokens."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("the solve was cancelled")
