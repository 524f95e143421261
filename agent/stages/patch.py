"""Stage 3, Patch: search/replace edits, applied to a scratch copy, checked, diffed.

The model sees the located code and writes edits; they are applied to the
scratch copy (never the user's tree), Python files must still parse, and the
diff comes from git. Failures go back to the model, bounded. N candidates are
N samples of the same prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..edits import Edit, apply_edits, parse_edits
from ..errors import FormatError
from ..repo import Scratch
from . import SYSTEM, Context, Location, location_symbols

CONTEXT_LINES = 5  # shown around each located definition
MAX_CODE_CHARS = 16000
RETRIES = 2

PROMPT = """{issue}

The fix goes in or near this code:
{code}

Write the fix as search/replace edits. For each edit, give the file path on its own line, then:
<<<<<<< SEARCH
the exact current lines (copied verbatim, enough to be unique, no line numbers)
=======
the new lines
>>>>>>> REPLACE
Change as little as needed and keep the indentation. Answer with the edits only."""


@dataclass
class PatchCandidate:
    candidate: int
    diff: str = ""
    files: list[str] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    error: str = ""  # why no diff came out
    texts: dict[str, tuple[str, str]] = field(default_factory=dict)  # path -> (old, new) whole-file texts
    scores: dict[str, float] = field(default_factory=dict)  # e.g. {"votes": 3, "verified": 1.0}
    verification: dict | None = None  # the verify stage's Verdict.to_dict(), when it ran
    convo: list[dict] = field(default_factory=list)  # the conversation that wrote it, its answer last
    revision: int = 0  # 0: first written; n: revised n times after failing verification
    node: str = ""  # where the search wrote it: "u1.l2.p3" is patch 3 of localization 2 of reading 1


def code_context(ctx: Context, locations: list[Location]) -> str:
    """The located definitions with a few lines around, merged per file, as plain text."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for loc in locations:
        syms = location_symbols(ctx.index, loc)
        if not syms:  # a whole file: show its start
            spans.setdefault(loc.file, []).append((1, 80))
        for s in syms:
            spans.setdefault(loc.file, []).append((max(1, s.start - CONTEXT_LINES), s.end + CONTEXT_LINES))
    parts = []
    for path, ranges in spans.items():
        lines = ctx.index.text(path).splitlines()
        merged: list[list[int]] = []
        for lo, hi in sorted(ranges):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        for lo, hi in merged:
            hi = min(hi, len(lines))
            parts.append(f"### {path} (lines {lo}-{hi})\n```python\n" + "\n".join(lines[lo - 1 : hi]) + "\n```")
    text = "\n\n".join(parts)
    return text if len(text) <= MAX_CODE_CHARS else text[:MAX_CODE_CHARS] + "\n... (cut)"


def patch(ctx: Context, scratch: Scratch, locations: list[Location], n: int = 1,
          temperature: float = 0.0, first: int = 1, total: int = 0) -> list[PatchCandidate]:
    """`n` patch candidates for the located code (samples of one prompt), numbered from
    `first` of `total`; each tried on a clean scratch copy."""
    total = total or n
    prompt = [{"role": "system", "content": SYSTEM},
              {"role": "user", "content": PROMPT.format(issue=ctx.issue_block(), code=code_context(ctx, locations))}]
    ctx.report("patch", 0.55 + 0.3 * (first - 1) / total, "writing edits", first, total)
    results = []
    for i, completion in enumerate(ctx.ask.complete(prompt, n=n, temperature=temperature), start=first):
        ctx.report("patch", 0.55 + 0.3 * (i - 1) / total, "applying edits", i, total)
        results.append(_try_candidate(ctx, scratch, prompt, completion, i, temperature=temperature))
    return results


def revise(ctx: Context, scratch: Scratch, cand: PatchCandidate, feedback: str) -> PatchCandidate:
    """The candidate's conversation goes on with why its patch failed; the model writes it again."""
    convo = cand.convo + [{"role": "user", "content": feedback + REVISE}]
    revised = _try_candidate(ctx, scratch, convo, ctx.ask.complete(convo)[0], cand.candidate, stage="revise")
    revised.revision = cand.revision + 1
    return revised


REVISE = ("\nThe repository is back to its original code (your edits were not kept). Write all the edits "
          "again, against the original code, so that the issue is fixed and the tests pass.")


def _try_candidate(ctx: Context, scratch: Scratch, prompt: list[dict], completion, i: int,
                   stage: str = "patch", temperature: float | None = None) -> PatchCandidate:
    convo = list(prompt)
    for attempt in range(1, RETRIES + 2):
        if attempt > 1:
            completion = ctx.ask.complete(convo, temperature=temperature)[0]
        step = ctx.ask.record(stage, i, attempt, convo, completion)
        scratch.reset()
        try:
            edits = parse_edits(completion.answer)
            files = apply_edits(scratch.root, edits)
            diff = scratch.diff()
            if not diff.strip():
                raise FormatError("Your edits change nothing. Write edits that fix the issue.")
            step.parsed = {"edits": edits, "files": files}
            new = {f: _read(scratch.root / f) for f in files}
            scratch.reset()
            return PatchCandidate(i, diff, files, edits, texts={f: (_read(scratch.root / f), new[f]) for f in files},
                                  convo=convo + [{"role": "assistant", "content": completion.answer}])
        except FormatError as exc:
            step.feedback = exc.feedback
            convo = convo + [{"role": "assistant", "content": completion.answer},
                             {"role": "user", "content": exc.feedback + "\nWrite all the edits again."}]
    scratch.reset()
    return PatchCandidate(i, error=step.feedback)


def _read(path) -> str:
    """A file's text, "" when it does not exist (a file the patch creates)."""
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return ""
