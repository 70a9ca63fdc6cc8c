"""`padocc-compile [WORKFLOW_DIR]`: YAML -> checked model -> plan -> generated Snakefile."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from compiler.core.diagnostics import CompileError
from compiler.model.resolve import build_model
from compiler.render.manifest import manifest_of
from compiler.render.plan import make_plan
from compiler.render.render import render_build
from compiler.render.write import write_build


@dataclass(frozen=True)
class CompileOptions:
    workflow_dir: str = "."
    check_only: bool = False
    quiet: bool = False


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
    now = datetime.now(UTC)
    build = new_build_id(now, model.dir)
    manifest = manifest_of(model, build, now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    plan = make_plan(model, manifest)
    if not opts.quiet:
        for w in plan.warnings:
            print(f"warning: {w}", file=sys.stderr)
    files = render_build(model, manifest, plan)
    write_build(wf_dir, build, files)
    if not opts.quiet:
        counts = ", ".join(f"{v} {k}" for k, v in sorted(plan.counts.items()))
        print(
            f"compiled {model.name}: {len(model.datasets)} datasets ({counts or 'none'}) "
            f"-> {wf_dir / 'Snakefile'} (build {build})"
        )
    return 0
