"""A step's attempts, counted from its status file, and how each one ended.

Snakemake's own attempt counter starts again at 1 in every run, and a job killed
from outside (the OOM killer, SLURM's OUT_OF_MEMORY / TIMEOUT / NODE_FAIL, an
admin's scancel, `kill -9`) writes nothing. So attempts and resource growth are read
from the status file: every ended attempt is a line there. An attempt whose job died
without writing its outcome (an open `Engaged` whose job is gone) is closed by the
next reader that holds the dataset, the compile's plan or the next job's wrapper,
with the cause it can find: SLURM's job state, or the exit status the rule's shell
saw. It then counts like any failed attempt: a `Retry` line while retries are left,
else the step's `Fail`, with `cause=` in the line.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from compiler.core.statusfile import ENGAGED, Stat, parse_stamp, utc_stamp

# Causes after which the next attempt gets more memory / more time. A local SIGKILL
# is what the kernel's OOM killer sends; SIGXCPU is a CPU-time limit (ulimit -t).
MEMORY_CAUSES = frozenset({"OUT_OF_MEMORY", "SIGKILL"})
TIME_CAUSES = frozenset({"TIMEOUT", "DEADLINE", "SIGXCPU"})
# Anything else that has a cause (NODE_FAIL, PREEMPTED, CANCELLED, BOOT_FAIL, SIGTERM,
# LOST: the job vanished without a trace) grows neither. A failure without a cause
# (the command exited non-zero by itself) grows both, as retries always did.

# A `Cancelled` line that a run's deadline wrote, or a run stopped by a signal to padocc
# (cron's `timeout`, a kill, Ctrl-C): the attempt did not end by its own doing, so it
# is not counted and the count before it carries on.
DEADLINE_REASON = "deadline"
STOPPED_REASON = "stopped"
RUN_ENDED_REASONS = frozenset({DEADLINE_REASON, STOPPED_REASON})

# SLURM states of a job that has not ended (sacct may lag behind squeue).
_ACTIVE = frozenset({"PENDING", "RUNNING", "REQUEUED", "RESIZING", "SUSPENDED", "COMPLETING",
                     "CONFIGURING", "SIGNALING", "STAGE_OUT", "REQUEUE_HOLD", "REQUEUE_FED"})  # fmt: skip


@dataclass(frozen=True)
class Tries:
    """A step's attempt and how much its resources grew, from its history."""

    attempt: int  # the attempt to run now, 1-based
    grow: tuple[int, int]  # (memory, time): earlier attempts whose cause grows each


def tries_of(stats: Sequence[Stat], step: str) -> Tries:
    """Count the step's failed attempts since its last binding outcome: its `Retry`
    lines (the wrapper's, and those closing a killed job). A cancel by an operator
    starts again from attempt 1; a run's deadline or stop, a block and an unblock do not
    count."""
    n = mem = time = 0
    for st in reversed(stats):
        if st.state in (ENGAGED, "Blocked", "Unblocked"):  # a hold is not an outcome
            continue
        if st.state == "Cancelled" and st.params.get("reason") in RUN_ENDED_REASONS:
            continue
        if st.state == "Retry" and st.step == step:
            n += 1
            cause = st.params.get("cause", "")
            mem += not cause or cause in MEMORY_CAUSES
            time += not cause or cause in TIME_CAUSES
            continue
        break
    return Tries(n + 1, (mem, time))


_DELAY_CAP_MIN = 366 * 1440  # a backoff without retry_delay_max stops growing here


@dataclass(frozen=True)
class Wait:
    """A step's next attempt waits for its retry delay until `until`."""

    until: datetime
    failed: Stat  # the Retry line of the failed attempt it counts from


def retry_wait(stats: Sequence[Stat], step: str, delay: dict | None) -> Wait | None:
    """When the step's next attempt may start, if its last attempt failed with retries
    left and the step has a `retry_delay` (manifest form: delay_min, backoff, max_min):
    the failed attempt's Retry line plus delay_min × backoff^(failures−1), at most
    max_min. None when the next attempt need not wait."""
    if not delay or not delay.get("delay_min"):
        return None
    failed: Stat | None = None
    for st in reversed(stats):  # the last Retry, where tries_of starts counting
        if st.state == ENGAGED or (
            st.state == "Cancelled" and st.params.get("reason") in RUN_ENDED_REASONS
        ):
            continue
        if st.state == "Retry" and st.step == step:
            failed = st
        break
    if failed is None:
        return None
    n = tries_of(stats, step).attempt - 1  # failures so far, >= 1
    minutes = delay["delay_min"] * float(delay.get("backoff", 1.0)) ** min(n - 1, 64)
    minutes = min(minutes, delay.get("max_min") or _DELAY_CAP_MIN)  # no overflow either
    return Wait(parse_stamp(failed.ts) + timedelta(minutes=minutes), failed)


def cause_of_exit(rc: int) -> str:
    """The signal an exit status names (-9 from wait, 137 from a shell), else ""."""
    sig = -rc if rc < 0 else rc - 128 if 128 < rc < 128 + 65 else 0
    if not sig:
        return ""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"SIG{sig}"


def open_after(stats: Sequence[Stat], eng: Stat) -> bool:
    """Is `eng` still open, i.e. no Retry/Cancelled of its step came after it?
    (position_of leaves an engagement open past a non-binding Retry.)"""
    seen = False
    for st in stats:
        if st is eng:
            seen = True
        elif seen and st.step == eng.step and st.state in ("Retry", "Cancelled"):
            return False
    return seen


def closing_line(stats: Sequence[Stat], eng: Stat, retries: int, cause: str, by: str) -> Stat:
    """The line that closes a dead engagement: a Retry while the step has retries left,
    else its Fail (a visit, routed like any Fail)."""
    attempt = tries_of(stats, eng.step).attempt
    params = {"cause": cause, "attempt": str(attempt), "by": by}
    for k in ("slurm_jobid", "host", "pid", "build"):
        if eng.params.get(k):
            params[k] = eng.params[k]
    state = "Retry" if attempt <= retries else "Fail"
    return Stat(utc_stamp(), eng.workflow, eng.sub, eng.step, state, params)


# --- finding the cause -------------------------------------------------------------


def exit_file(workflow_dir: str, eng: Stat, dataset: str) -> str:
    """Where the rule's shell appends `<stamp> <exit status>` when the job wrapper of
    this engagement's job and slot ends non-zero (see render.render_build)."""
    p = eng.params
    job = p.get("job") or dataset
    return os.path.join(workflow_dir, ".padocc", "logs", p.get("build", ""), job,
                        f"{p.get('slot', '')}.log.exit")  # fmt: skip


def local_cause(workflow_dir: str, eng: Stat, dataset: str) -> str:
    """The signal (or `EXIT<n>`) the wrapper of a local engagement ended with, from the
    exit file; LOST when nothing saw it end (its shell was killed too)."""
    try:
        with open(exit_file(workflow_dir, eng, dataset), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return "LOST"
    since = parse_stamp(eng.ts)
    for line in lines:
        stamp, _, rc = line.partition(" ")
        try:
            if parse_stamp(stamp) < since:
                continue
            code = int(rc)
        except ValueError:
            continue
        return cause_of_exit(code) or f"EXIT{code}"
    return "LOST"


def slurm_states(jobids: Iterable[str]) -> dict[str, str]:
    """job id -> SLURM's state of each ended job (first word: "CANCELLED by 0" is
    CANCELLED), from sacct, else squeue (which keeps ended jobs for MinJobAge). Jobs
    not ended, or unknown to both, are left out."""
    ids = sorted({j for j in jobids if j.isdigit()})
    out: dict[str, str] = {}
    if not ids:
        return out
    queries = (
        ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(ids)],
        ["squeue", "-h", "--states=all", "-o", "%i|%T", "-j", ",".join(ids)],
    )
    for cmd in queries:
        if not shutil.which(cmd[0]) or set(ids) <= out.keys():
            continue
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in r.stdout.splitlines():
            jid, _, state = line.strip().partition("|")
            word = state.split()[0] if state.split() else ""
            if jid in ids and word and word not in _ACTIVE and jid not in out:
                out[jid] = word
    return out


def cause_of(
    workflow_dir: str, eng: Stat, dataset: str, states: dict[str, str] | None = None
) -> str:
    """The cause of a dead engagement's end; "" when SLURM says its job has not ended
    (then it is not dead: leave it open)."""
    jobid = eng.params.get("slurm_jobid", "")
    if not jobid:
        return local_cause(workflow_dir, eng, dataset)
    if states is None:
        states = slurm_states([jobid])
    state = states.get(jobid)
    if state is None:
        return "" if _still_queued(jobid) else "LOST"
    if state in ("COMPLETED", "FAILED"):  # the job ended, its wrapper did not say how
        return local_cause(workflow_dir, eng, dataset) if state == "FAILED" else "LOST"
    return state


def _still_queued(jobid: str) -> bool:
    if not shutil.which("squeue"):
        return False
    try:
        r = subprocess.run(["squeue", "-h", "-o", "%i", "-j", jobid], capture_output=True,
                           text=True, timeout=30, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return jobid in r.stdout.split()
