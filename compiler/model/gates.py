"""Gates (JSOC's gate/ticket/task model): products along one ordered axis, made in
chunks of at most `maxrange` on a fixed grid, with preconditions on other gates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from compiler.core.diagnostics import Loc, fail, suggest
from compiler.core.limits import MAX_PARALLEL, check_name_length
from compiler.core.names import rule_name
from compiler.load import schema as S
from compiler.load.yamlpos import YList, YMap
from compiler.model import hooks
from compiler.model.axes import AXES, convert, convertible, fmt_value, parse_length, parse_value
from compiler.model.chunks import (
    DEFAULT_MAX_CHUNKS,
    MAX_INPUT_CHUNKS,
    MAX_WANT_CHUNKS,
    chunk_count,
    want_range,
    wanted_count,
)
from compiler.model.steps import STEP_NAME, RunDefaults, run_settings
from compiler.model.templates import parse_template
from compiler.model.types import Growth, Resources

GATE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.]*\Z")
CATCH_UP = ("oldest", "newest")
GATE_PLACEHOLDERS = ("low", "high", "gate", "python", "workflow_dir", "workdir", "attempt")


@dataclass(frozen=True)
class Precondition:
    gate: str
    loc: Loc
    offset: float = 0
    before: float = 0
    after: float = 0
    hook_path: str = ""
    hook_func: str = ""


@dataclass(frozen=True)
class Gate:
    name: str
    loc: Loc
    axis: str
    step: float
    origin: float
    maxrange: float
    want_low: float | None
    want_high: float | None  # None with want_now: the compile's "now"
    want_now: bool
    want_window: float | None  # only the last this much up to high is wanted
    want_loc: Loc | None
    command: str
    task: str
    coverage: str
    clock_lag: float | None
    parallel: int
    hold: bool
    gaps: tuple[tuple[float, float], ...]
    preconditions: tuple[Precondition, ...]
    keyed: bool
    resources: Resources
    retries: int
    growth: Growth
    max_failures: int
    max_chunks: int  # scheduled per cycle at most; the rest wait for later cycles
    catch_up: str = "oldest"  # which deferred chunks go first: oldest or newest

    @property
    def makeable(self) -> bool:
        return bool(self.command)

    def grid(self) -> dict:
        """The fields the chunk grid functions read (they take the manifest's dicts)."""
        return {
            "axis": self.axis,
            "origin": self.origin,
            "maxrange": self.maxrange,
            "want_low": self.want_low,
            "want_high": self.want_high,
            "want_now": self.want_now,
            "want_window": self.want_window,
        }


def check_want_size(g: Gate, now: float | None) -> None:
    """A wanted range is an input with a bound: past it, a cycle could never catch up.
    A want up to 'now' is checked at each compile, against that compile's now."""
    if g.want_loc is None or (g.want_now and now is None):
        return
    rng = want_range(g.grid(), now or 0)
    if rng is None:
        return
    n = chunk_count(g.grid(), *rng)
    if n > MAX_WANT_CHUNKS:
        hi = "now" if g.want_now else fmt_value(g.axis, rng[1])
        raise fail(
            g.want_loc,
            f"want: [{fmt_value(g.axis, rng[0])}, {hi}) is {n} chunks of gate '{g.name}', "
            f"more than the limit of {MAX_WANT_CHUNKS}: narrow it, give a window, or raise maxrange",
        )


def wanted_chunk_count(g: Gate, now: float) -> int:
    """Chunks of the gate's wanted range at `now` (permanent gaps left out), per key;
    0 for a gate that is not made (clock, source) or has no want."""
    grid = {**g.grid(), "gaps": g.gaps}
    rng = want_range(grid, now) if g.command else None
    return wanted_count(grid, *rng) if rng else 0


def _check_map_size(down: Gate, up: Gate, p: Precondition) -> None:
    """A map's inputs for one chunk are bounded; a hook's are checked when it answers."""
    if p.hook_path or not up.command:
        return
    a = convert(down.origin, down.axis, up.axis)
    b = convert(down.origin + down.maxrange, down.axis, up.axis)
    n = int((abs(b - a) + p.before + p.after) / up.maxrange) + 2
    if n > MAX_INPUT_CHUNKS:
        raise fail(
            p.loc,
            f"map of the precondition on '{p.gate}' asks about {n} of its chunks for one chunk "
            f"of '{down.name}', more than the limit of {MAX_INPUT_CHUNKS}: "
            f"shorten lookback/lookahead or raise the maxrange of '{p.gate}'",
        )


def _interval(m: YMap, axis: str, what: str) -> tuple[float, float]:
    lo = parse_value(axis, m["low"], m.val_loc("low"))
    hi = parse_value(axis, m["high"], m.val_loc("high"))
    if lo > hi:
        raise fail(m.loc, f"{what}: low {m['low']} is after high {m['high']}")
    return lo, hi


def _precondition(item, loc: Loc, wf_dir: Path, axis: str) -> Precondition:
    if isinstance(item, str):
        return Precondition(item, loc)
    p = S.check(item, S.PRECONDITION, loc)
    if "map" not in p:
        return Precondition(p["gate"], p.val_loc("gate"))
    m = S.check(p["map"], S.RANGE_MAP, p.val_loc("map"))
    if "hook" in m:
        if len(m) > 1:
            raise fail(m.loc, "a 'hook' map cannot be combined with offset/lookback/lookahead")
        spec = m["hook"]
        file, sep, func = spec.partition(":")
        if not sep or not file.endswith(".py") or not func.isidentifier():
            raise fail(m.val_loc("hook"), f"hook '{spec}' must be 'file.py:function'")
        path = (wf_dir / file).resolve()
        if Path(file).is_absolute() or wf_dir.resolve() not in path.parents or not path.is_file():
            raise fail(
                m.val_loc("hook"), f"hook file '{file}' is not a file inside the workflow directory"
            )
        try:
            mod = hooks.load_module(str(path))
        except hooks.HookError as e:  # the user's code: report, do not crash
            raise fail(m.val_loc("hook"), f"hook file '{file}' failed to load: {e}") from None
        if not hooks.has_function(mod, func):
            raise fail(m.val_loc("hook"), f"hook file '{file}' has no function '{func}'")
        return Precondition(p["gate"], p.val_loc("gate"), hook_path=str(path), hook_func=func)
    # Lengths of a map are in the upstream gate's units; they are read after the
    # upstream axis is known (see resolve_gates).
    return Precondition(
        p["gate"],
        p.val_loc("gate"),
        offset=m.get("offset", 0),  # type: ignore[arg-type]
        before=m.get("lookback", 0),  # type: ignore[arg-type]
        after=m.get("lookahead", 0),  # type: ignore[arg-type]
    )


def resolve_gates(
    doc: YMap,
    wf_dir: Path,
    base: RunDefaults,
    facets: set[str],
    has_datasets: bool,
    max_chunks_default: int = DEFAULT_MAX_CHUNKS,
) -> tuple[Gate, ...]:
    """`max_chunks_default`: the workflow's (or cycle config's) max_chunks_per_cycle, for
    gates that set no max_chunks of their own."""
    gates: dict[str, Gate] = {}
    raw_pre: dict[str, YMap] = {}
    rules: dict[str, str] = {}  # Snakefile rule name -> gate: 'a.b' and 'a_b' would clash
    for name, body in doc.items():
        nloc = doc.key_loc(name)
        if not GATE_NAME.match(name):
            raise fail(nloc, f"gate name '{name}' must be letters, digits, '_' and '.'")
        check_name_length(name, nloc, "gate name")
        other = rules.setdefault(rule_name(name), name)
        if other != name:
            raise fail(
                nloc,
                f"gate name '{name}' and gate '{other}' make the same Snakefile rule "
                f"'{rule_name(name)}' ('.' becomes '_'): rename one",
            )
        g = S.check(body, S.GATE, doc.val_loc(name))
        axis = g["axis"]
        if axis not in AXES:
            raise fail(
                g.val_loc("axis"),
                f"unknown axis '{axis}'{suggest(axis, AXES)}: use time, serial or carrington",
            )
        step = parse_length(axis, g.get("step", 1), g.val_loc("step"))
        if step <= 0:
            raise fail(g.val_loc("step"), f"step must be positive, not '{g.get('step')}'")
        origin = parse_value(
            axis,
            g.get("origin", "1970-01-01T00:00:00Z" if axis == "time" else 0),
            g.val_loc("origin"),
        )
        clock = S.check(g["clock"], S.CLOCK, g.val_loc("clock")) if "clock" in g else None
        command, coverage = g.get("command", ""), g.get("coverage", "")
        for key in ("command", "coverage"):
            if key in g and not g[key].strip():
                raise fail(g.val_loc(key), f"{key} of gate '{name}' is empty")
        if clock is not None and (command or coverage or "preconditions" in g):
            raise fail(
                g.key_loc("clock"),
                f"clock gate '{name}' takes no command, coverage or preconditions",
            )
        if clock is None and not command and not coverage:
            raise fail(
                g.loc,
                f"gate '{name}' needs a 'command' that makes chunks, a 'coverage' command, or a 'clock'",
            )
        if "maxrange" not in g and command:
            raise fail(g.loc, f"gate '{name}' is missing required key 'maxrange'")
        maxrange = parse_length(axis, g.get("maxrange", step), g.val_loc("maxrange"))
        if maxrange <= 0:
            raise fail(
                g.val_loc("maxrange"), f"maxrange must be positive, not '{g.get('maxrange')}'"
            )
        if abs(maxrange / step - round(maxrange / step)) > 1e-9:
            raise fail(
                g.val_loc("maxrange"),
                f"maxrange must be a whole number of steps ({g.get('step', 1)})",
            )
        want_low = want_high = want_window = want_loc = None
        want_now = False
        if "want" in g:
            w = S.check(g["want"], S.WANT, g.val_loc("want"))
            want_loc = w.loc
            if "window" in w:
                want_window = parse_length(axis, w["window"], w.val_loc("window"))
                if want_window <= 0:
                    raise fail(w.val_loc("window"), f"window must be positive, not '{w['window']}'")
            want_low = parse_value(axis, w["low"], w.val_loc("low"))
            if w["high"] == "now":
                if axis != "time":
                    raise fail(w.val_loc("high"), "'now' needs a time axis")
                want_now = True
            else:
                want_high = parse_value(axis, w["high"], w.val_loc("high"))
                if want_low > want_high:
                    raise fail(w.loc, f"want: low {w['low']} is after high {w['high']}")
        gaps = []
        if "gaps" in g:
            lst = g["gaps"]
            for i, item in enumerate(lst):
                gaps.append(_interval(S.check(item, S.INTERVAL, lst.item_loc(i)), axis, "gap"))
        state = g.get("state", "ACTIVE")
        if state not in ("ACTIVE", "HOLD"):
            raise fail(
                g.val_loc("state"),
                f"state must be ACTIVE or HOLD, not '{state}'{suggest(state, ('ACTIVE', 'HOLD'))}",
            )
        parallel = g.get("parallelOK", 1)
        if not 1 <= parallel <= MAX_PARALLEL:
            # Snakemake's --resources limit for the gate's rule: bounded like every count.
            raise fail(
                g.val_loc("parallelOK"), f"parallelOK must be between 1 and {MAX_PARALLEL:,}"
            )
        keyed = g.get("keyed", False)
        if keyed and not has_datasets:
            raise fail(
                g.key_loc("keyed"), "a keyed gate needs the workflow's 'datasets' to key it by"
            )
        task = g.get("task", "Make")
        if not STEP_NAME.match(task):
            raise fail(
                g.val_loc("task"), f"task name '{task}' must be a letter then letters, digits or _"
            )
        known = set(GATE_PLACEHOLDERS) | ({"dataset"} | facets if keyed else set())
        if command:
            parse_template(
                command, g.val_loc("command"), known, f"command of gate '{name}'", shell=True
            )
        if coverage:
            parse_template(
                coverage,
                g.val_loc("coverage"),
                set(GATE_PLACEHOLDERS) | {"dataset"} | facets,
                f"coverage of gate '{name}'",
                shell=True,
            )
        resources, retries, growth = run_settings(g, base, f"gate '{name}'")
        max_failures = g.get("max_failures", 3)
        if not 1 <= max_failures <= 100:
            raise fail(g.val_loc("max_failures"), "max_failures must be between 1 and 100")
        max_chunks = g.get("max_chunks", max_chunks_default)
        if not 1 <= max_chunks <= MAX_WANT_CHUNKS:
            raise fail(
                g.val_loc("max_chunks"), f"max_chunks must be between 1 and {MAX_WANT_CHUNKS}"
            )
        catch_up = g.get("catch_up", "oldest")
        if catch_up not in CATCH_UP:
            raise fail(
                g.val_loc("catch_up"),
                f"catch_up must be oldest or newest, not '{catch_up}'{suggest(catch_up, CATCH_UP)}",
            )
        pres = []
        if "preconditions" in g:
            S.check_kind(
                g["preconditions"], (S.LIST,), g.val_loc("preconditions"), "'preconditions'"
            )
            lst = g["preconditions"]
            assert isinstance(lst, YList)
            pres = [
                _precondition(item, lst.item_loc(i), wf_dir, axis) for i, item in enumerate(lst)
            ]
            raw_pre[name] = g
        gates[name] = Gate(
            name=name,
            loc=nloc,
            axis=axis,
            step=step,
            origin=origin,
            maxrange=maxrange,
            want_low=want_low,
            want_high=want_high,
            want_now=want_now,
            want_window=want_window,
            want_loc=want_loc,
            command=command,
            task=task,
            coverage=coverage,
            clock_lag=parse_length("time", clock["lag"], clock.val_loc("lag")) if clock else None,
            parallel=parallel,
            hold=state == "HOLD",
            gaps=tuple(gaps),
            preconditions=tuple(pres),
            keyed=keyed,
            resources=resources,
            retries=retries,
            growth=growth,
            max_failures=max_failures,
            max_chunks=max_chunks,
            catch_up=catch_up,
        )
        check_want_size(gates[name], None)
    # Preconditions: known gates, convertible axes, no cycles. Map lengths are read in
    # the upstream gate's units.
    for name, gate in list(gates.items()):
        fixed = []
        for p in gate.preconditions:
            up = gates.get(p.gate)
            if up is None:
                raise fail(
                    p.loc, f"precondition on unknown gate '{p.gate}'{suggest(p.gate, gates)}"
                )
            if p.gate == name:
                raise fail(p.loc, f"gate '{name}' cannot be its own precondition")
            if not p.hook_path and not convertible(gate.axis, up.axis):
                raise fail(
                    p.loc,
                    f"cannot map a {gate.axis} axis onto {up.axis} gate '{p.gate}': give a map hook",
                )
            if up.keyed and not gate.keyed:
                raise fail(
                    p.loc, f"gate '{name}' is not keyed, so it cannot need keyed gate '{p.gate}'"
                )
            before = parse_length(up.axis, p.before, p.loc, signed=True) if p.before else 0
            after = parse_length(up.axis, p.after, p.loc, signed=True) if p.after else 0
            if before < 0 or after < 0:
                raise fail(
                    p.loc,
                    f"lookback and lookahead must not be negative (shift with 'offset'), "
                    f"not '{p.before if before < 0 else p.after}'",
                )
            q = Precondition(
                p.gate,
                p.loc,
                offset=parse_length(up.axis, p.offset, p.loc, signed=True) if p.offset else 0,
                before=before,
                after=after,
                hook_path=p.hook_path,
                hook_func=p.hook_func,
            )
            _check_map_size(gate, up, q)
            fixed.append(q)
        gates[name] = _replace_pres(gate, tuple(fixed))
    _check_cycles(gates)
    return tuple(gates.values())


def _replace_pres(g: Gate, pres: tuple[Precondition, ...]) -> Gate:
    from dataclasses import replace

    return replace(g, preconditions=pres)


def _check_cycles(gates: dict[str, Gate]) -> None:
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for p in gates[n].preconditions:
            if state.get(p.gate) == 1:
                cycle = path[path.index(p.gate) :] + [n, p.gate] if p.gate in path else [n, p.gate]
                raise fail(
                    p.loc,
                    "preconditions form a cycle: "
                    + " -> ".join(dict.fromkeys(cycle))
                    + f" -> {p.gate}",
                )
            if p.gate not in state:
                visit(p.gate, path + [n])
        state[n] = 2

    for n in gates:
        if n not in state:
            visit(n, [])


def gate_json(g: Gate) -> dict:
    return {
        "axis": g.axis,
        "step": g.step,
        "origin": g.origin,
        "maxrange": g.maxrange,
        "want_low": g.want_low,
        "want_high": g.want_high,
        "want_now": g.want_now,
        "want_window": g.want_window,
        "command": g.command,
        "task": g.task,
        "coverage": g.coverage,
        "clock_lag": g.clock_lag,
        "parallel": g.parallel,
        "hold": g.hold,
        "gaps": [list(x) for x in g.gaps],
        "preconditions": [
            {
                "gate": p.gate,
                "source": str(p.loc),  # where a failing map hook is reported
                "map": {
                    "offset": p.offset,
                    "before": p.before,
                    "after": p.after,
                    "hook": bool(p.hook_path),
                    "hook_path": p.hook_path,
                    "hook_func": p.hook_func,
                },
            }
            for p in g.preconditions
        ],
        "keyed": g.keyed,
        "resources": g.resources.__dict__,
        "retries": g.retries,
        "growth": g.growth.__dict__,
        "max_failures": g.max_failures,
        "max_chunks": g.max_chunks,
        "catch_up": g.catch_up,
        "source": str(g.loc),
    }
