"""Resources of an attempt, grown on each retry and capped (SHEPARD doubles memory).

In core so that jobs and the Snakefile compute it from the manifest's plain dicts
without importing the model (and its YAML loader)."""

from __future__ import annotations

import math
from collections.abc import Mapping


def grown_resources(resources: Mapping, growth: Mapping, attempt: int) -> dict:
    """Resources for a given attempt (1-based)."""
    n = max(0, attempt - 1)
    return {
        "mem_mb": min(growth["mem_max"], math.ceil(resources["mem_mb"] * growth["mem_factor"] ** n)),
        "runtime": min(
            growth["runtime_max"], math.ceil(resources["runtime"] * growth["runtime_factor"] ** n)
        ),
        "cpus_per_task": resources["cpus_per_task"],
        "slurm_partition": resources["slurm_partition"],
        "slurm_account": resources["slurm_account"],
    }


def grown_from_json(step: Mapping, attempt: int) -> dict:
    """`grown_resources` for a step or gate as the manifest stores it."""
    return grown_resources(step["resources"], step["growth"], attempt)
