"""Test-only pauses: with PADOCC_TEST_PAUSE_AT=<stage>, a command stops at that named
stage, says so on stderr, and waits to be killed or resumed (SIGUSR1). Tests kill a
command, or interleave two, at an exact point, under any load, with no timing."""

from __future__ import annotations

import os
import signal
import sys

PAUSE_ENV = "PADOCC_TEST_PAUSE_AT"
_PAUSED: set[str] = set()  # a stage met again (a loop) pauses once: the test resumes it once


def pause_at(stage: str) -> None:
    if os.environ.get(PAUSE_ENV) != stage or stage in _PAUSED:
        return
    _PAUSED.add(stage)
    # Blocked before saying so: a SIGUSR1 sent as soon as the line is read is kept.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    print(f"padocc-test: paused at {stage}", file=sys.stderr, flush=True)
    signal.sigwait({signal.SIGUSR1})  # resumed by SIGUSR1, or killed here
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
