"""Several steps in one job.

Steps with the same resources (and the same growth on retry) form a job class. A job
runs its first step, then goes on with the next step routing picks while that step
is of the same class, up to `steps_per_job` steps: short steps then cost one job, not
one scheduler round trip each. A job's time limit covers the longest run of its
class that can follow its first step (its `chain`), so a chained step never runs
into the limit a single step would have had.
"""

from __future__ import annotations

from compiler.core.routing import run_successors
from compiler.model.types import Graph, Step


def job_classes(steps: tuple[Step, ...]) -> dict[str, int]:
    """Step name -> class number; equal numbers share resources and growth."""
    seen: dict[tuple, int] = {}
    out = {}
    for s in steps:
        sig = (tuple(sorted(s.resources.__dict__.items())), tuple(sorted(s.growth.__dict__.items())))
        out[s.name] = seen.setdefault(sig, len(seen))
    return out


def chain_lengths(
    graph: Graph, steps: tuple[Step, ...], keys: tuple[str, ...], per_job: int
) -> dict[str, int]:
    """Step name -> the most steps a job starting at it may run (1..per_job): the
    longest same-class path from it over every routing key; a same-class loop counts
    as per_job (bounded by the job, not the graph)."""
    classes = job_classes(steps)
    if per_job <= 1:
        return {s.name: 1 for s in steps}
    table = graph.table_json()
    keys = tuple(sorted(set(keys) | {""}))
    memo: dict[tuple[str, str], int] = {}
    active: set[tuple[str, str]] = set()

    def longest(node: tuple[str, str]) -> int:
        if node in memo:
            return memo[node]
        if node in active:
            return per_job  # a loop within the class
        active.add(node)
        best = 0
        for nxt in run_successors(table, node[0], node[1], keys):
            if classes.get(nxt[1]) == classes.get(node[1]):
                best = max(best, longest(nxt))
        active.discard(node)
        memo[node] = min(per_job, 1 + best)
        return memo[node]

    out = {s.name: 1 for s in steps}
    subs = {s.name for s in graph.subs} | {graph.root}
    for sub in subs:
        for s in steps:
            if any(pos.startswith(f"{sub}/{s.name}:") for pos in table):
                out[s.name] = max(out[s.name], longest((sub, s.name)))
    return out
