"""Rounds of slots: which jobs go on after each round, so that no job runs no step.

A cycle runs its jobs in rounds. Round 1 is slot 1 of every job, known at compile
time. When a round has ended, one local Snakemake checkpoint (`end_round`, on the
main Snakemake's host, never a SLURM job) reads the round's slot files and writes
which jobs go on: those with a dataset whose next step is to run, while the job has
slots left in its budget (render/plan.py SlotBudget). Snakemake then adds the next round's
jobs, each made by the rule of the step its datasets run next. A dataset that ended
has no more jobs: no job is submitted that would run no step.

One checkpoint per round, not per dataset: Snakemake re-evaluates its job graph once
per checkpoint, so per-dataset checkpoints cost O(datasets^2) (663 s and 3.9 GB for
1,000 datasets, shared/reference/snakemake-scaling.md); a round costs one such pass.

Paths here are relative to the workflow directory (the Snakefile's workdir).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from compiler.core.names import ROUND_END, round_file, slot_file
from compiler.core.safeio import replace_text
from compiler.runtime.jobs import first_step, job_slots, jobs_of, next_steps

END = ROUND_END


def workflow_of(build_dir: str) -> str:
    """The workflow directory of a build (<wf>/.padocc/builds/<build>)."""
    return os.path.normpath(os.path.join(build_dir, os.pardir, os.pardir, os.pardir))


def _build(build_dir: str) -> str:
    return os.path.basename(os.path.normpath(build_dir))


# (path, size, mtime) -> its jobs: Snakemake asks once per job of a round.
_READ: dict[tuple, dict[str, str]] = {}


def round_jobs(build_dir: str, rnd: int) -> dict[str, str]:
    """job -> its slot file in round `rnd`, for the jobs that have that round. Round 1
    is every job of the build; a later round is what the round before ended with
    (FileNotFoundError while it has not ended)."""
    if rnd <= 1:
        return {job: _first_slot(build_dir, job) for job in jobs_of(build_dir)}
    path = os.path.join(workflow_of(build_dir), round_file(_build(build_dir), rnd - 1))
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _READ:
        with open(path, encoding="utf-8") as f:
            _READ[key] = dict(json.load(f)["next"])
    return _READ[key]


def slot_of(build_dir: str, rnd: int, job: str) -> str:
    """One job's slot file in round `rnd` (KeyError: the job has no such round)."""
    if rnd <= 1:
        job_slots(build_dir, job)  # KeyError for a job the build does not have
        return _first_slot(build_dir, job)
    return round_jobs(build_dir, rnd)[job]


def _first_slot(build_dir: str, job: str) -> str:
    """Slot 1's file: named by the step the compile planned for the job's datasets."""
    return slot_file(_build(build_dir), job, 1, first_step(build_dir, job))


def end_round(build_dir: str, rnd: int, out: str) -> dict[str, str]:
    """After round `rnd`: write (atomically) the jobs that go on to the next round,
    each with the slot file its step's rule makes; return them."""
    build, wf = _build(build_dir), workflow_of(build_dir)
    nxt: dict[str, str] = {}
    for job, path in round_jobs(build_dir, rnd).items():
        if rnd + 1 > job_slots(build_dir, job):
            continue  # its budget is spent: it goes on in the next cycle
        steps = {s for s in next_steps(build_dir, job, rnd + 1, os.path.join(wf, path)) if s}
        if steps:
            nxt[job] = slot_file(build, job, rnd + 1, steps.pop() if len(steps) == 1 else "")
    _write_atomic(out, {"round": rnd, "next": nxt})
    return nxt


def end_rounds(workflow_dir: str, build: str) -> None:
    """The cycle's last round has ended: record how many rounds there were."""
    done = os.path.join(workflow_dir, os.path.dirname(round_file(build, 1)))
    n = sum(1 for f in os.listdir(done) if f.removesuffix(".json").isdigit())
    _write_atomic(os.path.join(workflow_dir, round_file(build, END)), {"rounds": n})


def _write_atomic(path: str, data: dict) -> None:
    replace_text(Path(path), json.dumps(data, sort_keys=True) + "\n")


def targets(build_dir: str) -> list[str]:
    """`rule all`'s dataset target: the end of the last round, when there are jobs."""
    return [round_file(_build(build_dir), END)] if jobs_of(build_dir) else []
