// The extension's settings: the server command line and the server settings
// sent through workspace/configuration. No `vscode` import: unit-tested.
// package.json's contributes.configuration must agree with SERVER_SETTINGS
// (a test checks it).

export type SettingType = "string" | "integer" | "number" | "boolean";

export interface SettingSpec {
  /** The key under the `sweReasoner` section. */
  key: string;
  type: SettingType;
  default: string | number | boolean;
  minimum?: number;
  /** The value must be greater than this (JSON Schema's `exclusiveMinimum`). */
  exclusiveMinimum?: number;
  /** For a string: the only values accepted (package.json's `enum`). */
  enum?: readonly string[];
}

/** The keys the server reads (docs/lsp.md, "Settings"). */
export const SERVER_SETTINGS: readonly SettingSpec[] = [
  { key: "model", type: "string", default: "" },
  { key: "apiBase", type: "string", default: "" },
  { key: "apiModel", type: "string", default: "" },
  { key: "budget", type: "integer", default: 1, minimum: 1 },
  { key: "strategy", type: "string", default: "dev-search", enum: ["exec", "orm-exec", "voting", "dev-search"] },
  { key: "adaptive", type: "boolean", default: false },
  { key: "prmAdapter", type: "string", default: "" },
  { key: "ormAdapter", type: "string", default: "" },
  { key: "ormBeta", type: "number", default: 0.1, exclusiveMinimum: 0 },
  { key: "maxTokens", type: "integer", default: 4096, minimum: 1 },
  { key: "temperature", type: "number", default: 0.7, minimum: 0 },
  { key: "nCtx", type: "integer", default: 16384, minimum: 1 },
  { key: "nGpuLayers", type: "integer", default: -1, minimum: -1 },
  { key: "think", type: "boolean", default: true },
  { key: "sandbox", type: "string", default: "auto", enum: ["auto", "bwrap", "docker", "none", "off"] },
  { key: "sandboxImage", type: "string", default: "" },
  { key: "testEnv", type: "string", default: "host", enum: ["host", "build", "auto"] },
  { key: "trace", type: "boolean", default: true },
];

/**
 * Server keys a repository must not set in an untrusted workspace (a model
 * file or adapter file to load, a server to send code to). package.json lists
 * them, with python and serverArgs, under capabilities.untrustedWorkspaces.
 */
export const RESTRICTED_SERVER_SETTINGS: readonly string[] = ["model", "prmAdapter", "ormAdapter", "apiBase", "sandbox"];

/** Keys only the client reads; never sent to the server. */
export const CLIENT_SETTINGS = ["python", "serverArgs"] as const;

export const DEFAULT_PYTHON = "python3";
export const SERVER_MODULE_ARGS = ["-m", "swe_reasoner.agent.cli", "serve"] as const;

/** Returns why a value is not acceptable for the setting, or undefined when it is. */
export function settingProblem(spec: SettingSpec, value: unknown): string | undefined {
  const name = `sweReasoner.${spec.key}`;
  switch (spec.type) {
    case "string":
      if (typeof value !== "string") {
        return `${name} must be a string`;
      }
      // "" is "not set" (docs/lsp.md), which the server ignores.
      if (spec.enum !== undefined && value !== "" && !spec.enum.includes(value)) {
        return `${name} must be one of ${spec.enum.join(", ")}`;
      }
      return undefined;
    case "boolean":
      return typeof value === "boolean" ? undefined : `${name} must be true or false`;
    case "integer":
    case "number": {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        return `${name} must be a number`;
      }
      if (spec.type === "integer" && !Number.isInteger(value)) {
        return `${name} must be a whole number`;
      }
      if (spec.minimum !== undefined && value < spec.minimum) {
        return `${name} must be at least ${spec.minimum}`;
      }
      if (spec.exclusiveMinimum !== undefined && value <= spec.exclusiveMinimum) {
        return `${name} must be greater than ${spec.exclusiveMinimum}`;
      }
      return undefined;
    }
  }
}

/** What `WorkspaceConfiguration.inspect(key)` returns, as far as it is used here. */
export interface InspectedValue {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/**
 * The value the user set explicitly (folder over workspace over user), or
 * undefined. With `userOnly`, workspace and folder values are ignored.
 */
export function explicitValue(inspected: InspectedValue | undefined, userOnly = false): unknown {
  if (inspected === undefined) {
    return undefined;
  }
  const levels = userOnly ? [inspected.globalValue] : [inspected.workspaceFolderValue, inspected.workspaceValue, inspected.globalValue];
  for (const v of levels) {
    if (v !== undefined) {
      return v;
    }
  }
  return undefined;
}

/**
 * The object answered for workspace/configuration's `sweReasoner` section.
 *
 * Only settings the user set explicitly are sent: the server's settings
 * override the repository's .swe-reasoner.toml and the user's config file, so
 * sending VS Code's defaults would silently mask those files. Client-only keys
 * (python, serverArgs) are left out, and invalid values are dropped and
 * reported in `problems` so the server never sees them. In an untrusted
 * workspace (`trusted: false`) the restricted keys come from user settings
 * only (`inspect` reports workspace values whatever the trust).
 */
export function serverSettings(
  inspect: (key: string) => InspectedValue | undefined,
  options: { trusted?: boolean } = {},
): {
  settings: Record<string, string | number | boolean>;
  problems: string[];
} {
  const settings: Record<string, string | number | boolean> = {};
  const problems: string[] = [];
  for (const spec of SERVER_SETTINGS) {
    const userOnly = options.trusted === false && RESTRICTED_SERVER_SETTINGS.includes(spec.key);
    const value = explicitValue(inspect(spec.key), userOnly);
    if (value === undefined || value === null) {
      continue;
    }
    const problem = settingProblem(spec, value);
    if (problem !== undefined) {
      problems.push(`${problem}; ignoring ${JSON.stringify(value)}`);
      continue;
    }
    settings[spec.key] = value as string | number | boolean;
  }
  return { settings, problems };
}

export interface ServerCommand {
  command: string;
  args: string[];
  problems: string[];
}

/** Expands a leading `~` and `${workspaceFolder}` / `${userHome}` in a path-like setting. */
export function expandPath(value: string, env: { home?: string; workspaceFolder?: string }): string {
  let out = value;
  if (env.home !== undefined) {
    if (out === "~") {
      out = env.home;
    } else if (out.startsWith("~/") || out.startsWith("~\\")) {
      out = env.home + out.slice(1);
    }
    out = out.split("${userHome}").join(env.home);
  }
  if (env.workspaceFolder !== undefined) {
    out = out.split("${workspaceFolder}").join(env.workspaceFolder);
  }
  return out;
}

/** `<python> -m swe_reasoner.agent.cli serve <serverArgs…>` from the settings. */
export function serverCommand(
  python: unknown,
  serverArgs: unknown,
  env: { home?: string; workspaceFolder?: string } = {},
): ServerCommand {
  const problems: string[] = [];
  let command = DEFAULT_PYTHON;
  if (typeof python === "string") {
    if (python.trim() !== "") {
      command = expandPath(python.trim(), env);
    }
  } else if (python !== undefined && python !== null) {
    problems.push(`sweReasoner.python must be a string; using ${DEFAULT_PYTHON}`);
  }
  const args: string[] = [...SERVER_MODULE_ARGS];
  if (Array.isArray(serverArgs)) {
    serverArgs.forEach((arg, i) => {
      if (typeof arg === "string") {
        args.push(expandPath(arg, env));
      } else {
        problems.push(`sweReasoner.serverArgs[${i}] must be a string; ignoring it`);
      }
    });
  } else if (serverArgs !== undefined && serverArgs !== null) {
    problems.push("sweReasoner.serverArgs must be a list of strings; ignoring it");
  }
  return { command, args, problems };
}
