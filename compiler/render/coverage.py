"""What a gate covers, from its chunk outputs, status file, status command or clock.

This is the gate's fast coverage view: per chunk done / missing / in progress /
failed / permanent gap. The plan, the gate commands and the reports all use it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from compiler.core.diagnostics import Loc
from compiler.core.routing import engagement_alive
from compiler.core.safeio import read_regular
from compiler.core.shell import shell_argv
from compiler.core.statusfile import Parts, parse_params, read_history, unescape_value
from compiler.core.statusindex import scan
from compiler.model.axes import canonical_time_tag, fmt_value, parse_value, tag, untag
from compiler.model.chunks import edge, in_gap, index_of, index_span, inside_span
from compiler.model.templates import parse_template

GATES_DIR = "gates"
GATE_STATUS_DIR = "gates"  # under the workflow's status_dir


def chunk_name(gate: dict, lo: float, hi: float) -> str:
    return f"{tag(gate['axis'], lo)}__{tag(gate['axis'], hi)}"


def marker_path(name: str, lo_hi: str, key: str = "") -> str:
    """Relative to the workflow directory: the file whose existence marks a chunk done."""
    return (
        os.path.join(GATES_DIR, name, key, f"{lo_hi}.done")
        if key
        else os.path.join(GATES_DIR, name, f"{lo_hi}.done")
    )


def gate_status_path(status_dir: str, name: str, key: str = "") -> Path:
    return (
        Path(status_dir) / GATE_STATUS_DIR / (f"{name}@{key}.status" if key else f"{name}.status")
    )


@dataclass
class ChunkStates:
    done: dict[str, float] = field(default_factory=dict)  # chunk name -> marker mtime
    running: set[str] = field(default_factory=set)
    failures: dict[str, int] = field(default_factory=dict)  # failed runs since last success
    last_fail: dict[str, tuple[str, str]] = field(default_factory=dict)  # (stamp, params text)
    covered_by_status: list[tuple[float, float]] = field(default_factory=list)
    # Grid chunks done, as index runs [k0, k1): how the coverage map (covmap.py) gives
    # them, instead of one `done` entry per marker.
    done_runs: list[tuple[int, int]] = field(default_factory=list)
    clock_high: float | None = None
    warnings: list[str] = field(default_factory=list)


def run_status_command(
    wf: dict, name: str, gate: dict, key: str, facets: dict
) -> tuple[list, list[str]]:
    values = {
        "gate": name,
        "python": wf.get("python", "python3"),
        "workflow_dir": wf["dir"],
        "low": "",
        "high": "",
        "workdir": wf["dir"],
        "attempt": "1",
        "dataset": key,
        **facets,
    }
    t = parse_template(gate["coverage"], Loc(gate["source"]), values, "coverage", shell=True)
    cmd = t.fill(values, shlex.quote)
    try:
        out = subprocess.run(
            shell_argv(cmd),
            cwd=wf["dir"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [], [f"gate {name}: coverage command timed out"]
    if out.returncode != 0:
        return [], [
            f"gate {name}: coverage command exited {out.returncode}: {out.stderr.strip()[:200]}"
        ]
    intervals, warnings = [], []
    for n, line in enumerate(out.stdout.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) != 2:
                raise ValueError
            lo = parse_value(gate["axis"], parts[0], Loc("coverage"))
            hi = parse_value(gate["axis"], parts[1], Loc("coverage"))
        except Exception:
            warnings.append(f"gate {name}: coverage line {n} is not 'low high': {line[:80]!r}")
            continue
        intervals.append((lo, hi))
    return sorted(intervals), warnings


def running_of(open_eng: dict[str, str], slurm_jobs: frozenset[str] | None) -> set[str]:
    """The chunks whose open engagement's job is still alive."""
    return {
        c for c, params in open_eng.items() if engagement_alive(parse_params(params), slurm_jobs)
    }


def gate_status(
    path: Path,
) -> tuple[dict[str, str], dict[str, int], dict[str, tuple[str, str]], list[str]]:
    """From a gate's status file: each chunk's open engagement (its parameters), failed
    runs since its last success, its last failure (stamp, parameters), and the warnings."""
    lines, warnings = _stat_lines(path)
    failures: dict[str, int] = {}
    last_fail: dict[str, tuple[str, str]] = {}
    open_eng: dict[str, str] = {}
    fold_gate_lines(lines, open_eng, failures, last_fail)
    return open_eng, failures, last_fail, warnings


def fold_gate_lines(
    lines: Iterable[Parts],
    open_eng: dict[str, str],
    failures: dict[str, int],
    last_fail: dict[str, tuple[str, str]],
) -> None:
    """Fold a gate status file's STAT lines, in order, into what `gate_status` gives:
    line by line, so that lines appended later fold into the same three."""
    for p in lines:
        state, params = p[4], p[5]
        if state not in _CHUNK_STATES:
            continue
        c = _param(_CHUNK, params)
        if not c:
            continue
        if state == "Engaged":
            open_eng[c] = params
        elif state in ("Pass", "Fail", "Cancelled"):
            open_eng.pop(c, None)
            if state == "Fail":
                failures[c] = failures.get(c, 0) + 1
                last_fail[c] = (p[0], params)
            elif state == "Pass" or _param(_RESET, params) == "1":
                failures.pop(c, None)
        elif _param(_RESET, params) == "1":  # Ready
            failures.pop(c, None)


# A gate's status file holds a line or two per chunk run ever made: read with the
# survey's whole-file scan, and only the parameters needed parsed (a year of 10-minute
# chunks is 100,000 lines; parsing every line's parameters took seconds).
_CHUNK_STATES = frozenset({"Engaged", "Pass", "Fail", "Cancelled", "Ready"})
_CHUNK = re.compile(r"(?:^|,)chunk=([^,]*)")
_RESET = re.compile(r"(?:^|,)reset=([^,]*)")


def _param(pattern: re.Pattern, params: str) -> str | None:
    """One parameter, as `parse_params` gives it (the last of repeated keys wins)."""
    found = pattern.findall(params)
    return unescape_value(found[-1]) if found else None


def _stat_lines(path: Path) -> tuple[list, list[str]]:
    """The status file's STAT lines as raw parts, and the same warnings as read_history."""
    try:
        data = read_regular(path)
    except OSError:  # missing, a dangling link, a FIFO, unreadable: read_history says which
        return [], read_history(path).warnings
    _, parts, warnings = scan(data, str(path))
    return parts, warnings


def covered(gate: dict, st: ChunkStates, lo: float, hi: float, cname: str) -> bool:
    if st.clock_high is not None:
        return hi <= st.clock_high
    if cname in st.done:
        return True
    if st.done_runs:
        k = grid_index(gate, cname)
        i = bisect_right(st.done_runs, (k, float("inf"))) if k is not None else 0
        if i and st.done_runs[i - 1][1] > k:
            return True
    return any(a <= lo and hi <= b for a, b in st.covered_by_status)


def classify(gate: dict, st: ChunkStates, lo: float, hi: float) -> str:
    """done | running | failed | missing | gap for one chunk."""
    cname = chunk_name(gate, lo, hi)
    if covered(gate, st, lo, hi, cname):
        return "done"
    if in_gap(gate, lo, hi):
        return "gap"
    if cname in st.running:
        return "running"
    if st.failures.get(cname, 0) >= gate["max_failures"]:
        return "failed"
    return "missing"


_RANK = ("done", "gap", "running", "failed")  # the first that holds wins, as in classify


def grid_index(gate: dict, name: str) -> int | None:
    """The index of the grid chunk a marker or STAT line names, or None if off the grid."""
    lo_tag, sep, hi_tag = name.partition("__")
    if not sep:
        return None
    axis = gate["axis"]
    try:
        if axis == "time":  # parsed by the hundred thousand: no strptime, no strftime
            lo, hi = canonical_time_tag(lo_tag), canonical_time_tag(hi_tag)
            if lo is None or hi is None:
                return None
        else:
            lo, hi = untag(axis, lo_tag), untag(axis, hi_tag)
            if tag(axis, lo) != lo_tag or tag(axis, hi) != hi_tag:
                return None
        k = index_of(gate, lo)
    except (ValueError, OverflowError):
        return None
    # The name is the grid chunk's exactly: both tags as written, both edges its own.
    return k if edge(gate, k) == lo and edge(gate, k + 1) == hi else None


def coverage_runs(
    gate: dict, st: ChunkStates, lo: float, hi: float
) -> list[tuple[float, float, str]]:
    """Merged runs of chunks with the same status over [lo, hi), as `classify` would give
    chunk by chunk, computed from intervals: the cost follows the markers, status lines
    and gaps there are, not the length of the range."""
    return [(edge(gate, a), edge(gate, b), s) for a, b, s in index_runs(gate, st, lo, hi)]


def index_runs(gate: dict, st: ChunkStates, lo: float, hi: float) -> list[tuple[int, int, str]]:
    """The runs of `coverage_runs`, as chunk indexes [k0, k1)."""
    first, last = index_span(gate, lo, hi)
    if first >= last:
        return []
    spans: list[tuple[int, int, int]] = []  # (k0, k1, rank)

    def add(k0: int, k1: int, rank: int) -> None:
        k0, k1 = max(k0, first), min(k1, last)
        if k0 < k1:
            spans.append((k0, k1, rank))

    if st.clock_high is not None:
        add(*inside_span(gate, edge(gate, first), st.clock_high), 0)
    else:
        for name in st.done:
            k = grid_index(gate, name)
            if k is not None:
                add(k, k + 1, 0)
        for k0, k1 in st.done_runs:
            add(k0, k1, 0)
        for a, b in st.covered_by_status:
            add(*inside_span(gate, a, b), 0)
    for a, b in gate["gaps"]:
        add(*inside_span(gate, a, b), 1)
    for name in st.running:
        k = grid_index(gate, name)
        if k is not None:
            add(k, k + 1, 2)
    for name, n in st.failures.items():
        k = grid_index(gate, name)
        if k is not None and n >= gate["max_failures"]:
            add(k, k + 1, 3)
    # Sweep the span edges, holding a count of the spans open at each rank.
    events = sorted(
        [(k0, rank, 1) for k0, _, rank in spans] + [(k1, rank, -1) for _, k1, rank in spans]
    )
    open_at = [0] * len(_RANK)
    runs: list[list] = []
    at, i = first, 0
    while at < last:
        while i < len(events) and events[i][0] == at:
            open_at[events[i][1]] += events[i][2]
            i += 1
        nxt = events[i][0] if i < len(events) else last
        status = next((_RANK[r] for r, n in enumerate(open_at) if n), "missing")
        if runs and runs[-1][2] == status:
            runs[-1][1] = nxt
        else:
            runs.append([at, nxt, status])
        at = nxt
    return [(a, b, status) for a, b, status in runs]


def open_status(gate: dict, st: ChunkStates, lo: float, hi: float) -> str:
    """open, closed or running for [lo, hi): JSOC's check, permanent gaps left out."""
    kinds = {k for _, _, k in coverage_runs(gate, st, lo, hi)} - {"done", "gap"}
    if not kinds:
        return "open"
    return "running" if "running" in kinds else "closed"


def covered_span(gate: dict, st: ChunkStates) -> tuple[float, float] | None:
    spans = [
        (untag(gate["axis"], c.split("__")[0]), untag(gate["axis"], c.split("__")[1]))
        for c in st.done
    ]
    spans += st.covered_by_status
    spans += [(edge(gate, k0), edge(gate, k1)) for k0, k1 in st.done_runs]
    if st.clock_high is not None:
        return (gate["origin"], st.clock_high)
    if not spans:
        return None
    return (min(a for a, _ in spans), max(b for _, b in spans))


def show(gate: dict, v: float) -> str:
    return fmt_value(gate["axis"], v)
