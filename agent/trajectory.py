"""The record of one solve: every model call, tool call and result, and the outcome.

One JSON object per solve, appended as a line to a JSONL file. The training
package reads exactly this; docs/trajectory.md documents every field.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

FORMAT_VERSION = 1


@dataclass
class ToolCall:
    tool: str
    args: dict
    result: str


@dataclass
class Step:
    """One model call of a stage, and what came of it."""

    stage: str  # "understand.files" | "understand.locations" | "localize" | "patch"
    candidate: int  # 1-based candidate of the stage
    round: int  # 1-based try or search round within the candidate
    messages: list[dict]  # the prompt exactly as sent (earlier think parts dropped)
    output: str  # the raw generation, think part included
    think: str
    answer: str
    parsed: object = None  # the validated structured answer, when there is one
    feedback: str = ""  # what was wrong with the answer, as told to the model
    tool_calls: list[ToolCall] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


@dataclass
class Trajectory:
    issue: str
    repo: str
    base_commit: str
    model: str
    settings: dict
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    instance_id: str = ""
    created: float = field(default_factory=time.time)
    steps: list[Step] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # what Understand picked
    file_reasons: dict[str, str] = field(default_factory=dict)  # why each of those files was read
    locations: list[dict] = field(default_factory=list)  # what Localize settled on
    reproduction: dict = field(default_factory=dict)  # the reproduction script and its tries, when verified
    verification_note: str = ""  # why patches were not verified (no sandbox), if so
    search: list[dict] = field(default_factory=list)  # every candidate of every stage: its id, parent, summary, PRM score, kept
    budget: dict = field(default_factory=dict)  # the budget planned, sampled and saved; reward-model calls; verifications
    patches: list[dict] = field(default_factory=list)  # {"diff", "files", "candidate", "node", ...} best first
    status: str = "running"  # "patched" | "no_patch" | "cancelled" | "error"
    error: str = ""
    seconds: float = 0.0
    version: int = FORMAT_VERSION

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    @property
    def tokens(self) -> dict:
        return {
            "prompt": sum(s.prompt_tokens for s in self.steps),
            "completion": sum(s.completion_tokens for s in self.steps),
        }

    def to_json(self) -> str:
        data = asdict(self)
        data["tokens"] = self.tokens
        return json.dumps(data, ensure_ascii=False, default=_plain)

    def append_to(self, path: str | os.PathLike) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a", encoding="utf-8") as fh:
            fh.write(self.to_json() + "\n")
        return p


def _plain(obj: object) -> object:
    if is_dataclass(obj):
        return asdict(obj)
    return str(obj)


def read_trajectories(path: str | os.PathLike) -> list[dict]:
    """Every record of a trajectory file, as dicts."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
