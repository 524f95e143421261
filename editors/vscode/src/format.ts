// Texts shown to the user: progress, notifications, evidence.
// No `vscode` import: unit-tested under plain Node.

import { Candidate, FileChange, SolveResult } from "./protocol";

export const PREFIX = "swe-reasoner";

// ---------------------------------------------------------------- progress

/** A work-done progress value ($/progress): begin, report or end. */
export interface ProgressValue {
  kind: "begin" | "report" | "end";
  title?: string;
  message?: string;
  percentage?: number;
  cancellable?: boolean;
}

export interface ProgressState {
  title?: string;
  message?: string;
  percentage?: number;
  done: boolean;
}

/**
 * Folds one $/progress value into the state. As in LSP, a report without a
 * message or percentage keeps the previous one.
 */
export function applyProgress(state: ProgressState | undefined, value: ProgressValue): ProgressState {
  const base: ProgressState = value.kind === "begin" || state === undefined ? { done: false } : { ...state };
  if (value.kind === "begin" && typeof value.title === "string") {
    base.title = value.title;
  }
  if (typeof value.message === "string") {
    base.message = value.message;
  }
  if (typeof value.percentage === "number" && Number.isFinite(value.percentage)) {
    base.percentage = value.percentage;
  }
  if (value.kind === "end") {
    base.done = true;
  }
  return base;
}

/** "swe-reasoner: Localizing · candidate 1/2 · round 2 (40%)". */
export function formatProgress(state: ProgressState | undefined): string {
  const message = state?.message?.trim() || (state?.done ? "finishing…" : "solving…");
  const pct = state?.percentage;
  const suffix = typeof pct === "number" ? ` (${Math.round(Math.min(100, Math.max(0, pct)))}%)` : "";
  return `${PREFIX}: ${message}${suffix}`;
}

// ------------------------------------------------------------ notifications

export function candidateLabel(index: number, count: number): string {
  return `candidate ${index + 1}/${count}`;
}

export type ChangeKind = "modified" | "new file" | "deleted";

export function changeKind(file: FileChange): ChangeKind {
  if (file.oldText === "" && file.newText !== "") {
    return "new file";
  }
  if (file.newText === "" && file.oldText !== "") {
    return "deleted";
  }
  return "modified";
}

function filesSummary(candidate: Candidate): string {
  const paths = candidate.files.map((f) => f.path);
  if (paths.length === 0) {
    return "no files";
  }
  if (paths.length === 1) {
    return paths[0];
  }
  const shown = paths.slice(0, 4).join(", ");
  const more = paths.length > 4 ? `, +${paths.length - 4} more` : "";
  return `${paths.length} files: ${shown}${more}`;
}

/** "swe-reasoner: candidate 1/2 — 2 patches (calc/stats.py)". */
export function candidateNotice(result: SolveResult, index: number): string {
  const candidate = result.candidates[index];
  const message = result.message.trim() || "patch ready";
  return `${PREFIX}: ${candidateLabel(index, result.candidates.length)} — ${message} (${filesSummary(candidate)})`;
}

/** The title of the diff editor for one file of a candidate. */
export function diffTitle(file: FileChange, index: number, count: number): string {
  const kind = changeKind(file);
  const note = kind === "modified" ? "" : ` (${kind})`;
  return `${file.path}${note} ↔ ${PREFIX} ${candidateLabel(index, count)}`;
}

export type Level = "info" | "warning" | "error";

/** How a finished solve is announced: its level and text. */
export function resultNotice(result: SolveResult): { level: Level; text: string } {
  const message = result.message.trim();
  switch (result.status) {
    case "patched":
      if (result.candidates.length === 0) {
        return { level: "warning", text: `${PREFIX}: the solve reported a patch but sent no candidates${message ? ` (${message})` : ""}` };
      }
      return { level: "info", text: `${PREFIX}: ${message || `${result.candidates.length} candidate(s)`}` };
    case "no_patch":
      return { level: "info", text: `${PREFIX}: no patch — ${message || "the model did not produce a usable patch"}` };
    case "cancelled":
      return { level: "warning", text: `${PREFIX}: cancelled${message ? ` — ${message}` : ""}` };
    case "error":
    default:
      return { level: "error", text: `${PREFIX}: the solve failed — ${message || "no details (see the swe-reasoner log)"}` };
  }
}

/** The status bar's text once a solve has ended. */
export function resultStatusText(result: SolveResult): string {
  switch (result.status) {
    case "patched":
      return result.candidates.length > 0
        ? `${PREFIX}: ${result.candidates.length} candidate${result.candidates.length === 1 ? "" : "s"} ready`
        : `${PREFIX}: no candidates`;
    case "no_patch":
      return `${PREFIX}: no patch`;
    case "cancelled":
      return `${PREFIX}: cancelled`;
    default:
      return `${PREFIX}: failed`;
  }
}

// ----------------------------------------------------------------- evidence

/** A Markdown code fence longer than any backtick run in the text. */
export function fenced(text: string, info = ""): string {
  const longest = (text.match(/`+/g) ?? []).reduce((n, run) => Math.max(n, run.length), 0);
  const fence = "`".repeat(Math.max(3, longest + 1));
  const body = text.endsWith("\n") ? text : `${text}\n`;
  return `${fence}${info}\n${body}${fence}`;
}

/** Inline Markdown code that survives backticks in the text. */
export function inlineCode(text: string): string {
  const longest = (text.match(/`+/g) ?? []).reduce((n, run) => Math.max(n, run.length), 0);
  const ticks = "`".repeat(longest + 1);
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : "";
  return `${ticks}${pad}${text}${pad}${ticks}`;
}

function formatScore(value: unknown): string {
  if (typeof value === "number") {
    return Number.isInteger(value) ? String(value) : value.toFixed(3).replace(/0+$/, "").replace(/\.$/, "");
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

function formatVerification(verification: unknown): string {
  if (verification === null || verification === undefined) {
    return "Not run for this candidate.";
  }
  if (typeof verification === "string") {
    return verification.trim() === "" ? "Ran, with no output." : fenced(verification, "text");
  }
  return fenced(JSON.stringify(verification, null, 2), "json");
}

/** The evidence of one candidate as a Markdown document. */
export function formatEvidence(result: SolveResult, index: number): string {
  const candidate = result.candidates[index];
  const out: string[] = [];
  out.push(`# ${PREFIX} — ${candidateLabel(index, result.candidates.length)}`);
  out.push("");
  out.push(`Solve ${inlineCode(result.solveId)} · ${result.status}${result.message ? ` · ${result.message}` : ""}`);
  out.push("");

  out.push("## Files changed");
  out.push("");
  if (candidate.files.length === 0) {
    out.push("None.");
  }
  for (const file of candidate.files) {
    out.push(`- ${inlineCode(file.path)} (${changeKind(file)})`);
  }
  out.push("");

  const ev = candidate.evidence;
  out.push("## Why these files");
  out.push("");
  if (ev.files.length === 0) {
    out.push("The server reported no files read.");
  } else {
    out.push("Files read while understanding the issue, best first:");
    out.push("");
    ev.files.forEach((f, i) => {
      const why = ev.why?.[f];
      out.push(`${i + 1}. ${inlineCode(f)}${why ? ` — ${why}` : ""}`);
    });
  }
  out.push("");

  out.push("## Locations");
  out.push("");
  if (ev.locations.length === 0) {
    out.push("No precise locations were reported.");
  }
  for (const loc of ev.locations) {
    const symbol = [loc.class, loc.function].filter((s) => s !== "").join(".");
    const where = symbol ? `${inlineCode(loc.file)} · ${inlineCode(symbol)}` : inlineCode(loc.file);
    out.push(`- ${where}${loc.reason ? ` — ${loc.reason}` : ""}`);
  }
  out.push("");

  out.push("## Scores");
  out.push("");
  const scores = Object.entries(ev.scores);
  if (scores.length === 0) {
    out.push("Not scored.");
  } else {
    out.push("| score | value |");
    out.push("|---|---|");
    for (const [name, value] of scores) {
      out.push(`| ${name} | ${formatScore(value)} |`);
    }
  }
  out.push("");

  out.push("## Verification");
  out.push("");
  out.push(formatVerification(ev.verification));
  out.push("");

  out.push("## Trajectory");
  out.push("");
  out.push(result.trajectory ? inlineCode(result.trajectory) : "Not written (tracing is off).");
  out.push("");

  if (candidate.diff.trim() !== "") {
    out.push("## Diff");
    out.push("");
    out.push(fenced(candidate.diff, "diff"));
    out.push("");
  }
  return out.join("\n");
}
