"""Run Snakemake on a compiled workflow, as a subprocess of the same Python."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import TextIO

from compiler.core.words import plural
from compiler.render.assets import asset_dir
from compiler.runtime.deadline import (
    cancel_slurm_run,
    kill_run,
    new_job_prefix,
    record_interrupted,
    uses_slurm,
)
from compiler.runtime.leases import LEASE_ENV, Lease

# `python -m` puts its working directory first on sys.path, and Snakemake's plugin
# discovery (pkgutil.iter_modules, once per plugin kind) then lists every
# subdirectory there: status/, data/, the work dirs, seconds at 100k files on every
# start. Safe-path mode leaves the working directory off, as the `snakemake` console
# script does. Set in the environment, it holds for Snakemake and every job it starts
# (the Snakefile sets it too, for a Snakemake started by hand).
SAFE_PATH = {"PYTHONSAFEPATH": "1"}


def user_profile_root() -> Path:
    """Where Snakemake looks first for `--profile NAME` (the user's config dir)."""
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "snakemake"


def profile_dir(name: str) -> Path:
    """A path to a profile; else a profile of that name where `snakemake --profile NAME`
    looks first (the user's, e.g. from `padocc profile install`); else padocc's own."""
    p = Path(name)
    if p.is_dir():
        return p.resolve()
    if "/" not in name:
        for root in (user_profile_root(), Path("/etc/xdg/snakemake")):
            if (root / name / "config.yaml").is_file():
                return root / name
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


SLURM_LOGS = ".padocc/slurm-logs"  # relative to the workflow directory


def run_snakemake(
    workflow_dir: str,
    profile: str,
    snakefile: str | None = None,
    extra: tuple[str, ...] | list[str] = (),
    log: TextIO | None = None,
    timeout: float | None = None,
    build: str | None = None,
    lease: Lease | None = None,
) -> int:
    """Snakemake's exit status; 124 if it ran past `timeout`. The deadline holds whether
    or not Snakemake prints anything: then its whole process group is killed
    (Snakemake ignores SIGTERM while it waits on jobs), its SLURM jobs are cancelled,
    and the steps of `build` it interrupted are recorded (runtime/deadline.py).

    With a `lease` (runtime/leases.py), Snakemake inherits it, so what the run holds
    stays held while its Snakemake lives, and runs with --nolock: the leases keep
    concurrent runs' outputs apart, and Snakemake's own lock directory, shared by
    every run in the workflow directory, is neither written nor cleared."""
    prefix = None
    slurm = uses_slurm(profile_dir(profile))
    if timeout is not None and slurm:
        prefix = new_job_prefix()
        extra = [*extra, "--slurm-jobname-prefix", prefix]
    if slurm:
        # Each run its own SLURM log directory. As it shuts down, the plugin removes
        # every empty directory under its log directory: a shared one loses the
        # directory an overlapping run's queued job is about to write its log in, and
        # that job fails as it starts ("Could not open stdout file", found by the
        # soak on SLURM). An emptied run directory goes with the same clean-up.
        run_id = lease.id if lease is not None else new_job_prefix()
        extra = [*extra, "--slurm-logdir", f"{SLURM_LOGS}/{run_id}"]
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
    pump, note = None, ""
    if log is not None:  # copied by a thread, so that the wait below keeps the deadline
        pump = threading.Thread(target=_copy, args=(proc.stdout, log), daemon=True)
        pump.start()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_run(proc.pid)  # its local jobs' commands too, children and all
        proc.wait()
        rc = 124
        ids = cancel_slurm_run(prefix) if prefix else []
        done = record_interrupted(workflow_dir, build, "padocc run") if build else []
        note = (
            f"padocc: deadline of {timeout:g} s reached: Snakemake stopped"
            + (f", SLURM jobs {' '.join(ids)} cancelled" if ids else "")
            + (f", interrupted steps of {plural(len(done), 'dataset')} recorded" if done else "")
        )
    if pump is not None:
        pump.join(timeout=10)
    if rc == 124 and note:
        print(note, file=log or sys.stderr)
    return rc


def _copy(src, dst: TextIO) -> None:
    for line in src:
        dst.write(line)


# Below this much free space a run is said to have failed for want of disk.
LOW_DISK_BYTES = 1024 * 1024


def cannot_run(workflow_dir: str) -> str | None:
    """Why Snakemake cannot run in this workflow, found before it starts (a lock file
    that is a directory, a full disk), or None. Said in one line instead of a
    traceback in Snakemake's log and `snakemake exited 1`."""
    padocc = Path(workflow_dir) / ".padocc"
    for name in ("run.lock", "cycle.lock"):
        p = padocc / name
        if (p.exists() or p.is_symlink()) and not p.is_file():
            what = "a directory" if p.is_dir() else "not a regular file"
            return f"{p}: error: the lock file is {what}; remove it"
    return disk_full(workflow_dir)


def disk_full(workflow_dir: str) -> str | None:
    """'DIR: error: no space left on device ...' when the workflow's file system is full."""
    try:
        st = os.statvfs(workflow_dir)
    except OSError:
        return None
    free = st.f_bavail * st.f_frsize
    if free < LOW_DISK_BYTES or (st.f_files and st.f_favail == 0):
        kind = "no free inodes" if st.f_files and st.f_favail == 0 else f"{free} bytes free"
        return f"{workflow_dir}: error: no space left on device ({kind})"
    return None


def failed_because(workflow_dir: str, rc: int) -> str:
    """The one line said when Snakemake exits non-zero: why, when it can be told."""
    why = cannot_run(workflow_dir) if rc else None
    return f"{why} (snakemake exited {rc})" if why else f"snakemake exited {rc}"
