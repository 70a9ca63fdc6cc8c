"""Gate requests beside a live run, parallelOK, the coverage view without a range,
and precondition hooks that fail (issue 4 audit). Real Snakemake runs."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from conftest import fresh_copy, padocc, snakemake

# A chunk command that logs its start and end (under a lock, so the log shows how many
# chunks ran at once), fails if the workflow has a 'fail' file, and waits for a
# 'release' file if it has a 'hold' file.
MAKE = """\
import fcntl, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
def log(what):
    with open(os.path.join(here, "runs.log"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(what + " " + " ".join(sys.argv[1:]) + "\\n")
log("start")
if os.path.exists(os.path.join(here, "fail")):
    sys.exit(1)
time.sleep(0.5)
while os.path.exists(os.path.join(here, "hold")) and not os.path.exists(os.path.join(here, "release")):
    time.sleep(0.1)
log("end")
"""

GATES = """\
gates:
  a:
    axis: time
    maxrange: 1h
    parallelOK: 1
    want: {low: "2010-05-01T00:00:00Z", high: "2010-05-01T04:00:00Z"}
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
"""


def workflow(tmp_path: Path, gates: str = GATES) -> Path:
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "workflow.yaml").write_text("name: REQ\ngates: gates.yaml\n")
    (wf / "gates.yaml").write_text(gates)
    (wf / "make.py").write_text(MAKE)
    return wf


def log_lines(wf: Path) -> list[list[str]]:
    p = wf / "runs.log"
    return [ln.split() for ln in p.read_text().splitlines()] if p.exists() else []


def until(what, why: str, limit: float = 180) -> None:
    """Wait for a condition (not a timing assertion: the limit only ends a hung test)."""
    end = time.monotonic() + limit
    while not what():
        assert time.monotonic() < end, why
        time.sleep(0.2)


def gate_popen(wf: Path, *args: str, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "compiler", "gate", *args, "-C", str(wf)]
    return subprocess.Popen(cmd, stdout=out.open("w"), stderr=subprocess.STDOUT, text=True)


def test_parallelOK_limits_the_chunks_running_at_once(tmp_path: Path):
    wf = workflow(tmp_path)
    r = padocc("compile", str(wf))
    assert r.returncode == 0, r.stderr
    snakemake(wf)
    running = peak = 0
    for what, *_ in log_lines(wf):
        running += 1 if what == "start" else -1
        peak = max(peak, running)
    assert Counter(w for w, *_ in log_lines(wf)) == {"start": 4, "end": 4}
    assert peak == 1


def test_request_beside_a_live_run_waits_and_makes_nothing_twice(tmp_path: Path):
    """The June 2010 problem: a second, overlapping request while the first one's
    chunks are running or queued. It waits for the chunk they share, then makes only
    the rest."""
    wf = workflow(tmp_path)
    (wf / "hold").touch()
    lo, hi = "2010-05-01T00:00:00Z", "2010-05-01T02:00:00Z"
    first = gate_popen(wf, "make", "a", lo, hi, out=tmp_path / "first.out")
    second = None
    try:
        until(lambda: log_lines(wf), "the first chunk never started")
        # The ticket is being processed: check says so, the coverage view shows it.
        r = padocc("gate", "check", "a", lo, hi, "-C", str(wf))
        assert (r.returncode, r.stdout) == (3, "being processed\n")
        r = padocc("gate", "coverage", "a", lo, "2010-05-01T03:00:00Z", "-C", str(wf))
        assert [ln.split()[2] for ln in r.stdout.splitlines()].count("running") == 1, r.stdout
        second = gate_popen(
            wf, "make", "a", "2010-05-01T01:00:00Z", "2010-05-01T03:00:00Z",
            out=tmp_path / "second.out",
        )  # fmt: skip
        until(
            lambda: "being made by a live run" in (tmp_path / "second.out").read_text(),
            "the second request did not wait for the live run's chunk",
        )
        (wf / "release").touch()
        assert first.wait(timeout=300) == 0, (tmp_path / "first.out").read_text()
        assert second.wait(timeout=300) == 0, (tmp_path / "second.out").read_text()
    finally:
        (wf / "release").touch()  # never leave a chunk (and its Snakemake) waiting
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
    out = (tmp_path / "second.out").read_text().splitlines()
    assert out[-2:] == ["made 1 chunk of a", "open"], out
    starts = Counter(lo for what, _, lo, _ in log_lines(wf) if what == "start")
    assert starts == {
        "2010-05-01T00:00:00Z": 1,
        "2010-05-01T01:00:00Z": 1,
        "2010-05-01T02:00:00Z": 1,
    }


def test_a_chunk_failed_max_failures_times_waits_for_a_remake(tmp_path: Path):
    wf = workflow(tmp_path, GATES.replace("    parallelOK: 1\n", "    max_failures: 1\n"))
    (wf / "fail").touch()
    lo, hi = "2010-05-01T00:00:00Z", "2010-05-01T01:00:00Z"
    r = padocc("gate", "make", "a", lo, hi, "-C", str(wf))
    assert r.returncode == 5, r.stdout + r.stderr
    for action in ("coverage", "gaps"):
        r = padocc("gate", action, "a", lo, hi, "-C", str(wf))
        assert r.stdout == f"{lo} {hi} failed\n"
    (wf / "fail").unlink()
    # Not made again by make (nor by a cycle): it waits for a remake.
    r = padocc("gate", "make", "a", lo, hi, "-C", str(wf))
    assert (r.returncode, r.stdout.splitlines()) == (1, [
        "waiting: a 20100501T000000Z__20100501T010000Z: a 20100501T000000Z__20100501T010000Z failed 1 time",
        "made 0 chunks of a",
        "closed",
    ])  # fmt: skip
    r = padocc("gate", "remake", "a", lo, hi, "-C", str(wf))
    assert (r.returncode, r.stdout.splitlines()) == (0, ["made 1 chunk of a", "open"])
    assert [w for w, *_ in log_lines(wf)] == ["start", "start", "end"]


def test_coverage_without_a_range_shows_the_wanted_range(tmp_path: Path):
    hmi = fresh_copy("hmi", tmp_path / "hmi")
    assert padocc("compile", str(hmi), "--now", "2026-01-01T00:00:00Z").returncode == 0
    r = padocc("gate", "coverage", "hmi.lev1", "-C", str(hmi), "--now", "2026-01-01T00:00:00Z")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "2010-05-01T00:00:00Z 2010-05-01T12:00:00Z missing",
        "2010-05-01T12:00:00Z 2010-05-01T18:00:00Z gap",
        "2010-05-01T18:00:00Z 2010-05-03T00:00:00Z missing",
    ]


HOOKED = """\
gates:
  fsn:
    axis: serial
    maxrange: 100
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
  lev1:
    axis: serial
    maxrange: 50
    want: {low: 1000, high: 1100}
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
    preconditions:
      - gate: fsn
        map: {hook: "hooks.py:odd"}
"""


def test_a_failing_precondition_hook_is_a_one_line_error(tmp_path: Path):
    wf = workflow(tmp_path, HOOKED)
    hooks = wf / "hooks.py"
    cases = [
        ("raise RuntimeError('no such run')", "RuntimeError: no such run"),
        ("return high, low", "returned (1050, 1000): low is after high"),
        ("return 'x', None", "returned ('x', None): not two numbers"),
    ]
    for body, why in cases:
        hooks.write_text(f"def odd(low, high):\n    {body}\n")
        r = padocc("compile", "wf", cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert r.stderr.splitlines() == [
            f"wf/gates.yaml:12:15: error: hook 'hooks.py:odd' of the precondition on 'fsn' "
            f"failed for [1000, 1050): {why}"
        ]
        r = padocc("gate", "make", "lev1", "1000", "1100", "-C", str(wf))
        assert r.returncode == 2 and "hook 'hooks.py:odd'" in r.stderr
    assert not (wf / "runs.log").exists()


def test_a_later_build_reuses_the_upstream_chunks_an_earlier_one_made(tmp_path: Path):
    """Each build's gate rules name the build in their command, so Snakemake's "code
    changed" trigger would remake every upstream chunk a new build needs; the workflow
    profile sets `rerun-triggers: [mtime]`: only a newer input remakes a chunk."""
    gates = GATES.replace('parallelOK: 1\n', 'parallelOK: 2\n') + """\
  b:
    axis: time
    maxrange: 2h
    want: {low: "2010-05-01T00:00:00Z", high: "2010-05-01T00:00:00Z"}
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
    preconditions:
      - gate: a
"""
    wf = workflow(tmp_path, gates)
    span = ("2010-05-01T00:00:00Z", "2010-05-01T02:00:00Z")
    r = padocc("gate", "make", "a", *span, "-C", str(wf), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = padocc("gate", "make", "b", *span, "-C", str(wf), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    starts = Counter(tuple(ln[1:]) for ln in log_lines(wf) if ln[0] == "start")
    assert starts == {
        ("a", "2010-05-01T00:00:00Z", "2010-05-01T01:00:00Z"): 1,
        ("a", "2010-05-01T01:00:00Z", "2010-05-01T02:00:00Z"): 1,
        ("b", "2010-05-01T00:00:00Z", "2010-05-01T02:00:00Z"): 1,
    }
    profile = (wf / "profiles" / "default" / "config.yaml").read_text()
    assert "rerun-triggers: [mtime]" in profile
