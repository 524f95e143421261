// Sample server messages shaped as docs/lsp.md describes them.

import type { ClientLike } from "../../src/controller";

export function sampleResult(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    solveId: "3f2a9c",
    status: "patched",
    message: "2 patches",
    trajectory: "/home/u/.local/state/swe-reasoner/trajectories/3f2a9c.jsonl",
    candidates: [
      {
        index: 0,
        diff: "diff --git a/calc/stats.py b/calc/stats.py\n--- a/calc/stats.py\n+++ b/calc/stats.py\n@@ -1,2 +1,2 @@\n def mean(xs):\n-    return sum(xs) / (len(xs) - 1)\n+    return sum(xs) / len(xs)\n",
        files: [
          {
            path: "calc/stats.py",
            uri: "file:///repo/calc/stats.py",
            oldText: "def mean(xs):\n    return sum(xs) / (len(xs) - 1)\n",
            newText: "def mean(xs):\n    return sum(xs) / len(xs)\n",
          },
        ],
        evidence: {
          files: ["calc/stats.py", "calc/__init__.py"],
          locations: [{ file: "calc/stats.py", class: "", function: "mean", reason: "wrong divisor" }],
          scores: { prm: 0.8, orm: 1.2 },
          verification: null,
        },
      },
      {
        index: 1,
        diff: "diff --git a/calc/stats.py b/calc/stats.py\n…",
        files: [
          {
            path: "calc/stats.py",
            uri: "file:///repo/calc/stats.py",
            oldText: "def mean(xs):\n    return sum(xs) / (len(xs) - 1)\n",
            newText: "def mean(xs):\n    n = len(xs)\n    return sum(xs) / n\n",
          },
          {
            path: "tests/test_mean.py",
            uri: "file:///repo/tests/test_mean.py",
            oldText: "",
            newText: "from calc.stats import mean\n\ndef test_mean():\n    assert mean([1, 2, 3]) == 2\n",
          },
        ],
        evidence: {
          files: ["calc/stats.py"],
          locations: [],
          scores: {},
          verification: { tests: ["tests/test_mean.py::test_mean"], passed: true },
        },
      },
    ],
    ...overrides,
  };
}

export interface SentRequest {
  method: string;
  params: any;
}

/** A language client that records requests and answers them with `respond`. */
export class FakeClient implements ClientLike {
  started = 0;
  stopped = 0;
  requests: SentRequest[] = [];
  notifications: SentRequest[] = [];
  handlers = new Map<string, (params: unknown) => void>();
  startError: Error | undefined;
  respond: (method: string, params: any) => unknown = () => null;

  async start(): Promise<void> {
    this.started += 1;
    if (this.startError !== undefined) {
      throw this.startError;
    }
  }

  async stop(): Promise<void> {
    this.stopped += 1;
  }

  async sendRequest<R>(method: string, params: unknown): Promise<R> {
    this.requests.push({ method, params });
    return (await this.respond(method, params)) as R;
  }

  async sendNotification(method: string, params: unknown): Promise<void> {
    this.notifications.push({ method, params });
  }

  onNotification(method: string, handler: (params: unknown) => void) {
    this.handlers.set(method, handler);
    return { dispose: () => this.handlers.delete(method) };
  }

  /** Delivers a server notification as the languageclient would. */
  deliver(method: string, params: unknown): void {
    const handler = this.handlers.get(method);
    if (handler === undefined) {
      throw new Error(`no handler for ${method}`);
    }
    handler(params);
  }

  /** The executeCommand requests, as {command, argument}. */
  commands(): { command: string; argument: any }[] {
    return this.requests
      .filter((r) => r.method === "workspace/executeCommand")
      .map((r) => ({ command: r.params.command, argument: r.params.arguments[0] }));
  }
}
