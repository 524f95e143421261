"""The language server end to end: the real `swe-reasoner serve` process under pytest-lsp."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.uris import from_fs_path

import lsp_client
from conftest import BUG_ISSUE, run_pytest, tree_snapshot
from scripted import good_answers
from swe_reasoner.agent.config import Settings, load_sandbox
from swe_reasoner.agent.model import ScriptedModel
from swe_reasoner.agent.pipeline import SolveOptions, solve
from swe_reasoner.agent.repo import Repo

pytestmark = pytest.mark.asyncio(loop_scope="function")
ISSUE = BUG_ISSUE.strip()  # what a selection of the issue's text gives


@pytest.fixture
def recording(bug_repo, tmp_path) -> Path:
    """A solve of the bug by a model that answers well, recorded for the server to replay."""
    path = tmp_path / "recorded.jsonl"
    sandbox, note = load_sandbox(Settings())  # what the server will pick: bubblewrap where it exists
    solve(Repo.open(bug_repo), ISSUE, ScriptedModel(good_answers),
          SolveOptions(trajectory_path=path, sandbox=sandbox, verification_note=note))
    return path


@pytest_asyncio.fixture
async def client(bug_repo, recording, tmp_path):
    client = await lsp_client.start(bug_repo, {"model": f"replay:{recording}", "trajectoryDir": str(tmp_path / "t")})
    yield client
    await client.shutdown_session()


def open_doc(client, path: Path, text: str, language: str, version: int = 1) -> str:
    uri = from_fs_path(str(path))
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, language, version, text)))
    return uri


async def code_actions(client, uri: str, start: tuple[int, int], end: tuple[int, int]):
    return await client.text_document_code_action_async(types.CodeActionParams(
        types.TextDocumentIdentifier(uri), types.Range(types.Position(*start), types.Position(*end)),
        types.CodeActionContext(diagnostics=[])))


async def test_capabilities(client):
    caps = client.initialized.capabilities
    assert list(caps.code_action_provider.code_action_kinds) == ["quickfix"]
    assert set(caps.execute_command_provider.commands) == {
        "sweReasoner.solve", "sweReasoner.cancel", "sweReasoner.apply", "sweReasoner.reject"}


async def test_code_action_on_a_selection_and_on_an_issue_file(client, bug_repo):
    text = "Notes\n\n" + ISSUE + "\n\nmore notes\n"
    uri = open_doc(client, bug_repo / "notes.md", text, "markdown")
    first = 2
    last = first + ISSUE.count("\n")
    [action] = await code_actions(client, uri, (first, 0), (last, len(ISSUE.splitlines()[-1])))
    assert action.kind == types.CodeActionKind.QuickFix and action.command is None
    command = (await client.code_action_resolve_async(action)).command  # as editors do on a pick
    assert command.command == "sweReasoner.solve"
    assert command.arguments[0]["issue"] == ISSUE and command.arguments[0]["uri"] == uri
    [whole] = await code_actions(client, uri, (0, 0), (0, 0))  # no selection in an issue file: all of it
    assert (await client.code_action_resolve_async(whole)).command.arguments[0]["issue"] == text.strip()
    py = open_doc(client, bug_repo / "calc" / "stats.py", (bug_repo / "calc" / "stats.py").read_text(), "python")
    assert not await code_actions(client, py, (3, 0), (3, 0))  # no selection in code: nothing to solve
    only = await client.text_document_code_action_async(types.CodeActionParams(
        types.TextDocumentIdentifier(uri), types.Range(types.Position(0, 0), types.Position(1, 0)),
        types.CodeActionContext(diagnostics=[], only=[types.CodeActionKind.Refactor])))
    assert not only


async def test_solve_previews_then_applies_only_on_accept(client, bug_repo):
    before = tree_snapshot(bug_repo)
    solve_id = await lsp_client.solve(client, ISSUE)
    result = await lsp_client.result(client)
    assert result["solveId"] == solve_id and result["status"] == "patched", result
    assert result["message"] in ("1 patch to review, 1 verified", "1 patch to review (not verified)")
    [cand] = result["candidates"]
    assert "-    return sum(values) / (len(values) - 1)" in cand["diff"]
    [changed] = cand["files"]
    assert changed["path"] == "calc/stats.py" and changed["oldText"] == (bug_repo / "calc/stats.py").read_text()
    assert "return sum(values) / len(values)\n" in changed["newText"]
    assert cand["evidence"]["files"][0] == "calc/stats.py"
    # (pygls's client turns objects into named tuples, which rename keys like "calc/stats.py")
    assert list(cand["evidence"]["why"].values())[0].startswith("chosen by the model; bm25")
    assert cand["evidence"]["locations"][0]["function"] == "mean"
    assert Path(result["trajectory"]).is_file()
    # progress: begin, reports naming the stages, end with the outcome
    [reports] = client.progress_reports.values()
    kinds = [r.kind for r in reports]
    assert kinds[0] == "begin" and kinds[-1] == "end" and set(kinds[1:-1]) == {"report"}
    assert reports[0].cancellable
    messages = [r.message for r in reports[1:-1]]
    for stage in ("Indexing", "Understanding", "Localizing", "Patching"):
        assert any(m.startswith(stage) for m in messages), messages
    percents = [r.percentage for r in reports[1:-1]]
    assert percents == sorted(percents)
    assert reports[-1].message == result["message"]
    if result["message"].endswith("1 verified"):  # bubblewrap here: the evidence holds the verification
        verification = cand["evidence"]["verification"]
        assert verification["verified"] and verification["repro_before"] == "REPRODUCED"
        assert verification["repro_after"] == "RESOLVED" and "Verifying" in " ".join(messages)
    # nothing changed until the user accepts
    assert not client.edits and tree_snapshot(bug_repo) == before
    assert run_pytest(bug_repo).returncode == 1
    answer = await lsp_client.command(client, "sweReasoner.apply", {"solveId": solve_id, "candidate": 0})
    assert answer == {"applied": True, "reason": ""}
    [edit] = client.edits
    [doc_edit] = edit.edit.document_changes
    assert doc_edit.text_document.uri == changed["uri"] and doc_edit.text_document.version is None
    assert run_pytest(bug_repo).returncode == 0  # the edit the editor applied fixes the bug
    again = await lsp_client.command(client, "sweReasoner.apply", {"solveId": solve_id, "candidate": 0})
    assert again["applied"] is False and "unknown" in again["reason"]


async def test_edit_of_an_open_document_is_versioned_and_a_stale_one_is_refused(client, bug_repo):
    stats = bug_repo / "calc" / "stats.py"
    solve_id = await lsp_client.solve(client, ISSUE)
    assert (await lsp_client.result(client))["status"] == "patched"
    # the user edits the file in the editor after the solve: the patch no longer fits
    uri = open_doc(client, stats, stats.read_text().replace("arithmetic mean", "average"), "python", version=7)
    stale = await lsp_client.command(client, "sweReasoner.apply", {"solveId": solve_id, "candidate": 0})
    assert stale["applied"] is False and "calc/stats.py changed" in stale["reason"]
    assert not client.edits
    # back to the solved text (version 8): the edit carries that version
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(version=8, uri=uri),
        [types.TextDocumentContentChangeWholeDocument(stats.read_text())]))
    client.accept_edits = False  # and the editor refuses it: reported, nothing lost
    refused = await lsp_client.command(client, "sweReasoner.apply", {"solveId": solve_id, "candidate": 0})
    assert refused == {"applied": False, "reason": "the user closed the file"}
    assert client.edits[-1].edit.document_changes[0].text_document.version == 8
    client.accept_edits = True
    ok = await lsp_client.command(client, "sweReasoner.apply", {"solveId": solve_id, "candidate": 0})
    assert ok["applied"] is True


async def test_reject_discards(client):
    solve_id = await lsp_client.solve(client, ISSUE)
    await lsp_client.result(client)
    assert await lsp_client.command(client, "sweReasoner.reject", {"solveId": solve_id}) == {"discarded": True}
    answer = await lsp_client.command(client, "sweReasoner.apply", {"solveId": solve_id, "candidate": 0})
    assert answer["applied"] is False and not client.edits


async def test_bad_params_get_errors_and_the_server_survives(client):
    for name, argument, expect in [
        ("sweReasoner.solve", None, "expected one argument"),
        ("sweReasoner.solve", {"issue": "   "}, "issue text is empty"),
        ("sweReasoner.solve", {"text": "x"}, "missing argument field(s): issue"),
        ("sweReasoner.apply", {"solveId": "x"}, "missing argument field(s): candidate"),
    ]:
        with pytest.raises(JsonRpcException, match=expect.replace("(", r"\(").replace(")", r"\)")):
            await lsp_client.command(client, name, argument)
    unknown = await lsp_client.command(client, "sweReasoner.apply", {"solveId": "nope", "candidate": 0})
    assert unknown["applied"] is False
    with pytest.raises(JsonRpcException):  # malformed params for a standard request
        await lsp_client.raw_request(client, types.TEXT_DOCUMENT_CODE_ACTION, {"textDocument": 3})
    with pytest.raises(JsonRpcException, match="sweReasoner/noSuchMethod"):
        await lsp_client.raw_request(client, "sweReasoner/noSuchMethod", {})
    with pytest.raises(JsonRpcException, match="expected one argument"):
        await lsp_client.raw_request(client, types.WORKSPACE_EXECUTE_COMMAND,
                                     {"command": "sweReasoner.apply", "arguments": ["not an object"]})
    client.protocol.writer.write(b"Content-Length: 9\r\n\r\n{not json")  # garbage on the wire
    # still serving
    assert (await lsp_client.command(client, "sweReasoner.cancel", {})) == {"cancelled": False}


async def test_settings_problems_are_shown_and_a_bad_model_says_the_fix(client, tmp_path):
    client.set_configuration({"model": str(tmp_path / "missing.gguf"), "budget": "many", "colour": 1},
                             section="sweReasoner")
    await lsp_client.solve(client, ISSUE)
    result = await lsp_client.result(client)
    assert result["status"] == "error" and "missing.gguf does not exist" in result["message"]
    assert "--model" in result["message"] and not result["candidates"]
    shown = " ".join(m.message for m in client.messages)
    assert "sweReasoner.budget" in shown and "unknown setting sweReasoner.colour" in shown


async def test_a_second_solve_while_one_runs_is_refused(client):
    await lsp_client.solve(client, ISSUE)
    with pytest.raises(JsonRpcException, match="already running"):
        await lsp_client.solve(client, ISSUE)
    assert (await lsp_client.result(client))["status"] == "patched"


async def test_not_a_git_repository(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    client = await lsp_client.start(folder)
    try:
        with pytest.raises(JsonRpcException, match="not inside a git repository"):
            await lsp_client.solve(client, ISSUE)
    finally:
        await client.shutdown_session()


@pytest.mark.llama
@pytest.mark.slow
@pytest.mark.parametrize("how", ["progress", "command"])
async def test_cancel_stops_a_real_model_within_a_second(bug_repo, tmp_path, how):
    client = await lsp_client.start(bug_repo, {"model": "smollm2-135m", "maxTokens": 4096, "nCtx": 8192,
                                               "think": True, "trace": False})
    try:
        solve_id = await lsp_client.solve(client, ISSUE)
        [token] = client.progress_reports
        issue_uri = open_doc(client, bug_repo / "ISSUE.md", ISSUE, "markdown")
        answered = 0
        while not any(getattr(r, "message", "") and r.message.startswith(("Understanding", "Localizing"))
                      for r in client.progress_reports[token]):
            # the server answers while the model loads and indexes (llama.cpp's load once
            # silenced the LSP channel's file descriptor and swallowed these answers)
            assert await asyncio.wait_for(code_actions(client, issue_uri, (0, 0), (0, 0)), 5)
            answered += 1
            await asyncio.sleep(0.02)
        assert answered >= 3
        await asyncio.sleep(0.5)  # generating now
        assert not client.results
        started = time.perf_counter()
        if how == "progress":
            client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token))
        else:
            assert await lsp_client.command(client, "sweReasoner.cancel", {"solveId": solve_id}) == {"cancelled": True}
        result = await lsp_client.result(client, timeout=10)
        elapsed = time.perf_counter() - started
        assert result["status"] == "cancelled" and result["message"] == "cancelled"
        assert client.progress_reports[token][-1].kind == "end"
        assert elapsed < 10, elapsed  # a sanity bound under load; benchmarks/lsp_bench.py measures the 1 s target
        # the warm model serves the next solve at once
        await lsp_client.solve(client, ISSUE)
        await lsp_client.command(client, "sweReasoner.cancel", {})
        assert (await lsp_client.result(client, timeout=30))["status"] == "cancelled"
    finally:
        await client.shutdown_session()
