"""The versioned resolved-model JSON written beside the generated Snakefile.

Ops commands and jobs read this, never the YAML again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from compiler import MANIFEST_VERSION, __version__
from compiler.core.diagnostics import Loc, fail
from compiler.model.gates import gate_json
from compiler.model.types import Workflow


def manifest_of(model: Workflow, build_id: str, created: str, now: float) -> dict:
    g = model.graph
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
            "inputs": model.inputs,
            "site": model.site.__dict__,
            "undeclared": model.undeclared,
            "retain_s": model.retain_s,
        },
        "graph": {
            "root": g.root,
            "entry": g.entry,
            "subs": [{"name": s.name, "file": s.file, "parent": s.parent} for s in g.subs],
            "table": {pos: {k: a.as_json() for k, a in acts} for pos, acts in g.table},
            "warnings": [str(d) for d in g.findings if d.severity == "warning"],
        },
        "steps": {
            s.name: {
                "command": s.command,
                "source": str(s.loc),
                "resources": s.resources.__dict__,
                "retries": s.retries,
                "growth": s.growth.__dict__,
                "states": list(s.states),
                "inputs": list(s.inputs),
                "outputs": list(s.outputs),
                "temp": list(s.temp),
            }
            for s in model.steps
        },
        "datasets": {"file": "datasets.tsv", "count": len(model.datasets)},
        "gates": {g.name: gate_json(g) for g in model.gates},
        "common_valid": model.common_valid,
        "groups": [{"name": n, "digest": d, "datasets": list(ids)} for n, d, ids in model.groups],
        "gates_file": model.gates_file,
    }


_FACETS_JSON = json.JSONEncoder(separators=(",", ":")).encode


def datasets_tsv(model: Workflow) -> str:
    """Every dataset: id, routing key, facets as JSON. Data, not Snakefile lines.
    (One encoder made once: json.dumps per row spent most of its time on its options.)"""
    enc = _FACETS_JSON
    return "".join(f"{d.id}\t{d.routing_key}\t{enc(dict(d.facets))}\n" for d in model.datasets)


def load_manifest(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        m = json.load(f)
    if m.get("manifest_version") != MANIFEST_VERSION:
        raise ValueError(
            f"{path}: manifest version {m.get('manifest_version')} is not {MANIFEST_VERSION}"
        )
    return m


def current_manifest(workflow_dir: str | Path) -> dict:
    """The current build's manifest, which ops commands read instead of the YAML.
    Raises CompileError (one line naming the file) when there is no usable build."""
    mpath = Path(workflow_dir) / ".padocc" / "current" / "manifest.json"
    try:
        return load_manifest(str(mpath))
    except (OSError, ValueError) as e:
        raise fail(Loc(str(mpath)), f"no compiled workflow here; run padocc-compile first ({e})") from None
