import assert from "node:assert/strict";
import { test } from "node:test";
import {
  applyProgress,
  candidateNotice,
  diffTitle,
  fenced,
  formatEvidence,
  formatProgress,
  inlineCode,
  ProgressState,
  resultNotice,
  resultStatusText,
} from "../src/format";
import { parseResult } from "../src/protocol";
import { sampleResult } from "./support/fixtures";

test("progress text names the stage, candidate, round and percentage", () => {
  let s = applyProgress(undefined, { kind: "begin", title: "swe-reasoner", message: "Understanding", percentage: 0 });
  assert.equal(formatProgress(s), "swe-reasoner: Understanding (0%)");
  s = applyProgress(s, { kind: "report", message: "Localizing · candidate 1/2 · round 2", percentage: 40 });
  assert.equal(formatProgress(s), "swe-reasoner: Localizing · candidate 1/2 · round 2 (40%)");
});

test("a report without message or percentage keeps the previous ones", () => {
  let s: ProgressState = applyProgress(undefined, { kind: "begin", message: "Patching · candidate 2/2", percentage: 50 });
  s = applyProgress(s, { kind: "report", percentage: 62.6 });
  assert.equal(formatProgress(s), "swe-reasoner: Patching · candidate 2/2 (63%)");
  s = applyProgress(s, { kind: "report", message: "Verifying" });
  assert.equal(formatProgress(s), "swe-reasoner: Verifying (63%)");
});

test("a new begin forgets the previous progress", () => {
  const old = applyProgress(undefined, { kind: "begin", message: "Patching", percentage: 90 });
  const s = applyProgress(old, { kind: "begin" });
  assert.equal(formatProgress(s), "swe-reasoner: solving…");
});

test("progress without a message or percentage, out of range, and ended", () => {
  assert.equal(formatProgress(undefined), "swe-reasoner: solving…");
  assert.equal(formatProgress({ done: false, message: "  ", percentage: 140 }), "swe-reasoner: solving… (100%)");
  assert.equal(formatProgress({ done: false, percentage: -3 }), "swe-reasoner: solving… (0%)");
  const ended = applyProgress(applyProgress(undefined, { kind: "begin", percentage: 99 }), { kind: "end" });
  assert.equal(ended.done, true);
  assert.equal(formatProgress(ended), "swe-reasoner: finishing… (99%)");
});

test("the candidate notice counts candidates and lists the files", () => {
  const r = parseResult(sampleResult());
  assert.equal(candidateNotice(r, 0), "swe-reasoner: candidate 1/2 — 2 patches (calc/stats.py)");
  assert.equal(candidateNotice(r, 1), "swe-reasoner: candidate 2/2 — 2 patches (2 files: calc/stats.py, tests/test_mean.py)");
});

test("diff titles mark new and deleted files", () => {
  const r = parseResult(sampleResult());
  assert.equal(diffTitle(r.candidates[0].files[0], 0, 2), "calc/stats.py ↔ swe-reasoner candidate 1/2");
  assert.equal(diffTitle(r.candidates[1].files[1], 1, 2), "tests/test_mean.py (new file) ↔ swe-reasoner candidate 2/2");
  assert.equal(diffTitle({ path: "old.py", uri: "", oldText: "x\n", newText: "" }, 0, 1), "old.py (deleted) ↔ swe-reasoner candidate 1/1");
});

test("finished solves are announced at the right level with the server's message", () => {
  const r = (status: string, message: string) => parseResult({ solveId: "s", status, message });
  assert.deepEqual(resultNotice(r("no_patch", "no location found")), { level: "info", text: "swe-reasoner: no patch — no location found" });
  assert.deepEqual(resultNotice(r("cancelled", "cancelled by the user")), { level: "warning", text: "swe-reasoner: cancelled — cancelled by the user" });
  assert.deepEqual(resultNotice(r("error", "could not load model.gguf: set sweReasoner.model")), {
    level: "error",
    text: "swe-reasoner: the solve failed — could not load model.gguf: set sweReasoner.model",
  });
  assert.equal(resultNotice(r("patched", "")).level, "warning");
  assert.equal(resultStatusText(parseResult(sampleResult())), "swe-reasoner: 2 candidates ready");
  assert.equal(resultStatusText(r("no_patch", "")), "swe-reasoner: no patch");
});

test("evidence lists files, locations, scores, verification and trajectory", () => {
  const text = formatEvidence(parseResult(sampleResult()), 0);
  assert.match(text, /^# swe-reasoner — candidate 1\/2$/m);
  assert.match(text, /^- `calc\/stats.py` \(modified\)$/m);
  assert.match(text, /^1\. `calc\/stats.py`\n2\. `calc\/__init__.py`$/m);
  assert.match(text, /^- `calc\/stats.py` · `mean` — wrong divisor$/m);
  assert.match(text, /^\| prm \| 0\.8 \|$/m);
  assert.match(text, /^\| orm \| 1\.2 \|$/m);
  assert.match(text, /## Verification\n\nNot run for this candidate\./);
  assert.match(text, /## Trajectory\n\n`\/home\/u\/.local\/state\/swe-reasoner\/trajectories\/3f2a9c.jsonl`/);
  assert.match(text, /```diff\ndiff --git a\/calc\/stats.py b\/calc\/stats.py\n/);
});

test("evidence shows verification when it ran, and says what is missing", () => {
  const r = parseResult(sampleResult({ trajectory: null }));
  const text = formatEvidence(r, 1);
  assert.match(text, /^- `tests\/test_mean.py` \(new file\)$/m);
  assert.match(text, /No precise locations were reported\./);
  assert.match(text, /## Scores\n\nNot scored\./);
  assert.match(text, /```json\n\{\n  "tests": \[\n    "tests\/test_mean.py::test_mean"\n  \],\n  "passed": true\n\}\n```/);
  assert.match(text, /Not written \(tracing is off\)\./);
});

test("evidence names class.function locations and text verification", () => {
  const r = parseResult({
    solveId: "s",
    status: "patched",
    candidates: [
      {
        files: [{ path: "a.py", oldText: "x", newText: "y" }],
        evidence: { locations: [{ file: "a.py", class: "Stats", function: "mean", reason: "" }], verification: "2 passed" },
      },
    ],
  });
  const text = formatEvidence(r, 0);
  assert.match(text, /^- `a.py` · `Stats.mean`$/m);
  assert.match(text, /```text\n2 passed\n```/);
});

test("fences and inline code survive backticks in the text", () => {
  assert.equal(fenced("a\n```\nb", "diff"), "````diff\na\n```\nb\n````");
  assert.equal(fenced("plain\n"), "```\nplain\n```");
  assert.equal(inlineCode("a`b"), "``a`b``");
  assert.equal(inlineCode("`x"), "`` `x ``");
});

test("evidence says why each file was read when the server tells", () => {
  const r = parseResult({
    solveId: "s",
    status: "patched",
    message: "1 patch to review",
    candidates: [
      {
        index: 0,
        diff: "",
        files: [{ path: "a.py", uri: "file:///r/a.py", oldText: "x\n", newText: "y\n" }],
        evidence: { files: ["a.py", "b.py"], why: { "a.py": "chosen by the model; defines mean", "b.py": 3 } },
      },
    ],
  });
  const text = formatEvidence(r, 0);
  assert.match(text, /^1\. `a.py` — chosen by the model; defines mean\n2\. `b.py`$/m);
});
