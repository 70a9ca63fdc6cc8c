"""A run's deadline (`padocc run --timeout`, a cycle's `snakemake_timeout`), or a
signal that stops padocc (SIGTERM from cron's `timeout`, SIGHUP, Ctrl-C): what is undone
when Snakemake is stopped.

Snakemake is killed with its whole process group (it ignores SIGTERM while it waits
on jobs), which ends its local jobs too. Each wrapper runs its command in a process
group of its own, which a wrapper killed with SIGKILL cannot end: those groups are
found first and killed after it (the command's own children with them). Its
SLURM jobs are not in that group: the run names them with a job name prefix of its
own (the plugin's `--slurm-jobname-prefix`), and they are `scancel`ed by that name.
Each step the deadline interrupted gets a `Cancelled` line (`reason=deadline`; after a
signal `reason=stopped`), so the next cycle takes it up at once, as the same attempt.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from compiler.core.attempts import DEADLINE_REASON
from compiler.core.statusfile import Stat, append_stats, position_of, read_history, utc_stamp
from compiler.runtime.build import BUILDS, pending


def kill_run(pgid: int) -> None:
    """SIGKILL Snakemake's process group and the process groups its local jobs' commands
    run in. The group is stopped first, so that no wrapper starts a command between
    the look and the kill."""
    try:
        os.killpg(pgid, signal.SIGSTOP)
    except ProcessLookupError:
        return  # the whole group has ended
    groups = _command_groups(pgid)
    os.killpg(pgid, signal.SIGKILL)
    for g in groups:
        try:
            os.killpg(g, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _command_groups(pgid: int) -> list[int]:
    """The process groups led by a child of a process of group `pgid` that leads its own
    session (proc.run_measured's start_new_session): the jobs' commands. Linux's /proc;
    elsewhere none (the commands then die with their wrapper's death signal only)."""
    procs = []  # (pid, ppid, pgrp, session)
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        procs.append((int(name), int(fields[1]), int(fields[2]), int(fields[3])))
    members = {pid for pid, _, pgrp, _ in procs if pgrp == pgid}
    return [pid for pid, ppid, _, sid in procs if ppid in members and sid == pid]


def uses_slurm(profile_path: Path) -> bool:
    """Does the profile run jobs through the SLURM executor?"""
    try:
        text = (profile_path / "config.yaml").read_text(encoding="utf-8")
    except OSError:
        return False
    m = re.search(r"^executor:\s*['\"]?([A-Za-z0-9_-]+)", text, re.M)
    return bool(m) and m[1] == "slurm"


def new_job_prefix() -> str:
    """A job name prefix no other run uses (the plugin allows [A-Za-z0-9_-], 50 chars)."""
    return f"padocc-{os.getpid()}-{secrets.token_hex(4)}"


def cancel_slurm_run(prefix: str) -> list[str]:
    """scancel every job of the run whose job names start with `prefix`; their ids."""
    if not shutil.which("squeue"):
        return []
    try:
        r = subprocess.run(["squeue", "-h", "-o", "%i|%j"], capture_output=True, text=True,
                           timeout=30, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        r = None
    if r is None or r.returncode != 0:
        print("padocc: squeue did not answer: the run's SLURM jobs were not cancelled",
              file=sys.stderr)  # fmt: skip
        return []
    ids = [
        jid
        for jid, _, name in (ln.strip().partition("|") for ln in r.stdout.splitlines())
        if jid and name.startswith(prefix + "_")
    ]
    if ids:
        subprocess.run(["scancel", *ids], check=False, timeout=60)
    return ids


def record_interrupted(
    workflow_dir: str, build: str, by: str, reason: str = DEADLINE_REASON
) -> list[str]:
    """A `Cancelled` line (`reason`: the deadline, or a stop) for each step of this
    build that was still engaged; the datasets it names."""
    try:
        names = list(pending(os.path.join(workflow_dir, BUILDS, build)))
    except OSError:
        return []
    status_dir = _status_dir(workflow_dir, build)
    out = []
    for ds in names:
        path = status_dir / f"{ds}.status"
        if not path.exists():
            continue
        eng = position_of(read_history(path).stats).open_engagement
        if eng is None or eng.params.get("build") != build:
            continue
        params = {"by": by, "reason": reason, "build": build,
                  "attempt": eng.params.get("attempt", ""),
                  "slurm_jobid": eng.params.get("slurm_jobid", "")}  # fmt: skip
        line = Stat(utc_stamp(), eng.workflow, eng.sub, eng.step, "Cancelled",
                    {k: v for k, v in params.items() if v})  # fmt: skip
        append_stats(path, ds, [line])
        out.append(ds)
    return out


def _status_dir(workflow_dir: str, build: str) -> Path:
    from compiler.runtime.build import manifest

    return Path(manifest(os.path.join(workflow_dir, BUILDS, build))["workflow"]["status_dir"])
