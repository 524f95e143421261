"""Resolve rate against budget for each strategy: the test-time scaling curve.

Runs `swe-reasoner eval` (agent.evaluation.evaluate) once per (strategy, budget)
on SWE-bench-format instances with tests (the injected-bug benchmark's test
split, benchmarks/injected/), with one model loaded once, candidates verified
in bubblewrap and each prediction judged by the instance's own tests. Each run
writes DIR/STRATEGY-bB.jsonl (predictions; a rerun resumes) with its report and
summary beside it; the table at the end gives, per strategy and budget: the
resolve rate, patched instances, and per instance the wall time, the prompt
tokens the runtime evaluated and the tokens generated. At budget 1, exec,
orm-exec and dev-search are one computation (a single greedy rollout, verified;
no reward model has anything to choose) and run once.

Usage
  python benchmarks/injected/build.py --out /tmp/injected       # once (downloads the pinned sdists)
  python benchmarks/budget_bench.py --instances /tmp/injected/test.jsonl --repos /tmp/injected/repos \\
      --model smollm2-135m --out /tmp/budget [--budgets 1 2 4 8] [--strategies exec voting ...]
      [--limit N] [--max-tokens 1024] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# At budget 1 these are the same computation: one greedy rollout, verified, no reward model
# called (nothing to choose between): the first one's run stands for the others.
SAME_AT_ONE = ("exec", "orm-exec", "dev-search")


def main(argv: list[str] | None = None) -> int:
    from swe_reasoner.agent.config import STRATEGIES, Settings, load_model, solve_options
    from swe_reasoner.agent.evaluation import evaluate
    from swe_reasoner.agent.harness import read_instances
    from swe_reasoner.agent.sandbox import pick_sandbox

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instances", required=True)
    p.add_argument("--repos", required=True)
    p.add_argument("--model", required=True, help="a GGUF file or smollm2-135m")
    p.add_argument("--out", required=True, help="a folder for the predictions, reports and the table")
    p.add_argument("--budgets", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    p.add_argument("--limit", type=int, help="the first N instances only")
    p.add_argument("--max-tokens", type=int, default=1024)
    p.add_argument("--n-ctx", type=int, default=8192)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--adaptive", action="store_true")
    p.add_argument("--table-only", action="store_true", help="rebuild the table from the runs already in --out")
    args = p.parse_args(argv)

    instances = read_instances(args.instances)[: args.limit]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.table_only:
        rows = [_row(s, b, out / f"{s}-b{b}.report.jsonl") for b in args.budgets for s in args.strategies
                if (out / f"{s}-b{b}.report.jsonl").exists()]
        print(_write(out, _same_at_one(rows), len(instances), args.model))
        return 0
    sandbox = pick_sandbox("bwrap")
    model = load_model(Settings(model=args.model, n_ctx=args.n_ctx).validate())
    rows: list[dict] = []
    try:
        for budget in args.budgets:
            for strategy in args.strategies:
                twin = next((r for r in rows if r["budget"] == 1 == budget and r["strategy"] in SAME_AT_ONE), None)
                if strategy in SAME_AT_ONE and twin:
                    rows.append({**twin, "strategy": strategy, "same_as": twin["strategy"]})
                    continue
                settings = Settings(model=args.model, budget=budget, strategy=strategy, adaptive=args.adaptive,
                                    max_tokens=args.max_tokens).validate()
                name = f"{strategy}-b{budget}"
                started = time.perf_counter()
                evaluate(instances, Path(args.repos), out / f"{name}.jsonl", model,
                         solve_options(settings, sandbox=sandbox), model.name,
                         progress=lambda line: print(line, file=sys.stderr), workers=args.workers)
                rows.append(_row(strategy, budget, out / f"{name}.report.jsonl"))
                print(f"{name}: {json.dumps(rows[-1])}  ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
                _write(out, rows, len(instances), model.name)  # after each run: a cut-off run leaves its table
    finally:
        model.close()
    print(_write(out, rows, len(instances), model.name))
    return 0


def _write(out: Path, rows: list[dict], n: int, model: str) -> str:
    table = _table(rows, n, model)
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    (out / "table.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return table


def _same_at_one(rows: list[dict]) -> list[dict]:
    """The budget-1 rows of the strategies that run once there, from the one that ran."""
    twin = next((r for r in rows if r["budget"] == 1 and r["strategy"] in SAME_AT_ONE), None)
    ran = {(r["strategy"], r["budget"]) for r in rows}
    extra = [{**twin, "strategy": s, "same_as": twin["strategy"]} for s in SAME_AT_ONE
             if twin and (s, 1) not in ran]
    return sorted(rows + extra, key=lambda r: (r["budget"], r["strategy"]))


def _row(strategy: str, budget: int, report: Path) -> dict:
    from swe_reasoner.agent.evaluation import summarize

    summary = summarize(report)
    records = {}
    for line in report.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        records[record["instance_id"]] = record  # the latest run of each instance
    n = max(len(records), 1)
    stages = [r.get("stages", {}) for r in records.values()]
    return {
        "strategy": strategy, "budget": budget, "instances": len(records),
        "resolved": summary["resolved"], "resolve_rate": summary["resolved_rate"], "patched": summary["patched"],
        "seconds_per_instance": round(sum(r["seconds"] for r in records.values()) / n, 1),
        "prompt_tokens_per_instance": round(sum(s["prompt_tokens"] for st in stages for s in st.values()) / n),
        "completion_tokens_per_instance": round(sum(s["completion_tokens"] for st in stages for s in st.values()) / n),
    }


def _table(rows: list[dict], n: int, model: str) -> str:
    lines = [f"{n} instances, model {model}", "",
             "| strategy | budget | instances | resolved | patched | s / instance | prompt tokens / instance | generated / instance |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rate = "" if r["resolve_rate"] is None else f" ({100 * r['resolve_rate']:.0f}%)"
        same = f" (= {r['same_as']})" if r.get("same_as") else ""
        lines.append(f"| {r['strategy']}{same} | {r['budget']} | {r['instances']} | {r['resolved']}{rate} | {r['patched']} | "
                     f"{r['seconds_per_instance']} | {r['prompt_tokens_per_instance']} | "
                     f"{r['completion_tokens_per_instance']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
