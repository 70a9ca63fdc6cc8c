"""Expand the dataset spec (declarative walks over a facet tree) and id lists."""

from __future__ import annotations

import re
from typing import Any

from compiler.core.diagnostics import Loc, fail
from compiler.core.ids import check_id
from compiler.load.workflow import RawList, RawWalk, RawWorkflow
from compiler.load.yamlpos import YMap
from compiler.model.templates import Template, parse_template, template_regex
from compiler.model.types import Dataset

FACET_RE = re.compile(r"[^\x00-\x1f\x7f/]+\Z")
BUILTIN_FACETS = ("dataset",)
FLOCK_FACETS = ("group", "pattern", "updates", "removals")


def _node_loc(node: Any, default: Loc) -> Loc:
    return getattr(node, "loc", default)


def _lookup(spec: Any, node: Any, path: str, loc: Loc, walk: str) -> Any:
    """`key` is looked up in the current node, `/a/b` from the top of the spec."""
    cur = spec if path.startswith("/") else node
    for part in [p for p in path.split("/") if p]:
        if not isinstance(cur, dict) or part not in cur:
            raise fail(_node_loc(cur, loc), f"walk '{walk}' expects key '{part}' here")
        cur = cur[part]
    return cur


def _facet_names(walk: RawWalk) -> list[str]:
    names = []
    for lvl in walk.levels:
        if lvl.facet:
            names.append(lvl.facet)
        names += [a for a, _ in lvl.attrs] + [n for n, _ in lvl.split_into]
    return names


def walk_spec(spec: YMap, walk: RawWalk) -> list[dict[str, str]]:
    root = _lookup(spec, spec, walk.root, walk.root_loc, walk.name) if walk.root else spec
    levels = walk.levels
    out: list[dict[str, str]] = []
    ekey = walk.except_key

    def go(i: int, node: Any, facets: dict[str, str], excluded: frozenset) -> None:
        if isinstance(node, dict) and ekey in node:
            ex = node[ekey]
            items = ex if isinstance(ex, list) else [ex]
            excluded = excluded | {str(x) for x in items}
        if i == len(levels):
            out.append(facets)
            return
        lvl = levels[i]
        src = node if lvl.source is None else _lookup(spec, node, lvl.source, lvl.loc, walk.name)
        if isinstance(src, dict):
            items = [(k, v) for k, v in src.items() if k != ekey]
        elif isinstance(src, list):
            items = [(None if isinstance(v, (dict, list)) else v, v) for v in src]
        elif src is None:
            items = []
        else:
            items = [(src, src)]
        for value, child in items:
            f = facets
            if lvl.facet:
                if value is None:
                    raise fail(
                        _node_loc(child, lvl.loc),
                        f"walk '{walk.name}': facet '{lvl.facet}' needs plain values, found a "
                        f"{'mapping' if isinstance(child, dict) else 'list'}",
                    )
                text = str(value)
                if text in excluded or any(text == s for s, _ in lvl.skip):
                    continue
                if not FACET_RE.match(text):
                    raise fail(
                        _node_loc(src, lvl.loc),
                        f"facet value {text!r} holds '/' or a control character",
                    )
                f = {**facets, lvl.facet: text}
                if lvl.split_sep:
                    pieces = text.split(lvl.split_sep, len(lvl.split_into) - 1)
                    if len(pieces) != len(lvl.split_into):
                        raise fail(
                            _node_loc(src, lvl.loc),
                            f"walk '{walk.name}': '{text}' does not split by '{lvl.split_sep}' "
                            f"into {len(lvl.split_into)} parts",
                        )
                    f.update(zip((n for n, _ in lvl.split_into), pieces, strict=True))
            if lvl.attrs and isinstance(child, dict):
                f = dict(f)
                for a, _ in lvl.attrs:
                    if a in child and not isinstance(child[a], (dict, list)):
                        f[a] = str(child[a])
            go(i + 1, child if lvl.descend else node, f, excluded)

    go(0, root, {}, frozenset())
    return out


def _apply_maps(facets: dict[str, str], maps: YMap | None, loc: Loc) -> dict[str, str]:
    if not maps:
        return facets
    out = dict(facets)
    for fname, table in maps.items():
        if fname in facets:
            extra = table.get(facets[fname]) if isinstance(table, dict) else None
            if extra is None:
                raise fail(
                    maps.val_loc(fname), f"facet_maps.{fname} has no entry for '{facets[fname]}'"
                )
            if not isinstance(extra, dict):
                raise fail(
                    table.val_loc(facets[fname]),
                    f"facet_maps.{fname}.{facets[fname]} must be a mapping",
                )
            for k, v in extra.items():
                out.setdefault(k, str(v))
    return out


class RoutingKeys:
    def __init__(self, raw: RawWorkflow, known: set[str]):
        self.cases: list[tuple[dict[str, tuple[str, ...]], Template, Loc]] = []
        for when, key, loc in raw.routing:
            cond = {}
            for fname, val in (when or {}).items():
                if fname not in known:
                    raise fail(
                        when.key_loc(fname), f"routing key condition names unknown facet '{fname}'"
                    )
                vals = val if isinstance(val, list) else [val]
                cond[fname] = tuple(str(v) for v in vals)
            self.cases.append((cond, parse_template(key, loc, known, "routing key"), loc))

    def key_for(self, facets: dict[str, str], origin: Loc) -> str:
        for cond, tmpl, loc in self.cases:
            if all(facets.get(f) in vals for f, vals in cond.items()):
                missing = [n for n in tmpl.names if n not in facets]
                if missing:
                    raise fail(
                        loc,
                        f"routing key needs facet '{missing[0]}', which dataset from {origin} lacks",
                    )
                return tmpl.fill(facets)
        return ""


def expand_datasets(raw: RawWorkflow) -> tuple[tuple[Dataset, ...], set[str]]:
    """All datasets with their facets and routing keys, plus every facet name known."""
    known: set[str] = set(BUILTIN_FACETS)
    map_names = set()
    if raw.facet_maps:
        for table in raw.facet_maps.values():
            if isinstance(table, dict):
                for extra in table.values():
                    if isinstance(extra, dict):
                        map_names |= set(extra)
    walked: list[tuple[RawWalk, Template, list[dict[str, str]]]] = []
    for w in raw.walks:
        names = _facet_names(w)
        id_t = parse_template(w.id_template, w.id_loc, set(names) | map_names, "id template")
        facets = walk_spec(raw.spec, w)
        walked.append((w, id_t, facets))
        known |= set(names)
    lists: list[tuple[RawList, Template | None]] = []
    for lst in raw.lists:
        t = None
        if lst.pattern:
            t = parse_template(lst.pattern, lst.pattern_loc, _pattern_names(lst.pattern), "pattern")
            known |= set(t.names)
        lists.append((lst, t))
    known |= map_names
    if raw.flock:
        known |= set(FLOCK_FACETS)
    router = RoutingKeys(raw, known)

    seen: dict[str, str] = {}
    out: list[Dataset] = []

    def add(ds_id: str, facets: dict[str, str], loc: Loc, source: str) -> None:
        check_id(ds_id, loc)
        if ds_id in seen:
            raise fail(loc, f"dataset id '{ds_id}' is listed twice (first from {seen[ds_id]})")
        seen[ds_id] = source
        facets = {**facets, "dataset": ds_id}
        out.append(
            Dataset(ds_id, tuple(sorted(facets.items())), router.key_for(facets, loc), source)
        )

    for w, id_t, all_facets in walked:
        for walked_facets in all_facets:
            facets = _apply_maps(walked_facets, raw.facet_maps, w.loc)
            add(id_t.fill(facets), facets, w.id_loc, f"walk '{w.name}'")
    for lst, t in lists:
        rx = template_regex(t) if t else None
        for ds_id, loc in lst.ids:
            facets: dict[str, str] = {}
            if rx:
                m = rx.match(ds_id)
                if not m:
                    raise fail(loc, f"id '{ds_id}' does not match pattern '{lst.pattern}'")
                facets = _apply_maps(m.groupdict(), raw.facet_maps, loc)
            add(ds_id, facets, loc, lst.file)
    for group in raw.flock:
        for ds_id, facets, loc in group.entries:
            add(ds_id, facets, loc, f"group {group.name}")
    if not out and not raw.flock:
        where = raw.walks[0].loc if raw.walks else Loc(raw.file)
        raise fail(where, "the dataset spec expands to no datasets")
    return tuple(out), known


def _pattern_names(pattern: str) -> set[str]:
    return {m.split("|")[0].strip() for m in re.findall(r"\{([^{}]*)\}", pattern)}


def facet_names_of(walks: list[RawWalk]) -> set[str]:
    out: set[str] = set()
    for w in walks:
        out |= set(_facet_names(w))
    return out
