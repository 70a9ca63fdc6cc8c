"""`padocc run-step BUILD_DIR JOB SLOT`: the job wrapper Snakemake calls."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from compiler.core.buildlock import hold_build
from compiler.core.diagnostics import one_line
from compiler.core.statusfile import StatusWriteError
from compiler.runtime.build import manifest
from compiler.runtime.jobs import job_slots
from compiler.runtime.rounds import slot_of
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
        manifest(opts.build_dir)
    except (OSError, ValueError) as e:  # not a build: said in one line, never a traceback
        why = e.strerror if isinstance(e, OSError) else e
        print(f"{opts.build_dir}: error: not a build of this workflow ({why})", file=sys.stderr)
        return 2
    try:
        slots = job_slots(opts.build_dir, opts.job)
    except (OSError, ValueError, KeyError):
        print(
            one_line(f"{opts.build_dir}: error: the build has no job '{opts.job}'"), file=sys.stderr
        )
        return 2
    if not 1 <= opts.slot <= slots:
        print(
            f"{opts.build_dir}: error: job '{opts.job}' has slots 1 to {slots}, not {opts.slot}",
            file=sys.stderr,
        )
        return 2
    try:
        slot_of(opts.build_dir, opts.slot, opts.job)
    except (OSError, ValueError, KeyError):
        print(
            f"{opts.build_dir}: error: job '{opts.job}' has no slot {opts.slot} yet: "
            f"round {opts.slot - 1} has not ended with it going on",
            file=sys.stderr,
        )
        return 2
    try:
        return run_job(JobRequest(opts.build_dir, opts.job, opts.slot, opts.attempt, opts.runtime))
    except StatusWriteError as e:
        # The record could not be kept: fail loudly rather than pass without it.
        print(f"padocc: {e}", file=sys.stderr)
        return 3
