"""Run Snakemake on a compiled workflow, as a subprocess of the same Python."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from compiler.core.attempts import DEADLINE_REASON, STOPPED_REASON
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
    """Snakemake's exit status; 124 if it ran past `timeout`, 128+N if signal N (one
    of STOP_SIGNALS) stopped padocc. The deadline holds whether or not Snakemake prints
    anything. At either, its whole process group is killed (Snakemake ignores SIGTERM
    while it waits on jobs), its SLURM jobs are cancelled, and the steps of `build` it
    interrupted are recorded (runtime/deadline.py).

    With a `lease` (runtime/leases.py), Snakemake inherits it, so what the run holds
    stays held while its Snakemake lives, and runs with --nolock: the leases keep
    concurrent runs' outputs apart, and Snakemake's own lock directory, shared by
    every run in the workflow directory, is neither written nor cleared."""
    slurm = uses_slurm(profile_dir(profile))
    # SLURM jobs are not in Snakemake's process group: the run names them with a prefix
    # of its own, so a deadline or a signal can scancel exactly them.
    prefix = new_job_prefix() if slurm else None
    if slurm:
        extra = [*extra, "--slurm-jobname-prefix", prefix]
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
    # relative to where it runs. In a session of its own, so that a terminal's Ctrl-C
    # reaches padocc only, and padocc stops Snakemake the one way it always does.
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
        with _signals_stop():
            rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        rc = 124
        note = f"deadline of {timeout:g} s reached"
        note += _stop(proc, prefix, workflow_dir, build, "padocc run", DEADLINE_REASON)
    except _Stopped as e:
        name = signal.Signals(e.signum).name
        rc = 128 + e.signum
        note = f"{name} received" + _stop(proc, prefix, workflow_dir, build, name, STOPPED_REASON)
    if pump is not None:
        pump.join(timeout=10)
    if note:
        print(f"padocc: {note}", file=log or sys.stderr)
    return rc


# The signals that stop a run: cron's `timeout` and `kill` (SIGTERM), a closed terminal
# (SIGHUP) and Ctrl-C. Without this, padocc died and left its Snakemake running on in
# a session of its own, still starting jobs with nobody to stop them.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _signals_stop() -> Iterator[None]:
    """While Snakemake runs, a stop signal raises _Stopped (main thread only: a signal
    handler cannot be set elsewhere); the previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise _Stopped(signum)

    before = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def _stop(
    proc: subprocess.Popen, prefix: str | None, workflow_dir: str, build: str | None,
    by: str, reason: str,
) -> str:  # fmt: skip
    """Stop Snakemake with its process group (it ignores SIGTERM while it waits on
    jobs), cancel its SLURM jobs and record the steps it interrupted: what was done."""
    kill_run(proc.pid)  # its local jobs' commands too, children and all
    proc.wait()
    ids = cancel_slurm_run(prefix) if prefix else []
    done = record_interrupted(workflow_dir, build, by, reason) if build else []
    return (
        ": Snakemake stopped"
        + (f", SLURM jobs {' '.join(ids)} cancelled" if ids else "")
        + (f", interrupted steps of {plural(len(done), 'dataset')} recorded" if done else "")
    )


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
    if rc - 128 in STOP_SIGNALS:
        return f"stopped by {signal.Signals(rc - 128).name}"
    why = cannot_run(workflow_dir) if rc else None
    return f"{why} (snakemake exited {rc})" if why else f"snakemake exited {rc}"
