"""Language-server responsiveness: request latency while a solve runs, and cancel-to-idle time.

Usage: python benchmarks/lsp_bench.py [SOURCE] [--model smollm2-135m] [--cancels 5]
  SOURCE: a git repository, or a source folder or sdist (.tar.gz) turned into one
  (default: a small generated package). The solve uses a real model through llama.cpp.
Targets: p99 of a code action and of a cheap request (codeAction/resolve) at most
50 ms while a solve runs; a cancel takes effect (result sent, server idle) within 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

from index_bench import as_repo

ISSUE = """mean() returns the wrong value

`mean([2, 4])` gives 6.0 but it should be 3.0. The median is fine.
"""
SMALL = {
    "calc/__init__.py": "from .stats import mean, median\n",
    "calc/stats.py": "def mean(values):\n    return sum(values) / (len(values) - 1)\n\n\n"
                     "def median(values):\n    s = sorted(values)\n    return s[len(s) // 2]\n",
    "tests/test_stats.py": "from calc.stats import mean\n\n\ndef test_mean():\n    assert mean([2, 4]) == 3\n",
}


class Bench:
    def __init__(self, root: Path, settings: dict) -> None:
        self.root, self.settings = root, settings
        self.client = LanguageClient("lsp-bench", "1")
        self.results: asyncio.Queue = asyncio.Queue()
        self.reports: list[tuple[float, str]] = []
        self.token = None
        c = self.client
        c.feature("sweReasoner/result")(lambda params: self.results.put_nowait(time.perf_counter()))
        c.feature(types.WORKSPACE_CONFIGURATION)(lambda params: [self.settings])
        c.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)(lambda params: self._created(params))
        c.feature(types.PROGRESS)(lambda params: self._progress(params))
        c.feature(types.WINDOW_LOG_MESSAGE)(lambda params: None)

    def _created(self, params):
        self.token = params.token

    def _progress(self, params):
        value = params.value
        message = value.get("message", "") if isinstance(value, dict) else getattr(value, "message", "")
        self.reports.append((time.perf_counter(), message or ""))

    async def start(self) -> None:
        await self.client.start_io(sys.executable, "-m", "swe_reasoner.server")
        caps = types.ClientCapabilities(
            workspace=types.WorkspaceClientCapabilities(configuration=True),
            window=types.WindowClientCapabilities(work_done_progress=True))
        uri = from_fs_path(str(self.root))
        await self.client.initialize_async(types.InitializeParams(
            capabilities=caps, root_uri=uri, workspace_folders=[types.WorkspaceFolder(uri, self.root.name)]))
        self.client.initialized(types.InitializedParams())
        self.issue_uri = from_fs_path(str(self.root / "ISSUE.md"))
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(self.issue_uri, "markdown", 1, ISSUE)))

    async def code_action(self) -> float:
        start = time.perf_counter()
        actions = await self.client.text_document_code_action_async(types.CodeActionParams(
            types.TextDocumentIdentifier(self.issue_uri),
            types.Range(types.Position(0, 0), types.Position(3, 0)), types.CodeActionContext(diagnostics=[])))
        assert actions, "no code action"
        self.action = actions[0]
        return time.perf_counter() - start

    async def resolve(self) -> float:
        start = time.perf_counter()
        await self.client.code_action_resolve_async(self.action)
        return time.perf_counter() - start

    async def solve(self) -> None:
        self.reports.clear()
        await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams("sweReasoner.solve", [{"issue": ISSUE}]))

    async def latencies(self, until_result: bool, count: int) -> tuple[list[float], list[float]]:
        actions, resolves = [], []
        while len(actions) < count and not (until_result and not self.results.empty()):
            actions.append(await self.code_action())
            resolves.append(await self.resolve())
            await asyncio.sleep(0.01)
        return actions, resolves

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def summary(name: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"{name:32s} n={len(ms):4d}  p50 {statistics.median(ms):6.1f} ms  p99 {p99:6.1f} ms  max {ms[-1]:6.1f} ms"


async def run(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if args.source:
            root = as_repo(args.source.resolve(), Path(tmp))
        else:
            root = Path(tmp) / "calc"
            for rel, text in SMALL.items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(text)
            as_repo(root, Path(tmp))
        bench = Bench(root, {"model": args.model, "nCtx": args.n_ctx, "maxTokens": args.max_tokens, "trace": False})
        await bench.start()
        try:
            for _ in range(20):  # warm up the client and server paths
                await bench.code_action()
            idle_a, idle_r = await bench.latencies(False, 200)
            log("idle latencies measured; solving")
            await bench.solve()
            busy_a, busy_r = await bench.latencies(True, args.requests)
            await bench.client.workspace_execute_command_async(types.ExecuteCommandParams("sweReasoner.cancel", [{}]))
            await asyncio.wait_for(bench.results.get(), 30)
            log("latencies while solving measured")
            print(f"repository: {root.name}; model: {args.model}")
            print(summary("codeAction, idle", idle_a))
            print(summary("codeAction/resolve, idle", idle_r))
            print(summary("codeAction, while solving", busy_a))
            print(summary("codeAction/resolve, while solving", busy_r))
            cancels, stages = [], []
            rng = random.Random(0)
            for _ in range(args.cancels):
                await bench.solve()
                while not any(m.startswith(("Understanding", "Localizing", "Patching")) for _, m in bench.reports):
                    await asyncio.sleep(0.01)
                await asyncio.sleep(rng.uniform(0.0, 1.5))
                stages.append(bench.reports[-1][1].split(" · ")[0])
                sent = time.perf_counter()
                bench.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(bench.token))
                cancels.append(await asyncio.wait_for(bench.results.get(), 30) - sent)
                log(f"cancel {len(cancels)}: {cancels[-1] * 1000:.0f} ms during {stages[-1]}")
            print(summary("cancel to result (idle again)", cancels) + f"  during: {', '.join(stages)}")
        finally:
            await bench.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, nargs="?")
    parser.add_argument("--model", default="smollm2-135m", help="a GGUF file or smollm2-135m")
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--requests", type=int, default=300, help="requests sent while the solve runs (at most)")
    parser.add_argument("--cancels", type=int, default=5)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
