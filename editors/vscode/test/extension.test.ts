// The extension's wiring against the stub `vscode` and a fake language client.

import "./support/hook";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, test } from "node:test";
import { activateWith, ClientSetup, COMMANDS, Controller, deactivateController } from "../src/controller";
import { STALE_TEXT } from "../src/preview";
import { FakeClient, sampleResult } from "./support/fixtures";
import * as vscode from "./support/vscode-stub";

const packageJson = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8"));
const RESULT = "sweReasoner/result";

interface Harness {
  client: FakeClient;
  controller: Controller;
  setups: ClientSetup[];
  context: { subscriptions: { dispose(): unknown }[] };
}

async function activate(before: (client: FakeClient) => void = () => undefined): Promise<Harness> {
  vscode.reset();
  const client = new FakeClient();
  before(client);
  const setups: ClientSetup[] = [];
  const context = { subscriptions: [] as { dispose(): unknown }[] };
  const controller = await activateWith(context, (setup) => {
    setups.push(setup);
    return client;
  });
  return { client, controller, setups, context };
}

afterEach(async () => {
  await deactivateController();
});

function diffs(): { left: vscode.Uri; right: vscode.Uri; title: string }[] {
  return vscode.recorded.executed
    .filter((e) => e.command === "vscode.diff")
    .map((e) => ({ left: e.args[0] as vscode.Uri, right: e.args[1] as vscode.Uri, title: e.args[2] as string }));
}

function messages(level?: vscode.Level): vscode.MessageCall[] {
  return vscode.recorded.messages.filter((m) => level === undefined || m.level === level);
}

function provide(uri: vscode.Uri): string | undefined {
  return vscode.contentProviders.get(uri.scheme)?.provideTextDocumentContent(uri);
}

function statusItem(): vscode.FakeStatusBarItem {
  assert.equal(vscode.recorded.statusBarItems.length, 1);
  return vscode.recorded.statusBarItems[0];
}

/** Answers candidate notifications in order with `answers`, then dismisses. */
function answerCandidates(...answers: (string | undefined)[]): void {
  vscode.user.onMessage = (m) => (m.text.startsWith("swe-reasoner: candidate ") ? answers.shift() : undefined);
}

test("activate registers every contributed command, none of them a server command id", async () => {
  const { client } = await activate();
  const contributed: string[] = packageJson.contributes.commands.map((c: { command: string }) => c.command);
  assert.deepEqual([...vscode.registeredCommands.keys()].sort(), [...contributed].sort());
  for (const id of ["swe-reasoner.solve", "swe-reasoner.cancel", "swe-reasoner.accept", "swe-reasoner.reject", "swe-reasoner.nextCandidate", "swe-reasoner.showLog"]) {
    assert.ok(contributed.includes(id), id);
  }
  for (const id of contributed) {
    assert.ok(!id.startsWith("sweReasoner."), `${id} would collide with the languageclient's server commands`);
  }
  assert.equal(client.started, 1);
  assert.ok(vscode.contentProviders.has("swe-reasoner"));
});

test("package.json activates on the issue languages and on every command", () => {
  const events: string[] = packageJson.activationEvents;
  for (const lang of ["markdown", "plaintext", "python"]) {
    assert.ok(events.includes(`onLanguage:${lang}`), lang);
  }
  for (const c of packageJson.contributes.commands) {
    assert.ok(events.includes(`onCommand:${c.command}`), c.command);
    assert.equal(c.category, "swe-reasoner");
  }
  assert.equal(packageJson.main, "./dist/extension.js");
  assert.equal(packageJson.engines.vscode, "^1.82.0");
});

test("the server is started as <python> -m swe_reasoner.agent.cli serve over the file documents", async () => {
  const { setups, controller } = await activate(() => {
    vscode.settings.global.set("sweReasoner.python", "${workspaceFolder}/.venv/bin/python");
    vscode.settings.global.set("sweReasoner.serverArgs", ["--log-level", "debug"]);
  });
  assert.equal(setups.length, 1);
  const s = setups[0];
  assert.equal(s.command, "/repo/.venv/bin/python");
  assert.deepEqual(s.args, ["-m", "swe_reasoner.agent.cli", "serve", "--log-level", "debug"]);
  assert.equal(s.cwd, "/repo");
  assert.deepEqual(s.documentSelector, [
    { scheme: "file", language: "markdown" },
    { scheme: "file", language: "plaintext" },
    { scheme: "file", language: "python" },
  ]);
  assert.equal(s.configurationSection, "sweReasoner");
  assert.equal((s.outputChannel as unknown as vscode.FakeOutputChannel).name, "swe-reasoner");
  assert.equal(s.outputChannel, controller.output);
});

test("a result opens the first file's diff, current file against the proposed text", async () => {
  const { client, controller } = await activate();
  client.deliver(RESULT, sampleResult());
  await controller.whenIdle();

  const [d] = diffs();
  assert.equal(diffs().length, 1);
  assert.equal(d.left.toString(), "file:///repo/calc/stats.py");
  assert.equal(d.right.scheme, "swe-reasoner");
  assert.equal(d.right.path, "/calc/stats.py");
  assert.equal(d.right.query, "kind=proposed&solve=3f2a9c&candidate=0&file=0");
  assert.equal(d.title, "calc/stats.py ↔ swe-reasoner candidate 1/2");
  assert.equal(provide(d.right), "def mean(xs):\n    return sum(xs) / len(xs)\n");

  const notice = messages("info").find((m) => m.text.startsWith("swe-reasoner: candidate"));
  assert.deepEqual(notice, {
    level: "info",
    text: "swe-reasoner: candidate 1/2 — 2 patches (calc/stats.py)",
    items: ["Accept", "Reject", "Next candidate", "Evidence"],
  });
  assert.equal(statusItem().text, "$(diff) swe-reasoner: 2 candidates ready");
  assert.equal(statusItem().command, COMMANDS.showCandidate);
  assert.ok(vscode.recorded.executed.some((e) => e.command === "setContext" && e.args[0] === "sweReasoner.hasCandidate" && e.args[1] === true));
});

test("a single candidate offers no Next button", async () => {
  const { client, controller } = await activate();
  const raw = sampleResult({ message: "1 patch" });
  raw.candidates = [(raw.candidates as unknown[])[0]];
  client.deliver(RESULT, raw);
  await controller.whenIdle();
  assert.deepEqual(messages("info")[0].items, ["Accept", "Reject", "Evidence"]);
  await vscode.commands.executeCommand(COMMANDS.nextCandidate);
  assert.equal(messages("info").at(-1)?.text, "swe-reasoner: this solve has only one candidate.");
  assert.equal(diffs().length, 1);
});

test("Accept sends sweReasoner.apply with the solve and candidate; success closes the diff", async () => {
  const { client, controller } = await activate((c) => {
    c.respond = (_method, params) => (params.command === "sweReasoner.apply" ? { applied: true, reason: "" } : null);
  });
  answerCandidates("Accept");
  client.deliver(RESULT, sampleResult());
  await controller.whenIdle();

  assert.deepEqual(client.commands(), [{ command: "sweReasoner.apply", argument: { solveId: "3f2a9c", candidate: 0 } }]);
  assert.equal(vscode.recorded.closedTabs.length, 1);
  assert.ok(vscode.recorded.closedTabs[0].input instanceof vscode.TabInputTextDiff);
  assert.equal(vscode.window.tabGroups.all[0].tabs.length, 0);
  assert.equal(messages("info").at(-1)?.text, "swe-reasoner: applied candidate 1 (calc/stats.py). Review the changes and save.");
  assert.equal(statusItem().text, "swe-reasoner: applied candidate 1");
  assert.equal(messages("error").length, 0);

  // The result is gone: nothing left to accept, and its previews say so.
  await vscode.commands.executeCommand(COMMANDS.accept);
  assert.equal(messages("info").at(-1)?.text, "swe-reasoner: there is no candidate to accept.");
  assert.equal(client.commands().length, 1);
  assert.equal(provide(diffs()[0].right), STALE_TEXT);
});

test("applied:false shows the reason as an error and keeps the candidate", async () => {
  const { client, controller } = await activate((c) => {
    c.respond = () => ({ applied: false, reason: "calc/stats.py changed since the solve" });
  });
  answerCandidates("Next candidate", "Accept");
  client.deliver(RESULT, sampleResult());
  await controller.whenIdle();

  assert.deepEqual(client.commands(), [{ command: "sweReasoner.apply", argument: { solveId: "3f2a9c", candidate: 1 } }]);
  assert.deepEqual(
    messages("error").map((m) => m.text),
    ["swe-reasoner: candidate 2 was not applied: calc/stats.py changed since the solve"],
  );
  assert.equal(vscode.recorded.closedTabs.length, 0);
  assert.equal(statusItem().command, COMMANDS.showCandidate);

  // Still there: accepting again asks the server again, for the same candidate.
  await vscode.commands.executeCommand(COMMANDS.accept);
  assert.deepEqual(client.commands()[1], { command: "sweReasoner.apply", argument: { solveId: "3f2a9c", candidate: 1 } });
});

test("an apply request that fails shows the server's error", async () => {
  const { client, controller } = await activate((c) => {
    c.respond = () => {
      throw { code: -32602, message: "unknown solve 3f2a9c" };
    };
  });
  answerCandidates("Accept");
  client.deliver(RESULT, sampleResult());
  await controller.whenIdle();
  assert.deepEqual(messages("error").map((m) => m.text), ["swe-reasoner: could not apply candidate 1: unknown solve 3f2a9c"]);
});

test("Next candidate cycles; Other files… opens another file's diff, a new file against an empty document", async () => {
  const { client, controller } = await activate();
  answerCandidates("Next candidate", "Other files…", undefined);
  vscode.user.onQuickPick = ({ items }) => items.find((i: { label: string }) => i.label === "tests/test_mean.py");
  client.deliver(RESULT, sampleResult());
  await controller.whenIdle();

  const ds = diffs();
  assert.equal(ds.length, 3);
  assert.equal(ds[0].right.query, "kind=proposed&solve=3f2a9c&candidate=0&file=0");
  assert.equal(ds[1].left.toString(), "file:///repo/calc/stats.py");
  assert.equal(ds[1].right.query, "kind=proposed&solve=3f2a9c&candidate=1&file=0");
  assert.equal(provide(ds[1].right), "def mean(xs):\n    n = len(xs)\n    return sum(xs) / n\n");
  assert.equal(ds[2].left.scheme, "swe-reasoner");
  assert.equal(ds[2].left.query, "kind=empty&solve=3f2a9c&candidate=1&file=1");
  assert.equal(provide(ds[2].left), "");
  assert.equal(ds[2].right.path, "/tests/test_mean.py");
  assert.equal(ds[2].title, "tests/test_mean.py (new file) ↔ swe-reasoner candidate 2/2");

  const notices = messages("info").filter((m) => m.text.startsWith("swe-reasoner: candidate"));
  assert.deepEqual(
    notices.map((m) => m.text),
    [
      "swe-reasoner: candidate 1/2 — 2 patches (calc/stats.py)",
      "swe-reasoner: candidate 2/2 — 2 patches (2 files: calc/stats.py, tests/test_mean.py)",
      "swe-reasoner: candidate 2/2 — 2 patches (2 files: calc/stats.py, tests/test_mean.py)",
    ],
  );
  assert.deepEqual(notices[1].items, ["Accept", "Reject", "Next candidate", "Other files…", "Evidence"]);
  assert.deepEqual(
    vscode.recorded.quickPicks[0].items.map((i: { label: string; description: string }) => `${i.label} ${i.description}`),
    ["calc/stats.py modified", "tests/test_mean.py new file"],
  );

  // The command wraps around to the first candidate.
  await vscode.commands.executeCommand(COMMANDS.nextCandidate);
  assert.equal(diffs().at(-1)?.right.query, "kind=proposed&solve=3f2a9c&candidate=0&file=0");
});

test("Evidence opens a read-only Markdown document, then offers the buttons again", async () => {
  const { client, controller } = await activate();
  answerCandidates("Evidence", undefined);
  client.deliver(RESULT, sampleResult());
  await controller.whenIdle();

  assert.equal(vscode.recorded.shownDocuments.length, 1);
  const { document, options } = vscode.recorded.shownDocuments[0];
  assert.equal(document.uri.scheme, "swe-reasoner");
  assert.equal(document.uri.path, "/evidence-candidate-1.md");
  assert.equal(document.languageId, "markdown");
  assert.match(document.text, /`calc\/stats.py` · `mean` — wrong divisor/);
  assert.match(document.text, /\| prm \| 0\.8 \|/);
  assert.match(document.text, /Not run for this candidate\./);
  assert.match(document.text, /trajectories\/3f2a9c\.jsonl/);
  assert.equal(options.viewColumn, vscode.ViewColumn.Beside);
  assert.equal(messages("info").filter((m) => m.text.startsWith("swe-reasoner: candidate 1/2")).length, 2);
});

test("Reject sends sweReasoner.reject, closes the previews and forgets the result", async () => {
  const { client, controller } = await activate((c) => {
    c.respond = () => ({ discarded: true });
  });
  answerCandidates("Evidence", "Reject");
  client.deliver(RESULT, sampleResult());
  await controller.whenIdle();

  assert.deepEqual(client.commands(), [{ command: "sweReasoner.reject", argument: { solveId: "3f2a9c" } }]);
  assert.equal(vscode.recorded.closedTabs.length, 2); // the diff and the evidence
  assert.equal(vscode.window.tabGroups.all[0].tabs.length, 0);
  assert.equal(statusItem().text, "swe-reasoner: rejected");
  assert.equal(statusItem().command, COMMANDS.showLog);
  await vscode.commands.executeCommand(COMMANDS.reject);
  assert.equal(messages("info").at(-1)?.text, "swe-reasoner: there is no result to reject.");
  assert.equal(client.commands().length, 1);
});

test("a newer result discards the older one, and the older notification no longer acts", async () => {
  const { client, controller } = await activate((c) => {
    c.respond = (_m, params) => (params.command === "sweReasoner.apply" ? { applied: true, reason: "" } : { discarded: true });
  });
  let answerFirst: (v: string | undefined) => void = () => undefined;
  vscode.user.onMessage = (m) => {
    if (m.text.startsWith("swe-reasoner: candidate 1/2")) {
      return new Promise((resolve) => {
        answerFirst = resolve;
      });
    }
    return undefined;
  };
  client.deliver(RESULT, sampleResult());
  await new Promise((r) => setImmediate(r));
  const raw = sampleResult({ solveId: "b7", message: "1 patch" });
  raw.candidates = [(raw.candidates as unknown[])[1]];
  client.deliver(RESULT, raw);
  await new Promise((r) => setImmediate(r));
  answerFirst("Accept");
  await controller.whenIdle();

  assert.deepEqual(client.commands(), [{ command: "sweReasoner.reject", argument: { solveId: "3f2a9c" } }]);
  assert.equal(diffs().at(-1)?.right.query, "kind=proposed&solve=b7&candidate=0&file=0");
  // The first solve's diff was closed when the second result came.
  assert.ok(vscode.recorded.closedTabs.some((t) => (t.input as vscode.TabInputTextDiff).modified.query.includes("solve=3f2a9c")));
});

test("a later solve that is cancelled leaves the earlier result reviewable", async () => {
  const { client, controller } = await activate((c) => {
    c.respond = () => ({ applied: true, reason: "" });
  });
  client.deliver(RESULT, sampleResult());
  await controller.whenIdle();
  client.deliver(RESULT, { solveId: "later", status: "cancelled", message: "cancelled", candidates: [] });
  await controller.whenIdle();
  assert.equal(statusItem().text, "$(diff) swe-reasoner: 2 candidates ready");
  assert.equal(statusItem().command, COMMANDS.showCandidate);
  await vscode.commands.executeCommand(COMMANDS.accept);
  assert.deepEqual(client.commands(), [{ command: "sweReasoner.apply", argument: { solveId: "3f2a9c", candidate: 0 } }]);
});

test("no patch, cancelled and failed solves are announced with the server's message", async () => {
  const { client, controller } = await activate();
  vscode.user.onMessage = (m) => (m.items.includes("Show Log") ? "Show Log" : undefined);
  client.deliver(RESULT, { solveId: "a", status: "no_patch", message: "no location found", trajectory: "/t/a.jsonl", candidates: [] });
  await controller.whenIdle();
  assert.equal(statusItem().text, "swe-reasoner: no patch");
  client.deliver(RESULT, { solveId: "b", status: "cancelled", message: "cancelled by the user", trajectory: null, candidates: [] });
  await controller.whenIdle();
  client.deliver(RESULT, { solveId: "c", status: "error", message: "could not load /m.gguf: set sweReasoner.model", trajectory: null, candidates: [] });
  await controller.whenIdle();

  assert.deepEqual(
    vscode.recorded.messages.map((m) => [m.level, m.text, m.items]),
    [
      ["info", "swe-reasoner: no patch — no location found", ["Open Trajectory"]],
      ["warning", "swe-reasoner: cancelled — cancelled by the user", []],
      ["error", "swe-reasoner: the solve failed — could not load /m.gguf: set sweReasoner.model", ["Show Log"]],
    ],
  );
  assert.equal(diffs().length, 0);
  const log = controller.output as unknown as vscode.FakeOutputChannel;
  assert.ok(log.lines.some((l) => l.includes("result c: error — could not load /m.gguf")));
  assert.equal(log.shown, 1);
  assert.equal(statusItem().text, "swe-reasoner: failed");
});

test("a malformed result is reported, not thrown", async () => {
  const { client, controller } = await activate();
  client.deliver(RESULT, { status: "patched" });
  await controller.whenIdle();
  assert.deepEqual(messages("error").map((m) => m.text), [
    "swe-reasoner: the server sent a result this extension cannot read (sweReasoner/result: no solveId).",
  ]);
});

test("Solve issue sends the selected text and the document's URI", async () => {
  const { client } = await activate((c) => {
    c.respond = () => ({ solveId: "s1" });
  });
  const text = "# Bug\nmean() divides by n-1\n";
  vscode.openEditor(vscode.Uri.parse("file:///repo/ISSUE.md"), text, 6, text.length);
  await vscode.commands.executeCommand(COMMANDS.solve);

  assert.deepEqual(client.commands(), [
    { command: "sweReasoner.solve", argument: { issue: "mean() divides by n-1", uri: "file:///repo/ISSUE.md" } },
  ]);
  assert.equal(vscode.recorded.inputBoxes.length, 0);
  assert.equal(statusItem().text, "$(sync~spin) swe-reasoner: solving…");
  assert.equal(statusItem().command, COMMANDS.cancel);
  assert.equal(statusItem().visible, true);
});

test("Solve issue without a selection asks for the issue text", async () => {
  const { client } = await activate((c) => {
    c.respond = () => ({ solveId: "s2" });
  });
  vscode.openEditor(vscode.Uri.parse("file:///repo/calc/stats.py"), "def mean(xs): ...\n", 3, 3, "python");
  vscode.user.onInputBox = () => "mean([]) raises ZeroDivisionError";
  await vscode.commands.executeCommand(COMMANDS.solve);
  assert.equal(vscode.recorded.inputBoxes.length, 1);
  assert.equal(vscode.recorded.inputBoxes[0].validateInput("  "), "Describe the issue to solve.");
  assert.deepEqual(client.commands(), [
    { command: "sweReasoner.solve", argument: { issue: "mean([]) raises ZeroDivisionError", uri: "file:///repo/calc/stats.py" } },
  ]);

  // Escape in the input box: nothing is sent.
  vscode.user.onInputBox = () => undefined;
  vscode.window.activeTextEditor = undefined;
  await vscode.commands.executeCommand(COMMANDS.solve);
  assert.equal(vscode.recorded.inputBoxes.length, 2);
  assert.equal(client.commands().length, 1);
});

test("a refused solve shows the server's message and leaves no running state", async () => {
  const { client } = await activate((c) => {
    c.respond = () => {
      throw { code: -32603, message: "not a git repository: /repo" };
    };
  });
  vscode.user.onInputBox = () => "bug";
  await vscode.commands.executeCommand(COMMANDS.solve);
  assert.equal(client.commands().length, 1);
  assert.deepEqual(messages("error").map((m) => m.text), ["swe-reasoner: not a git repository: /repo"]);
  assert.equal(statusItem().visible, false);
});

test("progress shows in the status bar; clicking it cancels the solve", async () => {
  const { client, controller, setups } = await activate((c) => {
    c.respond = (_m, params) => (params.command === "sweReasoner.solve" ? { solveId: "s1" } : { cancelled: true });
  });
  vscode.user.onInputBox = () => "bug";
  await vscode.commands.executeCommand(COMMANDS.solve);
  const hooks = setups[0].hooks;
  const forwarded: string[] = [];
  const progress = (value: Parameters<typeof hooks.workDoneProgress>[1]) =>
    hooks.workDoneProgress("tok-1", value, () => forwarded.push(value.kind));

  progress({ kind: "begin", title: "swe-reasoner", message: "Understanding", percentage: 0, cancellable: true });
  assert.equal(statusItem().text, "$(sync~spin) swe-reasoner: Understanding (0%)");
  progress({ kind: "report", message: "Localizing · candidate 1/2 · round 2", percentage: 40 });
  assert.equal(statusItem().text, "$(sync~spin) swe-reasoner: Localizing · candidate 1/2 · round 2 (40%)");
  hooks.workDoneProgress("other-token", { kind: "report", message: "unrelated" }, () => undefined);
  assert.equal(statusItem().text, "$(sync~spin) swe-reasoner: Localizing · candidate 1/2 · round 2 (40%)");

  assert.equal(statusItem().command, COMMANDS.cancel);
  await vscode.commands.executeCommand(statusItem().command!);
  assert.deepEqual(client.commands()[1], { command: "sweReasoner.cancel", argument: { solveId: "s1" } });
  assert.equal(statusItem().text, "$(sync~spin) swe-reasoner: cancelling…");

  progress({ kind: "end" });
  assert.deepEqual(forwarded, ["end"]); // begin/report stay out of the languageclient's own status entry
  client.deliver(RESULT, { solveId: "s1", status: "cancelled", message: "cancelled", candidates: [] });
  await controller.whenIdle();
  assert.equal(statusItem().text, "swe-reasoner: cancelled");
  assert.equal(statusItem().command, COMMANDS.showLog);
});

test("cancel with nothing running says so", async () => {
  const { client } = await activate((c) => {
    c.respond = () => ({ cancelled: false });
  });
  await vscode.commands.executeCommand(COMMANDS.cancel);
  assert.deepEqual(client.commands(), [{ command: "sweReasoner.cancel", argument: {} }]);
  assert.equal(messages("info").at(-1)?.text, "swe-reasoner: no solve is running.");
});

test("the code action's sweReasoner.solve is sent by the extension, which learns its solveId", async () => {
  const { client, setups } = await activate((c) => {
    c.respond = (_m, params) => (params.command === "sweReasoner.solve" ? { solveId: "ca-1" } : { cancelled: true });
  });
  const hooks = setups[0].hooks;
  const passed: unknown[] = [];
  const answer = await hooks.executeCommand("sweReasoner.solve", [{ issue: "from the code action", uri: "file:///repo/ISSUE.md" }], (c, a) => {
    passed.push([c, a]);
    return undefined;
  });
  assert.deepEqual(answer, { solveId: "ca-1" });
  assert.equal(passed.length, 0);
  assert.equal(statusItem().command, COMMANDS.cancel);
  await vscode.commands.executeCommand(COMMANDS.cancel);
  assert.deepEqual(client.commands().at(-1), { command: "sweReasoner.cancel", argument: { solveId: "ca-1" } });

  // An argument of another shape is sent unchanged.
  client.deliver(RESULT, { solveId: "ca-1", status: "cancelled", message: "", candidates: [] });
  await hooks.executeCommand("sweReasoner.solve", ["plain issue text"], () => undefined);
  assert.deepEqual(client.requests.at(-1), {
    method: "workspace/executeCommand",
    params: { command: "sweReasoner.solve", arguments: ["plain issue text"] },
  });

  // Other server commands go the languageclient's way.
  hooks.executeCommand("sweReasoner.reject", [{ solveId: "x" }], (c, a) => {
    passed.push([c, a]);
    return undefined;
  });
  assert.deepEqual(passed, [["sweReasoner.reject", [{ solveId: "x" }]]]);
});

test("workspace/configuration gets only explicit, valid server settings", async () => {
  const { setups, client } = await activate(() => {
    vscode.settings.defaults.set("sweReasoner.budget", 1);
    vscode.settings.global.set("sweReasoner.python", "/usr/bin/python3");
    vscode.settings.global.set("sweReasoner.budget", 4);
    vscode.settings.workspace.set("sweReasoner.nCtx", 0);
    vscode.settings.folder.set("sweReasoner.model", "smollm2-135m");
  });
  const hooks = setups[0].hooks;
  const next = async (items: unknown[]) => items.map(() => ({ tabSize: 4 }));
  const answer = await hooks.configuration([{ section: "sweReasoner", scopeUri: "file:///repo/a.py" }, { section: "editor" }], next);
  assert.deepEqual(answer, [{ model: "smollm2-135m", budget: 4 }, { tabSize: 4 }]);
  await hooks.configuration([{ section: "sweReasoner" }], next);
  assert.deepEqual(messages("warning").map((m) => m.text), ["swe-reasoner: sweReasoner.nCtx must be at least 1; ignoring 0"]);

  await hooks.didChangeConfiguration();
  assert.deepEqual(client.notifications, [
    { method: "workspace/didChangeConfiguration", params: { settings: { sweReasoner: { model: "smollm2-135m", budget: 4 } } } },
  ]);
});

test("a server that does not start: the error names the command and offers the settings", async () => {
  const { client, controller } = await activate((c) => {
    c.startError = new Error("spawn python3 ENOENT");
    vscode.user.onMessage = (m) => (m.items.includes("Open Settings") ? "Open Settings" : undefined);
  });
  await controller.whenIdle();
  assert.deepEqual(messages("error"), [
    {
      level: "error",
      text:
        "swe-reasoner: could not start the server (python3 -m swe_reasoner.agent.cli serve): spawn python3 ENOENT. " +
        "Set sweReasoner.python to a Python interpreter that has swe-reasoner installed.",
      items: ["Open Settings", "Show Log"],
    },
  ]);
  assert.ok(
    vscode.recorded.executed.some((e) => e.command === "workbench.action.openSettings" && e.args[0] === "sweReasoner.python"),
  );

  // Without a server, commands that need it say so and send nothing.
  vscode.recorded.messages.length = 0;
  vscode.user.onInputBox = () => "bug";
  await vscode.commands.executeCommand(COMMANDS.solve);
  await controller.whenIdle();
  assert.deepEqual(messages("error").map((m) => [m.text, m.items]), [
    ["swe-reasoner: the server is not running. Check sweReasoner.python, then restart it.", ["Restart Server", "Show Log"]],
  ]);
  assert.equal(client.requests.length, 0);

  // Restart Server tries again.
  client.startError = undefined;
  vscode.user.onMessage = (m) => (m.items.includes("Restart Server") ? "Restart Server" : undefined);
  await vscode.commands.executeCommand(COMMANDS.cancel);
  await controller.whenIdle();
  assert.equal(client.started, 2);
  await vscode.commands.executeCommand(COMMANDS.solve);
  assert.deepEqual(client.commands(), [{ command: "sweReasoner.solve", argument: { issue: "bug" } }]);
});

test("changing sweReasoner.python offers a restart with the new interpreter", async () => {
  const { client, controller, setups } = await activate();
  vscode.user.onMessage = (m) => (m.items.includes("Restart Server") ? "Restart Server" : undefined);
  vscode.settings.global.set("sweReasoner.python", "/opt/swe/bin/python");
  vscode.changeSettings(["sweReasoner.python"]);
  await controller.whenIdle();
  assert.equal(client.stopped, 1);
  assert.equal(client.started, 2);
  assert.equal(setups[1].command, "/opt/swe/bin/python");

  // A server setting does not restart anything; an invalid one is reported.
  vscode.settings.global.set("sweReasoner.temperature", -1);
  vscode.changeSettings(["sweReasoner.temperature"]);
  await controller.whenIdle();
  assert.equal(client.started, 2);
  assert.deepEqual(messages("warning").map((m) => m.text), ["swe-reasoner: sweReasoner.temperature must be at least 0; ignoring -1"]);
});

test("trusting the workspace offers a restart when it sets the interpreter", async () => {
  const { client, controller, setups } = await activate(() => {
    vscode.workspace.isTrusted = false;
    vscode.settings.workspace.set("sweReasoner.python", "/repo/.venv/bin/python");
    vscode.settings.workspace.set("sweReasoner.model", "/repo/model.gguf");
  });
  const hooks = setups[0].hooks;
  assert.deepEqual(await hooks.configuration([{ section: "sweReasoner" }], async () => []), [{}]);
  vscode.user.onMessage = (m) => (m.items.includes("Restart Server") ? "Restart Server" : undefined);
  vscode.grantTrust();
  await controller.whenIdle();
  assert.equal(client.started, 2);
  assert.deepEqual(await hooks.configuration([{ section: "sweReasoner" }], async () => []), [{ model: "/repo/model.gguf" }]);
});

test("Show log reveals the output channel; deactivate stops the server", async () => {
  const { client, controller } = await activate();
  await vscode.commands.executeCommand(COMMANDS.showLog);
  assert.equal((controller.output as unknown as vscode.FakeOutputChannel).shown, 1);
  await deactivateController();
  assert.equal(client.stopped, 1);
  assert.equal(vscode.registeredCommands.size, 0);
});
