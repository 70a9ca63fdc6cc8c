"""Resolve and check the transition graph (datasm's transitions.yaml format).

A key is `Step:State`; its value maps a routing key (or `default`) to a list of
targets. `X:Ready -> X:Engaged` runs step X. A bare `Pass`/`Fail` ends the graph;
in a sub-workflow it returns to the parent as `SUB:Pass`/`SUB:Fail`, SUB in capitals.
A target `SUB:Ready` where SUB names a sub-directory's graph (in any case) enters it.
Names are compared as datasm compares them: see `_Checker`.

The rule for severities (documented in the README):
  error   - something a dataset of the spec can reach is wrong: an unknown step,
            state or sub-workflow, a key missed by case, a dead end, a loop with no
            step, a routing key that misses a produced one by case; anywhere: steps,
            states or keys that differ only in case, keys with an unknown state.
  warning - it cannot affect any dataset: unreachable entries (and problems inside
            them), routes under routing keys no dataset produces (their targets get
            the same name checks), keys shadowed by an outer graph's, extra targets
            that are ignored, steps defined but never run.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from compiler.core.diagnostics import Diagnostic, Loc, fail, suggest
from compiler.core.limits import MAX_GRAPH_ENTRIES
from compiler.load.workflow import RawGraphFile
from compiler.load.yamlpos import YMap
from compiler.model.types import Action, Graph, SubGraph

BASE_STATES = ("Ready", "Engaged", "Pass", "Fail")
FINAL = ("Pass", "Fail")
MAX_HOPS = 64


def _norm(name: str) -> str:
    return re.sub(r"[-_ ]", "", name).lower()


@dataclass
class _Entry:
    loc: Loc
    targets: dict[str, list[tuple[str, Loc]]]  # routing key -> [(target, loc)]
    route_locs: dict[str, Loc]


@dataclass
class _File:
    name: str  # as its `<name>:Ready` key spells it: positions and status lines use it
    upper: str  # datasm's identity of a sub-workflow: `NAME.upper()`
    shown: str
    parent: str | None
    entries: dict[tuple[str, str], _Entry] = field(default_factory=dict)
    kids: dict[str, str] = field(default_factory=dict)  # UPPER name -> sub-workflow name


class _Checker:
    """datasm's comparisons (datasm/workflows/__init__.py, `Workflow.next_state`):

    - a sub-workflow is found by its name in any case (`state_attrs[idx].upper()` in the
      children, keyed by `NAME.upper()`);
    - a key is found exactly (`test_state in self.transitions`), in the sub-workflow too;
    - a sub-workflow ends by writing `<NAME.upper()>:Pass`/`Fail`, which the parent's
      keys must hold exactly;
    - a routing key is looked up exactly (`.get(target_data_type)`, else `default`);
    - `X:Engaged` runs the job class named exactly X.
    """

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
        self.routes_taken: set[tuple[str, str, str, str]] = set()
        self.run_ref = Loc("")
        self.entry_count = 0  # keys over every file of the graph: bounded (MAX_GRAPH_ENTRIES)
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
            self.report(loc, msg)  # every such key is reported in one run
        return step, state

    def _add_file(self, raw: RawGraphFile, name: str, parent: str | None) -> None:
        for other in self.files.values():
            if other.upper == name.upper() and other.parent == parent:
                raise fail(
                    Loc(raw.shown),
                    f"sub-workflow name '{name}' is used twice (also {other.shown}); "
                    "datasm tells sub-workflows apart by their names in capitals",
                )
        if name in self.files:
            raise fail(
                Loc(raw.shown),
                f"sub-workflow name '{name}' is used twice (also {self.files[name].shown})",
            )
        f = _File(name, name.upper(), raw.shown, parent)
        self.files[name] = f
        data: YMap = raw.data
        aliases = []
        by_lower: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for key, routes in data.items():
            kloc = data.key_loc(key)
            self.entry_count += 1
            if self.entry_count > MAX_GRAPH_ENTRIES:
                raise fail(
                    kloc,
                    f"the transition graph holds more than the limit of {MAX_GRAPH_ENTRIES:,} "
                    "entries (over all its files)",
                )
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
            step, state = self._split(key, kloc)
            if state not in self.states:
                # Reported; checked on as the state it most likely means (like a case slip).
                close = difflib.get_close_matches(state, sorted(self.states), n=1, cutoff=0.6)
                if close:
                    aliases.append(((step, close[0]), kloc, targets, routes))
            if (step, state) in f.entries:
                raise fail(kloc, f"'{key}' is defined twice")
            # Keys by their lower case: one look-up a key, not a pass over the others.
            same = by_lower.setdefault((step.lower(), state.lower()), [])
            for s, t in same:
                self.report(
                    kloc,
                    f"'{key}' differs only in case from '{s}:{t}' "
                    f"(line {f.entries[(s, t)].loc.line}); "
                    "datasm matches keys exactly, so they are two different entries",
                )
            same.append((step, state))
            f.entries[(step, state)] = _Entry(kloc, targets, {r: routes.key_loc(r) for r in routes})
            for r, ts in targets.items():
                if len(ts) > 1:
                    self.warn(
                        ts[1][1],
                        f"'{key}' lists {len(ts)} targets for '{r}'; only the first, "
                        f"'{ts[0][0]}', is used",
                    )
        for akey, kloc, targets, routes in aliases:
            if akey not in f.entries:
                f.entries[akey] = _Entry(kloc, targets, {r: routes.key_loc(r) for r in routes})
        for child in raw.children:
            cname = self._sub_name(child)
            f.kids[cname.upper()] = cname
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
        self.findings[(loc, message)] = "error"

    def warn(self, loc: Loc, message: str) -> None:
        self.findings.setdefault((loc, message), "warning")

    def _shadowing(self, g: str, step: str, state: str) -> str | None:
        """The outermost graph above g that holds the key step:state, if any."""
        chain = []
        p = self.files[g].parent
        while p is not None:
            chain.append(p)
            p = self.files[p].parent
        return next((a for a in reversed(chain) if (step, state) in self.files[a].entries), None)

    @staticmethod
    def _near_entry(f: _File, step: str, state: str) -> tuple[str, str] | None:
        """An entry of f whose key differs only in case from step:state."""
        want = (step.lower(), state.lower())
        for s, t in f.entries:
            if (s.lower(), t.lower()) == want:
                return (s, t)
        return None

    # -- resolution ------------------------------------------------------------------------
    def node(
        self,
        g: str,
        step: str,
        state: str,
        k: str,
        ref: Loc,
        hops: int,
        quiet: bool,
        shallow: bool = False,
    ) -> Action:
        """Where a dataset at step:state of sub-workflow g goes with routing key k.
        `shallow` stops at the first entry found: the name check of one target."""
        f = self.files[g]
        if hops > MAX_HOPS:
            return self._stuck(
                ref, f"routing loop without a step through '{step}:{state}' in {f.shown}", quiet
            )
        if state == "Engaged":
            return self._engaged(f, step, k, ref, hops, quiet)
        owner = self._shadowing(g, step, state)
        if owner is not None:  # datasm looks a key up from the top graph down
            return self.node(owner, step, state, k, ref, hops + 1, quiet, shallow)
        ent = f.entries.get((step, state))
        if ent is not None:
            if shallow:
                return Action("entry", sub=g, step=step, state=state)
            r = k if k in ent.targets else "default"
            if not quiet:
                self.visited.add((g, step, state))
                self.routes_taken.add((g, step, state, r))
            ts = ent.targets.get(r)
            if not ts:
                return self._stuck(
                    ent.loc,
                    f"'{step}:{state}' has no route for routing key '{k}' and no default",
                    quiet,
                )
            t, tloc = ts[0]
            return self.target(g, t, tloc, k, hops + 1, quiet)
        kid = f.kids.get(step.upper())
        if kid is not None:
            # datasm descends into the sub-workflow named in any case, then looks the
            # whole key up exactly there.
            c = self.files[kid]
            if (step, state) in c.entries:
                return self.node(kid, step, state, k, ref, hops + 1, quiet, shallow)
            near = self._near_entry(c, step, state)
            hint = f"; it has '{near[0]}:{near[1]}'" if near else ""
            act = self._stuck(
                ref,
                f"'{step}:{state}' enters sub-workflow '{c.name}' (names match in any case), "
                f"but {c.shown} has no '{step}:{state}' (keys match exactly){hint}",
                quiet,
            )
            if near and not quiet:
                return self.node(kid, near[0], near[1], k, ref, hops + 1, quiet)
            return act
        if f.parent is None and step == self.root and state in FINAL:
            return Action("final", state=state)
        # Nothing matches: say why, and where a case-only slip explains it, go on as if
        # it were spelled right so the defects behind it are found in the same run.
        near = self._near_entry(f, step, state)
        hint = f"; it differs only in case from '{near[0]}:{near[1]}'" if near else ""
        if step in self.steps or any(s == step for s, _ in f.entries):
            msg = f"dead end: '{step}:{state}' has no transition in {f.shown}{hint}"
        elif hint:
            msg = f"unknown step '{step}' in '{step}:{state}'{hint}"
        else:
            names = {*f.kids.values(), *self.steps, *(s for s, _ in f.entries)}
            msg = (
                f"unknown step '{step}' in '{step}:{state}': not a step, sub-workflow or entry "
                f"of this graph{_suggest_any_case(step, names)}"
            )
        act = self._stuck(ref, msg, quiet)
        if near and not quiet:
            return self.node(g, near[0], near[1], k, ref, hops + 1, quiet)
        return act

    def _engaged(self, f: _File, step: str, k: str, ref: Loc, hops: int, quiet: bool) -> Action:
        """`X:Engaged` runs the step (datasm: the job class) named exactly X."""
        if step in self.steps:
            self.run_ref = ref
            return Action("run", sub=f.name, step=step)
        if step.upper() in f.kids:
            return self._stuck(
                ref,
                f"'{step}:Engaged' runs a step, but '{step}' is a sub-workflow "
                f"({self.files[f.kids[step.upper()]].shown}); enter it with "
                f"'{f.kids[step.upper()]}:Ready'",
                quiet,
            )
        near = next((s for s in self.steps if s.lower() == step.lower()), None)
        hint = f"; it differs only in case from '{near}:Engaged'" if near else ""
        act = self._stuck(
            ref,
            f"unknown step '{step}': no step of that name is defined{hint or suggest(step, self.steps)}",
            quiet,
        )
        if near and not quiet:
            return self._engaged(f, near, k, ref, hops + 1, quiet)
        return act

    def target(
        self, g: str, t: str, tloc: Loc, k: str, hops: int, quiet: bool, shallow: bool = False
    ) -> Action:
        f = self.files[g]
        if t in FINAL:
            if f.parent is None:
                return Action("final", state=t)
            return self._sub_end(f, t, tloc, k, hops, quiet, shallow)
        if ":" not in t:
            return self._stuck(tloc, f"target '{t}' is not Pass, Fail or Step:State", quiet)
        step, state = t.split(":", 1)
        if state not in self.states:
            return self._stuck(
                tloc, f"unknown state '{state}' in '{t}'{suggest(state, self.states)}", quiet
            )
        return self.node(g, step, state, k, tloc, hops, quiet, shallow)

    def _sub_end(
        self, f: _File, t: str, tloc: Loc, k: str, hops: int, quiet: bool, shallow: bool
    ) -> Action:
        """A sub-workflow's `Pass`/`Fail`: datasm writes `<NAME.upper()>:Pass`, and the
        parent's key must be exactly that."""
        p = self.files[f.parent or ""]
        if (f.upper, t) in p.entries:
            return self.node(p.name, f.upper, t, k, tloc, hops + 1, quiet, shallow)
        near = self._near_entry(p, f.upper, t)
        hint = f"; it has '{near[0]}:{near[1]}', but keys are matched exactly" if near else ""
        act = self._stuck(
            tloc,
            f"dead end: sub-workflow '{f.name}' ends in '{t}', which datasm reads as "
            f"'{f.upper}:{t}', but {p.shown} has no '{f.upper}:{t}'{hint}",
            quiet,
        )
        if near and not quiet:
            return self.node(p.name, near[0], near[1], k, tloc, hops + 1, quiet)
        return act

    def _stuck(self, loc: Loc, message: str, quiet: bool) -> Action:
        self.last_stuck = (loc, message)
        if not quiet:
            self.report(loc, message)
        return Action("stuck", reason=f"{loc}: {message}")

    def outcomes(self, step: str) -> tuple[str, ...]:
        return FINAL + self.steps.get(step, ())


def _suggest_any_case(word: str, names: set[str]) -> str:
    """' (did you mean 'X'?)', comparing without case: sub-workflow names are in capitals."""
    lower = {n.lower(): n for n in sorted(names)}
    close = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.6)
    return f" (did you mean '{lower[close[0]]}'?)" if close else ""


def _check_names(steps: dict[str, tuple[str, ...]], step_locs: dict[str, Loc], c: _Checker) -> None:
    """Steps, and states, that differ only in case: datasm tells them apart exactly, so
    one is silently taken for the other's missing transitions."""
    seen: dict[str, str] = {}
    for name in steps:
        other = seen.setdefault(name.lower(), name)
        if other != name:
            c.report(
                step_locs[name],
                f"step '{name}' differs only in case from step '{other}' "
                f"(line {step_locs[other].line})",
            )
    states: dict[str, tuple[str, str]] = {s.lower(): (s, "") for s in BASE_STATES}
    for name, outs in steps.items():
        for s in outs:
            other, owner = states.setdefault(s.lower(), (s, name))
            if other != s:
                whose = f" of step '{owner}'" if owner else ""
                c.report(
                    step_locs[name],
                    f"state '{s}' of step '{name}' differs only in case from state '{other}'{whose}",
                )


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
    _check_names(steps, step_locs, c)
    estep, estate, eloc = c.entry
    route_keys = sorted(keys) or [""]
    by_lower = {k.lower(): k for k in keys}

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
                rloc = c.run_ref  # the `X:Engaged` line, in the graph that runs X
                runs.setdefault((act.sub, act.step), rloc)
                for out in c.outcomes(act.step):
                    todo.append((act.sub, act.step, out, rloc))

    # Static pass over what no dataset takes: the same name checks, as warnings.
    for g, f in c.files.items():
        whole = not any(v[0] == g for v in c.visited)
        if whole and f.entries:
            first = next(iter(f.entries.values())).loc
            c.warn(first, f"unreachable: no dataset of the spec enters {f.shown}")
        for (step, state), ent in f.entries.items():
            if state not in states:
                continue  # reported, and checked under the state it most likely means
            owner = c._shadowing(g, step, state)
            if owner is not None:
                o = c.files[owner]
                c.warn(
                    ent.loc,
                    f"'{step}:{state}' is never used: datasm looks keys up from the top graph "
                    f"down and takes {o.shown}'s (line {o.entries[(step, state)].loc.line})",
                )
                continue
            reached = (g, step, state) in c.visited
            if not reached and not whole:
                c.warn(ent.loc, f"unreachable: no dataset of the spec reaches '{step}:{state}'")
            for r, ts in ent.targets.items():
                if (g, step, state, r) not in c.routes_taken:
                    t, tloc = ts[0]
                    act = c.target(g, t, tloc, "", 0, quiet=True, shallow=True)
                    if act.kind == "stuck":
                        c.warn(*c.last_stuck)
            for r, rloc in ent.route_locs.items():
                if not keys or r == "default" or r in keys:
                    continue
                same = by_lower.get(r.lower())
                if same is not None:
                    msg = (
                        f"routing key '{r}' of '{step}:{state}' differs only in case from "
                        f"'{same}', which datasets of the spec produce; routing keys are "
                        "matched exactly, so those datasets take 'default'"
                    )
                    (c.report if reached else c.warn)(rloc, msg)
                else:
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
    lines = tuple(
        (pos, ent.loc.line)
        for pos, _ in table
        for g, _, rest in [pos.partition("/")]
        for ent in [c.files[g].entries.get(tuple(rest.split(":", 1)))]
        if ent is not None
    )
    findings = tuple(Diagnostic(loc, msg, sev) for (loc, msg), sev in c.findings.items())
    findings = tuple(
        sorted(findings, key=lambda d: (d.severity != "error", d.loc.file, d.loc.line, d.loc.col))
    )
    subs = tuple(SubGraph(f.name, f.shown, f.parent) for f in c.files.values())
    return Graph(c.root, f"{c.root}/{estep}:{estate}", subs, table, findings, lines)


def _table(
    c: _Checker, keys: list[str], runs: dict[tuple[str, str], Loc], entry: tuple[str, str, str]
):
    """Position -> routing key -> action, for every position a dataset can be in."""
    positions = {entry}
    # Every key of every graph too: datasm writes positions between steps (a
    # sub-workflow's entry `PUBLICATION:Ready`, its end `PUBLICATION:Pass` in the
    # parent) and a dataset may stand at one; routed from there as datasm would.
    for g, f in c.files.items():
        for step, state in f.entries:
            if state != "Engaged":
                positions.add((g, step, state))
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
