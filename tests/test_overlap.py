"""Overlapping runs share the work (issue 14): each runs what no live run holds, none
waits for another, and a run killed with -9 frees what it held at the next cycle.
Real padocc, real Snakemake, real processes; every wait is on a marker file."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from conftest import REPO, final_states, padocc

SOAKWF = REPO / "bench" / "soakwf"
sys.path.insert(0, str(REPO / "bench"))
from soak import kill_tree  # noqa: E402  (kill -9 a run, its Snakemake and its jobs)


def soak_copy(tmp_path: Path) -> Path:
    wf = tmp_path / "wf"
    shutil.copytree(SOAKWF, wf)
    (wf / "control").mkdir()
    return wf


def until(what, why: str, limit: float = 300) -> None:
    """Wait for a condition (the limit only ends a hung test: not a timing assertion)."""
    end = time.monotonic() + limit
    while not what():
        assert time.monotonic() < end, why
        time.sleep(0.05)


def ledger(wf: Path, ds: str) -> list[tuple[str, str]]:
    p = wf / "ledger" / f"{ds}.log"
    return [tuple(ln.split()[:2]) for ln in p.read_text().splitlines()] if p.exists() else []


def run_popen(wf: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "compiler", "run", str(wf), *extra]
    return subprocess.Popen(
        cmd, stdout=out.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def check_ledgers(wf: Path, ids: list[str]) -> None:
    """Every step of every dataset ended exactly once, and never two ran at once (the
    step itself writes "overlap" when it finds another live start)."""
    for ds in ids:
        lines = ledger(wf, ds)
        assert [s for what, s in lines if what == "end"] == ["Fetch", "Build"], (ds, lines)
        assert "overlap" not in {what for what, _ in lines}, (ds, lines)


def test_two_runs_started_together_never_fail(tmp_path: Path):
    """Twenty rounds of two `padocc run` started at once, each round an hour later on
    the workflow's clock (--now) with new datasets and a new gate chunk: no run fails,
    every dataset ends, no step runs twice and no chunk is made twice."""
    wf = soak_copy(tmp_path)
    ids = []
    for i in range(20):
        new = [f"R{i}a", f"R{i}b"]
        ids += new
        (wf / "groups" / f"r{i}.txt").write_text("\n".join(new) + "\n")
        outs = [tmp_path / f"r{i}-{k}.out" for k in (1, 2)]
        now = f"2030-01-01T{i + 1:02d}:00:00Z"
        runs = [run_popen(wf, o, "--now", now) for o in outs]
        for p, o in zip(runs, outs, strict=True):
            assert p.wait(timeout=600) == 0, (i, o.read_text())
            assert "snakemake exited" not in o.read_text()
        assert all(final_states(wf)[d] == "SOAK:Pass" for d in new), (i, final_states(wf))
    check_ledgers(wf, ids)
    chunks = (wf / "ledger" / "gates.log").read_text().split("\n")
    made = Counter(ln.split()[2] for ln in chunks if ln.startswith("end "))
    assert sorted(made.values()) == [1] * 20 and "overlap" not in "".join(chunks), made


def test_a_long_step_holds_its_dataset_while_new_work_runs_and_a_kill_frees_it(tmp_path: Path):
    """A's Fetch runs long (it waits on a file the test controls). B arrives: the next
    run takes B to its end, never touches A and never waits for it. After kill -9 of
    the first run, its Snakemake and its job, the next run takes A up."""
    wf = soak_copy(tmp_path)
    (wf / "groups" / "g1.txt").write_text("A\n")
    (wf / "control" / "hold-A-Fetch").touch()
    first = run_popen(wf, tmp_path / "first.out")
    try:
        until((wf / "control" / "waiting-A-Fetch").exists, "A's Fetch never started")
        (wf / "groups" / "g2.txt").write_text("B\n")
        r = padocc("run", str(wf), timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        # B ran to its end while A's step was still held: this run never waited for A.
        assert final_states(wf)["B"] == "SOAK:Pass", r.stdout + r.stderr
        assert "live runs hold 1 dataset and 0 gate chunks: left to them (run " in r.stdout
        assert "(1 held by a live run, 1 pending)" in r.stdout, r.stdout
        assert ledger(wf, "A") == [("start", "Fetch")]
        assert not (wf / "control" / "release-A-Fetch").exists() and first.poll() is None
    finally:
        kill_tree(first)
    (wf / "control" / "hold-A-Fetch").unlink()
    step_pid = int((wf / "control" / "waiting-A-Fetch").read_text())
    until(lambda: not Path(f"/proc/{step_pid}").exists(), "the killed job's step lives on")
    r = padocc("run", str(wf), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "freed the lease of a run that is gone: run " in r.stdout, r.stdout
    assert final_states(wf) == {"A": "SOAK:Pass", "B": "SOAK:Pass"}
    # A's interrupted Fetch ran once more, and counted once: no step ended twice.
    assert ledger(wf, "A") == [("start", "Fetch"), ("start", "Fetch"), ("end", "Fetch"),
                               ("start", "Build"), ("end", "Build")]  # fmt: skip
    check_ledgers(wf, ["A", "B"])
    assert not [p for p in (wf / ".padocc" / "runs").iterdir()], "a lease left behind"


def test_overlapping_gate_requests_both_succeed_and_make_nothing_twice(tmp_path: Path):
    """Two `gate make` requests started together on overlapping ranges, six rounds (a
    new day each): both succeed, every chunk is made once."""
    from test_gate_requests import gate_popen, log_lines, workflow

    wf = workflow(tmp_path)
    for day in range(1, 7):
        lo, mid, hi, end = (f"2010-06-0{day}T0{h}:00:00Z" for h in (0, 1, 3, 4))
        outs = [tmp_path / f"{day}-{k}.out" for k in (1, 2)]
        reqs = [
            gate_popen(wf, "make", "a", lo, hi, out=outs[0]),
            gate_popen(wf, "make", "a", mid, end, out=outs[1]),
        ]
        for p, o in zip(reqs, outs, strict=True):
            assert p.wait(timeout=600) == 0, (day, o.read_text())
            assert o.read_text().splitlines()[-1] == "open", (day, o.read_text())
        starts = Counter(lo for what, _, lo, _ in log_lines(wf) if what == "start")
        assert starts == {f"2010-06-0{d}T0{h}:00:00Z": 1 for d in range(1, day + 1)
                          for h in range(4)}, (day, starts)  # fmt: skip


def test_a_request_during_a_live_run_waits_for_the_chunk_it_needs(tmp_path: Path):
    """A cycle's run is making a chunk (held running by a file): a request for that
    chunk waits for it, makes nothing, and answers open once the run has made it."""
    from test_gate_requests import gate_popen, log_lines, workflow

    wf = workflow(tmp_path)
    (wf / "hold").touch()
    run = run_popen(wf, tmp_path / "run.out")
    req = None
    try:
        until(lambda: log_lines(wf), "the run never started a chunk")
        _, _, lo, hi = log_lines(wf)[0]
        req = gate_popen(wf, "make", "a", lo, hi, "--timeout", "600", out=tmp_path / "req.out")
        until(
            lambda: "being made by a live run" in (tmp_path / "req.out").read_text(),
            "the request did not wait for the run's chunk: " + (tmp_path / "req.out").read_text(),
        )
        (wf / "release").touch()
        assert req.wait(timeout=600) == 0, (tmp_path / "req.out").read_text()
        assert run.wait(timeout=600) == 0, (tmp_path / "run.out").read_text()
    finally:
        (wf / "release").touch()
        for p in (run, req):
            if p is not None and p.poll() is None:
                p.kill()
    out = (tmp_path / "req.out").read_text().splitlines()
    assert out[0].startswith("waiting for 1 chunk being made by a live run (run "), out
    assert out[-2:] == ["made 0 chunks of a", "open"], out
    starts = Counter(lo for what, _, lo, _ in log_lines(wf) if what == "start")
    assert sorted(starts.values()) == [1, 1, 1, 1], starts


def test_a_request_waits_for_a_precondition_chunk_a_live_run_is_making(tmp_path: Path):
    """`gate make a` is making a's first chunk (held running by a file). A request for
    b, whose chunks need a's, waits for that chunk (not for the run), makes the rest of
    a and then b, and makes nothing twice."""
    from test_gate_requests import gate_popen, log_lines
    from test_gate_why import A0, A1, A2
    from test_gate_why import workflow as two_gates

    wf = two_gates(tmp_path)
    (wf / "hold").touch()
    first = gate_popen(wf, "make", "a", A0, A1, out=tmp_path / "first.out")
    req = None
    try:
        until(lambda: log_lines(wf), "a's chunk never started")
        req = gate_popen(wf, "make", "b", A0, A2, "--timeout", "600", out=tmp_path / "req.out")
        until(
            lambda: "being made by a live run" in (tmp_path / "req.out").read_text(),
            "the request did not wait for a's chunk: " + (tmp_path / "req.out").read_text(),
        )
        (wf / "release").touch()
        assert first.wait(timeout=600) == 0, (tmp_path / "first.out").read_text()
        assert req.wait(timeout=600) == 0, (tmp_path / "req.out").read_text()
    finally:
        (wf / "release").touch()
        for p in (first, req):
            if p is not None and p.poll() is None:
                p.kill()
    out = (tmp_path / "req.out").read_text().splitlines()
    assert out[0].startswith("waiting for 1 chunk being made by a live run (run "), out
    assert out[-2:] == ["made 1 chunk of b", "open"], out
    starts = Counter((gate, lo) for what, gate, lo, _ in log_lines(wf) if what == "start")
    assert starts == {("a", A0): 1, ("a", A1): 1, ("b", A0): 1}, starts
