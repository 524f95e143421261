"""A pytest-lsp client for the real `swe-reasoner serve` process, with the handlers
an editor has: it records progress, results and messages, and applies workspace
edits to the files on disk the way an editor applies them to its buffers.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import ClientServerConfig, client_capabilities
from pygls.uris import from_fs_path, to_fs_path

SERVER = [sys.executable, "-m", "swe_reasoner.server"]


def apply_text_edits(text: str, edits) -> str:
    """An editor's application of LSP text edits (positions in UTF-16 units; ASCII here)."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(pos) -> int:
        return min(starts[min(pos.line, len(lines))] + pos.character, len(text))

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[:offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end):]
    return text


async def start(root: Path, settings: dict | None = None, capabilities: str = "visual-studio-code"):
    client = await ClientServerConfig(SERVER).start()
    client.results = []  # sweReasoner/result notifications, as dicts
    client.edits = []  # workspace/applyEdit requests received
    client.accept_edits = True
    client.set_configuration(settings or {}, section="sweReasoner")

    @client.feature("sweReasoner/result")
    def on_result(params):
        client.results.append(params)

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def on_apply_edit(params: types.ApplyWorkspaceEditParams):
        client.edits.append(params)
        if not client.accept_edits:
            return types.ApplyWorkspaceEditResult(applied=False, failure_reason="the user closed the file")
        for change in params.edit.document_changes or []:
            if isinstance(change, types.TextDocumentEdit):
                path = Path(to_fs_path(change.text_document.uri))
                old = path.read_text() if path.exists() else ""
                path.write_text(apply_text_edits(old, change.edits))
        return types.ApplyWorkspaceEditResult(applied=True)

    caps = client_capabilities(capabilities)
    uri = from_fs_path(str(root))
    client.initialized = await client.initialize_session(types.InitializeParams(
        capabilities=caps, root_uri=uri, workspace_folders=[types.WorkspaceFolder(uri, root.name)]))
    return client


async def result(client, timeout: float = 60.0):
    """The next sweReasoner/result notification, as a dict."""
    async def wait():
        while not client.results:
            await asyncio.sleep(0.02)
        return client.results.pop(0)

    return _plain(await asyncio.wait_for(wait(), timeout))


async def solve(client, issue: str, uri: str | None = None) -> str:
    answer = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        "sweReasoner.solve", [{"issue": issue, **({"uri": uri} if uri else {})}]))
    return _plain(answer)["solveId"]


async def command(client, name: str, argument: dict | None = None):
    params = types.ExecuteCommandParams(name, [argument] if argument is not None else None)
    return _plain(await client.workspace_execute_command_async(params))


def _plain(obj):
    """pygls hands unknown structures over as named tuples: make them dicts and lists again."""
    if hasattr(obj, "_asdict"):
        return {k: _plain(v) for k, v in obj._asdict().items()}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


async def raw_request(client, method: str, params):
    """A request with params as given, not checked against the protocol's types."""
    import concurrent.futures
    import uuid

    msg_id = f"raw-{uuid.uuid4().hex}"
    future: concurrent.futures.Future = concurrent.futures.Future()
    client.protocol._request_futures[msg_id] = future
    client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return await asyncio.wait_for(asyncio.wrap_future(future), 10)
