"""Overlapping runs on REAL SLURM (issue 14): a run that ends while another run's job
waits in the queue must not take that job's log directory with it. The SLURM plugin,
as its Snakemake shuts down, removes every empty directory under its log directory;
shared by all runs, that was the directory the queued job was to write its log in,
and the job failed as it started ("Could not open stdout file"). Found by the soak on
SLURM. Needs a running cluster.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import compile_wf
from test_slurm import RUN_TIMEOUT, need_slurm, queue_of, step_stats, write_workflow
from test_soak import soak_keeps_every_invariant

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

HOLD_A = (
    "  Step:\n"
    '    command: "test {dataset} != TWO.a || while ! test -e {workflow_dir}/go; do sleep 0.2; done"\n'
    "    resources: {mem: 100M, runtime: 5m, slurm_partition: main, slurm_account: padocc}\n"
)


def scontrol_node(state: str) -> None:
    node = subprocess.run(["sinfo", "-h", "-o", "%n"], capture_output=True, text=True,
                          check=True, timeout=30).stdout.split()[0]  # fmt: skip
    subprocess.run(["scontrol", "update", f"nodename={node}", f"state={state}",
                    *(["reason=padocc-test"] if state == "drain" else [])],
                   check=True, timeout=30)  # fmt: skip


def start_run(wf: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "compiler", "run", str(wf), "--profile", "slurm"],
                            stdout=log.open("w"), stderr=subprocess.STDOUT)  # fmt: skip


def test_a_run_ending_keeps_the_log_directory_of_a_queued_job_of_another(tmp_path: Path):
    need_slurm()
    wf = tmp_path / "two"
    write_workflow(wf, "TWO", HOLD_A, ids=("a",))
    compile_wf(wf)
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    a = start_run(wf, a_log)
    b = None
    try:
        deadline = time.monotonic() + RUN_TIMEOUT  # A's job runs, held (a busy queue: wait)
        while not (wf / "status" / "TWO.a.status").exists():
            assert time.monotonic() < deadline and a.poll() is None, a_log.read_text()
            time.sleep(0.5)
        (wf / "ids.txt").write_text("TWO.a\nTWO.b\n")
        scontrol_node("drain")  # what starts now waits in the queue
        try:
            b = start_run(wf, b_log)  # B: TWO.b (A holds TWO.a)
            deadline = time.monotonic() + RUN_TIMEOUT
            while not any(st == "PENDING" for st, _ in queue_of(wf).values()):
                assert time.monotonic() < deadline and b.poll() is None, b_log.read_text()
                time.sleep(0.5)
            (wf / "go").touch()  # A's job ends; A's Snakemake shuts down and cleans up
            assert a.wait(timeout=RUN_TIMEOUT) == 0, a_log.read_text()
        finally:
            scontrol_node("resume")
        assert b.wait(timeout=RUN_TIMEOUT) == 0, b_log.read_text()
    finally:
        (wf / "go").touch()
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.kill()
        left = list(queue_of(wf))
        if left:
            subprocess.run(["scancel", *left], check=False, timeout=60)
    assert [s.state for s in step_stats(wf, "TWO.b")] == ["Engaged", "Pass"]
    assert not (wf / ".snakemake" / "slurm_logs").exists()


def test_soak_on_slurm_keeps_every_invariant():
    """The soak's short version through REAL sbatch: one simulated hour of
    overlapping cycles, gate requests, hand commands and kills (for memory, for CPU
    time, -9), then cycles until nothing is pending; every invariant holds."""
    need_slurm()
    played = soak_keeps_every_invariant("--hours", "1", "--seed", "5", "--profile", "slurm",
                                        limit=1500)  # fmt: skip
    assert played["cycles"] >= 1 and played["groups"] == 1, played
