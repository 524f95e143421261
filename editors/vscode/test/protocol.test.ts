import assert from "node:assert/strict";
import { test } from "node:test";
import { errorMessage, executeCommandParams, parseResult } from "../src/protocol";
import { sampleResult } from "./support/fixtures";

test("parseResult keeps a documented result as it is", () => {
  const r = parseResult(sampleResult());
  assert.equal(r.solveId, "3f2a9c");
  assert.equal(r.status, "patched");
  assert.equal(r.candidates.length, 2);
  assert.deepEqual(r.candidates[0].files[0], {
    path: "calc/stats.py",
    uri: "file:///repo/calc/stats.py",
    oldText: "def mean(xs):\n    return sum(xs) / (len(xs) - 1)\n",
    newText: "def mean(xs):\n    return sum(xs) / len(xs)\n",
  });
  assert.deepEqual(r.candidates[0].evidence.scores, { prm: 0.8, orm: 1.2 });
  assert.equal(r.candidates[0].evidence.verification, null);
  assert.deepEqual(r.candidates[1].evidence.verification, { tests: ["tests/test_mean.py::test_mean"], passed: true });
});

test("parseResult fills what a terse server leaves out", () => {
  const r = parseResult({ solveId: "a", status: "no_patch" });
  assert.deepEqual(r, { solveId: "a", status: "no_patch", message: "", trajectory: null, candidates: [] });
  const c = parseResult({ solveId: "a", status: "patched", candidates: [{ files: [{ path: "x.py" }] }] }).candidates[0];
  assert.deepEqual(c.evidence, { files: [], why: {}, locations: [], scores: {}, verification: null });
  assert.deepEqual(c.files[0], { path: "x.py", uri: "", oldText: "", newText: "" });
});

test("parseResult uses the list position as the candidate index", () => {
  const raw = sampleResult();
  (raw.candidates as { index: number }[])[0].index = 7;
  assert.equal(parseResult(raw).candidates[0].index, 0);
  assert.equal(parseResult(raw).candidates[1].index, 1);
});

test("parseResult turns an unknown status into an error that names it", () => {
  const r = parseResult({ solveId: "a", status: "exploded", message: "boom" });
  assert.equal(r.status, "error");
  assert.equal(r.message, 'unknown status "exploded": boom');
});

test("parseResult rejects what cannot be used", () => {
  assert.throws(() => parseResult(null), /not an object/);
  assert.throws(() => parseResult({ status: "patched" }), /no solveId/);
  assert.throws(() => parseResult({ solveId: "a", candidates: "x" }), /not a list/);
  assert.throws(() => parseResult({ solveId: "a", candidates: [3] }), /candidate 0 is not an object/);
  assert.throws(() => parseResult({ solveId: "a", candidates: [{ files: [{ uri: "file:///x" }] }] }), /without a path/);
});

test("executeCommandParams wraps the one argument", () => {
  assert.deepEqual(executeCommandParams("sweReasoner.apply", { solveId: "s", candidate: 1 }), {
    command: "sweReasoner.apply",
    arguments: [{ solveId: "s", candidate: 1 }],
  });
});

test("errorMessage takes a JSON-RPC error's message", () => {
  assert.equal(errorMessage({ code: -32603, message: "a solve is already running" }), "a solve is already running");
  assert.equal(errorMessage(new Error("no workspace folder")), "no workspace folder");
  assert.equal(errorMessage("plain"), "plain");
});
