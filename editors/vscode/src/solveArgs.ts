// The argument of sweReasoner.solve from what the user selected or typed.
// No `vscode` import: unit-tested under plain Node.

import { SolveArgs } from "./protocol";

export interface SolveSource {
  /** The active editor's selected text ("" or undefined: nothing selected). */
  selectedText?: string;
  /** What the user typed in the input box (asked only without a selection). */
  typedText?: string;
  /** The active document's URI, as a string. */
  documentUri?: string;
}

/** Whether the issue text must be asked for (nothing usable is selected). */
export function needsInput(selectedText: string | undefined): boolean {
  return selectedText === undefined || selectedText.trim() === "";
}

/**
 * `{issue, uri?}` for sweReasoner.solve, or undefined when there is no issue
 * text. The selection wins over typed text. The document's URI is sent only
 * for `file:` documents: it tells the server which workspace folder (which
 * repository) the issue belongs to, and an untitled buffer says nothing.
 */
export function buildSolveArgs(source: SolveSource): SolveArgs | undefined {
  const text = !needsInput(source.selectedText) ? source.selectedText : source.typedText;
  if (text === undefined || text.trim() === "") {
    return undefined;
  }
  const args: SolveArgs = { issue: text.trim() };
  if (source.documentUri !== undefined && source.documentUri.startsWith("file:")) {
    args.uri = source.documentUri;
  }
  return args;
}

/** Input box validation: a message while the text is unusable. */
export function validateIssueInput(text: string): string | undefined {
  return text.trim() === "" ? "Describe the issue to solve." : undefined;
}
