"""What one `padocc run` did, counted from the status lines its build wrote.

Snakemake's own output says which jobs ended, not what the steps inside them
recorded; the status files do. Every Engaged line a job writes names its build, so
the steps this run ran are the Engaged lines with this build in the status files of
the datasets it planned, and each one's outcome is the next line of the same step.
Only those files (and the gate status files of the chunks it made) are read.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from compiler.core.routing import decide
from compiler.core.statusfile import Stat, position_of, read_history
from compiler.core.words import plural
from compiler.render.coverage import GATES_DIR, gate_status_path

NO_OUTCOME = "no outcome"  # an engagement whose job ended without writing one
_ORDER = {"Pass": 0, "Fail": 1, NO_OUTCOME: 3}  # then a workflow's own states, by name


@dataclass
class CycleSummary:
    outcomes: Counter = field(default_factory=Counter)  # step outcome -> count
    chunks_made: int = 0
    chunks_failed: int = 0
    waiting: int = 0  # datasets with work left for a later cycle
    held: int = 0  # datasets a live run holds (left to it)
    gates: bool = False  # the workflow has gates: chunks are worth a word

    def line(self) -> str:
        """`run: 12 steps ran (10 Pass, 2 Fail), 3 chunks made, 40 datasets waiting`."""
        ran = sum(self.outcomes.values())
        parts = [plural(ran, "step") + " ran"]
        if ran:
            each = sorted(self.outcomes.items(), key=lambda kv: (_ORDER.get(kv[0], 2), kv[0]))
            parts[0] += " (" + ", ".join(f"{n} {state}" for state, n in each) + ")"
        if self.gates:
            parts.append(plural(self.chunks_made, "chunk") + " made")
            if self.chunks_failed:
                parts.append(plural(self.chunks_failed, "chunk") + " failed")
        parts.append(plural(self.waiting, "dataset") + " waiting")
        if self.held:
            parts.append(f"{self.held} held by a live run")
        return "run: " + ", ".join(parts)


def outcomes_of(stats: Iterable[Stat], build: str) -> Counter:
    """Each Engaged of `build` and how it ended: the next line of the same step."""
    out: Counter = Counter()
    # (sub, step, chunk) -> engaged by this build. A gate's chunks share one file and
    # one step, and run at once: their lines interleave, told apart by the chunk.
    open_: dict[tuple[str, str, str], bool] = {}
    for st in stats:
        where = (st.sub, st.step, st.params.get("chunk", ""))
        if st.state == "Engaged":
            if open_.pop(where, False):
                out[NO_OUTCOME] += 1  # engaged again with no end between
            open_[where] = st.params.get("build") == build
        elif where in open_ and st.state not in ("Blocked", "Unblocked"):
            if open_.pop(where):
                out[st.state] += 1
    out[NO_OUTCOME] += sum(open_.values())
    return +out


def summarise(
    manifest: Mapping,
    datasets: Iterable[tuple[str, str]],
    chunks: Iterable[str],
    counts: Mapping[str, int],
) -> CycleSummary:
    """`datasets`: (id, routing key) of what the build planned to run; `chunks`: the
    chunk markers it set out to make; `counts`: the plan's counts (held, left over)."""
    build, wf, graph = manifest["build"], manifest["workflow"], manifest["graph"]
    s = CycleSummary(gates=bool(manifest.get("gates")))
    s.held = counts.get("held by a live run", 0)
    s.waiting = counts.get("left for later cycles", 0)
    status_dir = Path(wf["status_dir"])
    for ds, key in datasets:
        stats = read_history(status_dir / f"{ds}.status").stats
        s.outcomes += outcomes_of(stats, build)
        pos = position_of(stats)
        if pos.open_engagement is not None:
            s.waiting += 1
        elif decide(pos, key, graph, wf["max_visits"])["kind"] not in (
            "done",
            "quarantined",
            "blocked",
        ):
            s.waiting += 1
    for path in sorted({_gate_file(status_dir, m) for m in chunks}):
        ends = outcomes_of(read_history(path).stats, build)
        s.chunks_made += ends.get("Pass", 0)
        s.chunks_failed += ends.get("Fail", 0)
    return s


def _gate_file(status_dir: Path, marker: str) -> Path:
    """The gate status file of a chunk marker: gates/NAME[/KEY]/LOW__HIGH.done."""
    parts = marker.split(os.sep)
    name = parts[1] if parts[0] == GATES_DIR else parts[0]
    key = os.sep.join(parts[2:-1])
    return gate_status_path(str(status_dir), name, key)
