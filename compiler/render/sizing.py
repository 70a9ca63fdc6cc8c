"""How many datasets one job runs when the workflow does not say (`datasets_per_job`).

Each job pays a start (a Python start-up and Snakemake's bookkeeping; on SLURM an
`sbatch` and a queue wait), so many short jobs cost more than their steps. The compile
knows the number pending and, from the profile, the executor and how many jobs run at
once; it sizes jobs so that each place runs a few of them (a slow dataset does not hold
up the end of the cycle). On SLURM a job's time limit is the sum of its datasets', so
there a job's datasets must also fit a time budget. With no profile known (a bare
`padocc-compile`), one dataset a job, as before.
"""

from __future__ import annotations

from collections.abc import Callable

from compiler.load.profile import Executor
from compiler.model.types import Workflow

JOBS_PER_SLOT = 4
MAX_PER_JOB = 1000  # the same bound as a datasets_per_job the user sets
SLURM_JOB_MINUTES = 120  # a bundled SLURM job asks for at most this much time


def datasets_per_job(n_pending: int, ex: Executor) -> int:
    """K for n pending datasets: about JOBS_PER_SLOT jobs per place, at least 1."""
    if not ex.kind or n_pending <= 0:
        return 1
    return max(1, min(MAX_PER_JOB, -(-n_pending // (JOBS_PER_SLOT * ex.slots))))


def time_cap(model: Workflow, ex: Executor) -> Callable[[str], int]:
    """The most datasets a job starting with step `first` may carry: on a cluster, as
    many as fit SLURM_JOB_MINUTES with each asking the step's runtime times its chain."""
    if ex.kind != "slurm":
        return lambda first: MAX_PER_JOB
    chains = {name: chain for name, _, chain in model.jobs}
    minutes = {s.name: s.resources.runtime * chains.get(s.name, 1) for s in model.steps}
    return lambda first: max(1, SLURM_JOB_MINUTES // max(1, minutes.get(first, 1)))
