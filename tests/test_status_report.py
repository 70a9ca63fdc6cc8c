"""`padocc status` and `padocc report` on hand-written status files in a compiled demo.

The fixture has datasm-style lines (workflow WAREHOUSE), escaped ':' written '^',
comments, a torn last line, a non-binding Blocked, a Retry, a file without header, an
empty file and a status "file" that cannot be read. Outputs are checked exactly.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from compiler.commands import report, status
from compiler.core.statusfile import parse_history, position_of
from compiler.runtime import survey as sv
from compiler.runtime.survey import Filters

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2023, 5, 4, 0, 0, 0, tzinfo=UTC)

A, B, C = "DEMO.atmos.hist.r1.tas", "DEMO.atmos.hist.r2.tas", "DEMO.atmos.hist.r3.tas"
D, E, F = "DEMO.ocean.hist.r1.so", "DEMO.ocean.hist.r2.so", "DEMO.ocean.hist.r3.so"
G, H = "DEMO.ocean.ssp.r1.so", "DEMO.ocean.ssp.r2.so"

FILES = {
    # Finished: a Retry, then the custom outcome Warning with an escaped ':'; a comment.
    A: """DATASETID=DEMO.atmos.hist.r1.tas
# imported by hand, 2023-05-03
STAT:20230503_140000_000000:DEMO:DEMO:Generate:Engaged:host=vm,pid=101,attempt=1,slot=1,build=B1
STAT:20230503_140010_000000:DEMO:DEMO:Generate:Retry:exit=1,attempt=1,wall=10.0,maxrss_mb=100
STAT:20230503_140011_000000:DEMO:DEMO:Generate:Engaged:host=vm,pid=102,attempt=2,slot=1,build=B1
STAT:20230503_140031_000000:DEMO:DEMO:Generate:Pass:exit=0,wall=20.0,maxrss_mb=250,attempt=2
STAT:20230503_140100_000000:DEMO:VALIDATION:CheckTime:Engaged:host=vm,pid=103,attempt=1,slot=2,build=B1
STAT:20230503_140130_000000:DEMO:VALIDATION:CheckTime:Pass:exit=0,wall=30.0,maxrss_mb=80,attempt=1
STAT:20230503_140200_000000:DEMO:VALIDATION:CheckMeta:Engaged:host=vm,pid=104,attempt=1,slot=3,build=B1
STAT:20230503_140205_000000:DEMO:VALIDATION:CheckMeta:Warning:report=meta^ units differ,exit=0,wall=5.0,maxrss_mb=60,attempt=1
STAT:20230503_140300_000000:DEMO:DEMO:Regrid:Engaged:host=vm,pid=105,attempt=1,slot=4,build=B1
STAT:20230503_140440_000000:DEMO:DEMO:Regrid:Pass:exit=0,wall=100.0,maxrss_mb=900,attempt=1
STAT:20230503_140500_000000:DEMO:DEMO:Publish:Engaged:host=vm,pid=106,attempt=1,slot=5,build=B1
STAT:20230503_140510_000000:DEMO:DEMO:Publish:Pass:exit=0,wall=10.0,maxrss_mb=50,attempt=1
STAT:20230503_140510_100000:DEMO:DEMO:DEMO:Pass:build=B1
""",
    # datasm-style lines (workflow WAREHOUSE), on SLURM, still Engaged in CheckTime.
    B: """DATASETID=DEMO.atmos.hist.r2.tas
STAT:20230503_143045_123456:WAREHOUSE:DEMO:Generate:Engaged:host=node7,pid=4242,slurm_jobid=9001,attempt=1,slot=1,build=B1
STAT:20230503_143059_123456:WAREHOUSE:DEMO:Generate:Pass:exit=0,maxrss_mb=120,attempt=1,slurm_jobid=9001
STAT:20230503_150000_000000:WAREHOUSE:VALIDATION:CheckTime:Engaged:host=node7,pid=4243,slurm_jobid=9002,attempt=1,slot=2,build=B1
""",
    # Failed: FixTime failed with an escaped ':' and markup in its params.
    C: """DATASETID=DEMO.atmos.hist.r3.tas
STAT:20230503_160000_000000:DEMO:DEMO:Generate:Engaged:host=vm,pid=201,attempt=1,slot=1,build=B2
STAT:20230503_160004_000000:DEMO:DEMO:Generate:Pass:exit=0,wall=4.0,maxrss_mb=100,attempt=1
STAT:20230503_160100_000000:DEMO:VALIDATION:CheckTime:Engaged:host=vm,pid=202,attempt=1,slot=2,build=B2
STAT:20230503_160102_000000:DEMO:VALIDATION:CheckTime:Fail:exit=1,wall=2.0,maxrss_mb=50,attempt=1
STAT:20230503_160200_000000:DEMO:VALIDATION:FixTime:Engaged:host=vm,pid=203,attempt=1,slot=3,build=B2,slurm_jobid=777
STAT:20230503_160206_000000:DEMO:VALIDATION:FixTime:Fail:exit=2,wall=6.0,maxrss_mb=70,attempt=1,slurm_jobid=777,problem=time axis^ gap at 1850-02,note=<b>bold</b>
STAT:20230503_160206_500000:DEMO:DEMO:DEMO:Fail:build=B2
""",
    # Quarantined after the visit limit; its reason holds an escaped ':'.
    D: """DATASETID=DEMO.ocean.hist.r1.so
STAT:20230503_190000_000000:DEMO:DEMO:Generate:Engaged:host=vm,pid=501,attempt=1,slot=1,build=B2
STAT:20230503_190005_000000:DEMO:DEMO:Generate:Pass:exit=0,wall=5.0,maxrss_mb=110,attempt=1
STAT:20230503_190100_000000:DEMO:VALIDATION:CheckTime:Engaged:host=vm,pid=502,attempt=1,slot=2,build=B2
STAT:20230503_190101_000000:DEMO:VALIDATION:CheckTime:Fail:exit=1,wall=1.0,maxrss_mb=40,attempt=1
STAT:20230503_190200_000000:DEMO:VALIDATION:FixTime:Engaged:host=vm,pid=503,attempt=1,slot=3,build=B2
STAT:20230503_190208_000000:DEMO:VALIDATION:FixTime:Pass:exit=0,wall=8.0,maxrss_mb=75,attempt=1
STAT:20230503_190209_000000:DEMO:VALIDATION:CheckTime:Quarantined:reason=visit limit^ CheckTime already ran 3 times,build=B2
""",
    # Blocked (non-binding: it stays at Generate:Pass), then a torn last line.
    E: """DATASETID=DEMO.ocean.hist.r2.so
STAT:20230503_170000_000000:DEMO:DEMO:Generate:Engaged:host=vm,pid=301,attempt=1,slot=1,build=B2
STAT:20230503_170003_000000:DEMO:DEMO:Generate:Pass:exit=0,wall=3.0,maxrss_mb=90,attempt=1
STAT:20230503_170100_000000:DEMO:DEMO:Generate:Blocked:by=operator,why=disk full
STAT:20230503_1702""",
    # No header, a garbage line and a malformed STAT line: state from the valid lines.
    F: """STAT:20230503_180000_000000:DEMO:DEMO:Generate:Engaged:host=vm,pid=401,attempt=1,slot=1,build=B2
this line is garbage
STAT:2023-05-03:DEMO:DEMO:Generate:Pass
STAT:20230503_180009_000000:DEMO:DEMO:Generate:Pass:exit=0,wall=9.0,maxrss_mb=95,attempt=1
""",
    G: "",  # empty
}


def make_fixture(tmp: Path) -> Path:
    """The demo workflow, compiled, with the status files above (and 28 datasets that
    have none yet)."""
    wf = tmp / "wf"
    shutil.copytree(REPO / "workflows" / "demo", wf,
                    ignore=shutil.ignore_patterns(".padocc", "status", "work", "Snakefile"))
    r = subprocess.run([sys.executable, "-m", "compiler", "compile", "-q", str(wf)], cwd=REPO,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    st = wf / "status"
    st.mkdir()
    for ds, text in FILES.items():
        (st / f"{ds}.status").write_text(text, encoding="utf-8")
    (st / f"{H}.status").mkdir()  # cannot be read as a file
    return wf


@pytest.fixture
def wf(tmp_path: Path) -> Path:
    return make_fixture(tmp_path)


def expected_warnings(wf: Path) -> list[str]:
    s = wf / "status"
    return [
        f"warning: {s}/{E}.status:5: torn last line ignored",
        f"warning: {s}/{F}.status:1: missing DATASETID header",
        f"warning: {s}/{F}.status:3: malformed STAT line ignored",
        f"warning: {s}/{G}.status: empty status file",
        f"warning: {s}/{H}.status: unreadable status file: Is a directory",
    ]


STATUS_TABLE = """\
WORKFLOW    STEP       STATE        DATASETS  BLOCKED
DEMO        DEMO       Ready              30        0
DEMO        Generate   Pass                2        1
VALIDATION  CheckTime  Engaged             1        0
VALIDATION  CheckTime  Quarantined         1        0
DEMO        DEMO       Pass                1        0
DEMO        DEMO       Fail                1        0
total                                     36        1
"""


@pytest.mark.parametrize("use_index", [True, False])
def test_status_table(wf: Path, capsys, use_index: bool):
    for _ in range(2):  # the second run reads the index the first one wrote
        assert status.run(status.StatusOptions(str(wf), use_index=use_index)) == 0
        out, err = capsys.readouterr()
        assert out == STATUS_TABLE
        assert err.splitlines() == expected_warnings(wf)


def test_status_list_and_filters(wf: Path, capsys):
    f = Filters(facets=(("realm", "oc*"), ("variable", "so")), states=("Pass", "Quarantined", "Blocked"))
    assert status.run(status.StatusOptions(str(wf), f, list_datasets=True)) == 0
    assert capsys.readouterr().out == """\
DATASET                WORKFLOW    STEP       STATE        SINCE                 BLOCKED  FAILED
DEMO.ocean.hist.r1.so  VALIDATION  CheckTime  Quarantined  2023-05-03T19:02:09Z
DEMO.ocean.hist.r2.so  DEMO        Generate   Pass         2023-05-03T17:00:03Z  yes
DEMO.ocean.hist.r3.so  DEMO        Generate   Pass         2023-05-03T18:00:09Z
"""
    # --state Blocked finds blocked datasets; ids print one a line, for scripts.
    assert status.run(status.StatusOptions(str(wf), Filters(states=("Blocked",)), "ids")) == 0
    assert capsys.readouterr().out == f"{E}\n"
    assert status.run(status.StatusOptions(str(wf), Filters(workflows=("VALIDATION",)), "ids")) == 0
    assert capsys.readouterr().out == f"{B}\n{D}\n"
    # The same facet twice: either may match; a missing facet never matches.
    f = Filters(facets=(("variable", "tas"), ("variable", "s?"), ("experiment", "hist")), steps=("Gen*", "DEMO"),
                states=("P*", "F*"))
    assert status.run(status.StatusOptions(str(wf), f, "ids")) == 0
    assert capsys.readouterr().out == f"{A}\n{C}\n{E}\n{F}\n"
    # A facet no dataset has is a mistake, said in one line, not an empty answer.
    assert status.run(status.StatusOptions(str(wf), Filters(facets=(("nope", "*"),)), "ids")) == 2
    got = capsys.readouterr()
    assert got.out == "" and got.err.endswith("padocc status: error: no dataset has a facet 'nope'\n")


def test_status_json(wf: Path, capsys):
    assert status.run(status.StatusOptions(str(wf), Filters(workflows=("VALIDATION",)), "json")) == 0
    doc = json.loads(capsys.readouterr().out)
    build = (wf / ".padocc" / "current").resolve().name
    assert doc == {
        "workflow": "DEMO",
        "build": build,
        "datasets_total": 36,
        "matched": 2,
        "counts": [
            {"workflow": "VALIDATION", "step": "CheckTime", "state": "Engaged", "datasets": 1, "blocked": 0},
            {"workflow": "VALIDATION", "step": "CheckTime", "state": "Quarantined", "datasets": 1, "blocked": 0},
        ],
        "datasets": [
            {"id": B, "workflow": "VALIDATION", "step": "CheckTime", "state": "Engaged",
             "since": "2023-05-03T15:00:00Z", "blocked": False,
             "params": {"host": "node7", "pid": "4243", "slurm_jobid": "9002", "attempt": "1", "slot": "2",
                        "build": "B1"},
             "routing_key": "atmos-mon",
             "facets": {"dataset": B, "ens": "r2", "experiment": "hist", "realm": "atmos", "variable": "tas"},
             "status_file": str(wf / "status" / f"{B}.status"), "warnings": []},
            {"id": D, "workflow": "VALIDATION", "step": "CheckTime", "state": "Quarantined",
             "since": "2023-05-03T19:02:09Z", "blocked": False,
             "params": {"reason": "visit limit: CheckTime already ran 3 times", "build": "B2"},
             "routing_key": "ocean-mon",
             "facets": {"dataset": D, "ens": "r1", "experiment": "hist", "realm": "ocean", "variable": "so"},
             "status_file": str(wf / "status" / f"{D}.status"), "warnings": []},
        ],
    }


REPORT_STEPS = """\
DEMO: 36 datasets, build {build}, all time

STEP       DATASETS  ENGAGED  PASS  FAIL  OTHER  RETRIES  TOTAL   MEAN  MEDIAN    P95  SHARE  PEAK_MB
Generate          6        7     6     0      0        1  1m05s   9.3s    9.0s  20.0s  28.6%      250
CheckTime         4        4     1     2      0        0  33.0s  11.0s    2.0s  30.0s  14.5%       80
FixTime           2        2     1     1      0        0  14.0s   7.0s    7.0s   8.0s   6.2%       75
CheckMeta         1        1     0     0      1        0   5.0s   5.0s    5.0s   5.0s   2.2%       60
Regrid            1        1     1     0      0        0  1m40s  1m40s   1m40s  1m40s  44.1%      900
Publish           1        1     1     0      0        0  10.0s  10.0s   10.0s  10.0s   4.4%       50
"""


def _squeeze(text: str, wf: Path) -> str:
    # Log paths hold the temporary directory, whose length varies: name it WF and
    # compare those sections with runs of spaces squeezed.
    return re.sub(r" {2,}", "  ", text.replace(str(wf), "WF"))


def test_report_table(wf: Path, capsys):
    assert report.run(report.ReportOptions(str(wf), now=NOW)) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == expected_warnings(wf)
    build = (wf / ".padocc" / "current").resolve().name
    steps, rest = out.split("\nfailures", 1)
    assert steps == REPORT_STEPS.format(build=build)
    assert _squeeze("failures" + rest, wf) == _squeeze("""\
failures (2):
DATASET                STEP       STATE        WHEN                  SLURM_JOB  LOG                                          PARAMS
DEMO.ocean.hist.r1.so  CheckTime  Quarantined  2023-05-03T19:02:09Z  -          WF/.padocc/logs/B2/DEMO.ocean.hist.r1.so/3.log   reason=visit limit: CheckTime already ran 3 times, build=B2
DEMO.atmos.hist.r3.tas  FixTime    Fail         2023-05-03T16:02:06Z  777        WF/.padocc/logs/B2/DEMO.atmos.hist.r3.tas/3.log  exit=2, wall=6.0, maxrss_mb=70, attempt=1, slurm_jobid=777, problem=time axis: gap at 1850-02, note=<b>bold</b>

stuck Engaged longer than 6h00m (1):
DATASET                 STEP       SINCE                 AGE    HOST   PID   SLURM_JOB  LOG
DEMO.atmos.hist.r2.tas  CheckTime  2023-05-03T15:00:00Z  9h00m  node7  4243  9002       WF/.padocc/logs/B1/DEMO.atmos.hist.r2.tas/2.log

gate coverage (0):
""", wf)


def test_report_json_since_and_stuck_after(wf: Path, capsys):
    opts = report.ReportOptions(str(wf), since="2023-05-03T17:00", stuck_after="10h", format="json", now=NOW)
    assert report.run(opts) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["since"], doc["now"], doc["stuck_after_s"]) == ("2023-05-03T17:00:00Z", "2023-05-04T00:00:00Z", 36000.0)
    assert doc["stuck"] == []  # Engaged 9 hours: not stuck after 10h
    gen = next(x for x in doc["steps"] if x["step"] == "Generate")
    # From 17:00 on: E (3 s), F (9 s), D (5 s); with D's CheckTime (1 s) and FixTime (8 s), 26 s in all.
    assert gen == {"step": "Generate", "datasets": 3, "engaged": 3, "passed": 3, "failed": 0, "other": 0,
                   "retries": 0, "cancelled": 0, "lost": 0, "open": 0, "total_s": 17.0, "mean_s": 5.667,
                   "median_s": 5.0, "p95_s": 9.0, "share": 0.654, "peak_mb": 110.0}
    assert [f["dataset"] for f in doc["failures"]] == [D]
    assert doc["failures"][0] == {
        "dataset": D, "workflow": "VALIDATION", "step": "CheckTime", "state": "Quarantined",
        "ts": "2023-05-03T19:02:09Z", "params": {"reason": "visit limit: CheckTime already ran 3 times", "build": "B2"},
        "log": str(wf / ".padocc" / "logs" / "B2" / D / "3.log"), "slurm_jobid": "",
    }
    # The open CheckTime of B began before --since: it is not counted.
    ct = next(x for x in doc["steps"] if x["step"] == "CheckTime")
    assert (ct["engaged"], ct["open"], ct["failed"]) == (1, 0, 1)
    assert doc["coverage"] == []


def test_report_durations_and_bad_options(wf: Path, capsys):
    opts = report.ReportOptions(str(wf), since="1d", format="json", now=NOW)
    assert report.run(opts) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["since"] == "2023-05-03T00:00:00Z"
    assert sum(x["engaged"] for x in doc["steps"]) == 16
    for bad in (report.ReportOptions(str(wf), since="yesterday"), report.ReportOptions(str(wf), stuck_after="6x")):
        assert report.run(bad) == 2
        err = capsys.readouterr().err
        assert err.startswith("padocc report: error: ") and err.count("\n") == 1
    # Durations past what a date can hold: one line and exit 2, not a traceback.
    for bad, msg in ((report.ReportOptions(str(wf), since="1000000d", now=NOW), "duration too long: '1000000d'"),
                     (report.ReportOptions(str(wf), stuck_after="1000000000d", now=NOW),
                      "--stuck-after: duration too long: '1000000000d'")):
        assert report.run(bad) == 2
        assert capsys.readouterr().err == f"padocc report: error: {msg}\n"


def test_cli_missing_manifest_and_ids(wf: Path, tmp_path: Path):
    empty = tmp_path / "nothing"
    empty.mkdir()
    for cmd in (["status"], ["report"], ["dashboard", "-o", str(tmp_path / "x.html")]):
        r = subprocess.run([sys.executable, "-m", "compiler", *cmd, str(empty)], cwd=REPO,
                           capture_output=True, text=True, check=False)
        assert r.returncode == 2
        assert r.stdout == ""
        assert r.stderr == (f"{empty}/.padocc/current/manifest.json: error: no compiled workflow here "
                            "(run `padocc compile` first)\n")
    assert not (tmp_path / "x.html").exists()
    r = subprocess.run([sys.executable, "-m", "compiler", "status", str(wf), "--facet", "realm=atm*",
                        "--state", "Engaged", "--format", "ids"], cwd=REPO, capture_output=True, text=True,
                       check=False)
    assert (r.returncode, r.stdout) == (0, f"{B}\n")
    r = subprocess.run([sys.executable, "-m", "compiler", "status", str(wf), "--facet", "realm"], cwd=REPO,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "expected FACET=GLOB" in r.stderr


def test_ids_pipe_into_requeue_and_block(wf: Path):
    """`--format ids` feeds the operators' commands through a real shell pipe."""
    padocc = f"{shlex.quote(sys.executable)} -m compiler"
    d = shlex.quote(str(wf))

    def sh(cmd: str) -> str:
        r = subprocess.run(cmd, shell=True, cwd=REPO, capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stderr
        return r.stdout

    out = sh(f"{padocc} status {d} --state Quarantined --format ids 2>/dev/null"
             f" | {padocc} requeue {d} - --at CheckTime")
    assert out == f"requeue {D} at CheckTime:Ready\n"
    out = sh(f"{padocc} status {d} --facet realm=atm* --state Engaged --format ids 2>/dev/null"
             f" | {padocc} block {d} - --reason 'disk full'")
    assert out == f"block {B}\n"
    # The status read back (through the index: the appended files are re-read).
    assert sh(f"{padocc} status {d} --step CheckTime --state Ready --format ids 2>/dev/null") == f"{D}\n"
    assert sh(f"{padocc} status {d} --state Blocked --format ids 2>/dev/null") == f"{B}\n{E}\n"


# --- the index never shows stale state ----------------------------------------------


def _states(wf: Path) -> dict[str, str]:
    s = sv.survey(wf)
    return {r.id: f"{r.step}:{r.state}{'/blocked' if r.blocked else ''}" for r in s.records if r.status_file}


def _index_names(wf: Path) -> set[str]:
    """The names the status index holds: its base with its delta applied."""
    return set(sv._Index(wf / sv.INDEX_FILE, str(wf / "status")).files)


def test_index_rereads_changed_files(wf: Path):
    first = _states(wf)
    assert not (wf / sv.INDEX_FILE).exists()  # all written just now: none indexed yet
    time.sleep(sv.RACY_NS / 1e9 + 0.2)
    full = _states(wf)
    assert full == first
    # Seven files: the eighth, a directory, cannot be read; the 28 others do not exist.
    assert _index_names(wf) == {f"{d}.status" for d in (A, B, C, D, E, F, G)}
    assert _states(wf) == full  # from the index now
    p = wf / "status" / f"{F}.status"

    # An append: size and mtime change.
    with open(p, "a", encoding="utf-8") as f:
        f.write("STAT:20230503_200000_000000:DEMO:VALIDATION:CheckTime:Engaged:host=vm,pid=9\n")
    assert _states(wf)[F] == "CheckTime:Engaged"
    assert f"{F}.status" not in _index_names(wf)  # changed just now: not indexed yet
    time.sleep(sv.RACY_NS / 1e9 + 0.2)
    assert _states(wf)[F] == "CheckTime:Engaged"
    assert f"{F}.status" in _index_names(wf)

    # Rewritten in place to the same size with its old mtime put back: only ctime says so.
    st = os.stat(p)
    text = p.read_text()
    p.write_text(text.replace("CheckTime:Engaged", "CheckTime:Blocked"))  # as long
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(p)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert _states(wf)[F] == "Generate:Pass/blocked"

    # Replaced by rename (a new inode), and a new file where there was none.
    tmp = p.with_suffix(".new")
    tmp.write_text(f"DATASETID={F}\nSTAT:20230503_210000_000000:DEMO:DEMO:Generate:Blocked:by=x\n")
    os.replace(tmp, p)
    (wf / "status" / "DEMO.ocean.ssp.r3.so.status").write_text(
        "DATASETID=DEMO.ocean.ssp.r3.so\nSTAT:20230503_210000_000000:DEMO:DEMO:Generate:Engaged:pid=1\n")
    now = _states(wf)
    assert now[F] == "DEMO:Ready/blocked"
    assert f"{F}.status" not in _index_names(wf)  # changed just now
    assert now["DEMO.ocean.ssp.r3.so"] == "Generate:Engaged"
    # And the whole indexed survey equals a full read.
    fresh = sv.survey(wf, use_index=False)
    cached = sv.survey(wf)
    assert [(r.id, r.workflow, r.step, r.state, r.since, r.blocked, r.current_parts, r.engaged_parts, r.warnings)
            for r in cached.records] == \
           [(r.id, r.workflow, r.step, r.state, r.since, r.blocked, r.current_parts, r.engaged_parts, r.warnings)
            for r in fresh.records]


def test_damaged_index_is_ignored(wf: Path):
    full = _states(wf)
    idx = wf / sv.INDEX_FILE
    idx.parent.mkdir(parents=True)
    for junk in ("{not json", '{"version": 2, "status_dir": "x", "files": {}}', "[]",
                 json.dumps({"version": sv.INDEX_VERSION, "status_dir": str(wf / "status"),
                             "files": {f"{A}.status": [1, 2, 3]}})):
        idx.write_text(junk)
        assert _states(wf) == full


# --- the report cache never shows stale figures -------------------------------------

# --since: before everything, cutting through A's and then C's history, exactly at E's
# first line, and after everything.
_SINCES = (None, "20230101_000000_000000", "20230503_140230_000000", "20230503_160101_000000",
           "20230503_170000_000000", "20240101_000000_000000")
ODD = "DEMO.ocean.ssp.r3.so"  # its stamps have an unusual (valid) shape: --since reads it again


def _tallied(wf: Path, since: str | None, use_index: bool = True) -> tuple:
    """What a report shows of the histories: from the report cache, or every file read."""
    m, _ = sv.load_current(wf)
    t = sv.Tally(m, wf, since)
    s = sv.survey(wf, tally=t, use_index=use_index)
    return (t.step_rows(), t.recent_failures(),
            [(r.id, r.step, r.state, r.blocked, r.current_parts, r.engaged_parts, r.warnings) for r in s.records])


def _agree(wf: Path) -> None:
    for since in _SINCES:
        assert _tallied(wf, since) == _tallied(wf, since, use_index=False), since


def _cached_names(wf: Path, root: str = "DEMO") -> set[str]:
    """The names the report cache holds: its base with its delta applied."""
    return set(sv._ReportCache(wf / sv.REPORT_CACHE_FILE, str(wf / "status"), root).files)


def _reads(wf: Path, monkeypatch, since: str | None = None) -> set[str]:
    return _reading(wf, monkeypatch, since)[0]


def _reading(wf: Path, monkeypatch, since: str | None = None) -> tuple[set[str], tuple]:
    """The status files a cached report reads, and what it shows."""
    names: list[str] = []
    real = sv._read
    with monkeypatch.context() as mp:
        mp.setattr(sv, "_read", lambda path: names.append(Path(path).name) or real(path))
        got = _tallied(wf, since)
    return set(names), got


def test_report_cache_rereads_changed_files(wf: Path, monkeypatch):
    (wf / "status" / f"{ODD}.status").write_text(
        f"DATASETID={ODD}\nSTAT:20230503_140000_5:DEMO:DEMO:Generate:Engaged:pid=1\n"
        "STAT:20230503_140009_5:DEMO:DEMO:Generate:Pass:wall=9.0,maxrss_mb=10\n")
    _agree(wf)
    assert not (wf / sv.REPORT_CACHE_FILE).exists()  # all written just now: none cached yet
    time.sleep(sv.RACY_NS / 1e9 + 0.2)
    _agree(wf)
    # Eight files: the directory cannot be read, and is tried every time.
    assert _cached_names(wf) == {f"{d}.status" for d in (A, B, C, D, E, F, G, ODD)}
    assert _reads(wf, monkeypatch) == {f"{H}.status"}
    # --since serves from the cache the files wholly before or after it.
    assert _reads(wf, monkeypatch, "20230503_160101_000000") == {f"{C}.status", f"{ODD}.status", f"{H}.status"}
    _agree(wf)

    # An append: size and mtime change.
    p = wf / "status" / f"{F}.status"
    with open(p, "a", encoding="utf-8") as f:
        f.write("STAT:20230503_200000_000000:DEMO:VALIDATION:CheckTime:Engaged:host=vm,pid=9\n")
    _agree(wf)
    assert f"{F}.status" not in _cached_names(wf)  # changed just now: not cached yet
    time.sleep(sv.RACY_NS / 1e9 + 0.2)
    assert _reads(wf, monkeypatch) == {f"{F}.status", f"{H}.status"}
    assert _reads(wf, monkeypatch) == {f"{H}.status"}
    _agree(wf)

    # Rewritten in place to the same size with its old mtime put back: only ctime says so.
    p = wf / "status" / f"{A}.status"
    st = os.stat(p)
    p.write_text(p.read_text().replace("maxrss_mb=900", "maxrss_mb=901"))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(p)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert next(r for r in _tallied(wf, None)[0] if r.step == "Regrid").peak_mb == 901.0
    _agree(wf)

    # Deleted: its failure is gone, and so is its entry.
    (wf / "status" / f"{C}.status").unlink()
    assert [f.dataset for f in _tallied(wf, None)[1]] == [D]
    assert f"{C}.status" not in _cached_names(wf)
    _agree(wf)


def test_damaged_report_cache_is_ignored(wf: Path, monkeypatch):
    time.sleep(sv.RACY_NS / 1e9 + 0.2)
    sinces = (None, "20230503_160101_000000")
    want = {since: _tallied(wf, since, use_index=False) for since in sinces}
    _tallied(wf, None)  # writes the cache
    path = wf / sv.REPORT_CACHE_FILE
    text = path.read_text()
    a, c = f"{A}.status", f"{C}.status"

    def damaged(where: str, i: int, value: object) -> str:
        d = json.loads(text)
        d["files"][where][i] = value
        return json.dumps(d)

    def in_engs(i: int, value: object) -> str:
        engs = json.loads(text)["files"][a][12]
        engs[i] = value
        return damaged(a, 12, engs)

    junk = ["{not json", "[]", text[: len(text) // 2], text.replace('"root":"DEMO"', '"root":"OTHER"'),
            text.replace('"keys":[[', '"keys":[["x"],['),
            damaged(a, 10, 7), damaged(a, 12, "engs"), damaged(a, 12, [0, 1.0]), damaged(a, 13, "Retry"),
            damaged(a, 13, [7]), damaged(c, 14, [1, 2]), damaged(c, 14, ["W", "S", "Fail", "not a stamp", "", None, ""]),
            in_engs(0, -1), in_engs(0, 10**6), in_engs(0, "Generate"), in_engs(0, True), in_engs(1, "10.0"),
            in_engs(2, 250)]
    for bad in junk:
        assert bad != text
        for since in sinces:
            for d in path.parent.glob(path.name + ".*.d"):  # the base is damaged, not its delta
                d.unlink()
            path.write_text(bad)
            read, got = _reading(wf, monkeypatch, since)
            assert got == want[since], bad[:200]
            assert read & {a, c}, bad[:200]  # the damaged entry was not believed
    assert _cached_names(wf) == {f"{d}.status" for d in (A, B, C, D, E, F, G)}  # cached again, sound


# --- the report cache is updated in place ----------------------------------------------


def _bench():
    """bench/survey.py: its synthetic workflow of finished datasets, made as the bench makes it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_survey", REPO / "bench" / "survey.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


N_BIG = 2000
FORGED_MB = 123456.0  # a peak no dataset reached: it shows when a forged entry is believed


def _big(tmp: Path) -> tuple[Path, list[str]]:
    """N_BIG datasets of the demo graph with finished histories, and their ids; none
    changed in the last 2 s, so a report caches every one."""
    wf = _bench().make_workflow(tmp, N_BIG, N_BIG * 10)
    ids = [line.split("\t", 1)[0] for line in (wf / ".padocc/current/datasets.tsv").read_text().splitlines()]
    time.sleep(sv.RACY_NS / 1e9 + 0.2)
    return wf, ids


def _report(wf: Path) -> dict:
    """`padocc report --format json` as a user runs it, less what depends on the moment."""
    r = subprocess.run([sys.executable, "-m", "compiler", "report", str(wf), "--format", "json"], cwd=REPO,
                       capture_output=True, text=True, check=False, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return _timeless(json.loads(r.stdout))


def _timeless(doc: dict) -> dict:
    doc.pop("now")
    for x in doc["stuck"]:
        x.pop("age_s")
    return doc


def _uncached(wf: Path) -> dict:
    """The report with no cache at all (the cache's files set aside, then put back)."""
    survey_dir, aside = wf / ".padocc" / "survey", wf.parent / "aside"
    aside.mkdir()
    for p in survey_dir.glob("report-cache.json*"):
        os.rename(p, aside / p.name)
    try:
        return _report(wf)
    finally:
        for p in survey_dir.glob("report-cache.json*"):
            p.unlink()
        for p in aside.iterdir():
            os.rename(p, survey_dir / p.name)
        aside.rmdir()


def _base(wf: Path) -> tuple[int, int, str]:
    """The report cache's base: (inode, mtime_ns, generation)."""
    path = wf / sv.REPORT_CACHE_FILE
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, json.loads(path.read_text())["generation"]


def _delta(wf: Path, generation: str) -> Path:
    return sv._ReportCache(wf / sv.REPORT_CACHE_FILE, str(wf / "status"), "BENCH")._delta(generation)


def _run_jobs(wf: Path, ids: list[str], mb: int) -> set[str]:
    """Each dataset's Publish run once more, its lines appended as the wrapper appends
    them, with a peak of `mb` the report shows; 2 s later, so they can be cached. Not
    on a dataset still engaged (every 53rd): that would close its engagement as lost,
    a (step, outcome) key the cache has not seen, which writes the cache whole."""
    t = datetime.now(UTC).strftime("%Y%m%d_%H%M%S_%f")
    ids = [ds for ds in ids if int(ds.rsplit(".", 1)[1]) % 53]
    for ds in ids:
        with open(wf / "status" / f"{ds}.status", "a", encoding="utf-8") as f:
            f.write(f"STAT:{t}:BENCH:BENCH:Publish:Engaged:host=vm,pid=7,attempt=1,slot=9,build=B\n"
                    f"STAT:{t}:BENCH:BENCH:Publish:Pass:exit=0,wall=5.0,maxrss_mb={mb},attempt=1\n")
    time.sleep(sv.RACY_NS / 1e9 + 0.2)
    return {f"{ds}.status" for ds in ids}


def _peak(doc: dict, step: str) -> float:
    return next(r["peak_mb"] for r in doc["steps"] if r["step"] == step)


def _forged(wf: Path, ds: str) -> bytes:
    """A delta line for `ds` with its file's true signature and a false peak."""
    cache = sv._ReportCache(wf / sv.REPORT_CACHE_FILE, str(wf / "status"), "BENCH")
    e = list(cache.files[f"{ds}.status"])
    e[12] = [FORGED_MB if i % 3 == 2 else x for i, x in enumerate(e[12])]
    return json.dumps([f"{ds}.status", e]).encode() + b"\n"


def test_report_cache_appends_what_changed_and_compacts_past_its_bound(tmp_path: Path):
    wf, ids = _big(tmp_path)
    first = _report(wf)
    ino, mtime, gen = _base(wf)
    delta = _delta(wf, gen)
    assert not delta.exists()  # written whole the first time
    changed = _run_jobs(wf, ids[::100], 4321)  # 1%
    got = _report(wf)
    assert _peak(got, "Publish") == 4321.0 and got != first
    assert _base(wf) == (ino, mtime, gen)  # the base was not rewritten ...
    lines = delta.read_bytes().split(b"\n")
    assert {json.loads(x)[0] for x in lines if x} == changed  # ... the changed entries were appended
    size = delta.stat().st_size
    assert _report(wf) == got  # nothing changed: nothing written
    assert (_base(wf), delta.stat().st_size) == ((ino, mtime, gen), size)
    assert got == _uncached(wf)
    # Past a quarter of the base, the delta is folded into a new base.
    _run_jobs(wf, ids[1::3], 5432)
    got = _report(wf)
    assert _peak(got, "Publish") == 5432.0
    ino2, _, gen2 = _base(wf)
    assert ino2 != ino and gen2 != gen
    assert not delta.exists() and not _delta(wf, gen2).exists()
    assert got == _uncached(wf)


def test_status_index_appends_what_changed(tmp_path: Path):
    wf, ids = _big(tmp_path)

    def status(*extra: str) -> str:
        r = subprocess.run([sys.executable, "-m", "compiler", "status", str(wf), "--format", "json", *extra],
                           cwd=REPO, capture_output=True, text=True, check=False, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        return r.stdout

    status()
    base = wf / sv.INDEX_FILE
    st, gen = base.stat(), json.loads(base.read_text())["generation"]
    changed = _run_jobs(wf, ids[::100], 4321)
    assert status() == status("--no-index")
    assert (base.stat().st_ino, base.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    delta = base.with_name(f"{base.name}.{gen}.d")
    assert {json.loads(x)[0] for x in delta.read_bytes().split(b"\n") if x} == changed
    size = delta.stat().st_size
    status()  # the delta's entries are believed: nothing is read again, nothing written
    assert delta.stat().st_size == size


def test_damaged_report_cache_delta_is_ignored(tmp_path: Path, monkeypatch):
    wf, ids = _big(tmp_path)
    _report(wf)
    changed = _run_jobs(wf, ids[::100], 4321)
    _report(wf)
    want = _uncached(wf)
    _, _, gen = _base(wf)
    delta = _delta(wf, gen)
    sound = delta.read_bytes()
    forged = _forged(wf, ids[1])
    base = wf / sv.REPORT_CACHE_FILE
    text = base.read_text()
    elsewhere = tmp_path / "elsewhere.d"
    elsewhere.write_bytes(sound + forged)

    def right(damage, reads: set[str]) -> None:
        """The report is right with the damage, and a survey with it reads again just
        what the cache no longer serves (each is run on the damage made anew: a report
        heals it)."""
        for check in ("report", "reads"):
            for d in base.parent.glob(base.name + ".*.d"):
                d.rmdir() if d.is_dir() and not d.is_symlink() else d.unlink()
            base.write_text(text)
            damage()
            if check == "report":
                assert _report(wf) == want
            else:
                assert _reading(wf, monkeypatch)[0] == reads
            assert elsewhere.read_bytes() == sound + forged  # never written through a link

    # A torn last line (its newline never written) is not believed; nor is garbage.
    right(lambda: delta.write_bytes(sound + forged[:-1]), set())
    junk = b"\x00\xff garbage\n{not json\n[1, 2]\n{}\n[\"x\", 3]\n"
    right(lambda: delta.write_bytes(sound + junk + forged[: len(forged) // 2]), set())
    # A delta of another generation: the base was rewritten by another save since.
    right(lambda: (delta.write_bytes(sound + forged), base.write_text(text.replace(gen, "0123456789abcdef"))),
          changed)
    # A FIFO, a directory or a link in the delta's place: never waited on nor followed.
    right(lambda: os.mkfifo(delta), changed)
    right(lambda: os.mkdir(delta), changed)
    right(lambda: os.symlink(elsewhere, delta), changed)
    assert _uncached(wf) == want


def test_a_save_killed_at_any_byte_leaves_a_loadable_cache(wf: Path, monkeypatch):
    """The delta cut at every byte of the last save's write, as a kill or a full disk
    leaves it: the survey is right, and takes from the cache just the lines written whole."""
    time.sleep(sv.RACY_NS / 1e9 + 0.2)
    _tallied(wf, None)  # the base
    # One file: two lines would pass a quarter of this small base (and be written whole).
    with open(wf / "status" / f"{F}.status", "a", encoding="utf-8") as f:
        f.write("STAT:20230503_200000_000000:DEMO:VALIDATION:CheckTime:Engaged:host=vm,pid=9\n")
    time.sleep(sv.RACY_NS / 1e9 + 0.2)
    want = _tallied(wf, None, use_index=False)
    base = wf / sv.REPORT_CACHE_FILE
    text = base.read_bytes()
    assert _reading(wf, monkeypatch)[0] == {f"{F}.status", f"{H}.status"}
    delta = _delta(wf, json.loads(text)["generation"])
    whole = delta.read_bytes()
    ends = {}  # name -> the offset just past its line's newline
    at = 0
    for line in whole.split(b"\n")[:-1]:
        at += len(line) + 1
        if line:
            ends[json.loads(line)[0]] = at
    assert set(ends) == {f"{F}.status"}
    for cut in range(len(whole) + 1):
        for d in base.parent.glob(base.name + ".*.d"):
            d.unlink()
        base.write_bytes(text)
        delta.write_bytes(whole[:cut])
        reads, got = _reading(wf, monkeypatch)
        assert got == want, cut
        assert reads == {n for n, end in ends.items() if end > cut} | {f"{H}.status"}, cut


def test_two_reports_at_once_after_changes(tmp_path: Path):
    wf, ids = _big(tmp_path)
    _report(wf)
    _run_jobs(wf, ids[::100], 4321)
    cmd = [sys.executable, "-m", "compiler", "report", str(wf), "--format", "json"]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    want = _uncached(wf)
    assert [_timeless(json.loads(o)) for o, _ in outs] == [want, want]
    assert _report(wf) == want
    assert _cached_names(wf, "BENCH") == {f"{ds}.status" for ds in ids}  # loadable, every file cached


def test_a_file_changed_behind_the_caches_back_is_read_again(tmp_path: Path):
    wf, ids = _big(tmp_path)
    _report(wf)
    _run_jobs(wf, ids[::100], 4321)
    _report(wf)
    _, _, gen = _base(wf)
    assert _delta(wf, gen).stat().st_size > 0
    # Rewritten in place to the same size with its old mtime put back: only ctime says so.
    p = wf / "status" / f"{ids[100]}.status"  # one the delta holds
    st = os.stat(p)
    p.write_text(p.read_text().replace("maxrss_mb=4321", "maxrss_mb=9876"))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (os.stat(p).st_size, os.stat(p).st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    got = _report(wf)
    assert _peak(got, "Publish") == 9876.0
    assert got == _uncached(wf)


# --- the fast readers agree with statusfile's reference readers ---------------------

_STEPS = ("Generate", "CheckTime", "FixTime")
_STATES = ("Engaged", "Pass", "Fail", "Warning", "Blocked", "Unblocked", "Retry", "Cancelled", "Quarantined")


_GOOD_TS = ("20230503_140000_000000", "20230503_140001_000000", "20240229_235959_999999")
_BAD_TS = ("20230503_140000_5", "20230229_010101_000000", "20231301_000000_000000", "2023-05-03",
           "00000101_000000_000000", "20230503_240000_000000", "\uff120230503_140000_000000")


@hs.composite
def status_bytes(draw) -> bytes:
    """Clean files (the fast paths take them) and damaged ones (the line-by-line path)."""
    clean = draw(hs.booleans())
    lines = ["DATASETID=X"] if clean or draw(hs.booleans()) else []
    for _ in range(draw(hs.integers(0, 14))):
        if not clean and draw(hs.integers(0, 5)) == 0:
            lines.append(draw(hs.sampled_from(["# comment", "garbage", "STATUS: x", "STAT", "", "STAT:"])))
            continue
        ts = draw(hs.sampled_from(_GOOD_TS if clean else _GOOD_TS + _BAD_TS))
        sub = draw(hs.sampled_from(["DEMO", "VALIDATION"] if clean else ["DEMO", "VALIDATION", ""]))
        step, state = draw(hs.sampled_from(_STEPS)), draw(hs.sampled_from(_STATES))
        params = draw(hs.sampled_from(["", ":", ":a=1,b=x^y", ":k=v:w"] + ([] if clean else [":\r"])))
        # Non-binding records are COMM lines now; older files hold them as STAT lines.
        kind = "COMM" if state in ("Blocked", "Unblocked", "Retry", "Cancelled") and draw(hs.booleans()) else "STAT"
        lines.append(f"{kind}:{ts}:W:{sub}:{step}:{state}{params}")
        if clean and draw(hs.integers(0, 6)) == 0:
            lines.append("# a comment")
        if draw(hs.integers(0, 5)) == 0:  # datasm's own shapes, a closed torn line
            lines.append(draw(hs.sampled_from([
                f"STAT:{ts}:DATASM:Ready:", f"STAT:{ts}:DATASM:PUBLICATION:Blocked:",
                f"STAT:{ts}:PUBLICATION:{step}:Pass:version=v1", f"STAT:{ts}:DATASM:V:A:{step}:Fail:",
                f"STAT:{ts}:POSTPROCESS:{step}:Pass", f"COMM:{ts}:POSTPROCESS:{step}:NCO:Fail",
                f"STAT:{ts}:W:{sub}:{step}:Pa::TORN:", f"COMM:{ts}:W:{sub}:{step}:Retry:a=%53TAT",
                f"COMM:{ts}:W:{sub}:{step}:Cancelled:b=1", "COMMENT: x", f"COMM:{ts}:W:{sub}:{step}:Retry",
            ])))  # fmt: skip
    end = "\n" if clean else draw(hs.sampled_from(["\n", "", "\nSTAT:2023"]))
    return ("\n".join(lines) + end).encode()


@settings(max_examples=600, deadline=None)
@given(status_bytes())
def test_fast_readers_match_reference(data: bytes):
    ref = parse_history(data, "f")
    h = sv.history_of(data, "f")
    assert (h.dataset_id, h.stats, h.warnings) == (ref.dataset_id, ref.stats, ref.warnings)
    pos = position_of(ref.stats)
    b = sv.fold(data, "f")
    assert (sv.to_stat(b.current) if b.current else None) == pos.last
    assert (sv.to_stat(b.engaged) if b.engaged else None) == pos.open_engagement
    assert b.blocked == pos.blocked
    assert b.dataset_id == ref.dataset_id
    assert list(b.warnings) == ref.warnings


def test_stamp_check_matches_strptime():
    from compiler.core.statusfile import parse_stamp

    for ts in ("20230503_143045_123456", "20240229_000000_000000", "20230229_000000_000000",
               "00000101_000000_000000", "20231301_000000_000000", "20230100_000000_000000",
               "20230131_235959_999999", "20230131_235960_000000", "20230131_240000_000000",
               "20230131_000000_1", "2023053_143045_1", "２0230503_143045_123456", "20230503_143045_12345x"):
        try:
            parse_stamp(ts)
            ok = True
        except ValueError:
            ok = False
        assert sv.stamp_ok(ts) == ok, ts


@settings(max_examples=300, deadline=None)
@given(hs.lists(hs.tuples(hs.sampled_from(["wall", "maxrss_mb", "w:all", "a,b", "x=y", "%", "build"]),
                          hs.text(max_size=8)), max_size=6))
def test_pick_matches_parse_params(pairs):
    from compiler.core.statusfile import escape_value, parse_params

    text = ",".join(f"{escape_value(k)}={escape_value(v)}" for k, v in pairs)  # repeats kept
    keys = ("wall", "w:all", "a,b", "maxrss_mb")
    want = {k: v for k, v in parse_params(text).items() if k in keys}
    assert sv.pick(text, keys) == want
    assert sv.param(text, "wall") == want.get("wall")


@settings(max_examples=300, deadline=None)
@given(hs.lists(hs.sampled_from(["wall", "wall=", "wall=1.5", "wall=2=3", "wall=x", "wall=inf", "wall=nan", "wallx=2",
                                 "a=wall", "maxrss_mb", "maxrss_mb=7", "maxrss_mb=1e3", "", "w%61ll=1", "wa^ll=3",
                                 "exit=0"]), max_size=6))
def test_outcome_params_read_as_pick_does(parts):
    text = ",".join(parts)
    want = sv.pick(text, ("wall", "maxrss_mb"))
    assert sv._ends(text) == (sv._float(want.get("wall")), sv._float(want.get("maxrss_mb")))
