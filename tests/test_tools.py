from conftest import make_repo
from swe_reasoner.agent.index import RepoIndex
from swe_reasoner.agent.repo import Repo
from swe_reasoner.agent.tools import MAX_BODY_LINES, SHOW_FULL, SearchTools, skeleton


def tools(root):
    return SearchTools(RepoIndex.build(Repo.open(root)))


def test_search_class_and_methods(bug_repo):
    t = tools(bug_repo)
    r = t.search_class("Histogram")
    assert "calc/stats.py, class Histogram, lines 20-30" in r.text and "self.counts[index] += 1" in r.text
    r = t.search_method_in_class("add", "Histogram")
    assert [s.qualname for s in r.found] == ["Histogram.add"]
    assert t.search_method_in_file("mean", "calc/stats.py").found[0].name == "mean"
    assert t.search_method("nothing_here").text == "No function nothing_here found."
    assert t.search_class_in_file("Histogram", "calc/text.py").found == []


def test_search_code_reports_enclosing_definition(bug_repo):
    t = tools(bug_repo)
    r = t.search_code("len(values) - 1")
    assert "calc/stats.py, line 8 in function mean" in r.text
    assert t.search_code_in_file("format_number(v)", "calc/text.py").found[0].qualname == "Table.render"


def test_results_are_capped(tmp_path):
    files = {f"pkg/m{i}.py": "def run():\n    return 1\n" for i in range(40)}
    t = tools(make_repo(tmp_path / "r", files))
    r = t.search_method("run")
    assert r.text.count("|     return 1") == SHOW_FULL
    assert "Other matches:" in r.text and "... and 7 more." in r.text


def test_long_definitions_show_members(tmp_path):
    body = "".join(f"    def m{i}(self):\n        return {i}\n" for i in range(MAX_BODY_LINES))
    t = tools(make_repo(tmp_path / "r", {"big.py": "class Big:\n" + body}))
    text = t.search_class("Big").text
    assert "members listed" in text and "def m0(self):" in text and "return 5" not in text


def test_bad_tool_calls_come_back_as_text(bug_repo):
    t = tools(bug_repo)
    assert "Unknown tool" in t.call("rm_rf", {}).text
    assert "takes exactly these arguments" in t.call("search_class", {"name": "x"}).text
    assert "outside the repository" in t.call("search_code_in_file", {"code": "x", "file_path": "../../etc/passwd"}).text
    assert t.call("search_class", {"class_name": "Histogram"}).found


def test_skeleton_elides_bodies(bug_repo):
    sk = skeleton((bug_repo / "calc/stats.py").read_text())
    assert "def mean(values):" in sk and '"""The arithmetic mean of `values`."""' in sk
    assert "sum(values)" not in sk and "def add(self, value, low=0.0, high=1.0):" in sk


def test_describe_lists_every_tool():
    text = SearchTools.describe()
    assert all(name in text for name in SearchTools.NAMES)
    assert "search_method_in_class(method_name, class_name): Find a method of a class." in text
