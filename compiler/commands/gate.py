"""`padocc gate ACTION GATE [LOW HIGH]`: JSOC's six ticket actions, plus the coverage view.

    range     1  the full covered range of the gate
    check     2  is [LOW, HIGH) open (covered)? LOW = HIGH asks about that point: the
                 chunk that holds it (JSOC's gatekeeper checks a point is in range)
    wait      3  wait until [LOW, HIGH) is covered, or --timeout
    make      4  make whatever is missing in [LOW, HIGH) (only that; chunks a live
                 run is making are waited for, up to --timeout, never made twice)
    remake    5  force a remake of [LOW, HIGH)
    gaps      6  the gaps in [LOW, HIGH), permanent gaps left out
    coverage     done / missing / running / failed / gap runs over [LOW, HIGH)
                 (default: the gate's wanted range)

Exit status mirrors the ticket STATUS: 0 open, 1 closed (some of the range is
missing), 3 being processed, 4 timed out, 5 processing error; 2 is a request that
makes no sense (bad gate, range or workflow), as for any bad input.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from compiler.core.diagnostics import CompileError, Loc, suggest
from compiler.core.utctime import parse_utc
from compiler.core.words import plural
from compiler.model.axes import parse_time, parse_value, time_to_carrington
from compiler.model.chunks import chunk_at, want_range
from compiler.render.coverage import (
    chunk_name,
    coverage_runs,
    covered_span,
    marker_path,
    open_status,
    show,
)
from compiler.render.covmap import mapped_states
from compiler.render.gateplan import GatePlanner, GateWork
from compiler.render.manifest import current_manifest
from compiler.render.plan import running_slurm_jobs
from compiler.runtime.leases import Lease, live_holdings, planning
from compiler.runtime.snakemake_run import run_snakemake

OPEN, CLOSED, BAD, PROCESSING, TIMEOUT, ERROR = 0, 1, 2, 3, 4, 5
ACTIONS = ("range", "check", "wait", "make", "remake", "gaps", "coverage")


@dataclass(frozen=True)
class GateOptions:
    action: str
    gate: str
    low: str | None = None
    high: str | None = None
    workflow_dir: str = "."
    key: str = ""
    timeout: float = 3600
    poll: float = 5
    now: str | None = None
    profile: str = "local"


def _dataset_ids(workflow_dir: str) -> list[str]:
    """Dataset ids of the current build (its datasets.tsv): what a --key may name."""
    tsv = Path(workflow_dir) / ".padocc" / "current" / "datasets.tsv"
    try:
        with open(tsv, encoding="utf-8", errors="replace") as f:
            return [line.split("\t", 1)[0] for line in f if line.strip()]
    except OSError:
        return []


class Request:
    def __init__(self, opts: GateOptions, m: dict):
        self.m = m
        self.command = "padocc why" if opts.action == "why" else "padocc gate"
        if opts.gate not in m["gates"]:
            raise CompileError(
                [self.diag(f"unknown gate '{opts.gate}'{suggest(opts.gate, m['gates'])}")]
            )
        self.name = opts.gate
        self.wf = Path(opts.workflow_dir)
        self.g = m["gates"][opts.gate]
        if self.g["keyed"] and not opts.key:
            raise CompileError(
                [self.diag(f"gate '{opts.gate}' is keyed: name a dataset with --key")]
            )
        if opts.key and not self.g["keyed"]:
            raise CompileError(
                [self.diag(f"gate '{opts.gate}' is not keyed: --key does not apply")]
            )
        if opts.key:
            # Only a dataset of the build: any other key would reach Snakemake targets,
            # paths and the command's facets (and fail there, unexplained).
            ids = _dataset_ids(opts.workflow_dir)
            if opts.key not in ids:
                why = f"gate '{opts.gate}' has no dataset {opts.key!r}{suggest(opts.key, ids)}"
                raise CompileError([self.diag(why)])
        self.key = opts.key if self.g["keyed"] else ""
        self.now = parse_time(opts.now, Loc("--now")) if opts.now else time.time()
        self.low = self.high = None
        if opts.low is not None:
            self.low = parse_value(self.g["axis"], opts.low, Loc("LOW"))
            self.high = parse_value(self.g["axis"], opts.high, Loc("HIGH"))
            if self.low > self.high:
                raise CompileError([self.diag(f"low {opts.low} is after high {opts.high}")])
            if self.low == self.high:
                self.low, self.high = chunk_at(self.g, self.low)

    def diag(self, msg: str):
        return _diag(msg, self.command)

    def marker(self, lo: float, hi: float) -> str:
        return marker_path(self.name, chunk_name(self.g, lo, hi), self.key)

    def held(self) -> dict[str, str]:
        """Chunk markers live runs are making (queued or running)."""
        return live_holdings(self.wf).chunks

    def state(self):
        # From the gate's persistent coverage map (render/covmap.py), rebuilt only when
        # a marker or the gate's status file changed since it was made, or it is damaged.
        return mapped_states(self.m, self.name, self.now, self.key, None, running_slurm_jobs())

    def status(self) -> int:
        st = self.state()
        # Chunks a live run is making (queued or running) count as running: answered
        # from intervals like the rest, never by listing the chunks of the range.
        mine = os.path.dirname(marker_path(self.name, "x", self.key)) + os.sep
        held = {
            m[len(mine) : -len(".done")]
            for m in self.held()
            if m.startswith(mine) and m.endswith(".done") and os.sep not in m[len(mine) :]
        }
        if held:
            st = replace(st, running=st.running | held)
        got = open_status(self.g, st, self.low, self.high)
        return {"open": OPEN, "closed": CLOSED, "running": PROCESSING}[got]


def _diag(msg: str, command: str = "padocc gate"):
    from compiler.core.diagnostics import Diagnostic

    return Diagnostic(Loc(command), msg)


def _order(low: str, high: str) -> tuple[float, float] | None:
    """LOW and HIGH as comparable numbers, whatever the gate's axis: numbers, or
    times. None: neither reads both (the gate's own axis decides later)."""
    try:
        return float(low), float(high)
    except ValueError:
        pass
    try:
        return parse_utc(low).timestamp(), parse_utc(high).timestamp()
    except ValueError:
        return None


def _precheck(opts: GateOptions) -> None:
    """What make and remake can refuse before their compile writes a build: a request
    that makes no sense leaves the workflow as it was."""
    if opts.low is None:
        raise CompileError([_diag(f"'{opts.action}' needs LOW and HIGH")])
    if opts.now:
        parse_time(opts.now, Loc("--now"))
    got = _order(opts.low, opts.high)
    if got is not None and got[0] > got[1]:
        raise CompileError([_diag(f"low {opts.low} is after high {opts.high}")])


def run(opts: GateOptions) -> int:
    wf = Path(opts.workflow_dir)
    if opts.action in ("make", "remake"):
        try:
            _precheck(opts)
        except CompileError as e:
            print(e.diagnostics[0], file=sys.stderr)
            return BAD
        # Imported here: the compile (templates, the whole model) is only for make and
        # remake; check, gaps and `padocc why GATE` answer without loading it.
        from compiler.commands import compile as compile_cmd

        rc = compile_cmd.run(compile_cmd.CompileOptions(str(wf), quiet=True, now=opts.now))
        if rc != 0:
            return rc
    try:
        m = current_manifest(wf)
    except CompileError as e:
        print(e.diagnostics[0], file=sys.stderr)
        return BAD
    try:
        if opts.action not in ("range", "coverage") and opts.low is None:
            raise CompileError([_diag(f"'{opts.action}' needs LOW and HIGH")])
        req = Request(opts, m)
        return _ACTIONS[opts.action](req, opts)
    except CompileError as e:  # also a precondition's map hook failing on a chunk
        print(e.diagnostics[0], file=sys.stderr)
        return BAD


def _range(req: Request, opts: GateOptions) -> int:
    span = covered_span(req.g, req.state())
    if span is None:
        print(f"{req.name}: nothing covered")
        return CLOSED
    print(f"{show(req.g, span[0])} {show(req.g, span[1])}")
    return OPEN


def _check(req: Request, opts: GateOptions) -> int:
    rc = req.status()
    print({OPEN: "open", CLOSED: "closed", PROCESSING: "being processed"}[rc])
    return rc


def _wait(req: Request, opts: GateOptions) -> int:
    deadline = time.monotonic() + opts.timeout
    while True:
        if req.status() == OPEN:
            print("open")
            return OPEN
        if time.monotonic() >= deadline:
            print("timed out")
            return TIMEOUT
        time.sleep(min(opts.poll, max(0.0, deadline - time.monotonic())))


def _marker(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _make(req: Request, opts: GateOptions, force: bool = False) -> int:
    wf = Path(opts.workflow_dir)
    with Lease(wf, f"gate {opts.action} {req.name}") as lease:
        work = _claim_when_free(req, opts, lease, force)
        if work is None:
            print("timed out")
            return TIMEOUT
        for w in work.waiting:
            print(f"waiting: {w}")
        if work.deferred:
            print(f"{work.deferred_line()}: ask again for the rest")
        made = rc = 0
        if work.targets:
            before = {t: _marker(wf / t) for t in work.targets}
            # Targets first: --quiet takes arguments of its own.
            extra = [*work.targets, "--quiet", "all"]
            if force:
                extra = [*work.targets, "--forcerun", *work.targets, "--quiet", "all"]
            rc = run_snakemake(str(wf), opts.profile, extra=extra, lease=lease)
            # Counted from the markers: a run that submitted nothing made nothing.
            made = sum(1 for t, was in before.items() if _marker(wf / t) not in (None, was))
    short = f" (of {len(work.targets)} asked for)" if made < len(work.targets) else ""
    print(f"made {plural(made, 'chunk')} of {req.name}{short}")
    if rc != 0:
        print(f"snakemake exited {rc}", file=sys.stderr)
        return ERROR
    return _check(req, opts)


def _claim_when_free(req: Request, opts: GateOptions, lease: Lease, force: bool) -> GateWork | None:
    """Plan the request around live runs and claim its chunks. A chunk a live run is
    making (cron's cycle, another request) is waited for, never made again: once no
    live run holds any chunk the request needs that is not yet made, the request goes
    on (and makes what that run failed to make). None: --timeout passed first."""
    wf = Path(opts.workflow_dir)
    deadline = time.monotonic() + opts.timeout
    told = False
    while True:
        work = GateWork()
        with planning(wf, lease) as held:
            planner = GatePlanner(req.m, req.now, slurm_jobs=running_slurm_jobs(), held=held.chunks)
            planner.plan(req.name, req.key, req.low, req.high, work, force=force)
            needed = planner.waited_on
            if not needed:
                lease.claim(req.m["build"], (), sorted(work.making))
                return work
        if not told:
            runs = sorted({held.chunks.get(c, "running") for c in needed})
            print(
                f"waiting for {plural(len(needed), 'chunk')} being made by a live run ({'; '.join(runs)})",
                flush=True,
            )
            told = True
        # Planned again after each wait: a chunk that run made is covered, one it
        # failed to make (or that it holds no more) is made here.
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(opts.poll, max(0.0, deadline - time.monotonic())))


def _remake(req: Request, opts: GateOptions) -> int:
    return _make(req, opts, force=True)


def _gaps(req: Request, opts: GateOptions) -> int:
    for a, b, status in coverage_runs(req.g, req.state(), req.low, req.high):
        if status not in ("done", "gap"):
            print(f"{show(req.g, a)} {show(req.g, b)} {status}")
    return OPEN


def _coverage(req: Request, opts: GateOptions) -> int:
    g, st = req.g, req.state()
    rng = (req.low, req.high) if req.low is not None else want_range(g, req.now)
    if rng is None:
        # No want: from the grid's origin to the axis's present. A serial axis has no
        # present but what is covered; a Carrington axis has the rotation under way.
        span = covered_span(g, st)
        ends = {"time": req.now, "carrington": math.ceil(time_to_carrington(req.now))}
        rng = (g["origin"], ends.get(g["axis"], span[1] if span else g["origin"]))
        if rng[0] >= rng[1]:
            print(f"{req.name}: nothing covered and no want: give LOW HIGH")
            return OPEN
    for a, b, status in coverage_runs(g, st, *rng):
        print(f"{show(req.g, a)} {show(req.g, b)} {status}")
    return OPEN


_ACTIONS = {
    "range": _range,
    "check": _check,
    "wait": _wait,
    "make": _make,
    "remake": _remake,
    "gaps": _gaps,
    "coverage": _coverage,
}
