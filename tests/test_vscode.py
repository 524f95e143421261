"""The VS Code extension: its unit tests (node --test, stub vscode), type check, bundle and .vsix."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parent.parent / "editors" / "vscode"
NPM = shutil.which("npm")


@pytest.mark.slow
@pytest.mark.skipif(NPM is None, reason="Node.js (npm) is not installed")
def test_extension_tests_pass_and_it_packages():
    subprocess.run([NPM, "ci", "--no-audit", "--no-fund"], cwd=EXTENSION, check=True, capture_output=True)
    r = subprocess.run([NPM, "run", "ci"], cwd=EXTENSION, capture_output=True, text=True)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    passed, failed = (int(re.search(rf"^# {k} (\d+)", out, re.M).group(1)) for k in ("pass", "fail"))
    assert passed >= 50 and failed == 0, out[-4000:]
    with zipfile.ZipFile(EXTENSION / "swe-reasoner.vsix") as vsix:
        names = set(vsix.namelist())
    assert {"extension/package.json", "extension/dist/extension.js"} <= names
    assert not any(n.startswith(("extension/node_modules", "extension/src", "extension/test")) for n in names)
