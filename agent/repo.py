"""The user's git repository, read-only, and scratch copies of it to edit.

Nothing here writes to the user's working tree or its `.git`: a scratch copy is
a `git clone --shared` in a temporary folder, with the user's uncommitted
changes and untracked files laid over it and committed there as the base, so
that `git diff` in the copy shows exactly the model's change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import RepoError, UnsafePathError

MAX_FILE_BYTES = 2_000_000
VENDORED_DIRS = frozenset(
    {
        "node_modules", "site-packages", "vendor", "vendored", "_vendor",
        "third_party", "thirdparty", "__pycache__", ".tox", ".nox", ".venv",
        "venv", "env", "build", "dist", ".eggs", ".git", ".mypy_cache",
    }
)


def git(root: Path, *args: str, input: bytes | None = None, check: bool = True) -> str:
    """Run git in `root` and return its standard output as text."""
    proc = subprocess.run(
        ["git", "-C", str(root), *args],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
    )
    if check and proc.returncode != 0:
        raise RepoError(f"git {' '.join(args)} failed in {root}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode("utf-8", errors="surrogateescape")


def blob_hash(data: bytes) -> str:
    """The git blob id of `data` (the same as `git hash-object`)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Repo:
    """A git repository's working tree, opened read-only."""

    root: Path

    @classmethod
    def open(cls, path: str | os.PathLike) -> Repo:
        p = Path(path).expanduser()
        if not p.is_dir():
            raise RepoError(f"{p} is not a folder")
        proc = subprocess.run(
            ["git", "-C", str(p), "rev-parse", "--show-toplevel"], stdin=subprocess.DEVNULL,
            capture_output=True, text=True)
        if proc.returncode != 0:
            raise RepoError(f"{p} is not inside a git repository (run `git init` there first)")
        return cls(Path(proc.stdout.strip()).resolve())

    def files(self) -> list[str]:
        """Tracked and untracked-but-not-ignored files, relative POSIX paths, sorted."""
        out = git(self.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        return sorted({p for p in out.split("\0") if p})

    def python_files(self) -> list[str]:
        """Python sources worth indexing: no vendored folders, no symlinks, no huge files."""
        result = []
        for rel in self.files():
            if not rel.endswith(".py"):
                continue
            parts = PurePosixPath(rel).parts
            if any(part in VENDORED_DIRS for part in parts[:-1]):
                continue
            path = self.root / rel
            try:
                st = path.lstat()
            except OSError:
                continue  # deleted in the working tree
            if path.is_symlink() or st.st_size > MAX_FILE_BYTES:
                continue
            result.append(rel)
        return result

    def resolve(self, rel: str) -> Path:
        """The absolute path of `rel`, refusing anything that leaves the repository."""
        return safe_join(self.root, rel)

    def read_text(self, rel: str) -> str:
        return self.resolve(rel).read_text(encoding="utf-8", errors="replace")

    def head(self) -> str:
        return git(self.root, "rev-parse", "--verify", "-q", "HEAD", check=False).strip()


def normalize_rel(path: str) -> str:
    """A model-written relative path in POSIX form, without leading "./"."""
    rel = path.strip().replace("\\", "/")
    while rel.startswith("./"):
        rel = rel[2:]
    return rel


def safe_join(root: Path, rel: str) -> Path:
    """Join `rel` onto `root`; raise UnsafePathError if the result is outside `root`.

    Rejects absolute paths, `..` components and symlinks that point out.
    """
    if not rel or "\0" in rel:
        raise UnsafePathError(f"invalid path {rel!r}")
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (len(rel) > 1 and rel[1] == ":"):
        raise UnsafePathError(f"path {rel!r} is outside the repository")
    candidate = root.joinpath(*pure.parts)
    real_root = root.resolve()
    real = candidate.resolve()
    if real != real_root and real_root not in real.parents:
        raise UnsafePathError(f"path {rel!r} resolves outside the repository (symlink?)")
    return candidate


class Scratch:
    """A disposable editable copy of a repository's current state.

    Use as a context manager; the folder is removed on exit.
    """

    def __init__(self, repo: Repo, *, parent: str | None = None):
        self.repo = repo
        self._tmp = tempfile.mkdtemp(prefix="swe-reasoner-", dir=parent)
        self.root = Path(self._tmp) / "repo"
        try:
            self._populate()
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise

    def _populate(self) -> None:
        src = self.repo.root
        if self.repo.head():
            git(Path(self._tmp), "clone", "-q", "--shared", "--no-hardlinks", str(src), str(self.root))
            # Lay the user's uncommitted changes to tracked files over the clone.
            diff = subprocess.run(
                ["git", "-C", str(src), "diff", "HEAD", "--binary"], stdin=subprocess.DEVNULL,
                capture_output=True, check=True).stdout
            if diff.strip():
                git(self.root, "apply", "--whitespace=nowarn", "-", input=diff)
        else:
            self.root.mkdir()
            git(self.root, "init", "-q")
        for rel in git(src, "ls-files", "-z", "--others", "--exclude-standard").split("\0"):
            if not rel:
                continue
            source = src / rel
            if source.is_symlink() or not source.is_file():
                continue
            target = self.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        git(self.root, "add", "-A")
        git(
            self.root, "-c", "user.name=swe-reasoner", "-c", "user.email=swe-reasoner@localhost",
            "commit", "-q", "--allow-empty", "--no-verify", "-m", "swe-reasoner base",
        )

    def diff(self) -> str:
        """The unified diff of everything changed in the copy since its base."""
        git(self.root, "add", "-A")
        return git(self.root, "diff", "--cached", "--no-color", "--no-ext-diff", "HEAD")

    def reset(self) -> None:
        """Throw away every change since the base."""
        git(self.root, "reset", "-q", "--hard", "HEAD")
        git(self.root, "clean", "-q", "-fdx")

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
