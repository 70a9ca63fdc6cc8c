"""`{facet}` templates (ids, routing keys, commands): checked at compile, filled at run time."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from compiler.core.diagnostics import Loc, fail, suggest

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


def parse_template(
    text: str, loc: Loc, known: Iterable[str], what: str, shell: bool = False, noun: str = "facet"
) -> Template:
    """`{name}` or `{name|filter|...}` is a placeholder; `{{` and `}}` are a literal
    brace. In a shell command (`shell`), `${...}` is the shell's own expansion and is
    passed through whole (`${SLEEP:-300}`, `${A:-${B}}`)."""
    known = set(known)
    parts: list = []
    lit: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c not in "{}":
            j = i + 1
            while j < n and text[j] not in "{}":
                j += 1
            lit.append(text[i:j])
            i = j
        elif text.startswith(c * 2, i):
            lit.append(c)
            i += 2
        elif c == "}":
            raise fail(loc, f"{what} has an unbalanced '}}' (write '}}}}' for a literal one)")
        elif shell and i > 0 and text[i - 1] == "$":
            j = _shell_expansion_end(text, i)
            if j < 0:
                raise fail(loc, f"{what} has an unbalanced '${{' (no '}}' closes it)")
            lit.append(text[i:j])
            i = j
        else:
            j = text.find("}", i)
            if j < 0 or "{" in text[i + 1 : j]:
                raise fail(loc, f"{what} has an unbalanced '{{' (write '{{{{' for a literal one)")
            if lit:
                parts.append("".join(lit))
                lit = []
            parts.append(_placeholder(text[i + 1 : j], loc, known, what, noun))
            i = j + 1
    if lit:
        parts.append("".join(lit))
    return Template(text, tuple(parts))


def _shell_expansion_end(text: str, start: int) -> int:
    """The index just past the '}' that closes the '{' at `start` (nested braces count),
    or -1."""
    depth = 0
    for k in range(start, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k + 1
    return -1


def _placeholder(field: str, loc: Loc, known: set[str], what: str, noun: str) -> tuple:
    name, *filters = [x.strip() for x in field.split("|")]
    if not name:
        raise fail(loc, f"{what} has an empty '{{}}' placeholder")
    if name not in known:
        raise fail(loc, f"{what} names unknown {noun} '{name}'{suggest(name, known)}")
    for f in filters:
        if f not in FILTERS:
            raise fail(loc, f"{what} uses unknown filter '{f}'{suggest(f, FILTERS)}")
    return (name, tuple(filters))


def template_regex(t: Template) -> re.Pattern:
    """A regex that reads a filled id template back into its facets."""
    rx = []
    for p in t.parts:
        if isinstance(p, str):
            rx.append(re.escape(p))
        else:
            rx.append(f"(?P<{p[0]}>[^.]+)" if not p[1] else "[^.]+")
    return re.compile("".join(rx) + r"\Z")
