"""Which builds are in use, and where a build's workflow directory is.

A process that runs a build (each Snakemake that parses its Snakefile, each job
wrapper) holds a shared flock on the build's directory for its lifetime. A compile
removes an old build only after taking an exclusive flock on it without waiting. The
kernel drops a flock when its holder dies, kill -9 included: nothing to clean up.

Nothing a compile writes names the workflow directory by its absolute path: a build
finds it at run time from where it lies (`<dir>/.padocc/builds/<build>`), so a
moved or copied workflow directory acts on itself only.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

_HELD: dict[str, int] = {}  # build dir -> fd, held until the process ends


def hold_build(build_dir: str) -> None:
    """Mark build_dir in use by this process until it exits (idempotent)."""
    key = os.path.abspath(build_dir)
    if key in _HELD:
        return
    try:
        fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # no such build: whoever reads it says so, with its own message
    fcntl.flock(fd, fcntl.LOCK_SH)
    _HELD[key] = fd


def try_remove_unused(build_dir: os.PathLike | str) -> bool:
    """Remove build_dir unless a live process holds it; True if removed."""
    try:
        fd = os.open(build_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        # Still the directory we locked (not renamed away and replaced meanwhile).
        if os.stat(build_dir).st_ino != os.fstat(fd).st_ino:
            return False
        shutil.rmtree(build_dir, ignore_errors=True)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def workflow_dir_of(path: str) -> str:
    """The workflow directory of a path inside it: the parent of the innermost
    `.padocc` component of its absolute form, else the path itself (the Snakefile
    beside workflow.yaml)."""
    parts = os.path.abspath(path).split(os.sep)
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] == ".padocc":
            return os.sep.join(parts[:i]) or os.sep
    return os.path.abspath(path)


def flock_held(path: str | os.PathLike) -> bool:
    """Does a live process hold a flock on this file now? (A missing file: no.) Asked
    with a non-blocking exclusive flock that is dropped at once."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our own lock at once
    return False


MOVES_LOCK = "moves.lock"  # in .padocc/


def make_moves_lock(workflow_dir: str | os.PathLike) -> None:
    """The lock file of group_moves, made by a cycle as it starts, so that every
    compile it could race with finds it (compiles never create it)."""
    os.close(
        os.open(os.path.join(workflow_dir, ".padocc", MOVES_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    )


@contextmanager
def group_moves(
    workflow_dir: str | os.PathLike, exclusive: bool, create: bool = True
) -> Iterator[None]:
    """Held exclusively by a cycle while it moves a completed flock group (and its
    status files) to complete_dir; shared by `padocc block/unblock/requeue` from their
    check of what is done to their last line written, and by a compile from its read
    of the flock to its plan. So a person's command either lands before the move (and
    the move sees its line) or sees the group done, and a compile sees the group
    either whole or gone. `create`: False for a command that must write nothing."""
    path = os.path.join(workflow_dir, ".padocc", MOVES_LOCK)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0), 0o644)
    except OSError:
        if exclusive:
            raise
        # A read-only .padocc (no cycle can move anything out of it either), or, not
        # creating it, no cycle has ever moved a group here.
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)
