"""Killed SLURM jobs are outcomes (issue 14), through REAL sbatch: a job SLURM ends
for its time limit, or an admin's scancel, is recorded with SLURM's state as the
cause, counts as an attempt, and the next attempt grows only what the cause says.
A run's deadline cancels the SLURM jobs it submitted. Needs a running cluster.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import compile_wf, padocc
from test_slurm import (
    RUN_TIMEOUT,
    mem_mb,
    need_slurm,
    queue_of,
    sacct,
    snakemake,
    start_snakemake,
    step_stats,
    stop,
    write_workflow,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# Sleeps through attempt 1 (or until the flag file exists); passes on attempt 2.
SLEEP_ONCE = (
    "  Sleep:\n"
    '    command: "echo {attempt} >> tries.log; test {attempt} -ge 2 || test -e {workflow_dir}/go || sleep 300"\n'
    "    resources: {mem: 100M, runtime: 1m, slurm_partition: main, slurm_account: padocc}\n"
    "    retries: 1\n"
    "    retry_growth: {mem_factor: 2, mem_max: 1G, runtime_factor: 2, runtime_max: 10m}\n"
)


def outcomes(wf: Path, ds: str) -> list[tuple[str, str | None, str | None]]:
    return [(s.state, s.params.get("attempt"), s.params.get("cause")) for s in step_stats(wf, ds)]


def wait_engaged(wf: Path, ds: str, proc: subprocess.Popen, log: Path) -> str:
    """The SLURM job id of the step once it runs (polling, no fixed sleep)."""
    status = wf / "status" / f"{ds}.status"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if status.exists():
            eng = [s for s in step_stats(wf, ds) if s.state == "Engaged"]
            if eng and eng[-1].params.get("slurm_jobid"):
                return eng[-1].params["slurm_jobid"]
        time.sleep(0.5)
    raise AssertionError(f"step never engaged: {log.read_text()[-3000:]}")


def test_time_limit_is_a_timeout_and_grows_only_time(tmp_path: Path):
    """SLURM ends attempt 1 at its 1-minute limit (TIMEOUT). The resubmitted job asks
    for twice the time and the same memory, and records attempt 1 with cause=TIMEOUT
    (sacct's state) before it runs attempt 2."""
    need_slurm()
    wf = tmp_path / "slow"
    write_workflow(wf, "SLOW", SLEEP_ONCE)
    ds = "SLOW.one"
    compile_wf(wf)
    r = snakemake(wf, "slurm", timeout=RUN_TIMEOUT)
    assert outcomes(wf, ds) == [
        ("Engaged", "1", None),
        ("Retry", "1", "TIMEOUT"),
        ("Engaged", "2", None),
        ("Pass", "2", None),
    ], r.stdout[-3000:] + r.stderr[-3000:]
    jobs = [s.params["slurm_jobid"] for s in step_stats(wf, ds)]
    a, b = jobs[0], jobs[2]
    assert jobs == [a, a, b, b]
    rows = sacct([a, b], "State,ReqMem,Timelimit", re.compile(r"TIMEOUT|COMPLETED"))
    got = {j: (rows[j][0], mem_mb(rows[j][1]), rows[j][2]) for j in (a, b)}
    assert got == {a: ("TIMEOUT", 100, "00:01:00"), b: ("COMPLETED", 100, "00:02:00")}


def test_scancel_seen_by_the_next_cycle_grows_nothing(tmp_path: Path):
    """An admin scancels a running job while its Snakemake is gone (killed with -9):
    nobody saw the job end. The next cycle's compile finds the open Engaged, asks
    sacct (CANCELLED), records attempt 1 so, and runs attempt 2 with the same memory
    and time limit."""
    need_slurm()
    wf = tmp_path / "admin"
    write_workflow(wf, "ADMIN", SLEEP_ONCE.replace("runtime: 1m", "runtime: 5m"))
    ds = "ADMIN.one"
    compile_wf(wf)
    log_path = tmp_path / "run1.log"
    log = log_path.open("w")
    proc = start_snakemake(wf, log)
    try:
        jobid = wait_engaged(wf, ds, proc, log_path)
    finally:
        stop(proc, log)  # SIGKILL to Snakemake's group: its SLURM job runs on
    subprocess.run(["scancel", jobid], check=True, timeout=60)
    sacct([jobid], "State", re.compile(r"CANCELLED.*"))
    deadline = time.monotonic() + 60  # until its processes are gone (no longer COMPLETING)
    while jobid in queue_of(wf) and time.monotonic() < deadline:
        time.sleep(0.5)
    r = padocc("run", str(wf), "--profile", "slurm", timeout=RUN_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 killed: CANCELLED" in r.stdout
    assert outcomes(wf, ds) == [
        ("Engaged", "1", None),
        ("Retry", "1", "CANCELLED"),
        ("Engaged", "2", None),
        ("Pass", "2", None),
    ]
    assert step_stats(wf, ds)[1].params["by"] == "padocc compile"
    b = step_stats(wf, ds)[2].params["slurm_jobid"]
    rows = sacct([jobid, b], "ReqMem,Timelimit")
    assert {j: (mem_mb(rows[j][0]), rows[j][1]) for j in (jobid, b)} == {
        jobid: (100, "00:05:00"),
        b: (100, "00:05:00"),
    }


def test_run_deadline_cancels_its_slurm_jobs(tmp_path: Path):
    """`padocc run --timeout` on SLURM: at the deadline its jobs, running or queued,
    are scancelled (before, they stayed after the run returned), and the interrupted
    step is recorded for the next cycle."""
    need_slurm()
    wf = tmp_path / "deadline"
    write_workflow(wf, "DEADLINE", SLEEP_ONCE.replace("runtime: 1m", "runtime: 5m"), ("a", "b"))
    r = padocc("run", str(wf), "--profile", "slurm", "--timeout", "30", timeout=RUN_TIMEOUT)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "snakemake stopped at the 30 s deadline" in r.stderr
    m = re.search(r"SLURM jobs ([0-9 ]+) cancelled", r.stderr)
    assert m, r.stderr
    ids = m[1].split()
    deadline = time.monotonic() + 60
    while queue_of(wf) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert queue_of(wf) == {}, "jobs of the run left in the queue"
    rows = sacct(ids, "State", re.compile(r"CANCELLED.*"))
    assert all(rows[j][0].startswith("CANCELLED") for j in ids), rows
    engaged = [
        ds for ds in ("DEADLINE.a", "DEADLINE.b") if (wf / "status" / f"{ds}.status").exists()
    ]
    for ds in engaged:
        assert [(s.state, s.params.get("reason")) for s in step_stats(wf, ds)][-1] == (
            "Cancelled",
            "deadline",
        )
    (wf / "go").touch()
    r = padocc("run", str(wf), "--profile", "slurm", timeout=RUN_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    for ds in ("DEADLINE.a", "DEADLINE.b"):
        assert outcomes(wf, ds)[-1] == ("Pass", "1", None)


def test_sigterm_to_padocc_run_cancels_its_slurm_jobs(tmp_path: Path):
    """cron's `timeout` sends SIGTERM to `padocc run` while its jobs run on SLURM:
    padocc stops its Snakemake, scancels the run's jobs, records the interrupted step
    (Cancelled, reason=stopped) and exits 1. Before, padocc died and its Snakemake ran
    on, still submitting. The next cycle runs the step as the same attempt."""
    need_slurm()
    wf = tmp_path / "term"
    write_workflow(wf, "TERM", SLEEP_ONCE.replace("runtime: 1m", "runtime: 5m"), ("a",))
    log = tmp_path / "run.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "compiler", "run", str(wf), "--profile", "slurm"],
        stdout=log.open("w"), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        job = wait_engaged(wf, "TERM.a", proc, log)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    m = re.search(r"^padocc: SIGTERM received: Snakemake stopped, SLURM jobs ([0-9 ]+) "
                  r"cancelled, interrupted steps of 1 dataset recorded$", err, re.M)  # fmt: skip
    assert m and job in m[1].split(), err
    assert err.splitlines()[-1] == "stopped by SIGTERM", err
    deadline = time.monotonic() + 60
    while queue_of(wf) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert queue_of(wf) == {}, "jobs of the run left in the queue"
    assert [(s.state, s.params.get("reason")) for s in step_stats(wf, "TERM.a")][-1] == (
        "Cancelled",
        "stopped",
    )
    (wf / "go").touch()
    r = padocc("run", str(wf), "--profile", "slurm", timeout=RUN_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert outcomes(wf, "TERM.a")[-1] == ("Pass", "1", None)
