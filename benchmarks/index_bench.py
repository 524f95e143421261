"""Index build (cold and warm), retrieval and search-tool latency on a large real repository.

Usage: python benchmarks/index_bench.py SOURCE
  SOURCE: a git repository, or a source folder or sdist (.tar.gz) that is turned into one,
  e.g. sympy's sdist: pip download --no-deps --no-binary sympy sympy==1.13.3
Targets on a 2-core machine (500k lines): cold < 10 s, warm < 0.5 s, a search call < 20 ms.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from swe_reasoner.agent.index import RepoIndex
from swe_reasoner.agent.repo import Repo
from swe_reasoner.agent.retrieval import Retriever
from swe_reasoner.agent.tools import SearchTools


def as_repo(source: Path, work: Path) -> Path:
    if (source / ".git").exists():
        return source
    if source.suffixes[-2:] == [".tar", ".gz"]:
        with tarfile.open(source) as tar:
            tar.extractall(work, filter="data")
        source = next(p for p in work.iterdir() if p.is_dir())
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(source), *args], check=True)
    return source


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Repo.open(as_repo(args.source.resolve(), Path(tmp)))
        cache = Path(tmp) / "cache"
        cold, index = timed(lambda: RepoIndex.build(repo, cache))
        warm, index = timed(lambda: RepoIndex.build(repo, cache), repeat=3)
        print(f"repository: {repo.root.name}, {len(index.files)} Python files, {index.lines():,} lines, "
              f"{len(index.symbols()):,} definitions")
        print(f"index cold: {cold:.2f} s   warm: {warm:.3f} s")
        build, retriever = timed(lambda: Retriever(index))
        issue = "solve() returns a wrong result for a Matrix with symbolic entries; det() of a 3x3 also fails"
        rank, top = timed(lambda: retriever.rank(issue, top=5), repeat=5)
        print(f"bm25 build: {build:.2f} s   rank: {rank * 1000:.1f} ms   top: {[r.path for r in top[:3]]}")
        tools = SearchTools(index)
        tools.search_code("x")  # loads file texts once
        calls = [("search_class", {"class_name": "MutableDenseMatrix"}), ("search_method", {"method_name": "det"}),
                 ("search_method_in_class", {"method_name": "__new__", "class_name": "Basic"}),
                 ("search_code", {"code": "def _eval_is_zero"}), ("search_class_in_file",
                 {"class_name": "Add", "file_path": "sympy/core/add.py"})]
        for name, call_args in calls:
            t, result = timed(lambda: tools.call(name, call_args), repeat=5)
            print(f"{name}: {t * 1000:.1f} ms ({len(result.found)} found)")


if __name__ == "__main__":
    main()
