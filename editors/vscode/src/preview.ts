// Read-only documents on the `swe-reasoner:` scheme: a candidate's proposed
// file text, an empty document (the left side of a new file's diff) and a
// candidate's evidence. No `vscode` import: unit-tested under plain Node.

import { formatEvidence, diffTitle } from "./format";
import { SolveResult } from "./protocol";

export const PREVIEW_SCHEME = "swe-reasoner";

export type PreviewRef =
  | { kind: "proposed"; solveId: string; candidate: number; file: number }
  | { kind: "empty"; solveId: string; candidate: number; file: number }
  | { kind: "evidence"; solveId: string; candidate: number };

/** The parts of a preview URI; the path's last segment names the tab and picks the language. */
export interface PreviewUriParts {
  scheme: string;
  path: string;
  query: string;
}

export function encodeRef(ref: PreviewRef): string {
  const q = new URLSearchParams();
  q.set("kind", ref.kind);
  q.set("solve", ref.solveId);
  q.set("candidate", String(ref.candidate));
  if (ref.kind !== "evidence") {
    q.set("file", String(ref.file));
  }
  return q.toString();
}

function index(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value)) {
    return undefined;
  }
  return Number(value);
}

export function decodeRef(query: string): PreviewRef | undefined {
  const q = new URLSearchParams(query);
  const kind = q.get("kind");
  const solveId = q.get("solve");
  const candidate = index(q.get("candidate"));
  if (solveId === null || solveId === "" || candidate === undefined) {
    return undefined;
  }
  if (kind === "evidence") {
    return { kind, solveId, candidate };
  }
  if (kind === "proposed" || kind === "empty") {
    const file = index(q.get("file"));
    return file === undefined ? undefined : { kind, solveId, candidate, file };
  }
  return undefined;
}

/** A repository-relative path as a URI path ("/calc/stats.py"). */
export function previewPath(filePath: string): string {
  const p = filePath.replace(/\\/g, "/").replace(/^\/+/, "");
  return `/${p}`;
}

export function previewUri(ref: PreviewRef, filePath: string): PreviewUriParts {
  return { scheme: PREVIEW_SCHEME, path: previewPath(filePath), query: encodeRef(ref) };
}

export function evidenceUri(solveId: string, candidate: number): PreviewUriParts {
  return previewUri({ kind: "evidence", solveId, candidate }, `evidence-candidate-${candidate + 1}.md`);
}

export const STALE_TEXT = "This swe-reasoner result is no longer available (it was accepted, rejected or replaced by a newer solve).\n";

/** The text of a preview document, from the result being reviewed. */
export function previewText(result: SolveResult | undefined, ref: PreviewRef | undefined): string {
  if (ref === undefined) {
    return "";
  }
  if (ref.kind === "empty") {
    return "";
  }
  if (result === undefined || result.solveId !== ref.solveId) {
    return STALE_TEXT;
  }
  const candidate = result.candidates[ref.candidate];
  if (candidate === undefined) {
    return STALE_TEXT;
  }
  if (ref.kind === "evidence") {
    return formatEvidence(result, ref.candidate);
  }
  const file = candidate.files[ref.file];
  return file === undefined ? STALE_TEXT : file.newText;
}

/** One side of a diff: a real document (the file's current content) or a preview document. */
export type DiffSide = { kind: "file"; uri: string } | { kind: "preview"; uri: PreviewUriParts };

export interface DiffSpec {
  left: DiffSide;
  right: DiffSide;
  title: string;
}

/**
 * What `vscode.diff` should compare for one file of a candidate: the file as
 * it is now (or an empty document for a new file, or a file without a URI)
 * against the proposed text.
 */
export function diffSpec(result: SolveResult, candidate: number, file: number): DiffSpec {
  const change = result.candidates[candidate].files[file];
  const ref = { solveId: result.solveId, candidate, file };
  const isNew = change.oldText === "" && change.newText !== "";
  const left: DiffSide =
    isNew || change.uri === ""
      ? { kind: "preview", uri: previewUri({ kind: "empty", ...ref }, change.path) }
      : { kind: "file", uri: change.uri };
  const right: DiffSide = { kind: "preview", uri: previewUri({ kind: "proposed", ...ref }, change.path) };
  return { left, right, title: diffTitle(change, candidate, result.candidates.length) };
}
