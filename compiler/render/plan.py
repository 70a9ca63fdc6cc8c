"""What a cycle must carry: only datasets with work left, each with its slot budget.

Finished, quarantined and blocked datasets cost one `stat` of their status file and
nothing else: where a file puts its dataset is kept in the survey's index
(.padocc/survey/status-index.json, keyed by device, inode, size, mtime_ns and
ctime_ns, never stale: see runtime/survey.py), shared with `padocc status`. Only a
file that changed, or whose dataset still has work, is read whole. A finished
dataset whose declared inputs (`datasets: inputs:`) changed after its final STAT
line (their content, as Snakemake 9 decides it: see render/inputs.py) is re-queued
at the graph's entry.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from compiler.core import journal
from compiler.core.attempts import cause_of, closing_line, open_after, retry_wait, tries_of
from compiler.core.buildlock import flock_held
from compiler.core.diagnostics import Loc, fail
from compiler.core.names import ROUND_END, round_file
from compiler.core.routing import decide, engagement_alive, route, run_successors
from compiler.core.safeio import not_regular_reason, read_regular
from compiler.core.statusfile import (
    FINAL,
    QUARANTINED,
    Position,
    Stat,
    append_stats,
    parse_history,
    parse_stamp,
    position_of,
    read_history,
    utc_stamp,
)
from compiler.core.statusindex import INDEX_FILE, Brief, Index, fold
from compiler.load.profile import Executor
from compiler.model.types import Workflow
from compiler.render import sizing
from compiler.render.inputs import Inputs, InputSums


@dataclass(frozen=True)
class Pending:
    id: str
    key: str
    slots: int
    first: str  # the step slot 1 runs, or "" when slot 1 only records an end
    grow: tuple[int, int] = (0, 0)  # (memory, time) growths of `first` (core/attempts.py)


@dataclass
class Plan:
    pending: list[Pending] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Finished datasets whose inputs changed after their final STAT line: pending again
    # from the graph's entry. The compile appends their binding Ready line (requeue=1)
    # right before it writes the build (see requeue_changed_inputs).
    requeue: list[Requeue] = field(default_factory=list)
    # Status files whose position came from the index (not read) / were read.
    index_hits: int = 0
    files_read: int = 0
    # The jobs of the pending datasets (one dataset each unless `datasets_per_job`).
    jobs: list[Bundle] = field(default_factory=list)
    # Pending datasets past the cycle's bound (max_datasets_per_cycle): later cycles'.
    deferred: int = 0
    # Datasets per job the compile chose (0: the workflow's datasets_per_job).
    per_job: int = 0
    # Dead engagements (a job killed without writing its outcome) and the line that
    # records each as an attempt; the compile appends them before it writes the build.
    closings: list[tuple[str, Stat]] = field(default_factory=list)
    # What a later quiet cycle checks (render/quiet.py), when asked for: the journal's
    # mark and the status directory's signature, taken before the scan, and a line per
    # finished dataset (None: the plan cannot be quiet).
    journal: tuple[int, int] | None = None
    status_dir_sig: list[int] | None = None
    sweep: list[str] | None = None

    def slot_targets(self, build: str) -> list[str]:
        """What Snakemake is asked to make for the datasets: the end of the cycle's last
        round of slots (runtime/rounds.py)."""
        return [round_file(build, ROUND_END)] if self.jobs else []


@dataclass(frozen=True)
class Requeue:
    id: str
    newest_input: str  # the input file that changed last
    final_stamp: str  # the final STAT line it is newer than


def status_path(status_dir: str, ds_id: str) -> Path:
    return Path(status_dir) / f"{ds_id}.status"


def running_slurm_jobs() -> frozenset[str] | None:
    if not shutil.which("squeue"):
        return None
    try:
        out = subprocess.run(
            ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return frozenset(out.stdout.split()) if out.returncode == 0 else None


class SlotBudget:
    """How many slots (jobs) a dataset gets this cycle. Its longest path of runs through
    the step graph for its routing key, where a loop counts its steps once plus one
    more step (check, fix, check again), is L steps with at most C changes of job
    class along it; a job runs up to `per_job` steps of one class, so C + ceil(L /
    per_job) jobs always suffice. Slots past a dataset's end are no-op jobs, so the
    budget stays near the usual path; a dataset that loops longer simply goes on in
    the next cycle (`padocc cycle` runs that next round at once)."""

    def __init__(
        self, graph: dict, max_visits: int, cap: int, classes: dict[str, int] | None = None,
        per_job: int = 1,
    ):  # fmt: skip
        self.table, self.max_visits, self.cap = graph["table"], max_visits, cap
        self.classes, self.per_job = classes or {}, max(1, per_job)
        self.memo: dict[tuple[str, str, str], int] = {}

    def _succ(self, sub: str, step: str, key: str) -> list[tuple[str, str]]:
        return run_successors(self.table, sub, step, (key,))

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
        sccs, comp = _strong_components(succ)
        cls = self.classes.get
        # Tarjan gives every component after all those it reaches: one pass in that
        # order sums the longest path and the most class changes, with no recursion
        # (a graph of hundreds of steps in a row).
        best: list[int] = []
        most: list[int] = []
        for ci, c in enumerate(sccs):
            looped = len(c) > 1 or c[0] in succ[c[0]]
            weight = len(c) + 1 if looped else 1
            # A loop over steps of more than one class may change class at every step.
            changes = len(c) + 1 if len({cls(v[1]) for v in c}) > 1 else 0
            edges = [(v, w) for v in c for w in succ[v] if comp[w] != ci]
            best.append(weight + max((best[comp[w]] for _, w in edges), default=0))
            most.append(
                changes
                + max(((cls(v[1]) != cls(w[1])) + most[comp[w]] for v, w in edges), default=0)
            )
        steps = max(1, best[comp[start]])
        return most[comp[start]] + -(-steps // self.per_job)


def _strong_components(
    succ: dict[tuple[str, str], list],
) -> tuple[list[list], dict[tuple[str, str], int]]:
    """Tarjan's strongly connected components, iteratively (no recursion however long
    the graph): the components, each after every component it reaches, and each
    node's component."""
    index: dict = {}
    low: dict = {}
    on: set = set()
    st: list = []
    comp: dict = {}
    sccs: list[list] = []
    for root in succ:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        st.append(root)
        on.add(root)
        work = [(root, iter(succ[root]))]
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    st.append(w)
                    on.add(w)
                    work.append((w, iter(succ[w])))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
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
    return sccs, comp


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
        chosen.append(Pending(p.id, p.key, take, p.first, p.grow))
        left -= take
    return chosen, len(pending) - len(chosen)


def take_longest_waiting(
    pending: list[Pending], waited: dict[str, int], bound: int
) -> tuple[list[Pending], int]:
    """At most `bound` pending datasets, those advanced longest ago first (never
    advanced: first of all), ties in the spec's order: a stable, fair order, since a
    dataset this cycle runs is last in the next one's. Kept in the spec's order."""
    if len(pending) <= bound:
        return pending, 0
    ranked = sorted(range(len(pending)), key=lambda i: (waited.get(pending[i].id, 0), i))
    keep = set(ranked[:bound])
    return [p for i, p in enumerate(pending) if i in keep], len(pending) - bound


def _terminal(b: Brief, root: str) -> str | None:
    """`decide`'s verdict when it needs no visit counts: blocked, quarantined or done
    (a final root Pass/Fail), for a file with no open engagement. Else None."""
    if b.engaged is not None:
        return None
    if b.blocked:
        return "blocked"
    cur = b.current
    if cur is None:
        return None
    if cur[4] == QUARANTINED:
        return "quarantined"
    if cur[2] == root and cur[3] == root and cur[4] in FINAL:
        return "done"
    return None


def _stamp_ns(ts: str) -> int:
    d = parse_stamp(ts)
    return int(d.timestamp()) * 1_000_000_000 + d.microsecond * 1000


def make_plan(
    model: Workflow,
    manifest: dict,
    selection: Selection | None = None,
    use_index: bool = True,
    held: Collection[str] = (),
    now: float | None = None,
    executor: Executor | None = None,
    marks: bool = False,
) -> Plan:
    """`held`: datasets live runs hold (runtime/leases.py); left to them, not planned.
    `now` (epoch seconds, default the clock): a step whose retry delay lasts past it
    is not planned (core/attempts.retry_wait). `executor`: where the jobs will run,
    from the profile: sizes jobs when the workflow sets no datasets_per_job
    (render/sizing.py). `marks`: take what a later quiet cycle checks (Plan.journal)."""
    clock = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    plan = Plan()
    graph = manifest["graph"]
    if not graph["entry"]:
        return plan  # no transition graph: datasets only key gates
    root = graph["root"]
    budget = SlotBudget(
        graph,
        model.max_visits,
        model.max_steps_per_cycle,
        {name: cls for name, cls, _ in model.jobs},
        model.steps_per_job,
    )
    status_dir = Path(model.status_dir)
    sdir = os.path.join(str(status_dir), "")
    index = Index(Path(model.dir) / INDEX_FILE, str(status_dir)) if use_index else None
    inputs = Inputs(model)
    check_inputs = bool(model.inputs) or bool(model.groups)
    by_content = check_inputs and model.input_change == "content"
    sums = InputSums(model.dir, inputs)
    # Pending datasets starting from the graph's entry (new, or re-queued): their
    # inputs' checksums are recorded below, for the selected ones.
    fresh: set[str] = set()
    patterns: dict[str, str] = {}
    seen: set[str] = set()
    if marks:  # before the listing and the scan: any later write is past the mark
        plan.journal = journal.mark(status_dir)
        with contextlib.suppress(OSError):
            dst = os.stat(status_dir)
            plan.status_dir_sig = [dst.st_ino, dst.st_mtime_ns, dst.st_ctime_ns]
        if plan.journal is not None and plan.status_dir_sig is not None:
            plan.sweep = []
    sweep = plan.sweep
    try:
        existing = set(os.listdir(status_dir))  # one listing, not a failed stat per new dataset
    except OSError:
        existing = set()
    slurm_jobs: frozenset[str] | None = None
    slurm_checked = False
    counts = plan.counts
    # When each dataset was last advanced (its status file's mtime; 0: never): the
    # order in which the cycle's bound takes pending datasets, longest waiting first.
    waited: dict[str, int] = {}
    for ds in model.datasets:
        if ds.id in held:  # held by live runs: theirs to run, whatever its state
            counts["held by a live run"] = counts.get("held by a live run", 0) + 1
            seen.add(f"{ds.id}.status")  # its index entry stays for the next compile
            sweep = None
            continue
        name = f"{ds.id}.status"
        path = sdir + name
        data: bytes | None = None
        brief: Brief | None = None
        try:
            st = os.stat(path) if name in existing else None
        except FileNotFoundError:
            st = None
        except OSError:
            st = None
            data = b""  # unreadable: read_history below says why
        if st is not None and not stat.S_ISREG(st.st_mode):
            # A FIFO would hang this scan and the job's append; a device never ends; a
            # directory would fail every job of the dataset (exit 3): all said now,
            # before anything is written, not by each cycle's job.
            raise fail(Loc(path), f"status file {not_regular_reason(st.st_mode)}")
        if st is not None:
            waited[ds.id] = st.st_mtime_ns
            seen.add(name)
            sig = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
            if index is not None:
                brief = index.get(name, sig)
            if brief is not None:
                plan.index_hits += 1
            else:
                try:
                    data = read_regular(path)
                except OSError:
                    data = b""
                else:
                    plan.files_read += 1
                    brief = fold(data, path)
                    if index is not None:
                        index.put(name, sig, brief)
        kind = _terminal(brief, root) if brief is not None else None
        if kind is not None:
            plan.warnings += brief.warnings
            pattern, mtime = "", 0
            if kind == "done" and check_inputs:
                pattern = inputs.pattern(dict(ds.facets))
                if pattern:
                    mtime, newest = inputs.newest(pattern)
                    final = brief.current[0]
                    if mtime > _stamp_ns(final) and by_content:
                        newest = sums.changed_after(ds.id, pattern, _stamp_ns(final))
                        if not newest:  # touched or copied, same content: not re-run
                            counts["inputs touched, content unchanged"] = (
                                counts.get("inputs touched, content unchanged", 0) + 1
                            )
                    if mtime > _stamp_ns(final) and newest:
                        plan.requeue.append(Requeue(ds.id, newest, final))
                        fresh.add(ds.id)
                        patterns[ds.id] = pattern
                        counts["pending"] = counts.get("pending", 0) + 1
                        counts["re-queued: input changed"] = (
                            counts.get("re-queued: input changed", 0) + 1
                        )
                        act = route(graph["table"], graph["entry"], ds.routing_key)
                        plan.pending.append(
                            Pending(ds.id, ds.routing_key, budget.budget(act, ds.routing_key),
                                    act.get("step", ""))
                        )  # fmt: skip
                        sweep = None
                        continue
            counts[kind] = counts.get(kind, 0) + 1
            if sweep is not None:
                sweep.append(sweep_line(name, st, pattern, mtime))
            continue
        stats: list[Stat] = []
        if st is None and data is None:
            pos = position_of(())
        else:
            if data is None:
                try:
                    data = read_regular(path)
                except OSError:
                    data = b""
            hist = parse_history(data, path) if data else read_history(Path(path))
            plan.warnings += hist.warnings
            stats = hist.stats
            pos = position_of(stats)
        if pos.open_engagement is not None:
            if "slurm_jobid" in pos.open_engagement.params and not slurm_checked:
                slurm_jobs, slurm_checked = running_slurm_jobs(), True
            if engagement_alive(pos.open_engagement.params, slurm_jobs):
                counts["running"] = counts.get("running", 0) + 1
                continue
            closed = close_dead_engagement(plan, model, manifest, ds.id, stats, pos)
            if closed is None:
                counts["running"] = counts.get("running", 0) + 1
                continue
            stats = closed
            pos = position_of(stats)
        act = decide(pos, ds.routing_key, graph, model.max_visits)
        kind = act["kind"]
        if kind in ("done", "quarantined", "blocked"):
            counts[kind] = counts.get(kind, 0) + 1
            if sweep is not None and st is not None and not plan.closings:
                sweep.append(sweep_line(name, st, "", 0))
            continue
        sweep = None
        step = act.get("step", "")
        if step and step in manifest["steps"]:
            wait = retry_wait(stats, step, manifest["steps"][step].get("retry_delay"))
            if wait is not None and clock < wait.until:
                counts["waiting for retry delay"] = counts.get("waiting for retry delay", 0) + 1
                continue
        counts["pending"] = counts.get("pending", 0) + 1
        if by_content:
            patterns[ds.id] = inputs.pattern(dict(ds.facets))
            if not stats or stats[-1].params.get("requeue") == "1":
                fresh.add(ds.id)
        plan.pending.append(
            Pending(ds.id, ds.routing_key, budget.budget(act, ds.routing_key), step,
                    tries_of(stats, step).grow if step else (0, 0))
        )  # fmt: skip
    if index is not None:
        index.save(seen)
    if sweep is None or len(sweep) != len(model.datasets) or plan.closings:
        plan.sweep = None
    plan.pending, plan.deferred = take_longest_waiting(
        plan.pending, waited, model.max_datasets_per_cycle
    )
    if plan.deferred:
        kept = {p.id for p in plan.pending}
        plan.requeue = [r for r in plan.requeue if r.id in kept]  # theirs come again later
        counts["pending"] = len(plan.pending)
    if selection is not None:
        plan.pending, left = select(plan.pending, selection)
        chosen = {p.id for p in plan.pending}
        plan.requeue = [r for r in plan.requeue if r.id in chosen]
        plan.counts["pending"] = len(plan.pending)
        if left:
            plan.counts["left for later cycles"] = left
    if by_content:
        record_input_sums(sums, plan.pending, patterns, fresh, existing)
    classes = {name: cls for name, cls, _ in model.jobs}
    if model.datasets_per_job:  # the user's choice wins
        plan.jobs = bundles(plan.pending, model.datasets_per_job, classes)
    else:
        ex = executor or Executor()
        plan.per_job = sizing.datasets_per_job(len(plan.pending), ex)
        plan.jobs = bundles(plan.pending, plan.per_job, classes, sizing.time_cap(model, ex))
    return plan


def sweep_line(name: str, st: os.stat_result, pattern: str, input_mtime: int) -> str:
    """A finished dataset as a quiet cycle checks it (render/quiet.py): its status
    file's signature, and its inputs' pattern with the newest one's mtime."""
    return (
        f"{name}\t{st.st_ino}\t{st.st_size}\t{st.st_mtime_ns}\t{st.st_ctime_ns}"
        f"\t{pattern}\t{input_mtime}"
    )


def record_input_sums(
    sums: InputSums,
    pending: list[Pending],
    patterns: dict[str, str],
    fresh: set[str],
    existing: set[str],
) -> None:
    """Record the input checksums of the datasets this build starts from the graph's
    entry (and of any pending one with none yet): what their runs read. Kept: datasets
    with a status file or pending, so the store never outgrows the status dir."""
    for p in pending:
        pattern = patterns.get(p.id, "")
        if pattern and (p.id in fresh or p.id not in sums.sums):
            sums.record(p.id, pattern)
    keep = {n[: -len(".status")] for n in existing if n.endswith(".status")}
    sums.save(keep | {p.id for p in pending})


def close_dead_engagement(
    plan: Plan, model: Workflow, manifest: dict, ds_id: str, stats: list[Stat], pos: Position
) -> list[Stat] | None:
    """An open Engaged whose job is gone: the line that records how it ended (an
    attempt, see core/attempts.py) is added to the plan, and the history with it is
    returned. None when it is not provably dead: SLURM says its job has not ended, or
    a job on this host still holds the dataset's lock."""
    eng = pos.open_engagement
    assert eng is not None
    if not open_after(stats, eng):
        return stats  # closed by its Retry line: the resubmission never started
    if not eng.params.get("slurm_jobid") and _dataset_locked(model.dir, ds_id):
        return None
    cause = cause_of(model.dir, eng, ds_id)
    if not cause:
        return None
    step = manifest["steps"].get(eng.step)
    line = closing_line(stats, eng, step["retries"] if step else 0, cause, "padocc compile")
    plan.closings.append((ds_id, line))
    plan.counts[f"killed: {cause}"] = plan.counts.get(f"killed: {cause}", 0) + 1
    return [*stats, line]


def _dataset_locked(workflow_dir: str, ds_id: str) -> bool:
    """Does a job hold the dataset's lock (runtime/wrapper.py) on this host now?"""
    return flock_held(os.path.join(workflow_dir, ".padocc", "locks", f"{ds_id}.lock"))


def record_closings(model: Workflow, plan: Plan) -> None:
    """Append the plan's closing lines (fsynced: each is an attempt that must not be
    lost). Raises StatusWriteError when one cannot be written."""
    for ds_id, line in plan.closings:
        append_stats(Path(model.status_dir) / f"{ds_id}.status", ds_id, [line])


def requeue_changed_inputs(model: Workflow, manifest: dict, plan: Plan) -> None:
    """Append the binding `Ready` line (requeue=1, at the graph's entry) of every
    finished dataset whose inputs changed, before the build that runs it is written:
    slot 1's wrapper then finds the dataset where the plan says it is. Raises
    StatusWriteError when a line cannot be written (the compile then fails)."""
    sub, _, rest = manifest["graph"]["entry"].partition("/")
    step, _, state = rest.partition(":")
    wf = manifest["workflow"]["name"]
    for r in plan.requeue:
        line = Stat(utc_stamp(), wf, sub, step, state, {
            "by": "padocc compile", "requeue": "1", "reason": "input changed",
            "input": r.newest_input, "final": r.final_stamp, "build": manifest["build"],
        })  # fmt: skip
        # Not fsynced (hundreds of files in a busy hour): a line lost in a machine
        # crash is made again by the next compile, which sees the same newer input.
        append_stats(Path(model.status_dir) / f"{r.id}.status", r.id, [line], durable=False)


def pending_tsv(plan: Plan) -> str:
    return "".join(
        f"{p.id}\t{p.key}\t{p.slots}\t{p.first}\t{p.grow[0]},{p.grow[1]}\n" for p in plan.pending
    )


@dataclass(frozen=True)
class Bundle:
    """The datasets one job runs, one after the other (`datasets_per_job`, BPS's
    clustering). A bundle of one is named by its dataset; a larger one `@<n>`, a name
    no dataset id can have, so slot files and logs never collide."""

    name: str
    slots: int
    members: tuple[str, ...]


def bundles(
    pending: list[Pending],
    per_job: int,
    classes: dict[str, int],
    cap: Callable[[str], int] | None = None,
) -> list[Bundle]:
    """Pending datasets in jobs of up to `per_job` (and up to `cap(first step)`). Only
    datasets whose first job has the same class (same resources) and the same slot
    budget share a job."""
    if per_job <= 1:
        return [Bundle(p.id, p.slots, (p.id,)) for p in pending]
    groups: dict[tuple[int, int], list[Pending]] = {}
    for p in pending:
        groups.setdefault((classes.get(p.first, -1), p.slots), []).append(p)
    out: list[Bundle] = []
    for (_, slots), members in groups.items():
        k = min(per_job, cap(members[0].first)) if cap else per_job
        for i in range(0, len(members), k):
            chunk = tuple(p.id for p in members[i : i + k])
            name = chunk[0] if len(chunk) == 1 else f"@{len(out) + 1}"
            out.append(Bundle(name, slots, chunk))
    return out


def bundles_tsv(jobs: list[Bundle]) -> str:
    return "".join(f"{b.name}\t{b.slots}\t{','.join(b.members)}\n" for b in jobs)
