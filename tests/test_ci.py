""".ci/run never goes green having run no test: its pytest step (.ci/pytest-ran-tests)
fails on pytest's exit 5 and on a run where every test was skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

GATE = REPO / ".ci" / "pytest-ran-tests"

BODIES = {
    "one-passes": "def test_ok():\n    assert True\n",
    "one-fails": "def test_bad():\n    assert False\n",
    "all-skipped": "import pytest\n\n@pytest.mark.skip(reason='x')\ndef test_a():\n    pass\n",
    "module-skipped": "import pytest\n\npytest.skip('no', allow_module_level=True)\n",
    "no-test": "X = 1\n",
}


@pytest.mark.parametrize(
    "body,want",
    [
        ("one-passes", 0),
        ("one-fails", 1),
        ("all-skipped", 1),
        ("module-skipped", 1),
        ("no-test", 1),
    ],
)
def test_ci_pytest_step_fails_when_no_test_ran(tmp_path: Path, body: str, want: int):
    (tmp_path / "test_x.py").write_text(BODIES[body])
    r = subprocess.run(
        ["bash", str(GATE), sys.executable, "-q", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        # only pytest's own plugins (junitxml among them): a faster start
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )  # fmt: skip
    assert r.returncode == want, r.stdout + r.stderr
    if want == 1 and body != "one-fails":
        assert "ci: pytest ran no test" in r.stderr


def test_ci_run_uses_the_step():
    text = (REPO / ".ci" / "run").read_text()
    assert "bash .ci/pytest-ran-tests .venv/bin/python" in text
    assert "-m pytest" not in text  # the only pytest run is the checked one
