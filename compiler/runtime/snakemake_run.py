"""Run Snakemake on a compiled workflow, as a subprocess of the same Python."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from compiler.render.assets import asset_dir


def profile_dir(name: str) -> Path:
    """A profile shipped with padocc ('local', 'slurm'), or a path to one."""
    p = Path(name)
    if p.is_dir():
        return p
    return asset_dir("profiles") / name


def snakemake_cmd(
    workflow_dir: str, profile: str, snakefile: str | None = None, extra: list[str] = ()
) -> list[str]:
    snakefile = snakefile or str(Path(workflow_dir) / "Snakefile")
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        str(profile_dir(profile)),
        "-s",
        snakefile,
        "-d",
        workflow_dir,
        *extra,
    ]


def run_snakemake(
    workflow_dir: str,
    profile: str,
    snakefile: str | None = None,
    extra: list[str] = (),
    log=None,
    timeout: float | None = None,
) -> int:
    cmd = snakemake_cmd(workflow_dir, profile, snakefile, extra)
    try:
        return subprocess.run(
            cmd, stdout=log, stderr=subprocess.STDOUT if log else None, timeout=timeout, check=False
        ).returncode
    except subprocess.TimeoutExpired:
        return 124
