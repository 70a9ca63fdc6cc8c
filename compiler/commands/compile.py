"""`padocc-compile [WORKFLOW_DIR]`: YAML -> checked model -> plan -> generated Snakefile."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from compiler.core.diagnostics import CompileError, Loc
from compiler.model.axes import parse_time
from compiler.model.resolve import build_model
from compiler.render.gateplan import GatePlanner, GateWork
from compiler.render.manifest import manifest_of
from compiler.render.plan import make_plan, running_slurm_jobs
from compiler.render.render import render_build
from compiler.render.write import write_build


@dataclass(frozen=True)
class CompileOptions:
    workflow_dir: str = "."
    check_only: bool = False
    quiet: bool = False
    now: str | None = None  # UTC time taken as now; replays and tests of clock gates


def new_build_id(now: datetime, seed: str) -> str:
    digest = hashlib.sha256(f"{seed}{now.timestamp()}".encode()).hexdigest()[:8]
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + digest


def run(opts: CompileOptions) -> int:
    wf_dir = Path(opts.workflow_dir)
    try:
        model = build_model(wf_dir, opts.workflow_dir.rstrip("/") or ".")
    except CompileError as e:
        # Errors only, unless asked to --check: each is one line at the user's file:line.
        for d in e.diagnostics:
            if d.severity == "error" or opts.check_only:
                print(d, file=sys.stderr)
        return 2
    if not opts.quiet:
        for d in model.graph.findings:
            print(d, file=sys.stderr)
    if opts.check_only:
        if not opts.quiet:
            print(
                f"{model.source_file}: ok: {len(model.datasets)} datasets, {len(model.steps)} steps"
            )
        return 0
    wall_now = datetime.now(UTC)
    try:
        now = parse_time(opts.now, Loc("--now")) if opts.now else int(wall_now.timestamp())
    except CompileError as e:
        print(e.diagnostics[0], file=sys.stderr)
        return 2
    build = new_build_id(wall_now, model.dir)
    manifest = manifest_of(model, build, wall_now.strftime("%Y-%m-%dT%H:%M:%SZ"), now)
    plan = make_plan(model, manifest)
    gate_work = GateWork()
    if model.gates:
        keys = [d.id for d in model.datasets]
        planner = GatePlanner(
            manifest,
            now,
            keys={g.name: keys for g in model.gates if g.keyed},
            facets={d.id: d.facet_dict() for d in model.datasets}
            if any(g.keyed for g in model.gates)
            else {},
            slurm_jobs=running_slurm_jobs(),
        )
        gate_work = planner.plan_all()
        gate_work.status_coverage = {
            f"{n}@{k}": st.covered_by_status
            for (n, k), st in planner._states.items()
            if st.covered_by_status
        }
    if not opts.quiet:
        for w in plan.warnings + gate_work.warnings:
            print(f"warning: {w}", file=sys.stderr)
    files = render_build(model, manifest, plan, gate_work)
    write_build(wf_dir, build, files)
    if not opts.quiet:
        counts = ", ".join(f"{v} {k}" for k, v in sorted(plan.counts.items()))
        line = f"compiled {model.name}: {len(model.datasets)} datasets ({counts or 'none'})"
        if model.gates:
            line += (
                f", {len(gate_work.targets)} gate chunks to make, {len(gate_work.waiting)} waiting"
            )
        print(f"{line} -> {wf_dir / 'Snakefile'} (build {build})")
    return 0
