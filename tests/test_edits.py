import pytest
from hypothesis import given
from hypothesis import strategies as st

from swe_reasoner.agent.edits import Edit, apply_edit, apply_edits, parse_edits
from swe_reasoner.agent.errors import FormatError

SRC = "def f(x):\n    if x:\n        return 1\n    return 2\n"


def block(path, search, replace):
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def test_parse_several_blocks_with_think_and_fences():
    answer = "some words\n```python\n" + block("a.py", "x = 1\n", "x = 2\n") + "```\n" + block("`b/c.py`", "", "new\n")
    assert parse_edits(answer) == [Edit("a.py", "x = 1\n", "x = 2\n"), Edit("b/c.py", "", "new\n")]


def test_parse_strips_copied_line_numbers():
    [edit] = parse_edits(block("a.py", "   12|     return 1\n   13|     pass\n", "    return 2\n"))
    assert edit.search == "    return 1\n    pass\n"


def test_no_block_is_a_format_error():
    with pytest.raises(FormatError, match="holds no edit"):
        parse_edits("I would change the divisor.")


def test_exact_and_whitespace_tolerant_matches():
    assert apply_edit(SRC, Edit("f", "        return 1\n", "        return 3\n")) == SRC.replace("return 1", "return 3")
    # trailing spaces and a uniform indentation shift in the SEARCH block
    out = apply_edit(SRC, Edit("f", "if x:   \n    return 1\n", "if not x:\n    return 0\n"))
    assert out == "def f(x):\n    if not x:\n        return 0\n    return 2\n"


def test_ambiguous_and_missing_matches_are_format_errors():
    with pytest.raises(FormatError, match="matches 2 places"):
        apply_edit("a = 1\na = 1\n", Edit("f", "a = 1\n", "a = 2\n"))
    with pytest.raises(FormatError, match="does not match"):
        apply_edit(SRC, Edit("f", "return 42\n", "return 0\n"))


def test_apply_edits_is_all_or_nothing(tmp_path):
    (tmp_path / "m.py").write_text(SRC)
    with pytest.raises(FormatError, match="syntax error"):
        apply_edits(tmp_path, [Edit("m.py", "        return 1\n", "        return (\n")])
    with pytest.raises(FormatError, match="no file"):
        apply_edits(tmp_path, [Edit("m.py", "    return 2\n", "    return 5\n"), Edit("nope.py", "x\n", "y\n")])
    assert (tmp_path / "m.py").read_text() == SRC
    assert apply_edits(tmp_path, [Edit("m.py", "    return 2\n", "    return 5\n"), Edit("pkg/new.py", "", "X = 1\n")]) == ["m.py", "pkg/new.py"]
    assert (tmp_path / "pkg/new.py").read_text() == "X = 1\n"


@pytest.mark.parametrize("path", ["../outside.py", "/etc/passwd", "a/../../x.py", "link/evil.py"])
def test_paths_out_of_the_tree_are_refused(tmp_path, path):
    root = tmp_path / "repo"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(FormatError, match="outside the repository"):
        apply_edits(root, [Edit(path, "", "x = 1\n")])
    assert not any((tmp_path / "outside").iterdir())


lines = st.lists(st.text(alphabet="abc =()1\t", min_size=1, max_size=12).filter(lambda s: s.strip()), min_size=1, max_size=8)


@given(before=lines, target=lines, after=lines, new=lines, indent=st.sampled_from(["", "  ", "    ", "\t"]))
def test_replacing_a_unique_block_changes_only_it(before, target, after, new, indent):
    marker = ["UNIQUE_MARK"]
    text_lines = before + [indent + t for t in marker + target] + after
    text = "\n".join(text_lines) + "\n"
    search = "\n".join(marker + target) + "\n"  # the model forgot the indentation
    out = apply_edit(text, Edit("f", search, "\n".join(["NEW_MARK", *new]) + "\n"))
    assert out.startswith("\n".join(before) + "\n")
    assert out.endswith("\n".join(after) + "\n")
    assert indent + "NEW_MARK\n" in out and "UNIQUE_MARK" not in out


@given(st.text(max_size=300))
def test_parser_never_crashes(text):
    try:
        parse_edits(text)
    except FormatError:
        pass
