"""Running one job's command, the same way for dataset steps and gate chunks."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from compiler.core.shell import shell_argv

_PR_SET_PDEATHSIG = 1


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


@functools.cache
def _setpriv() -> str | None:
    """util-linux's setpriv, which sets the parent-death signal and execs the command,
    if it is new enough to know --pdeathsig (util-linux 2.33)."""
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        out = subprocess.run(
            [path, "--help"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "--pdeathsig" in out.stdout else None


@functools.cache
def _prctl():
    """libc's prctl, looked up once in the wrapper (not in every forked child, where
    importing ctypes cost tens of ms a step); None where there is none."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent():
    """A preexec_fn: the command gets SIGKILL if its wrapper dies (even by kill -9),
    so a killed wrapper never leaves its step running beside the rerun of it."""
    parent = os.getpid()
    prctl = _prctl()

    def arm() -> None:
        if prctl is None:  # not Linux: the open Engaged still covers it
            return
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the wrapper died before the signal was armed
            os._exit(128 + signal.SIGKILL)

    return arm


@functools.cache
def _on_sigterm() -> None:
    """SIGTERM raises SystemExit in the wrapper (set once: the handler stays)."""
    signal.signal(signal.SIGTERM, _terminate)


def run_measured(command: str, cwd: Path, env: Mapping[str, str]) -> tuple[int, float, float]:
    """(exit status, wall seconds, peak memory MB) of the command (see shell_argv), with the
    wrapper's environment plus `env`.

    SIGTERM (scancel, Snakemake, `padocc cancel`) ends the command's whole process
    group; the open Engaged line then tells the next compile to run it again."""
    t0 = time.monotonic()
    # Set in our own environment (the wrapper has one thread, and the next command
    # sets its own values): Popen(env=...) would encode every variable on every call.
    os.environ.update(env)
    setpriv = _setpriv()
    if setpriv:  # no preexec_fn: Python can vfork, a few ms less a step
        argv = [setpriv, "--pdeathsig", "KILL", *shell_argv(command)]
        proc = subprocess.Popen(argv, cwd=cwd, start_new_session=True)
    else:
        proc = subprocess.Popen(
            shell_argv(command), cwd=cwd, start_new_session=True,
            preexec_fn=die_with_parent(),  # noqa: PLW1509 (the wrapper has one thread)
        )  # fmt: skip
    _on_sigterm()
    try:
        # wait4: this command's own peak memory (RUSAGE_CHILDREN would be the largest
        # of every command this job has run, steps before included).
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    return rc, wall, usage.ru_maxrss / 1024
