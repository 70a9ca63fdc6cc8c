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
        sig = (
            tuple(sorted(s.resources.__dict__.items())),
            tuple(sorted(s.growth.__dict__.items())),
        )
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
    memo: dict[tuple[tuple[str, str], int], int] = {}
    active: set[tuple[str, str]] = set()
    succ: dict[tuple[str, str], list[tuple[str, str]]] = {}

    def longest(node: tuple[str, str], budget: int) -> int:
        # At most `budget` steps are asked for: the search goes no deeper than
        # per_job, whatever the length of the graph (a chain of 8,000 steps).
        if (node, budget) in memo:
            return memo[(node, budget)]
        if node in active or budget <= 1:
            return budget  # a loop within the class runs until the job's bound
        active.add(node)
        best = 0
        if node not in succ:  # each look-up scans the table: once a node
            succ[node] = run_successors(table, node[0], node[1], keys)
        for nxt in succ[node]:
            if classes.get(nxt[1]) == classes.get(node[1]):
                best = max(best, longest(nxt, budget - 1))
        active.discard(node)
        memo[(node, budget)] = min(budget, 1 + best)
        return memo[(node, budget)]

    out = {s.name: 1 for s in steps}
    subs = {s.name for s in graph.subs} | {graph.root}
    for sub in subs:
        for s in steps:
            if any(pos.startswith(f"{sub}/{s.name}:") for pos in table):
                out[s.name] = max(out[s.name], longest((sub, s.name), per_job))
    return out
