"""`notify:`: the command run when a dataset needs a person (it ended in Fail, was
quarantined, or made no progress for `stuck_after`) or a cycle failed."""

from __future__ import annotations

from compiler.core.diagnostics import Loc, fail, suggest
from compiler.load import schema as S
from compiler.load.yamlpos import YMap
from compiler.model.axes import parse_duration_s
from compiler.model.types import Notify

EVENTS = ("fail", "quarantined", "stuck", "cycle_failed")
DEFAULT_TIMEOUT_S = 60
MAX_TIMEOUT_S = 3600


def resolve_notify(value: object, loc: Loc) -> Notify:
    m = S.check(value, S.NOTIFY, loc)
    assert isinstance(m, YMap)
    if not m["command"].strip():
        raise fail(m.val_loc("command"), "notify command is empty")
    events = tuple(EVENTS)
    if "on" in m:
        named = S.str_list(m["on"], m.val_loc("on"), "'on'")
        for ev, eloc in named:
            if ev not in EVENTS:
                raise fail(eloc, f"unknown notify event '{ev}'{suggest(ev, EVENTS)}: "
                           f"use {', '.join(EVENTS)}")  # fmt: skip
        events = tuple(e for e in EVENTS if e in {ev for ev, _ in named})
    stuck = 0
    if "stuck_after" in m:
        stuck = parse_duration_s(m["stuck_after"], m.val_loc("stuck_after"))
        if stuck < 60:
            raise fail(m.val_loc("stuck_after"), "stuck_after must be at least 1m")
    timeout = DEFAULT_TIMEOUT_S
    if "timeout" in m:
        timeout = parse_duration_s(m["timeout"], m.val_loc("timeout"))
        if not 1 <= timeout <= MAX_TIMEOUT_S:
            raise fail(m.val_loc("timeout"), "notify timeout must be between 1s and 1h")
    return Notify(m["command"], events, stuck, timeout, str(loc))
