"""`padocc-compile [WORKFLOW_DIR]`: YAML -> checked model -> plan -> generated Snakefile."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from compiler.core.buildlock import group_moves, hold_build
from compiler.core.diagnostics import CompileError, Loc, fail, one_line
from compiler.core.statusfile import StatusWriteError
from compiler.core.testpause import pause_at
from compiler.core.words import plural
from compiler.load.profile import Executor
from compiler.load.yamlpos import recording_reads
from compiler.model.axes import parse_time
from compiler.model.gates import check_want_size, wanted_chunk_count
from compiler.model.resolve import Overrides, build_model
from compiler.model.types import Workflow
from compiler.render import quiet
from compiler.render.gateplan import GatePlanner, GateWork
from compiler.render.manifest import manifest_of
from compiler.render.plan import (
    Plan,
    Selection,
    make_plan,
    record_closings,
    requeue_changed_inputs,
    running_slurm_jobs,
)
from compiler.render.render import render_build
from compiler.render.write import KEEP_BUILDS, check_current, write_build
from compiler.runtime.leases import Holdings, Lease, live_holdings, planning

KEEP_ENV = "PADOCC_KEEP_BUILDS"
KEEP_MAX = 10000


@dataclass(frozen=True)
class CompileOptions:
    workflow_dir: str = "."
    check_only: bool = False
    quiet: bool = False
    now: str | None = None  # UTC time taken as now; replays and tests of clock gates
    overrides: Overrides = field(default_factory=Overrides)
    selection: Selection | None = None
    write: bool = True  # False: plan only (a cycle's --dry-run)
    # The run this compile plans for: its build claims what it carries (runtime/leases.py).
    lease: Lease | None = None
    # Where the jobs run (from the profile): sizes jobs when datasets_per_job is not set.
    executor: Executor = field(default_factory=Executor)
    # May answer from the last full compile when nothing changed (render/quiet.py):
    # `padocc-compile` and `padocc run`, whose callers take a Compiled without a model.
    answer_quietly: bool = False


@dataclass
class Compiled:
    model: Workflow | None  # None: answered quietly (render/quiet.py), nothing compiled
    build: str
    manifest: dict
    plan: Plan
    gate_work: GateWork


def keep_builds() -> int:
    """How many builds a compile keeps: PADOCC_KEEP_BUILDS, default KEEP_BUILDS."""
    text = os.environ.get(KEEP_ENV, "").strip()
    if not text:
        return KEEP_BUILDS
    if not text.isdigit() or not 1 <= int(text) <= KEEP_MAX:
        raise fail(Loc(KEEP_ENV), f"must be a whole number from 1 to {KEEP_MAX}, not {text[:40]!r}")
    return int(text)


def new_build_id(now: datetime, seed: str) -> str:
    digest = hashlib.sha256(os.fsencode(f"{seed}{now.timestamp()}")).hexdigest()[:8]
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + digest


def check_summary(model: Workflow, now: float) -> str:
    """What `--check` found: datasets and steps, and the gates with the chunks their
    wants ask for at `now` (keyed gates: per dataset). A gate-only workflow has no steps
    to speak of."""
    parts = [plural(len(model.datasets), "dataset")]
    if model.steps or not model.gates:
        parts.append(plural(len(model.steps), "step"))
    if model.gates:
        per_key = len(model.datasets)
        n = sum(wanted_chunk_count(g, now) * (per_key if g.keyed else 1) for g in model.gates)
        parts += [plural(len(model.gates), "gate"), f"{plural(n, 'chunk')} wanted"]
    return ", ".join(parts)


def compile_workflow(opts: CompileOptions, out: TextIO, err: TextIO) -> tuple[int, Compiled | None]:
    # A cycle moving a completed flock group holds this lock exclusively: a compile
    # that read the flock before the move and the status files after it would take
    # the group's datasets for new ones and run them all again (the 48-hour soak).
    # Never created here: a compile that fails must leave the tree as it was. The
    # cycle, the one that moves groups, makes the lock file before anything else.
    with group_moves(opts.workflow_dir, exclusive=False, create=False):
        return _compile_workflow(opts, out, err)


def _quiet_key(opts: CompileOptions) -> str | None:
    """The key of a compile that may answer quietly (render/quiet.py), or None."""
    plain = opts.selection is None and opts.now is None and opts.overrides == Overrides()
    if not (plain and opts.answer_quietly and opts.write and not opts.check_only):
        return None
    try:
        return quiet.key_of(Path(opts.workflow_dir))
    except OSError:
        return None


def _compile_workflow(
    opts: CompileOptions, out: TextIO, err: TextIO
) -> tuple[int, Compiled | None]:
    wf_dir = Path(opts.workflow_dir)
    try:
        key = _quiet_key(opts)
    except CompileError as e:  # PADOCC_SWEEP out of range: said before anything is written
        print(e.diagnostics[0], file=err)
        return 2, None
    q = quiet.answer(wf_dir, key) if key else None
    if q is not None:  # nothing changed since a full compile that found nothing to do
        for line in q.always + (() if opts.quiet else q.said):
            print(line, file=err)
        if not opts.quiet:
            print(f"{q.out} -> {wf_dir / 'Snakefile'} (build {q.build}, unchanged)", file=out)
        plan = Plan(counts=q.counts)
        return 0, Compiled(None, q.build, q.manifest, plan, GateWork())
    try:
        with recording_reads() as reads:
            model = build_model(wf_dir, opts.workflow_dir.rstrip("/") or ".", opts.overrides)
        pause_at("datasets-read")  # tests: a compile between its read of the flock and its plan
        wall_now = datetime.now(UTC)
        now = parse_time(opts.now, Loc("--now")) if opts.now else int(wall_now.timestamp())
        for g in model.gates:
            check_want_size(g, now)  # a want up to 'now' grows with it
        keep = keep_builds()
        if opts.write and not opts.check_only:
            check_current(wf_dir)  # before anything is said or written
    except CompileError as e:
        # Errors only, unless asked to --check: each is one line at the user's file:line.
        for d in e.diagnostics:
            if d.severity == "error" or opts.check_only:
                print(d, file=err)
        return 2, None
    for d in model.skipped:  # flock groups that could not be read: skipped, said once each
        print(d, file=err)
    if not opts.quiet:
        for d in model.graph.findings:
            print(d, file=err)
    if opts.check_only:
        if not opts.quiet:
            print(f"{model.source_file}: ok: {check_summary(model, now)}", file=out)
        return 0, None
    # The pid too: two compiles in the same microsecond get different builds.
    build = new_build_id(wall_now, f"{model.dir}:{os.getpid()}")
    manifest = manifest_of(model, build, wall_now.strftime("%Y-%m-%dT%H:%M:%SZ"), now)
    args = (opts, model, manifest, build, now, wf_dir, keep, err, key is not None)
    if opts.lease is None:  # plans around live runs, claims nothing
        held = live_holdings(wf_dir)
        rc, plan, gate_work = _plan_and_write(*args, held)
    else:
        with planning(wf_dir, opts.lease) as held:
            rc, plan, gate_work = _plan_and_write(*args, held)
            if rc == 0 and opts.write:
                members = [d for b in plan.jobs for d in b.members]
                opts.lease.claim(build, members, sorted(gate_work.making))
    if rc != 0:
        return rc, None
    if not opts.quiet:
        for h in held.freed:
            print(f"freed the lease of a run that is gone: {h}", file=out)
        if held.runs:
            print(
                f"live runs hold {plural(len(held.datasets), 'dataset')} and"
                f" {plural(len(held.chunks), 'gate chunk')}: left to them ({'; '.join(held.runs)})",
                file=out,
            )
    if not opts.quiet and plan.requeue:
        # One line however many (cron mails it): each Ready line names its input.
        r, more = plan.requeue[0], len(plan.requeue) - 1
        print(
            f"re-queued {len(plan.requeue)} finished dataset{'s' if more else ''} whose input"
            f" changed after the final STAT line: {r.id} ({r.newest_input})"
            + (f" and {more} more (each status file's Ready line names its input)" if more else ""),
            file=err,
        )
    counts = ", ".join(f"{v} {k}" for k, v in sorted(plan.counts.items()))
    line = f"compiled {model.name}: {plural(len(model.datasets), 'dataset')} ({counts or 'none'})"
    if model.gates:
        line += f", {plural(len(gate_work.targets), 'gate chunk')} to make, {len(gate_work.waiting)} waiting"
    if not opts.quiet:
        where = (
            f"-> {wf_dir / 'Snakefile'} (build {build})"
            if opts.write
            else "(dry run: nothing written)"
        )
        print(f"{line} {where}", file=out)
    if key is not None:  # what the next compile may answer from, if nothing changes
        said = [str(d) for d in model.graph.findings] + [f"warning: {w}" for w in plan.warnings]
        always = [str(d) for d in model.skipped]
        quiet.save(wf_dir, key, model, reads, plan, build, line, always, said)
    return 0, Compiled(model, build, manifest, plan, gate_work)


def _plan_and_write(
    opts: CompileOptions,
    model: Workflow,
    manifest: dict,
    build: str,
    now: int,
    wf_dir: Path,
    keep: int,
    err: TextIO,
    marks: bool,
    held: Holdings,
) -> tuple[int, Plan, GateWork]:
    gate_work = GateWork()
    try:
        plan = make_plan(
            model, manifest, opts.selection, held=held.datasets, now=now, executor=opts.executor,
            marks=marks,
        )  # fmt: skip
    except CompileError as e:  # a status file that is not a regular file
        print(e.diagnostics[0], file=err)
        return 2, Plan(), gate_work
    planner = None
    if model.gates:
        keys = [d.id for d in model.datasets]
        keyed = any(g.keyed for g in model.gates)
        planner = GatePlanner(
            manifest,
            now,
            keys={g.name: keys for g in model.gates if g.keyed},
            facets={d.id: d.facet_dict() for d in model.datasets} if keyed else {},
            slurm_jobs=running_slurm_jobs(),
            held=held.chunks,
            defer_maps=True,
        )
        try:
            gate_work = planner.plan_all()
        except CompileError as e:  # a precondition's map hook failed on a chunk
            print(e.diagnostics[0], file=err)
            return 2, plan, gate_work
        gate_work.status_coverage = planner.status_coverage()
    if not opts.quiet:
        deferred = deferred_line(model, plan, gate_work)
        for w in plan.warnings + gate_work.warnings + ([deferred] if deferred else []):
            print(f"warning: {w}", file=err)
    if opts.write:
        files = render_build(model, manifest, plan, gate_work)
        try:
            # Finished datasets whose inputs changed: their binding Ready line first, so
            # slot 1 finds them where the plan put them.
            requeue_changed_inputs(model, manifest, plan)
            record_closings(model, plan)  # jobs killed since the last cycle: attempts
            # Held while this process lives: `padocc run`, `cycle`, `gate make` and
            # `campaign` run it next, and no other compile may prune it meanwhile.
            hold_build(str(write_build(wf_dir, build, files, keep=keep)))
            if planner is not None:
                planner.save_maps()  # only for a compile that succeeded
        except StatusWriteError as e:
            print(f"error: {e}", file=err)
            return 2, plan, gate_work
        except CompileError as e:  # nothing published: the previous build is current
            print(e.diagnostics[0], file=err)
            return 2, plan, gate_work
        except OSError as e:  # a full disk, a read-only or damaged .padocc: one line
            where = e.filename or wf_dir / ".padocc"
            print(one_line(f"{where}: error: cannot write the build: {e.strerror or e}"), file=err)
            return 2, plan, gate_work
    return 0, plan, gate_work


def deferred_line(model: Workflow, plan: Plan, gate_work: GateWork) -> str:
    """One line for everything a cycle leaves to later ones past its bounds."""
    parts = []
    if plan.deferred:
        parts.append(
            f"{plan.deferred} datasets deferred to later cycles (a cycle takes at most "
            f"max_datasets_per_cycle datasets, here {model.max_datasets_per_cycle}, "
            "those waiting longest first)"
        )
    gates = gate_work.deferred_line()
    return "; ".join(parts + ([gates] if gates else []))


def run(opts: CompileOptions) -> int:
    return compile_workflow(opts, sys.stdout, sys.stderr)[0]
