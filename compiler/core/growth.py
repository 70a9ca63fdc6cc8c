"""Resources of an attempt, grown on each retry and capped (SHEPARD doubles memory).

In core so that jobs and the Snakefile compute it from the manifest's plain dicts
without importing the model (and its YAML loader)."""

from __future__ import annotations

import math
from collections.abc import Mapping


def grown(resources: Mapping, growth: Mapping, mem_n: int, time_n: int) -> dict:
    """Resources after memory grew `mem_n` times and the time limit `time_n` times."""
    return {
        "mem_mb": min(
            growth["mem_max"],
            math.ceil(resources["mem_mb"] * growth["mem_factor"] ** max(0, mem_n)),
        ),
        "runtime": min(
            growth["runtime_max"],
            math.ceil(resources["runtime"] * growth["runtime_factor"] ** max(0, time_n)),
        ),
        "cpus_per_task": resources["cpus_per_task"],
        "slurm_partition": resources["slurm_partition"],
        "slurm_account": resources["slurm_account"],
    }


def grown_resources(resources: Mapping, growth: Mapping, attempt: int) -> dict:
    """Resources for a given attempt (1-based) when every attempt before it failed in
    the ordinary way (both memory and time grow)."""
    return grown(resources, growth, attempt - 1, attempt - 1)


def grown_from_json(step: Mapping, attempt: int) -> dict:
    """`grown_resources` for a step or gate as the manifest stores it."""
    return grown_resources(step["resources"], step["growth"], attempt)


def grown_by(step: Mapping, grow: tuple[int, int]) -> dict:
    """`grown` for a step as the manifest stores it; `grow` is (memory, time) growths,
    as `core.attempts.Tries.grow` counts them from the status file."""
    return grown(step["resources"], step["growth"], grow[0], grow[1])
