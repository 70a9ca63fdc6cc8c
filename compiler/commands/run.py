"""`padocc run [WORKFLOW_DIR] [--profile P]`: the hourly cron line in one command.

Compile, then start Snakemake only when the build carries work. A cycle with nothing
pending then costs a compile (a `stat` per status file), not Snakemake's start-up and
DAG: this is what keeps a no-op hour cheap at 100k jobs. Same as
`padocc-compile && snakemake --profile P`, but without the empty Snakemake run.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from compiler.commands import compile as compile_cmd
from compiler.runtime.leases import Lease
from compiler.runtime.snakemake_run import run_snakemake


@dataclass(frozen=True)
class RunOptions:
    workflow_dir: str = "."
    profile: str = "local"
    timeout: float | None = None  # seconds Snakemake may run
    now: str | None = None


def run(opts: RunOptions) -> int:
    # Runs overlap: each runs what no other live run holds (runtime/leases.py).
    with Lease(opts.workflow_dir, "padocc run") as lease:
        return _run(opts, lease)


def _run(opts: RunOptions, lease: Lease) -> int:
    rc, c = compile_cmd.compile_workflow(
        compile_cmd.CompileOptions(opts.workflow_dir, now=opts.now, lease=lease),
        sys.stdout,
        sys.stderr,
    )
    if c is None:
        return rc
    if not c.plan.pending and not c.gate_work.targets:
        print("nothing to run: Snakemake not started")
        return 0
    # The build's own Snakefile: a compile running meanwhile cannot swap it under us.
    snakefile = Path(opts.workflow_dir) / ".padocc" / "builds" / c.build / "Snakefile"
    rc = run_snakemake(
        opts.workflow_dir,
        opts.profile,
        str(snakefile),
        ["--quiet", "all"],
        timeout=opts.timeout,
        lease=lease,
    )
    if rc != 0:
        print(f"snakemake exited {rc}", file=sys.stderr)
        return 1
    return 0
