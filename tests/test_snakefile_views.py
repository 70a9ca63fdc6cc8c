"""What Snakemake users see of a generated Snakefile (issue 15): it holds no path of the
machine it was compiled on, `snakemake --lint` finds nothing in it but the one lint the
Snakefile explains, and its header shows the routing table. Real compiles, real
Snakemake."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import compile_wf, fresh_copy

SOFTWARE_LINT = "Specify a conda environment or container for each rule."


def lint(wf: Path) -> set[tuple[str, str]]:
    """(what, lint title) for each lint `snakemake --lint` prints (its `json` form prints
    text too in this Snakemake), e.g. ("rule advance", SOFTWARE_LINT)."""
    r = subprocess.run(
        ["timeout", "-k", "10", "300", sys.executable, "-m", "snakemake", "--lint",
         "-s", str(wf / "Snakefile"), "-d", str(wf)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr[-3000:]  # 1: something linted
    found, what = set(), ""
    for line in r.stderr.splitlines():
        head = re.match(r"Lints for (snakefile \S+|rule \S+) ", line + " ")
        if head:
            what = head.group(1).split(" (")[0]
        elif line.startswith("    * "):
            found.add((what, line[6:].rstrip(":")))
    assert (r.returncode == 1) == bool(found), r.stderr[-3000:]
    return found


@pytest.mark.parametrize("name", ["demo", "hmi"])
def test_snakemake_lint_finds_only_the_explained_lint(name: str, tmp_path: Path):
    wf = fresh_copy(name, tmp_path / name)
    compile_wf(wf)
    text = (wf / "Snakefile").read_text()
    # No path of this machine: not the workflow dir, not the Python that compiled it.
    assert str(wf) not in text and sys.executable not in text
    found = lint(wf)
    rules = {what for what, _ in found}
    assert rules and all(r.startswith("rule ") for r in rules), found
    assert found == {(rule, SOFTWARE_LINT) for rule in rules}
    # ... and that one lint is explained in the Snakefile, above the rules.
    assert "`snakemake --lint` asks every rule below for a conda environment" in text
