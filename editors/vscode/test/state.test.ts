import assert from "node:assert/strict";
import { test } from "node:test";
import { parseResult } from "../src/protocol";
import { ResultState } from "../src/state";
import { sampleResult } from "./support/fixtures";

function threeCandidates() {
  const raw = sampleResult();
  const cands = raw.candidates as unknown[];
  return parseResult({ ...raw, candidates: [cands[0], cands[1], cands[0]] });
}

test("a patched result starts at its first candidate", () => {
  const s = new ResultState();
  assert.equal(s.set(parseResult(sampleResult())), true);
  assert.equal(s.current?.index, 0);
  assert.equal(s.current?.count, 2);
  assert.equal(s.current?.candidate.files[0].newText, "def mean(xs):\n    return sum(xs) / len(xs)\n");
});

test("next cycles through the candidates and wraps around", () => {
  const s = new ResultState();
  s.set(threeCandidates());
  assert.deepEqual([s.next()?.index, s.next()?.index, s.next()?.index, s.next()?.index], [1, 2, 0, 1]);
  assert.deepEqual([s.previous()?.index, s.previous()?.index, s.previous()?.index], [0, 2, 1]);
});

test("a single candidate stays put", () => {
  const s = new ResultState();
  const raw = sampleResult();
  s.set(parseResult({ ...raw, candidates: [(raw.candidates as unknown[])[0]] }));
  assert.equal(s.next()?.index, 0);
  assert.equal(s.previous()?.index, 0);
});

test("a result without candidates does not replace the one being reviewed", () => {
  const s = new ResultState();
  s.set(parseResult(sampleResult()));
  s.next();
  assert.equal(s.set(parseResult({ solveId: "other", status: "cancelled", message: "cancelled" })), false);
  assert.equal(s.set(parseResult({ solveId: "other", status: "patched", candidates: [] })), false);
  assert.equal(s.solveId, "3f2a9c");
  assert.equal(s.current?.index, 1);
});

test("a new patched result replaces the old one and starts over", () => {
  const s = new ResultState();
  s.set(parseResult(sampleResult()));
  s.next();
  s.set(parseResult(sampleResult({ solveId: "new" })));
  assert.equal(s.solveId, "new");
  assert.equal(s.current?.index, 0);
});

test("isCurrent tells a stale notification from the shown candidate", () => {
  const s = new ResultState();
  s.set(parseResult(sampleResult()));
  assert.equal(s.isCurrent("3f2a9c", 0), true);
  s.next();
  assert.equal(s.isCurrent("3f2a9c", 0), false);
  assert.equal(s.isCurrent("3f2a9c", 1), true);
  assert.equal(s.isCurrent("other", 1), false);
  s.clear();
  assert.equal(s.isCurrent("3f2a9c", 1), false);
  assert.equal(s.current, undefined);
  assert.equal(s.next(), undefined);
});
