"""`datasets: lists:` sources: a plain id file, or a glob over files a step wrote.

A glob source is how work known only later enters the workflow (Rubin's "start back
over at step 5"): a step writes a listing such as `work/<dataset>/parts.txt`, and the
next compile reads every listing that matches, e.g. `work/{parent}/parts.txt`. Each
`{name}` in the path matches like `*` and gives its dataset the facet `name`; zero
matches are fine (the step has not run yet), a missing plain file stays an error.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.core.diagnostics import Loc, fail
from compiler.load import schema as S
from compiler.load.yamlpos import YMap, note_volatile, read_text

_FIELD = re.compile(r"\{([^{}]*)\}")
_GLOB_CHARS = re.compile(r"[*?\[{}]")
_FACET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class RawList:
    file: str  # as shown in messages: the file, or the glob as written
    ids: list[tuple[str, Loc]]  # every entry line of every file read, with its position
    pattern: str | None  # template read back from each line
    pattern_loc: Loc
    # What a mapping source may add:
    id_template: str | None = None  # builds the id from facets; default: the line is the id
    id_loc: Loc = Loc("")
    facets: dict[str, str] = field(default_factory=dict)  # set on every dataset of the list
    facets_loc: Loc = Loc("")
    path_names: tuple[str, ...] = ()  # facets the file's path gives, in path order
    file_loc: Loc = Loc("")
    path_facets: dict[str, dict[str, str]] = field(default_factory=dict)  # shown file -> facets
    is_glob: bool = False


def _path_template(rel: str, loc: Loc) -> tuple[str, re.Pattern, tuple[str, ...]]:
    """The glob to run, the regex that reads facets back from a match, and their names."""
    names: list[str] = []
    glob_parts, rx_parts = [], []
    pos = 0
    for m in _FIELD.finditer(rel):
        glob_parts.append(rel[pos : m.start()])
        rx_parts.append(_glob_regex(rel[pos : m.start()]))
        name = m.group(1).strip()
        if not _FACET_NAME.match(name):
            raise fail(
                loc,
                f"'file' placeholder '{{{m.group(1)}}}' must name a facet: letters, digits and _",
            )
        if name in names:
            raise fail(loc, f"'file' names facet '{name}' twice")
        names.append(name)
        glob_parts.append("*")
        rx_parts.append(f"(?P<{name}>[^/]+)")
        pos = m.end()
    rest = rel[pos:]
    if "{" in rest or "}" in rest or any("{" in p or "}" in p for p in glob_parts):
        raise fail(loc, "'file' has an unbalanced '{' or '}'")
    glob_parts.append(rest)
    rx_parts.append(_glob_regex(rest))
    return "".join(glob_parts), re.compile("".join(rx_parts) + r"\Z"), tuple(names)


def _glob_regex(text: str) -> str:
    """A literal stretch of a glob as a regex that, like glob, never crosses '/'."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in text[i + 2 :]:
            j = text.index("]", i + 2)
            body = text[i + 1 : j]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _entries(text: str, shown: str) -> list[tuple[str, Loc]]:
    """Lines that are not blank or `#` comments, with where each starts."""
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if s and not s.startswith("#"):
            out.append((s, Loc(shown, n, line.index(s[0]) + 1)))
    return out


def _constant_facets(m: YMap) -> dict[str, str]:
    if "facets" not in m:
        return {}
    fm = m["facets"]
    out = {}
    for k, v in fm.items():
        if isinstance(v, (dict, list)) or v is None:
            raise fail(fm.val_loc(k), f"facet '{k}' of a dataset list must be a plain value")
        out[str(k)] = str(v).lower() if isinstance(v, bool) else str(v)
    return out


def shown_path(base: str, *parts: str) -> str:
    return os.path.normpath(os.path.join(base, *parts))


def load_list_source(item: Any, iloc: Loc, wf_dir: Path, shown_dir: str) -> RawList:
    """One entry of `lists:`: a file name, or a mapping checked against schema.LIST_SOURCE."""
    if isinstance(item, str):
        m, rel, floc = None, item, iloc
    else:
        m = S.check(item, S.LIST_SOURCE, iloc)
        rel, floc = m["file"], m.val_loc("file")
    if os.path.isabs(rel):
        raise fail(
            floc, f"a dataset list must be a path relative to the workflow directory, not '{rel}'"
        )
    raw = RawList(shown_path(shown_dir, rel), [], None, iloc, file_loc=floc)
    if m is not None:
        raw.pattern, raw.pattern_loc = m.get("pattern"), m.val_loc("pattern")
        raw.id_template, raw.id_loc = m.get("id"), m.val_loc("id")
        raw.facets, raw.facets_loc = _constant_facets(m), m.val_loc("facets")
        if raw.id_template is not None and raw.pattern is None:
            raise fail(m.key_loc("id"), "'id' needs a 'pattern' that reads facets from each line")
    if not _GLOB_CHARS.search(rel):
        raw.ids = _entries(read_text(wf_dir / rel, raw.file), raw.file)
        return raw

    # A glob names files steps write: it may not reach outside the workflow directory.
    if ".." in Path(rel).parts:
        raise fail(
            floc, f"a dataset list glob must stay inside the workflow directory, not '{rel}'"
        )
    pattern, rx, names = _path_template(rel, floc)
    raw.is_glob, raw.path_names = True, names
    note_volatile(f"the dataset list glob {rel}")  # new files match it unseen
    base = str(wf_dir)
    for path in sorted(glob.glob(os.path.join(glob.escape(base), pattern))):
        if not os.path.isfile(path):
            continue
        rel_match = os.path.relpath(path, base).replace(os.sep, "/")
        got = rx.match(rel_match)
        if got is None:  # glob and regex disagree only on odd names; such a file is not ours
            continue
        shown = shown_path(shown_dir, rel_match)
        for name, value in got.groupdict().items():
            if _CONTROL.search(value):
                raise fail(
                    Loc(shown), f"facet '{name}' read from this path holds a control character"
                )
        raw.path_facets[shown] = got.groupdict()
        raw.ids += _entries(read_text(Path(path), shown), shown)
    return raw
