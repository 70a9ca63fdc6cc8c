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
        return p.resolve()
    return asset_dir("profiles") / name


def snakemake_cmd(
    workflow_dir: str, profile: str, snakefile: str | None = None, extra: tuple[str, ...] | list[str] = ()
) -> list[str]:
    wf = Path(workflow_dir).resolve()
    return [
        sys.executable, "-m", "snakemake",
        "--profile", str(profile_dir(profile)),
        "-s", str(Path(snakefile).resolve()) if snakefile else str(wf / "Snakefile"),
        "-d", str(wf),
        *extra,
    ]  # fmt: skip


def run_snakemake(
    workflow_dir: str,
    profile: str,
    snakefile: str | None = None,
    extra: tuple[str, ...] | list[str] = (),
    log=None,
    timeout: float | None = None,
) -> int:
    cmd = snakemake_cmd(workflow_dir, profile, snakefile, extra)
    try:
        # Started in the workflow directory: Snakemake reads target and --forcerun
        # paths relative to where it runs.
        return subprocess.run(
            cmd, cwd=workflow_dir, stdout=log, stderr=subprocess.STDOUT if log else None,
            timeout=timeout, check=False,
        ).returncode  # fmt: skip
    except subprocess.TimeoutExpired:
        return 124
