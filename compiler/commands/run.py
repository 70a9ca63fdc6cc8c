"""`padocc run [WORKFLOW_DIR] [--profile P]`: the hourly cron line in one command.

It ends with one line of what the cycle did, counted from the status lines its build
wrote (runtime/cyclesummary.py): `run: 3 steps ran (2 Pass, 1 Fail), 1 dataset waiting`.

Compile, then start Snakemake only when the build carries work. A cycle with nothing
pending then costs a compile (a `stat` per status file), not Snakemake's start-up and
DAG: this is what keeps a no-op hour cheap at 100k jobs. Same as
`padocc-compile && snakemake --profile P`, but without the empty Snakemake run.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from compiler.commands import compile as compile_cmd
from compiler.core.diagnostics import CompileError
from compiler.load.profile import executor_of
from compiler.render.write import check_current
from compiler.runtime.cyclesummary import summarise
from compiler.runtime.held import Held
from compiler.runtime.leases import Lease
from compiler.runtime.notify import notify_after
from compiler.runtime.snakemake_run import cannot_run, failed_because, profile_dir, run_snakemake


@dataclass(frozen=True)
class RunOptions:
    workflow_dir: str = "."
    profile: str = "local"
    timeout: float | None = None  # seconds Snakemake may run
    now: str | None = None
    quiet: bool = False  # hold the output back unless the run fails or warns (cron)


def run(opts: RunOptions) -> int:
    if not profile_dir(opts.profile).is_dir():  # a bad argument: before anything is written
        print(
            f"padocc run: error: profile '{opts.profile}' not found: use local, slurm or the "
            "path of a profile directory",
            file=sys.stderr,
        )
        return 2
    why = cannot_run(opts.workflow_dir)  # before the compile: nothing written for nothing
    if why:
        print(why, file=sys.stderr)
        return 1
    try:  # a .padocc/current that is not padocc's link: said before a lease is written
        check_current(Path(opts.workflow_dir))
    except CompileError as e:
        print(e.diagnostics[0], file=sys.stderr)
        return 2
    # Runs overlap: each runs what no other live run holds (runtime/leases.py).
    held = Held() if opts.quiet else None
    out: TextIO = held or sys.stdout  # type: ignore[assignment]
    err: TextIO = held or sys.stderr  # type: ignore[assignment]
    rc = 1
    try:
        with Lease(opts.workflow_dir, "padocc run") as lease:
            rc = _run(opts, lease, out, err, held)
    finally:
        if held is not None:
            held.release(rc != 0, sys.stdout)
    return rc


def _run(opts: RunOptions, lease: Lease, out: TextIO, err: TextIO, held: Held | None) -> int:
    rc, c = compile_cmd.compile_workflow(
        compile_cmd.CompileOptions(
            opts.workflow_dir,
            now=opts.now,
            lease=lease,
            executor=executor_of(profile_dir(opts.profile)),
            answer_quietly=True,
        ),
        out,
        err,
    )
    if c is None:
        return rc
    wf, now = opts.workflow_dir, float(c.manifest["now"])
    if not c.plan.pending and not c.gate_work.targets:
        print("nothing to run: Snakemake not started", file=out)
        print(_summary(c), file=out)
        if c.model is not None:  # None: answered quietly, and then no notify is set
            notify_after(c.model.notify, wf, c.model, now, sys.stderr)
        return 0
    # The build's own Snakefile: a compile running meanwhile cannot swap it under us.
    snakefile = Path(opts.workflow_dir) / ".padocc" / "builds" / c.build / "Snakefile"
    rc = run_snakemake(
        opts.workflow_dir, opts.profile, str(snakefile), ["--quiet", "all"], timeout=opts.timeout,
        build=c.build, lease=lease, log=held,
    )  # fmt: skip
    print(_summary(c), file=out)  # whatever Snakemake's end: what the status files say was done
    failed = ""
    if rc == 124:
        failed = f"snakemake stopped at the {opts.timeout:g} s deadline"
    elif rc != 0:
        failed = failed_because(opts.workflow_dir, rc)
    if failed:
        print(failed, file=err)
    notify_after(c.model.notify, wf, c.model, now, sys.stderr, failed)
    return 1 if failed else 0


def _summary(c: compile_cmd.Compiled) -> str:
    """One line: the steps this run's build ran and how they ended, the chunks it
    made, and what is left for later cycles or to other live runs."""
    planned = [(p.id, p.key) for p in c.plan.pending]
    return summarise(c.manifest, planned, sorted(c.gate_work.making), c.plan.counts).line()
