"""Killed jobs are outcomes (issue 14): a step whose job dies without writing its
outcome (kill -9 of the wrapper, a command killed by a signal) is recorded with its
cause, counts as an attempt, grows its resources as the cause says, and ends as
`Fail` after its last allowed attempt. Real padocc, real Snakemake, local executor.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PROFILES, padocc, snakemake
from test_reliability import pids_matching

from compiler.core.statusfile import Stat, read_history


def write_workflow(wf: Path, name: str, command: str, extra: str = "", ids=("one",)) -> None:
    """NAME -> Step -> Pass/Fail, one dataset NAME.one (or NAME.<id> of each of ids)."""
    wf.mkdir(parents=True)
    (wf / "ids.txt").write_text("".join(f"{name}.{i}\n" for i in ids))
    (wf / "workflow.yaml").write_text(
        f"name: {name}\n"
        "datasets:\n  lists: [ids.txt]\n"
        'routing_key: "all"\n'
        "graph: transitions.yaml\n"
        "defaults:\n  resources: {runtime: 10m, mem: 100M, cpus_per_task: 1}\n  retries: 1\n"
        f"steps:\n  Step:\n    command: {command!r}\n"
        "    retry_growth: {mem_factor: 2, mem_max: 1G, runtime_factor: 2, runtime_max: 1h}\n"
        f"{extra}"
    )
    (wf / "transitions.yaml").write_text(
        f"{name}:Ready:\n  default:\n    - Step:Ready\n"
        "Step:Ready:\n  default:\n    - Step:Engaged\n"
        "Step:Pass:\n  default:\n    - Pass\n"
        "Step:Fail:\n  default:\n    - Fail\n"
    )


def lines(wf: Path, ds: str) -> list[Stat]:
    return [s for s in read_history(wf / "status" / f"{ds}.status").stats if s.step == "Step"]


def wait_for(what, timeout: float = 120, proc: subprocess.Popen | None = None):
    """Poll until what() is truthy (never a fixed sleep): its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = what()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"run ended first ({proc.returncode})")
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def job_resources(text: str) -> list[tuple[str, str]]:
    """(mem_mb, runtime) of each job Snakemake started, from its log."""
    out = []
    for line in re.findall(r"resources: (.*)", text):
        res = dict(kv.split("=", 1) for kv in line.split(", ") if "=" in kv)
        if "mem_mb" in res:
            out.append((res["mem_mb"], res["runtime"]))
    return out


def start_run(wf: Path, log: Path) -> subprocess.Popen:
    """Snakemake as a person runs it (not --quiet: its job log shows the resources)."""
    return subprocess.Popen(
        ["timeout", "-k", "10", "300", sys.executable, "-m", "snakemake", "--profile",
         str(PROFILES / "local"), "-s", str(wf / "Snakefile"), "-d", str(wf)],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def kill_wrapper_of_attempt(wf: Path, ds: str, attempt: int, proc: subprocess.Popen) -> int:
    """Wait for the command of `attempt` to start (it writes a marker), then kill -9 its
    wrapper, named by the open Engaged line. The wrapper's pid."""
    wait_for((wf / "work" / ds / f"started-{attempt}").exists, proc=proc)
    eng = [s for s in lines(wf, ds) if s.state == "Engaged"][-1]
    assert eng.params["attempt"] == str(attempt)
    pid = int(eng.params["pid"])
    os.kill(pid, signal.SIGKILL)
    return pid


SLEEPER = "touch started-{attempt}; test -e {workflow_dir}/go || sleep 300"


def test_killed_wrapper_is_an_attempt_and_the_last_one_a_fail(tmp_path: Path):
    """kill -9 of the job wrapper (the OOM killer's signal, or an admin's): the next job
    of the same run records attempt 1 as a Retry with cause=SIGKILL and runs attempt
    2; that one killed too, the next cycle records the step's Fail with the cause, and
    the dataset ends Fail. Before, each kill left an open Engaged that was run again,
    as attempt 1, in every cycle."""
    wf = tmp_path / "killy"
    write_workflow(wf, "KILLY", SLEEPER)
    ds = "KILLY.one"
    assert padocc("compile", str(wf)).returncode == 0
    log = tmp_path / "run.log"
    proc = start_run(wf, log)
    try:
        kill_wrapper_of_attempt(wf, ds, 1, proc)
        kill_wrapper_of_attempt(wf, ds, 2, proc)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert rc != 0
    got = [(s.state, s.params.get("attempt"), s.params.get("cause")) for s in lines(wf, ds)]
    assert got == [("Engaged", "1", None), ("Retry", "1", "SIGKILL"), ("Engaged", "2", None)]
    retry = lines(wf, ds)[1]
    assert retry.params["by"] == "padocc job"
    # Memory grew for attempt 2 (SIGKILL is the OOM killer's signal), the time did not.
    text = log.read_text()
    res = job_resources(text)
    assert res[:2] == [("100", "10"), ("200", "10")], text[-3000:]

    # The next cycle: the compile records the killed attempt 2, the last allowed one,
    # as the step's Fail with its cause; routing ends the dataset in Fail.
    r = padocc("run", str(wf))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 killed: SIGKILL" in r.stdout
    got = [(s.state, s.params.get("attempt"), s.params.get("cause")) for s in lines(wf, ds)]
    assert got[3:] == [("Fail", "2", "SIGKILL")]
    assert lines(wf, ds)[3].params["by"] == "padocc compile"
    stats = read_history(wf / "status" / f"{ds}.status").stats
    assert (stats[-1].step, stats[-1].state) == ("KILLY", "Fail")
    assert sorted(p.name for p in (wf / "work" / ds).glob("started-*")) == [
        "started-1",
        "started-2",
    ]
    # Nothing left to do: no third attempt, in this cycle or the next.
    r = padocc("run", str(wf))
    assert "nothing to run" in r.stdout, r.stdout


def test_a_command_killed_for_memory_grows_memory_only(tmp_path: Path):
    """A command that dies of SIGKILL (exit 137: what the OOM killer leaves) is retried
    with more memory and the same time limit; the cause is in its Retry line."""
    wf = tmp_path / "oom"
    write_workflow(wf, "OOM", "if test -e once; then true; else touch once; exit 137; fi")
    ds = "OOM.one"
    assert padocc("compile", str(wf)).returncode == 0
    r = snakemake(wf)
    got = [(s.state, s.params.get("attempt"), s.params.get("cause")) for s in lines(wf, ds)]
    assert got == [
        ("Engaged", "1", None),
        ("Retry", "1", "SIGKILL"),
        ("Engaged", "2", None),
        ("Pass", "2", None),
    ]
    res = job_resources(r.stdout + r.stderr)
    assert res[:2] == [("100", "10"), ("200", "10")], (r.stdout + r.stderr)[-3000:]


def lost_with_its_run(wf: Path, name: str, log: Path) -> None:
    """NAME.one's attempt 1 started, then its whole run killed -9 (Snakemake, its jobs,
    their shells): nothing saw the step end. Returns once its wrapper is gone."""
    write_workflow(wf, name, SLEEPER)
    ds = f"{name}.one"
    assert padocc("compile", str(wf)).returncode == 0
    proc = start_run(wf, log)
    try:
        wait_for((wf / "work" / ds / "started-1").exists, proc=proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    eng = lines(wf, ds)[-1]
    wait_for(lambda: not Path(f"/proc/{eng.params['pid']}").exists())


def test_attempts_carry_across_cycles(tmp_path: Path):
    """A wrapper killed with its whole run (nothing saw it end: cause LOST) is attempt 1;
    the next cycle records it so, and runs attempt 2 (not attempt 1 again), sized from
    the status file: LOST grows nothing, so the same resources."""
    wf = tmp_path / "lost"
    ds = "LOST.one"
    lost_with_its_run(wf, "LOST", tmp_path / "run1.log")
    (wf / "go").touch()
    r = padocc("compile", str(wf))
    assert "1 killed: LOST" in r.stdout, r.stdout
    assert (wf / ".padocc" / "current" / "pending.tsv").read_text().split("\t")[-1] == "0,0\n"
    snakemake(wf)
    got = [(s.state, s.params.get("attempt"), s.params.get("cause")) for s in lines(wf, ds)]
    assert got == [
        ("Engaged", "1", None),
        ("Retry", "1", "LOST"),
        ("Engaged", "2", None),
        ("Pass", "2", None),
    ]


def test_memory_growth_carries_across_cycles(tmp_path: Path):
    """Attempt 1's job is killed (SIGKILL, the OOM killer's signal) after its Snakemake
    died, so no run retries it. The next cycle records it from the exit status its
    shell kept (cause=SIGKILL) and runs attempt 2 with twice the memory and the same
    time: sized from the status file, not from Snakemake's counter (attempt 1 again in
    a new run, first-attempt resources)."""
    wf = tmp_path / "grow"
    # exec: the sleep itself dies with its killed wrapper (a shell's child would not).
    write_workflow(wf, "GROW", SLEEPER.replace("|| sleep", "|| exec sleep"))
    ds = "GROW.one"
    assert padocc("compile", str(wf)).returncode == 0
    proc = start_run(wf, tmp_path / "run1.log")
    try:
        wait_for((wf / "work" / ds / "started-1").exists, proc=proc)
        (snake,) = [
            int(d) for d in os.listdir("/proc") if d.isdigit() and _ppid(int(d)) == proc.pid
        ]
        os.kill(snake, signal.SIGKILL)  # Snakemake first: nobody resubmits the job
        eng = lines(wf, ds)[-1]
        os.kill(int(eng.params["pid"]), signal.SIGKILL)  # then the job's wrapper
        exit_file = wf / ".padocc" / "logs" / eng.params["build"] / ds / "1.log.exit"
        wait_for(exit_file.exists)  # the rule's shell saw it end
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    (wf / "go").touch()
    r = padocc("compile", str(wf))
    assert "1 killed: SIGKILL" in r.stdout, r.stdout
    log = tmp_path / "run2.log"
    run = start_run(wf, log)
    assert run.wait(timeout=300) == 0, log.read_text()[-3000:]
    got = [(s.state, s.params.get("attempt"), s.params.get("cause")) for s in lines(wf, ds)]
    assert got == [
        ("Engaged", "1", None),
        ("Retry", "1", "SIGKILL"),
        ("Engaged", "2", None),
        ("Pass", "2", None),
    ]
    assert job_resources(log.read_text())[:1] == [("200", "10")], log.read_text()[-3000:]


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError):
        return 0


def test_a_block_and_unblock_between_attempts_keeps_the_count(tmp_path: Path):
    """Attempt 1 dies (recorded by the next compile), then a person blocks and unblocks
    the dataset: the hold is not an outcome, so the next try is attempt 2, not 1 again
    (the 48-hour soak's "attempts not carried" check found this)."""
    wf = tmp_path / "held"
    ds = "HELD.one"
    lost_with_its_run(wf, "HELD", tmp_path / "run1.log")
    assert "1 killed: LOST" in padocc("compile", str(wf)).stdout
    for action in ("block", "unblock"):
        r = padocc(action, str(wf), ds)
        assert r.returncode == 0, r.stderr
    (wf / "go").touch()
    assert padocc("compile", str(wf)).returncode == 0
    snakemake(wf)
    got = [(s.state, s.params.get("attempt")) for s in lines(wf, ds)]
    assert got == [("Engaged", "1"), ("Retry", "1"), ("Engaged", "2"), ("Pass", "2")]


# The deadline tests need a step running when the deadline comes. A loaded machine may
# take longer to start one: the deadline is then tried again, longer (never a pass
# without a step caught, and no timing asserted).
DEADLINES = (45, 90, 180)


def run_to_a_deadline(wf: Path, started) -> tuple[subprocess.CompletedProcess, int]:
    """`padocc run --timeout S` with the first S of DEADLINES at which started() holds
    afterwards: (the run, S)."""
    for s in DEADLINES:
        r = padocc("run", str(wf), "--timeout", str(s), timeout=s + 150)
        if started():
            return r, s
    raise AssertionError(f"no step had started by a {DEADLINES[-1]} s deadline")


def test_run_timeout_holds_while_snakemake_is_silent(tmp_path: Path):
    """`padocc run --timeout` runs Snakemake with --quiet: it prints nothing while a
    step runs. The deadline still ends the run (before, it was checked only when
    Snakemake printed a line); the step's wrapper and command are stopped, the step is
    recorded as interrupted (Cancelled, reason=deadline), and the next cycle takes it
    up as the same attempt."""
    wf = tmp_path / "late"
    write_workflow(wf, "LATE", SLEEPER)
    ds = "LATE.one"
    r, s = run_to_a_deadline(wf, (wf / "work" / ds / "started-1").exists)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"snakemake stopped at the {s} s deadline" in r.stderr
    assert "interrupted steps of 1 dataset recorded" in r.stderr
    got = [(s.state, s.params.get("attempt"), s.params.get("reason")) for s in lines(wf, ds)]
    assert got == [("Engaged", "1", None), ("Cancelled", "1", "deadline")]
    # The wrapper is gone (its command dies with it: test_reliability.py's
    # test_killed_wrapper_takes_its_command_with_it).
    from compiler.core.routing import engaged_process

    eng = lines(wf, ds)[0]
    wait_for(lambda: engaged_process(eng.params) is None, timeout=60)
    (wf / "go").touch()
    r = padocc("run", str(wf), timeout=200)
    assert r.returncode == 0, r.stdout + r.stderr
    got = [(s.state, s.params.get("attempt")) for s in lines(wf, ds)]
    assert got[2:] == [("Engaged", "1"), ("Pass", "1")]


def test_run_timeout_stops_what_the_step_started(tmp_path: Path):
    """The deadline kills Snakemake and its jobs with SIGKILL: a wrapper killed so never
    gets to end its command's process group, and the command's own children (here a
    `sleep` the step's shell started) ran on after the run returned, beside the rerun
    the next cycle starts. Nothing the step started outlives the deadline."""
    wf = tmp_path / "kids"
    write_workflow(wf, "KIDS", "touch started-{attempt}; sleep 300 & echo $! > child.pid; wait")
    ds = "KIDS.one"
    pid_file = wf / "work" / ds / "child.pid"
    r, s = run_to_a_deadline(wf, pid_file.exists)
    child = int(pid_file.read_text())
    try:
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"snakemake stopped at the {s} s deadline" in r.stderr
        wait_for(lambda: not Path(f"/proc/{child}").exists() or _zombie(child), timeout=60)
    finally:
        if child is not None and Path(f"/proc/{child}").exists():
            os.kill(child, signal.SIGKILL)
    got = [(s.state, s.params.get("reason")) for s in lines(wf, ds)]
    assert got == [("Engaged", None), ("Cancelled", "deadline")]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# ---------------------------------------------------------------------- cancel

BLOCK_TERM = (
    "import signal, sys, time; signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM]); "
    "open(sys.argv[1], 'w').close(); time.sleep(120)"
)


def term_pending(pid: int) -> bool:
    """Was SIGTERM sent to pid? It blocks SIGTERM, so a sent one stays pending."""
    text = Path(f"/proc/{pid}/status").read_text()
    masks = [
        int(ln.split()[1], 16) for ln in text.splitlines() if ln.startswith(("SigPnd", "ShdPnd"))
    ]
    return any(m & (1 << (signal.SIGTERM - 1)) for m in masks)


def test_cancel_never_signals_a_reused_pid(tmp_path: Path):
    """An open Engaged line whose pid now belongs to another process is never signalled
    by `padocc cancel`: not an unrelated program, and not even a padocc-looking one
    whose start time differs from the one the line recorded."""
    import socket

    wf = tmp_path / "reused"
    write_workflow(wf, "REUSED", SLEEPER, ids=("a", "b"))
    assert padocc("compile", str(wf)).returncode == 0
    procs = []
    try:
        for argv in ([], ["compiler", "run-step"]):  # unrelated; looks like a wrapper
            ready = tmp_path / f"ready-{len(procs)}"
            procs.append(subprocess.Popen([sys.executable, "-c", BLOCK_TERM, str(ready), *argv]))
            wait_for(ready.exists)
        host = socket.gethostname()
        (wf / "status").mkdir()
        for ds, p in zip(("REUSED.a", "REUSED.b"), procs, strict=True):
            (wf / "status" / f"{ds}.status").write_text(
                f"DATASETID={ds}\nSTAT:20260101_000000_000000:REUSED:REUSED:Step:Engaged:"
                f"host={host},pid={p.pid},pstart=1,attempt=1\n"
            )
        r = padocc("cancel", str(wf))
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["cancelled REUSED.a Step", "cancelled REUSED.b Step"]
        assert [term_pending(p.pid) for p in procs] == [False, False]
        assert all(p.poll() is None for p in procs)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_cancel_stops_local_jobs_that_wait_to_start(tmp_path: Path):
    """With one core, Snakemake runs one of three jobs and queues two. `padocc cancel`
    stops the running one, and the queued ones, which Snakemake starts right after,
    do nothing: no second step ever starts, and the run ends by itself."""
    wf = tmp_path / "queue"
    write_workflow(wf, "QUEUE", SLEEPER, ids=("a", "b", "c"))
    assert padocc("compile", str(wf)).returncode == 0
    log = tmp_path / "run.log"
    proc = subprocess.Popen(
        ["timeout", "-k", "10", "300", sys.executable, "-m", "snakemake", "--profile",
         str(PROFILES / "local"), "--cores", "1", "-s", str(wf / "Snakefile"), "-d", str(wf)],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        started = wait_for(lambda: list((wf / "work").glob("*/started-*")), proc=proc)
        r = padocc("cancel", str(wf))
        assert r.returncode == 0, r.stderr
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert rc != 124, log.read_text()[-3000:]
    assert list((wf / "work").glob("*/started-*")) == started
    (first,) = started
    ds = first.parent.name
    assert f"cancelled {ds} Step" in r.stdout.splitlines()
    # The next cycle runs all three.
    (wf / "go").touch()
    r = padocc("run", str(wf), timeout=200)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("QUEUE.a", "QUEUE.b", "QUEUE.c"):
        assert [s.state for s in lines(wf, name)][-2:] == ["Engaged", "Pass"]


def test_cancel_in_a_copy_never_signals_the_originals_jobs(tmp_path: Path):
    """`cp -a` of a workflow while it runs copies its open Engaged lines, which name the
    original's live job wrappers (alive, padocc's, started when the lines say).
    `padocc cancel` in the copy records the cancel in the copy and signals nothing:
    before, it stopped the original's job, which then spent an attempt."""
    wf = tmp_path / "orig"
    poll = "touch started-{attempt}; while [ ! -e {workflow_dir}/go ]; do sleep 0.1; done"
    write_workflow(wf, "COPY", poll)
    ds = "COPY.one"
    assert padocc("compile", str(wf)).returncode == 0
    proc = start_run(wf, tmp_path / "run.log")
    copy = tmp_path / "copy"
    try:
        wait_for((wf / "work" / ds / "started-1").exists, proc=proc)
        subprocess.run(["cp", "-a", str(wf), str(copy)], check=True)
        r = padocc("cancel", str(copy))
        assert (r.returncode, r.stdout) == (0, f"cancelled {ds} Step\n"), r.stderr
        (wf / "go").touch()
        assert proc.wait(timeout=120) == 0, (tmp_path / "run.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert [(s.state, s.params.get("attempt")) for s in lines(wf, ds)] == [
        ("Engaged", "1"),
        ("Pass", "1"),
    ]
    assert [s.state for s in lines(copy, ds)] == ["Engaged", "Cancelled"]


def test_cycle_snakemake_timeout_holds_while_snakemake_is_silent(tmp_path: Path):
    """A cycle's `snakemake_timeout` (Snakemake under --quiet, printing nothing while its
    steps run) ends the cycle at the deadline and records the interrupted steps; before,
    the cycle waited for the steps, however long they took."""
    from conftest import fresh_copy

    wf = fresh_copy("flock", tmp_path / "flock")
    conf = wf / "shepard.yaml"
    base = conf.read_text().replace("batch_limit: 1000", "batch_limit: 2")
    spec = wf / "workflow.yaml"
    spec.write_text(spec.read_text().replace(
        'command: "{python} {workflow_dir}/bin/padocc_step.py init',
        'command: "(test -e {workflow_dir}/go || sleep 300); {python} {workflow_dir}/bin/padocc_step.py init',
    ))  # fmt: skip

    def cancels() -> list[Stat]:
        return [
            s
            for p in (wf / "status").glob("*.status")
            for s in read_history(p).stats
            if s.state == "Cancelled"
        ]

    for limit in (40, 80, 160):  # longer only if no step had started (a loaded machine)
        conf.write_text(base + f"snakemake_timeout: {limit}\n")
        r = padocc("cycle", "--conf", str(conf), timeout=limit + 160)
        if cancels():
            break
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"padocc: deadline of {limit} s reached: Snakemake stopped" in r.stdout
    assert "snakemake exited 124" in r.stdout
    cancelled = cancels()
    assert cancelled and {(s.step, s.params["reason"]) for s in cancelled} == {("Init", "deadline")}
    n = len(cancelled)
    assert f"interrupted steps of {n} dataset{'' if n == 1 else 's'} recorded" in r.stdout


# ---------------------------------------------------------------------- a stopped run


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=str)
def test_a_signal_to_padocc_run_stops_its_snakemake_and_jobs(tmp_path: Path, sig: int):
    """cron's `timeout` (SIGTERM), a closed terminal (SIGHUP) or Ctrl-C (SIGINT) sent to
    `padocc run` while a step runs: padocc stops its Snakemake and the step, records the
    step as interrupted (Cancelled, reason=stopped), says so, and exits 1. Before,
    padocc died and its Snakemake (in a session of its own) ran on with its jobs.
    The next cycle runs the step again as the same attempt."""
    wf = tmp_path / "stopped"
    write_workflow(wf, "STOPPED", SLEEPER)
    ds = "STOPPED.one"
    proc = subprocess.Popen(
        [sys.executable, "-m", "compiler", "run", str(wf)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for((wf / "work" / ds / "started-1").exists, proc=proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    name = signal.Signals(sig).name
    assert proc.returncode == 1, out + err
    assert err.splitlines()[-2:] == [  # after Snakemake's own lines
        f"padocc: {name} received: Snakemake stopped, interrupted steps of 1 dataset recorded",
        f"stopped by {name}",
    ], err
    got = [(s.state, s.params.get("attempt"), s.params.get("reason")) for s in lines(wf, ds)]
    assert got == [("Engaged", "1", None), ("Cancelled", "1", "stopped")]
    assert lines(wf, ds)[1].params["by"] == name
    # Nothing of the run is left: not Snakemake, not the step's shell or its sleep.
    wait_for(lambda: not pids_matching(wf), timeout=30)
    (wf / "go").touch()
    r = padocc("run", str(wf), timeout=200)
    assert r.returncode == 0, r.stdout + r.stderr
    got = [(s.state, s.params.get("attempt")) for s in lines(wf, ds)]
    assert got[2:] == [("Engaged", "1"), ("Pass", "1")]
