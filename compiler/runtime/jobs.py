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

from compiler.core.growth import grown_from_json
from compiler.core.names import slot_file
from compiler.runtime.build import pending

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


def job_targets(build_dir: str) -> list[str]:
    """The last slot file of every job of the build: `rule all`'s dataset targets."""
    build = os.path.basename(os.path.normpath(build_dir))
    return [slot_file(build, name, slots) for name, (slots, _) in _jobs(build_dir).items()]


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


def share(m: dict, step: str, attempt: int) -> int:
    """The minutes one member's part of a job asks for: its step's (grown) time limit
    times the steps it may chain."""
    return grown_from_json(m["steps"][step], attempt)["runtime"] * m["steps"][step]["chain"]


def resource(m: dict, steps: list[str], attempt: int, name: str):
    """One resource of a job whose members run `steps`."""
    if name == "attempt":
        return attempt
    run = [s for s, ok in zip(steps, runnable(m, steps), strict=True) if ok]
    if not run:
        first = next(iter(m["steps"].values()))["resources"]
        return NOOP.get(name, first.get(name, ""))
    if name == "runtime":
        return sum(share(m, s, attempt) for s in run)
    values = [grown_from_json(m["steps"][s], attempt)[name] for s in run]
    if name in SITE_KEYS:
        return values[0]
    return max(values)
