"""The job wrapper for one gate chunk: STAT lines first, then the coverage marker."""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from compiler.core.diagnostics import Loc
from compiler.core.statusfile import Stat, append_stats, utc_stamp
from compiler.model.axes import fmt_value, untag
from compiler.model.templates import parse_template
from compiler.render.coverage import gate_status_path, marker_path
from compiler.render.covmap import note_made
from compiler.runtime import provenance
from compiler.runtime.build import dataset_row, manifest
from compiler.runtime.proc import run_measured


@dataclass(frozen=True)
class ChunkRequest:
    build_dir: str
    gate: str
    low: str  # tags, as in the marker's name
    high: str
    key: str = ""
    attempt: int = 1


def run_chunk(req: ChunkRequest) -> int:
    m = manifest(req.build_dir)
    wf = m["workflow"]
    g = m["gates"][req.gate]
    lo, hi = untag(g["axis"], req.low), untag(g["axis"], req.high)
    chunk = f"{req.low}__{req.high}"
    status = gate_status_path(wf["status_dir"], req.gate, req.key)
    ident = f"{req.gate}@{req.key}" if req.key else req.gate
    facets = dataset_row(req.build_dir, req.key)[1] if req.key else {}
    workdir = (
        Path(wf["work_dir"]) / "gates" / req.gate / req.key
        if req.key
        else Path(wf["work_dir"]) / "gates" / req.gate
    )
    workdir.mkdir(parents=True, exist_ok=True)
    values = {
        **facets,
        "low": fmt_value(g["axis"], lo),
        "high": fmt_value(g["axis"], hi),
        "gate": req.gate,
        "python": m["python"],
        "workflow_dir": wf["dir"],
        "workdir": str(workdir),
        "attempt": str(req.attempt),
        "dataset": req.key,
    }
    command = parse_template(g["command"], Loc(g["source"]), values, "command", shell=True).fill(
        values, shlex.quote
    )
    jobid = os.environ.get("SLURM_JOB_ID", "")
    base = {"low": values["low"], "high": values["high"], "chunk": chunk}

    def stat(state: str, **params) -> Stat:
        p = {**base, **{k: v for k, v in params.items() if v != ""}}
        return Stat(utc_stamp(), wf["name"], req.gate, g["task"], state, p)

    append_stats(
        status,
        ident,
        [
            stat(
                "Engaged",
                host=socket.gethostname(),
                pid=os.getpid(),
                attempt=req.attempt,
                slurm_jobid=jobid,
                build=m["build"],
            )
        ],
    )
    env = {"PADOCC_GATE": req.gate, "PADOCC_LOW": values["low"], "PADOCC_HIGH": values["high"]}
    rc, wall, maxrss = run_measured(command, workdir, env)
    measured = dict(
        exit=rc,
        wall=f"{wall:.1f}",
        maxrss_mb=f"{maxrss:.0f}",
        attempt=req.attempt,
        slurm_jobid=jobid,
    )
    if rc != 0:
        state = "Retry" if req.attempt <= g["retries"] else "Fail"
        append_stats(status, ident, [stat(state, **measured)])
        print(
            f"padocc: {req.gate} {chunk} failed with exit {rc} (attempt {req.attempt})",
            file=sys.stderr,
        )
        provenance.after_chunk(req)  # the job's row in the catalog
        return 1
    append_stats(status, ident, [stat("Pass", **measured)])
    # The marker is written after the STAT line, and atomically.
    out = Path(wf["dir"]) / marker_path(req.gate, chunk, req.key)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(
            {
                "gate": req.gate,
                "low": values["low"],
                "high": values["high"],
                "key": req.key,
                "build": m["build"],
                "made": utc_stamp(),
            },
            f,
        )
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    note_made(wf["dir"], req.gate, req.key, chunk)  # the coverage map's update
    provenance.after_chunk(req)  # the job's row, and its marker as its output
    return 0
