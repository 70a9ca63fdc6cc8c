"""SHEPARD's flock: a directory of groups, each listing its datasets.

A group is a file or a directory (whose *.csv / *.txt files are read):
- padocc's group CSV: `proj_code, /glob/**/*.nc, updates.json|, removals.json|, var...`
  (empty trailing fields allowed; '#' lines and a header starting proj_code skipped).
  As cedadev/padocc's `_init_group` reads it, fields 5 and later name the variables to
  keep: they become the facet `keep_vars` (comma-separated, first spelling kept);
- a plain list: one dataset id per line.
A group holding a `.shpignore` file (or with a `NAME.shpignore` beside it) is
quarantined: the cycle skips it entirely.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from compiler.core.diagnostics import CompileError, Diagnostic, Loc, fail
from compiler.core.ids import check_id
from compiler.core.limits import GROUP_NAME_MAX
from compiler.load.yamlpos import read_text

IGNORE = ".shpignore"
GROUP_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+=-")


@dataclass
class Group:
    name: str
    path: Path
    digest: str
    ignored: bool
    entries: list[tuple[str, dict, Loc]] = field(default_factory=list)


def _group_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".csv", ".txt") and p.is_file())
    return [path]


def _csv_rows(text: str, shown: str):
    """(line, row) of a group CSV; a malformed row (a stray carriage return, a NUL)
    is one diagnostic at its line, never a traceback."""
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise fail(Loc(shown, reader.line_num, 1), f"malformed CSV row: {e}") from None
        yield reader.line_num, row


def _read_group_file(p: Path, text: str, shown: str, group: str) -> list[tuple[str, dict, Loc]]:
    out = []
    # A spreadsheet's "CSV UTF-8" starts with a byte order mark: it is no part of the
    # first field (padocc finds its header by substring, so the mark never hurts there).
    text = text.removeprefix("\ufeff")
    if p.suffix == ".csv":
        for n, row in _csv_rows(text, shown):
            cells = [c.strip() for c in row]
            if not cells or not cells[0] or cells[0].startswith("#") or cells[0] == "proj_code":
                continue
            cells += [""] * (4 - len(cells))
            facets = {
                "group": group,
                "pattern": cells[1],
                "updates": cells[2],
                "removals": cells[3],
                "keep_vars": ",".join(dict.fromkeys(v for v in cells[4:] if v)),
            }
            out.append((cells[0], facets, Loc(shown, n, 1)))
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            s = line.strip()
            if s and not s.startswith("#"):
                facets = {
                    "group": group,
                    "pattern": "",
                    "updates": "",
                    "removals": "",
                    "keep_vars": "",
                }
                out.append((s, facets, Loc(shown, n, line.index(s[0]) + 1)))
    return out


def _members(flock_dir: Path) -> dict[str, list[Path]]:
    """Group name -> the files or directories that give it (more than one is an error)."""
    out: dict[str, list[Path]] = {}
    for path in sorted(flock_dir.iterdir()):
        if path.name.startswith(".") or path.suffix == IGNORE:
            continue
        if path.is_file() and path.suffix not in (".csv", ".txt"):
            continue
        out.setdefault(path.stem if path.is_file() else path.name, []).append(path)
    return out


def _where(first: Loc, here: Loc) -> str:
    return f"line {first.line}" if first.file == here.file else f"{first.file}:{first.line}"


def scan_flock(flock_dir: Path, shown_dir: str) -> tuple[list[Group], list[Diagnostic]]:
    """Every group, with the problems of groups that had to be skipped."""
    if not flock_dir.is_dir():
        raise fail(Loc(shown_dir), "flock_dir is not a directory")
    groups, problems = [], []
    members = _members(flock_dir)
    for name, paths in sorted(members.items()):
        path = paths[0]
        shown = f"{shown_dir.rstrip('/')}/{path.name}"
        if len(paths) > 1:
            # Completion moves the group by its name: with two files of one name it would
            # move one and leave the other, so neither runs until one is renamed.
            also = ", ".join(f"{shown_dir.rstrip('/')}/{p.name}" for p in paths[1:])
            problems.append(
                Diagnostic(Loc(shown), f"group '{name}' is also {also}; rename one; group skipped")
            )
            continue
        ignored = (path.is_dir() and (path / IGNORE).exists()) or (
            flock_dir / f"{name}{IGNORE}"
        ).exists()
        h = hashlib.sha256()
        g = Group(name, path, "", ignored)
        try:
            if not set(name) <= GROUP_NAME_OK or name.startswith(("-", ".")):
                raise fail(
                    Loc(shown),
                    f"group name {name!r} is not allowed: use letters, digits and _ . + = -",
                )
            if len(name) > GROUP_NAME_MAX:  # complete_dir/.tmp-NAME-CYCLE must fit a file name
                raise fail(Loc(shown), f"group name is longer than {GROUP_NAME_MAX} characters")
            for f in _group_files(path):
                fshown = f"{shown}/{f.name}" if path.is_dir() else shown
                text = read_text(f, fshown)  # regular files only: a FIFO never hangs a cycle
                h.update(f.name.encode() + b"\0" + text.encode("utf-8"))
                g.entries += _read_group_file(f, text, fshown, name)
            first: dict[str, Loc] = {}
            for ds_id, _, loc in g.entries:
                check_id(ds_id, loc)
                if ds_id in first:
                    raise fail(
                        loc,
                        f"dataset '{ds_id}' is listed twice in group '{name}' (first at "
                        f"{_where(first[ds_id], loc)}); group skipped",
                    )
                first[ds_id] = loc
        except CompileError as e:
            problems += e.diagnostics
            continue
        except OSError as e:
            problems.append(Diagnostic(Loc(shown), f"cannot read group: {e.strerror}"))
            continue
        g.digest = h.hexdigest()[:16]
        groups.append(g)
    # A dataset listed by two groups: the later group waits until that is fixed.
    seen: dict[str, str] = {}
    kept = []
    for g in groups:
        dup = next(((i, loc) for i, _, loc in g.entries if i in seen), None)
        if dup:
            problems.append(
                Diagnostic(
                    dup[1], f"dataset '{dup[0]}' is also in group '{seen[dup[0]]}'; group skipped"
                )
            )
            continue
        seen.update((i, g.name) for i, _, _ in g.entries)
        kept.append(g)
    return kept, problems
