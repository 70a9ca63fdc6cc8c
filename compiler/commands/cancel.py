"""`padocc cancel WORKFLOW_DIR [--dataset ID ...]`: stop in-flight jobs and record it.

SLURM jobs are cancelled with one `scancel`; local ones get SIGTERM, only when the
pid is provably that job's wrapper (routing.engaged_process) and works in this
workflow directory; a SLURM job that squeue shows in another directory is left
alone (a copied status file names the original's jobs). Each gets a `Cancelled`
STAT line for its build, so the rest of that run leaves the dataset alone and the
next cycle starts the step again cleanly. Jobs not started yet (local
ones Snakemake has queued) find the cancel marker `.padocc/cancel/<all|dataset>`,
newer than their build, and do nothing.

A SLURM job still in the queue (or started but not yet engaged) has no `Engaged`
line to find it by: it is found in `squeue` by its working directory (the workflow
directory) and, for one dataset, by the comment the SLURM plugin gives it
(`rule_<Step>_wildcards_<build>_<job>_<slot>`, or `rule_advance_...` for a slot
whose datasets run different steps; a job is a dataset or `@<n>`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from compiler.core.diagnostics import CompileError
from compiler.core.routing import engaged_process
from compiler.core.statusfile import Stat, append_stats, position_of, read_history, utc_stamp
from compiler.render.manifest import current_manifest
from compiler.runtime.build import BUILDS
from compiler.runtime.jobs import CANCEL_DIR, members


@dataclass(frozen=True)
class CancelOptions:
    workflow_dir: str = "."
    datasets: tuple[str, ...] = field(default_factory=tuple)


def run(opts: CancelOptions) -> int:
    try:
        m = current_manifest(opts.workflow_dir)
    except CompileError as e:
        print(e.diagnostics[0], file=sys.stderr)
        return 2
    status_dir = Path(m["workflow"]["status_dir"])
    # A job waiting for one of the datasets is cancelled whole (with datasets_per_job,
    # its other datasets start again next cycle).
    here, elsewhere = queued_jobs(m["workflow"]["dir"])
    in_queue = [q for q in here if not opts.datasets or set(q[1]) & set(opts.datasets)]
    if opts.datasets:
        files = [status_dir / f"{d}.status" for d in opts.datasets]
        waiting = {ds for q in in_queue for ds in q[1]}
        missing = [f for f in files if not f.exists() and f.stem not in waiting]
        if missing:
            print(f"{missing[0]}: error: no status file for this dataset", file=sys.stderr)
            return 2
    else:
        files = sorted(status_dir.glob("*.status")) if status_dir.is_dir() else []
    # Jobs of the live builds that have not started yet (the local executor starts them
    # seconds later) see this and do nothing: runtime/jobs.py's cancel_requested.
    _leave_marker(m["workflow"]["dir"], opts.datasets)
    found = []
    for f in files:
        if not f.exists():
            continue
        hist = read_history(f)
        eng = position_of(hist.stats).open_engagement
        if eng is not None:
            found.append((f, hist.dataset_id or f.stem, eng))
    # A job that runs in another directory is not ours, whatever our status file says
    # (a copy of a directory with a live run names the original's jobs).
    engaged_ids = {
        e.params["slurm_jobid"]
        for _, _, e in found
        if e.params.get("slurm_jobid") and e.params["slurm_jobid"] not in elsewhere
    }
    queued = [q for q in in_queue if q[0] not in engaged_ids]
    jobids = sorted(engaged_ids | {jid for jid, _, _ in queued})
    if jobids:
        if not shutil.which("scancel"):
            print("error: SLURM jobs are in flight but scancel is not on PATH", file=sys.stderr)
            return 1
        subprocess.run(["scancel", *jobids], check=False)
    for jid, datasets, build in queued:
        for ds in datasets:  # its run must not resubmit the job (retries)
            _record_queued(status_dir / f"{ds}.status", ds, m, build, jid)
        print(f"cancelled {' '.join(datasets) or 'job'} (queued SLURM job {jid})")
    for f, ds, eng in found:
        # Only a process that is provably this job's wrapper (alive, padocc's, started
        # when its Engaged line says): never whatever holds a reused pid now.
        pid = None if eng.params.get("slurm_jobid") else engaged_process(eng.params)
        if pid is not None and _works_in(pid, m["workflow"]["dir"]):
            try:
                os.kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        params = {
            "by": "padocc cancel",
            "build": eng.params.get("build", ""),
            "slurm_jobid": eng.params.get("slurm_jobid", ""),
        }
        append_stats(
            f,
            ds,
            [
                Stat(
                    utc_stamp(),
                    eng.workflow,
                    eng.sub,
                    eng.step,
                    "Cancelled",
                    {k: v for k, v in params.items() if v},
                )
            ],
        )
        print(
            f"cancelled {ds} {eng.step}"
            + (
                f" (SLURM job {params['slurm_jobid']})"
                if params["slurm_jobid"] in engaged_ids
                else ""
            )
        )
    if not found and not queued:
        print("nothing in flight")
    return 0


# The SLURM plugin's comment for a slot: `rule_<rule>_wildcards_` and the slot rule's
# wildcards joined by "_" (a build id holds no "_", a slot is a number; the job, a
# dataset or "@<n>", is between). A slot's rule is its step's, or `advance`; never
# `gate_...`.
_SLOT_COMMENT = re.compile(
    r"rule_(?!gate_)[A-Za-z0-9_]+?_wildcards_([0-9]{8}T[0-9]+Z-[0-9a-f]+)_(.+)_([0-9]+)"
)


def queued_jobs(workflow_dir: str) -> tuple[list[tuple[str, tuple[str, ...], str]], set[str]]:
    """(job id, its datasets, build) of every SLURM job in the queue that runs in this
    workflow directory; no datasets and build "" for a job that is not a slot of the
    slot rule (a gate chunk). Then the ids of the queue's jobs that run in another
    directory. Both empty when there is no squeue or no controller answers."""
    if not shutil.which("squeue"):
        return [], set()
    try:
        r = subprocess.run(
            ["squeue", "-h", "-o", "%i|%Z|%k"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        r = None
    if r is None or r.returncode != 0:
        print(
            "warning: squeue did not answer: jobs still queued were not looked for", file=sys.stderr
        )
        return [], set()
    here = os.path.realpath(workflow_dir)
    out, elsewhere = [], set()
    for line in r.stdout.splitlines():
        jid, _, rest = line.strip().partition("|")
        wd, _, comment = rest.partition("|")
        if jid and wd and os.path.realpath(wd) != here:
            elsewhere.add(jid)
        if not jid or not wd or os.path.realpath(wd) != here or not comment.startswith("rule_"):
            continue
        slot = _SLOT_COMMENT.fullmatch(comment)
        if slot is None:
            out.append((jid, (), ""))
            continue
        build, job = slot[1], slot[2]
        try:  # a job is one dataset, or "@<n>": several (the build's jobs.tsv)
            datasets = members(os.path.join(workflow_dir, BUILDS, build), job)
        except (OSError, KeyError, ValueError):  # its build is gone: nothing to record
            datasets = ()
        out.append((jid, tuple(datasets), build))
    return out, elsewhere


def _works_in(pid: int, workflow_dir: str) -> bool:
    """Does the process work in this workflow directory? A job wrapper runs where its
    Snakemake runs (-d). A copy of a directory with a live run has Engaged lines naming
    the original's wrappers: alive and padocc's, but not this directory's jobs. Where
    there is no /proc to ask, trusted as before."""
    try:
        return os.path.samefile(f"/proc/{pid}/cwd", workflow_dir)
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # no /proc; else the process is gone
    except OSError:
        return False


def _leave_marker(workflow_dir: str, datasets: tuple[str, ...]) -> None:
    d = Path(workflow_dir) / CANCEL_DIR
    d.mkdir(parents=True, exist_ok=True)
    for name in datasets or ("all",):
        (d / name).touch()


def _record_queued(path: Path, ds: str, m: dict, build: str, jobid: str) -> None:
    """A Cancelled line for a job that never engaged: no step ran, so it names where
    the dataset stands (the graph's root if it never started). It moves nothing, and
    tells the rest of that build's run to leave the dataset alone."""
    root = m["graph"]["root"]
    pos = position_of(read_history(path).stats) if path.exists() else None
    sub, step = (pos.sub, pos.step) if pos and pos.step else (root, root)
    params = {"by": "padocc cancel", "build": build, "slurm_jobid": jobid, "queued": "1"}
    append_stats(
        path, ds, [Stat(utc_stamp(), m["workflow"]["name"], sub, step, "Cancelled", params)]
    )
