"""Which gate chunks a cycle (or a `padocc gate make` request) must make.

A chunk is made when it is wanted, not covered (or older than an input chunk),
not running, not failed too often, and everything its preconditions map to is
covered or can be made in the same run. Otherwise it waits, with a reason. Chunks
made by upstream gates enter the run as Snakemake inputs, so nothing is made twice.

One cycle schedules at most `max_chunks` chunks of each gate, counting the chunks a
downstream gate pulls in as inputs; the chunks past that wait for later cycles, oldest
first (or newest first: the gate's `catch_up`), and are counted as deferred. Only chunks that are not covered are visited one by
one (and markers, to see whether an input was made again), so a long wanted range
costs no more than what is missing in it, up to the bound.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from compiler.core.words import plural
from compiler.model.chunks import (
    DEFAULT_MAX_CHUNKS,
    edge,
    in_gap,
    map_range,
    upstream_chunks,
    want_range,
)
from compiler.render.coverage import (
    ChunkStates,
    chunk_name,
    covered,
    index_runs,
    marker_path,
    show,
)
from compiler.render.covmap import mapped_states, save_maps

BEING_MADE = "is being made by a live run"


@dataclass
class GateWork:
    targets: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # "gate chunk: reason"
    counts: dict[str, Counter] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    status_coverage: dict[str, list] = field(default_factory=dict)  # "gate@key" -> intervals
    deferred: Counter = field(default_factory=Counter)  # gate -> chunks left for later cycles
    # Every chunk the run makes: the targets and the upstream chunks Snakemake makes as
    # their inputs. What a run's lease claims (runtime/leases.py).
    making: set[str] = field(default_factory=set)

    def deferred_line(self) -> str:
        """One line for the whole cycle: how much waits past the per-cycle bound."""
        if not self.deferred:
            return ""
        each = ", ".join(f"{g} {n}" for g, n in sorted(self.deferred.items()))
        return (
            f"{plural(sum(self.deferred.values()), 'gate chunk')} deferred to later cycles (a cycle "
            f"makes at most max_chunks chunks of each gate, default {DEFAULT_MAX_CHUNKS}): {each}"
        )


class GatePlanner:
    def __init__(
        self,
        manifest: dict,
        now: float,
        keys: dict[str, list[str]] | None = None,
        facets: dict[str, dict] | None = None,
        slurm_jobs: frozenset[str] | None = None,
        held: Collection[str] = (),
        defer_maps: bool = False,
    ):
        """`held`: chunk markers live runs are making (runtime/leases.py). `defer_maps`:
        the coverage maps brought up to date are written by `save_maps`, not at once."""
        self.m = manifest
        self.held = held
        # Chunks being made (running, or held by a live run) that a planned one waits for.
        self.waited_on: set[str] = set()
        self.gates = manifest["gates"]
        self.now = now
        self.keys = keys or {}
        self.facets = facets or {}
        self.slurm_jobs = slurm_jobs
        self._states: dict[tuple[str, str], ChunkStates] = {}
        self._avail: dict[tuple, tuple[str, str]] = {}
        # What a waiting chunk waits on: (gate, key, low, high, kind) of the chunk at the
        # root of the wait, kind one of hold, running, held, failed, clock, data, cycle.
        self._blocker: dict[tuple, tuple] = {}
        # This cycle's bound per gate: chunks scheduled (own and pulled in as inputs),
        # and missing chunks looked at.
        self._scheduled: dict[str, set[tuple]] = {}
        self._visited: Counter = Counter()
        self._mtimes: dict[str, float | None] = {}
        self.pending_maps: list[tuple[Path, str]] | None = [] if defer_maps else None

    def state(self, name: str, key: str) -> ChunkStates:
        k = (name, key)
        if k not in self._states:
            self._states[k] = mapped_states(
                self.m, name, self.now, key, self.facets.get(key), self.slurm_jobs,
                self.pending_maps,
            )  # fmt: skip
        return self._states[k]

    def save_maps(self) -> None:
        """Write the coverage maps the plan brought up to date (`defer_maps`)."""
        save_maps(self.pending_maps or [])
        self.pending_maps = []

    def want(self, name: str) -> tuple[float, float] | None:
        return want_range(self.gates[name], self.now)

    def cap(self, name: str) -> int:
        return self.gates[name].get("max_chunks", DEFAULT_MAX_CHUNKS)

    def _inputs(self, name: str, key: str, lo: float, hi: float):
        g = self.gates[name]
        for pre in g["preconditions"]:
            up = self.gates[pre["gate"]]
            ukey = key if up["keyed"] else ""
            if not up["command"]:
                # Clock and source gates are not made in chunks: ask about the whole range.
                a, b = map_range(pre, g, up, lo, hi)
                yield pre["gate"], ukey, a, b
                continue
            for ulo, uhi in upstream_chunks(pre, g, up, lo, hi):
                yield pre["gate"], ukey, ulo, uhi

    def available(
        self, name: str, key: str, lo: float, hi: float, force: bool = False
    ) -> tuple[str, str]:
        """('covered' | 'make' | 'wait', reason) for one chunk."""
        memo = (name, key, lo, hi, force)
        if memo in self._avail:
            return self._avail[memo]
        self._avail[memo] = (
            "wait",
            "precondition cycle",
        )  # guards recursion; the checker forbids cycles
        g = self.gates[name]
        st = self.state(name, key)
        cname = chunk_name(g, lo, hi)
        result: tuple[str, str]
        root = (name, key, lo, hi)
        self._blocker[memo] = (*root, "cycle")
        if in_gap(g, lo, hi):
            result = ("covered", "permanent gap")
        elif not g["command"]:
            if covered(g, st, lo, hi, cname) or self._gaps_cover(g, st, lo, hi):
                result = ("covered", "")
            else:
                what = "the clock" if g["clock_lag"] is not None else f"{name} data"
                result = ("wait", f"waiting for {what} up to {show(g, hi)}")
                self._blocker[memo] = (*root, "clock" if g["clock_lag"] is not None else "data")
        elif (
            covered(g, st, lo, hi, cname)
            and not force
            and not self._stale(name, key, lo, hi, st, cname)
        ):
            result = ("covered", "")
        elif g["hold"]:
            result = ("wait", f"gate {name} is on HOLD")
            self._blocker[memo] = (*root, "hold")
        elif cname in st.running:
            self.waited_on.add(marker_path(name, cname, key))
            result = ("wait", f"{name} {cname} is running")
            self._blocker[memo] = (*root, "running")
        elif marker_path(name, cname, key) in self.held:
            self.waited_on.add(marker_path(name, cname, key))
            result = ("wait", f"{name} {cname} {BEING_MADE}")
            self._blocker[memo] = (*root, "held")
        elif st.failures.get(cname, 0) >= g["max_failures"] and not force:
            result = ("wait", f"{name} {cname} failed {plural(st.failures[cname], 'time')}")
            self._blocker[memo] = (*root, "failed")
        else:
            result = ("make", "")
            for up, ukey, ulo, uhi in self._inputs(name, key, lo, hi):
                status, why = self.available(up, ukey, ulo, uhi)
                if status == "wait":
                    result = ("wait", why)
                    self._blocker[memo] = self._blocker[(up, ukey, ulo, uhi, False)]
                    break
        self._avail[memo] = result
        return result

    def blocker(self, name: str, key: str, lo: float, hi: float) -> tuple | None:
        """What a chunk `available` found waiting waits on, at the root of the wait:
        (gate, key, low, high, kind), kind one of hold, running, held, failed, clock,
        data, cycle. None if it does not wait."""
        if self.available(name, key, lo, hi)[0] != "wait":
            return None
        return self._blocker.get((name, key, lo, hi, False))

    @staticmethod
    def _gaps_cover(g: dict, st: ChunkStates, lo: float, hi: float) -> bool:
        """[lo, hi) is covered by status intervals and permanent gaps together."""
        spans = sorted(list(st.covered_by_status) + [tuple(x) for x in g["gaps"]])
        at = lo
        for a, b in spans:
            if a > at:
                break
            at = max(at, b)
            if at >= hi:
                return True
        return at >= hi

    def _stale(
        self, name: str, key: str, lo: float, hi: float, st: ChunkStates, cname: str
    ) -> bool:
        """Done, but an input chunk was made again since: it must be made again too."""
        if not self._made_upstream(name):
            return False
        mine = self._mtime(marker_path(name, cname, key))
        if mine is None:
            return False
        for up, ukey, ulo, uhi in self._inputs(name, key, lo, hi):
            ug = self.gates[up]
            if not ug["command"]:
                continue
            t = self._mtime(marker_path(up, chunk_name(ug, ulo, uhi), ukey))
            if t is not None and t > mine:
                return True
            if self.available(up, ukey, ulo, uhi)[0] == "make":
                return True
        return False

    def _made_upstream(self, name: str) -> bool:
        """Has the gate a precondition on a gate made in chunks (whose chunks, made
        again, make its own stale)? Without one, a chunk done stays done."""
        return any(self.gates[p["gate"]]["command"] for p in self.gates[name]["preconditions"])

    def _mtime(self, marker: str) -> float | None:
        """A chunk marker's mtime, None when there is none: asked only of the markers
        a staleness check compares, not listed for the whole gate."""
        if marker not in self._mtimes:
            try:
                self._mtimes[marker] = os.stat(
                    os.path.join(self.m["workflow"]["dir"], marker)
                ).st_mtime
            except OSError:
                self._mtimes[marker] = None
        return self._mtimes[marker]

    def _closure(self, name: str, key: str, lo: float, hi: float, acc: set[tuple]) -> None:
        """The chunks a run of this one makes besides it: its inputs still to make."""
        for up, ukey, ulo, uhi in self._inputs(name, key, lo, hi):
            item = (up, ukey, ulo, uhi)
            if item in acc or not self.gates[up]["command"]:
                continue
            if self.available(up, ukey, ulo, uhi)[0] == "make":
                acc.add(item)
                self._closure(up, ukey, ulo, uhi, acc)

    def _fits(self, chunks: set[tuple]) -> bool:
        """Schedule these chunks if no gate goes past its bound this cycle. A gate with
        nothing scheduled yet takes them whatever their number, so that a chunk whose
        inputs alone pass the bound is still made, alone, and nothing waits forever."""
        new: dict[str, set[tuple]] = {}
        for c in chunks:
            if c not in self._scheduled.get(c[0], set()):
                new.setdefault(c[0], set()).add(c)
        for g, n in new.items():
            had = len(self._scheduled.get(g, ()))
            if had and had + len(n) > self.cap(g):
                return False
        for g, n in new.items():
            self._scheduled.setdefault(g, set()).update(n)
        return True

    def _candidates(self, name: str, st: ChunkStates, lo: float, hi: float, force: bool):
        """(index, counted) of the chunks to look at, in the gate's catch-up order (oldest
        or newest first): every chunk not covered (forced: every chunk outside a
        permanent gap), and those with a marker, which are made again when an input was.
        `counted`: a missing (or forced) chunk, which uses the gate's bound; running and
        failed ones are as many as the status file says."""
        g = self.gates[name]
        newest = g.get("catch_up") == "newest"
        # Markers (grid chunks done: the map's runs), looked at only where an input
        # made again could make them stale.
        marked = st.done_runs if self._made_upstream(name) else []
        runs = list(index_runs(g, st, lo, hi))  # intervals of chunks, not chunks
        for k0, k1, status in reversed(runs) if newest else runs:
            if status == "gap":
                continue
            if status == "done" and not force:
                ks = [k for a, b in _within(marked, k0, k1) for k in range(a, b)]
                yield from ((k, False) for k in (reversed(ks) if newest else ks))
            else:
                ks = range(k1 - 1, k0 - 1, -1) if newest else range(k0, k1)
                yield from ((k, status == "missing" or force) for k in ks)

    @staticmethod
    def _left(g: dict, st: ChunkStates, lo: float, hi: float, k: int, force: bool) -> int:
        """Chunks from index k on (newest first: up to k) that a later cycle (or request)
        must still look at."""
        newest = g.get("catch_up") == "newest"
        n = 0
        for k0, k1, status in index_runs(g, st, lo, hi):
            if status == "missing" or (force and status != "gap"):
                n += max(0, min(k1, k + 1) - k0) if newest else max(0, k1 - max(k0, k))
        return n

    def plan(
        self, name: str, key: str, lo: float, hi: float, work: GateWork, force: bool = False
    ) -> None:
        g = self.gates[name]
        counts = work.counts.setdefault(name, Counter())
        st = self.state(name, key)
        for k, counted in self._candidates(name, st, lo, hi, force):
            clo, chi = edge(g, k), edge(g, k + 1)
            if counted and self._visited[name] >= self.cap(name):
                work.deferred[name] += self._left(g, st, lo, hi, k, force)
                return
            status, why = self.available(name, key, clo, chi, force=force)
            if status == "make":
                acc = {(name, key, clo, chi)}
                self._closure(name, key, clo, chi, acc)
                if not self._fits(acc):
                    work.deferred[name] += self._left(g, st, lo, hi, k, force)
                    return
            if counted:
                self._visited[name] += 1
            counts[status] += 1
            if status == "make":
                work.targets.append(marker_path(name, chunk_name(g, clo, chi), key))
                self._making(name, key, clo, chi, work)
            elif status == "wait":
                work.waiting.append(
                    f"{name}{'@' + key if key else ''} {chunk_name(g, clo, chi)}: {why}"
                )

    def _making(self, name: str, key: str, lo: float, hi: float, work: GateWork) -> None:
        marker = marker_path(name, chunk_name(self.gates[name], lo, hi), key)
        if marker in work.making:
            return
        work.making.add(marker)
        for up, ukey, ulo, uhi in self._inputs(name, key, lo, hi):
            if self.gates[up]["command"] and self.available(up, ukey, ulo, uhi)[0] == "make":
                self._making(up, ukey, ulo, uhi, work)

    def status_coverage(self) -> dict[str, list]:
        """What status commands said, per gate@key, for the Snakefile's input functions."""
        return {
            f"{n}@{k}": st.covered_by_status
            for (n, k), st in self._states.items()
            if st.covered_by_status
        }

    def plan_all(self) -> GateWork:
        work = GateWork()
        for name, g in self.gates.items():
            rng = self.want(name)
            if rng is None or not g["command"] or g["hold"]:
                continue
            for key in self.keys.get(name, []) if g["keyed"] else [""]:
                self.plan(name, key, rng[0], rng[1], work)
        for st in self._states.values():
            work.warnings += st.warnings
        return work


def _within(runs: list[tuple[int, int]], k0: int, k1: int) -> list[tuple[int, int]]:
    """The parts of sorted, disjoint index runs that lie in [k0, k1)."""
    i = max(bisect_left(runs, (k0,)) - 1, 0)
    out = []
    for a, b in runs[i:]:
        if a >= k1:
            break
        if b > k0:
            out.append((max(a, k0), min(b, k1)))
    return out
