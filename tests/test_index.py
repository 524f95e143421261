import os

import pytest

from conftest import make_repo
from swe_reasoner.agent import index as index_mod
from swe_reasoner.agent.errors import RepoError
from swe_reasoner.agent.index import RepoIndex, split_identifier
from swe_reasoner.agent.repo import Repo, blob_hash


def test_symbols_of_a_real_repository(bug_repo):
    idx = RepoIndex.build(Repo.open(bug_repo))
    syms = {(s.kind, s.qualname, s.file) for s in idx.symbols()}
    assert ("function", "mean", "calc/stats.py") in syms
    assert ("class", "Histogram", "calc/stats.py") in syms
    assert ("method", "Histogram.add", "calc/stats.py") in syms
    add = next(s for s in idx.symbols() if s.name == "add")
    assert add.signature == "def add(self, value, low=0.0, high=1.0):"
    assert (add.start, add.end) == (27, 30)


def test_blob_hash_matches_git(bug_repo):
    data = (bug_repo / "calc/stats.py").read_bytes()
    out = os.popen(f"git -C {bug_repo} hash-object calc/stats.py").read().strip()
    assert blob_hash(data) == out


def test_cache_reparses_only_changed_files(bug_repo, monkeypatch):
    repo = Repo.open(bug_repo)
    RepoIndex.build(repo)
    parsed = []
    real = index_mod.index_file
    monkeypatch.setattr(index_mod, "index_file", lambda p, d: parsed.append(p) or real(p, d))
    RepoIndex.build(repo)
    assert parsed == []  # warm: nothing parsed
    (bug_repo / "calc/text.py").write_text("def changed():\n    pass\n")
    idx = RepoIndex.build(repo)
    assert parsed == ["calc/text.py"]
    assert [s.name for s in idx.entry("calc/text.py").symbols] == ["changed"]


def test_bad_files_are_recorded_not_fatal(tmp_path):
    root = make_repo(tmp_path / "r", {
        "ok.py": "class A:\n    def f(self):\n        return 1\n",
        "broken.py": "def f(:\n",
        "vendor/lib.py": "def vendored():\n    pass\n",
        "big.py": "x = 1\n" * 400_000,
    })
    (root / "latin.py").write_bytes(b"s = '\xe9'\n")
    (root / "link.py").symlink_to(root / "ok.py")
    idx = RepoIndex.build(Repo.open(root))
    assert "broken.py" in idx.files and idx.entry("broken.py").error.startswith("does not parse")
    assert idx.entry("latin.py").error == "not UTF-8"
    assert "vendor/lib.py" not in idx.files and "link.py" not in idx.files and "big.py" not in idx.files
    assert [s.qualname for s in idx.entry("ok.py").symbols] == ["A", "A.f"]


def test_corrupt_cache_is_rebuilt(bug_repo, tmp_path):
    repo = Repo.open(bug_repo)
    RepoIndex.build(repo, tmp_path / "c")
    for f in (tmp_path / "c" / "index").iterdir():
        f.write_bytes(b"garbage")
    assert "calc/stats.py" in RepoIndex.build(repo, tmp_path / "c").files


def test_non_git_folder_is_a_clear_error(tmp_path):
    with pytest.raises(RepoError, match="not inside a git repository"):
        Repo.open(tmp_path)


def test_split_identifier():
    assert split_identifier("HTTPResponse") == ["httpresponse", "http", "response"]
    assert split_identifier("parse_header2") == ["parse_header2", "parse", "header", "2"]
    assert split_identifier("x") == ["x"]
