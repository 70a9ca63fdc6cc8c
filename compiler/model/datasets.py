"""Expand the dataset spec (declarative walks over a facet tree) and id lists."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from compiler.core.diagnostics import Loc, fail
from compiler.core.ids import ID_RE, check_id, periodic_part
from compiler.load.schema import kind_of
from compiler.load.workflow import RawWalk, RawWorkflow
from compiler.load.yamlpos import YList, YMap
from compiler.model.listed import ListSource, promised_key
from compiler.model.templates import FILTERS, Template, parse_template
from compiler.model.types import Dataset

FACET_RE = re.compile(r"[^\x00-\x1f\x7f/]+\Z")
BUILTIN_FACETS = ("dataset",)
FLOCK_FACETS = ("group", "pattern", "updates", "removals", "keep_vars")


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


def _except_scope(walk: RawWalk) -> bool:
    """Check the levels' `except:` facets; True when the walk declares a scope at all.

    Without one, a node's except list drops matching values at every facet level
    below it. With one (datasm's own walks), only the lists of the nodes chosen at the
    levels that declare it count, each for the later facets it names: CMIP6's
    experiment for table and variable, E3SM's {grid, data_types} entry for data_type."""
    scoped = False
    for i, lvl in enumerate(walk.levels):
        later = {x.facet for x in walk.levels[i + 1 :] if x.facet}
        for name, loc in lvl.except_facets:
            scoped = True
            if name not in later:
                raise fail(
                    loc,
                    f"walk '{walk.name}': 'except' names facet '{name}', which no later level has",
                )
    return scoped


def walk_spec(spec: YMap, walk: RawWalk) -> list[dict[str, str]]:
    root = _lookup(spec, spec, walk.root, walk.root_loc, walk.name) if walk.root else spec
    levels = walk.levels
    out: list[dict[str, str]] = []
    ekey = walk.except_key
    scoped = _except_scope(walk)
    ANY = ""  # the facet key for "every facet below", the unscoped rule

    def listed(node: Any) -> frozenset:
        ex = node[ekey]
        return frozenset(str(x) for x in (ex if isinstance(ex, list) else [ex]))

    def go(i: int, node: Any, facets: dict[str, str], excluded: dict[str, frozenset]) -> None:
        if not scoped and isinstance(node, dict) and ekey in node:
            excluded = {ANY: excluded.get(ANY, frozenset()) | listed(node)}
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
        drop = excluded.get(ANY, frozenset()) | excluded.get(lvl.facet or ANY, frozenset())
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
                if text in drop or any(text == s for s, _ in lvl.skip):
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
            ex = excluded
            if lvl.except_facets and isinstance(child, dict) and ekey in child:
                ex = dict(excluded)
                for name, _ in lvl.except_facets:
                    ex[name] = ex.get(name, frozenset()) | listed(child)
            go(i + 1, child if lvl.descend else node, f, ex)

    go(0, root, {}, {})
    return out


_MAPS_MEMO: dict[tuple, tuple[tuple[str, str], ...]] = {}


def _apply_maps(facets: dict[str, str], maps: YMap | None, loc: Loc) -> dict[str, str]:
    """The facets plus what facet_maps adds for them. What is added depends only on the
    mapped facets' values, so it is worked out once per distinct combination."""
    if not maps:
        return facets
    memo_key = (id(maps), *(facets.get(f) for f in maps))
    extra = _MAPS_MEMO.get(memo_key)
    if extra is None:
        full = _apply_maps_slow(facets, maps, loc)
        extra = tuple((k, v) for k, v in full.items() if k not in facets)
        if len(_MAPS_MEMO) > 100_000:
            _MAPS_MEMO.clear()
        _MAPS_MEMO[memo_key] = extra
    out = dict(facets)
    out.update(extra)
    return out


def _apply_maps_slow(facets: dict[str, str], maps: YMap, loc: Loc) -> dict[str, str]:
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
                if isinstance(v, bool) or not isinstance(v, (str, int)):
                    # YAML would turn `no` into False, `1.10` into 1.1: a facet is the text written.
                    raise fail(
                        extra.val_loc(k) if isinstance(extra, YMap) else maps.val_loc(fname),
                        f"facet_maps value of '{k}' must be text, not {kind_of(v)}: "
                        "put it in quotes",
                    )
                out.setdefault(k, str(v))
    return out


def fast_fill(t: Template) -> Callable[[dict[str, str]], str]:
    """`t.fill`, the same result, compiled once into str.format: at 100,000 datasets the
    per-part Python loop was a third of the model build. Raises KeyError like fill."""
    fmt, names, filters = [], [], []
    for p in t.parts:
        if isinstance(p, str):
            fmt.append(p.replace("{", "{{").replace("}", "}}"))
        else:
            fmt.append("{}")
            names.append(p[0])
            filters.append(tuple(FILTERS[f] for f in p[1]))
    text = "".join(fmt)
    if not names:
        return lambda values: text
    get = operator.itemgetter(*names)
    if not any(filters):
        if len(names) == 1:
            return lambda values: text.format(str(values[names[0]]))
        return lambda values: text.format(*map(str, get(values)))

    def fill(values: dict[str, str]) -> str:
        vs = get(values) if len(names) > 1 else (values[names[0]],)
        out = []
        for value, fs in zip(vs, filters, strict=True):
            v = str(value)
            for f in fs:
                v = f(v)
            out.append(v)
        return text.format(*out)

    return fill


class RoutingKeys:
    def __init__(self, raw: RawWorkflow, known: set[str]):
        self.cases: list[tuple[dict[str, tuple[str, ...]], Template, Loc]] = []
        self.fills: list[Callable[[dict[str, str]], str]] = []
        for when, key, loc in raw.routing:
            cond = {}
            for fname, val in (when or {}).items():
                if fname not in known:
                    raise fail(
                        when.key_loc(fname), f"routing key condition names unknown facet '{fname}'"
                    )
                vals = val if isinstance(val, list) else [val]
                for i, v in enumerate(vals):
                    if isinstance(v, bool) or not isinstance(v, (str, int)):
                        # `no` would be False and never match the facet value 'no'.
                        raise fail(
                            val.item_loc(i) if isinstance(val, YList) else when.val_loc(fname),
                            f"routing key condition on '{fname}' must be text, not "
                            f"{kind_of(v)}: put it in quotes",
                        )
                cond[fname] = tuple(str(v) for v in vals)
            self.cases.append((cond, parse_template(key, loc, known, "routing key"), loc))
            self.fills.append(fast_fill(self.cases[-1][1]))
        names = {n for cond, t, _ in self.cases for n in (*cond, *t.names)}
        self.relevant = tuple(sorted(names))
        self.memo: dict[tuple, str] = {}

    def key_for(self, facets: dict[str, str], origin: Loc) -> str:
        """The routing key depends only on the facets the cases name: worked out once
        per distinct combination of their values."""
        memo_key = tuple(facets.get(n) for n in self.relevant)
        key = self.memo.get(memo_key)
        if key is None:
            key = self.memo[memo_key] = self._key_for(facets, origin)
        return key

    def _key_for(self, facets: dict[str, str], origin: Loc) -> str:
        for (cond, tmpl, loc), fill in zip(self.cases, self.fills, strict=True):
            if all(facets.get(f) in vals for f, vals in cond.items()):
                try:
                    return fill(facets)
                except KeyError:
                    missing = [n for n in tmpl.names if n not in facets]
                    raise fail(
                        loc,
                        f"routing key needs facet '{missing[0]}', which dataset from {origin} lacks",
                    ) from None
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
    lists = [ListSource(lst, map_names) for lst in raw.lists]
    for src in lists:
        known |= src.names
    known |= map_names
    if raw.has_flock:  # also with no group yet, or all quarantined or completed
        known |= set(FLOCK_FACETS)
    router = RoutingKeys(raw, known)

    seen: dict[str, str] = {}
    out: list[Dataset] = []
    id_ok = ID_RE.match
    new = object.__new__
    setattr_ = object.__setattr__

    def add(ds_id: str, facets: dict[str, str], loc: Loc, source: str) -> None:
        if (
            len(ds_id) > 240
            or not id_ok(ds_id)
            or ".." in ds_id
            or (ds_id.count(ds_id[-1]) >= 20 and periodic_part(ds_id))
        ):
            check_id(ds_id, loc)  # raises, with the message
        if ds_id in seen:
            raise fail(loc, f"dataset id '{ds_id}' is listed twice (first from {seen[ds_id]})")
        seen[ds_id] = source
        facets = {**facets, "dataset": ds_id}
        # Dataset(...) without the frozen dataclass's per-field checks: same object.
        d = new(Dataset)
        setattr_(d, "id", ds_id)
        setattr_(d, "facets", tuple(sorted(facets.items())))
        setattr_(d, "routing_key", router.key_for(facets, loc))
        setattr_(d, "source", source)
        out.append(d)

    for w, id_t, all_facets in walked:
        fill_id = fast_fill(id_t)
        source = f"walk '{w.name}'"
        for walked_facets in all_facets:
            facets = _apply_maps(walked_facets, raw.facet_maps, w.loc)
            try:
                ds_id = fill_id(facets)
            except KeyError:
                ds_id = id_t.fill(facets)  # raises as before
            add(ds_id, facets, w.id_loc, source)
    for src in lists:
        for ds_id, facets, loc in src.entries(lambda f, loc: _apply_maps(f, raw.facet_maps, loc)):
            # A child's source is the listing that named it, not the glob.
            add(ds_id, facets, loc, loc.file if src.raw.is_glob else src.raw.file)
    for group in raw.flock:
        for ds_id, facets, loc in group.entries:
            add(ds_id, facets, loc, f"group {group.name}")
    if not out and not raw.has_flock and not any(lst.is_glob for lst in raw.lists):
        where = raw.walks[0].loc if raw.walks else Loc(raw.file)
        raise fail(where, "the dataset spec expands to no datasets")
    return tuple(out), known


def promised_keys(raw: RawWorkflow, known: set[str]) -> set[str]:
    """Routing keys that datasets of glob lists will have once their listings exist."""
    if not any(lst.is_glob for lst in raw.lists):
        return set()
    router = RoutingKeys(raw, known)
    keys = {
        promised_key(lst, lambda f, lst=lst: router.key_for(f, lst.file_loc), router.relevant)
        for lst in raw.lists
    }
    return keys - {""}


def facet_names_of(walks: list[RawWalk]) -> set[str]:
    out: set[str] = set()
    for w in walks:
        out |= set(_facet_names(w))
    return out
