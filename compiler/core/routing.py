"""Routing at run time: where a dataset goes next, from its history and the routing table.

The table is the resolved graph as the manifest stores it:
position "sub/Step:State" -> routing key ("" = default) -> action dict.
The compiler's plan and the job wrapper both decide through `decide`, so they agree.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from compiler.core.statusfile import FINAL, QUARANTINED, Position
from compiler.core.words import plural


def route(table: Mapping[str, Mapping[str, dict]], position: str, key: str) -> dict:
    acts = table.get(position)
    if acts is None:
        # A datasm line of no sub-workflow (`DATASM:Ready:`) is named as it is written.
        return {"kind": "stuck", "reason": f"no route from '{position.removeprefix('/')}'"}
    return acts.get(key) or acts[""]


def run_successors(
    table: Mapping[str, Mapping[str, dict]], sub: str, step: str, keys: tuple[str, ...]
) -> list[tuple[str, str]]:
    """The (sub, step) pairs a dataset with one of `keys` may run right after `step`
    of `sub` ends, whatever its outcome."""
    out = []
    for pos in table:
        g, _, rest = pos.partition("/")
        s, _, state = rest.partition(":")
        if g == sub and s == step and state not in ("Ready", "Engaged"):
            for key in keys:
                a = route(table, pos, key)
                if a["kind"] == "run" and (a["sub"], a["step"]) not in out:
                    out.append((a["sub"], a["step"]))
    return out


def locate(table: Mapping[str, Mapping[str, dict]], root: str, pos: Position) -> str:
    """The table position a dataset's line stands for. Our own lines name their
    sub-workflow. Other lines are placed as datasm's `next_state` places them
    (E3SM-Project/datasm 18eb7f4, datasm/workflows/__init__.py): the first level, from
    the top graph down through the (sub-)workflows the line names, whose graph holds
    its exact `Step:State`; a level is named case-insensitively (datasm upper-cases
    both sides) and `DATASM` is stepped over. Sub-workflow names are unique in a
    compiled graph, so the levels in between need not be walked."""
    key = f"{pos.sub}/{pos.step}:{pos.state}"
    if key in table:
        return key
    # datasm descends through every field, the step's too (`DATASM:VALIDATION:Ready:`
    # is VALIDATION's own entry).
    names = [root] + [n for n in (pos.workflow, pos.sub, pos.step) if n and n.upper() != "DATASM"]
    subs: dict[str, str] = {}
    for p in table:
        s = p.partition("/")[0]
        subs.setdefault(s.upper(), s)
    for n in names:
        s = subs.get(n.upper())
        if s is not None and f"{s}/{pos.step}:{pos.state}" in table:
            return f"{s}/{pos.step}:{pos.state}"
    return key


def decide(pos: Position, key: str, graph: Mapping, max_visits: int) -> dict:
    """The next action for a dataset: run / final / stuck, or done / quarantined / blocked."""
    if pos.blocked:
        return {"kind": "blocked"}
    if pos.step is None:
        return route(graph["table"], graph["entry"], key)
    if pos.state == QUARANTINED:
        return {"kind": "quarantined"}
    # Our end line names the root twice; datasm's is `DATASM:Pass:` (its top workflow).
    ended = (pos.sub, pos.step) == (graph["root"], graph["root"]) or (
        not pos.sub and pos.step.upper() == "DATASM"
    )
    if ended and pos.state in FINAL:
        return {"kind": "done", "state": pos.state}
    act = route(graph["table"], locate(graph["table"], graph["root"], pos), key)
    if act["kind"] == "run":
        n = pos.visits.get((act["sub"], act["step"]), 0)
        if n >= max_visits:
            return {
                "kind": "stuck",
                "reason": f"visit limit: {act['step']} already ran {plural(n, 'time')}",
                "sub": act["sub"],
                "step": act["step"],
            }
    return act


def engagement_alive(
    stat_params: Mapping[str, str], running_slurm_jobs: frozenset[str] | None
) -> bool:
    """Is an open Engaged still running? A SLURM job id is checked against the queue;
    a local one by host and pid. Anything else is taken as a crash and rolled back."""
    jobid = stat_params.get("slurm_jobid")
    if jobid:
        return running_slurm_jobs is not None and jobid in running_slurm_jobs
    return engaged_process(stat_params) is not None


def engaged_process(stat_params: Mapping[str, str]) -> int | None:
    """The pid of the live wrapper an Engaged line names on this host, or None. Provably
    that process: alive, a padocc process, and, when the line records it (`pstart`),
    started at the recorded time, so a pid the kernel has given to another program,
    even another padocc one, is never taken for it."""
    if stat_params.get("host") != socket.gethostname():
        return None
    try:
        pid = int(stat_params.get("pid", "0"))
    except ValueError:
        return None
    if not padocc_alive(pid):
        return None
    recorded = stat_params.get("pstart")
    if recorded and os.path.isdir("/proc/self") and process_start(pid) != recorded:
        return None
    return pid


def process_start(pid: int) -> str:
    """The process's start time (clock ticks since boot, /proc/PID/stat field 22), or ""
    where there is no /proc. With the pid it names one process for the machine's uptime."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[19].decode()
    except (OSError, IndexError):
        return ""


def padocc_alive(pid: int) -> bool:
    """Is pid a live padocc process on this host? Not a zombie, and not a pid the kernel
    has since given to another program (after a reboot a killed wrapper's pid is often
    some daemon's): such a holder is dead, and its engagement or lock is stale."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: its /proc entry may be hidden too
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # no /proc here: the signal's word
    except (OSError, IndexError):
        return True
    return b"compiler" in cmd or b"padocc" in cmd
