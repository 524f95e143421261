"""The pygls language server: thin handlers over the solver (session.py) and the
converters (convert.py). docs/lsp.md is the protocol.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import JsonRPCNotification
from pygls.uris import from_fs_path, to_fs_path

from ..agent.config import load_settings
from ..agent.errors import SweReasonerError
from ..agent.progress import Event
from . import convert
from .session import Job, Solver, new_id

log = logging.getLogger(__name__)

REQUEST_FAILED = -32803  # LSP's RequestFailed
RESULT = "sweReasoner/result"


class _Protocol(LanguageServerProtocol):
    """pygls drops a request whose params do not fit the method's type, and the client
    waits forever; answer it with the JSON-RPC error instead."""

    def structure_message(self, data):
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if "id" not in data or "method" not in data:
                raise
            detail = f": {exc.__cause__}" if exc.__cause__ else ""
            self._send_response(data["id"], error=types.ResponseError(
                exc.code, f"{exc.message} for {data['method']}{detail}"))
            return JsonRPCNotification(method="$/sweReasoner/answered", jsonrpc="2.0", params=None)


class SweReasonerServer(LanguageServer):
    def __init__(self) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            ver = version("swe-reasoner")
        except PackageNotFoundError:
            ver = "dev"
        super().__init__("swe-reasoner", ver, protocol_cls=_Protocol)
        self.solver = Solver()

    def root_for(self, uri: str | None) -> Path:
        """The workspace folder holding `uri`, else the first one."""
        folders = [Path(p) for f in self.workspace.folders.values() if (p := to_fs_path(f.uri))]
        if self.workspace.root_path:
            folders.append(Path(self.workspace.root_path))
        if not folders:
            raise SweReasonerError("no workspace folder is open: open the repository's folder first")
        if uri and (path := to_fs_path(uri)):
            inside = [f for f in folders if Path(path).is_relative_to(f)]
            if inside:
                return max(inside, key=lambda f: len(f.parts))
        return folders[0]

    async def settings_for(self, root: Path):
        """The settings files', then the editor's `sweReasoner` section; and whether to trace."""
        settings = load_settings(root)
        config = None
        caps = self.client_capabilities.workspace
        if caps is not None and caps.configuration:
            items = [types.ConfigurationItem(scope_uri=from_fs_path(str(root)), section="sweReasoner")]
            try:
                config = (await self.workspace_configuration_async(types.ConfigurationParams(items)))[0]
            except Exception as exc:  # a client that fails the request: use the files' settings
                log.warning("workspace/configuration failed: %s", exc)
        settings, problems = convert.settings_from(config, settings)
        for problem in problems:
            self.window_show_message(types.ShowMessageParams(types.MessageType.Warning, f"swe-reasoner: {problem}"))
        trace = not (isinstance(config, dict) and config.get("trace") is False)
        return settings, trace

    def current_text(self, uri: str, path: Path) -> tuple[str | None, int | None]:
        """A file's text as the editor has it (open document) or as on disk; None if missing."""
        doc = self.workspace.text_documents.get(unquote(uri))
        if doc is not None:
            return doc.source, doc.version
        try:
            return path.read_text(encoding="utf-8", errors="surrogateescape"), None
        except FileNotFoundError:
            return None, None


server = SweReasonerServer()


def _argument(args: tuple, *required: str) -> dict:
    if len(args) != 1 or not isinstance(args[0], dict):
        raise JsonRpcInvalidParams("expected one argument, an object (see docs/lsp.md)")
    missing = [k for k in required if k not in args[0]]
    if missing:
        raise JsonRpcInvalidParams(f"missing argument field(s): {', '.join(missing)}")
    return args[0]


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix], resolve_provider=True))
def code_action(ls: SweReasonerServer, params: types.CodeActionParams):
    only = params.context.only
    if only and not any(types.CodeActionKind.QuickFix.value.startswith(k) for k in only):
        return None
    doc = ls.workspace.get_text_document(params.text_document.uri)
    try:
        source = doc.source
    except OSError:  # neither open nor on disk
        return None
    issue = convert.issue_text(source, params.range, doc.path, doc.language_id)
    return [convert.code_action(issue, params.text_document.uri)] if issue else None


@server.feature(types.CODE_ACTION_RESOLVE)
def code_action_resolve(ls: SweReasonerServer, action: types.CodeAction) -> types.CodeAction:
    if action.title != convert.TITLE or not isinstance(action.data, dict):
        raise JsonRpcInvalidParams("not a swe-reasoner code action")
    return convert.resolved(action)


@server.command("sweReasoner.solve")
async def solve_command(ls: SweReasonerServer, *args):
    arg = _argument(args, "issue")
    if not isinstance(arg["issue"], str) or not arg["issue"].strip():
        raise JsonRpcInvalidParams("the issue text is empty: select the issue's text first")
    try:
        ls.solver.check_idle()
        root = ls.root_for(arg.get("uri"))
        settings, trace = await ls.settings_for(root)
    except SweReasonerError as exc:
        raise JsonRpcException(str(exc), REQUEST_FAILED) from None
    solve_id = new_id()
    token = solve_id  # the progress token is the solve's id
    progress = ls.client_capabilities.window and ls.client_capabilities.window.work_done_progress
    if progress:
        await ls.work_done_progress.create_async(token)
    loop = asyncio.get_running_loop()
    shown = [""]

    def on_event(job: Job, event: Event) -> None:  # worker thread
        loop.call_soon_threadsafe(_report, ls, token if progress else None, event, shown)

    def on_done(job: Job) -> None:  # worker thread
        loop.call_soon_threadsafe(_finish, ls, token if progress else None, job)

    try:
        job = ls.solver.start(root, arg["issue"], settings, trace=trace, solve_id=solve_id,
                              on_event=on_event, on_done=on_done)
    except SweReasonerError as exc:
        if progress:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=str(exc)))
        raise JsonRpcException(str(exc), REQUEST_FAILED) from None
    if progress:
        ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(
            "swe-reasoner", message="Starting", percentage=0, cancellable=True))
    log.info("solve %s started in %s", job.id, job.root)
    return {"solveId": job.id}


def _report(ls: SweReasonerServer, token: str | None, event: Event, shown: list[str]) -> None:
    message, percent = convert.progress_report(event)
    if message == shown[0] or event.stage == "done":
        return
    shown[0] = message
    log.info("%s", message)
    if token:
        ls.work_done_progress.report(token, types.WorkDoneProgressReport(message=message, percentage=percent))


def _finish(ls: SweReasonerServer, token: str | None, job: Job) -> None:
    if token:
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=job.message))
    if job.trajectory:
        log.info("trajectory: %s", job.trajectory)
    ls.protocol.notify(RESULT, convert.result_payload(job))
    if job.status in ("no_patch", "cancelled", "error"):
        ls.solver.discard(job.id)


@server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
def progress_cancel(ls: SweReasonerServer, params: types.WorkDoneProgressCancelParams):
    if token := str(params.token):  # the token is the solve's id; another solve's token does nothing
        ls.solver.cancel(token)


@server.command("sweReasoner.cancel")
def cancel_command(ls: SweReasonerServer, *args):
    solve_id = _argument(args).get("solveId") if args else None
    return {"cancelled": ls.solver.cancel(solve_id)}


@server.command("sweReasoner.reject")
def reject_command(ls: SweReasonerServer, *args):
    return {"discarded": ls.solver.discard(str(_argument(args, "solveId")["solveId"]))}


@server.command("sweReasoner.apply")
async def apply_command(ls: SweReasonerServer, *args):
    arg = _argument(args, "solveId", "candidate")
    job = ls.solver.finished.get(str(arg["solveId"]))
    if job is None or job.result is None:
        return {"applied": False, "reason": "that solve is unknown or was already applied or rejected"}
    index = arg["candidate"]
    if not isinstance(index, int) or not 0 <= index < len(job.result.patches):
        raise JsonRpcInvalidParams(f"candidate must be an index below {len(job.result.patches)}")
    changes: list = []
    for path, (old, new) in job.result.patches[index].texts.items():
        file = job.root / path
        uri = from_fs_path(str(file))
        current, version = ls.current_text(uri, file)
        if (current or "") != old or (current is None and old):
            return {"applied": False, "reason": f"{path} changed since the solve (or has unsaved changes); "
                                                "solve again"}
        if current is None:
            changes.append(types.CreateFile(uri=uri, options=types.CreateFileOptions(ignore_if_exists=True)))
            edits = [types.TextEdit(types.Range(types.Position(0, 0), types.Position(0, 0)), new)]
        else:
            edits = convert.text_edits(old, new)
        changes.append(types.TextDocumentEdit(types.OptionalVersionedTextDocumentIdentifier(uri, version), edits))
    answer = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(
        types.WorkspaceEdit(document_changes=changes), label=f"swe-reasoner: candidate {index + 1}"))
    if not answer.applied:
        return {"applied": False, "reason": answer.failure_reason or "the editor did not apply the edit"}
    ls.solver.discard(job.id)
    log.info("solve %s: candidate %d applied", job.id, index + 1)
    return {"applied": True, "reason": ""}


@server.feature(types.SHUTDOWN)
def shutdown(ls: SweReasonerServer, params) -> None:
    ls.solver.close()


class _ClientLog(logging.Handler):
    """Our log records, as window/logMessage; safe from worker threads."""

    LEVELS = {logging.ERROR: types.MessageType.Error, logging.WARNING: types.MessageType.Warning,
              logging.INFO: types.MessageType.Info}

    def __init__(self, ls: SweReasonerServer, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.INFO)
        self.ls, self.loop = ls, loop

    def emit(self, record: logging.LogRecord) -> None:
        kind = self.LEVELS.get(record.levelno, types.MessageType.Log if record.levelno < logging.INFO
                               else types.MessageType.Error)
        params = types.LogMessageParams(kind, self.format(record))
        try:
            self.loop.call_soon_threadsafe(self.ls.window_log_message, params)
        except RuntimeError:  # the loop is closed: the server is stopping
            pass


@server.feature(types.INITIALIZED)
def initialized(ls: SweReasonerServer, params) -> None:
    handler = _ClientLog(ls, asyncio.get_running_loop())
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger("swe_reasoner")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def serve(tcp: str | None = None) -> None:
    if tcp:
        host, _, port = tcp.rpartition(":")
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        server.start_io(*_private_stdio())


def _private_stdio():
    """Move LSP's channel off file descriptors 0 and 1.

    llama-cpp-python points fd 1 at /dev/null while it loads a model, and native code
    may print to it: a message written then would be lost or corrupted. Child processes
    inherit fd 0 and could read the client's bytes. So the channel gets private
    descriptors, fd 1 becomes a copy of stderr, and fd 0 reads /dev/null.
    """
    import os
    import sys

    channel_in = os.fdopen(os.dup(0), "rb")
    channel_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = sys.stderr
    return channel_in, channel_out
