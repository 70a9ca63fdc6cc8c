"""A job's datasets and the resources they ask for, computed one way for both sides:
the Snakefile's resource functions (at submission) and the wrapper (in the job).

A job runs one dataset, or with `datasets_per_job` several in turn (a bundle, named
`@<n>` in the build's jobs.tsv). Each dataset's next step is known from the slot
before (or, for slot 1, from the plan). The job asks for the largest memory and
cores of those steps and for the sum of their time limits (each times its chain);
its partition and account are those of its first dataset with a step to run, and a
dataset whose step needs another partition or account waits for the next slot.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

from compiler.core.attempts import cause_of, closing_line, open_after, tries_of
from compiler.core.growth import grown_by
from compiler.core.names import common_first
from compiler.core.statusfile import position_of, read_history
from compiler.runtime.build import manifest, pending

NOOP = {"runtime": 5, "mem_mb": 256, "cpus_per_task": 1}
SITE_KEYS = ("slurm_partition", "slurm_account")


@functools.lru_cache(maxsize=8)
def _jobs(build_dir: str) -> dict[str, tuple[int, tuple[str, ...]]]:
    """job name -> (slots, member datasets), from the build's jobs.tsv."""
    rows = {}
    try:
        with open(os.path.join(build_dir, "jobs.tsv"), encoding="utf-8") as f:
            for line in f:
                name, slots, names = line.rstrip("\n").split("\t")
                rows[name] = (int(slots), tuple(names.split(",")))
    except FileNotFoundError:  # a build from before jobs.tsv: one dataset a job
        rows = {ds: (r.slots, (ds,)) for ds, r in pending(build_dir).items()}
    return rows


def job_slots(build_dir: str, job: str) -> int:
    """How many slots a job of the build has; KeyError for a job it does not have."""
    return _jobs(build_dir)[job][0]


def members(build_dir: str, job: str) -> tuple[str, ...]:
    if job.startswith("@"):
        return _jobs(build_dir)[job][1]
    return (job,)


def first_step(build_dir: str, job: str) -> str:
    """The step slot 1 of a job runs, when the compile knew it: its datasets' common
    first step ("" when they start at different steps or only record an end)."""
    names = members(build_dir, job)
    rows = pending(build_dir)
    return common_first(names, {ds: rows[ds].first for ds in names})


def jobs_of(build_dir: str) -> list[str]:
    """Every job of the build, in jobs.tsv's order."""
    return list(_jobs(build_dir))


def read_slot(path: str) -> dict[str, dict]:
    """dataset -> what its part of a job's slot recorded ({"ran", "state", "next"})."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)["datasets"]


def next_steps(build_dir: str, job: str, slot: int, previous: str | None) -> list[str]:
    """Each member's step in this slot ("" when it has none to run)."""
    names = members(build_dir, job)
    if slot <= 1 or previous is None:
        rows = pending(build_dir)
        return [rows[ds].first for ds in names]
    # Raises FileNotFoundError before the slot before has run; Snakemake then marks the
    # resource "to be determined" and asks again at submission.
    before = read_slot(previous)
    out = []
    for ds in names:
        nxt = before.get(ds, {}).get("next", {})
        out.append(nxt.get("step", "") if nxt.get("kind") == "run" else "")
    return out


def growths(
    build_dir: str, job: str, slot: int, attempt: int, previous: str | None, steps: list[str]
) -> list[tuple[int, int]]:
    """Each member's (memory, time) growths for its step in this slot, counted from its
    status file, never from Snakemake's attempt (which starts at 1 in every run). A
    first submission reads them from what the compile (slot 1) or the slot before
    wrote; a resubmission after a failed or killed job from the status files."""
    names = members(build_dir, job)
    known: list[tuple[int, int] | None] = [None] * len(names)
    if attempt <= 1:
        if slot <= 1 or previous is None:
            rows = pending(build_dir)
            known = [rows[ds].grow for ds in names]
        else:  # a dataset the slot before deferred has none: read from its status
            before = read_slot(previous)
            known = [_pair(before.get(ds, {}).get("next", {}).get("grow")) for ds in names]
    m = manifest(build_dir)
    return [
        g if g is not None else status_growth(m, ds, step) if step else (0, 0)
        for ds, step, g in zip(names, steps, known, strict=True)
    ]


def _pair(v) -> tuple[int, int] | None:
    return (int(v[0]), int(v[1])) if isinstance(v, list) and len(v) == 2 else None


_GROWTH: dict[tuple, tuple[int, int]] = {}


def status_growth(m: dict, dataset: str, step: str) -> tuple[int, int]:
    """A step's growths from the dataset's status file, counting a dead engagement not
    yet closed (a killed job, resubmitted before its next job records it) as the
    attempt its cause says. Kept per file version: Snakemake asks once per resource."""
    path = Path(m["workflow"]["status_dir"]) / f"{dataset}.status"
    try:
        st = path.stat()
        key: tuple | None = (str(path), st.st_size, st.st_mtime_ns, step)
    except OSError:
        key = None
    if key in _GROWTH:
        return _GROWTH[key]
    stats = read_history(path).stats
    eng = position_of(stats).open_engagement
    if eng is not None and eng.step == step and open_after(stats, eng):
        cause = cause_of(m["workflow"]["dir"], eng, dataset) or "LOST"
        stats = [*stats, closing_line(stats, eng, m["steps"][step]["retries"], cause, "")]
    grow = tries_of(stats, step).grow
    if key is not None:
        _GROWTH[key] = grow
    return grow


CANCEL_DIR = os.path.join(".padocc", "cancel")


def cancel_requested(workflow_dir: str, build: str, dataset: str) -> bool:
    """Did `padocc cancel` (of the workflow, or of this dataset) run after this build was
    compiled? Then this build's jobs that have not started yet do nothing."""
    made = build.split("-", 1)[0]  # 20261205T175530123456Z: the compile's UTC time
    for name in ("all", dataset):
        try:
            st = os.stat(os.path.join(workflow_dir, CANCEL_DIR, name))
        except OSError:
            continue
        if _stamp_of(st.st_mtime) > made:
            return True
    return False


def _stamp_of(t: float) -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(t)) + f"{int(t % 1 * 1e6):06d}Z"


def runnable(m: dict, steps: list[str]) -> list[bool]:
    """Which members run in this job: those with a step whose partition and account
    are the first such member's."""
    lead = next((s for s in steps if s), "")
    if not lead:
        return [False] * len(steps)
    site = [m["steps"][lead]["resources"].get(k, "") for k in SITE_KEYS]
    return [
        bool(s) and [m["steps"][s]["resources"].get(k, "") for k in SITE_KEYS] == site
        for s in steps
    ]


def share(m: dict, step: str, grow: tuple[int, int]) -> int:
    """The minutes one member's part of a job asks for: its step's (grown) time limit
    times the steps it may chain."""
    return grown_by(m["steps"][step], grow)["runtime"] * m["steps"][step]["chain"]


def resource(m: dict, steps: list[str], grow: list[tuple[int, int]], name: str):
    """One resource of a job whose members run `steps`, grown as `grow` says."""
    run = [(s, g) for s, ok, g in zip(steps, runnable(m, steps), grow, strict=True) if ok]
    if not run:
        first = next(iter(m["steps"].values()))["resources"]
        return NOOP.get(name, first.get(name, ""))
    if name == "runtime":
        return sum(share(m, s, g) for s, g in run)
    values = [grown_by(m["steps"][s], g)[name] for s, g in run]
    if name in SITE_KEYS:
        return values[0]
    return max(values)
