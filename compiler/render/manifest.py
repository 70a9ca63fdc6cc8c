"""The versioned resolved-model JSON written beside the generated Snakefile.

Ops commands and jobs read this, never the YAML again.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from compiler import MANIFEST_VERSION, __version__
from compiler.core.diagnostics import Loc, fail
from compiler.core.manifestio import load_manifest
from compiler.model.gates import gate_json
from compiler.model.types import Step, Workflow


def step_digest(s: Step) -> str:
    """What a step's outputs depend on: command, inputs, outputs and states. The
    catalog keeps it per job, so `padocc catalog stale` finds outputs of an old version.
    (Resources and retries are left out: they change how a step runs, not what it makes.)"""
    what = {"command": s.command, "inputs": list(s.inputs), "outputs": list(s.outputs),
            "states": list(s.states)}  # fmt: skip
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def manifest_of(model: Workflow, build_id: str, created: str, now: float) -> dict:
    g = model.graph
    jobs = {name: (cls, chain) for name, cls, chain in model.jobs}
    return {
        "manifest_version": MANIFEST_VERSION,
        "padocc_version": __version__,
        "build": build_id,
        "created": created,
        "now": now,
        "python": sys.executable,
        "workflow": {
            "name": model.name,
            "dir": model.dir,
            "source_file": model.source_file,
            "status_dir": model.status_dir,
            "work_dir": model.work_dir,
            "max_visits": model.max_visits,
            "max_steps_per_cycle": model.max_steps_per_cycle,
            "steps_per_job": model.steps_per_job,
            "datasets_per_job": model.datasets_per_job,
            "inputs": model.inputs,
            "site": model.site.__dict__,
            "undeclared": model.undeclared,
            "retain_s": model.retain_s,
        },
        "graph": {
            "root": g.root,
            "entry": g.entry,
            "subs": [{"name": s.name, "file": s.file, "parent": s.parent} for s in g.subs],
            "table": g.table_json(),
            "warnings": [str(d) for d in g.findings if d.severity == "warning"],
        },
        "steps": {
            s.name: {
                "command": s.command,
                "source": str(s.loc),
                "resources": s.resources.__dict__,
                "retries": s.retries,
                "growth": s.growth.__dict__,
                "retry_delay": s.retry_delay.__dict__,
                "states": list(s.states),
                "inputs": list(s.inputs),
                "outputs": list(s.outputs),
                "temp": list(s.temp),
                "digest": step_digest(s),
                "job_class": jobs[s.name][0],
                "chain": jobs[s.name][1],
            }
            for s in model.steps
        },
        "datasets": {"file": "datasets.tsv", "count": len(model.datasets)},
        "gates": {g.name: gate_json(g) for g in model.gates},
        "common_valid": model.common_valid,
        "groups": [{"name": n, "digest": d, "datasets": list(ids)} for n, d, ids in model.groups],
        # out of the cycle, still open to manual commands (padocc block --group ...)
        "quarantined_groups": {n: list(ids) for n, ids in model.quarantined},
        "gates_file": model.gates_file,
    }


_FACETS_JSON = json.JSONEncoder(separators=(",", ":")).encode


def datasets_tsv(model: Workflow) -> str:
    """Every dataset: id, routing key, facets as JSON. Data, not Snakefile lines.
    (One encoder made once: json.dumps per row spent most of its time on its options.)"""
    enc = _FACETS_JSON
    return "".join(f"{d.id}\t{d.routing_key}\t{enc(dict(d.facets))}\n" for d in model.datasets)


def current_manifest(workflow_dir: str | Path) -> dict:
    """The current build's manifest, which ops commands read instead of the YAML.
    Raises CompileError (one line naming the file) when there is no usable build."""
    mpath = Path(workflow_dir) / ".padocc" / "current" / "manifest.json"
    try:
        return load_manifest(str(mpath))
    except FileNotFoundError as e:
        raise fail(Loc(str(mpath)), f"no compiled workflow here; run padocc-compile first ({e})") from None
    except (OSError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) else e
        raise fail(Loc(str(mpath)), f"unreadable manifest ({why}); run padocc-compile again") from None
