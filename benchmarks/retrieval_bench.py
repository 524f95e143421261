"""File-localization quality of `swe-reasoner locate` (no model: BM25 plus boosts) on real issues.

For each instance (an issue text and the patch that fixed it) the Retriever ranks the
repository's Python files exactly as `locate` does without a model, and the bench checks where
the files the fix touched ("gold" files) land. It prints, per repository and overall, the
share of instances with ALL gold files in the top 1/3/5/10, the share with ANY gold file in
the top 5, and timings: index build (cold and warm), BM25 build, mean query time (index warm).
Instances are also split in two halves by a fixed hash of instance_id ("tune" and "held-out"),
so that a change tuned on one half can be checked on the other.

Data
  --instances: JSONL in SWE-bench form, one instance a line, with instance_id, repo
  ("owner/name"), problem_statement, patch (the gold diff) and optionally version. SWE-bench
  (Lite, Verified) has them, e.g. `datasets.load_dataset("princeton-nlp/SWE-bench_Lite",
  split="test").to_json("lite.jsonl")` where Hugging Face is reachable.
  --repos: one git repository per instance repository, DIR/OWNER__NAME/VERSION when that folder
  exists (per-version checkouts), else DIR/OWNER__NAME. The most faithful checkout is the
  instance's base_commit; where GitHub is out of reach the PyPI sdist of the release matching
  `version` is a close stand-in (the latest X.Y.* release, or the first release after X.Y when
  there is none, e.g. pytest 6.3 -> 7.0.0): extract it into DIR/OWNER__NAME/VERSION, then
  `git init -q && git add -A -f && git commit -qm sdist` there (the index needs a git repo).
  benchmarks/README.md says which instances and releases the published figures used.

Gold files are the .py files in the patch's `diff --git` headers (the index covers Python
only; other files are ignored). An instance whose gold .py files are not all in its checkout,
or that has none, is dropped and counted. Where a release checkout keeps `pkg/mod.py` only as a
short shim beside `pkg/_mod.py` (made private after the base commit), `_mod.py` is the gold.

Usage
  python benchmarks/retrieval_bench.py --instances lite.jsonl --repos repos/ --misses
  options: --only REPO (repeatable), --split tune|heldout, --misses (list instances whose gold
  files are not all in the top 5), --json FILE (per-instance ranks), --cache DIR (reuse the
  index cache between runs; "index cold" is then only cold on the first run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from swe_reasoner.agent.index import RepoIndex
from swe_reasoner.agent.repo import Repo
from swe_reasoner.agent.retrieval import Retriever

CUTOFFS = (1, 3, 5, 10)
_DIFF_HEADER = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)


@dataclass
class Result:
    instance_id: str
    repo: str
    half: str
    gold: list[str]
    ranks: dict[str, int | None]  # gold file -> 1-based rank, None when not ranked
    seconds: float

    def all_within(self, k: int) -> bool:
        return all(r is not None and r <= k for r in self.ranks.values())

    def any_within(self, k: int) -> bool:
        return any(r is not None and r <= k for r in self.ranks.values())


@dataclass
class RepoStats:
    files: int = 0
    index_cold: float = 0.0
    index_warm: float = 0.0
    bm25_build: float = 0.0
    moved: int = 0  # gold files found under their later private name (see moved_gold)
    dropped: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def gold_files(patch: str) -> list[str]:
    files = [b for _, b in _DIFF_HEADER.findall(patch)]
    return list(dict.fromkeys(f for f in files if f.endswith(".py")))


SHIM_LINES = 40  # a module this short next to its _private twin is a deprecation shim


def moved_gold(path: str, index: RepoIndex) -> str:
    """Where a gold file's code lives in a checkout that is newer than the base commit.

    A release that made a module private keeps `pkg/mod.py` only as a short deprecation shim
    next to `pkg/_mod.py` (scikit-learn 0.22 did this for most modules); the code is in the latter.
    """
    p = PurePosixPath(path)
    private = str(p.with_name("_" + p.name))
    if p.name.startswith("_") or private not in index.files or path not in index.files:
        return path
    return private if index.entry(path).lines <= SHIM_LINES else path


def half_of(instance_id: str) -> str:
    """A fixed split: the parity of the first byte of sha1(instance_id)."""
    return "tune" if hashlib.sha1(instance_id.encode()).digest()[0] % 2 == 0 else "heldout"


def checkout_for(repos: Path, inst: dict) -> Path | None:
    base = repos / inst["repo"].replace("/", "__")
    version = str(inst.get("version") or "")
    for cand in ([base / version] if version else []) + [base]:
        if (cand / ".git").exists():
            return cand
    return None


def load_instances(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def evaluate(instances: list[dict], repos: Path, cache: Path) -> tuple[list[Result], dict[str, RepoStats]]:
    by_checkout: dict[Path, list[dict]] = defaultdict(list)
    stats: dict[str, RepoStats] = defaultdict(RepoStats)
    for inst in instances:
        where = checkout_for(repos, inst)
        if where is None:
            stats[inst["repo"]].dropped["no checkout"] += 1
        elif not gold_files(inst["patch"]):
            stats[inst["repo"]].dropped["no .py gold file"] += 1
        else:
            by_checkout[where].append(inst)

    results: list[Result] = []
    for where, group in sorted(by_checkout.items()):
        repo_name = group[0]["repo"]
        st = stats[repo_name]
        repo = Repo.open(where)
        start = time.perf_counter()
        RepoIndex.build(repo, cache)  # cold: parses every file, writes the cache
        st.index_cold = max(st.index_cold, time.perf_counter() - start)
        start = time.perf_counter()
        index = RepoIndex.build(repo, cache)  # warm: what a second `locate` pays
        st.index_warm = max(st.index_warm, time.perf_counter() - start)
        start = time.perf_counter()
        retriever = Retriever(index)
        st.bm25_build = max(st.bm25_build, time.perf_counter() - start)
        st.files = max(st.files, len(index.files))
        for inst in group:
            gold = [moved_gold(g, index) for g in gold_files(inst["patch"])]
            if any(g not in index.files for g in gold):
                st.dropped["gold file not in checkout"] += 1
                continue
            st.moved += sum(g not in gold_files(inst["patch"]) for g in gold)
            start = time.perf_counter()
            ranked = [r.path for r in retriever.rank(inst["problem_statement"])]
            seconds = time.perf_counter() - start
            position = {path: i + 1 for i, path in enumerate(ranked)}
            results.append(Result(inst["instance_id"], repo_name, half_of(inst["instance_id"]), gold,
                                  {g: position.get(g) for g in gold}, seconds))
    return results, stats


def summary_row(label: str, rs: list[Result]) -> str:
    if not rs:
        return f"{label:<28} {0:>4}"
    cells = [f"{100 * sum(r.all_within(k) for r in rs) / len(rs):6.1f}" for k in CUTOFFS]
    anyk = f"{100 * sum(r.any_within(5) for r in rs) / len(rs):6.1f}"
    ms = 1000 * statistics.mean(r.seconds for r in rs)
    return f"{label:<28} {len(rs):>4} " + " ".join(cells) + f" {anyk} {ms:8.1f}"


def report(results: list[Result], stats: dict[str, RepoStats], misses: bool) -> None:
    head = f"{'repository':<28} {'n':>4} " + " ".join(f"all@{k:<2}" for k in CUTOFFS) + "  any@5  ms/query"
    print(head)
    print("-" * len(head))
    by_repo: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_repo[r.repo].append(r)
    for repo in sorted(by_repo):
        print(summary_row(repo, by_repo[repo]))
    print("-" * len(head))
    print(summary_row("ALL", results))
    for half in ("tune", "heldout"):
        print(summary_row(f"  {half} half", [r for r in results if r.half == half]))
    macro = [100 * sum(r.all_within(5) for r in rs) / len(rs) for rs in by_repo.values()]
    if macro:
        print(f"all@5 averaged over repositories (each counts once): {statistics.mean(macro):.1f}")

    print("\nper repository: Python files, index cold / warm, BM25 build (seconds), dropped instances")
    for repo in sorted(stats):
        st = stats[repo]
        dropped = ", ".join(f"{n} {why}" for why, n in sorted(st.dropped.items())) or "none"
        moved = f", {st.moved} gold file(s) found as _name.py" if st.moved else ""
        print(f"  {repo:<26} {st.files:>6} files  {st.index_cold:6.2f} / {st.index_warm:5.2f}  "
              f"{st.bm25_build:5.2f}   dropped: {dropped}{moved}")
    print(f"dropped in all: {sum(sum(st.dropped.values()) for st in stats.values())}")

    if misses:
        print("\ninstances without all gold files in the top 5 (gold file: rank)")
        for r in results:
            if not r.all_within(5):
                ranks = ", ".join(f"{g}: {rank or '-'}" for g, rank in r.ranks.items())
                print(f"  [{r.half}] {r.instance_id}  {ranks}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=Path, required=True, help="SWE-bench style JSONL")
    parser.add_argument("--repos", type=Path, required=True, help="DIR/OWNER__NAME[/VERSION] git checkouts")
    parser.add_argument("--only", action="append", default=[], help="only this owner/name (repeatable)")
    parser.add_argument("--split", choices=("tune", "heldout"), help="only one half of the instances")
    parser.add_argument("--misses", action="store_true", help="list instances missing the top 5")
    parser.add_argument("--json", type=Path, help="write per-instance ranks to this file")
    parser.add_argument("--cache", type=Path, help="index cache folder to reuse across runs (default: a fresh one)")
    args = parser.parse_args()

    instances = load_instances(args.instances)
    if args.only:
        instances = [i for i in instances if i["repo"] in args.only]
    if args.split:
        instances = [i for i in instances if half_of(i["instance_id"]) == args.split]
    if not instances:
        print("no instances", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        results, stats = evaluate(instances, args.repos, args.cache or Path(tmp))
    if not results:
        print("no instance could be evaluated (see the checkout layout in --help)", file=sys.stderr)
        return 1
    report(results, stats, args.misses)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
