"""Files in a dataset's work dir: declared outputs, undeclared leftovers, temp intermediates.

No database here: the provenance hooks (runtime/provenance.py) and the catalog rebuild
(runtime/catalog.py) both read the work dir through these functions, so a live record
and a rebuilt one see the same files the same way.

Paths are POSIX paths relative to the work dir. Declared patterns are matched with
`glob.glob(..., recursive=True)`, as staging matches them: `*` stays inside one
directory, `**` crosses directories, a pattern that names a directory declares all
the files under it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import posixpath
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from compiler.core.diagnostics import CompileError, Loc
from compiler.core.safeio import open_regular
from compiler.model.templates import parse_template

JUNK_DIR = ".junk"
# <step>-<Engaged stamp>-a<attempt>: the name says which job left the files.
_JUNK_NAME = re.compile(r"(?P<step>[A-Za-z][A-Za-z0-9_]*)-(?P<ts>\d{8}_\d{6}_\d{6})-a(?P<attempt>\d+)")
TAR_SUFFIX = ".tar.gz"
REMOVED_SUFFIX = ".removed"  # the list of what `undeclared: remove` removed

# (mtime ns, size) per file; plus the set of directories, to tidy only what a job made.
Snapshot = tuple[dict[str, tuple[int, int]], frozenset[str]]


def own(rel: str) -> bool:
    """padocc's own files in a work dir, never a job's output or leftover."""
    top = rel.split("/", 1)[0]
    return top == JUNK_DIR or top.startswith(".padocc") or rel.endswith(".padocc-tmp")


def scan(workdir: Path) -> Snapshot:
    """Every file (and symbolic link, as a leaf) under workdir, with mtime and size."""
    files: dict[str, tuple[int, int]] = {}
    dirs: set[str] = set()
    for root, dnames, fnames in os.walk(workdir):
        rroot = os.path.relpath(root, workdir)
        prefix = "" if rroot == "." else rroot.replace(os.sep, "/") + "/"
        leaves, keep = list(fnames), []
        for d in dnames:
            rel = prefix + d
            if own(rel):
                continue
            if os.path.islink(os.path.join(root, d)):
                leaves.append(d)  # never descend through a link
            else:
                keep.append(d)
                dirs.add(rel)
        dnames[:] = keep
        for f in leaves:
            rel = prefix + f
            if own(rel):
                continue
            try:
                st = os.lstat(os.path.join(root, f))
            except FileNotFoundError:
                continue
            files[rel] = (st.st_mtime_ns, st.st_size)
    return files, frozenset(dirs)


def changed_since(before: Snapshot, after: Snapshot) -> list[str]:
    """Files made or modified between two snapshots (names + mtime + size)."""
    old = before[0]
    return sorted(p for p, sig in after[0].items() if old.get(p) != sig)


def fill_all(templates: Iterable[str], values: Mapping[str, str], source: str, what: str) -> list[str]:
    """Filled templates; one naming a facet this dataset lacks matches nothing."""
    out = []
    for t in templates:
        try:
            out.append(parse_template(t, Loc(source), values, what).fill(values))
        except CompileError:
            continue
    return out


def _hits(workdir: Path, patterns: Iterable[str]) -> list[str]:
    """What the patterns match in workdir now, as normalized relative paths; a
    pattern reaching out of the work dir matches nothing."""
    out = []
    for raw in patterns:
        pat = posixpath.normpath(raw.lstrip("/"))
        if pat in (".", "", "..") or pat.startswith("../"):
            continue
        out += [posixpath.normpath(h.replace(os.sep, "/"))
                for h in glob.glob(pat, root_dir=workdir, recursive=True)]  # fmt: skip
    return [h for h in out if not own(h)]


def matched(workdir: Path, patterns: Iterable[str]) -> set[str]:
    """The files (not directories) the patterns name that exist in workdir now."""
    out: set[str] = set()
    for hit in _hits(workdir, patterns):
        p = workdir / hit
        if p.is_dir() and not p.is_symlink():
            out.update(f"{hit}/{f}" for f in scan(p)[0])
        else:
            out.add(hit)
    return {p for p in out if not own(p)}


def sha256_of(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a file's content, read in 1 MiB blocks."""
    h = hashlib.sha256()
    size = 0
    with open(open_regular(path), "rb") as f:  # a FIFO among the outputs never hangs a job
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


# --- undeclared outputs ----------------------------------------------------------------


@dataclass(frozen=True)
class Junk:
    """One undeclared file and what became of it."""

    path: str  # relative to the work dir
    size: int  # of a regular file; 0 for a link
    action: str  # tar | remove
    archive: str  # relative to the work dir: the tarball, or the list of removed files


def junk_stem(step: str, ts: str, attempt: int | str) -> str:
    return f"{step}-{ts}-a{attempt}"


def _size(p: Path) -> int:
    st = os.lstat(p)
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def _atomic_write(dst: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".tmp-", suffix=".padocc-tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def dispose(workdir: Path, names: list[str], mode: str, stem: str, made_dirs: Iterable[str]) -> list[Junk]:
    """Pack (mode tar) or list (mode remove) the files under .junk/, then remove them
    and the directories the job made that are now empty. The record is written
    before anything is removed: a failure leaves the files where they are."""
    import tarfile  # only here: jobs import this module, and tarfile is slow to import

    junk_dir = workdir / JUNK_DIR
    junk_dir.mkdir(exist_ok=True)
    sizes = {n: _size(workdir / n) for n in names}
    if mode == "tar":
        archive = f"{JUNK_DIR}/{stem}{TAR_SUFFIX}"

        def write(f) -> None:
            with tarfile.open(fileobj=f, mode="w:gz") as t:
                for n in names:
                    t.add(workdir / n, arcname=n, recursive=False)

    else:
        archive = f"{JUNK_DIR}/{stem}{REMOVED_SUFFIX}"

        def write(f) -> None:
            f.write("".join(f"{sizes[n]}\t{n}\n" for n in names).encode())

    _atomic_write(workdir / archive, write)
    for n in names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(workdir / n)
    for d in sorted(made_dirs, key=lambda d: -d.count("/")):  # deepest first
        with contextlib.suppress(OSError):
            os.rmdir(workdir / d)  # only if empty
    return [Junk(n, sizes[n], "tar" if mode == "tar" else "remove", archive) for n in names]


def junk_records(workdir: Path) -> list[tuple[str, str, int, Junk]]:
    """(step, Engaged stamp, attempt, Junk) for every record under .junk/: what the
    catalog rebuild reads back."""
    import tarfile

    out = []
    try:
        entries = sorted(os.listdir(workdir / JUNK_DIR))
    except OSError:
        return out
    for name in entries:
        for suffix in (TAR_SUFFIX, REMOVED_SUFFIX):
            if name.endswith(suffix) and (mt := _JUNK_NAME.fullmatch(name[: -len(suffix)])):
                break
        else:
            continue
        archive = f"{JUNK_DIR}/{name}"
        step, ts, attempt = mt["step"], mt["ts"], int(mt["attempt"])
        try:
            if suffix == TAR_SUFFIX:
                with tarfile.open(workdir / archive, "r:gz") as t:
                    rows = [Junk(m.name, m.size if m.isfile() else 0, "tar", archive) for m in t.getmembers()]
            else:
                lines = (workdir / archive).read_text(encoding="utf-8").splitlines()
                rows = [Junk(n, int(s), "remove", archive) for s, _, n in (ln.partition("\t") for ln in lines) if n]
        except (OSError, tarfile.TarError, ValueError):
            continue  # a damaged record: the job log still says what happened
        out.extend((step, ts, attempt, j) for j in rows)
    return out


# --- temp intermediates ---------------------------------------------------------------


def remove_temp(workdir: Path, patterns: Iterable[str]) -> list[str]:
    """Remove what the temp globs match (files, links, whole directories); the files
    removed, as paths relative to workdir."""
    removed: list[str] = []
    for hit in sorted(set(_hits(workdir, patterns)), key=len, reverse=True):  # inner first
        p = workdir / hit
        try:
            if p.is_dir() and not p.is_symlink():
                inside = sorted(f"{hit}/{f}" for f in scan(p)[0])
                shutil.rmtree(p)
                removed.extend(inside)
            else:
                p.unlink()
                removed.append(hit)
        except FileNotFoundError:
            continue  # inside a directory removed before it
    return sorted(set(removed))
