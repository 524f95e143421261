from conftest import BUG_ISSUE, make_repo
from swe_reasoner.agent.index import RepoIndex
from swe_reasoner.agent.repo import Repo
from swe_reasoner.agent.retrieval import Retriever, mentioned_identifiers, stack_frames

FILES = {
    "shop/cart.py": "class Cart:\n    def total(self):\n        return sum(i.price for i in self.items)\n",
    "shop/tax.py": "def apply_vat(amount, rate):\n    return amount * rate\n",
    "shop/util/money.py": "def round_cents(x):\n    return round(x, 2)\n",
    "tests/test_cart.py": "from shop.cart import Cart\n\ndef test_total():\n    assert Cart().total() == 0\n",
}


def ranked(root, issue):
    return [r.path for r in Retriever(RepoIndex.build(Repo.open(root))).rank(issue)]


def test_bm25_finds_the_file_about_the_issue(tmp_path):
    root = make_repo(tmp_path / "r", FILES)
    assert ranked(root, "VAT is applied twice to the amount")[0] == "shop/tax.py"


def test_named_path_and_traceback_frames_win(tmp_path):
    root = make_repo(tmp_path / "r", FILES)
    assert ranked(root, "Something is off in util/money.py")[0] == "shop/util/money.py"
    trace = 'Traceback:\n  File "/site-packages/shop/tax.py", line 2, in apply_vat\nTypeError'
    assert ranked(root, "crash\n" + trace)[0] == "shop/tax.py"


def test_identifier_defined_in_a_file_boosts_it(tmp_path):
    root = make_repo(tmp_path / "r", FILES)
    assert ranked(root, "round_cents gives 0.1 + 0.2 wrong")[0] == "shop/util/money.py"


def test_test_files_rank_below_the_code(bug_repo):
    order = ranked(bug_repo, BUG_ISSUE)
    assert order[0] == "calc/stats.py"


def test_issue_parsing():
    assert stack_frames('  File "a/b.py", line 12, in run\n') == [("a/b.py", 12, "run")]
    names = mentioned_identifiers("Calling `Cart.total()` or apply_vat breaks; the DataFrame too")
    assert {"Cart", "total", "apply_vat", "DataFrame"} <= set(names)


def test_empty_repository(tmp_path):
    root = make_repo(tmp_path / "r", {"README.md": "x\n"})
    assert ranked(root, "anything") == []


def test_frames_in_ipython_and_pytest_formats():
    ipython = (
        "File ~/code/pkg/core/plot.py:841, in Plot._plot(self, pyplot)\n"
        "~/venv/site-packages/pkg/axisgrid.py in map_diag(self, func, **kwargs)\n"
        "pkg/tests/test_plot.py:14: AssertionError\n"
    )
    assert stack_frames(ipython) == [
        ("~/code/pkg/core/plot.py", 841, "Plot._plot"),
        ("~/venv/site-packages/pkg/axisgrid.py", 0, "map_diag"),
        ("pkg/tests/test_plot.py", 14, ""),
    ]


def test_innermost_frame_weighs_most(tmp_path):
    root = make_repo(tmp_path / "r", FILES)
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/site-packages/shop/tax.py", line 2, in <module>\n'
        '  File "/site-packages/shop/cart.py", line 3, in total\n'
        "TypeError: unsupported operand\n"
    )
    # the title is about VAT, but the exception comes from the innermost frame, in cart.py
    assert ranked(root, "Checkout with VAT crashes\n" + trace)[:2] == ["shop/cart.py", "shop/tax.py"]


def test_names_in_title_and_exception_message_weigh_more():
    names = mentioned_identifiers(
        "round_cents is off\nSome text about apply_vat and Cart.\n"
        "TypeError: Cart.total() got an unexpected keyword argument\n",
        weighted=True,
    )
    assert names["round_cents"] == names["Cart"] == 2
    assert names["apply_vat"] == 1


def test_module_level_assignment_counts_as_a_definition(tmp_path):
    files = dict(FILES, **{
        "shop/settings.py": "DEFAULT_VAT_RATE = 0.2\nCURRENCY = 'EUR'\n",
        "shop/report.py": "from shop.settings import DEFAULT_VAT_RATE\n\ndef vat_line(x):\n    return x * DEFAULT_VAT_RATE\n",
    })
    root = make_repo(tmp_path / "r", files)
    assert ranked(root, "Make DEFAULT_VAT_RATE configurable")[0] == "shop/settings.py"


def test_title_words_count_twice(tmp_path):
    root = make_repo(tmp_path / "r", FILES)
    # the body says more about rounding cents, but the title is about the VAT rate
    assert ranked(root, "Wrong VAT rate\nThe cents are rounded: round cents, round again.")[0] == "shop/tax.py"
