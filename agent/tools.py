"""Search tools the model calls while localizing, and file skeletons.

Results are capped as a person would want them: the first few matches in full
(long bodies shortened), the rest listed by file.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, field

from .errors import UnsafePathError
from .index import RepoIndex, Symbol
from .repo import normalize_rel

SHOW_FULL = 3  # matches shown with their code
MAX_BODY_LINES = 80  # longer definitions are shown as a skeleton
MAX_LISTED = 30  # further matches listed by file, then counted


@dataclass
class ToolResult:
    text: str
    found: list[Symbol] = field(default_factory=list)


class SearchTools:
    """The search tools over one repository index. Each method is a tool."""

    NAMES = (
        "search_class", "search_class_in_file", "search_method", "search_method_in_class",
        "search_method_in_file", "search_code", "search_code_in_file",
    )

    def __init__(self, index: RepoIndex):
        self.index = index
        self._by_name: dict[str, list[Symbol]] = {}
        for sym in index.symbols():
            self._by_name.setdefault(sym.name, []).append(sym)

    # -- dispatch -------------------------------------------------------------

    def call(self, tool: str, args: dict) -> ToolResult:
        """Run a tool by name; bad calls come back as text for the model, never raise."""
        if tool not in self.NAMES:
            return ToolResult(f"Unknown tool {tool!r}. Tools: {', '.join(self.NAMES)}.")
        method = getattr(self, tool)
        params = list(inspect.signature(method).parameters)
        if not isinstance(args, dict) or set(args) != set(params):
            return ToolResult(f"{tool} takes exactly these arguments: {', '.join(params)}.")
        if not all(isinstance(v, str) and v.strip() for v in args.values()):
            return ToolResult(f"{tool}: every argument must be a non-empty string.")
        try:
            return method(**{k: v.strip() for k, v in args.items()})
        except UnsafePathError as exc:
            return ToolResult(str(exc))

    @staticmethod
    def describe() -> str:
        lines = []
        for name in SearchTools.NAMES:
            tool = getattr(SearchTools, name)
            params = [p for p in inspect.signature(tool).parameters if p != "self"]
            lines.append(f"- {name}({', '.join(params)}): {tool.__doc__.strip().splitlines()[0]}")
        return "\n".join(lines)

    # -- tools ---------------------------------------------------------------

    def search_class(self, class_name: str) -> ToolResult:
        """Find a class by name in the whole repository."""
        return self._show(self._named(class_name, kinds=("class",)), f"class {class_name}")

    def search_class_in_file(self, class_name: str, file_path: str) -> ToolResult:
        """Find a class by name in one file."""
        file_path = self._file(file_path)
        if not file_path:
            return ToolResult("No such Python file in the repository.")
        hits = [s for s in self._named(class_name, kinds=("class",)) if s.file == file_path]
        return self._show(hits, f"class {class_name} in {file_path}")

    def search_method(self, method_name: str) -> ToolResult:
        """Find functions and methods by name in the whole repository."""
        return self._show(self._named(method_name, kinds=("function", "method")), f"function {method_name}")

    def search_method_in_class(self, method_name: str, class_name: str) -> ToolResult:
        """Find a method of a class."""
        hits = [s for s in self._named(method_name, kinds=("method",))
                if s.parent == class_name or s.parent.endswith("." + class_name)]
        return self._show(hits, f"method {class_name}.{method_name}")

    def search_method_in_file(self, method_name: str, file_path: str) -> ToolResult:
        """Find functions and methods by name in one file."""
        file_path = self._file(file_path)
        if not file_path:
            return ToolResult("No such Python file in the repository.")
        hits = [s for s in self._named(method_name, kinds=("function", "method")) if s.file == file_path]
        return self._show(hits, f"function {method_name} in {file_path}")

    def search_code(self, code: str) -> ToolResult:
        """Find a code snippet (exact text) in the whole repository."""
        return self._grep(code, list(self.index.files))

    def search_code_in_file(self, code: str, file_path: str) -> ToolResult:
        """Find a code snippet (exact text) in one file."""
        file_path = self._file(file_path)
        if not file_path:
            return ToolResult("No such Python file in the repository.")
        return self._grep(code, [file_path])

    # -- helpers -------------------------------------------------------------

    def _named(self, name: str, kinds: tuple[str, ...]) -> list[Symbol]:
        name = name.split(".")[-1].split("(")[0].strip()
        return [s for s in self._by_name.get(name, []) if s.kind in kinds]

    def _file(self, file_path: str) -> str | None:
        self.index.repo.resolve(normalize_rel(file_path))  # raises UnsafePathError for paths out of the repository
        return self.index.find_file(file_path)

    def _show(self, hits: list[Symbol], what: str) -> ToolResult:
        if not hits:
            return ToolResult(f"No {what} found.")
        parts = [f"Found {len(hits)} match{'es' if len(hits) > 1 else ''} for {what}."]
        for sym in hits[:SHOW_FULL]:
            parts.append(self.render(sym))
        rest = hits[SHOW_FULL:]
        if rest:
            parts.append("Other matches:")
            parts += [f"- {s.file}: {s.kind} {s.qualname} (lines {s.start}-{s.end})" for s in rest[:MAX_LISTED]]
            if len(rest) > MAX_LISTED:
                parts.append(f"... and {len(rest) - MAX_LISTED} more.")
        return ToolResult("\n\n".join(parts), hits)

    def render(self, sym: Symbol) -> str:
        """A definition with line numbers; long ones as their skeleton."""
        lines = self.index.text(sym.file).splitlines()
        head = f"{sym.file}, {sym.kind} {sym.qualname}, lines {sym.start}-{sym.end}:"
        if sym.end - sym.start + 1 <= MAX_BODY_LINES:
            body = "\n".join(f"{n:5d}| {lines[n - 1]}" for n in range(sym.start, min(sym.end, len(lines)) + 1))
            return f"{head}\n{body}"
        inner = [s for s in self.index.entry(sym.file).symbols
                 if s.parent == sym.qualname and sym.start <= s.start <= sym.end]
        if inner:
            body = "\n".join(f"{s.start:5d}| {' ' * 4}{s.signature}  ..." for s in inner)
            return f"{head} (long; members listed)\n{sym.start:5d}| {sym.signature}\n{body}"
        shown = "\n".join(f"{n:5d}| {lines[n - 1]}" for n in range(sym.start, sym.start + MAX_BODY_LINES))
        return f"{head} (first {MAX_BODY_LINES} lines)\n{shown}"

    def _grep(self, code: str, paths: list[str]) -> ToolResult:
        hits: list[tuple[str, int]] = []
        for path in paths:
            text = self.index.text(path)
            start = text.find(code)
            while start != -1:
                hits.append((path, text.count("\n", 0, start) + 1))
                start = text.find(code, start + max(len(code), 1))
        if not hits:
            return ToolResult(f"No code {code!r} found.")
        parts = [f"Found {len(hits)} occurrence{'s' if len(hits) > 1 else ''} of {code!r}."]
        found = []
        for path, line in hits[:SHOW_FULL]:
            sym = self.enclosing(path, line)
            lines = self.index.text(path).splitlines()
            lo, hi = max(1, line - 3), min(len(lines), line + code.count("\n") + 3)
            where = f" in {sym.kind} {sym.qualname}" if sym else ""
            parts.append(f"{path}, line {line}{where}:\n" + "\n".join(f"{n:5d}| {lines[n - 1]}" for n in range(lo, hi + 1)))
            if sym:
                found.append(sym)
        if len(hits) > SHOW_FULL:
            counts: dict[str, int] = {}
            for path, _ in hits[SHOW_FULL:]:
                counts[path] = counts.get(path, 0) + 1
            parts.append("Other occurrences:\n" + "\n".join(f"- {p} ({n})" for p, n in list(counts.items())[:MAX_LISTED]))
        return ToolResult("\n\n".join(parts), found)

    def enclosing(self, path: str, line: int) -> Symbol | None:
        """The innermost class/function of `path` whose span holds `line`."""
        best = None
        for sym in self.index.entry(path).symbols:
            if sym.start <= line <= sym.end and (best is None or sym.start >= best.start):
                best = sym
        return best


def skeleton(source: str) -> str:
    """The file with every function body elided: imports, globals, signatures, docstring heads."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return "\n".join(source.splitlines()[:60]) + "\n# (file does not parse; first 60 lines shown)"
    lines = source.splitlines()
    out: list[str] = []

    def emit(node: ast.stmt, indent: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            body_start = node.body[0].lineno
            header = lines[start - 1 : max(body_start - 1, node.lineno)]
            out.extend(f"{n:5d}| {line}" for n, line in enumerate(header, start))
            doc = ast.get_docstring(node)
            inner = indent + "    "
            if doc:
                out.append(f"     | {inner}\"\"\"{doc.strip().splitlines()[0][:120]}\"\"\"")
            if isinstance(node, ast.ClassDef):
                for child in node.body:
                    if not (isinstance(child, ast.Expr) and isinstance(getattr(child, "value", None), ast.Constant)):
                        emit(child, inner)
            else:
                out.append(f"     | {inner}...")
        elif isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)) and node.end_lineno - node.lineno < 3:
            out.extend(f"{n:5d}| {lines[n - 1]}" for n in range(node.lineno, node.end_lineno + 1))

    for node in tree.body:
        emit(node, "")
    return "\n".join(out)
