// The swe-reasoner server's protocol as seen by this client (docs/lsp.md).
// No `vscode` import: this module is unit-tested under plain Node.

/** executeCommand ids the server implements (languageclient registers them). */
export const SERVER_COMMANDS = {
  solve: "sweReasoner.solve",
  cancel: "sweReasoner.cancel",
  apply: "sweReasoner.apply",
  reject: "sweReasoner.reject",
} as const;

export const RESULT_NOTIFICATION = "sweReasoner/result";
export const EXECUTE_COMMAND_REQUEST = "workspace/executeCommand";
export const CONFIGURATION_SECTION = "sweReasoner";

export type SolveStatus = "patched" | "no_patch" | "cancelled" | "error";

export interface FileChange {
  path: string;
  uri: string;
  /** "" for a new file. */
  oldText: string;
  /** "" for a deleted file. */
  newText: string;
}

export interface EvidenceLocation {
  file: string;
  class: string;
  function: string;
  reason: string;
}

export interface Evidence {
  files: string[];
  /** Why each file was read (the model's choice, the ranking's reasons), when the server says. */
  why?: Record<string, string>;
  locations: EvidenceLocation[];
  scores: Record<string, unknown>;
  verification: unknown;
}

export interface Candidate {
  index: number;
  diff: string;
  files: FileChange[];
  evidence: Evidence;
}

export interface SolveResult {
  solveId: string;
  status: SolveStatus;
  message: string;
  trajectory: string | null;
  candidates: Candidate[];
}

export interface SolveArgs {
  issue: string;
  uri?: string;
}

export interface SolveResponse {
  solveId: string;
}

export interface CancelResponse {
  cancelled: boolean;
}

export interface ApplyResponse {
  applied: boolean;
  reason: string;
}

export interface RejectResponse {
  discarded: boolean;
}

/** The params of a workspace/executeCommand request for one server command. */
export function executeCommandParams(command: string, argument: object | string): { command: string; arguments: (object | string)[] } {
  return { command, arguments: [argument] };
}

const STATUSES: readonly string[] = ["patched", "no_patch", "cancelled", "error"];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function str(value: unknown, fallback = ""): string {
  return typeof value === "string" ? value : fallback;
}

function parseFile(raw: unknown, where: string): FileChange {
  if (!isRecord(raw) || typeof raw.path !== "string" || raw.path === "") {
    throw new Error(`${where}: a file without a path`);
  }
  return {
    path: raw.path,
    uri: str(raw.uri),
    oldText: str(raw.oldText),
    newText: str(raw.newText),
  };
}

function parseEvidence(raw: unknown): Evidence {
  const ev = isRecord(raw) ? raw : {};
  const files = Array.isArray(ev.files) ? ev.files.filter((f): f is string => typeof f === "string") : [];
  const locations = Array.isArray(ev.locations)
    ? ev.locations.filter(isRecord).map((loc) => ({
        file: str(loc.file),
        class: str(loc.class),
        function: str(loc.function),
        reason: str(loc.reason),
      }))
    : [];
  const scores = isRecord(ev.scores) ? { ...ev.scores } : {};
  const verification = ev.verification === undefined ? null : ev.verification;
  const why = isRecord(ev.why)
    ? Object.fromEntries(Object.entries(ev.why).filter((e): e is [string, string] => typeof e[1] === "string"))
    : {};
  return { files, why, locations, scores, verification };
}

/**
 * Checks and normalizes a sweReasoner/result notification's params.
 * Missing optional parts get empty defaults; a result that cannot be used
 * (no solveId, candidates that are not objects, files without paths) throws.
 */
export function parseResult(raw: unknown): SolveResult {
  if (!isRecord(raw)) {
    throw new Error("sweReasoner/result: params are not an object");
  }
  if (typeof raw.solveId !== "string" || raw.solveId === "") {
    throw new Error("sweReasoner/result: no solveId");
  }
  const statusText = str(raw.status);
  const status: SolveStatus = STATUSES.includes(statusText) ? (statusText as SolveStatus) : "error";
  let message = str(raw.message);
  if (!STATUSES.includes(statusText)) {
    message = `unknown status ${JSON.stringify(raw.status)}${message ? `: ${message}` : ""}`;
  }
  const rawCandidates = raw.candidates === undefined || raw.candidates === null ? [] : raw.candidates;
  if (!Array.isArray(rawCandidates)) {
    throw new Error("sweReasoner/result: candidates is not a list");
  }
  const candidates = rawCandidates.map((c, position): Candidate => {
    const where = `sweReasoner/result: candidate ${position}`;
    if (!isRecord(c)) {
      throw new Error(`${where} is not an object`);
    }
    const files = Array.isArray(c.files) ? c.files.map((f) => parseFile(f, where)) : [];
    return {
      // `candidate` in sweReasoner.apply is the position in this list.
      index: position,
      diff: str(c.diff),
      files,
      evidence: parseEvidence(c.evidence),
    };
  });
  const trajectory = typeof raw.trajectory === "string" && raw.trajectory !== "" ? raw.trajectory : null;
  return { solveId: raw.solveId, status, message, trajectory, candidates };
}

/** The user-facing text of a JSON-RPC error or any thrown value. */
export function errorMessage(error: unknown): string {
  if (isRecord(error) && typeof error.message === "string" && error.message !== "") {
    return error.message;
  }
  if (error instanceof Error && error.message) {
    return error.message;
  }
  return String(error);
}
