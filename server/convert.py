"""Pure conversions between the agent's objects and LSP's: no I/O, no server state."""

from __future__ import annotations

import difflib
from pathlib import Path

from lsprotocol import types

from ..agent.config import Settings
from ..agent.errors import ConfigError
from ..agent.progress import Event

TITLE = "Solve issue with swe-reasoner"
ISSUE_SUFFIXES = {".md", ".markdown", ".txt", ".rst", ""}
ISSUE_LANGUAGES = {"markdown", "plaintext", "text", "restructuredtext"}

# workspace/configuration keys (camelCase, as editors write them) -> Settings fields
SETTING_KEYS = {
    "model": "model", "apiBase": "api_base", "apiModel": "api_model", "apiKeyEnv": "api_key_env",
    "budget": "budget", "maxTokens": "max_tokens", "temperature": "temperature", "nCtx": "n_ctx",
    "nGpuLayers": "n_gpu_layers", "think": "think", "seed": "seed", "trajectoryDir": "trajectory_dir",
    "sandbox": "sandbox", "sandboxImage": "sandbox_image", "testEnv": "test_env",
    "strategy": "strategy", "adaptive": "adaptive", "prmAdapter": "prm_adapter", "ormAdapter": "orm_adapter",
    "ormBeta": "orm_beta",
}
CLIENT_KEYS = {"trace", "python", "serverArgs"}  # read by the server or only by the editor


def issue_text(text: str, selection: types.Range, path: str, language: str | None) -> str:
    """The issue a code action would solve: the selection, or a whole issue file; "" for none."""
    if selection.start != selection.end:
        return text_in_range(text, selection).strip()
    if language in ISSUE_LANGUAGES or Path(path).suffix.lower() in ISSUE_SUFFIXES:
        return text.strip()
    return ""


def text_in_range(text: str, rng: types.Range) -> str:
    starts = line_starts(text)
    return text[offset_at(text, starts, rng.start):offset_at(text, starts, rng.end)]


def line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def offset_at(text: str, starts: list[int], pos: types.Position) -> int:
    """The string offset of an LSP position (UTF-16 columns), clamped to the text."""
    if pos.line >= len(starts):
        return len(text)
    start = starts[pos.line]
    end = starts[pos.line + 1] - 1 if pos.line + 1 < len(starts) else len(text)
    units = 0
    for i in range(start, end):
        if units >= pos.character:
            return i
        units += 2 if ord(text[i]) > 0xFFFF else 1
    return end


def position_at(text: str, starts: list[int], offset: int) -> types.Position:
    import bisect

    line = bisect.bisect_right(starts, offset) - 1
    column = text[starts[line]:offset]
    return types.Position(line, len(column.encode("utf-16-le")) // 2)


def text_edits(old: str, new: str) -> list[types.TextEdit]:
    """Line-granular edits that turn `old` into `new`, in document order, non-overlapping."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    starts = line_starts(old)
    offsets = [0]
    for line in a:
        offsets.append(offsets[-1] + len(line))
    edits = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        rng = types.Range(position_at(old, starts, offsets[i1]), position_at(old, starts, offsets[i2]))
        edits.append(types.TextEdit(rng, "".join(b[j1:j2])))
    return edits


def progress_report(event: Event) -> tuple[str, int]:
    """The work-done progress message and percentage for an agent event."""
    return event.describe(), max(0, min(100, round(event.fraction * 100)))


def settings_from(config: object, base: Settings) -> tuple[Settings, list[str]]:
    """`base` with the editor's `sweReasoner` section laid over, and the problems found.

    A key of the wrong type or an unknown key is skipped; values that together fail
    validation (budget 0, apiBase without apiModel) leave `base` in force.
    """
    if config is None:
        return base, []
    if not isinstance(config, dict):
        return base, [f"the sweReasoner settings must be an object, not {config!r}"]
    settings, problems = base, []
    for key, value in config.items():
        if key in CLIENT_KEYS or value is None or value == "":  # absent or empty: not set
            continue
        field = SETTING_KEYS.get(key)
        if field is None:
            problems.append(f"unknown setting sweReasoner.{key}; known: {', '.join(sorted(SETTING_KEYS))}")
            continue
        try:
            settings = settings.merged({field: value}, "the editor's settings")
        except ConfigError as exc:
            problems.append(str(exc).replace(repr(field), f"sweReasoner.{key}"))
    try:
        return settings.validate(), problems
    except ConfigError as exc:
        return base, problems + [f"{exc} (in the editor's settings; they are ignored)"]


def code_action(issue: str, uri: str) -> types.CodeAction:
    """The "Solve issue" action; its command is filled in by codeAction/resolve."""
    return types.CodeAction(title=TITLE, kind=types.CodeActionKind.QuickFix, data={"issue": issue, "uri": uri})


def resolved(action: types.CodeAction) -> types.CodeAction:
    action.command = types.Command(title=TITLE, command="sweReasoner.solve", arguments=[action.data])
    return action


def result_payload(job) -> dict:
    """The `sweReasoner/result` notification for a finished session.Job (docs/lsp.md)."""
    from pygls.uris import from_fs_path

    candidates = []
    if job.result is not None and job.status == "patched":
        traj = job.result.trajectory
        for i, cand in enumerate(job.result.patches):
            files = [{"path": path, "uri": from_fs_path(str(job.root / path)), "oldText": old, "newText": new}
                     for path, (old, new) in cand.texts.items()]
            evidence = {"files": traj.files, "why": traj.file_reasons, "locations": traj.locations, "scores": cand.scores,
                        "verification": cand.verification, "reproduction": traj.reproduction or None,
                        "note": traj.verification_note}
            candidates.append({"index": i, "diff": cand.diff, "files": files, "evidence": evidence})
    trajectory = str(job.trajectory) if job.trajectory and job.trajectory.exists() else None
    return {"solveId": job.id, "status": job.status, "message": job.message, "trajectory": trajectory,
            "candidates": candidates}
