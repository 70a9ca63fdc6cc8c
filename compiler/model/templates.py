"""`{facet}` templates (ids, routing keys, commands): checked at compile, filled at run time."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from compiler.core.diagnostics import Loc, fail, suggest

_FIELD = re.compile(r"\{([^{}]*)\}")

FILTERS: dict[str, Callable[[str], str]] = {
    "nodash": lambda s: s.replace("-", ""),
    "nodot": lambda s: s.replace(".", ""),
    "lower": str.lower,
    "upper": str.upper,
}


@dataclass(frozen=True)
class Template:
    text: str
    parts: tuple  # str literal, or (name, (filters...))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p[0] for p in self.parts if isinstance(p, tuple))

    def fill(self, values: Mapping[str, str], quote: Callable[[str], str] | None = None) -> str:
        out = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
                continue
            name, filters = p
            v = str(values[name])
            for f in filters:
                v = FILTERS[f](v)
            out.append(quote(v) if quote else v)
        return "".join(out)


def parse_template(text: str, loc: Loc, known: Iterable[str], what: str) -> Template:
    known = set(known)
    parts: list = []
    pos = 0
    for m in _FIELD.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        name, *filters = [x.strip() for x in m.group(1).split("|")]
        if not name:
            raise fail(loc, f"{what} has an empty '{{}}' placeholder")
        if name not in known:
            raise fail(loc, f"{what} names unknown facet '{name}'{suggest(name, known)}")
        for f in filters:
            if f not in FILTERS:
                raise fail(loc, f"{what} uses unknown filter '{f}'{suggest(f, FILTERS)}")
        parts.append((name, tuple(filters)))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    if any(isinstance(p, str) and ("{" in p or "}" in p) for p in parts):
        raise fail(loc, f"{what} has an unbalanced '{{' or '}}'")
    return Template(text, tuple(parts))


def template_regex(t: Template) -> re.Pattern:
    """A regex that reads a filled id template back into its facets."""
    rx = []
    for p in t.parts:
        if isinstance(p, str):
            rx.append(re.escape(p))
        else:
            rx.append(f"(?P<{p[0]}>[^.]+)" if not p[1] else "[^.]+")
    return re.compile("".join(rx) + r"\Z")
