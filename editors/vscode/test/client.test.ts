// The real LanguageClient built by client.ts (loaded against the stub
// `vscode`; the server is never started): its options and middleware must
// reach the controller's hooks.

import "./support/hook";
import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { createLanguageClient } from "../src/client";
import { ClientHooks, ClientSetup, DOCUMENT_SELECTOR } from "../src/controller";
import * as vscode from "./support/vscode-stub";

/* The languageclient's options, as far as this test reads them. */
interface Options {
  documentSelector: unknown;
  revealOutputChannelOn: number;
  synchronize: { configurationSection: string };
  middleware: {
    handleWorkDoneProgress(token: string, params: unknown, next: (token: string, params: unknown) => void): void;
    executeCommand(command: string, args: unknown[], next: (command: string, args: unknown[]) => unknown): unknown;
    workspace: {
      configuration(params: { items: unknown[] }, token: unknown, next: (params: { items: unknown[] }, token: unknown) => unknown): Promise<unknown[]>;
      didChangeConfiguration(sections: string[] | undefined, next: unknown): Promise<void>;
    };
  };
}

function build() {
  vscode.reset();
  const calls: string[] = [];
  const hooks: ClientHooks = {
    workDoneProgress: (token, value, next) => {
      calls.push(`progress ${token} ${value.kind}`);
      next();
    },
    executeCommand: (command, args, next) => {
      calls.push(`command ${command}`);
      return next(command, args);
    },
    configuration: async (items, next) => {
      calls.push(`configuration ${items.length}`);
      return next(items);
    },
    didChangeConfiguration: async () => {
      calls.push("didChangeConfiguration");
    },
  };
  const output = vscode.window.createOutputChannel("swe-reasoner");
  const setup: ClientSetup = {
    id: "swe-reasoner",
    name: "swe-reasoner",
    command: "/venv/bin/python",
    args: ["-m", "swe_reasoner.agent.cli", "serve"],
    cwd: "/repo",
    documentSelector: DOCUMENT_SELECTOR,
    configurationSection: "sweReasoner",
    outputChannel: output as never,
    hooks,
  };
  const client = createLanguageClient(setup) as unknown as { clientOptions: Options; outputChannel: unknown; _serverOptions: unknown };
  return { client, calls, output };
}

test("the LanguageClient runs the configured command over stdio", () => {
  const { client, output } = build();
  assert.deepEqual(client._serverOptions, {
    command: "/venv/bin/python",
    args: ["-m", "swe_reasoner.agent.cli", "serve"],
    transport: 0, // TransportKind.stdio
    options: { cwd: "/repo" },
  });
  const options = client.clientOptions;
  assert.deepEqual(options.documentSelector, DOCUMENT_SELECTOR);
  assert.equal(options.synchronize.configurationSection, "sweReasoner");
  assert.equal(client.outputChannel, output);
  assert.equal(options.revealOutputChannelOn, 4); // RevealOutputChannelOn.Never
});

test("the middleware hands progress, commands and configuration to the hooks", async () => {
  const { client, calls } = build();
  const mw = client.clientOptions.middleware;
  const forwarded: unknown[] = [];
  mw.handleWorkDoneProgress("t1", { kind: "report", message: "Patching" }, (token, params) => forwarded.push([token, params]));
  assert.deepEqual(forwarded, [["t1", { kind: "report", message: "Patching" }]]);

  const result = mw.executeCommand("sweReasoner.cancel", [{}], (command, args) => ({ sent: command, args }));
  assert.deepEqual(result, { sent: "sweReasoner.cancel", args: [{}] });

  const answers = await mw.workspace.configuration({ items: [{ section: "sweReasoner" }] }, undefined, (params) =>
    params.items.map(() => ({ budget: 2 })),
  );
  assert.deepEqual(answers, [{ budget: 2 }]);
  await assert.rejects(
    mw.workspace.configuration({ items: [{ section: "x" }] }, undefined, () => new Error("refused")),
    /refused/,
  );
  await mw.workspace.didChangeConfiguration(["sweReasoner"], () => undefined);
  assert.deepEqual(calls, ["progress t1 report", "command sweReasoner.cancel", "configuration 1", "configuration 1", "didChangeConfiguration"]);
});

test("the bundle loads and exports activate and deactivate", () => {
  // out/test/ -> dist/extension.js, built by `npm run build` before the tests.
  const bundle = require(path.join(__dirname, "..", "..", "dist", "extension.js")) as Record<string, unknown>;
  assert.equal(typeof bundle.activate, "function");
  assert.equal(typeof bundle.deactivate, "function");
});
