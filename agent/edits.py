"""Search/replace edits: parse them from a model's answer and apply them to a file tree.

The format, per edit:

    path/to/file.py
    <<<<<<< SEARCH
    lines as they are now
    =======
    lines as they should be
    >>>>>>> REPLACE

Matching is exact first, then tolerant of trailing whitespace, then of a
uniform indentation shift (the replacement is re-indented to match). A match
must be unique. An empty SEARCH creates a new file.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import FormatError, UnsafePathError
from .repo import safe_join

_BLOCK = re.compile(
    r"^(?P<path>[^\n]*?)[ \t]*\n(?:```[^\n]*\n)?<{5,9} ?SEARCH[ \t]*\n(?P<search>.*?)^={5,9}[ \t]*\n(?P<replace>.*?)^>{5,9} ?REPLACE[ \t]*$",
    re.S | re.M,
)
_LINE_NUMBER = re.compile(r"^\s*\d+\| ?")


@dataclass(frozen=True)
class Edit:
    file: str
    search: str
    replace: str


def parse_edits(answer: str) -> list[Edit]:
    """Every search/replace block in `answer`. Raises FormatError if there is none."""
    edits = []
    for m in _BLOCK.finditer(answer):
        path = m.group("path").strip().strip("`*#: ").strip()
        path = re.sub(r"^(?:File|Path)\s*:\s*", "", path, flags=re.I).strip("`'\" ")
        if not path:
            raise FormatError("Each SEARCH/REPLACE block must be preceded by the file's path on its own line.")
        edits.append(Edit(path, _strip_numbers(m.group("search")), _strip_numbers(m.group("replace"))))
    if not edits:
        raise FormatError(
            "Your answer holds no edit. Write each edit as the file path on one line, then\n"
            "<<<<<<< SEARCH\n(the exact lines to change)\n=======\n(the new lines)\n>>>>>>> REPLACE"
        )
    return edits


def _strip_numbers(block: str) -> str:
    """Drop "  12| " prefixes when every line has one (copied from a numbered listing)."""
    lines = block.splitlines(keepends=True)
    if lines and all(_LINE_NUMBER.match(line) for line in lines if line.strip()):
        return "".join(_LINE_NUMBER.sub("", line, count=1) for line in lines)
    return block


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def find_span(text_lines: list[str], search_lines: list[str]) -> tuple[int, int, str, str]:
    """Locate `search_lines` in `text_lines`: (start, end, indent to remove, indent to add).

    Raises FormatError when absent or ambiguous.
    """
    while search_lines and not search_lines[0].strip():
        search_lines = search_lines[1:]
    while search_lines and not search_lines[-1].strip():
        search_lines = search_lines[:-1]
    if not search_lines:
        raise FormatError("A SEARCH block is empty; to change a file, copy the lines to replace.")
    n = len(search_lines)
    for norm in (lambda s: s.rstrip(), lambda s: s.strip()):
        want = [norm(s) for s in search_lines]
        hits = [i for i in range(len(text_lines) - n + 1)
                if [norm(s) for s in text_lines[i : i + n]] == want]
        if len(hits) > 1:
            raise FormatError(f"A SEARCH block matches {len(hits)} places; add surrounding lines so it matches one.")
        if hits:
            i = hits[0]
            first = next(k for k, s in enumerate(search_lines) if s.strip())
            return i, i + n, _indent(search_lines[first]), _indent(text_lines[i + first])
    raise FormatError(
        "A SEARCH block does not match the file. Copy the lines exactly as they are, "
        "without line numbers:\n" + "".join(search_lines[:8])
    )


def apply_edit(text: str, edit: Edit) -> str:
    lines = text.splitlines(keepends=True)
    start, end, old, new = find_span(lines, edit.search.splitlines(keepends=True))
    replacement = [_reindent(line, old, new) for line in edit.replace.splitlines(keepends=True)]
    if replacement and not replacement[-1].endswith("\n") and lines[end - 1].endswith("\n"):
        replacement[-1] += "\n"
    return "".join(lines[:start] + replacement + lines[end:])


def _reindent(line: str, old: str, new: str) -> str:
    """Shift `line` from the SEARCH block's indentation to the file's."""
    if old == new or not line.strip() or not line.startswith(old):
        return line
    return new + line[len(old):]


def apply_edits(root: Path, edits: list[Edit]) -> list[str]:
    """Apply `edits` under `root`, all or nothing. Returns the changed files.

    Raises FormatError (for the model) when an edit cannot be applied or a changed
    Python file no longer parses; then no file is written.
    """
    new_texts: dict[str, str] = {}
    for edit in edits:
        try:
            path = safe_join(root, edit.file)
        except UnsafePathError as exc:
            raise FormatError(f"{exc}. Edit files of the repository only, by their relative path.") from None
        rel = path.relative_to(root).as_posix()
        if rel in new_texts:
            current = new_texts[rel]
        elif path.is_file():
            current = path.read_text(encoding="utf-8", errors="surrogateescape")
        elif not edit.search.strip():
            current = ""
        else:
            raise FormatError(f"There is no file {edit.file} in the repository.")
        if not edit.search.strip():
            if current:
                raise FormatError(f"{edit.file} exists; its SEARCH block must hold the lines to replace.")
            new_texts[rel] = edit.replace
            continue
        try:
            new_texts[rel] = apply_edit(current, edit)
        except FormatError as exc:
            raise FormatError(f"In {edit.file}: {exc.feedback}") from None
    for rel, text in new_texts.items():
        if rel.endswith(".py"):
            try:
                ast.parse(text, filename=rel)
            except SyntaxError as exc:
                raise FormatError(f"After your edits {rel} has a syntax error at line {exc.lineno}: {exc.msg}.") from None
    for rel, text in new_texts.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", errors="surrogateescape")
    return sorted(new_texts)
