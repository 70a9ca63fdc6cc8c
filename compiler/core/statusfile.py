"""The per-dataset append-only status file, kept compatible with E3SM datasm.

    DATASETID=<id>
    STAT:<YYYYmmdd_HHMMSS_ffffff>:<workflow>:<sub-workflow>:<Step>:<State>:<k=v,...>
    COMM:<YYYYmmdd_HHMMSS_ffffff>:<workflow>:<sub-workflow>:<Step>:<State>:<k=v,...>

A STAT line is read the way datasm reads it (E3SM-Project/datasm 18eb7f4,
datasm/dataset.py `load_dataset_status_file`, datasm/workflows/__init__.py
`next_state`): split at every ':', the last field is the parameters, the one before
it the state, the one before that the step; what comes before the step is the path of
(sub-)workflows, outermost first. So datasm's shorter lines (`DATASM:Ready:`, its
publication tools' `PUBLICATION:Verified:v2`) and deeper ones
(`DATASM:VALIDATION:ATMVALIDATION:Step:Ready:`) mean what they mean to datasm. A STAT
line whose part after the first two levels is exactly `Blocked:`, `Unblocked:`,
`Approved:` or `Unapproved:` is datasm's non-binding note: it neither moves nor blocks
a dataset (datasm's `get_latest_status` skips it).

padocc's own non-binding records (Blocked, Unblocked, Retry, Cancelled) are COMM lines:
datasm keeps a COMM line as a comment (its `load_dataset_status_file`, and
`get_last_status_line`, which takes the last line holding "STAT"), so it never takes one
for a dataset's latest state. Older files' STAT lines of those states still read.

A line that a crash cut short is closed, by the next append, with TORN_MARK: that
line is then a fragment to datasm (its state reads as "TORN" after an empty field,
which no graph routes) and to us (ignored, with a warning), never an outcome.

Any other line is a comment. In parameter values ':' is written '^' as datasm
does; '%', ',', '=', '^' and line breaks are %-escaped so every value round-trips.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from compiler.core.journal import note_change
from compiler.core.safeio import open_regular, read_regular

HEADER = "DATASETID="
TS_FORMAT = "%Y%m%d_%H%M%S_%f"
STAT, COMM = "STAT:", "COMM:"
# Closes a torn last line. Our lines never hold "::" (no field is empty and values
# hold no ':'), so no whole line ends with it; datasm reads "<...>::TORN:" as step ""
# and state "TORN", which no transition graph holds.
TORN_MARK = "::TORN:"

# States that never move a dataset: Blocked/Unblocked, our per-attempt Retry record,
# and Cancelled, which closes an engagement without an outcome. Written as COMM lines.
NON_BINDING = frozenset({"Blocked", "Unblocked", "Retry", "Cancelled"})
# datasm's dataset.py `non_binding_status`: the whole rest of a line after its first two
# levels, compared exactly.
DATASM_NON_BINDING = frozenset({"Blocked:", "Unblocked:", "Approved:", "Unapproved:"})
ENGAGED = "Engaged"
READY = "Ready"
FINAL = frozenset({"Pass", "Fail"})
QUARANTINED = "Quarantined"

_ESC = {"%": "%25", ",": "%2C", "=": "%3D", "^": "%5E", "\n": "%0A", "\r": "%0D"}


def escape_value(value: object) -> str:
    s = str(value)
    for ch, rep in _ESC.items():  # '%' first, so escapes are not escaped again
        s = s.replace(ch, rep)
    return s.replace(":", "^")


_UNESC = tuple(reversed([(rep, ch) for ch, rep in _ESC.items()]))


def unescape_value(s: str) -> str:
    if "^" not in s and "%" not in s:  # most values: nothing to undo
        return s
    s = s.replace("^", ":")
    for rep, ch in _UNESC:
        s = s.replace(rep, ch)
    return s


def format_params(params: Mapping[str, object]) -> str:
    return ",".join(f"{escape_value(k)}={escape_value(v)}" for k, v in params.items())


def parse_params(text: str) -> dict[str, str]:
    """k=v items; an item with no '=' (datasm's `Verified:v20240101`) is skipped, as
    datasm's `start_datasets` skips it."""
    out: dict[str, str] = {}
    for part in text.split(","):
        k, eq, v = part.partition("=")
        if eq:
            out[unescape_value(k)] = unescape_value(v)
    return out


def utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime(TS_FORMAT)


def parse_stamp(ts: str) -> datetime:
    # The usual shape YYYYmmdd_HHMMSS_ffffff read directly: strptime is slow enough to
    # cost seconds when a plan or a report reads tens of thousands of stamps.
    if len(ts) == 22 and ts[8] == "_" and ts[15] == "_" and ts.replace("_", "").isdigit():
        return datetime(
            int(ts[:4]), int(ts[4:6]), int(ts[6:8]), int(ts[9:11]), int(ts[11:13]),
            int(ts[13:15]), int(ts[16:]), tzinfo=UTC,
        )  # fmt: skip
    return datetime.strptime(ts, TS_FORMAT).replace(tzinfo=UTC)


def iso(ts: str | None) -> str | None:
    """A STAT stamp as ISO 8601 UTC to the second."""
    if not ts:
        return None
    return parse_stamp(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Stat:
    ts: str
    workflow: str
    sub: str
    step: str
    state: str
    params: Mapping[str, str]

    @property
    def binding(self) -> bool:
        return self.state not in NON_BINDING


def format_stat(stat: Stat) -> str:
    """A STAT line; a non-binding record (NON_BINDING) is a COMM line, with every
    "STAT" in it written "%53TAT", so no datasm reader takes it for a state."""
    fields = (stat.workflow, stat.sub, stat.step, stat.state)
    for f in fields:
        if not f or any(c in f for c in ":\n\r"):
            raise ValueError(f"status field {f!r} is empty or holds ':' or a line break")
    line = f"{stat.ts}:{':'.join(fields)}:{format_params(stat.params)}"
    if stat.state in NON_BINDING:
        return COMM + line.replace("STAT", "%53TAT")
    return STAT + line


# One line's raw fields: (ts, workflow, sub, step, state, params text).
Parts = tuple[str, str, str, str, str, str]
MALFORMED, TORN = "malformed", "torn"


def split_line(line: str) -> Parts | str | None:
    """A record's Parts; MALFORMED or TORN for a STAT line that is not a record; None
    for a comment (datasm's non-binding notes and COMM comments included)."""
    line = line.rstrip("\r\n")
    if line.endswith(TORN_MARK):
        return TORN
    if line.startswith(COMM):
        # Only our own records: 5 fields after the stamp and a non-binding state.
        # datasm's COMM lines (dsm_generate_CMIP6's `COMM:ts:POSTPROCESS:...`) stay comments.
        f = line.replace("%53", "S").split(":")
        if len(f) == 7 and f[5] in NON_BINDING and all(f[1:6]) and _stamp_ok(f[1]):
            return (f[1], f[2], f[3], f[4], f[5], f[6])
        return None
    if not line.startswith(STAT):
        return MALFORMED if line.startswith("STAT") else None
    f = line.split(":")
    ts, body = f[1], f[2:]
    if len(body) < 2 or not _stamp_ok(ts):
        return MALFORMED
    if len(body) == 2:  # `DATASM:Ready`: datasm's next_state takes it whole as Step:State
        path, step, state, params = (), body[0], body[1], ""
    else:
        path, (step, state, params) = body[:-3], body[-3:]
    if not step or not state or not all(path):
        return MALFORMED
    if ":".join(body[2:]) in DATASM_NON_BINDING:
        return None
    return (ts, path[0] if path else "", path[-1] if path else "", step, state, params)


def _stamp_ok(ts: str) -> bool:
    try:
        parse_stamp(ts)
    except ValueError:
        return False
    return True


def stat_of(p: Parts) -> Stat:
    return Stat(p[0], p[1], p[2], p[3], p[4], parse_params(p[5]) if p[5] else {})


def parse_stat(line: str) -> Stat | None:
    """One record line (see the module's doc), or None if it is not one."""
    p = split_line(line)
    return stat_of(p) if isinstance(p, tuple) else None


LINE_WARNING = {
    MALFORMED: "malformed STAT line ignored",
    TORN: "torn line (cut by a crash, closed later) ignored",
}


@dataclass
class History:
    """What one status file says, read tolerantly: problems become warnings."""

    path: str
    dataset_id: str | None
    stats: list[Stat] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_history(data: bytes, path: str, first_line: int = 1) -> History:
    """`first_line` > 1: data is the file's tail from that line on (HistoryTail)."""
    h = History(path, None)
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    torn = lines[-1] != ""
    if not torn:
        lines.pop()
    last = first_line + len(lines) - 1
    for n, line in enumerate(lines, start=first_line):
        if torn and n == last:
            h.warnings.append(f"{path}:{n}: torn last line ignored")
            break
        if n == 1:
            if line.startswith(HEADER) and not line.endswith(TORN_MARK):
                h.dataset_id = line[len(HEADER) :].strip()
                continue
            h.warnings.append(f"{path}:1: missing DATASETID header")
        p = split_line(line)
        if isinstance(p, tuple):
            h.stats.append(stat_of(p))
        elif p is not None:
            h.warnings.append(f"{path}:{n}: {LINE_WARNING[p]}")
    if not data and first_line == 1:
        h.warnings.append(f"{path}: empty status file")
    return h


def read_history(path: Path) -> History:
    try:
        data = read_regular(path)
    except FileNotFoundError:
        h = History(str(path), None)
        if path.is_symlink():  # dangling: appends refuse it, so say so now
            h.warnings.append(f"{path}: status file is a symbolic link to nowhere; ignored")
        return h
    except OSError as e:
        h = History(str(path), None)
        h.warnings.append(f"{path}: unreadable status file: {e.strerror}")
        return h
    return parse_history(data, str(path))


class HistoryTail:
    """One status file read as it grows (status files are append-only): each read()
    parses only the whole lines added since the last one, so a job that rereads its
    dataset's history after every step pays for two lines, not the whole file. The
    stats are always those read_history would return."""

    def __init__(self, path: Path):
        self.path = path
        self.stats: list[Stat] = []
        self._offset = 0  # bytes of whole lines parsed so far
        self._lines = 0

    def read(self) -> list[Stat]:
        try:
            with open(open_regular(self.path), "rb") as f:
                if os.fstat(f.fileno()).st_size < self._offset:  # rewritten: start again
                    self.stats, self._offset, self._lines = [], 0, 0
                f.seek(self._offset)
                data = f.read()
        except OSError:
            self.stats, self._offset, self._lines = read_history(self.path).stats, 0, 0
            return self.stats
        end = data.rfind(b"\n") + 1  # a torn last line waits until it is closed
        if end:
            self.stats = (
                self.stats + parse_history(data[:end], str(self.path), self._lines + 1).stats
            )
            self._offset += end
            self._lines += data.count(b"\n", 0, end)
        return self.stats


class StatusWriteError(OSError):
    """A status line could not be written; str() is the one-line message alone."""

    def __str__(self) -> str:
        return str(self.strerror)


def stats_naming(path: Path, key: str, value: str) -> list[Stat]:
    """The records of a status file whose parameter `key` is `value`, in order, read
    in pieces: a gate's status file holds a line or two per chunk run ever made (16
    years of 10-minute chunks: 1.7M lines), and a chunk's wrapper wants its own few.
    Only lines holding `key=value` are parsed; a file that cannot be read has none."""
    needle = f"{key}={escape_value(value)}".encode()
    out: list[Stat] = []
    try:
        fd = open_regular(path)
    except OSError:
        return out
    try:
        carry = b""
        while block := os.read(fd, 1 << 22):
            data = carry + block
            end = data.rfind(b"\n") + 1
            carry = data[end:]
            _naming(data[:end], needle, key, value, out)
        # What is left has no newline: a torn last line, ignored as read_history does.
    finally:
        os.close(fd)
    return out


def _naming(data: bytes, needle: bytes, key: str, value: str, out: list[Stat]) -> None:
    at = data.find(needle)
    while at >= 0:
        start = data.rfind(b"\n", 0, at) + 1
        end = data.find(b"\n", at)
        end = len(data) if end < 0 else end
        st = parse_stat(data[start:end].decode("utf-8", errors="replace"))
        if st is not None and st.params.get(key) == value:
            out.append(st)
        at = data.find(needle, end)


def append_stats(path: Path, dataset_id: str, stats: Iterable[Stat], durable: bool = True) -> None:
    """Append STAT lines atomically: one write under an exclusive lock, then fsync.

    A torn last line left by a crash is closed with TORN_MARK and a newline first, so
    the new record never fuses with it and the fragment never reads as a record. Any
    failure raises: a record is never dropped quietly, and a partial write (a full
    disk) is taken back, so it never leaves a torn line.
    `durable=False` skips the fsync, for a line whose loss in a machine crash loses
    no work that is not then redone: an Engaged line, or the outcome of a step that
    another step of the same job follows (the job wrapper syncs the file once, at the
    end of the dataset's run; a crash before then makes those steps run again). The
    next durable append or sync_status flushes it too.
    """
    payload = "".join(format_stat(s) + "\n" for s in stats)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: a status file that is a symbolic link could point anywhere,
        # outside the workflow too; it is refused, never followed.
        # O_NONBLOCK and the fstat below: a FIFO in its place is refused, never waited on.
        fd = open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW)
    except OSError as e:
        why = "it is a symbolic link" if e.errno == errno.ELOOP else e.strerror
        raise StatusWriteError(
            e.errno or errno.EIO, f"cannot open status file {path}: {why}"
        ) from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _still_there(path, fd)
        size = os.fstat(fd).st_size
        prefix = ""
        if size == 0:
            prefix = f"{HEADER}{dataset_id}\n"
        else:
            with open(path, "rb") as r:
                r.seek(size - 1)
                if r.read(1) != b"\n":
                    prefix = TORN_MARK + "\n"
        data = (prefix + payload).encode("utf-8")
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write")
            if durable:
                os.fsync(fd)
        except OSError:
            # Take back our own partial write while the lock is still held. Left in
            # place, the next append would close it into a whole-looking line (a "Pass"
            # cut after its state, a "Fail" read as state "Fa"), with no warning.
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise
    except OSError as e:
        raise StatusWriteError(
            e.errno or errno.EIO, f"cannot append to status file {path}: {e.strerror or e}"
        ) from e
    finally:
        os.close(fd)
    note_change(path)  # after the line: a compile that marked the journal before this reads it


def _still_there(path: Path, fd: int) -> None:
    """The file locked is still the one the path names. A cycle that completes a
    flock group copies its status files to complete_dir and removes them, holding
    their locks (commands/cycle.py): a line appended to the removed file after the
    copy would be lost, with no word. It is refused instead."""
    try:
        same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        raise OSError(
            errno.ESTALE,
            "it was moved away while this write waited (its flock group completed?); "
            "nothing written",
        )


def sync_status(path: Path) -> None:
    """fsync a status file that non-durable appends wrote to (see append_stats)."""
    try:
        fd = open_regular(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise StatusWriteError(
            e.errno or errno.EIO, f"cannot sync status file {path}: {e.strerror or e}"
        ) from e


@dataclass(frozen=True)
class Position:
    """Where a dataset stands: the last binding (sub, step, state), or None if new."""

    sub: str | None
    step: str | None
    state: str | None
    open_engagement: Stat | None  # an Engaged with no end yet: running, or crashed
    visits: Mapping[tuple[str, str], int]  # finished runs per (sub, step) since requeue
    fails_in_row: Mapping[tuple[str, str], int]
    blocked: bool
    last: Stat | None

    @property
    def key(self) -> str | None:
        return f"{self.sub}/{self.step}:{self.state}" if self.step else None

    @property
    def workflow(self) -> str:
        return self.last.workflow if self.last else ""


def position_of(stats: Iterable[Stat]) -> Position:
    """Fold a history into a position. An open Engaged does not move the dataset:
    if it was a crash the step simply runs again."""
    cur: Stat | None = None
    engaged: Stat | None = None
    visits: dict[tuple[str, str], int] = {}
    fails: dict[tuple[str, str], int] = {}
    blocked = False
    for st in stats:
        if st.state == "Blocked":
            blocked = True
            continue
        if st.state == "Unblocked":
            blocked = False
            continue
        if st.state == "Cancelled":
            if engaged and engaged.step == st.step:
                engaged = None
            continue
        if not st.binding:
            continue
        if st.state == ENGAGED:
            engaged = st
            continue
        if engaged is not None and (engaged.sub, engaged.step) == (st.sub, st.step):
            k = (st.sub, st.step)
            visits[k] = visits.get(k, 0) + 1
            fails[k] = fails.get(k, 0) + 1 if st.state == "Fail" else 0
        elif st.params.get("requeue") == "1":
            visits.clear()
            fails.clear()
        engaged = None
        cur = st
    return Position(
        cur.sub if cur else None,
        cur.step if cur else None,
        cur.state if cur else None,
        engaged,
        visits,
        fails,
        blocked,
        cur,
    )
