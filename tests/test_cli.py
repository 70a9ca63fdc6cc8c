"""One way to name things on the command line (issue 18), tried as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import compile_wf, padocc

DS = "DEMO.atmos.hist.r3.pr"


def test_output_into_a_closed_pipe_ends_quietly(demo: Path):
    compile_wf(demo)
    for cmd in (["datasets", str(demo)], ["status", str(demo), "-l"], ["reference"]):
        r = subprocess.run(
            f"{sys.executable} -m compiler {' '.join(cmd)} | head -1",
            shell=True, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert (r.returncode, r.stderr) == (0, ""), (cmd, r.stderr)
        assert r.stdout.count("\n") == 1


def test_help_lists_only_what_people_run():
    r = padocc("--help")
    assert r.returncode == 0
    assert "run-step" not in r.stdout and "run-chunk" not in r.stdout
    assert "\n    why " in r.stdout and "\n    status " in r.stdout
    # the wrappers still work for the Snakefiles that call them
    r = padocc("run-step")
    assert r.returncode == 2 and "build_dir" in r.stderr


def test_a_mistyped_filter_gets_a_suggestion_not_total_0(demo: Path):
    compile_wf(demo)
    for args, said in (
        (["--facet", "relm=atmos"], "no dataset has a facet 'relm' (did you mean 'realm'?)"),
        (["--facet", "realm=atmso"], "no dataset has realm matching 'atmso' (did you mean 'atmos'?)"),
        (["--state", "Quarantind"], "no state 'Quarantind' in this build (did you mean 'Quarantined'?)"),
        (["--step", "ChekTime"], "no step or workflow 'ChekTime' in this build (did you mean 'CheckTime'?)"),
    ):  # fmt: skip
        r = padocc("status", str(demo), *args)
        assert (r.returncode, r.stdout, r.stderr) == (2, "", f"padocc status: error: {said}\n")
    # a real state that no dataset is at now is no mistake: total 0
    r = padocc("status", str(demo), "--state", "Fail")
    assert r.returncode == 0 and r.stdout.splitlines()[-1].split() == ["total", "0", "0"]


def test_report_shows_colons_not_the_status_files_carets(demo: Path):
    """datasm writes ':' inside a STAT value as '^'; people read ':'."""
    compile_wf(demo)
    (demo / "status").mkdir()
    (demo / "status" / f"{DS}.status").write_text(
        f"DATASETID={DS}\n"
        "STAT:20230503_160200_000000:DEMO:VALIDATION:FixTime:Engaged:host=vm,pid=203,attempt=1\n"
        "STAT:20230503_160206_000000:DEMO:VALIDATION:FixTime:Fail:exit=2,problem=time axis^ gap "
        "at 1850-02\n"
        "STAT:20230503_160207_000000:DEMO:DEMO:DEMO:Fail:\n"
    )
    r = padocc("report", str(demo))
    assert r.returncode == 0, r.stderr
    (row,) = [ln for ln in r.stdout.splitlines() if ln.startswith(DS)]
    assert row.endswith("exit=2, problem=time axis: gap at 1850-02")
