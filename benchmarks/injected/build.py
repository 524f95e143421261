"""Build the injected-bug benchmark: real PyPI releases, one hand-written bug per instance.

Usage
  python benchmarks/injected/build.py --out DIR [--download-dir D | --sdists D] [--spec FILE]
                                      [--python PY] [--timeout S]
  --spec: the bug specs (default: bugs.toml beside this file).
  --sdists D: use the pinned sdists already in D; nothing is downloaded.
  --download-dir D: download the pinned sdists into D (default DIR/sdists); a file already
    there with the right sha256 is reused. Every file is checked against its sha256.
  --python: the interpreter that runs the projects' tests (default: this one; needs pytest).

Output
  DIR/repos/injected__PROJECT: a git repository per project. Commit 1 (branch main) is the
  pristine release; each bug is one commit on top of it, tagged with the bug's id, and is that
  instance's base_commit. Author, committer and dates are fixed, so the hashes are reproducible.
  DIR/dev.jsonl, DIR/test.jsonl: the instances in SWE-bench form (instance_id
  injected__PROJECT-N, repo injected/PROJECT), as agent/harness.py's read_instances reads them.

Every instance is checked before the files are written, in a temporary worktree at its base
commit: with the test_patch applied, its FAIL_TO_PASS test fails and its PASS_TO_PASS tests
pass; with the gold patch applied too, all of them pass. Any bug that cannot be injected or
fails the check is a build error that names it; nothing is written then.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

KINDS = ("operator-swap", "off-by-one", "wrong-condition", "wrong-default", "missing-case")
SPLITS = ("dev", "test")
DATE = "2025-01-01T00:00:00+00:00"
IDENTITY = {"GIT_AUTHOR_NAME": "swe-reasoner injected", "GIT_AUTHOR_EMAIL": "injected@swe-reasoner.invalid",
            "GIT_COMMITTER_NAME": "swe-reasoner injected", "GIT_COMMITTER_EMAIL": "injected@swe-reasoner.invalid",
            "GIT_AUTHOR_DATE": DATE, "GIT_COMMITTER_DATE": DATE}
INDEX_URL = "https://pypi.org/simple/{name}/"
SPEC = Path(__file__).with_name("bugs.toml")

Progress = Callable[[str], None]


class BuildError(Exception):
    """A spec, a download or an instance is wrong; the message names which."""


@dataclass(frozen=True)
class Project:
    name: str  # the PyPI name; the repository is injected/<name>
    version: str
    sdist: str  # the sdist's file name on PyPI
    sha256: str
    license: str


@dataclass(frozen=True)
class Bug:
    id: str  # "<project>-<n>"; the instance is injected__<id>
    project: str
    kind: str
    split: str
    file: str
    original: str  # a substring of `file` found exactly once in the release
    buggy: str  # what replaces it
    issue: str
    test_file: str  # created, or appended to when the release has it
    test: str  # the source of one pytest test function (and its imports)
    pass_to_pass: tuple[str, ...] = ()

    @property
    def instance_id(self) -> str:
        return f"injected__{self.id}"

    @property
    def fail_to_pass(self) -> str:
        names = [n.name for n in ast.parse(self.test).body
                 if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
        return f"{self.test_file}::{names[0]}"


_PROJECT_KEYS = {"version", "sdist", "sha256", "license"}
_BUG_KEYS = {"id", "project", "kind", "split", "file", "original", "buggy", "issue", "test_file", "test"}


def load_spec(path: Path) -> tuple[dict[str, Project], list[Bug]]:
    """The projects and bugs of a spec file, checked field by field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"cannot read the spec {path}: {exc}") from None
    projects = {}
    for name, fields in data.get("projects", {}).items():
        _require(fields, _PROJECT_KEYS, f"{path}: project {name}")
        _no_unknown(fields, _PROJECT_KEYS, f"{path}: project {name}")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise BuildError(f"{path}: project {name!r}: use letters, digits, '.', '_' and '-' only")
        if not re.fullmatch(r"[0-9a-f]{64}", fields["sha256"]):
            raise BuildError(f"{path}: project {name}: sha256 must be 64 lowercase hex digits")
        projects[name] = Project(name, fields["version"], fields["sdist"], fields["sha256"], fields["license"])
    bugs, seen = [], set()
    for n, fields in enumerate(data.get("bugs", []), start=1):
        where = f"{path}: bug {fields.get('id', f'#{n}')}"
        _require(fields, _BUG_KEYS, where)
        _no_unknown(fields, _BUG_KEYS | {"pass_to_pass"}, where)
        bug = Bug(**{k: fields[k] for k in _BUG_KEYS}, pass_to_pass=tuple(fields.get("pass_to_pass", [])))
        _check_bug(bug, projects, seen, where)
        seen.add(bug.id)
        bugs.append(bug)
    if not bugs:
        raise BuildError(f"{path}: no [[bugs]]")
    return projects, bugs


def _require(fields: dict, keys: set[str], where: str) -> None:
    missing = sorted(k for k in keys if not isinstance(fields.get(k), str) or not fields[k].strip())
    if missing:
        raise BuildError(f"{where}: missing or empty {', '.join(missing)}")


def _no_unknown(fields: dict, keys: set[str], where: str) -> None:
    unknown = sorted(set(fields) - keys)
    if unknown:
        raise BuildError(f"{where}: unknown field {', '.join(unknown)}")


def _check_bug(bug: Bug, projects: dict[str, Project], seen: set[str], where: str) -> None:
    if bug.id in seen:
        raise BuildError(f"{where}: the id appears twice")
    if bug.project not in projects:
        raise BuildError(f"{where}: unknown project {bug.project!r}")
    if not re.fullmatch(re.escape(bug.project) + r"-\d+", bug.id):
        raise BuildError(f"{where}: the id must be {bug.project}-<number>")
    if bug.kind not in KINDS:
        raise BuildError(f"{where}: kind must be one of {', '.join(KINDS)}, not {bug.kind!r}")
    if bug.split not in SPLITS:
        raise BuildError(f"{where}: split must be dev or test, not {bug.split!r}")
    if bug.original == bug.buggy:
        raise BuildError(f"{where}: buggy is the same as original")
    if bug.test_file == bug.file:
        raise BuildError(f"{where}: the test must not go into the file that has the bug")
    for rel in (bug.file, bug.test_file):
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts:
            raise BuildError(f"{where}: {rel} must be a relative path inside the project")
    try:
        tree = ast.parse(bug.test)
    except SyntaxError as exc:
        raise BuildError(f"{where}: the test does not parse: {exc}") from None
    tests = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
    if len(tests) != 1:
        raise BuildError(f"{where}: the test must define exactly one test function, not {len(tests)}")
    if not all(isinstance(t, str) and "::" in t for t in bug.pass_to_pass):
        raise BuildError(f"{where}: pass_to_pass must be pytest node ids (file::name)")


# ---- sdists -------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def local_sdist(project: Project, folder: Path) -> Path:
    path = folder / project.sdist
    if not path.is_file():
        raise BuildError(f"{project.name}: {path} is missing (download it, or drop --sdists)")
    if sha256_of(path) != project.sha256:
        raise BuildError(f"{project.name}: {path} does not have the pinned sha256 {project.sha256}")
    return path


def download_sdist(project: Project, folder: Path, progress: Progress) -> Path:
    """The pinned sdist in `folder`, downloaded from PyPI unless already there."""
    path = folder / project.sdist
    if path.is_file() and sha256_of(path) == project.sha256:
        progress(f"{project.sdist}: already downloaded, sha256 ok")
        return path
    folder.mkdir(parents=True, exist_ok=True)
    index = INDEX_URL.format(name=project.name)
    try:
        with urllib.request.urlopen(index, timeout=60) as resp:
            page = resp.read().decode("utf-8", errors="replace")
        match = re.search(r'href="([^"#]*/' + re.escape(project.sdist) + r')(#[^"]*)?"', page)
        if not match:
            raise BuildError(f"{project.name}: {project.sdist} is not listed at {index}")
        url = urllib.parse.urljoin(index, match.group(1))
        progress(f"{project.sdist}: downloading {url}")
        part = path.with_name(path.name + ".part")
        with urllib.request.urlopen(url, timeout=120) as resp, part.open("wb") as fh:
            shutil.copyfileobj(resp, fh)
    except OSError as exc:
        raise BuildError(f"{project.name}: cannot download {project.sdist}: {exc}") from None
    got = sha256_of(part)
    if got != project.sha256:
        part.unlink()
        raise BuildError(f"{project.name}: {project.sdist} has sha256 {got}, not the pinned {project.sha256}")
    part.replace(path)
    progress(f"{project.sdist}: {path.stat().st_size:,} bytes, sha256 ok")
    return path


def extract(sdist: Path, dest: Path) -> Path:
    """The sdist's files (its one top folder stripped) in `dest`; byte code is left out."""
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers()
                   if "__pycache__" not in m.name.split("/") and not m.name.endswith((".pyc", ".pyo"))]
        tops = {m.name.split("/")[0] for m in members}
        if len(tops) != 1:
            raise BuildError(f"{sdist.name}: expected one top folder, found {sorted(tops)}")
        tar.extractall(dest, members=members, filter="data")
    return dest / tops.pop()


# ---- git ----------------------------------------------------------------------------------


def git(root: Path, *args: str, input: str | None = None, env: dict | None = None) -> str:
    """git in `root`, blind to the user's and the system's git settings."""
    full_env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C",
                "GIT_TERMINAL_PROMPT": "0", **IDENTITY, **(env or {})}
    settings = ["-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false", "-c", f"core.hooksPath={os.devnull}"]
    proc = subprocess.run(["git", "-C", str(root), *settings, *args], input=input, capture_output=True, text=True,
                          env=full_env)
    if proc.returncode != 0:
        raise BuildError(f"git {' '.join(args)} failed in {root}: {proc.stderr.strip()}")
    return proc.stdout


def pristine_repo(tree: Path, repo: Path, project: Project) -> str:
    """A new repository at `repo` whose one commit (branch main) holds `tree`; its hash."""
    if repo.exists():
        if not (repo / ".git").is_dir():
            raise BuildError(f"{repo} exists and is not a git repository; move it away")
        shutil.rmtree(repo)
    shutil.copytree(tree, repo, symlinks=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A", "-f")
    git(repo, "commit", "-q", "--no-verify", "-m", f"{project.name} {project.version} (sdist {project.sdist})")
    return git(repo, "rev-parse", "HEAD").strip()


def bug_commit(repo: Path, pristine: str, bug: Bug) -> str:
    """The pristine tree with the bug's substitution, committed on top of it and tagged with its id."""
    try:
        text = git(repo, "show", f"{pristine}:{bug.file}")
    except BuildError:
        raise BuildError(f"{bug.id}: {bug.file} is not in {bug.project}") from None
    found = text.count(bug.original)
    if found != 1:
        raise BuildError(f"{bug.id}: the original snippet occurs {found} times in {bug.file}, not exactly once")
    blob = git(repo, "hash-object", "-w", "--stdin", "--path", bug.file,
               input=text.replace(bug.original, bug.buggy)).strip()
    mode = git(repo, "ls-tree", pristine, "--", bug.file).split()[0]
    with tempfile.TemporaryDirectory() as tmp:
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(repo, "read-tree", pristine, env=index)
        git(repo, "update-index", "--cacheinfo", f"{mode},{blob},{bug.file}", env=index)
        tree = git(repo, "write-tree", env=index).strip()
    commit = git(repo, "commit-tree", tree, "-p", pristine, "-m", bug.id).strip()
    git(repo, "tag", "-f", bug.id, commit)
    return commit


# ---- checks -------------------------------------------------------------------------------


def pytest_outcomes(root: Path, node_ids: list[str], python: str, timeout: float) -> tuple[dict[str, str], str]:
    """node id -> PASSED/FAILED/ERROR/... (missing when pytest did not report it), and pytest's output.

    As `swe-reasoner eval` judges (plain pytest, the project root on PYTHONPATH, the project's own
    pytest settings), but blind to the plugins installed beside `python`, so the check does not
    depend on them: a project whose settings need a plugin (e.g. --cov in addopts) fails here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST"))}
    env.update(PYTHONPATH=str(root), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONDONTWRITEBYTECODE="1",
               PYTHONHASHSEED="0")
    cmd = [python, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "--color=no", "--rootdir", str(root),
           *node_ids]
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BuildError(f"pytest took more than {timeout:.0f} s") from None
    return parse_outcomes(proc.stdout, node_ids), proc.stdout + proc.stderr


def parse_outcomes(output: str, node_ids: list[str]) -> dict[str, str]:
    """Outcomes from pytest's -rA summary. FAILED or ERROR wins over PASSED (an error in
    teardown), and a failed subtest ("SUBFAILED(params) node" beside "PASSED node" in
    pytest >= 9) fails its test."""
    outcomes: dict[str, str] = {}
    for line in output.splitlines():
        status, _, rest = line.partition(" ")
        for node in node_ids:
            if status.startswith("SUBFAILED") and (line.endswith(" " + node) or f" {node} - " in line):
                outcomes[node] = "FAILED"
            elif rest == node or rest.startswith(node + " "):
                if status in ("FAILED", "ERROR") or node not in outcomes:
                    outcomes[node] = status
    return outcomes


def make_test_patch(work: Path, bug: Bug) -> str:
    """The diff that adds the bug's test to the checkout at `work`; `work` is left as it was."""
    path = work / bug.test_file
    existed = path.exists()
    if existed:
        before = path.read_text(encoding="utf-8")
        path.write_text(before.rstrip("\n") + "\n\n\n" + bug.test, encoding="utf-8")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(bug.test, encoding="utf-8")
        git(work, "add", "--intent-to-add", "--", bug.test_file)
    patch = git(work, "diff", "--no-color", "--no-ext-diff", "--", bug.test_file)
    if existed:
        path.write_text(before, encoding="utf-8")
    else:
        git(work, "reset", "-q", "--", bug.test_file)
        path.unlink()
    return patch


def check_instance(repo: Path, bug: Bug, commit: str, gold: str, python: str, timeout: float) -> str:
    """Run the bug's tests before and after the gold patch in a temporary worktree; the test_patch."""
    with tempfile.TemporaryDirectory(prefix="injected-check-") as tmp:
        work = Path(tmp) / "work"
        git(repo, "worktree", "add", "-q", "--detach", str(work), commit)
        try:
            patch = make_test_patch(work, bug)
            _apply(work, patch, bug, "test_patch")
            _expect(work, bug, "FAILED", "before the fix", python, timeout)
            _apply(work, gold, bug, "gold patch")
            _expect(work, bug, "PASSED", "with the gold patch", python, timeout)
        finally:
            git(repo, "worktree", "remove", "--force", str(work))
    return patch


def _apply(work: Path, diff: str, bug: Bug, name: str) -> None:
    try:
        git(work, "apply", "--whitespace=nowarn", "-", input=diff)
    except BuildError as exc:
        raise BuildError(f"{bug.id}: the {name} does not apply: {exc}") from None


def _expect(work: Path, bug: Bug, f2p: str, stage: str, python: str, timeout: float) -> None:
    """FAIL_TO_PASS has outcome `f2p` and every PASS_TO_PASS test passes, or a BuildError says which not."""
    want = {bug.fail_to_pass: f2p, **{t: "PASSED" for t in bug.pass_to_pass}}
    try:
        got, output = pytest_outcomes(work, list(want), python, timeout)
    except BuildError as exc:
        raise BuildError(f"{bug.id}: {stage}: {exc}") from None
    wrong = [f"{t} {got.get(t, 'not run')} (want {w})" for t, w in want.items() if got.get(t) != w]
    if wrong:
        tail = "\n    ".join(output.strip().splitlines()[-12:])
        raise BuildError(f"{bug.id}: {stage}: {'; '.join(wrong)}\n  pytest said:\n    {tail}")


# ---- the build ----------------------------------------------------------------------------


def instance(project: Project, bug: Bug, commit: str, gold: str, tests: str) -> dict:
    return {"instance_id": bug.instance_id, "repo": f"injected/{project.name}", "base_commit": commit,
            "problem_statement": bug.issue, "patch": gold, "test_patch": tests,
            "FAIL_TO_PASS": json.dumps([bug.fail_to_pass]), "PASS_TO_PASS": json.dumps(list(bug.pass_to_pass)),
            "version": project.version, "created_at": DATE, "hints_text": "",
            "environment_setup_commit": commit}


def build(projects: dict[str, Project], bugs: list[Bug], trees: dict[str, Path], out: Path, python: str,
          timeout: float = 120.0, progress: Progress = lambda line: None) -> dict[str, list[dict]]:
    """Repositories under out/repos and out/{dev,test}.jsonl from extracted release trees.

    `trees` maps each project with bugs to its pristine source folder. Returns the instances per
    split. Raises BuildError naming every bug that could not be injected or failed its check;
    the jsonl files are written only when all pass.
    """
    _require_pytest(python)
    missing = sorted({b.project for b in bugs} - set(trees))
    if missing:
        raise BuildError(f"no source folder for {', '.join(missing)}")
    for split in SPLITS:  # a failed build must not leave an older benchmark behind
        (out / f"{split}.jsonl").unlink(missing_ok=True)
    rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
    errors = []
    for name in sorted({b.project for b in bugs}):
        project = projects[name]
        repo = out / "repos" / f"injected__{name}"
        pristine = pristine_repo(trees[name], repo, project)
        progress(f"{repo}: pristine {project.name} {project.version} at {pristine[:12]}")
        for bug in (b for b in bugs if b.project == name):
            try:
                commit = bug_commit(repo, pristine, bug)
                gold = git(repo, "diff", "--no-color", "--no-ext-diff", commit, pristine, "--", bug.file)
                tests = check_instance(repo, bug, commit, gold, python, timeout)
            except BuildError as exc:
                errors.append(str(exc))
                progress(f"  {bug.id}: FAILED: {exc}")
                continue
            rows[bug.split].append(instance(project, bug, commit, gold, tests))
            progress(f"  {bug.id} ({bug.kind}, {bug.split}): {commit[:12]}, checks passed")
        git(repo, "worktree", "prune")
    if errors:
        raise BuildError(f"{len(errors)} of {len(bugs)} instances failed:\n  " + "\n  ".join(errors))
    for split, items in rows.items():
        path = out / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
    return rows


def _require_pytest(python: str) -> None:
    proc = subprocess.run([python, "-m", "pytest", "--version"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{python} cannot run pytest (install pytest there, or pass --python)")


def summary(bugs: list[Bug]) -> str:
    lines = [f"{'kind':16} " + " ".join(f"{s:>5}" for s in SPLITS)]
    for kind in KINDS:
        lines.append(f"{kind:16} " + " ".join(f"{sum(b.kind == kind and b.split == s for b in bugs):5}"
                                                for s in SPLITS))
    lines.append(f"{'all':16} " + " ".join(f"{sum(b.split == s for b in bugs):5}" for s in SPLITS))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="where repos/, dev.jsonl and test.jsonl go")
    parser.add_argument("--spec", type=Path, default=SPEC, help="the bug specs (default: bugs.toml here)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--download-dir", type=Path, help="download the sdists here (default OUT/sdists)")
    where.add_argument("--sdists", type=Path, help="use the sdists already in this folder; no download")
    parser.add_argument("--python", default=sys.executable, help="runs the projects' tests (needs pytest)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per pytest run (default 120)")
    args = parser.parse_args(argv)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        projects, bugs = load_spec(args.spec)
        used = [projects[n] for n in sorted({b.project for b in bugs})]
        if args.sdists:
            sdists = {p.name: local_sdist(p, args.sdists) for p in used}
        else:
            folder = args.download_dir or args.out / "sdists"
            sdists = {p.name: download_sdist(p, folder, progress) for p in used}
        args.out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="injected-src-") as tmp:
            trees = {name: extract(path, Path(tmp) / name) for name, path in sdists.items()}
            build(projects, bugs, trees, args.out.resolve(), args.python, args.timeout, progress)
    except BuildError as exc:
        print(f"build error: {exc}", file=sys.stderr)
        return 1
    print(summary(bugs))
    print(f"all {len(bugs)} instances checked; wrote {args.out / 'dev.jsonl'} and {args.out / 'test.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
