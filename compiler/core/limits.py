"""Input limits, checked at compile time at the line that sets the value, so that
nothing the file system, SLURM or Snakemake would refuse later gets through.
README "Guarantees" lists them."""

from __future__ import annotations

from compiler.core.diagnostics import Loc, fail

FILE_NAME_MAX = 255  # bytes in one path component (NAME_MAX on Linux file systems)
NAME_MAX_CHARS = 100  # workflow, step, state and gate names
GROUP_NAME_MAX = 200  # a flock group; complete_dir holds .tmp-NAME-<cycle id> while it moves
MAX_MEM_MB = 16 * 1024 * 1024  # 16 TB: more than any node SLURM schedules
MAX_RUNTIME_MIN = 366 * 24 * 60  # one year
MAX_CPUS = 4096
MAX_DURATION_S = 100 * 366 * 86400  # durations (retain, gate steps, clock lag): 100 years
# A graph's size: its walks (plan budgets, job chains) go one level a step, so a
# bound keeps them short (datasm's whole graph, every sub-workflow, has under 100).
MAX_STEPS = 500
MAX_GRAPH_ENTRIES = 1000
MAX_PARALLEL = 10_000  # a gate's parallelOK: chunks of it running at once


def check_name_length(name: str, loc: Loc, what: str) -> None:
    """Names become parts of file names (status files, logs, gate marks): bounded."""
    if len(name) > NAME_MAX_CHARS:
        raise fail(loc, f"{what} '{name}' is longer than {NAME_MAX_CHARS} characters")


def check_file_name(name: str, loc: Loc, what: str) -> None:
    """A file name made from user values must fit one path component."""
    if len(name.encode("utf-8", "surrogateescape")) > FILE_NAME_MAX:
        raise fail(loc, f"{what} makes the file name '{name}' longer than {FILE_NAME_MAX} bytes")


# `padocc why GATE LOW HIGH`: missing chunks looked at one by one (each asks its
# preconditions), and the runs of like chunks shown; the rest is summed up in a line.
WHY_CHUNKS = 1000
WHY_RUNS = 40
