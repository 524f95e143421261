"""The stages of a solve. Each module holds its prompt, its parser and its result type.

A stage is a function of the shared `Context` (issue, index, tools, model
access) and the earlier stages' results; it records every model call in the
trajectory and reports progress.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..answers import Ask
from ..errors import FormatError
from ..index import RepoIndex, Symbol
from ..progress import Event, ProgressFn
from ..retrieval import Retriever
from ..tools import SearchTools

SYSTEM = (
    "You are a careful senior software engineer fixing an issue in a Python repository. "
    "You may reason first inside <think>...</think>; after it, give only the answer in the "
    "exact format asked for."
)


@dataclass
class Context:
    issue: str
    index: RepoIndex
    retriever: Retriever
    tools: SearchTools
    ask: Ask
    progress: ProgressFn
    tokens: list[int] = field(default_factory=lambda: [0])  # generated so far, shared
    done: float = 0.0  # the fraction last reported: progress never goes back

    def report(self, stage: str, fraction: float, message: str = "", candidate: int = 0,
               candidates: int = 0, round: int = 0) -> None:
        """Progress; a search that returns to an earlier stage's band (the next wave of patches
        after a verification) keeps the fraction where it was."""
        self.done = max(self.done, fraction)
        self.progress(Event(stage, message, candidate, candidates, round, self.tokens[0], self.done))

    def issue_block(self) -> str:
        return f"<issue>\n{self.issue.strip()}\n</issue>"


@dataclass(frozen=True)
class Location:
    """A place to change: a file, optionally a class and/or a function in it."""

    file: str
    class_name: str = ""
    function: str = ""
    reason: str = ""

    def describe(self) -> str:
        what = ".".join(p for p in (self.class_name, self.function) if p)
        return f"{self.file}: {what}" if what else self.file

    def to_dict(self) -> dict:
        return {"file": self.file, "class": self.class_name, "function": self.function, "reason": self.reason}


LOCATION_SCHEMA = {
    "type": "object",
    "properties": {
        "file": {"type": "string"},
        "class": {"type": "string"},
        "function": {"type": "string"},
        "reason": {"type": "string"},
    },
    "required": ["file"],
}


def resolve_locations(index: RepoIndex, items: list[dict]) -> tuple[list[Location], list[str]]:
    """Check each location against the index: (the valid ones, problems for the model)."""
    good: list[Location] = []
    problems: list[str] = []
    for item in items:
        file = index.find_file(item.get("file", ""))
        cls = (item.get("class") or "").strip().split(".")[-1]
        func = (item.get("function") or "").strip().split(".")[-1].split("(")[0]
        if "." in (item.get("function") or "") and not cls:  # "Class.method"
            cls = item["function"].split(".")[-2]
        if not file:
            problems.append(f"{item.get('file')!r} is not a Python file of the repository.")
            continue
        syms = index.entry(file).symbols
        if cls and not any(s.kind == "class" and s.name == cls for s in syms):
            problems.append(f"{file} defines no class {cls!r}.")
            continue
        if func and not any(s.name == func and s.kind != "class" and (not cls or s.parent.split(".")[-1] == cls)
                            for s in syms):
            problems.append(f"{file} defines no function {func!r}" + (f" in class {cls}." if cls else "."))
            continue
        loc = Location(file, cls, func, str(item.get("reason", ""))[:300])
        if loc not in good:
            good.append(loc)
    return good, problems


def location_symbols(index: RepoIndex, loc: Location) -> list[Symbol]:
    """The definitions a location points at (the whole file when it names none)."""
    syms = index.entry(loc.file).symbols
    if loc.function:
        return [s for s in syms if s.name == loc.function and s.kind != "class"
                and (not loc.class_name or s.parent.split(".")[-1] == loc.class_name)]
    if loc.class_name:
        return [s for s in syms if s.kind == "class" and s.name == loc.class_name]
    return []


def check_locations(index: RepoIndex, value: dict, key: str = "locations") -> list[Location]:
    """Validate a `{"locations": [...]}` answer: FormatError unless every location exists."""
    good, problems = resolve_locations(index, value.get(key) or [])
    if problems:
        raise FormatError("Some locations do not exist:\n- " + "\n- ".join(problems)
                          + "\nName only files, classes and functions that exist. Answer again.")
    if not good:
        raise FormatError("Name at least one location.")
    return good
