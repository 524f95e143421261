"""Stage 1, Understand: pick the files to read, then name suspicious locations.

The model chooses up to five files from the text-search ranking (BM25 plus
what the issue names); its picks are merged with the ranking's top files. Then
it reads their skeletons and names suspicious classes and functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import FormatError
from ..tools import skeleton
from . import LOCATION_SCHEMA, SYSTEM, Context, Location, check_locations

MAX_PICKS = 5
SHOWN_FILES = 40  # candidate files listed in the prompt
BM25_MERGED = 3  # ranking's top files always read besides the model's picks
SKELETON_CHARS = 6000  # per file

FILES_SCHEMA = {
    "type": "object",
    "properties": {"files": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_PICKS}},
    "required": ["files"],
}
LOCATIONS_SCHEMA = {
    "type": "object",
    "properties": {"locations": {"type": "array", "items": LOCATION_SCHEMA, "minItems": 1, "maxItems": 8}},
    "required": ["locations"],
}

FILES_PROMPT = """{issue}

Files of the repository, most relevant first by a text search:
{files}

Which files (at most {n}) must be read to fix this issue? Prefer files that hold the faulty code over tests.
Answer with JSON only: {{"files": ["path/one.py", "path/two.py"]}}"""

LOCATIONS_PROMPT = """{issue}

Skeletons of the relevant files (function bodies elided, line numbers on the left):
{skeletons}

Which classes and functions are suspicious, i.e. probably need to change to fix the issue? Most likely first.
Answer with JSON only: {{"locations": [{{"file": "path.py", "class": "ClassName or empty", "function": "function name or empty", "reason": "why, briefly"}}]}}"""


@dataclass
class Understanding:
    files: list[str]
    locations: list[Location] = field(default_factory=list)
    why: dict[str, str] = field(default_factory=dict)  # file -> why it was read, for the user


def understand(ctx: Context, n: int = 1, temperature: float = 0.0) -> list[Understanding]:
    """`n` readings of the repository: the file picks are `n` samples of one prompt; each
    pick then names its suspicious locations."""
    ranked = ctx.retriever.rank(ctx.issue, top=SHOWN_FILES)
    ctx.report("understand", 0.05, "choosing files", 1, n)

    def check_files(value: dict) -> list[str]:
        picked, missing = [], []
        for path in value["files"]:
            rel = ctx.index.find_file(path)
            (picked if rel else missing).append(rel or path)
        if missing:
            raise FormatError("These are not Python files of the repository: " + ", ".join(missing)
                              + ". Choose from the list. Answer again.")
        return list(dict.fromkeys(picked))

    listing = "\n".join(r.path for r in ranked)
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": FILES_PROMPT.format(issue=ctx.issue_block(), files=listing, n=MAX_PICKS)}]
    picks = ctx.ask.json_many("understand.files", messages, FILES_SCHEMA, check_files, n, temperature)
    reasons = {r.path: r.reasons for r in ranked}
    out = []
    for candidate, (picked, _) in enumerate(picks, start=1):
        files = list(dict.fromkeys([*(picked or []), *(r.path for r in ranked[:BM25_MERGED])]))
        ctx.report("understand", 0.05 + 0.1 * candidate / n, "reading skeletons", candidate, n)
        skeletons = "\n\n".join(f"### {path}\n{_clip(skeleton(ctx.index.text(path)))}" for path in files)
        messages = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": LOCATIONS_PROMPT.format(issue=ctx.issue_block(), skeletons=skeletons)}]
        locations, _ = ctx.ask.json("understand.locations", candidate, messages, LOCATIONS_SCHEMA,
                                    lambda v: check_locations(ctx.index, v), temperature)
        why = {path: "; ".join((["chosen by the model"] if path in (picked or []) else []) + reasons.get(path, []))
               for path in files}
        out.append(Understanding(files, locations or [], why))
    return out


def _clip(text: str) -> str:
    if len(text) <= SKELETON_CHARS:
        return text
    return text[:SKELETON_CHARS].rsplit("\n", 1)[0] + "\n     | ... (skeleton cut)"
