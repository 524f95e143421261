import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeRef, diffSpec, encodeRef, evidenceUri, previewPath, previewText, previewUri, STALE_TEXT } from "../src/preview";
import { parseResult } from "../src/protocol";
import { sampleResult } from "./support/fixtures";

test("preview references survive the query string", () => {
  const refs = [
    { kind: "proposed" as const, solveId: "3f2a&=?", candidate: 1, file: 2 },
    { kind: "empty" as const, solveId: "s", candidate: 0, file: 0 },
    { kind: "evidence" as const, solveId: "s", candidate: 3 },
  ];
  for (const ref of refs) {
    assert.deepEqual(decodeRef(encodeRef(ref)), ref);
  }
});

test("malformed preview queries are refused", () => {
  assert.equal(decodeRef(""), undefined);
  assert.equal(decodeRef("kind=proposed&solve=s&candidate=0"), undefined);
  assert.equal(decodeRef("kind=proposed&solve=s&candidate=-1&file=0"), undefined);
  assert.equal(decodeRef("kind=other&solve=s&candidate=0&file=0"), undefined);
  assert.equal(decodeRef("kind=evidence&candidate=0"), undefined);
});

test("preview paths keep the file's name for the tab and its language", () => {
  assert.equal(previewPath("calc/stats.py"), "/calc/stats.py");
  assert.equal(previewPath("calc\\stats.py"), "/calc/stats.py");
  assert.equal(previewPath("/abs.py"), "/abs.py");
  assert.equal(evidenceUri("s", 1).path, "/evidence-candidate-2.md");
});

test("a modified file is diffed from its current document to the proposed text", () => {
  const r = parseResult(sampleResult());
  const spec = diffSpec(r, 0, 0);
  assert.deepEqual(spec.left, { kind: "file", uri: "file:///repo/calc/stats.py" });
  assert.deepEqual(spec.right, {
    kind: "preview",
    uri: { scheme: "swe-reasoner", path: "/calc/stats.py", query: "kind=proposed&solve=3f2a9c&candidate=0&file=0" },
  });
  assert.equal(spec.title, "calc/stats.py ↔ swe-reasoner candidate 1/2");
});

test("a new file is diffed from an empty document", () => {
  const r = parseResult(sampleResult());
  const spec = diffSpec(r, 1, 1);
  assert.deepEqual(spec.left, {
    kind: "preview",
    uri: { scheme: "swe-reasoner", path: "/tests/test_mean.py", query: "kind=empty&solve=3f2a9c&candidate=1&file=1" },
  });
  assert.equal(previewText(r, decodeRef((spec.left as { uri: { query: string } }).uri.query)), "");
});

test("preview documents serve the proposed text and the evidence", () => {
  const r = parseResult(sampleResult());
  const proposed = previewUri({ kind: "proposed", solveId: "3f2a9c", candidate: 1, file: 1 }, "tests/test_mean.py");
  assert.equal(previewText(r, decodeRef(proposed.query)), "from calc.stats import mean\n\ndef test_mean():\n    assert mean([1, 2, 3]) == 2\n");
  const evidence = previewText(r, decodeRef(evidenceUri("3f2a9c", 0).query));
  assert.match(evidence, /^# swe-reasoner — candidate 1\/2/);
});

test("previews of a result that is gone say so", () => {
  const r = parseResult(sampleResult());
  const ref = decodeRef(encodeRef({ kind: "proposed", solveId: "older", candidate: 0, file: 0 }));
  assert.equal(previewText(r, ref), STALE_TEXT);
  assert.equal(previewText(undefined, decodeRef(encodeRef({ kind: "proposed", solveId: "3f2a9c", candidate: 0, file: 0 }))), STALE_TEXT);
  assert.equal(previewText(r, decodeRef(encodeRef({ kind: "proposed", solveId: "3f2a9c", candidate: 5, file: 0 }))), STALE_TEXT);
  assert.equal(previewText(r, undefined), "");
});
