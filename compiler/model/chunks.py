"""Chunk grid and precondition mapping, on gates as the manifest stores them.

Chunk k of a gate covers [origin + k*size, origin + (k+1)*size). Every request is
widened to whole chunks of this fixed grid, so two overlapping requests name the
same chunks and nothing is made twice.

Ranges are handled as spans of chunk indexes, so a question about a huge range costs
no more than a small one; only ranges with a bound (one chunk's inputs, one cycle's
work) are ever listed chunk by chunk.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from compiler.core.diagnostics import CompileError, Loc, fail
from compiler.model import hooks
from compiler.model.axes import TIME_MAX, TIME_MIN, convert, fmt_value

# Input limits (README, Guarantees): a wanted range, and the inputs one chunk may need.
MAX_WANT_CHUNKS = 1_000_000
MAX_INPUT_CHUNKS = 10_000
# Chunks of one gate one cycle (or one `padocc gate make`) schedules by default.
DEFAULT_MAX_CHUNKS = 1000


def index_span(gate: dict, low: float, high: float) -> tuple[int, int]:
    """Indexes [first, last) of the grid chunks that overlap [low, high)."""
    o, size = gate["origin"], gate["maxrange"]
    if high <= low:
        return 0, 0
    first = math.floor((low - o) / size + 1e-9)
    last = math.ceil((high - o) / size - 1e-9)
    return first, max(first, last)


def edge(gate: dict, k: int) -> float:
    """Where chunk k starts (and chunk k-1 ends); on a time axis, never before year 1
    nor after 9999 (the first and last chunks are cut there)."""
    v = gate["origin"] + k * gate["maxrange"]
    if gate["axis"] == "time":
        v = min(max(v, TIME_MIN), TIME_MAX)
    return _num(v)


def chunk_range(gate: dict, low: float, high: float) -> Iterator[tuple[float, float]]:
    """The grid chunks that overlap [low, high)."""
    first, last = index_span(gate, low, high)
    for k in range(first, last):
        yield edge(gate, k), edge(gate, k + 1)


def chunk_count(gate: dict, low: float, high: float) -> int:
    first, last = index_span(gate, low, high)
    return last - first


def inside_span(gate: dict, a: float, b: float) -> tuple[int, int]:
    """Indexes [k0, k1) of the chunks lying wholly inside [a, b]: exactly those with
    a <= low and high <= b, as the chunk-by-chunk test finds them."""
    o, size = gate["origin"], gate["maxrange"]
    k0 = math.ceil((a - o) / size)
    while edge(gate, k0 - 1) >= a:
        k0 -= 1
    while edge(gate, k0) < a:
        k0 += 1
    k1 = max(k0, math.floor((b - o) / size))
    while edge(gate, k1 + 1) <= b:
        k1 += 1
    while k1 > k0 and edge(gate, k1) > b:
        k1 -= 1
    return k0, k1


def chunk_at(gate: dict, v: float) -> tuple[float, float]:
    """The grid chunk that holds the point v."""
    k = math.floor((v - gate["origin"]) / gate["maxrange"] + 1e-9)
    return edge(gate, k), edge(gate, k + 1)


def index_of(gate: dict, lo: float) -> int:
    """The index of the grid chunk starting at lo (callers check that one does)."""
    return round((lo - gate["origin"]) / gate["maxrange"])


def _num(v: float) -> float:
    return int(v) if float(v).is_integer() else v


def want_range(gate: dict, now: float) -> tuple[float, float] | None:
    """The range a gate keeps covered at `now`: its want, `high: now` read as now, and
    a `window` keeping only the last stretch up to high."""
    if gate["want_low"] is None:
        return None
    hi = now if gate["want_now"] else gate["want_high"]
    lo = gate["want_low"]
    if gate.get("want_window") is not None:
        lo = max(lo, hi - gate["want_window"])
    return lo, hi


def in_gap(gate: dict, lo: float, hi: float) -> bool:
    """A chunk wholly inside a permanent gap is never asked for."""
    return any(g_lo <= lo and hi <= g_hi for g_lo, g_hi in gate["gaps"])


def wanted_count(gate: dict, low: float, high: float) -> int:
    """How many chunks of [low, high) are asked for (permanent gaps left out), from
    intervals: the cost follows the gaps, not the length of the range."""
    first, last = index_span(gate, low, high)
    spans = sorted(
        (max(k0, first), min(k1, last))
        for k0, k1 in (inside_span(gate, a, b) for a, b in gate["gaps"])
    )
    skipped, at = 0, first
    for a, b in spans:
        if max(a, at) < b:
            skipped += b - max(a, at)
            at = b
    return last - first - skipped


def wanted_chunks(gate: dict, low: float, high: float) -> list[tuple[float, float]]:
    return [c for c in chunk_range(gate, low, high) if not in_gap(gate, *c)]


def _hook_range(pre: dict, down: dict, lo: float, hi: float) -> tuple[float, float]:
    """The user's hook, whose failures are bad input at the precondition, not a crash."""
    m = pre["map"]
    spec = f"{Path(m['hook_path']).name}:{m['hook_func']}"

    def bad(why: str) -> CompileError:
        where = Loc(pre.get("source") or down["source"])
        span = f"[{fmt_value(down['axis'], lo)}, {fmt_value(down['axis'], hi)})"
        return fail(
            where, f"hook '{spec}' of the precondition on '{pre['gate']}' failed for {span}: {why}"
        )

    try:
        child = hooks.load_module(m["hook_path"])
        got = hooks.call(child, m["hook_func"], lo, hi)
    except (hooks.HookError, AttributeError) as e:  # the user's code
        raise bad(str(e)) from None
    try:
        if isinstance(got.value, str):
            raise TypeError
        a, b = (float(x) for x in got.value)  # type: ignore[union-attr]
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError
    except (TypeError, ValueError):
        raise bad(f"returned {got.text:.80}: not two numbers") from None
    if a > b:
        raise bad(f"returned {got.text:.80}: low is after high")
    return a, b


def map_range(pre: dict, down: dict, up: dict, lo: float, hi: float) -> tuple[float, float]:
    """The upstream range a downstream chunk [lo, hi) needs: convert axes, then the map."""
    m = pre["map"]
    if m.get("hook"):
        return _hook_range(pre, down, lo, hi)
    a = convert(lo, down["axis"], up["axis"])
    b = convert(hi, down["axis"], up["axis"])
    a += m.get("offset", 0) - m.get("before", 0)
    b += m.get("offset", 0) + m.get("after", 0)
    return a, b


def upstream_chunks(
    pre: dict, down: dict, up: dict, lo: float, hi: float
) -> list[tuple[float, float]]:
    a, b = map_range(pre, down, up, lo, hi)
    n = chunk_count(up, a, b)
    if n > MAX_INPUT_CHUNKS:
        m = pre["map"]
        how = f"hook '{Path(m['hook_path']).name}:{m['hook_func']}'" if m.get("hook") else "map"
        span = f"[{fmt_value(down['axis'], lo)}, {fmt_value(down['axis'], hi)})"
        raise fail(
            Loc(pre.get("source") or down["source"]),
            f"{how} of the precondition on '{pre['gate']}' asks {n} of its chunks for {span}, "
            f"more than the limit of {MAX_INPUT_CHUNKS}",
        )
    return wanted_chunks(up, a, b)
