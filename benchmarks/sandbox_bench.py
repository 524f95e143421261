"""Sandbox overhead per run: bare (no sandbox) vs bubblewrap vs a container (Docker API).

Usage: python benchmarks/sandbox_bench.py [-n 15] [--docker-url unix:///PATH/podman.sock --image NAME]

Two commands in a scratch folder holding a tiny package and its pytest file:
`python -c pass` and `python -m pytest -q -p no:cacheprovider tests`. Prints the median
(and min/max) wall time of N runs for each sandbox, and the overhead over bare.
The container runs the image's python3, so its pytest may differ from the host's.

Then the test environment (agent/environment.py) of a tiny installable package: the cold
build (venv, pip install of the package, pytest) and a cache hit, in a fresh cache folder.
pip uses the host's configuration (network or PIP_FIND_LINKS/PIP_NO_INDEX); --no-env skips it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from swe_reasoner.agent.sandbox import BwrapSandbox, DockerSandbox, LocalSandbox, SandboxUnavailable

FILES = {
    "calc/__init__.py": "",
    "calc/stats.py": "def mean(v):\n    return sum(v) / len(v)\n",
    "tests/test_stats.py": "from calc.stats import mean\n\n\ndef test_mean():\n    assert mean([2, 4]) == 3\n",
}


def time_runs(sb, work: Path, command: list[str], n: int) -> list[float]:
    sb.run(work, command, timeout=120, env={"PYTHONPATH": "."})  # warm-up (page cache, image layers)
    times = []
    for _ in range(n):
        r = sb.run(work, command, timeout=120, env={"PYTHONPATH": "."})
        if r.exit_code != 0:
            raise SystemExit(f"{sb.name}: {command} failed: {r.describe()}\n{r.output[-2000:]}")
        times.append(r.seconds)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=15)
    ap.add_argument("--docker-url", default="")
    ap.add_argument("--image", default="")
    ap.add_argument("--no-env", action="store_true", help="skip the test environment build")
    args = ap.parse_args()

    boxes = [(LocalSandbox(i_understand_this_is_unsafe=True), sys.executable)]
    try:
        boxes.append((BwrapSandbox(), sys.executable))
    except SandboxUnavailable as exc:
        print(f"bwrap: skipped ({str(exc).splitlines()[0]})")
    if args.image:
        try:
            boxes.append((DockerSandbox(args.image, base_url=args.docker_url or None), "python3"))
        except SandboxUnavailable as exc:
            print(f"docker: skipped ({str(exc).splitlines()[0]})")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for rel, text in FILES.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(text)
        for label, tail in [("python -c pass", ["-c", "pass"]),
                            ("pytest (1 test)", ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])]:
            print(f"\n{label}: median of {args.n} runs (min-max)")
            bare = None
            for sb, py in boxes:
                times = time_runs(sb, work, [py, *tail], args.n)
                med = statistics.median(times)
                bare = med if bare is None else bare
                extra = "" if sb.name == "none" else f"   +{(med - bare) * 1000:7.1f} ms over bare"
                print(f"  {sb.name:7s} {med * 1000:8.1f} ms  ({min(times) * 1000:.1f}-{max(times) * 1000:.1f}){extra}")
    if not args.no_env:
        bench_environment(args.n)


def bench_environment(n: int) -> None:
    from swe_reasoner.agent.environment import prepare
    from swe_reasoner.agent.repo import Repo

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        files = {**FILES, "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\n'
                 'build-backend = "setuptools.build_meta"\n[project]\nname = "calc"\nversion = "0.1"\n'
                 '[tool.setuptools]\npackages = ["calc"]\n'}
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        for cmd in (["init", "-q"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q",
                                                    "-m", "x"]):
            subprocess.run(["git", "-C", str(root), *cmd], check=True)
        repo, cache = Repo.open(root), Path(tmp) / "cache"
        started = time.perf_counter()
        env = prepare(repo, cache_dir=cache)
        cold = time.perf_counter() - started
        hits = []
        for _ in range(n):
            started = time.perf_counter()
            assert prepare(repo, cache_dir=cache).cached
            hits.append(time.perf_counter() - started)
        print(f"\ntest environment (venv + pip install . + pytest): cold build {cold:.2f} s; "
              f"cache hit median {statistics.median(hits) * 1000:.1f} ms "
              f"({min(hits) * 1000:.1f}-{max(hits) * 1000:.1f}, {n} runs; detect() included)")
        del env


if __name__ == "__main__":
    main()
