"""Steps: command templates, SLURM resources, retries and how resources grow."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.core.diagnostics import Loc, fail
from compiler.core.growth import grown_resources
from compiler.core.limits import (
    MAX_CPUS,
    MAX_MEM_MB,
    MAX_RUNTIME_MIN,
    MAX_STEPS,
    check_name_length,
)
from compiler.load import schema as S
from compiler.load.workflow import RawStep
from compiler.load.yamlpos import YMap
from compiler.model.templates import parse_template
from compiler.model.types import Growth, Resources, RetryDelay, Step

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:I?B)?\s*\Z", re.IGNORECASE)
_MB = {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2, "P": 1024**3}
_DUR = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])", re.IGNORECASE)
_MIN = {"d": 1440, "h": 60, "m": 1, "s": 1 / 60}

STEP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
STATE_NAME = STEP_NAME
BUILTIN_PLACEHOLDERS = ("dataset", "workdir", "attempt", "step", "python", "workflow_dir")


def parse_mem_mb(value: Any, loc: Loc) -> int:
    """'16G' is 16384 MB, not 1 (SHEPARD parsed only the first character). Bare numbers are MB."""
    if isinstance(value, bool):
        raise fail(loc, "memory must be a number of MB or a size like '16G'")
    if isinstance(value, (int, float)):
        mb = float(value)
    else:
        m = _SIZE.match(str(value))
        if not m:
            raise fail(
                loc, f"cannot read memory size '{value}': use MB or a size like '16G', '500M'"
            )
        mb = float(m.group(1)) * _MB[m.group(2).upper()]
    if mb <= 0:
        raise fail(loc, f"memory must be positive, not '{value}'")
    if mb > MAX_MEM_MB:
        raise fail(loc, f"memory '{value}' is more than the limit of {MAX_MEM_MB // 1024**2}T")
    return max(1, math.ceil(mb))


def parse_minutes(value: Any, loc: Loc, what: str = "runtime") -> int:
    """Minutes from 90, '90m', '2h', '1h30m', '1d' or 'HH:MM:SS'."""
    if isinstance(value, bool):
        raise fail(loc, f"{what} must be minutes or a duration like '2h'")
    if isinstance(value, (int, float)):
        minutes = float(value)
    else:
        s = str(value).strip()
        if re.fullmatch(r"\d+:\d{1,2}(:\d{1,2})?", s):
            parts = [int(p) for p in s.split(":")]
            h, m, sec = (parts + [0])[:3] if len(parts) == 2 else parts
            minutes = h * 60 + m + sec / 60
        elif re.fullmatch(r"(\s*\d+(?:\.\d+)?\s*[dhms])+\s*", s, re.IGNORECASE):
            minutes = sum(float(n) * _MIN[u.lower()] for n, u in _DUR.findall(s))
        elif re.fullmatch(r"\d+", s):
            minutes = float(s)
        else:
            raise fail(
                loc, f"cannot read duration '{value}': use minutes or e.g. '2h', '90m', '1:30:00'"
            )
    if minutes <= 0:
        raise fail(loc, f"{what} must be positive, not '{value}'")
    if minutes > MAX_RUNTIME_MIN:
        raise fail(loc, f"{what} '{value}' is more than the limit of {MAX_RUNTIME_MIN // 1440}d")
    return max(1, math.ceil(minutes))


DEFAULT_RES = dict(runtime=60, mem_mb=1000, cpus_per_task=1, slurm_partition="", slurm_account="")


def _resources(m: YMap | None, base: dict) -> dict:
    out = dict(base)
    if not m:
        return out
    m = S.check(m, S.RESOURCES, m.loc)
    if "mem" in m and "mem_mb" in m:
        raise fail(m.key_loc("mem"), "give 'mem' or 'mem_mb', not both")
    for key in ("mem", "mem_mb"):
        if key in m:
            out["mem_mb"] = parse_mem_mb(m[key], m.val_loc(key))
    if "runtime" in m:
        out["runtime"] = parse_minutes(m["runtime"], m.val_loc("runtime"))
    if "cpus_per_task" in m:
        if not 1 <= m["cpus_per_task"] <= MAX_CPUS:
            raise fail(
                m.val_loc("cpus_per_task"), f"cpus_per_task must be between 1 and {MAX_CPUS}"
            )
        out["cpus_per_task"] = m["cpus_per_task"]
    for key in ("slurm_partition", "slurm_account"):
        if key in m:
            if not re.fullmatch(r"[A-Za-z0-9_.-]*", m[key]):
                raise fail(
                    m.val_loc(key), f"{key} '{m[key]}' holds characters SLURM does not accept"
                )
            out[key] = m[key]
    return out


def _growth(m: YMap | None, base: dict) -> dict:
    out = dict(base)
    if not m:
        return out
    m = S.check(m, S.RETRY_GROWTH, m.loc)
    for key in ("mem_factor", "runtime_factor"):
        if key in m:
            if not 1 <= float(m[key]) <= 100:
                raise fail(m.val_loc(key), f"{key} must be between 1 and 100")
            out[key] = float(m[key])
    if "mem_max" in m:
        out["mem_max"] = parse_mem_mb(m["mem_max"], m.val_loc("mem_max"))
    if "runtime_max" in m:
        out["runtime_max"] = parse_minutes(m["runtime_max"], m.val_loc("runtime_max"))
    return out


def _retries(m: YMap, key: str, default: int) -> int:
    if key not in m:
        return default
    if not 0 <= m[key] <= 20:
        raise fail(m.val_loc(key), f"{key} must be between 0 and 20")
    return m[key]


def _retry_delay(m: YMap | None, base: RetryDelay) -> RetryDelay:
    """retry_delay / retry_backoff / retry_delay_max over the defaults' (0 is no delay)."""
    if not m:
        return base
    delay, backoff, most = base.delay_min, base.backoff, base.max_min
    if "retry_delay" in m:
        v = m["retry_delay"]
        delay = 0 if v == 0 else parse_minutes(v, m.val_loc("retry_delay"), "retry_delay")
    if "retry_backoff" in m:
        if not 1 <= float(m["retry_backoff"]) <= 100:
            raise fail(m.val_loc("retry_backoff"), "retry_backoff must be between 1 and 100")
        backoff = float(m["retry_backoff"])
    if "retry_delay_max" in m:
        loc = m.val_loc("retry_delay_max")
        most = parse_minutes(m["retry_delay_max"], loc, "retry_delay_max")
        if most < delay:
            raise fail(loc, "retry_delay_max is below retry_delay")
    return RetryDelay(delay, backoff, most)


@dataclass(frozen=True)
class RunDefaults:
    """The workflow's `defaults:`, which every step and gate starts from."""

    resources: dict
    growth: dict
    retries: int
    delay: RetryDelay = RetryDelay()


def run_defaults(defaults: YMap | None) -> RunDefaults:
    return RunDefaults(
        _resources(defaults.get("resources") if defaults else None, DEFAULT_RES),
        _growth(
            defaults.get("retry_growth") if defaults else None,
            dict(mem_factor=2.0, mem_max=0, runtime_factor=1.5, runtime_max=0),
        ),
        _retries(defaults, "retries", 0) if defaults else 0,
        _retry_delay(defaults, RetryDelay()),
    )


def run_settings(body: YMap, base: RunDefaults, what: str) -> tuple[Resources, int, Growth]:
    """Resources, retries and their growth for one step or gate, over the defaults."""
    res = _resources(body.get("resources"), base.resources)
    g = _growth(body.get("retry_growth"), base.growth)
    # Caps default to 8x memory and 4x time of the first attempt.
    mem_max = g["mem_max"] or min(res["mem_mb"] * 8, MAX_MEM_MB)
    rt_max = g["runtime_max"] or min(res["runtime"] * 4, MAX_RUNTIME_MIN)
    if mem_max < res["mem_mb"]:
        raise fail(body.loc, f"{what}: mem_max is below the memory of the first attempt")
    if rt_max < res["runtime"]:
        raise fail(body.loc, f"{what}: runtime_max is below the runtime of the first attempt")
    growth = Growth(g["mem_factor"], mem_max, g["runtime_factor"], rt_max)
    return Resources(**res), _retries(body, "retries", base.retries), growth


def resolve_steps(raw: list[RawStep], defaults: YMap | None, facets: set[str]) -> tuple[Step, ...]:
    base = run_defaults(defaults)
    known = set(facets) | set(BUILTIN_PLACEHOLDERS)
    steps = []
    for n, rs in enumerate(raw, start=1):
        if n > MAX_STEPS:
            raise fail(rs.loc, f"a workflow has at most {MAX_STEPS} steps")
        if not STEP_NAME.match(rs.name):
            raise fail(rs.loc, f"step name '{rs.name}' must be a letter then letters, digits or _")
        check_name_length(rs.name, rs.loc, "step name")
        b = rs.body
        if not b["command"].strip():
            raise fail(b.val_loc("command"), f"command of step '{rs.name}' is empty")
        parse_template(
            b["command"], b.val_loc("command"), known, f"command of step '{rs.name}'", shell=True
        )
        resources, retries, growth = run_settings(b, base, f"step '{rs.name}'")
        states = S.str_list(b.get("states", []), b.val_loc("states"), "'states'")
        for st, sloc in states:
            check_name_length(st, sloc, "state name")
            if not STATE_NAME.match(st) or st in (
                "Ready",
                "Engaged",
                "Pass",
                "Fail",
                "Retry",
                "Cancelled",
                "Blocked",
                "Unblocked",
                "Quarantined",
            ):
                raise fail(
                    sloc,
                    f"'{st}' cannot be a custom state: it must be a new name of letters and digits",
                )
        files = {}
        for key in ("inputs", "outputs", "temp"):
            entries = S.str_list(b.get(key, []), b.val_loc(key), f"'{key}'")
            for text, floc in entries:
                parse_template(text, floc, known, f"{key} of step '{rs.name}'")
                if text.startswith("/") and key != "inputs" or ".." in Path(text).parts:
                    raise fail(floc, f"{key} of step '{rs.name}' must stay inside the work dir")
            files[key] = tuple(t for t, _ in entries)
        steps.append(
            Step(
                name=rs.name,
                loc=rs.loc,
                command=b["command"],
                resources=resources,
                retries=retries,
                growth=growth,
                retry_delay=_retry_delay(b, base.delay),
                states=tuple(s for s, _ in states),
                **files,
            )
        )
    return tuple(steps)


def grown(step: Step, attempt: int) -> dict:
    """Resources for a given attempt (1-based), grown and capped."""
    return grown_resources(step.resources.__dict__, step.growth.__dict__, attempt)
