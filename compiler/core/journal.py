"""The change journal: one line per status-file write, kept in `.padocc/`.

Every STAT line padocc writes (jobs, chunk wrappers, operators' commands, the compile
itself) goes through `statusfile.append_stats`, which then appends the status file's
name here. A quiet cycle (render/quiet.py) reads nothing but this journal's size to
know that no padocc writer touched a status file since the last full compile: the
cost of a no-op cycle then follows what changed, not how many datasets there are.

The journal is a hint that can only make a cycle do more: any byte past the mark the
last full compile took means "compile in full". It is never read for its content, so
a torn line, a cut or a replaced file costs one full compile, never a missed change.
A write that cannot reach the journal (a full disk, a FIFO put in its place) touches
the status directory's mtime instead, which a quiet cycle also checks; and a quiet
cycle's sweep reads the status files' own signatures besides (render/quiet.py).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from compiler.core.safeio import replace_text

MAX_JOURNAL_BYTES = 16 * 1024 * 1024  # a full compile starts it afresh past this


def journal_path(status_dir: Path) -> Path:
    """`<parent>/.padocc/changes.<name>` for a status dir `<parent>/<name>`: for the
    usual `WF/status`, `WF/.padocc/changes.status`. A function of the status dir alone,
    so every writer finds it from the status file's path, and nothing is added to the
    status directory (other tools list it). A status dir whose parent holds no
    `.padocc` has no journal, and its workflow no quiet cycles."""
    return status_dir.parent / ".padocc" / f"changes.{status_dir.name}"


def note_change(status_path: Path) -> None:
    """Record that `status_path` was just written. Never raises: the status line is
    what matters, and a journal that could not be written is made up for (see above)."""
    journal = journal_path(status_path.parent)
    if not journal.parent.is_dir():
        return  # no journal kept for this status dir: no quiet cycle relies on one
    try:
        fd = os.open(
            journal,
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
            0o644,
        )
    except OSError:
        _touch_dir(status_path.parent)
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            _touch_dir(status_path.parent)
            return
        os.write(fd, os.fsencode(status_path.name) + b"\n")
    except OSError:
        _touch_dir(status_path.parent)
    finally:
        os.close(fd)


def _touch_dir(status_dir: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(status_dir)


ABSENT = (0, 0)  # the mark of a journal not yet written: the first write makes one


def mark(status_dir: Path) -> tuple[int, int] | None:
    """(inode, size) of the journal as a full compile starts to read the status files:
    what a later quiet cycle compares with. A damaged (not a regular file) or overgrown
    journal is replaced by an empty one first; every write before that is in the
    status files this compile is about to read. None: no journal is kept for this
    status dir (no `.padocc` beside it, or one that cannot be written), so no cycle
    will be quiet."""
    path = journal_path(status_dir)
    if not path.parent.is_dir():
        return None
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return ABSENT
    except OSError:
        return None
    try:
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_JOURNAL_BYTES:
            replace_text(path, "")
            st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_ino, st.st_size


def unchanged(status_dir: Path, mark_: list[int]) -> bool:
    """Is the journal the one marked, with nothing written to it since?"""
    try:
        st = os.stat(journal_path(status_dir), follow_symlinks=False)
    except FileNotFoundError:
        return list(mark_) == list(ABSENT)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and [st.st_ino, st.st_size] == list(mark_)
