"""Rank a repository's files against an issue: BM25 plus what the issue names.

BM25 (bm25s) over each file's path, identifiers and words finds files about the
same things as the issue. What the issue names outright counts for more: a
file path, a stack-trace frame, an identifier that a file defines.
"""

from __future__ import annotations

import ast
import logging
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from .index import RepoIndex, tokenize
from .repo import normalize_rel

_PATH = re.compile(r"[\w./\\-]+\.py\b")
_FRAME = re.compile(r'File "([^"]+\.py)", line (\d+)(?:, in ([\w<>]+))?')
_IDENT = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\b")

PATH_BOOST = 2.0
FRAME_BOOST = 1.5
SYMBOL_BOOST = 0.35
SYMBOL_BOOST_CAP = 1.2
TEST_FILE_FACTOR = 0.6
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
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # its import sets DEBUG
        self.index = index
        self.paths = sorted(index.files)
        corpus = [_expand(index.entry(p).terms) for p in self.paths]
        self._bm25 = bm25s.BM25()
        if self.paths:
            self._bm25.index(corpus, show_progress=False)
        self._definers: dict[str, set[str]] = {}
        for path in self.paths:
            for sym in index.entry(path).symbols:
                self._definers.setdefault(sym.name, set()).add(path)

    def rank(self, issue: str, top: int | None = None) -> list[Ranked]:
        if not self.paths:
            return []
        query = [t for t in tokenize(issue) if t not in _STOP]
        scores = np.asarray(self._bm25.get_scores(query), dtype=float) if query else np.zeros(len(self.paths))
        peak = float(scores.max()) if scores.size else 0.0
        if peak > 0:
            scores = scores / peak
        ranked = {p: Ranked(p, float(s), [f"bm25 {s:.2f}"] if s > 0 else []) for p, s in zip(self.paths, scores)}

        for mention in mentioned_paths(_FRAME.sub("", issue)):  # frames are weighed below
            for path in self._match_path(mention):
                ranked[path].score += PATH_BOOST
                ranked[path].reasons.append(f"issue names {mention}")
        for frame_path, line, func in stack_frames(issue):
            for path in self._match_path(frame_path):
                # a failing test's own frame says little; the code it imports says more
                ranked[path].score += FRAME_BOOST * (0.2 if is_test_file(path) else 1.0)
                ranked[path].reasons.append(f"traceback frame line {line}" + (f" in {func}" if func else ""))
                if is_test_file(path):
                    for target in self._imports(path):
                        ranked[target].score += FRAME_BOOST / 2
                        ranked[target].reasons.append(f"imported by {path}")
        boosts: dict[str, list[str]] = {}
        for name in mentioned_identifiers(issue):
            definers = self._definers.get(name, ())
            if 0 < len(definers) <= 5:  # a name defined everywhere says little
                for path in definers:
                    boosts.setdefault(path, []).append(name)
        for path, names in boosts.items():
            ranked[path].score += min(SYMBOL_BOOST * len(names), SYMBOL_BOOST_CAP)
            ranked[path].reasons.append("defines " + ", ".join(sorted(names)[:5]))
        for path, item in ranked.items():
            if is_test_file(path) and not any(r.startswith("issue names") for r in item.reasons):
                item.score *= TEST_FILE_FACTOR
        result = sorted(ranked.values(), key=lambda r: (-r.score, r.path))
        return result[:top] if top else result

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
        mention = normalize_rel(mention).lstrip("/")
        parts = PurePosixPath(mention).parts
        # The longest suffix of the mentioned path that names repository files.
        for i in range(len(parts)):
            suffix = "/".join(parts[i:])
            hits = [p for p in self.paths if p == suffix or p.endswith("/" + suffix)]
            if hits:
                return hits if len(hits) <= 3 else []
        return []


def _expand(terms: dict[str, int]) -> list[str]:
    out: list[str] = []
    for term, count in terms.items():
        out.extend([term] * count)
    return out


def mentioned_paths(text: str) -> list[str]:
    return list(dict.fromkeys(m.group(0) for m in _PATH.finditer(text)))


def stack_frames(text: str) -> list[tuple[str, int, str]]:
    return [(m.group(1), int(m.group(2)), m.group(3) or "") for m in _FRAME.finditer(text)]


def mentioned_identifiers(text: str) -> list[str]:
    """Names in the issue that look like code: dotted, snake_case, CamelCase or in backticks."""
    names: dict[str, None] = {}
    for m in _IDENT.finditer(text):
        word = m.group(1)
        for part in word.split("."):
            code_like = "_" in part.strip("_") or re.search(r"[a-z][A-Z]|^[A-Z][a-z]+[A-Z]", part) or "." in word
            if code_like and part.lower() not in _STOP and len(part) > 2:
                names[part] = None
    for m in re.finditer(r"`([^`\n]+)`", text):
        for part in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.group(1)):
            if len(part) > 2 and part.lower() not in _STOP:
                names[part] = None
    return list(names)
