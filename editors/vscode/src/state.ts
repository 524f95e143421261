// The result being reviewed and which of its candidates is shown.
// No `vscode` import: unit-tested under plain Node.

import { Candidate, SolveResult } from "./protocol";

export interface CurrentCandidate {
  result: SolveResult;
  candidate: Candidate;
  /** Position in result.candidates (what sweReasoner.apply takes). */
  index: number;
  count: number;
}

export class ResultState {
  private result: SolveResult | undefined;
  private index = 0;

  /**
   * Keeps a patched result with candidates, showing its first candidate, and
   * returns true. Any other result (no patch, cancelled, failed) leaves the
   * state as it was and returns false: an earlier result stays reviewable.
   */
  set(result: SolveResult): boolean {
    if (result.status !== "patched" || result.candidates.length === 0) {
      return false;
    }
    this.result = result;
    this.index = 0;
    return true;
  }

  clear(): void {
    this.result = undefined;
    this.index = 0;
  }

  get solveId(): string | undefined {
    return this.result?.solveId;
  }

  /** The kept result, whichever candidate is shown. */
  get held(): SolveResult | undefined {
    return this.result;
  }

  get current(): CurrentCandidate | undefined {
    const result = this.result;
    if (result === undefined) {
      return undefined;
    }
    return { result, candidate: result.candidates[this.index], index: this.index, count: result.candidates.length };
  }

  /** Moves to the next candidate, wrapping around after the last. */
  next(): CurrentCandidate | undefined {
    if (this.result !== undefined) {
      this.index = (this.index + 1) % this.result.candidates.length;
    }
    return this.current;
  }

  /** Moves to the previous candidate, wrapping around before the first. */
  previous(): CurrentCandidate | undefined {
    if (this.result !== undefined) {
      const n = this.result.candidates.length;
      this.index = (this.index + n - 1) % n;
    }
    return this.current;
  }

  /** Whether the state still shows this solve's candidate (a stale notification must not act). */
  isCurrent(solveId: string, index: number): boolean {
    return this.result !== undefined && this.result.solveId === solveId && this.index === index;
  }
}
