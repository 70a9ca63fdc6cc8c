"""Running one job's command, the same way for dataset steps and gate chunks."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def die_with_parent():
    """A preexec_fn: the command gets SIGKILL if its wrapper dies (even by kill -9),
    so a killed wrapper never leaves its step running beside the rerun of it."""
    parent = os.getpid()

    def arm() -> None:
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # not Linux: the open Engaged still covers it
            return
        if os.getppid() != parent:  # the wrapper died before the signal was armed
            os._exit(128 + signal.SIGKILL)

    return arm


def run_measured(command: str, cwd: Path, env: Mapping[str, str]) -> tuple[int, float, float]:
    """(exit status, wall seconds, peak memory MB) of `bash -c command`.

    SIGTERM (scancel, Snakemake, `padocc cancel`) ends the command's whole process
    group; the open Engaged line then tells the next compile to run it again."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "-c", command], cwd=cwd, env=dict(env), start_new_session=True,
        preexec_fn=die_with_parent(),  # noqa: PLW1509 (the wrapper has one thread)
    )  # fmt: skip
    signal.signal(signal.SIGTERM, _terminate)
    try:
        rc = proc.wait()
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    wall = time.monotonic() - t0
    return rc, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
