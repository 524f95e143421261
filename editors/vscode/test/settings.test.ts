import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import {
  CLIENT_SETTINGS,
  expandPath,
  explicitValue,
  InspectedValue,
  RESTRICTED_SERVER_SETTINGS,
  SERVER_SETTINGS,
  serverCommand,
  serverSettings,
  settingProblem,
} from "../src/settings";

// out/test/ -> the package root
const packageJson = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8"));

function inspector(values: Record<string, InspectedValue>) {
  return (key: string) => values[key];
}

test("server command: default interpreter, module and extra args", () => {
  assert.deepEqual(serverCommand(undefined, undefined), {
    command: "python3",
    args: ["-m", "swe_reasoner.agent.cli", "serve"],
    problems: [],
  });
  assert.deepEqual(serverCommand("  ", ["--tcp", "127.0.0.1:2087"]), {
    command: "python3",
    args: ["-m", "swe_reasoner.agent.cli", "serve", "--tcp", "127.0.0.1:2087"],
    problems: [],
  });
});

test("server command: ~ and ${workspaceFolder} are expanded", () => {
  const env = { home: "/home/u", workspaceFolder: "/repo" };
  assert.equal(serverCommand("${workspaceFolder}/.venv/bin/python", [], env).command, "/repo/.venv/bin/python");
  assert.equal(serverCommand("~/venvs/swe/bin/python", [], env).command, "/home/u/venvs/swe/bin/python");
  assert.deepEqual(serverCommand("python3", ["--log-file=${userHome}/swe.log"], env).args.slice(3), ["--log-file=/home/u/swe.log"]);
  assert.equal(expandPath("a~b", env), "a~b");
  assert.equal(expandPath("~", env), "/home/u");
});

test("server command: wrong types are reported and skipped", () => {
  const cmd = serverCommand(3, ["--x", 4, "--y"]);
  assert.equal(cmd.command, "python3");
  assert.deepEqual(cmd.args.slice(3), ["--x", "--y"]);
  assert.deepEqual(cmd.problems, ["sweReasoner.python must be a string; using python3", "sweReasoner.serverArgs[1] must be a string; ignoring it"]);
  assert.deepEqual(serverCommand("py", "--x").problems, ["sweReasoner.serverArgs must be a list of strings; ignoring it"]);
});

test("setting validation follows the documented types", () => {
  const spec = (key: string) => SERVER_SETTINGS.find((s) => s.key === key)!;
  assert.equal(settingProblem(spec("budget"), 4), undefined);
  assert.equal(settingProblem(spec("budget"), 0), "sweReasoner.budget must be at least 1");
  assert.equal(settingProblem(spec("budget"), 1.5), "sweReasoner.budget must be a whole number");
  assert.equal(settingProblem(spec("budget"), "4"), "sweReasoner.budget must be a number");
  assert.equal(settingProblem(spec("temperature"), 0.2), undefined);
  assert.equal(settingProblem(spec("temperature"), -0.1), "sweReasoner.temperature must be at least 0");
  assert.equal(settingProblem(spec("nGpuLayers"), -1), undefined);
  assert.equal(settingProblem(spec("nGpuLayers"), -2), "sweReasoner.nGpuLayers must be at least -1");
  assert.equal(settingProblem(spec("think"), "yes"), "sweReasoner.think must be true or false");
  assert.equal(settingProblem(spec("model"), 3), "sweReasoner.model must be a string");
  assert.equal(settingProblem(spec("nCtx"), Number.NaN), "sweReasoner.nCtx must be a number");
  assert.equal(settingProblem(spec("ormBeta"), 0.5), undefined);
  assert.equal(settingProblem(spec("ormBeta"), 0), "sweReasoner.ormBeta must be greater than 0");
  assert.equal(settingProblem(spec("adaptive"), "true"), "sweReasoner.adaptive must be true or false");
});

test("a string setting with a list of values accepts only those", () => {
  const spec = (key: string) => SERVER_SETTINGS.find((s) => s.key === key)!;
  for (const value of ["exec", "orm-exec", "voting", "dev-search"]) {
    assert.equal(settingProblem(spec("strategy"), value), undefined, value);
  }
  assert.equal(settingProblem(spec("strategy"), "beam"), "sweReasoner.strategy must be one of exec, orm-exec, voting, dev-search");
  assert.equal(settingProblem(spec("strategy"), 2), "sweReasoner.strategy must be a string");
  assert.equal(settingProblem(spec("sandbox"), "Docker"), "sweReasoner.sandbox must be one of auto, bwrap, docker, none, off");
  assert.equal(settingProblem(spec("testEnv"), "venv"), "sweReasoner.testEnv must be one of host, build, auto");
  assert.equal(settingProblem(spec("testEnv"), ""), undefined, '"" is "not set", which the server ignores');
  assert.equal(settingProblem(spec("sandboxImage"), "python:3.12"), undefined);
});

test("an enum value outside the list is reported and not sent", () => {
  const { settings, problems } = serverSettings(
    inspector({
      strategy: { globalValue: "dev-search", workspaceValue: "best-of-n" },
      sandbox: { workspaceFolderValue: "firejail" },
      testEnv: { globalValue: "build" },
    }),
  );
  assert.deepEqual(settings, { testEnv: "build" });
  assert.deepEqual(problems, [
    'sweReasoner.strategy must be one of exec, orm-exec, voting, dev-search; ignoring "best-of-n"',
    'sweReasoner.sandbox must be one of auto, bwrap, docker, none, off; ignoring "firejail"',
  ]);
});

test("the search, reward-model and verification settings are sent when set", () => {
  const { settings, problems } = serverSettings(
    inspector({
      budget: { globalValue: 8 },
      strategy: { workspaceValue: "orm-exec" },
      adaptive: { globalValue: true },
      prmAdapter: { globalValue: "/models/prm-lora.gguf" },
      ormAdapter: { workspaceFolderValue: "/models/orm-lora.gguf" },
      ormBeta: { globalValue: 0.25 },
      sandbox: { workspaceValue: "docker" },
      sandboxImage: { workspaceValue: "python:3.12" },
      testEnv: { globalValue: "auto" },
      temperature: { defaultValue: 0.7 },
    }),
  );
  assert.deepEqual(settings, {
    budget: 8,
    strategy: "orm-exec",
    adaptive: true,
    prmAdapter: "/models/prm-lora.gguf",
    ormAdapter: "/models/orm-lora.gguf",
    ormBeta: 0.25,
    sandbox: "docker",
    sandboxImage: "python:3.12",
    testEnv: "auto",
  });
  assert.deepEqual(problems, []);
  assert.deepEqual(serverSettings(inspector({ ormBeta: { globalValue: 0 } })), {
    settings: {},
    problems: ["sweReasoner.ormBeta must be greater than 0; ignoring 0"],
  });
});

test("only explicitly set server settings are sent, most specific level first", () => {
  const { settings, problems } = serverSettings(
    inspector({
      python: { defaultValue: "python3", globalValue: "/usr/bin/python3" },
      serverArgs: { defaultValue: [], workspaceValue: ["--x"] },
      budget: { defaultValue: 1, globalValue: 2, workspaceValue: 4 },
      model: { defaultValue: "", globalValue: "smollm2-135m", workspaceFolderValue: "/models/q.gguf", workspaceValue: "w.gguf" },
      temperature: { defaultValue: 0.7 },
      think: { defaultValue: true, globalValue: false },
    }),
  );
  assert.deepEqual(settings, { model: "/models/q.gguf", budget: 4, think: false });
  assert.deepEqual(problems, []);
});

test("invalid server settings are dropped and reported", () => {
  const { settings, problems } = serverSettings(
    inspector({
      budget: { globalValue: 0 },
      maxTokens: { globalValue: 2048 },
      trace: { workspaceValue: "off" },
    }),
  );
  assert.deepEqual(settings, { maxTokens: 2048 });
  assert.deepEqual(problems, ["sweReasoner.budget must be at least 1; ignoring 0", 'sweReasoner.trace must be true or false; ignoring "off"']);
});

test("an untrusted workspace cannot choose the model file or the API server", () => {
  const values = inspector({
    model: { workspaceValue: "/tmp/evil.gguf", globalValue: "/models/mine.gguf" },
    apiBase: { workspaceFolderValue: "http://collector.example:8080/v1" },
    apiModel: { workspaceValue: "m" },
    budget: { workspaceValue: 3 },
  });
  assert.deepEqual(serverSettings(values, { trusted: false }).settings, { model: "/models/mine.gguf", apiModel: "m", budget: 3 });
  assert.deepEqual(serverSettings(values, { trusted: true }).settings, {
    model: "/tmp/evil.gguf",
    apiBase: "http://collector.example:8080/v1",
    apiModel: "m",
    budget: 3,
  });
});

test("an untrusted workspace cannot choose the reward models' adapter files", () => {
  const values = inspector({
    prmAdapter: { workspaceValue: "/tmp/evil-prm.gguf", globalValue: "/models/prm.gguf" },
    ormAdapter: { workspaceFolderValue: "/tmp/evil-orm.gguf" },
    strategy: { workspaceValue: "exec" },
    ormBeta: { workspaceValue: 0.2 },
  });
  assert.deepEqual(serverSettings(values, { trusted: false }).settings, { prmAdapter: "/models/prm.gguf", strategy: "exec", ormBeta: 0.2 });
  assert.deepEqual(serverSettings(values, { trusted: true }).settings, {
    prmAdapter: "/tmp/evil-prm.gguf",
    ormAdapter: "/tmp/evil-orm.gguf",
    strategy: "exec",
    ormBeta: 0.2,
  });
  assert.ok(RESTRICTED_SERVER_SETTINGS.includes("prmAdapter") && RESTRICTED_SERVER_SETTINGS.includes("ormAdapter"));
});

test("package.json restricts the same settings in untrusted workspaces", () => {
  const restricted: string[] = packageJson.capabilities.untrustedWorkspaces.restrictedConfigurations;
  assert.deepEqual(
    [...restricted].sort(),
    ["python", "serverArgs", ...RESTRICTED_SERVER_SETTINGS].map((k) => `sweReasoner.${k}`).sort(),
  );
});

test("explicitValue ignores defaults", () => {
  assert.equal(explicitValue({ defaultValue: 1 }), undefined);
  assert.equal(explicitValue(undefined), undefined);
  assert.equal(explicitValue({ globalValue: 0 }), 0);
});

test("package.json contributes exactly the documented server settings", () => {
  const props: Record<
    string,
    {
      type: string;
      default: unknown;
      minimum?: number;
      exclusiveMinimum?: number;
      enum?: string[];
      markdownEnumDescriptions?: string[];
      markdownDescription?: string;
    }
  > = packageJson.contributes.configuration.properties;
  const contributed = Object.keys(props).sort();
  const expected = [...SERVER_SETTINGS.map((s) => s.key), ...CLIENT_SETTINGS].map((k) => `sweReasoner.${k}`).sort();
  assert.deepEqual(contributed, expected);
  for (const spec of SERVER_SETTINGS) {
    const prop = props[`sweReasoner.${spec.key}`];
    assert.equal(prop.type, spec.type, spec.key);
    assert.deepEqual(prop.default, spec.default, spec.key);
    assert.equal(prop.minimum, spec.minimum, spec.key);
    assert.equal(prop.exclusiveMinimum, spec.exclusiveMinimum, spec.key);
    assert.deepEqual(prop.enum, spec.enum, spec.key);
    if (spec.enum !== undefined) {
      assert.ok(spec.enum.includes(spec.default as string), `${spec.key}'s default is one of its values`);
      assert.equal(prop.markdownEnumDescriptions?.length, spec.enum.length, `${spec.key} describes each value`);
    }
    assert.ok((prop.markdownDescription ?? "").length > 20, `${spec.key} has a description`);
  }
  assert.equal(props["sweReasoner.python"].default, "python3");
  assert.deepEqual(props["sweReasoner.serverArgs"].default, []);
});

test("the defaults agree with docs/lsp.md's table", (t) => {
  const docs = path.join(__dirname, "..", "..", "..", "..", "docs", "lsp.md");
  if (!fs.existsSync(docs)) {
    t.skip("built outside the repository: no docs/lsp.md");
    return;
  }
  const table = fs.readFileSync(docs, "utf8");
  for (const spec of SERVER_SETTINGS) {
    const row = new RegExp(`^\\| \`${spec.key}\` \\| (\\w+) \\| \`?([^|\`]*)\`? \\|(.*)$`, "m").exec(table);
    assert.ok(row, `docs/lsp.md has a row for ${spec.key}`);
    assert.equal(row[1], spec.type, spec.key);
    const cell = row[2].trim();
    // a string default is written bare (`auto`), except the empty one (`""`)
    const documented = cell === '""' ? "" : spec.type === "string" ? cell : JSON.parse(cell);
    assert.deepEqual(documented, spec.default, spec.key);
    for (const value of spec.enum ?? []) {
      assert.ok(row[3].includes(`\`${value}\``), `docs/lsp.md names ${spec.key}'s value ${value}`);
    }
  }
});
