"""Chunk grid and precondition mapping, on gates as the manifest stores them.

Chunk k of a gate covers [origin + k*size, origin + (k+1)*size). Every request is
widened to whole chunks of this fixed grid, so two overlapping requests name the
same chunks and nothing is made twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from compiler.core.diagnostics import CompileError, Loc, fail
from compiler.model import hooks
from compiler.model.axes import convert, fmt_value


def chunk_range(gate: dict, low: float, high: float) -> Iterator[tuple[float, float]]:
    """The grid chunks that overlap [low, high)."""
    o, size = gate["origin"], gate["maxrange"]
    if high <= low:
        return
    first = math.floor((low - o) / size + 1e-9)
    last = math.ceil((high - o) / size - 1e-9)
    for k in range(first, last):
        yield (_num(o + k * size), _num(o + (k + 1) * size))


def _num(v: float) -> float:
    return int(v) if float(v).is_integer() else v


def in_gap(gate: dict, lo: float, hi: float) -> bool:
    """A chunk wholly inside a permanent gap is never asked for."""
    return any(g_lo <= lo and hi <= g_hi for g_lo, g_hi in gate["gaps"])


def wanted_chunks(gate: dict, low: float, high: float) -> list[tuple[float, float]]:
    return [c for c in chunk_range(gate, low, high) if not in_gap(gate, *c)]


@lru_cache(maxsize=64)
def _hook(path: str, func: str):
    return getattr(hooks.load_module(path, f"padocc_hook_{abs(hash(path))}"), func)


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
        got = hooks.call(_hook(m["hook_path"], m["hook_func"]), lo, hi)
    except (hooks.HookError, AttributeError) as e:  # the user's code
        raise bad(str(e)) from None
    try:
        a, b = (float(x) for x in got)
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError
    except (TypeError, ValueError):
        raise bad(f"returned {got!r:.80}: not two numbers") from None
    if a > b:
        raise bad(f"returned {got!r:.80}: low is after high")
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
    return wanted_chunks(up, a, b)
