"""Only regular files are read. Every reader of a file a user or a run may have
replaced (inputs, status files, manifests, state) opens it through `open_regular`:
a FIFO would block the reader forever, a device like /dev/zero never ends, and a
directory is not text. Opening with O_NONBLOCK returns at once even for a FIFO with
no writer; fstat then tells what was opened, and anything but a regular file is
refused. Sizes are bounded, so a huge file is refused rather than exhausting memory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

# Far above any real input (a 1M-dataset id list is ~100 MB); reading past it is refused.
MAX_FILE_BYTES = 512 * 1024 * 1024


class NotRegularFile(OSError):
    """Raised for a FIFO, device or socket; strerror says what it is. (A directory raises
    IsADirectoryError, as opening it to write does.)"""


class FileTooLarge(OSError):
    """Raised for a regular file larger than the reader's bound."""


def kind_of_mode(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def not_regular_reason(mode: int) -> str:
    """'is a FIFO, not a regular file' (the form every message uses)."""
    return f"is {kind_of_mode(mode)}, not a regular file"


def open_regular(path: str | os.PathLike, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
    """A file descriptor on a regular file, or NotRegularFile; never blocks on a FIFO."""
    try:
        fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except IsADirectoryError:
        raise
    except OSError as e:
        if e.errno != errno.ENXIO:  # ENXIO: a FIFO opened to write with no reader, a socket
            raise
        raise NotRegularFile(
            e.errno, not_regular_reason(os.stat(path).st_mode), str(path)
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):  # the error opening it to write would give, for every reader
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, not_regular_reason(mode), str(path))
        # Regular files ignore O_NONBLOCK; cleared anyway so later reads behave plainly.
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(
    path: str | os.PathLike, limit: int = MAX_FILE_BYTES, offset: int = 0, flags: int = 0
) -> bytes:
    """The bytes of a regular file from `offset`, refusing other kinds and files past `limit`.
    `flags` are added to O_RDONLY (O_NOFOLLOW: a symbolic link is refused too)."""
    fd = open_regular(path, os.O_RDONLY | flags)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise FileTooLarge(
                errno.EFBIG, f"is larger than {limit // (1024 * 1024)} MB", str(path)
            )
        if offset:
            os.lseek(fd, offset, os.SEEK_SET)
        chunks = []
        total = 0
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            total += len(b)
            if total > limit:  # grew while read
                raise FileTooLarge(
                    errno.EFBIG, f"is larger than {limit // (1024 * 1024)} MB", str(path)
                )
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_regular_text(path: str | os.PathLike, limit: int = MAX_FILE_BYTES) -> str:
    """UTF-8 text of a regular file (the files padocc itself writes: manifests, state)."""
    return read_regular(path, limit).decode("utf-8")


def replace_text(path: Path, text: str, durable: bool = False) -> None:
    """Write `path` whole or not at all: a temporary file beside it (fsynced when
    `durable`), renamed over it, so a crash leaves the old or the new file. Raises
    OSError (a read-only or full disk), leaving no temporary file."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)  # one write: json.dump writes piece by piece, many times slower
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # like the rest of .padocc: other operators may read it
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
