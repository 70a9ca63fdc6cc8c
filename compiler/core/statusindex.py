"""Reading status files fast, and an index of what each one says.

Shared by the compiler's plan and the survey (`padocc status`, `report`,
`dashboard`): the index is keyed by each file's device, inode, size, mtime_ns and
ctime_ns, so a changed file is always read again, and a file changed in the last
two seconds is never indexed (a coarse clock cannot hide a rewrite).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import re
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from compiler.core.buildlock import workflow_dir_of
from compiler.core.safeio import open_regular, read_regular, replace_text
from compiler.core.statusfile import (
    ENGAGED,
    HEADER,
    LINE_WARNING,
    NON_BINDING,
    TORN_MARK,
    History,
    Parts,
    Stat,
    parse_stamp,
    split_line,
    stat_of,
)

INDEX_VERSION = 3  # 3: datasm line shapes, COMM records, closed torn lines
RACY_NS = 2_000_000_000  # 2 s: covers 1 s clocks and FAT's 2 s mtime
INDEX_FILE = Path(".padocc") / "survey" / "status-index.json"
# A delta past this is folded into its base whatever the base's size (and one found
# past it is not read): loading it must stay cheap beside the base.
DELTA_CAP = 64 * 1024 * 1024
_GENERATION = re.compile(r"[0-9a-f]{16}")


# --- reading one status file -------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _date_ok(ymd: str) -> bool:
    try:
        datetime(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
    except ValueError:
        return False
    return True


def stamp_ok(ts: str) -> bool:
    """Exactly `parse_stamp`'s verdict. For the usual ASCII shape 8_6_6 digits strptime
    accepts what datetime() accepts, so strptime (the slow part) is only asked about odd
    shapes; the date part is cached because a whole archive has few distinct days."""
    if len(ts) == 22 and ts[8] == "_" and ts[15] == "_" and ts.isascii():
        hms = ts[9:15]
        if ts[:8].isdigit() and hms.isdigit() and ts[16:].isdigit():
            return hms[:2] <= "23" and hms[2:4] <= "59" and hms[4:] <= "59" and _date_ok(ts[:8])
    try:
        parse_stamp(ts)
    except ValueError:
        return False
    return True


# Only lines of our own shape, exactly five fields after the stamp (the last, the
# parameters, may be empty), which split_line cuts where this does: STAT lines, and
# COMM lines whose state is one of our non-binding ones (a COMM line of any other
# shape is datasm's comment, which the line count below sends line by line). On the
# usual stamp shape with its fields in range (days per month are checked after).
# [0-9]: \d takes any digit. Any other shape (datasm's shorter and deeper lines) is
# read line by line.
_DAY_RE = r"[0-9]{4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_TIME_RE = r"_(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]_[0-9]{6}"
_TS_RE = _DAY_RE + _TIME_RE
_NB_RE = "|".join(sorted(NON_BINDING))
_KIND_RE = rf"(?:STAT|COMM(?=(?::[^:\n]+){{4}}:(?:{_NB_RE}):[^:\n]*$))"
_STAT_LINE = re.compile(
    rf"^{_KIND_RE}:({_TS_RE}):([^:\n]+):([^:\n]+):([^:\n]+):([^:\n]+):([^:\n]*)$", re.M
)


def _usual(data: bytes) -> bool:
    """A file the fast paths may read: a header, a final newline, no CR, no closed
    torn line, and no "STAT" written "%53TAT" in a COMM line (to be decoded)."""
    return (
        data.startswith(b"DATASETID=")
        and data.endswith(b"\n")
        and b"\r" not in data
        and TORN_MARK.encode() + b"\n" not in data
        and (b"%53" not in data or b"\nCOMM:" not in data)
    )


def _records(text: str) -> int:
    """Lines that must all match for a fast read: every STAT and COMM line."""
    return text.count("\nSTAT") + text.count("\nCOMM:")


def scan(data: bytes, path: str, first_line: int = 1) -> tuple[str | None, list[Parts], list[str]]:
    """(header id, valid STAT lines as Parts, warnings): the same lines and warnings as
    `statusfile.parse_history` gives, in the same order.

    A whole file is matched by one regular expression when it looks as files usually
    do (a header, a final newline, no CR). Anything unusual in it, a line that does not
    match or a day that does not exist, sends it through the line-by-line reading.
    `first_line` > 1: `data` is the file's tail from that line on (whole lines)."""
    if first_line > 1:
        return _scan_lines(data, path, first_line)
    if _usual(data):
        text = data.decode("utf-8", errors="replace")
        found = _STAT_LINE.findall(text)
        if len(found) == _records(text) and all(_date_ok(d) for d in {f[0][:8] for f in found}):
            return text[len(HEADER) : text.index("\n")].strip(), found, []
    return _scan_lines(data, path)


def _scan_lines(
    data: bytes, path: str, first_line: int = 1
) -> tuple[str | None, list[Parts], list[str]]:
    warnings: list[str] = []
    if not data:
        return None, [], [f"{path}: empty status file"] if first_line == 1 else []
    lines = data.decode("utf-8", errors="replace").split("\n")
    torn = lines.pop()  # "" when the file ends with a newline
    dataset_id = None
    out: list[Parts] = []
    for n, line in enumerate(lines, start=first_line):
        if n == 1:
            if line.startswith(HEADER) and not line.endswith(TORN_MARK):
                dataset_id = line[len(HEADER) :].strip()
                continue
            warnings.append(f"{path}:1: missing DATASETID header")
        if not line.startswith(("STAT", "COMM:")) and not line.endswith(TORN_MARK):
            continue  # a comment
        p = split_line(line)
        if isinstance(p, tuple):
            out.append(p)
        elif p is not None:
            warnings.append(f"{path}:{n}: {LINE_WARNING[p]}")
    if torn:
        warnings.append(f"{path}:{first_line + len(lines)}: torn last line ignored")
    return dataset_id, out, warnings


def to_stat(p: Sequence[str]) -> Stat:
    return stat_of(tuple(p))  # type: ignore[arg-type]


def history_of(data: bytes, path: str) -> History:
    """`statusfile.parse_history`, with the same result, at a fraction of its cost."""
    dataset_id, parts, warnings = scan(data, path)
    return History(path, dataset_id, [to_stat(p) for p in parts], warnings)


class Brief(NamedTuple):
    """Where one status file puts its dataset: what `statusfile.position_of` says of
    the current line, open engagement and block, kept as raw Parts (cheap to index)."""

    dataset_id: str | None
    current: Parts | None  # the last binding line that is not an Engaged
    engaged: Parts | None  # an Engaged with no end yet: running, or crashed
    blocked: bool
    warnings: tuple[str, ...]


# Checks the first five fields of every record line as _STAT_LINE does, without
# capturing them (the days are captured, to check per month); about twice as fast.
_STAT_HEAD = re.compile(
    rf"\n{_KIND_RE}:({_DAY_RE}){_TIME_RE}:[^:\n]+:[^:\n]+:[^:\n]+:[^:\n]+:[^:\n]*(?=\n)",
    re.M,
)


def fold(data: bytes, path: str) -> Brief:
    """`fold_lines(*scan(data, path))`, reading only the lines that decide.

    When the whole file checks out as usual (header, final newline, no CR, every STAT
    line well formed), the position is found walking back from the end: the last
    binding line, an Engaged after it, and the last Blocked/Unblocked. Anything else
    is read line by line."""
    if _usual(data):
        text = data.decode("utf-8", errors="replace")
        days = _STAT_HEAD.findall(text)
        if len(days) == _records(text) and all(_date_ok(d) for d in set(days)):
            return _fold_back(text)
    return fold_lines(*_scan_lines(data, path))


def _fold_back(text: str) -> Brief:
    cur: Parts | None = None
    eng: Parts | None = None
    eng_seen = False
    cancelled: set[str] = set()  # steps cancelled after the last Engaged
    blocked: bool | None = None
    end = len(text) - 1  # the final newline
    first = text.index("\n")  # the header's newline
    while end > first:
        start = text.rfind("\n", 0, end) + 1
        line, end = text[start:end], start - 1
        if not line.startswith(("STAT", "COMM:")):
            continue  # a comment (every COMM line here is a record: see fold)
        p = line.split(":", 6)
        state = p[5]
        if state == "Blocked" or state == "Unblocked":
            if blocked is None:
                blocked = state == "Blocked"
                if cur is not None:
                    break
        elif cur is not None:
            continue  # only a block is still to be found
        elif state == "Cancelled":
            if not eng_seen:
                cancelled.add(p[4])
        elif state in NON_BINDING:
            continue
        elif state == ENGAGED:
            if not eng_seen:
                eng_seen = True
                eng = (
                    None
                    if p[4] in cancelled
                    else (p[1], p[2], p[3], p[4], p[5], p[6] if len(p) > 6 else "")
                )
        else:
            cur = (p[1], p[2], p[3], p[4], p[5], p[6] if len(p) > 6 else "")
            if blocked is not None or text.find("locked", first, start) < 0:
                break  # no Blocked/Unblocked line before it
    return Brief(text[len(HEADER) : first].strip(), cur, eng, bool(blocked), ())


def fold_lines(dataset_id: str | None, lines: list[Parts], warnings: list[str]) -> Brief:
    cur: Parts | None = None
    eng: Parts | None = None
    blocked = False
    for p in lines:  # the same fold as position_of, on raw fields
        state = p[4]
        if state == "Blocked":
            blocked = True
        elif state == "Unblocked":
            blocked = False
        elif state == "Cancelled":
            if eng is not None and eng[3] == p[3]:
                eng = None
        elif state in NON_BINDING:
            continue
        elif state == ENGAGED:
            eng = p
        else:
            eng, cur = None, p
    return Brief(dataset_id, cur, eng, blocked, tuple(warnings))


def _read(path: str) -> bytes:
    return read_regular(path)


def _line(p: Parts | None) -> str | None:
    return None if p is None else ":".join(p)


def _unline(s: str | None) -> Parts | None:
    if s is None:
        return None
    p = tuple(s.split(":", 5))  # the first five fields hold no ':'
    if len(p) != 6:
        raise ValueError(s)
    return p  # type: ignore[return-value]


@contextlib.contextmanager
def _no_gc():
    """Loading an index makes hundreds of thousands of small lists and no cycles: the
    collector's passes over them would cost as much as the parsing."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Index:
    """file name -> [dev, ino, size, mtime_ns, ctime_ns, id, current, engaged, blocked,
    warnings, *extra], the lines as text: few JSON tokens per file keep loading it fast.

    Entries hold for the version, status dir and `context` they were made with; a
    subclass keeps more per file (`extra`) and beside the files (`loaded`, `more`).

    Updated in place: the JSON file is the base, and a save appends only the changed
    entries (a tombstone `[name]` for a removed one) to a delta beside it, one JSON
    line each, in one `os.write`. The delta is named after the base's random
    `generation`, so a delta of an older base is never read. Loading applies its whole
    lines in order (later wins) and ignores a torn last line or a line that does not
    parse: the worst a damaged delta costs is reading status files again, as every
    entry is checked against its file's signature. The base is written whole (a new
    generation, renamed into place) only when the delta outgrows a quarter of it or
    DELTA_CAP, when `more` changed, or when there was no sound base or delta."""

    version = INDEX_VERSION

    def __init__(self, path: Path, status_dir: str, **context: object):
        self.path, self.status_dir = path, status_dir
        # The status dir named relative to the workflow dir when inside it: a moved or
        # copied workflow keeps its index (entries are keyed by inode and times), and
        # the index names no absolute path.
        wf_dir = workflow_dir_of(os.path.dirname(os.path.abspath(path)))
        key = status_dir
        if os.path.abspath(status_dir).startswith(os.path.join(wf_dir, "")):
            key = os.path.relpath(os.path.abspath(status_dir), wf_dir)
        self.header = {"version": self.version, "status_dir": key, **context}
        self.racy_from = time.time_ns() - RACY_NS
        self.files: dict[str, list] = {}
        self.dirty: set[str] = set()  # names put or dropped since loading
        self.whole = True  # no base and delta to append to: the next save writes it whole
        self.generation, self.base_size = "", 0
        try:
            raw = read_regular(path)
            with _no_gc():
                data = json.loads(raw)
            if all(data.get(k) == v for k, v in self.header.items()):
                self.files = dict(data["files"])
                self.loaded(data)
                gen = data.get("generation")
                if type(gen) is str and _GENERATION.fullmatch(gen):
                    self.generation, self.base_size = gen, len(raw)
                    self.whole = not self._apply_delta()
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.files = {}  # missing or damaged: start again, it is only a cache
            self.whole = True
        self.saved_more = json.dumps(self.more(), separators=(",", ":"))

    def _delta(self, generation: str) -> Path:
        return self.path.with_name(f"{self.path.name}.{generation}.d")

    def _apply_delta(self) -> bool:
        """Applies the delta's sound lines; False when it cannot be read or appended to
        (a FIFO, a directory, a link, past DELTA_CAP): the next save starts a new base."""
        try:
            raw = read_regular(self._delta(self.generation), DELTA_CAP, flags=os.O_NOFOLLOW)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        files = self.files
        with _no_gc():
            for line in raw[: raw.rfind(b"\n") + 1].split(b"\n"):  # a torn last line is left out
                try:
                    rec = json.loads(line) if line else None
                except ValueError:
                    continue
                if type(rec) is list and rec and type(rec[0]) is str:
                    if len(rec) == 1:
                        files.pop(rec[0], None)
                    elif len(rec) == 2 and type(rec[1]) is list:
                        files[rec[0]] = rec[1]
        return True

    def loaded(self, data: dict) -> None:
        """A subclass reads what it keeps beside the files; raises if that is damaged."""

    def more(self) -> dict:
        """What a subclass keeps beside the files, to save."""
        return {}

    def get(self, name: str, sig: list[int]) -> Brief | None:
        e = self.files.get(name)
        try:
            if e is None or e[:5] != sig:
                return None
            return Brief(e[5], _unline(e[6]), _unline(e[7]), bool(e[8]), tuple(e[9]))
        except (IndexError, TypeError, ValueError, AttributeError):
            return None  # a damaged entry: read the file

    def put(self, name: str, sig: list[int], b: Brief, *extra: object) -> None:
        if sig[3] >= self.racy_from or sig[4] >= self.racy_from:
            if self.files.pop(name, None) is not None:  # changed just now: read it next time
                self.dirty.add(name)
            return
        self.files[name] = [
            *sig,
            b.dataset_id,
            _line(b.current),
            _line(b.engaged),
            int(b.blocked),
            list(b.warnings),
            *extra,
        ]
        self.dirty.add(name)

    def clear(self) -> None:
        """Forget every entry; the next save writes the base whole."""
        self.files.clear()
        self.whole = True

    def save(self, keep: set[str]) -> None:
        gone = self.files.keys() - keep
        for name in gone:
            del self.files[name]
        names = self.dirty | gone
        if not names:
            return
        self.dirty = set()
        more = json.dumps(self.more(), separators=(",", ":"))
        with contextlib.suppress(OSError):  # read-only or full: right, only slower next time
            if not self.whole and more == self.saved_more and self._append(names):
                return
            self._rewrite(more)

    def _append(self, names: set[str]) -> bool:
        """Appends the entries of `names` to the delta; False when the base is to be
        written whole instead (the delta would outgrow its bound, or is not a file)."""
        files, sep = self.files, (",", ":")
        # Led by a newline: a line torn by a killed writer ends there, ours stay whole.
        blob = (
            "".join(
                "\n" + json.dumps([n, files[n]] if n in files else [n], separators=sep)
                for n in names
            ).encode()
            + b"\n"
        )
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
        try:
            fd = open_regular(self._delta(self.generation), flags)
        except OSError:
            return False
        try:
            if os.fstat(fd).st_size + len(blob) > min(self.base_size // 4, DELTA_CAP):
                return False
            os.write(fd, blob)  # one write of whole lines; a short one (a full disk) is torn
        finally:
            os.close(fd)
        return True

    def _rewrite(self, more: str) -> None:
        """The base written whole under a new generation; older deltas removed."""
        gen = os.urandom(8).hex()
        text = json.dumps(
            {**self.header, "generation": gen, **self.more(), "files": self.files},
            separators=(",", ":"),
        )
        replace_text(self.path, text)
        self.generation, self.base_size, self.whole, self.saved_more = gen, len(text), False, more
        folder, prefix = self.path.parent, self.path.name + "."
        for n in os.listdir(folder):  # ours before, and any a racing save left
            g = n[len(prefix) : -2]
            if n.startswith(prefix) and n.endswith(".d") and g != gen and _GENERATION.fullmatch(g):
                with contextlib.suppress(OSError):
                    os.unlink(folder / n)
