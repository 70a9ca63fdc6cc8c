"""`padocc cancel WORKFLOW_DIR [--dataset ID ...]`: stop in-flight jobs and record it.

SLURM jobs are cancelled with one `scancel`; local ones get SIGTERM. Each gets a
`Cancelled` STAT line for its build, so the rest of that run leaves the dataset
alone and the next cycle starts the step again cleanly.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from compiler.core.diagnostics import CompileError
from compiler.core.statusfile import Stat, append_stats, position_of, read_history, utc_stamp
from compiler.render.manifest import current_manifest


@dataclass(frozen=True)
class CancelOptions:
    workflow_dir: str = "."
    datasets: tuple[str, ...] = field(default_factory=tuple)


def run(opts: CancelOptions) -> int:
    try:
        m = current_manifest(opts.workflow_dir)
    except CompileError as e:
        print(e.diagnostics[0], file=sys.stderr)
        return 2
    status_dir = Path(m["workflow"]["status_dir"])
    if opts.datasets:
        files = [status_dir / f"{d}.status" for d in opts.datasets]
        missing = [f for f in files if not f.exists()]
        if missing:
            print(f"{missing[0]}: error: no status file for this dataset", file=sys.stderr)
            return 2
    else:
        files = sorted(status_dir.glob("*.status")) if status_dir.is_dir() else []
    found = []
    for f in files:
        hist = read_history(f)
        eng = position_of(hist.stats).open_engagement
        if eng is not None:
            found.append((f, hist.dataset_id or f.stem, eng))
    jobids = sorted({e.params["slurm_jobid"] for _, _, e in found if e.params.get("slurm_jobid")})
    if jobids:
        if not shutil.which("scancel"):
            print("error: SLURM jobs are in flight but scancel is not on PATH", file=sys.stderr)
            return 1
        subprocess.run(["scancel", *jobids], check=False)
    host = socket.gethostname()
    for f, ds, eng in found:
        if not eng.params.get("slurm_jobid") and eng.params.get("host") == host:
            try:
                os.kill(int(eng.params.get("pid", "0")), signal.SIGTERM)
            except (ValueError, ProcessLookupError, PermissionError):
                pass
        params = {
            "by": "padocc cancel",
            "build": eng.params.get("build", ""),
            "slurm_jobid": eng.params.get("slurm_jobid", ""),
        }
        append_stats(
            f,
            ds,
            [
                Stat(
                    utc_stamp(),
                    eng.workflow,
                    eng.sub,
                    eng.step,
                    "Cancelled",
                    {k: v for k, v in params.items() if v},
                )
            ],
        )
        print(
            f"cancelled {ds} {eng.step}"
            + (f" (SLURM job {params['slurm_jobid']})" if params.get("slurm_jobid") else "")
        )
    if not found:
        print("nothing in flight")
    return 0
