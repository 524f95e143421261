"""Rank a repository's files against an issue: BM25 plus what the issue names.

BM25 over each file's path, identifiers and words finds files about the
same things as the issue; the issue's title counts twice. What the issue names
outright counts for more: a file path, a stack-trace frame (the innermost frames
most), an identifier that a file defines as a class, function or module-level
name (more when the title or an exception message names it).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from .index import RepoIndex, tokenize
from .repo import normalize_rel

_PATH = re.compile(r"[\w./\\-]+\.py\b")
# Traceback frames as Python, IPython and pytest print them: (path, line, function).
_FRAMES = (
    re.compile(r'File "(?P<path>[^"]+\.py)", line (?P<line>\d+)(?:, in (?P<func>[\w<>]+))?'),
    re.compile(r"File (?P<path>[^\s\"',]+\.py):(?P<line>\d+), in (?P<func>[\w.<>]+)"),
    re.compile(r"^\s*(?:\[)?(?P<path>[^\s\[\]()\"']+\.py)\]?(?:\([^)\s]*\))? in (?P<func>[\w<>]+)\(", re.M),
    re.compile(r"^(?P<path>[^\s\"':]+\.py):(?P<line>\d+): \w", re.M),
)
_IDENT = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\b")
# "ValueError: message", "pkg.errors.CustomError: message" at the start of a line.
_EXCEPTION_LINE = re.compile(r"^\W{0,3}(?:[\w.]+\.)?\w*(?:Error|Exception|Warning)\b.*$", re.M)

PATH_BOOST = 2.0
FRAME_BOOST = 1.5
FRAME_OUTERMOST = 0.25  # the outermost frame of a traceback weighs this share of the innermost
SYMBOL_BOOST = 0.35
SYMBOL_BOOST_CAP = 1.2
TITLE_WEIGHT = 2  # the title's words count this many times in the BM25 query
STRONG_NAME_WEIGHT = 2  # a name in the title or an exception message counts this many times
TEST_FILE_FACTOR = 0.6
ASSIGNMENT_SCAN_LIMIT = 50  # files that use a name, past which its module-level assignments are not looked for
_STOP = frozenset(
    "the a an and or not is are was were be to of in on for with this that it if else when "
    "self cls none true false return def class import from as print error issue bug python "
    "value values data type object list dict str int set get test tests".split()
)


@dataclass
class Ranked:
    path: str
    score: float
    reasons: list[str] = field(default_factory=list)


def is_test_file(path: str) -> bool:
    p = PurePosixPath(path)
    return p.name.startswith("test_") or p.name.endswith("_test.py") or p.name == "conftest.py" or any(
        part in ("tests", "test", "testing") for part in p.parts[:-1]
    )


class Retriever:
    """BM25 over an index's files, built once and queried many times."""

    def __init__(self, index: RepoIndex):
        self.index = index
        self.paths = sorted(index.files)
        self._bm25 = BM25([index.entry(p).terms for p in self.paths])
        self._definers: dict[str, set[str]] = {}
        for path in self.paths:
            for sym in index.entry(path).symbols:
                self._definers.setdefault(sym.name, set()).add(path)
        self._assigned: dict[str, set[str]] = {}

    def rank(self, issue: str, top: int | None = None) -> list[Ranked]:
        if not self.paths:
            return []
        query = [t for t in tokenize(issue) + tokenize(title_of(issue)) * (TITLE_WEIGHT - 1) if t not in _STOP]
        scores = np.asarray(self._bm25.get_scores(query), dtype=float) if query else np.zeros(len(self.paths))
        peak = float(scores.max()) if scores.size else 0.0
        if peak > 0:
            scores = scores / peak
        ranked = {p: Ranked(p, float(s), [f"bm25 {s:.2f}"] if s > 0 else []) for p, s in zip(self.paths, scores)}

        frames = stack_frames(issue)
        for mention in mentioned_paths(_without_frames(issue)):
            for path in self._match_path(mention):
                ranked[path].score += PATH_BOOST
                ranked[path].reasons.append(f"issue names {mention}")
        self._boost_frames(ranked, frames)
        boosts: dict[str, dict[str, int]] = {}
        for name, weight in mentioned_identifiers(issue, weighted=True).items():
            definers = self._definers.get(name) or self._assigners(name)
            if 0 < len(definers) <= 5:  # a name defined everywhere says little
                for path in definers:
                    boosts.setdefault(path, {})[name] = weight
        for path, names in boosts.items():
            ranked[path].score += min(SYMBOL_BOOST * sum(names.values()), SYMBOL_BOOST_CAP)
            ranked[path].reasons.append("defines " + ", ".join(sorted(names)[:5]))
        for path, item in ranked.items():
            if is_test_file(path) and not any(r.startswith("issue names") for r in item.reasons):
                item.score *= TEST_FILE_FACTOR
        result = sorted(ranked.values(), key=lambda r: (-r.score, r.path))
        return result[:top] if top else result

    def _boost_frames(self, ranked: dict[str, Ranked], frames: list[tuple[str, int, str]]) -> None:
        """Traceback frames: the innermost frames in the repository weigh most, a file counts once."""
        located = [(path, line, func) for frame_path, line, func in frames for path in self._match_path(frame_path)]
        best: dict[str, tuple[float, str]] = {}
        for i, (path, line, func) in enumerate(located):
            depth = FRAME_OUTERMOST + (1 - FRAME_OUTERMOST) * (i + 1) / len(located)
            weight = FRAME_BOOST * depth * (0.2 if is_test_file(path) else 1.0)
            what = "traceback frame" + (f" line {line}" if line else "") + (f" in {func}" if func else "")
            if weight > best.get(path, (0.0, ""))[0]:
                best[path] = (weight, what)
        for path, (weight, what) in best.items():
            ranked[path].score += weight
            ranked[path].reasons.append(what)
            if is_test_file(path):
                # a failing test's own frame says little; the code it imports says more
                targets = [t for t in self._imports(path) if not is_test_file(t)]
                for target in targets:
                    ranked[target].score += FRAME_BOOST / 2 / len(targets) ** 0.5
                    ranked[target].reasons.append(f"imported by {path}")

    def _assigners(self, name: str) -> set[str]:
        """Files that assign `name` at module level (`NAME = ...`, `name: int = ...`)."""
        if name not in self._assigned:
            term = name.lower().strip("_")
            users = [path for path in self.paths if term in self.index.entry(path).terms]
            assignment = re.compile(rf"^{re.escape(name)}\s*(?::[^=\n]*)?=(?!=)", re.M)
            # a name that most files use says little, and reading them all would be slow
            self._assigned[name] = set() if len(users) > ASSIGNMENT_SCAN_LIMIT else {
                path for path in users if assignment.search(self.index.text(path))
            }
        return self._assigned[name]

    def _imports(self, path: str) -> list[str]:
        """Repository files that `path` imports (absolute imports only)."""
        try:
            tree = ast.parse(self.index.text(path))
        except SyntaxError:
            return []
        modules = []
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.append(node.module)
                modules += [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                modules += [a.name for a in node.names]
        found = []
        for mod in modules:
            base = mod.replace(".", "/")
            for cand in (f"{base}.py", f"{base}/__init__.py", f"src/{base}.py", f"lib/{base}.py"):
                if cand in self.index.files and cand != path and cand not in found:
                    found.append(cand)
        return found

    def _match_path(self, mention: str) -> list[str]:
        mention = normalize_rel(mention.replace("\\", "/")).lstrip("/")
        parts = PurePosixPath(mention).parts
        # The longest suffix of the mentioned path that names repository files.
        for i in range(len(parts)):
            suffix = "/".join(parts[i:])
            hits = [p for p in self.paths if p == suffix or p.endswith("/" + suffix)]
            if hits:
                return hits if len(hits) <= 3 else []
        return []


class BM25:
    """Okapi BM25 (Lucene's idf and length normalization, k1=1.5, b=0.75) over term counts.

    The index already holds each file's term counts, so the per-(file, term) scores are
    computed at once with numpy and kept by term: a query adds up the columns of its terms
    (a term repeated in the query counts again). Scores equal bm25s's "lucene" method.
    """

    def __init__(self, documents: list[dict[str, int]], k1: float = 1.5, b: float = 0.75):
        self.vocab: dict[str, int] = {}
        self.n = len(documents)
        terms = [np.fromiter((self.vocab.setdefault(t, len(self.vocab)) for t in d), np.int64, len(d)) for d in documents]
        counts = [np.fromiter(d.values(), np.float64, len(d)) for d in documents]
        rows = np.repeat(np.arange(self.n), [len(t) for t in terms])
        cols = np.concatenate(terms) if terms else np.zeros(0, np.int64)
        tf = np.concatenate(counts) if counts else np.zeros(0)
        length = np.bincount(rows, weights=tf, minlength=self.n)
        avg = length.mean() if self.n and length.mean() > 0 else 1.0
        df = np.bincount(cols, minlength=len(self.vocab))
        idf = np.log(1 + (self.n - df + 0.5) / (df + 0.5))
        value = idf[cols] * tf / (tf + k1 * (1 - b + b * length[rows] / avg))
        order = np.argsort(cols, kind="stable")
        self._docs, self._values = rows[order], value[order]
        self._start = np.concatenate([[0], np.cumsum(df)])

    def get_scores(self, query: list[str]) -> np.ndarray:
        scores = np.zeros(self.n)
        for term in query:
            i = self.vocab.get(term)
            if i is not None:
                lo, hi = self._start[i], self._start[i + 1]
                scores[self._docs[lo:hi]] += self._values[lo:hi]
        return scores


def title_of(issue: str) -> str:
    """The issue's first non-blank line."""
    return next((line for line in issue.splitlines() if line.strip()), "")


def mentioned_paths(text: str) -> list[str]:
    return list(dict.fromkeys(m.group(0) for m in _PATH.finditer(text)))


def stack_frames(text: str) -> list[tuple[str, int, str]]:
    """Traceback frames in `text`, in the order they appear: (path, line or 0, function or "")."""
    found = []
    for pattern in _FRAMES:
        for m in pattern.finditer(text):
            groups = m.groupdict()
            found.append((m.start(), groups["path"], int(groups.get("line") or 0), groups.get("func") or ""))
    return [(path, line, func) for _, path, line, func in sorted(found)]


def _without_frames(text: str) -> str:
    for pattern in _FRAMES:
        text = pattern.sub("", text)
    return text


def mentioned_identifiers(text: str, weighted: bool = False):
    """Names in the issue that look like code: dotted, snake_case, CamelCase or in backticks.

    With `weighted`, a dict of name -> weight: names in the title or in an exception's message
    ("TypeError: Foo.bar() got ...") weigh STRONG_NAME_WEIGHT, the others 1.
    """
    names: dict[str, int] = {}
    for m in _IDENT.finditer(text):
        word = m.group(1)
        for part in word.split("."):
            code_like = "_" in part.strip("_") or re.search(r"[a-z][A-Z]|^[A-Z][a-z]+[A-Z]", part) or "." in word
            if code_like and part.lower() not in _STOP and len(part) > 2:
                names[part] = 1
    for m in re.finditer(r"`([^`\n]+)`", text):
        for part in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.group(1)):
            if len(part) > 2 and part.lower() not in _STOP:
                names[part] = 1
    if not weighted:
        return list(names)
    strong = title_of(text) + "\n" + "\n".join(m.group(0) for m in _EXCEPTION_LINE.finditer(text))
    for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", strong):
        if name in names:
            names[name] = STRONG_NAME_WEIGHT
    return names
