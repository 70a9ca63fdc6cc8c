"""The persistent coverage map of a gate (issue 19 item 3): what `gate check`, `gaps`,
`range`, `coverage`, the compile's gate plan and the reports answer from.

Building a gate's coverage from scratch lists every chunk marker and folds the whole
gate status file (16 years of 10-minute chunks: 840,000 markers, 1.7M status lines).
The map keeps what that gives, compactly: the grid chunks done as index runs, the
markers off the grid, each chunk's open engagement and failed runs. It lives in
.padocc/survey/coverage/ per gate (and key), and is updated in place:

- The status file is append-only for padocc. The map keeps how much of it it folded
  (bytes, lines) and a digest of those bytes; a file that grew with that prefix intact
  (same inode) has only its new lines folded. Anything else (another inode, a shorter
  file, a changed prefix: an edit behind padocc's back) folds it again from the start.
- The chunk wrapper, once a chunk's marker is made, appends its name to the gate's
  marker journal (<map>.log). The map keeps the number of markers and a sum of their
  names' hashes. A reader lists the marker names (no stat, no parsing), applies the
  journal's new names to the map, and believes it only if the count and the sum then
  match the listing: a marker made or removed behind padocc's back (or by Snakemake,
  which removes a job's output before running it again) makes them differ, and the
  runs are then parsed again from the listing. A lost or torn journal line costs that
  parse, never a wrong answer.
- When a directory's or file's signature (device, inode, times; size for the file) is
  what the map recorded, and was at least RACY_NS old when recorded (a change within
  the same clock tick would not show), nothing is listed or read at all.

So the map is never stale: what it says is checked against the listing and the file
every time either changed, and what changed behind its back is rebuilt. A map that is
missing or damaged in any way is rebuilt from scratch. Written by atomic rename; two
readers at once each write a whole, valid map.

What is not kept: a status command's coverage (run on every call, it is the command's
answer) and whether an open engagement's job is alive (asked each time).
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import os
import stat
import time
import zlib
from pathlib import Path

from compiler.core.safeio import MAX_FILE_BYTES, open_regular, read_regular, replace_text
from compiler.core.statusindex import RACY_NS, scan
from compiler.render.coverage import (
    ChunkStates,
    fold_gate_lines,
    gate_status,
    gate_status_path,
    grid_index,
    marker_path,
    run_status_command,
    running_of,
)

MAP_DIR = Path(".padocc") / "survey" / "coverage"
MAP_VERSION = 3
HERE = "\x00"  # the status file's path in a kept warning (no path holds a NUL)
MAX_WARNINGS = 20  # kept and shown; the rest are counted in one line
MAX_JOURNAL_BYTES = 4 * 1024 * 1024  # a reader that has applied it all starts it afresh


def map_path(workflow_dir: str, name: str, key: str = "") -> Path:
    return Path(workflow_dir) / MAP_DIR / (f"{name}@{key}.json" if key else f"{name}.json")


def journal_path(workflow_dir: str, name: str, key: str = "") -> Path:
    return map_path(workflow_dir, name, key).with_suffix(".log")


def note_made(workflow_dir: str, name: str, key: str, chunk: str) -> None:
    """The chunk wrapper's update: chunk `chunk`'s marker was just made. Never raises:
    the marker is what counts, and a journal line that is lost costs a reader one parse
    of the marker names (see above)."""
    path = journal_path(workflow_dir, name, key)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(
            path,
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
            0o644,
        )
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.write(fd, os.fsencode(chunk) + b".done\n")  # one write: lines never mix
        finally:
            os.close(fd)


def mapped_states(
    manifest: dict,
    name: str,
    now: float,
    key: str = "",
    facets: dict | None = None,
    slurm_jobs: frozenset[str] | None = None,
    pending: list[tuple[Path, str]] | None = None,
) -> ChunkStates:
    """A gate's coverage, from the map brought up to date (a clock gate's from the
    clock). Its `done` holds only off-grid markers (with no time); grid chunks done are
    in `done_runs`. `pending`: the map is not written but added there, for `save_maps`
    once the caller has succeeded (a compile refused leaves nothing behind)."""
    wf = manifest["workflow"]
    gate = manifest["gates"][name]
    if gate["clock_lag"] is not None:
        return ChunkStates(clock_high=now - gate["clock_lag"])
    mdir = Path(wf["dir"]) / os.path.dirname(marker_path(name, "x", key))
    spath = gate_status_path(wf["status_dir"], name, key)
    path = map_path(wf["dir"], name, key)
    grid = [gate["axis"], gate["origin"], gate["maxrange"]]
    data = _load(path)
    if data is None or data["grid"] != grid:
        data = _empty(grid)
    changed = _update_markers(data, gate, mdir, journal_path(wf["dir"], name, key))
    changed |= _update_status(data, spath)
    if changed:
        text = json.dumps(data, separators=(",", ":"))
        if pending is None:
            save_maps([(path, text)])
        else:
            pending.append((path, text))
    # Kept with HERE for the status file's path: a moved or copied workflow's map names
    # no old place, and its warnings the new one.
    n = data["more_warnings"]
    more = [f"{HERE}: {n} more warnings like these"] if n else []
    warnings = [w.replace(HERE, str(spath)) for w in data["warnings"] + more + data["torn"]]
    st = ChunkStates(
        done=dict.fromkeys(data["off_grid"], 0.0),
        failures=dict(data["failures"]),
        last_fail={c: (v[0], v[1]) for c, v in data["last_fail"].items()},
        done_runs=[(a, b) for a, b in data["runs"]],
        warnings=warnings,
        running=running_of(data["open"], slurm_jobs),
    )
    if gate["coverage"]:
        wfp = {**wf, "python": manifest["python"]}
        st.covered_by_status, said = run_status_command(wfp, name, gate, key, facets or {})
        st.warnings = said + st.warnings
    return st


def save_maps(maps: list[tuple[Path, str]]) -> None:
    for path, text in maps:
        with contextlib.suppress(OSError):  # read-only or full: brought up to date next time
            replace_text(path, text)


def _empty(grid: list) -> dict:
    return {
        "version": MAP_VERSION,
        "grid": grid,
        "dir_sig": None,
        "count": 0,
        "hash": 0,
        "journal": [0, 0],  # (inode, bytes applied) of the marker journal
        "runs": [],
        "off_grid": [],
        "status_sig": None,
        "status_ino": 0,
        "folded": [0, 0, ""],  # bytes, lines, digest of those bytes
        "open": {},
        "failures": {},
        "last_fail": {},
        "warnings": [],
        "more_warnings": 0,
        "torn": [],
    }


def _sig(path: Path, with_size: bool) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    sig = [st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
    return [*sig, st.st_size] if with_size else sig


def _settled(sig: list[int] | None, taken_at: int) -> list[int] | None:
    """The signature if it was last changed long enough before it was taken that a
    change since would show in it; else None (never matched: look again)."""
    if sig is None or sig[2] >= taken_at - RACY_NS or sig[3] >= taken_at - RACY_NS:
        return None
    return sig


def _name_hash(name: bytes) -> int:
    return (zlib.crc32(name) << 32) | zlib.adler32(name)


# -- the markers ---------------------------------------------------------------------


def _update_markers(data: dict, gate: dict, mdir: Path, journal: Path) -> bool:
    taken_at = time.time_ns()
    sig = _sig(mdir, False)
    if sig is not None and sig == data["dir_sig"]:
        return False
    # The journal's size first: a marker made while the directory is listed is then
    # either in the listing or past the size applied (its line is applied again: no harm).
    jsig = _sig(journal, True)
    names = _listing(mdir)
    count, total = len(names), sum(map(_name_hash, names)) & (2**64 - 1)
    if (count, total) != (data["count"], data["hash"]):
        _apply_journal(data, gate, journal, jsig)
    if (count, total) != (data["count"], data["hash"]):
        _parse_markers(data, gate, names)
    data["count"], data["hash"] = count, total
    data["dir_sig"] = _settled(sig, taken_at)
    if jsig is not None and jsig[4] > MAX_JOURNAL_BYTES and data["journal"] == [jsig[1], jsig[4]]:
        # All applied and long: start afresh. A line appended meanwhile is lost, which
        # costs the next reader one parse of the names, nothing more.
        with contextlib.suppress(OSError):
            os.truncate(journal, 0)
            data["journal"] = [jsig[1], 0]
    return True


def _listing(mdir: Path) -> list[bytes]:
    """The names of the markers (`*.done` regular files), without the suffix."""
    try:
        with os.scandir(os.fsencode(mdir)) as it:
            return [e.name[:-5] for e in it if e.name.endswith(b".done") and e.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _apply_journal(data: dict, gate: dict, journal: Path, jsig: list[int] | None) -> None:
    """Add the markers the journal names past what was applied, unless already held."""
    if jsig is None:
        return
    ino, applied = data["journal"]
    start = applied if ino == jsig[1] and applied <= jsig[4] else 0  # replaced or cut: all
    try:
        raw = read_regular(journal, offset=start)[: jsig[4] - start]
    except OSError:
        return
    whole = raw[: raw.rfind(b"\n") + 1]  # a torn last line is read when it is whole
    data["journal"] = [jsig[1], start + len(whole)]
    runs, off = data["runs"], set(data["off_grid"])
    for line in whole.splitlines():
        if not line.endswith(b".done"):
            continue
        name = line[:-5]
        text = os.fsdecode(name)
        k = grid_index(gate, text)
        if k is None:
            if text in off:
                continue
            off.add(text)
        elif not _add_index(runs, k):
            continue
        data["count"] += 1
        data["hash"] = (data["hash"] + _name_hash(name)) & (2**64 - 1)
    data["off_grid"] = sorted(off)


def _add_index(runs: list[list[int]], k: int) -> bool:
    """Put chunk k in the sorted, disjoint runs; False if it was there."""
    i = bisect.bisect_right(runs, [k, float("inf")])
    if i and runs[i - 1][1] > k:
        return False
    left = i and runs[i - 1][1] == k
    right = i < len(runs) and runs[i][0] == k + 1
    if left and right:
        runs[i - 1][1] = runs.pop(i)[1]
    elif left:
        runs[i - 1][1] = k + 1
    elif right:
        runs[i][0] = k
    else:
        runs.insert(i, [k, k + 1])
    return True


def _parse_markers(data: dict, gate: dict, names: list[bytes]) -> None:
    ks, off = [], []
    for raw in names:
        name = os.fsdecode(raw)
        k = grid_index(gate, name)
        if k is None:
            off.append(name)
        else:
            ks.append(k)
    runs: list[list[int]] = []
    for k in sorted(ks):
        if runs and runs[-1][1] == k:
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1])
    data["runs"], data["off_grid"] = runs, sorted(off)


# -- the status file -----------------------------------------------------------------


def _update_status(data: dict, spath: Path) -> bool:
    taken_at = time.time_ns()
    sig = _sig(spath, True)
    if sig is not None and sig == data["status_sig"]:
        return False
    data["status_sig"] = _settled(sig, taken_at)
    try:
        fd = open_regular(spath)
        if os.fstat(fd).st_size > MAX_FILE_BYTES:
            os.close(fd)
            raise OSError("too large")  # read_regular's bound, and its warning below
    except OSError:  # missing, a FIFO, unreadable, too large: what gate_status says of it
        _reset_fold(data, 0)
        _fold(data, [], _here(gate_status(spath)[3], spath))
        return True
    try:
        size, lines, digest = data["folded"]
        ino = os.fstat(fd).st_ino
        h = None
        if size and ino == data["status_ino"] and os.fstat(fd).st_size >= size:
            h = _hasher(fd, size)
            if h.hexdigest() != digest:  # changed behind padocc's back: fold it all again
                h = None
        if h is None:
            size, lines, h = 0, 0, hashlib.blake2b(digest_size=16)
            _reset_fold(data, ino)
        os.lseek(fd, size, os.SEEK_SET)
        rest = _read_all(fd)
    finally:
        os.close(fd)
    end = rest.rfind(b"\n") + 1
    body = rest[:end]
    h.update(body)
    if body or not rest:  # an empty file says so; a lone torn line only that it is torn
        _, parts, warnings = scan(body, str(spath), lines + 1)
        _fold(data, parts, _here(warnings, spath))
    data["folded"] = [size + end, lines + body.count(b"\n"), h.hexdigest()]
    data["torn"] = [f"{HERE}:{data['folded'][1] + 1}: torn last line ignored"] if rest[end:] else []
    return True


def _here(warnings: list[str], spath: Path) -> list[str]:
    return [w.replace(str(spath), HERE) for w in warnings]


def _reset_fold(data: dict, ino: int) -> None:
    data.update(open={}, failures={}, last_fail={}, warnings=[], more_warnings=0, torn=[])
    data["status_ino"], data["folded"] = ino, [0, 0, ""]


def _hasher(fd: int, size: int):  # noqa: ANN202 - hashlib's type is private
    """A digest of the file's first `size` bytes, read in pieces, still open to more."""
    h = hashlib.blake2b(digest_size=16)
    os.lseek(fd, 0, os.SEEK_SET)
    left = size
    while left:
        b = os.read(fd, min(left, 1 << 20))
        if not b:
            break
        h.update(b)
        left -= len(b)
    return h


def _read_all(fd: int) -> bytes:
    chunks = []
    while b := os.read(fd, 1 << 20):
        chunks.append(b)
    return b"".join(chunks)


def _fold(data: dict, parts: list, warnings: list[str]) -> None:
    fail = {c: (v[0], v[1]) for c, v in data["last_fail"].items()}
    fold_gate_lines(parts, data["open"], data["failures"], fail)
    data["last_fail"] = {c: list(v) for c, v in fail.items()}
    room = MAX_WARNINGS - len(data["warnings"])
    data["warnings"] += warnings[: max(room, 0)]
    data["more_warnings"] += max(len(warnings) - max(room, 0), 0)


def _load(path: Path) -> dict | None:
    """The map, or None when missing or damaged in any way (then it is rebuilt)."""
    try:
        data = json.loads(read_regular(path))
        ok = (
            data["version"] == MAP_VERSION
            and isinstance(data["grid"], list)
            and _ints(data["dir_sig"])
            and _ints(data["status_sig"])
            and type(data["count"]) is int
            and type(data["hash"]) is int
            and _ints(data["journal"])
            and len(data["journal"]) == 2
            and type(data["status_ino"]) is int
            and all(_ints(r) and len(r) == 2 and r[0] < r[1] for r in data["runs"])
            and all(a[1] < b[0] for a, b in zip(data["runs"], data["runs"][1:], strict=False))
            and all(isinstance(n, str) for n in data["off_grid"])
            and type(data["folded"][0]) is int
            and type(data["folded"][1]) is int
            and isinstance(data["folded"][2], str)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in data["open"].items())
            and all(isinstance(k, str) and type(v) is int for k, v in data["failures"].items())
            and all(
                isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v)
                for v in data["last_fail"].values()
            )
            and all(isinstance(w, str) for w in data["warnings"] + data["torn"])
            and type(data["more_warnings"]) is int
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None
    return data if ok else None


def _ints(v: object) -> bool:
    return v is None or (isinstance(v, list) and all(type(x) is int for x in v))
