import assert from "node:assert/strict";
import { test } from "node:test";
import { buildSolveArgs, needsInput, validateIssueInput } from "../src/solveArgs";

test("the selection is the issue, with the document's URI", () => {
  assert.deepEqual(
    buildSolveArgs({ selectedText: "  mean() is wrong\n", typedText: "ignored", documentUri: "file:///repo/ISSUE.md" }),
    { issue: "mean() is wrong", uri: "file:///repo/ISSUE.md" },
  );
});

test("without a selection the typed text is the issue", () => {
  assert.equal(needsInput(undefined), true);
  assert.equal(needsInput(" \n\t"), true);
  assert.equal(needsInput("x"), false);
  assert.deepEqual(buildSolveArgs({ selectedText: "", typedText: "crash on empty list", documentUri: "file:///repo/a.py" }), {
    issue: "crash on empty list",
    uri: "file:///repo/a.py",
  });
  assert.deepEqual(buildSolveArgs({ typedText: "crash on empty list" }), { issue: "crash on empty list" });
});

test("no issue text, no solve", () => {
  assert.equal(buildSolveArgs({}), undefined);
  assert.equal(buildSolveArgs({ selectedText: "", typedText: undefined }), undefined);
  assert.equal(buildSolveArgs({ selectedText: "   ", typedText: "  " }), undefined);
});

test("only file URIs are sent (an untitled buffer names no repository)", () => {
  assert.deepEqual(buildSolveArgs({ selectedText: "bug", documentUri: "untitled:Untitled-1" }), { issue: "bug" });
  assert.deepEqual(buildSolveArgs({ selectedText: "bug", documentUri: "vscode-notebook-cell:/x" }), { issue: "bug" });
});

test("the input box refuses blank text", () => {
  assert.equal(validateIssueInput("  "), "Describe the issue to solve.");
  assert.equal(validateIssueInput("bug"), undefined);
});
