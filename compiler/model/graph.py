"""Resolve and check the transition graph (datasm's transitions.yaml format).

A key is `Step:State`; its value maps a routing key (or `default`) to a list of
targets. `X:Ready -> X:Engaged` runs step X. A bare `Pass`/`Fail` ends the graph;
in a sub-workflow it returns to the parent as `SUB:Pass`/`SUB:Fail`. A target
`SUB:Ready` where SUB names a sub-directory's graph enters that graph.

The rule for severities (documented in the README):
  error   - something a dataset of the spec can reach is wrong: an unknown step,
            state or sub-workflow, a case-only mismatch, a dead end, a loop with no step.
  warning - it cannot affect any dataset: unreachable entries (and problems inside
            them), routing keys no dataset produces, extra targets that are ignored,
            steps defined but never run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from compiler.core.diagnostics import Diagnostic, Loc, fail, suggest
from compiler.load.workflow import RawGraphFile
from compiler.load.yamlpos import YMap
from compiler.model.types import Action, Graph, SubGraph

BASE_STATES = ("Ready", "Engaged", "Pass", "Fail")
FINAL = ("Pass", "Fail")
MAX_HOPS = 64


def _norm(name: str) -> str:
    return re.sub(r"[-_ ]", "", name).lower()


@dataclass
class _File:
    name: str
    shown: str
    parent: str | None
    # (step, state) -> (key loc, {routing key: [(target, loc)]})
    entries: dict[tuple[str, str], tuple[Loc, dict[str, list[tuple[str, Loc]]], dict[str, Loc]]] = (
        field(default_factory=dict)
    )
    children: dict[str, str] = field(default_factory=dict)  # sub-workflow name -> its file name


class _Checker:
    def __init__(
        self,
        root: RawGraphFile,
        entry: tuple[str, Loc] | None,
        steps: dict[str, tuple[str, ...]],
        states: set[str],
        keys: set[str],
    ):
        self.steps = steps  # step name -> custom outcome states
        self.states = states
        self.keys = keys
        self.findings: dict[tuple[Loc, str], str] = {}
        self.files: dict[str, _File] = {}
        self.visited: set[tuple[str, str, str]] = set()
        first = next(iter(root.data), None)
        if entry:
            ename, eloc = entry
        elif first:
            ename, eloc = first, root.data.key_loc(first)
        else:
            raise fail(Loc(root.shown), "transition graph is empty")
        estep, estate = self._split(ename, eloc, strict=True)
        self.root = estep
        self.entry = (estep, estate, eloc)
        self._add_file(root, estep, None)

    # -- loading ---------------------------------------------------------------------------
    def _split(self, text: str, loc: Loc, strict: bool = False) -> tuple[str, str]:
        step, sep, state = text.partition(":")
        step, state = step.strip(), state.strip()
        if not sep or not step or not state or ":" in state:
            raise fail(loc, f"'{text}' is not of the form Step:State")
        if state not in self.states:
            msg = f"unknown state '{state}' in '{text}'{suggest(state, self.states)}"
            if strict:
                raise fail(loc, msg)
            self.report(loc, msg)
        return step, state

    def _add_file(self, raw: RawGraphFile, name: str, parent: str | None) -> None:
        if name in self.files:
            raise fail(
                Loc(raw.shown),
                f"sub-workflow name '{name}' is used twice (also {self.files[name].shown})",
            )
        f = _File(name, raw.shown, parent)
        self.files[name] = f
        data: YMap = raw.data
        for key, routes in data.items():
            kloc = data.key_loc(key)
            targets = {}
            for r, v in routes.items():
                if isinstance(v, list):
                    targets[r] = [(str(t), v.item_loc(i)) for i, t in enumerate(v)]
                else:
                    targets[r] = [(str(v), routes.val_loc(r))]
            if ":" not in key:
                if key in FINAL and all(t == key for ts in targets.values() for t, _ in ts):
                    continue  # datasm's `Pass: {default: [Pass]}` declarations
                raise fail(kloc, f"key '{key}' is not of the form Step:State")
            step, state = self._split(key, kloc, strict=True)
            if (step, state) in f.entries:
                raise fail(kloc, f"'{key}' is defined twice")
            f.entries[(step, state)] = (kloc, targets, {r: routes.key_loc(r) for r in routes})
            for r, ts in targets.items():
                if len(ts) > 1:
                    self.warn(
                        ts[1][1],
                        f"'{key}' lists {len(ts)} targets for '{r}'; only the first, "
                        f"'{ts[0][0]}', is used",
                    )
        for child in raw.children:
            cname = self._sub_name(child)
            f.children[cname] = cname
            self._add_file(child, cname, name)

    def _sub_name(self, raw: RawGraphFile) -> str:
        for key in raw.data:
            step, _, state = key.partition(":")
            if state.strip() == "Ready" and _norm(step) == _norm(raw.dirname):
                return step.strip()
        first = next(iter(raw.data))
        self.warn(
            raw.data.key_loc(first),
            f"no '<name>:Ready' entry matches directory '{raw.dirname}'; "
            f"taking '{first.partition(':')[0]}' as the sub-workflow name",
        )
        return first.partition(":")[0].strip()

    # -- findings --------------------------------------------------------------------------
    def report(self, loc: Loc, message: str) -> None:
        self.findings.setdefault((loc, message), "error")

    def warn(self, loc: Loc, message: str) -> None:
        self.findings.setdefault((loc, message), "warning")

    def _case_match(self, f: _File, step: str, state: str) -> tuple[str, str, str] | None:
        """The node a case-only misspelling most likely means, as (graph, step, state)."""
        want = (step.lower(), state.lower())
        for s, t in f.entries:
            if (s.lower(), t.lower()) == want:
                return (f.name, s, t)
        if state.lower() == "ready":
            for c in f.children:
                if c.lower() == step.lower():
                    return (c, c, "Ready")
        if state.lower() == "engaged":
            for s in self.steps:
                if s.lower() == step.lower():
                    return (f.name, s, "Engaged")
        return None

    # -- resolution ------------------------------------------------------------------------
    def node(
        self, g: str, step: str, state: str, k: str, ref: Loc, hops: int, quiet: bool
    ) -> Action:
        f = self.files[g]
        if hops > MAX_HOPS:
            return self._stuck(
                ref, f"routing loop without a step through '{step}:{state}' in {f.shown}", quiet
            )
        if state == "Engaged" and step in self.steps:
            return Action("run", sub=g, step=step)
        ent = f.entries.get((step, state))
        if ent is not None:
            if not quiet:
                self.visited.add((g, step, state))
            kloc, targets, _ = ent
            ts = targets.get(k) if k in targets else targets.get("default")
            if not ts:
                return self._stuck(
                    kloc,
                    f"'{step}:{state}' has no route for routing key '{k}' and no default",
                    quiet,
                )
            t, tloc = ts[0]
            return self.target(g, t, tloc, k, hops + 1, quiet)
        if state == "Ready" and step in f.children:
            return self.node(f.children[step], step, "Ready", k, ref, hops + 1, quiet)
        if f.parent is None and step == self.root and state in FINAL:
            return Action("final", state=state)
        # Nothing matches: say why, and where a case-only slip explains it, go on as if
        # it were spelled right so the defects behind it are found in the same run.
        near = self._case_match(f, step, state)
        hint = f"; it differs only in case from '{near[1]}:{near[2]}'" if near else ""
        if step in f.children or (self.files.get(step) and self.files[step].parent == g):
            msg = f"dead end: sub-workflow '{step}' ends in '{state}', but {f.shown} has no '{step}:{state}'{hint}"
        elif state == "Engaged":
            msg = f"unknown step '{step}': no step of that name is defined{hint or suggest(step, self.steps)}"
        elif step in self.steps or any(s == step for s, _ in f.entries):
            msg = f"dead end: '{step}:{state}' has no transition in {f.shown}{hint}"
        elif hint:
            msg = f"unknown step '{step}' in '{step}:{state}'{hint}"
        else:
            msg = f"unknown step '{step}' in '{step}:{state}': not a step, sub-workflow or entry of this graph"
        act = self._stuck(ref, msg, quiet)
        if near and not quiet:
            return self.node(near[0], near[1], near[2], k, ref, hops + 1, quiet)
        return act

    def target(self, g: str, t: str, tloc: Loc, k: str, hops: int, quiet: bool) -> Action:
        f = self.files[g]
        if t in FINAL:
            if f.parent is None:
                return Action("final", state=t)
            return self.node(f.parent, g, t, k, tloc, hops + 1, quiet)
        if ":" not in t:
            return self._stuck(tloc, f"target '{t}' is not Pass, Fail or Step:State", quiet)
        step, state = t.split(":", 1)
        if state not in self.states:
            return self._stuck(
                tloc, f"unknown state '{state}' in '{t}'{suggest(state, self.states)}", quiet
            )
        return self.node(g, step, state, k, tloc, hops, quiet)

    def _stuck(self, loc: Loc, message: str, quiet: bool) -> Action:
        self.last_stuck = (loc, message)
        if not quiet:
            self.report(loc, message)
        return Action("stuck", reason=f"{loc}: {message}")

    def outcomes(self, step: str) -> tuple[str, ...]:
        return FINAL + self.steps.get(step, ())


def resolve_graph(
    root: RawGraphFile,
    entry: tuple[str, Loc] | None,
    steps: dict[str, tuple[str, ...]],
    keys: set[str],
    step_locs: dict[str, Loc],
) -> Graph:
    custom = {s for outs in steps.values() for s in outs}
    states = set(BASE_STATES) | custom
    c = _Checker(root, entry, steps, states, keys)
    estep, estate, eloc = c.entry
    route_keys = sorted(keys) or [""]

    # Simulate every routing key the datasets produce, from the entry onwards.
    runs: dict[tuple[str, str], Loc] = {}
    for k in route_keys:
        seen: set[tuple[str, str, str]] = set()
        todo = [(c.root, estep, estate, eloc)]
        while todo:
            g, step, state, ref = todo.pop()
            if (g, step, state) in seen:
                continue
            seen.add((g, step, state))
            act = c.node(g, step, state, k, ref, 0, quiet=False)
            if act.kind == "run":
                rloc = _engaged_loc(c, act) or ref
                runs.setdefault((act.sub, act.step), rloc)
                for out in c.outcomes(act.step):
                    todo.append((act.sub, act.step, out, rloc))

    # Static pass over what no dataset reaches: problems there are warnings.
    for g, f in c.files.items():
        whole = not any(v[0] == g for v in c.visited)
        if whole and f.entries:
            first = next(iter(f.entries.values()))[0]
            c.warn(first, f"unreachable: no dataset of the spec enters {f.shown}")
        for (step, state), (kloc, targets, rlocs) in f.entries.items():
            if (g, step, state) not in c.visited:
                if not whole:
                    c.warn(kloc, f"unreachable: no dataset of the spec reaches '{step}:{state}'")
                for r, ts in targets.items():
                    for t, tloc in ts[:1]:
                        act = c.target(g, t, tloc, r if r != "default" else "", 0, quiet=True)
                        if act.kind == "stuck":
                            c.warn(*c.last_stuck)
            for r, rloc in rlocs.items():
                if keys and r != "default" and r not in keys:
                    c.warn(
                        rloc,
                        f"routing key '{r}' of '{step}:{state}' is produced by no dataset of the spec"
                        f"{suggest(r, keys)}",
                    )
    engaged = {s for _, s in runs}
    for name, loc in step_locs.items():
        if name not in engaged:
            c.warn(loc, f"step '{name}' is defined but no dataset reaches '{name}:Engaged'")

    table = _table(c, route_keys, runs, (c.root, estep, estate))
    findings = tuple(Diagnostic(loc, msg, sev) for (loc, msg), sev in c.findings.items())
    findings = tuple(
        sorted(findings, key=lambda d: (d.severity != "error", d.loc.file, d.loc.line, d.loc.col))
    )
    subs = tuple(SubGraph(f.name, f.shown, f.parent) for f in c.files.values())
    return Graph(c.root, f"{c.root}/{estep}:{estate}", subs, table, findings)


def _engaged_loc(c: _Checker, act: Action) -> Loc | None:
    f = c.files[act.sub]
    ent = f.entries.get((act.step, "Ready"))
    if ent:
        for ts in ent[1].values():
            for t, tloc in ts:
                if t.strip() == f"{act.step}:Engaged":
                    return tloc
    return None


def _table(
    c: _Checker, keys: list[str], runs: dict[tuple[str, str], Loc], entry: tuple[str, str, str]
):
    """Position -> routing key -> action, for every position a dataset can be in."""
    positions = {entry}
    for g, step in runs:
        positions.add((g, step, "Ready"))  # where a manual re-queue puts a dataset
        for out in c.outcomes(step):
            positions.add((g, step, out))
    table = []
    for g, step, state in sorted(positions):
        acts: dict[str, Action] = {}
        default = c.node(g, step, state, "", Loc(""), 0, quiet=True)
        acts[""] = default
        for k in keys:
            if k:
                a = c.node(g, step, state, k, Loc(""), 0, quiet=True)
                if a != default:
                    acts[k] = a
        table.append((f"{g}/{step}:{state}", tuple(sorted(acts.items()))))
    return tuple(table)
