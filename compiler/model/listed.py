"""Datasets from `lists:` sources: plain id files, and listings steps wrote (fan-out).

A source gives each dataset facets from three places, each name from one place only:
the listing file's path (`work/{parent}/parts.txt`), the source's constant `facets:`,
and the line itself read back through `pattern`. The id is the line, or `id` filled
from those facets (e.g. `{parent}.{part}`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from compiler.core.diagnostics import Loc, fail
from compiler.load.listsrc import RawList
from compiler.model.templates import Template, parse_template, template_regex

MapFn = Callable[[dict[str, str], Loc], dict[str, str]]


def _pattern(lst: RawList) -> Template | None:
    if not lst.pattern:
        return None
    names = []
    for name in _placeholders(lst.pattern):
        if name in names:
            raise fail(lst.pattern_loc, f"pattern names facet '{name}' twice")
        names.append(name)
    return parse_template(lst.pattern, lst.pattern_loc, names, "pattern")


def _placeholders(text: str) -> list[str]:
    return [m.split("|")[0].strip() for m in re.findall(r"\{([^{}]*)\}", text)]


class ListSource:
    """One checked `lists:` entry: the facet names it gives and how it makes ids."""

    def __init__(self, lst: RawList, map_names: set[str]):
        self.raw = lst
        self.pattern = _pattern(lst)
        self.rx = template_regex(self.pattern) if self.pattern else None
        given: dict[str, str] = {}  # facet name -> where it comes from, for the message
        for names, where, loc in (
            (lst.path_names, "'file'", lst.file_loc),
            (tuple(lst.facets), "'facets'", lst.facets_loc),
            (self.pattern.names if self.pattern else (), "'pattern'", lst.pattern_loc),
        ):
            for name in names:
                if name == "dataset" and where != "'pattern'":
                    raise fail(loc, f"{where} cannot set facet 'dataset': padocc sets it to the id")
                if name in given:
                    raise fail(
                        loc, f"{where} sets facet '{name}', which {given[name]} sets already"
                    )
                given[name] = where
        self.names = set(given)
        self.id = None
        if lst.id_template is not None:
            known = self.names | map_names
            if "dataset" in _placeholders(lst.id_template):
                raise fail(lst.id_loc, "id cannot name facet 'dataset': it is the id")
            self.id = parse_template(lst.id_template, lst.id_loc, known, "id template")

    def entries(self, apply_maps: MapFn) -> Iterator[tuple[str, dict[str, str], Loc]]:
        """(id, facets, where) for every line of every listing file read."""
        lst = self.raw
        for line, loc in lst.ids:
            facets = {**lst.path_facets.get(loc.file, {}), **lst.facets}
            if self.rx:
                m = self.rx.match(line)
                if not m:
                    what = "line" if self.id else "id"
                    raise fail(loc, f"{what} '{line}' does not match pattern '{lst.pattern}'")
                facets.update(m.groupdict())
            if facets:
                facets = apply_maps(facets, loc)
            yield (self.id.fill(facets) if self.id else line), facets, loc


def promised_key(lst: RawList, key_for: Callable[[dict[str, str]], str], relevant: tuple) -> str:
    """The routing key every dataset of a glob source will have, when its constant
    facets alone decide it: so the first compile, before any listing exists, already
    checks (and does not warn about) the route those datasets take."""
    if not lst.is_glob or not set(relevant) <= set(lst.facets):
        return ""
    return key_for(dict(lst.facets))
