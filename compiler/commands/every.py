"""`padocc cycle --conf C --every 10m`: cycles on an interval from one long-lived
process, for operators who want that instead of a cron line.

Each cycle is its own `padocc cycle` process, started on the interval whatever the
previous ones are doing, exactly as cron starts them: a cycle still busy with long
jobs does not hold back the next one, which runs what no live run holds (leases,
runtime/leases.py). A tick missed (the machine asleep) is not made up: the next
cycle starts at once and the interval counts from there. Quiet while all is well,
like the cycles themselves; a cycle that ends non-zero is said in one line.
SIGTERM or SIGINT: no new cycle starts; the running cycle processes get SIGTERM and
are waited for. Each stops its Snakemake and jobs (SLURM's too) and records the steps
it interrupted (`Cancelled reason=stopped`, not an attempt), which the next cycle
runs again (runtime/snakemake_run.py).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from compiler.commands.cycle import load_config
from compiler.core.diagnostics import CompileError, Loc, fail
from compiler.model.axes import parse_duration_s

MIN_EVERY_S = 10  # a shorter interval only starts cycles that find nothing new
MAX_CYCLES = 1_000_000


@dataclass(frozen=True)
class EveryOptions:
    conf: str
    every: str
    cycles: int | None = None  # stop after this many (tests, a bounded catch-up)
    autolog: bool = False
    quiet: bool = False  # passed on to each cycle


def run(opts: EveryOptions) -> int:
    try:
        every = parse_duration_s(opts.every, Loc("--every"))
        if every < MIN_EVERY_S:
            raise fail(
                Loc("--every"), f"an interval of at least {MIN_EVERY_S}s, not '{opts.every}'"
            )
        if opts.cycles is not None and not 1 <= opts.cycles <= MAX_CYCLES:
            raise fail(Loc("--cycles"), f"must be between 1 and {MAX_CYCLES}")
        load_config(opts.conf)  # a bad config is said once, now, not every cycle
    except CompileError as e:
        print(e.diagnostics[0], file=sys.stderr)
        return 2
    argv = [sys.executable, "-m", "compiler", "cycle", "--conf", opts.conf]
    argv += ["--autolog"] if opts.autolog else []
    argv += ["--quiet"] if opts.quiet else []
    stopping: list[int] = []

    def stop(signum: int, _frame) -> None:
        stopping.append(signum)

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    running: list[subprocess.Popen] = []
    failed = started = 0
    next_at = time.monotonic()
    try:
        while not stopping:
            for p in [p for p in running if p.poll() is not None]:
                running.remove(p)
                failed += _said(p)
            if opts.cycles is not None and started >= opts.cycles:
                if not running:
                    break
            elif time.monotonic() >= next_at:
                running.append(subprocess.Popen(argv))
                started += 1
                next_at = max(next_at + every, time.monotonic())
            time.sleep(min(1.0, max(0.05, next_at - time.monotonic())))
        stopped = []
        for p in running:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                stopped.append(p)
        for p in running:
            p.wait()
            if p not in stopped:  # ended by itself, not by our stop
                failed += _said(p)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 1 if failed else 0


def _said(p: subprocess.Popen) -> int:
    """1 (and one line) for a cycle that ended non-zero, else 0."""
    if p.returncode == 0:
        return 0
    print(f"padocc cycle --every: a cycle (pid {p.pid}) ended with status {p.returncode}",
          file=sys.stderr)  # fmt: skip
    return 1
