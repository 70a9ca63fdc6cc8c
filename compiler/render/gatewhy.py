"""Why a gate's range is not covered: per chunk, in runs of like chunks, what state it
is in and the command that moves it on (`padocc why WORKFLOW_DIR GATE LOW HIGH`).

Answered from the gate's coverage runs (intervals: the cost follows the markers, status
lines and gaps there are, not the length of the range). Only missing chunks inside the
wanted range are asked about one by one (what the cycle's planner would do with each:
make it, or wait on which precondition), at most WHY_CHUNKS of them; the rest is summed
up in one line.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, replace

from compiler.core.limits import WHY_CHUNKS
from compiler.core.names import chunk_log
from compiler.model.chunks import edge, index_span
from compiler.render.coverage import chunk_name, index_runs, marker_path, show
from compiler.render.gateplan import GatePlanner


@dataclass(frozen=True)
class ChunkRun:
    """Chunks [k0, k1) of the gate's grid in the same situation."""

    k0: int
    k1: int
    verdict: str  # made, gap, running, failed, next, waiting, unwanted, hold, source, missing
    detail: str
    move_on: str | None
    log: str | None = None  # the last chunk's log, when its runs failed

    @property
    def text(self) -> str:
        return self.detail + (f"; last log {self.log}" if self.log else "")


@dataclass
class _Ask:
    """One question: the gate, the key, the workflow directory as the user named it."""

    planner: GatePlanner
    name: str
    key: str
    wf: str
    held: dict[str, str]  # chunk marker -> the live run's header

    @property
    def g(self) -> dict:
        return self.planner.gates[self.name]

    def cmd(self, action: str, gate: str, key: str, lo: float, hi: float) -> str:
        g = self.planner.gates[gate]
        words = ["padocc", "gate", action, gate, show(g, lo), show(g, hi), "-C", self.wf]
        return shlex.join(words + (["--key", key] if key else []))

    def log(self, gate: str, key: str, k: int) -> str:
        g = self.planner.gates[gate]
        return os.path.join(
            self.wf, chunk_log(gate, chunk_name(g, edge(g, k), edge(g, k + 1)), key)
        )


def _times(n: int) -> str:
    return "1 time" if n == 1 else f"{n} times"


def explain_gate(
    planner: GatePlanner, name: str, key: str, lo: float, hi: float, wf: str, held: dict[str, str]
) -> list[ChunkRun]:
    """The runs of like chunks over [lo, hi), in order."""
    ask = _Ask(planner, name, key, wf, held)
    g = ask.g
    st = planner.state(name, key)
    here = os.path.dirname(marker_path(name, "x", key)) + os.sep
    held_names = {
        m[len(here) : -len(".done")]: h
        for m, h in held.items()
        if m.startswith(here) and m.endswith(".done") and os.sep not in m[len(here) :]
    }
    st = replace(st, running=st.running | set(held_names))
    want = planner.want(name)
    first, last = index_span(g, lo, hi)
    wk0, wk1 = index_span(g, *want) if want else (first, first)
    runs: list[ChunkRun] = []
    budget = [WHY_CHUNKS]

    def add(
        k0: int,
        k1: int,
        verdict: str,
        detail: str,
        move_on: str | None = None,
        log: str | None = None,
        own: str = "",
    ) -> None:
        """Add chunks [k0, k1), joined to the run before if alike. `own`: the gate action
        (make, remake) that moves them on, over the whole run once joined."""
        r = runs[-1] if runs else None
        if (
            r is not None
            and r.k1 == k0
            and (r.verdict, r.detail) == (verdict, detail)
            and (own or r.move_on == move_on)
        ):
            k0 = r.k0
            runs.pop()
        if own:
            move_on = ask.cmd(own, name, key, edge(g, k0), edge(g, k1))
        runs.append(ChunkRun(k0, k1, verdict, detail, move_on, log))

    for k0, k1, status in index_runs(g, st, lo, hi):
        if status == "done":
            add(k0, k1, "made", "made", None)
        elif status == "gap":
            add(k0, k1, "gap", "a permanent gap: never made", None)
        elif status == "running":  # as many chunks as the status file and leases name
            for k in range(k0, k1):
                header = held_names.get(chunk_name(g, edge(g, k), edge(g, k + 1)))
                if header:
                    add(k, k + 1, "running", f"being made by a live run: {header}", None)
                else:
                    add(k, k + 1, "running", "running (its job is alive)", None)
        elif status == "failed":  # as many chunks as the status file names
            for k in range(k0, k1):
                n = st.failures[chunk_name(g, edge(g, k), edge(g, k + 1))]
                add(k, k + 1, "failed",
                    f"failed {_times(n)}, max_failures ({g['max_failures']}) reached: no cycle "
                    "makes it again", log=ask.log(name, key, k), own="remake")  # fmt: skip
        else:
            _missing(ask, st, k0, k1, (wk0, wk1), budget, add)
    return runs


def _missing(
    ask: _Ask, st, k0: int, k1: int, want: tuple[int, int], budget: list[int], add
) -> None:
    """Missing chunks [k0, k1): outside the want, not asked for; inside, each one's
    plan (up to the budget)."""
    g, name = ask.g, ask.name
    if not g["command"]:
        what = (
            "the clock" if g["clock_lag"] is not None else f"{name}'s data (its coverage command)"
        )
        add(k0, k1, "source", f"not made by padocc: waits for {what}", None)
        return
    if g["hold"]:
        add(k0, k1, "hold", f"gate {name} is on HOLD: nothing makes it",
            f"take 'state: HOLD' off gate {name}")  # fmt: skip
        return
    for a, b, inside in ((k0, min(k1, want[0]), False), (max(k0, want[0]), min(k1, want[1]), True),
                         (max(k0, want[1]), k1, False)):  # fmt: skip
        if a >= b:
            continue
        if not inside:
            why = (
                "not wanted (outside the gate's want)"
                if want[0] < want[1]
                else "not wanted (the gate has no want)"
            )
            add(a, b, "unwanted", f"{why}: no cycle makes it", own="make")
            continue
        for k in range(a, b):
            if budget[0] <= 0:
                add(k, b, "missing",
                    f"missing; not looked at one by one (past {WHY_CHUNKS} chunks): ask about a "
                    "narrower range", f"padocc run {shlex.quote(ask.wf)}")  # fmt: skip
                break
            budget[0] -= 1
            _one(ask, st, k, add)


def _one(ask: _Ask, st, k: int, add) -> None:
    """A missing, wanted chunk: made by the next cycle, or waiting on what."""
    g, name, key, p = ask.g, ask.name, ask.key, ask.planner
    lo, hi = edge(g, k), edge(g, k + 1)
    n = st.failures.get(chunk_name(g, lo, hi), 0)
    tried = f" (failed {_times(n)} of max_failures {g['max_failures']})" if n else ""
    log = ask.log(name, key, k) if n else None
    b = p.blocker(name, key, lo, hi)
    if b is None:
        add(k, k + 1, "next", f"missing{tried}: the next cycle makes it",
            f"padocc run {shlex.quote(ask.wf)}", log)  # fmt: skip
        return
    up, ukey, ulo, uhi, kind = b
    ug = p.gates[up]
    who = f"{up}@{ukey}" if ukey else up
    ck = f"{who} {show(ug, ulo)} {show(ug, uhi)}"
    if kind == "failed":
        m = p.state(up, ukey).failures.get(chunk_name(ug, ulo, uhi), 0)
        uk = round((ulo - ug["origin"]) / ug["maxrange"])
        add(k, k + 1, "waiting", f"waits on precondition {ck}: failed {_times(m)}, max_failures "
            "reached", ask.cmd("remake", up, ukey, ulo, uhi), ask.log(up, ukey, uk))  # fmt: skip
    elif kind in ("running", "held"):
        header = ask.held.get(marker_path(up, chunk_name(ug, ulo, uhi), ukey))
        add(k, k + 1, "waiting",
            f"waits on precondition {ck}: being made by a live run"
            + (f": {header}" if header else " (its job is alive)"), None)  # fmt: skip
    elif kind == "hold":
        add(k, k + 1, "waiting", f"waits on precondition {up}: gate {up} is on HOLD",
            f"take 'state: HOLD' off gate {up}")  # fmt: skip
    elif kind in ("clock", "data"):
        what = "the clock" if kind == "clock" else f"{up}'s data"
        add(k, k + 1, "waiting", f"waits on precondition {up}: {what} does not reach "
            f"{show(ug, uhi)} yet", None)  # fmt: skip
    else:
        add(k, k + 1, "waiting", f"waits on {ck}: a precondition cycle", None)
