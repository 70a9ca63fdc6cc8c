"""The job wrapper: runs one slot of a job (one dataset, or several in turn) and
keeps each dataset's status file whole.

Order matters for crash safety: the STAT line is appended (and fsynced) before the
slot output Snakemake looks at is written. A crash between the two means the slot
runs again and finds the step already recorded, never a lost record.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import json
import os
import shlex
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from compiler.core.attempts import (
    cause_of,
    cause_of_exit,
    closing_line,
    open_after,
    retry_wait,
    tries_of,
)
from compiler.core.diagnostics import CompileError, Loc
from compiler.core.growth import grown_by
from compiler.core.routing import decide, process_start
from compiler.core.safeio import read_regular
from compiler.core.statusfile import (
    ENGAGED,
    QUARANTINED,
    HistoryTail,
    Stat,
    append_stats,
    iso,
    position_of,
    sync_status,
    utc_stamp,
)
from compiler.model.templates import parse_template
from compiler.runtime import provenance
from compiler.runtime.build import dataset_rows, manifest
from compiler.runtime.jobs import (
    cancel_requested,
    growths,
    members,
    next_steps,
    runnable,
    share,
)
from compiler.runtime.proc import run_measured
from compiler.runtime.rounds import slot_of
from compiler.runtime.staging import stage_in

STATE_FILE_ENV = "PADOCC_STATE_FILE"
PARAMS_FILE_ENV = "PADOCC_PARAMS_FILE"


@dataclass(frozen=True)
class SlotRequest:
    """One dataset's part of a job's slot."""

    build_dir: str
    dataset: str
    slot: int
    attempt: int
    runtime: int = 0  # minutes this dataset may use of the job's time limit (0: unknown)
    job: str = ""  # the job, when it runs several datasets ("@<n>")
    # In such a job: the step its resources were asked for ("" for none). Another
    # step (say, after the job's retry, the step after it) waits for the next slot.
    planned: str | None = None


def _write_json_atomic(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(data))  # json.dump writes piece by piece, slow for a bundle
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _stat(m: dict, sub: str, step: str, state: str, **params) -> Stat:
    return Stat(
        utc_stamp(),
        m["workflow"]["name"],
        sub,
        step,
        state,
        {k: v for k, v in params.items() if v != ""},
    )


def _read_outcome_files(
    state_file: str, params_file: str, allowed: set[str]
) -> tuple[str | None, dict, str]:
    state, params, problem = None, {}, ""
    # Regular files only, bounded: a FIFO or /dev/zero left by a command never hangs the job.
    try:
        text = read_regular(state_file, OUTCOME_MAX).decode("utf-8", errors="replace").strip()
        if text:
            if text in allowed:
                state = text
            else:
                problem = f"command named unknown state {text[:40]!r}"
    except FileNotFoundError:
        pass
    except OSError as e:
        problem = f"state file {e.strerror}"
    try:
        data = read_regular(params_file, OUTCOME_MAX).decode("utf-8", errors="replace")
        for line in data.splitlines():
            k, sep, v = line.partition("=")
            if sep and k.strip():
                params[k.strip()[:64]] = v.strip()[:1024]
    except FileNotFoundError:
        pass
    except OSError as e:
        problem = problem or f"params file {e.strerror}"
    return state, params, problem


OUTCOME_MAX = 1024 * 1024  # a state or params file past this is refused


def _bypass(template: str, state: str, params: dict, states: list[str]) -> str:
    """SHEPARD's common_valid: a Fail whose `differences` are all listed in the
    error-bypass template is only a Warning (when the step may end in Warning)."""
    if not template or state != "Fail" or "Warning" not in states or not params.get("differences"):
        return ""
    try:
        lines = read_regular(template).decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    allowed = {ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")}
    found = [d.strip() for d in params["differences"].split(";") if d.strip()]
    return ";".join(found) if found and all(d in allowed for d in found) else ""


def _settle(m: dict, status: Path, dataset: str, act: dict) -> dict | None:
    """Record where routing ended, if it ended: the final state, or quarantine.
    Returns what the next slot should see, or None when a step is to run."""
    root, build = m["graph"]["root"], m["build"]
    kind = act["kind"]
    if kind in ("done", "quarantined", "blocked", "cancelled"):
        return act
    if kind == "final":
        append_stats(status, dataset, [_stat(m, root, root, act["state"], build=build)])
        provenance.route_ended(m, dataset)  # temp files go once the route has ended
        return {"kind": "done", "state": act["state"]}
    if kind == "stuck":
        line = _stat(
            m,
            act.get("sub", root),
            act.get("step", root),
            QUARANTINED,
            reason=act["reason"],
            build=build,
        )
        append_stats(status, dataset, [line])
        return {"kind": "quarantined"}
    return None


@dataclass(frozen=True)
class _Job:
    """What every step a job runs shares."""

    req: SlotRequest
    m: dict
    status: Path
    key: str
    facets: dict
    workdir: Path
    history: HistoryTail  # the status file, reread after each step


@dataclass(frozen=True)
class JobRequest:
    build_dir: str
    job: str  # a dataset id, or "@<n>": several datasets (jobs.tsv)
    slot: int
    attempt: int
    runtime: int = 0  # the job's time limit, minutes (0: unknown)


def run_job(req: JobRequest) -> int:
    """Run each of the job's datasets in turn; the slot file records them all. A
    dataset whose step asked for a retry makes the job exit 1 once the others have
    run: Snakemake resubmits it with grown resources, and each dataset goes on from
    its status file."""
    m = manifest(req.build_dir)
    wf = m["workflow"]
    names = members(req.build_dir, req.job)
    previous = (
        os.path.join(wf["dir"], slot_of(req.build_dir, req.slot - 1, req.job))
        if req.slot > 1
        else None
    )
    steps = next_steps(req.build_dir, req.job, req.slot, previous)
    ok = runnable(m, steps)
    grow = growths(req.build_dir, req.job, req.slot, req.attempt, previous, steps)
    shares = [share(m, s, g) if run else 0 for s, run, g in zip(steps, ok, grow, strict=True)]
    # Each dataset gets its share of the job's time limit (scaled if the profile or
    # --set-resources changed the limit).
    scale = req.runtime / sum(shares) if req.runtime and sum(shares) else 0
    rows = dataset_rows(req.build_dir, names)
    out: dict[str, dict] = {}
    retry = False
    with provenance.batched():  # one catalog transaction for the whole job
        for ds, step, run, part in zip(names, steps, ok, shares, strict=True):
            if step and not run:  # another partition or account: the next slot's job
                out[ds] = {"next": {"kind": "run", "step": step}, "deferred": True}
                continue
            granted = max(1, round(part * scale)) if scale else 0
            bundled = req.job != ds
            one = SlotRequest(req.build_dir, ds, req.slot, req.attempt, granted,
                              req.job if bundled else "", step if bundled else None)  # fmt: skip
            record = run_slot(one, *rows[ds])
            if record is None:
                retry = True
            else:
                out[ds] = record
    if retry:
        return 1
    out_path = os.path.join(wf["dir"], slot_of(req.build_dir, req.slot, req.job))
    _write_json_atomic(out_path, {"datasets": out})
    return 0


def run_slot(req: SlotRequest, key: str, facets: dict) -> dict | None:
    """Run one dataset's part of a slot: what it ran and where routing goes next, or
    None when its step asked for a retry."""
    m = manifest(req.build_dir)
    wf = m["workflow"]
    status = Path(wf["status_dir"]) / f"{req.dataset}.status"
    lock = _hold_dataset_lock(wf["dir"], req.dataset)
    try:
        return _run_dataset(req, m, status, key, facets)
    finally:
        os.close(lock)


def _run_dataset(req: SlotRequest, m: dict, status: Path, key: str, facets: dict) -> dict | None:
    wf, build = m["workflow"], m["build"]
    history = HistoryTail(status)
    stats = history.read()
    if cancel_requested(wf["dir"], build, req.dataset) or any(
        st.state == "Cancelled" and st.params.get("build") == build for st in stats
    ):
        # Cancelled by an operator during this build: nothing more until the next cycle.
        return {"next": {"kind": "cancelled"}}
    stats = _close_dead_engagement(m, status, req.dataset, history, stats)
    act = decide(position_of(stats), key, m["graph"], wf["max_visits"])
    ended = _settle(m, status, req.dataset, act)
    if ended is not None:
        return {"next": ended}
    held = _delayed(m, act, stats)
    if held is not None:
        return {"next": held}
    if req.planned is not None and (
        not req.planned
        or m["steps"][act["step"]]["job_class"] != m["steps"][req.planned]["job_class"]
    ):
        return {"next": act, "deferred": True}

    workdir = Path(wf["work_dir"]) / req.dataset
    workdir.mkdir(parents=True, exist_ok=True)
    job = _Job(req, m, status, key, facets, workdir, history)
    t0 = time.monotonic()
    ran: list[str] = []
    first = m["steps"][act["step"]]
    while True:
        attempt = tries_of(stats, act["step"]).attempt
        # The first step also writes the catalog rows of the dataset's earlier jobs
        # (a killed job never committed its own); later ones only their own.
        done = _run_step(job, act, attempt, heal=not ran)
        if done is None:
            held = _delayed(m, act, job.history.read())
            if held is None:
                return None  # a Retry: Snakemake resubmits the job, which resumes at this step
            sync_status(status)
            return {"ran": ran, "state": "Retry", "next": held}
        state, stats = done
        ran.append(act["step"])
        # Route on the outcome now, so the next step (here or in the next slot) is known.
        nxt = decide(position_of(stats), key, m["graph"], wf["max_visits"])
        nxt = _settle(m, status, req.dataset, nxt) or nxt
        if not _chains(m, first, nxt, len(ran), time.monotonic() - t0, req.runtime, stats):
            break
        act = nxt
    sync_status(status)  # before the slot file tells Snakemake this run is done
    if nxt.get("kind") == "run":  # the next slot's job is sized from this
        nxt = {**nxt, "grow": list(tries_of(stats, nxt["step"]).grow)}
    return {"ran": ran, "state": state, "next": nxt}


def _delayed(m: dict, act: dict, stats: list[Stat]) -> dict | None:
    """A step whose last attempt failed in this build and that has a retry delay: the
    dataset's part of the job ends here (the slot records it, the job exits 0), and a
    later cycle's compile plans it once the delay has passed. Waiting inside the job
    would hold a SLURM allocation idle, and Snakemake's own resubmission would retry
    at once; ending the job keeps the delay to one rule, the compile's, on one clock.
    A Retry of an earlier build was already found due by the compile that made this one."""
    if act.get("kind") != "run" or act["step"] not in m["steps"]:
        return None
    wait = retry_wait(stats, act["step"], m["steps"][act["step"]].get("retry_delay"))
    if wait is None or wait.failed.params.get("build") != m["build"]:
        return None
    return {"kind": "delayed", "step": act["step"], "until": iso(utc_stamp(wait.until))}


def _close_dead_engagement(
    m: dict, status: Path, dataset: str, history: HistoryTail, stats: list[Stat]
) -> list[Stat]:
    """An Engaged left open when this job took the dataset's lock is dead (its job held
    the lock until it died): record how it ended, as an attempt, before going on."""
    eng = position_of(stats).open_engagement
    if eng is None or not open_after(stats, eng):
        return stats
    cause = cause_of(m["workflow"]["dir"], eng, dataset) or "LOST"
    retries = m["steps"][eng.step]["retries"] if eng.step in m["steps"] else 0
    line = closing_line(stats, eng, retries, cause, "padocc job")
    append_stats(status, dataset, [line])
    print(f"padocc: {eng.step} of {dataset} died ({cause}); recorded as {line.state}",
          file=sys.stderr)  # fmt: skip
    return history.read()


def _hold_dataset_lock(workflow_dir: str, dataset: str) -> int:
    """One job at a time per dataset (the kernel drops the lock when the process exits,
    however it exits). A job whose shell was killed can leave its wrapper running while
    Snakemake already resubmits: the new job waits here, then reads the history the
    old one finished, instead of running its steps twice. Returns the locked fd."""
    d = os.path.join(workflow_dir, ".padocc", "locks")
    os.makedirs(d, exist_ok=True)
    fd = os.open(os.path.join(d, f"{dataset}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _chains(
    m: dict, first: dict, nxt: dict, done: int, elapsed_s: float, granted_min: int,
    stats: list[Stat],
) -> bool:  # fmt: skip
    """Does this job go on with the next step? Only a step of the same job class, within
    steps_per_job, and only if its own time limit still fits in the job's."""
    if nxt.get("kind") != "run" or done >= m["workflow"]["steps_per_job"]:
        return False
    step = m["steps"][nxt["step"]]
    if step["job_class"] != first["job_class"]:
        return False
    if granted_min:
        need = grown_by(step, tries_of(stats, nxt["step"]).grow)["runtime"]
        if elapsed_s / 60 + need > granted_min:
            return False
    return True


def _run_step(
    job: _Job, act: dict, attempt: int, heal: bool = True
) -> tuple[str, list[Stat]] | None:
    """Run one step and record it: its final state and the history that ends with it,
    or None after a Retry record."""
    req = job.req
    m, wf, build, status = job.m, job.m["workflow"], job.m["build"], job.status
    sub, step_name = act["sub"], act["step"]
    step = m["steps"][step_name]
    workdir = job.workdir
    values = {
        **job.facets, "dataset": req.dataset, "workdir": str(workdir), "attempt": str(attempt),
        "step": step_name, "python": m["python"], "workflow_dir": wf["dir"],
    }  # fmt: skip
    # Every value from data is shell-quoted before it reaches the shell.
    try:
        command = parse_template(
            step["command"], Loc(step["source"]), values, "command", shell=True
        ).fill(values, shlex.quote)
    except CompileError as e:
        # This dataset lacks a facet the command names: a Fail with the reason, not a crash.
        rc, state, wall, maxrss_mb, extra = -1, "Fail", 0.0, 0.0, {"problem": str(e.diagnostics[0])}
        named = None
        jobid = os.environ.get("SLURM_JOB_ID", "")
    else:
        jobid = os.environ.get("SLURM_JOB_ID", "")
        engaged = _stat(
            m,
            sub,
            step_name,
            ENGAGED,
            host=socket.gethostname(),
            pid=os.getpid(),
            pstart=process_start(os.getpid()),
            attempt=attempt,
            slurm_jobid=jobid,
            slot=req.slot,
            job=req.job,
            build=build,
        )
        append_stats(status, req.dataset, [engaged], durable=False)  # see append_stats
        staged = stage_in(m, step, values, workdir)  # a missing input: skipped() is a Fail
        provenance.before_command(req, step_name, workdir)  # snapshot, for undeclared files
        rc, wall, maxrss_mb, named, extra, problem = staged.skipped() or _run_command(
            command, workdir, req, step_name, step
        )
        # A command killed by a signal names it: growth follows the cause (SIGKILL,
        # the OOM killer's signal, grows memory only).
        cause = cause_of_exit(rc) if named is None else ""
        if jobid and cause == "SIGTERM":
            # SLURM ends a job (time limit, scancel, preemption) with SIGTERM to all its
            # processes, and the command may die of it before this wrapper does. Leave
            # the Engaged open, as when the wrapper dies first: the next reader records
            # SLURM's state (TIMEOUT, CANCELLED, ...) as the cause.
            raise SystemExit(rc if rc > 0 else 128 - rc)
        if rc != 0 and named is None and attempt <= step["retries"]:
            # Not the last attempt: a non-binding record, then Snakemake resubmits
            # with grown resources.
            append_stats(status, req.dataset, [
                _stat(m, sub, step_name, "Retry", exit=rc, attempt=attempt, wall=f"{wall:.1f}",
                      maxrss_mb=f"{maxrss_mb:.0f}", slurm_jobid=jobid, cause=cause, build=build)
            ])  # fmt: skip
            print(
                f"padocc: {step_name} failed with exit {rc} on attempt {attempt}; retrying",
                file=sys.stderr,
            )
            return None
        # A state the command names wins over its exit code; one it may not name is a Fail.
        state = "Fail" if problem else (named or ("Pass" if rc == 0 else "Fail"))
        if problem:
            extra["problem"] = problem
        bypassed = _bypass(m.get("common_valid", ""), state, extra, step["states"])
        if bypassed:
            state = "Warning"
            extra["bypassed"] = bypassed
        state = staged.finish(state, extra)  # stage out before the STAT line: may be a Fail
        if cause and state == "Fail":
            extra["cause"] = cause
    params = {**extra, "exit": rc, "wall": f"{wall:.1f}", "maxrss_mb": f"{maxrss_mb:.0f}",
              "attempt": attempt, "slurm_jobid": jobid}  # fmt: skip
    # Synced once the dataset's run in this job ends (_run_dataset): a crash before
    # then costs the rerun of its steps, one fsync a dataset instead of one a step.
    append_stats(status, req.dataset, [_stat(m, sub, step_name, state, **params)], durable=False)
    stats = job.history.read()
    provenance.after_step(req, step_name, stats, heal)  # undeclared files, outputs, catalog
    return state, stats


def _run_command(command: str, workdir: Path, req: SlotRequest, step_name: str, step: dict):
    """Run one step's command; (exit, wall s, peak MB, named state, params, problem)."""
    tmp = _outcome_dir()
    state_file, params_file = os.path.join(tmp, "state"), os.path.join(tmp, "params")
    for f in (state_file, params_file):  # a step before may have left them
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f)
    env = {STATE_FILE_ENV: state_file, PARAMS_FILE_ENV: params_file,
           "PADOCC_DATASET": req.dataset, "PADOCC_STEP": step_name, "PADOCC_WORKDIR": str(workdir)}  # fmt: skip
    rc, wall, maxrss_mb = run_measured(command, workdir, env)
    named, extra, problem = _read_outcome_files(
        state_file, params_file, {"Pass", "Fail", *step["states"]}
    )
    return rc, wall, maxrss_mb, named, extra, problem


@functools.cache
def _outcome_dir() -> str:
    """One private directory per job process for the steps' state and params files."""
    tmp = tempfile.mkdtemp(prefix="padocc-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    return tmp
