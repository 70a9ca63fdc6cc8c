"""Run Snakemake on a compiled workflow, as a subprocess of the same Python."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from compiler.render.assets import asset_dir
from compiler.runtime.leases import LEASE_ENV, Lease

# `python -m` puts its working directory first on sys.path, and Snakemake's plugin
# discovery (pkgutil.iter_modules, once per plugin kind) then lists every
# subdirectory there: status/, data/, the work dirs, seconds at 100k files on every
# start. Safe-path mode leaves the working directory off, as the `snakemake` console
# script does. Set in the environment, it holds for Snakemake and every job it starts
# (the Snakefile sets it too, for a Snakemake started by hand).
SAFE_PATH = {"PYTHONSAFEPATH": "1"}


def profile_dir(name: str) -> Path:
    """A profile shipped with padocc ('local', 'slurm'), or a path to one."""
    p = Path(name)
    if p.is_dir():
        return p.resolve()
    return asset_dir("profiles") / name


def snakemake_cmd(
    workflow_dir: str,
    profile: str,
    snakefile: str | None = None,
    extra: tuple[str, ...] | list[str] = (),
) -> list[str]:
    wf = Path(workflow_dir).resolve()
    return [
        sys.executable, "-m", "compiler.runtime.snakemake_main",
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
    log: TextIO | None = None,
    timeout: float | None = None,
    lease: Lease | None = None,
) -> int:
    """Snakemake's exit status; 124 if it ran past `timeout` (then its whole process
    group is killed: Snakemake ignores SIGTERM while it waits on jobs).

    With a `lease` (runtime/leases.py), Snakemake inherits it, so what the run holds
    stays held while its Snakemake lives, and runs with --nolock: the leases keep
    concurrent runs' outputs apart, and Snakemake's own lock directory, shared by
    every run in the workflow directory, is neither written nor cleared."""
    env = {**os.environ, **SAFE_PATH}
    if lease is not None:
        extra = ["--nolock", *extra]
        env[LEASE_ENV] = lease.id
    cmd = snakemake_cmd(workflow_dir, profile, snakefile, extra)
    # Started in the workflow directory: Snakemake reads target and --forcerun paths
    # relative to where it runs.
    proc = subprocess.Popen(
        cmd, cwd=workflow_dir, start_new_session=True, text=True, env=env,
        pass_fds=lease.fds() if lease is not None else (),
        stdout=subprocess.PIPE if log else None, stderr=subprocess.STDOUT if log else None,
    )  # fmt: skip
    deadline = None if timeout is None else time.monotonic() + timeout
    if log is not None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if deadline and time.monotonic() > deadline:
                break
    try:
        return proc.wait(
            timeout=None if deadline is None else max(0.0, deadline - time.monotonic())
        )
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return 124
