"""`padocc run-step BUILD_DIR JOB SLOT`: the job wrapper Snakemake calls."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from compiler.core.buildlock import hold_build
from compiler.core.statusfile import StatusWriteError
from compiler.runtime.wrapper import JobRequest, run_job


@dataclass(frozen=True)
class RunStepOptions:
    build_dir: str
    job: str  # a dataset id, or "@<n>" for several (the build's jobs.tsv)
    slot: int
    attempt: int = 1
    runtime: int = 0  # the job's time limit, minutes


def run(opts: RunStepOptions) -> int:
    hold_build(opts.build_dir)  # in use while the job runs, even if Snakemake dies
    try:
        return run_job(JobRequest(opts.build_dir, opts.job, opts.slot, opts.attempt, opts.runtime))
    except StatusWriteError as e:
        # The record could not be kept: fail loudly rather than pass without it.
        print(f"padocc: {e}", file=sys.stderr)
        return 3
