"""What a cycle must carry: only datasets with work left, each with its slot budget.

Finished, quarantined and blocked datasets cost one status read and nothing else.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from compiler.core.routing import decide, engagement_alive, route
from compiler.core.statusfile import position_of, read_history
from compiler.model.types import Workflow


@dataclass(frozen=True)
class Pending:
    id: str
    key: str
    slots: int
    first: str  # the step slot 1 runs, or "" when slot 1 only records an end


@dataclass
class Plan:
    pending: list[Pending] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def status_path(status_dir: str, ds_id: str) -> Path:
    return Path(status_dir) / f"{ds_id}.status"


def running_slurm_jobs() -> frozenset[str] | None:
    if not shutil.which("squeue"):
        return None
    try:
        out = subprocess.run(
            ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return frozenset(out.stdout.split()) if out.returncode == 0 else None


class SlotBudget:
    """How many slots a dataset gets this cycle: the longest path of runs through the
    step graph for its routing key, where a loop counts its steps once plus one more
    step (check, fix, check again). Slots past a dataset's end are cheap no-ops, so
    the budget is kept near the usual path; a dataset that loops longer simply goes
    on in the next cycle (`padocc cycle` runs that next round at once)."""

    def __init__(self, graph: dict, max_visits: int, cap: int):
        self.table, self.max_visits, self.cap = graph["table"], max_visits, cap
        self.memo: dict[tuple[str, str, str], int] = {}

    def _succ(self, sub: str, step: str, key: str) -> list[tuple[str, str]]:
        out = []
        for pos in self.table:
            g, _, rest = pos.partition("/")
            s, _, state = rest.partition(":")
            if g == sub and s == step and state not in ("Ready", "Engaged"):
                a = route(self.table, pos, key)
                if a["kind"] == "run":
                    out.append((a["sub"], a["step"]))
        return out

    def budget(self, act: dict, key: str) -> int:
        if act["kind"] != "run":
            return 1
        start = (act["sub"], act["step"], key)
        if start not in self.memo:
            self.memo[start] = min(self.cap, self._longest((act["sub"], act["step"]), key))
        return self.memo[start]

    def _longest(self, start: tuple[str, str], key: str) -> int:
        # Tarjan SCCs over the run-step graph reachable from start, then the longest
        # weighted path through the condensation.
        succ: dict[tuple[str, str], list] = {}
        stack = [start]
        while stack:
            n = stack.pop()
            if n in succ:
                continue
            succ[n] = self._succ(n[0], n[1], key)
            stack.extend(succ[n])
        index, low, on, st, comp = {}, {}, set(), [], {}
        counter = [0]
        sccs: list[list] = []

        def strong(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            st.append(v)
            on.add(v)
            for w in succ[v]:
                if w not in index:
                    strong(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                c = []
                while True:
                    w = st.pop()
                    on.discard(w)
                    comp[w] = len(sccs)
                    c.append(w)
                    if w == v:
                        break
                sccs.append(c)

        for v in succ:
            if v not in index:
                strong(v)
        weight = []
        for c in sccs:
            looped = len(c) > 1 or c[0] in succ[c[0]]
            weight.append(len(c) + 1 if looped else 1)
        best: dict[int, int] = {}

        def longest(ci: int) -> int:
            if ci not in best:
                nxt = {comp[w] for v in sccs[ci] for w in succ[v]} - {ci}
                best[ci] = weight[ci] + max((longest(n) for n in nxt), default=0)
            return best[ci]

        return max(1, longest(comp[start]))


@dataclass(frozen=True)
class Selection:
    """SHEPARD's batch_limit: at most `limit` jobs a cycle, picked at random (seeded,
    logged, replayable) across all groups, so a new group cannot jump the queue."""

    limit: int
    seed: int


def select(pending: list[Pending], sel: Selection) -> tuple[list[Pending], int]:
    order = list(pending)
    random.Random(sel.seed).shuffle(order)
    chosen, left = [], sel.limit
    for p in order:
        if left <= 0:
            break
        take = min(p.slots, left)  # a long route may go on next cycle
        chosen.append(Pending(p.id, p.key, take, p.first))
        left -= take
    return chosen, len(pending) - len(chosen)


def make_plan(model: Workflow, manifest: dict, selection: Selection | None = None) -> Plan:
    plan = Plan()
    graph = manifest["graph"]
    if not graph["entry"]:
        return plan  # no transition graph: datasets only key gates
    budget = SlotBudget(graph, model.max_visits, model.max_steps_per_cycle)
    status_dir = Path(model.status_dir)
    existing = {p.name for p in status_dir.iterdir()} if status_dir.is_dir() else set()
    slurm_jobs: frozenset[str] | None = None
    slurm_checked = False
    counts = plan.counts
    for ds in model.datasets:
        name = f"{ds.id}.status"
        if name in existing:
            hist = read_history(status_dir / name)
            plan.warnings += hist.warnings
            pos = position_of(hist.stats)
        else:
            pos = position_of(())
        if pos.open_engagement is not None:
            if "slurm_jobid" in pos.open_engagement.params and not slurm_checked:
                slurm_jobs, slurm_checked = running_slurm_jobs(), True
            if engagement_alive(pos.open_engagement.params, slurm_jobs):
                counts["running"] = counts.get("running", 0) + 1
                continue
        act = decide(pos, ds.routing_key, graph, model.max_visits)
        kind = act["kind"]
        if kind in ("done", "quarantined", "blocked"):
            counts[kind] = counts.get(kind, 0) + 1
            continue
        counts["pending"] = counts.get("pending", 0) + 1
        plan.pending.append(
            Pending(ds.id, ds.routing_key, budget.budget(act, ds.routing_key), act.get("step", ""))
        )
    if selection is not None:
        plan.pending, left = select(plan.pending, selection)
        plan.counts["pending"] = len(plan.pending)
        if left:
            plan.counts["left for later cycles"] = left
    return plan


def pending_tsv(plan: Plan) -> str:
    return "".join(f"{p.id}\t{p.key}\t{p.slots}\t{p.first}\n" for p in plan.pending)
