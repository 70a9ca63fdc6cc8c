"""Read a workflow directory into raw types that mirror its files.

Everything here is checked against `schema` first; nothing is resolved yet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.core.diagnostics import Diagnostic, Loc, fail
from compiler.load import schema as S
from compiler.load.flock import scan_flock
from compiler.load.listsrc import RawList, load_list_source, shown_path
from compiler.load.yamlpos import YList, YMap, load_yaml

WORKFLOW_FILE = "workflow.yaml"
TRANSITIONS_FILE = "transitions.yaml"


@dataclass
class RawLevel:
    loc: Loc
    facet: str | None
    source: str | None  # the YAML key `from`
    descend: bool
    skip: list[tuple[str, Loc]]
    attrs: list[tuple[str, Loc]]
    split_sep: str | None
    split_into: list[tuple[str, Loc]]
    except_facets: list[tuple[str, Loc]] = field(default_factory=list)  # the key `except`


@dataclass
class RawWalk:
    loc: Loc
    name: str
    root: str
    root_loc: Loc
    levels: list[RawLevel]
    id_template: str
    id_loc: Loc
    except_key: str


@dataclass
class RawStep:
    name: str
    loc: Loc
    body: YMap  # checked against schema.STEP


@dataclass
class RawGraphFile:
    shown: str
    dirname: str  # directory name, how a parent step finds this sub-workflow
    data: YMap
    children: list[RawGraphFile] = field(default_factory=list)


@dataclass
class RawWorkflow:
    dir: Path
    shown_dir: str
    file: str
    doc: YMap
    name: str
    spec: Any
    spec_file: str
    walks: list[RawWalk]
    lists: list[RawList]
    facet_maps: YMap | None
    routing: list[tuple[YMap | None, str, Loc]]  # (when, key template, loc)
    graph: RawGraphFile | None
    entry: tuple[str, Loc] | None
    steps: list[RawStep]
    defaults: YMap | None
    gates: YMap | None
    gates_file: str
    flock: list = field(default_factory=list)  # load.flock.Group, not quarantined
    flock_all: list = field(default_factory=list)  # every group, quarantined ones too
    flock_problems: list = field(default_factory=list)  # groups skipped, as diagnostics
    has_flock: bool = False  # datasets come from a flock (which may hold no group yet)
    load_warnings: list = field(default_factory=list)  # Diagnostics the loader only warns of


def _resolve_inside(
    wf_dir: Path, shown_dir: str, rel: str, loc: Loc, what: str
) -> tuple[Path, str]:
    """Input files named by a workflow live under it (or beside it via ..) but never absolute."""
    if os.path.isabs(rel):
        raise fail(loc, f"{what} must be a path relative to the workflow directory, not '{rel}'")
    return wf_dir / rel, shown_path(shown_dir, rel)


def _load_levels(value: Any, loc: Loc) -> list[RawLevel]:
    S.check_kind(value, (S.LIST,), loc, "'levels'")
    assert isinstance(value, YList)
    if not value:
        raise fail(loc, "'levels' must list at least one level")
    levels = []
    for i, item in enumerate(value):
        m = S.check(item, S.LEVEL, value.item_loc(i))
        sep, into = None, []
        if "split" in m:
            sp = S.check(m["split"], S.SPLIT, m.val_loc("split"))
            sep = sp["sep"]
            into = S.str_list(sp["into"], sp.val_loc("into"), "'into'")
            if not sep:
                raise fail(sp.val_loc("sep"), "'sep' must not be empty")
        levels.append(
            RawLevel(
                loc=m.loc,
                facet=m.get("facet"),
                source=m.get("from"),
                descend=m.get("descend", True),
                skip=S.str_list(m.get("skip", []), m.val_loc("skip"), "'skip'"),
                attrs=S.str_list(m.get("attrs", []), m.val_loc("attrs"), "'attrs'"),
                split_sep=sep,
                split_into=into,
                except_facets=S.str_list(m.get("except", []), m.val_loc("except"), "'except'"),
            )
        )
    return levels


def _load_walks(value: Any, loc: Loc) -> list[RawWalk]:
    S.check_kind(value, (S.LIST,), loc, "'walks'")
    assert isinstance(value, YList)
    walks = []
    for i, item in enumerate(value):
        m = S.check(item, S.WALK, value.item_loc(i))
        walks.append(
            RawWalk(
                loc=m.loc,
                name=m["name"],
                root=m.get("root", ""),
                root_loc=m.val_loc("root"),
                levels=_load_levels(m["levels"], m.val_loc("levels")),
                id_template=m["id"],
                id_loc=m.val_loc("id"),
                except_key=m.get("except_key", "except"),
            )
        )
    return walks


def _load_lists(value: Any, loc: Loc, wf_dir: Path, shown_dir: str) -> list[RawList]:
    S.check_kind(value, (S.LIST,), loc, "'lists'")
    assert isinstance(value, YList)
    return [
        load_list_source(item, value.item_loc(i), wf_dir, shown_dir) for i, item in enumerate(value)
    ]


def _load_routing(value: Any, loc: Loc) -> list[tuple[YMap | None, str, Loc]]:
    if value is None:
        return []
    if isinstance(value, str):
        return [(None, value, loc)]
    assert isinstance(value, YList)
    cases = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            cases.append((None, item, value.item_loc(i)))
            continue
        m = S.check(item, S.ROUTE_CASE, value.item_loc(i))
        cases.append((m.get("when"), m["key"], m.val_loc("key")))
    return cases


def load_graph_file(
    path: Path, shown: str, warnings: list[Diagnostic] | None = None
) -> RawGraphFile:
    data = load_yaml(path, shown, warnings)
    if data is None:
        raise fail(Loc(shown), "transition graph is empty")
    S.check_kind(data, (S.MAP,), Loc(shown, 1, 1), "a transition graph")
    if not data:
        raise fail(Loc(shown, 1, 1), "transition graph is empty")
    for key, routes in data.items():
        S.check_kind(routes, (S.MAP,), data.val_loc(key), f"transitions of '{key}'")
        for rkey, targets in routes.items():
            S.str_list(targets, routes.val_loc(rkey), f"targets of '{key}' for '{rkey}'")
            if isinstance(targets, list) and not targets:
                raise fail(routes.val_loc(rkey), f"'{key}' routes '{rkey}' to nothing")
    children = []
    for sub in sorted(p for p in path.parent.iterdir() if p.is_dir()):
        if os.path.lexists(sub / TRANSITIONS_FILE):  # not only files: others are refused
            child = load_graph_file(
                sub / TRANSITIONS_FILE,
                shown_path(shown, "..", sub.name, TRANSITIONS_FILE),
                warnings,
            )
            child.dirname = sub.name
            children.append(child)
    return RawGraphFile(shown, path.parent.name, data, children)


def load_workflow(wf_dir: Path, shown_dir: str, flock_dir: Path | None = None) -> RawWorkflow:
    shown = shown_path(shown_dir, WORKFLOW_FILE)
    if not wf_dir.is_dir():
        raise fail(Loc(shown_dir), "workflow directory not found")
    warnings: list[Diagnostic] = []  # a key repeated with the same value, in any input
    doc = load_yaml(wf_dir / WORKFLOW_FILE, shown, warnings)
    if doc is None:
        raise fail(Loc(shown), "workflow file is empty")
    doc = S.check(doc, S.WORKFLOW, Loc(shown, 1, 1))

    spec, spec_file, walks, lists, facet_maps = None, "", [], [], None
    if "datasets" in doc:
        ds = S.check(doc["datasets"], S.DATASETS, doc.val_loc("datasets"))
        if "spec" in ds:
            path, spec_file = _resolve_inside(wf_dir, shown_dir, ds["spec"], ds.val_loc("spec"), "'spec'")
            spec = load_yaml(path, spec_file, warnings, as_text=True)  # facet values: the text written
            if spec is None:
                raise fail(Loc(spec_file), "dataset spec is empty")
            S.check_kind(spec, (S.MAP,), Loc(spec_file, 1, 1), "a dataset spec")
        walks = _load_walks(ds["walks"], ds.val_loc("walks")) if "walks" in ds else []
        if walks and spec is None:
            raise fail(ds.key_loc("walks"), "'walks' need a 'spec' file to walk")
        if spec is not None and not walks:
            raise fail(ds.key_loc("spec"), "a 'spec' needs 'walks' that say how to expand it")
        lists = _load_lists(ds["lists"], ds.val_loc("lists"), wf_dir, shown_dir) if "lists" in ds else []
        if flock_dir is None and "flock" in ds:
            flock_dir, _ = _resolve_inside(wf_dir, shown_dir, ds["flock"], ds.val_loc("flock"), "'flock'")
        if not walks and not lists and flock_dir is None:
            raise fail(doc.key_loc("datasets"), "'datasets' needs 'walks' over a spec, or 'lists'")
        facet_maps = ds.get("facet_maps")

    raw_graph, entry = None, None
    if "graph" in doc:
        graph = doc["graph"]
        if isinstance(graph, str):
            gfile, gloc = graph, doc.val_loc("graph")
        else:
            g = S.check(graph, S.GRAPH, doc.val_loc("graph"))
            gfile, gloc = g["file"], g.val_loc("file")
            entry = (g["entry"], g.val_loc("entry")) if "entry" in g else None
        gpath, gshown = _resolve_inside(wf_dir, shown_dir, gfile, gloc, "'graph'")
        raw_graph = load_graph_file(gpath, gshown, warnings)
        for need in ("datasets", "steps"):
            if need not in doc:
                raise fail(doc.key_loc("graph"), f"a workflow with a 'graph' needs '{need}' too")
    elif "steps" in doc:
        raise fail(doc.key_loc("steps"), "'steps' need a 'graph' that routes datasets through them")

    steps = []
    if "steps" in doc:
        steps_map = doc["steps"]
        if not steps_map:
            raise fail(doc.val_loc("steps"), "'steps' must define at least one step")
        steps = [
            RawStep(name, steps_map.key_loc(name), S.check(body, S.STEP, steps_map.val_loc(name)))
            for name, body in steps_map.items()
        ]
    defaults = S.check(doc["defaults"], S.DEFAULTS, doc.val_loc("defaults")) if "defaults" in doc else None

    gates, gates_file = None, ""
    if "gates" in doc:
        gpath, gates_file = _resolve_inside(wf_dir, shown_dir, doc["gates"], doc.val_loc("gates"), "'gates'")
        gdoc = load_yaml(gpath, gates_file, warnings)
        if gdoc is None:
            raise fail(Loc(gates_file), "gates file is empty")
        gdoc = S.check(gdoc, S.GATES_FILE, Loc(gates_file, 1, 1))
        gates = gdoc["gates"]
        if not gates:
            raise fail(gdoc.val_loc("gates"), "'gates' must define at least one gate")
    flock_all, problems = [], []
    if flock_dir is not None:
        flock_all, problems = scan_flock(flock_dir, str(flock_dir))
    if raw_graph is None and gates is None:
        raise fail(Loc(shown, 1, 1), "a workflow needs a 'graph' (with 'datasets' and 'steps') or 'gates'")

    return RawWorkflow(
        dir=wf_dir,
        shown_dir=shown_dir,
        file=shown,
        doc=doc,
        name=doc["name"],
        spec=spec,
        spec_file=spec_file,
        walks=walks,
        lists=lists,
        facet_maps=facet_maps,
        routing=_load_routing(doc.get("routing_key"), doc.val_loc("routing_key")),
        graph=raw_graph,
        entry=entry,
        steps=steps,
        defaults=defaults,
        gates=gates,
        gates_file=gates_file,
        flock=[g for g in flock_all if not g.ignored],
        flock_all=flock_all,
        flock_problems=problems,
        has_flock=flock_dir is not None,
        load_warnings=warnings,
    )
