"""An index of a repository's Python source: classes, functions, methods.

Built from the `ast` module and cached on disk by git blob hash, so that
re-indexing a repository whose files did not change reads one pickle. Files
that do not parse, are not UTF-8, are huge, are symlinks or sit in vendored
folders are recorded or skipped, never fatal.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import os
import pickle
import re
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .repo import Repo, blob_hash, normalize_rel

log = logging.getLogger(__name__)

CACHE_VERSION = 2
PARALLEL_THRESHOLD = 200  # parse in worker processes when this many files are new


@dataclass(frozen=True)
class Symbol:
    """A class, function or method definition."""

    kind: str  # "class" | "function" | "method"
    name: str
    file: str
    start: int  # 1-based first line, decorators included
    end: int  # 1-based last line
    signature: str  # the definition's header, e.g. "def f(a, b=1) -> int:"
    parent: str = ""  # enclosing class name(s), dotted, for methods and nested classes

    @property
    def qualname(self) -> str:
        return f"{self.parent}.{self.name}" if self.parent else self.name


@dataclass
class FileEntry:
    """What the index keeps about one file version (keyed by its blob hash)."""

    symbols: list[Symbol]
    terms: dict[str, int]  # BM25 term counts of the file's path, identifiers and words
    lines: int
    error: str = ""  # why the file could not be parsed, if it could not


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def split_identifier(word: str) -> list[str]:
    """`HTTPResponse_parse2` -> ["httpresponse_parse2", "http", "response", "parse", "2"]."""
    parts = [p.lower() for chunk in word.split("_") for p in _CAMEL.findall(chunk)]
    whole = word.lower().strip("_")
    if len(parts) <= 1:
        return [whole] if whole else []
    return [whole, *parts]


def tokenize(text: str, _cache: dict[str, list[str]] | None = None) -> list[str]:
    """Terms for BM25: identifiers and words, plus their snake/camel parts."""
    cache = {} if _cache is None else _cache
    out: list[str] = []
    for word in _WORD.findall(text):
        parts = cache.get(word)
        if parts is None:
            parts = cache[word] = [p for p in split_identifier(word) if len(p) > 1]
        out.extend(parts)
    return out


def _signature(lines: list[str], node: ast.AST) -> str:
    body = getattr(node, "body", None)
    first = node.lineno
    last = body[0].lineno - 1 if body and body[0].lineno > first else first
    return " ".join(line.strip() for line in lines[first - 1 : last])[:400]


def parse_symbols(path: str, source: str) -> list[Symbol]:
    """Every class/function/method in `source`. Raises SyntaxError."""
    tree = ast.parse(source, filename=path)
    lines = source.splitlines()
    out: list[Symbol] = []

    def visit(node: ast.AST, parent: str, in_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                out.append(Symbol("class", child.name, path, start, child.end_lineno or start,
                                  _signature(lines, child), parent))
                visit(child, f"{parent}.{child.name}" if parent else child.name, True)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                kind = "method" if in_class else "function"
                out.append(Symbol(kind, child.name, path, start, child.end_lineno or start,
                                  _signature(lines, child), parent))
                # functions nested in functions are found by code search, not listed
            elif isinstance(child, (ast.If, ast.Try, ast.With, ast.AsyncWith)):
                visit(child, parent, in_class)  # definitions under `if TYPE_CHECKING:` etc.

    visit(tree, "", False)
    return out


def index_file(path: str, data: bytes) -> FileEntry:
    """Parse one file version. Never raises: failures are recorded in `error`."""
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError:
        return FileEntry([], {}, data.count(b"\n"), error="not UTF-8")
    terms = Counter(tokenize(source))
    for term in tokenize(path.replace("/", " ").removesuffix(".py")):
        terms[term] += 3  # a file's path says what it is about
    terms = dict(terms)
    try:
        symbols = parse_symbols(path, source)
    except (SyntaxError, ValueError, RecursionError) as exc:
        return FileEntry([], terms, source.count("\n") + 1, error=f"does not parse: {exc}")
    return FileEntry(symbols, terms, source.count("\n") + 1)


def _index_many(items: list[tuple[str, bytes]]) -> list[FileEntry]:
    return [index_file(path, data) for path, data in items]


def default_cache_dir() -> Path:
    import platformdirs

    return Path(os.environ.get("SWE_REASONER_CACHE") or platformdirs.user_cache_dir("swe-reasoner"))


@dataclass
class RepoIndex:
    """The index of one repository's current Python files."""

    repo: Repo
    files: dict[str, str]  # path -> blob hash
    entries: dict[str, FileEntry]  # blob hash -> entry
    _texts: dict[str, str] = field(default_factory=dict, repr=False)

    # -- building -----------------------------------------------------------

    @classmethod
    def build(cls, repo: Repo, cache_dir: Path | None = None) -> RepoIndex:
        cache_file = (cache_dir or default_cache_dir()) / "index" / (
            hashlib.sha1(str(repo.root).encode()).hexdigest()[:16] + ".pickle"
        )
        cached = _load(cache_file)
        files: dict[str, str] = {}
        texts: dict[str, str] = {}
        todo: list[tuple[str, bytes]] = []
        for rel in repo.python_files():
            try:
                data = (repo.root / rel).read_bytes()
            except OSError:
                continue
            blob = blob_hash(data)
            files[rel] = blob
            if blob not in cached:
                todo.append((rel, data))
            else:
                texts[rel] = data.decode("utf-8", errors="replace")
        entries = {blob: cached[blob] for blob in set(files.values()) if blob in cached}
        if todo:
            for (rel, data), entry in zip(todo, _parse_all(todo)):
                entries[files[rel]] = entry
                texts[rel] = data.decode("utf-8", errors="replace")
            _save(cache_file, entries)
        elif len(entries) != len(cached):
            _save(cache_file, entries)  # prune versions no longer present
        log.debug("indexed %d files (%d parsed, %d cached)", len(files), len(todo), len(files) - len(todo))
        return cls(repo, files, entries, texts)

    # -- queries ------------------------------------------------------------

    def find_file(self, path: str) -> str | None:
        """The indexed file that a model-written `path` names: exact, or a unique suffix."""
        rel = normalize_rel(path)
        if rel in self.files:
            return rel
        hits = [p for p in self.files if p.endswith("/" + rel)]
        return hits[0] if len(hits) == 1 else None

    def entry(self, path: str) -> FileEntry:
        return self.entries[self.files[path]]

    def symbols(self) -> list[Symbol]:
        return [s for path in self.files for s in self.entry(path).symbols]

    def text(self, path: str) -> str:
        if path not in self._texts:
            self._texts[path] = self.repo.read_text(path)
        return self._texts[path]

    def lines(self) -> int:
        return sum(self.entry(p).lines for p in self.files)


def _parse_all(todo: list[tuple[str, bytes]]) -> list[FileEntry]:
    workers = min(os.cpu_count() or 1, 8)
    if len(todo) < PARALLEL_THRESHOLD or workers < 2:
        return _index_many(todo)
    # Chunks of similar total size keep both workers busy.
    chunks: list[list[tuple[str, bytes]]] = [[] for _ in range(workers * 4)]
    sizes = [0] * len(chunks)
    for item in sorted(todo, key=lambda it: -len(it[1])):
        i = sizes.index(min(sizes))
        chunks[i].append(item)
        sizes[i] += len(item[1])
    results: dict[str, FileEntry] = {}
    with ProcessPoolExecutor(workers) as pool:
        for chunk, entries in zip(chunks, pool.map(_index_many, chunks)):
            for (path, _), entry in zip(chunk, entries):
                results[path] = entry
    return [results[path] for path, _ in todo]


def _load(path: Path) -> dict[str, FileEntry]:
    try:
        with path.open("rb") as fh:
            version, entries = pickle.load(fh)
        return entries if version == CACHE_VERSION else {}
    except FileNotFoundError:
        return {}
    except Exception as exc:  # a corrupt or foreign cache file is rebuilt, not fatal
        log.warning("ignoring unreadable index cache %s: %s", path, exc)
        return {}


def _save(path: Path, entries: dict[str, FileEntry]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False) as fh:
            pickle.dump((CACHE_VERSION, entries), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(fh.name, path)
    except OSError as exc:
        log.warning("could not write index cache %s: %s", path, exc)
