"""What a Snakemake profile tells the compile about where jobs run: the executor and
how many jobs run at once. Used only to size jobs (render/sizing.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from compiler.core.diagnostics import CompileError
from compiler.load.yamlpos import load_yaml


@dataclass(frozen=True)
class Executor:
    kind: str = ""  # "local", "slurm" (any cluster executor), or "" when not known
    slots: int = 1  # jobs at once: the local cores, a cluster profile's `jobs`


# Snakemake's own default for `jobs` is unbounded on a cluster; a profile without it
# still queues far fewer than thousands at once in practice.
CLUSTER_SLOTS = 100


def executor_of(profile: Path) -> Executor:
    """The profile's executor and slots; an unreadable profile says nothing (Snakemake
    itself reports it when it starts)."""
    try:
        doc = load_yaml(profile / "config.yaml", str(profile / "config.yaml"))
    except (CompileError, OSError):
        return Executor()
    if not isinstance(doc, dict):
        return Executor()
    kind = str(doc.get("executor", "local"))
    if kind == "local":
        cores = doc.get("cores", "all")
        n = cores if isinstance(cores, int) and cores > 0 else os.cpu_count() or 1
        return Executor("local", n)
    jobs = doc.get("jobs")
    return Executor("slurm", jobs if isinstance(jobs, int) and jobs > 0 else CLUSTER_SLOTS)
