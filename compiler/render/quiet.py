"""Quiet cycles: a no-op compile whose cost follows what changed, not the archive.

A full compile expands every dataset, reads every status file's signature and plans
them all: seconds per hundred thousand datasets. When such a compile finds nothing to
do (every dataset finished, quarantined or blocked), it leaves a snapshot of what its
answer rested on. The next compile first checks only that:

- the files the model was read from (workflow, graph, spec, lists), by signature;
- the code and the options (the profile's executor) it was compiled with;
- that `.padocc/current` is still the build it wrote;
- the change journal (core/journal.py): no padocc writer touched a status file since;
- the status directory's own signature: no status file made, removed or renamed;
- a slice of the datasets, in turn (the sweep): each one's status file signature,
  and the newest of its declared inputs. Up to PADOCC_SWEEP datasets (default
  100,000) a cycle: a workflow that size or smaller has every file checked every
  cycle, as a full compile would; a larger one has every file checked once every
  ceil(datasets / PADOCC_SWEEP) cycles. What padocc's jobs and commands write is seen
  at once through the journal; only a write made behind padocc's back (an editor, a
  touched input) waits for its turn in the sweep.

All of it holding, the compile says what the last one said and writes nothing:
nothing is pending, so there is nothing to build. Anything else, and it compiles in
full, as it always did. A missing or damaged snapshot, sweep or journal only costs a
full compile, which makes them again.

Workflows whose answer depends on what no signature covers are never quiet: gates
(their chunks come due with the clock), flock groups, glob dataset lists (new files
match), notify commands (each cycle scans for events), and compiles with a cycle's or
a campaign's settings, `--now`, or a dry run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from compiler.core import journal
from compiler.core.diagnostics import Loc, fail
from compiler.core.safeio import open_regular, read_regular, replace_text
from compiler.load.yamlpos import Reads, file_sig
from compiler.model.types import Workflow
from compiler.render.assets import asset_dir
from compiler.render.inputs import newest_input
from compiler.render.plan import Plan

QUIET_VERSION = 1
SURVEY = Path(".padocc") / "survey"
QUIET_FILE = SURVEY / "quiet.json"
SWEEP_AT = SURVEY / "sweep-at"
SWEEP_ENV = "PADOCC_SWEEP"
SWEEP_DEFAULT = 100_000
SWEEP_MAX = 10_000_000
# Below this, a full compile costs well under a second: every compile stays full, and
# writes its build, as small workflows always have.
QUIET_FROM = 10_000
MAX_SAID = 1000  # warnings a quiet compile repeats; more, and it is not quiet


@dataclass(frozen=True)
class Quiet:
    """What a quiet compile answers with: the last full compile's build and words."""

    build: str
    manifest: dict
    counts: dict[str, int]
    out: str
    always: tuple[str, ...]  # said even by a --quiet compile
    said: tuple[str, ...]


def sweep_size() -> int:
    """PADOCC_SWEEP: datasets a quiet cycle checks. Raises CompileError on a bad value."""
    text = os.environ.get(SWEEP_ENV, "").strip()
    if not text:
        return SWEEP_DEFAULT
    if not text.isdigit() or not 1 <= int(text) <= SWEEP_MAX:
        raise fail(
            Loc(SWEEP_ENV), f"must be a whole number from 1 to {SWEEP_MAX}, not {text[:40]!r}"
        )
    return int(text)


def key_of(wf_dir: Path) -> str:
    """The code, the workflow's place and the options a compile's answer rests on. Not
    the profile: it only sizes jobs, and a quiet answer has none."""
    h = hashlib.sha256()
    for top in (Path(__file__).resolve().parents[1], asset_dir("templates")):
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for f in sorted(files):
                if not f.endswith(".pyc"):
                    st = os.stat(os.path.join(root, f))
                    h.update(f"{root}/{f}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    h.update(os.fsencode(os.path.abspath(wf_dir)))
    h.update(f"\n{sweep_size()}".encode())  # a new slice size lays the sweep out again
    return h.hexdigest()


def _shown(wf_dir: Path, path: str) -> str:
    base = os.path.join(os.path.abspath(wf_dir), "")
    return path[len(base) :] if path.startswith(base) else path


def forget(wf_dir: Path) -> None:
    """A full compile that was not quiet: no later compile may answer from an older one."""
    with contextlib.suppress(OSError):
        os.unlink(wf_dir / QUIET_FILE)


def save(
    wf_dir: Path,
    key: str,
    model: Workflow,
    reads: Reads,
    plan: Plan,
    build: str,
    out: str,
    always: list[str],
    said: list[str],
) -> bool:
    """Leave the snapshot of a full compile that found nothing to do, if it may be
    answered from (see above); else remove any older one. True when left."""
    sweep = plan.sweep
    ok = (
        sweep is not None
        and len(model.datasets) >= QUIET_FROM
        and not reads.volatile
        and not model.gates
        and not model.groups
        and model.notify is None
        and len(always) + len(said) <= MAX_SAID
        and not any(line.count("\t") != 6 or "\n" in line for line in sweep)
    )
    if not ok or sweep is None or plan.journal is None:
        forget(wf_dir)
        return False
    per = sweep_size()
    offsets, pos, parts = [0], 0, []
    for i, line in enumerate(sweep):
        b = os.fsencode(line) + b"\n"
        parts.append(b)
        pos += len(b)
        if (i + 1) % per == 0 or i + 1 == len(sweep):
            offsets.append(pos)
    sweep_name = f"sweep-{build}.tsv"
    status_dir = os.path.abspath(model.status_dir)
    snap = {
        "version": QUIET_VERSION,
        "key": key,
        "build": build,
        "files": sorted({(_shown(wf_dir, p), tuple(s)) for p, s in reads.files}),
        "status_dir": _shown(wf_dir, status_dir),
        "journal": list(plan.journal),
        "status_dir_sig": plan.status_dir_sig,
        "sweep": {"file": sweep_name, "offsets": offsets},
        "counts": dict(plan.counts),
        "out": out,
        "always": always,
        "said": said,
    }
    try:
        with open(wf_dir / SURVEY / sweep_name, "wb") as f:
            f.write(b"".join(parts))
        replace_text(wf_dir / QUIET_FILE, json.dumps(snap))
    except OSError:
        forget(wf_dir)
        return False
    for old in os.listdir(wf_dir / SURVEY):  # the sweeps of older snapshots
        if old.startswith("sweep-") and old.endswith(".tsv") and old != sweep_name:
            with contextlib.suppress(OSError):
                os.unlink(wf_dir / SURVEY / old)
    return True


def answer(wf_dir: Path, key: str) -> Quiet | None:
    """The last full compile's answer if nothing it rested on changed; else None."""
    try:
        snap = json.loads(read_regular(wf_dir / QUIET_FILE, limit=64 * 1024 * 1024))
        if snap.get("version") != QUIET_VERSION or snap.get("key") != key:
            return None
        return _answer(wf_dir, snap)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError):
        return None  # missing or damaged: compile in full, which makes it again


def _answer(wf_dir: Path, snap: dict) -> Quiet | None:
    for shown, sig in snap["files"]:
        if file_sig(wf_dir / shown) != list(sig):
            return None
    build = snap["build"]
    if os.readlink(wf_dir / ".padocc" / "current") != f"builds/{build}":
        return None
    status_dir = wf_dir / snap["status_dir"]
    if not journal.unchanged(status_dir, snap["journal"]):
        return None
    st = os.stat(status_dir)
    if [st.st_ino, st.st_mtime_ns, st.st_ctime_ns] != snap["status_dir_sig"]:
        return None
    if not _sweep(wf_dir, status_dir, snap["sweep"]):
        return None
    manifest = json.loads(read_regular(wf_dir / ".padocc" / "builds" / build / "manifest.json"))
    return Quiet(
        build, manifest, dict(snap["counts"]), snap["out"], tuple(snap["always"]),
        tuple(snap["said"]),
    )  # fmt: skip


def _sweep(wf_dir: Path, status_dir: Path, sweep: dict) -> bool:
    """Check this cycle's slice of the datasets; the next cycle checks the next one."""
    offsets = sweep["offsets"]
    shards = len(offsets) - 1
    at_path = wf_dir / SWEEP_AT
    at = 0
    if shards > 1:
        with contextlib.suppress(OSError, ValueError):
            at = int(read_regular(at_path, limit=64).decode().strip() or 0) % shards
    fd = open_regular(wf_dir / SURVEY / sweep["file"])
    try:
        want = offsets[at + 1] - offsets[at]
        data = os.pread(fd, want, offsets[at]) if 0 <= want <= 1 << 30 else b""
    finally:
        os.close(fd)
    if len(data) != want:
        return False
    sd = os.path.join(str(status_dir), "")
    inputs_dir = os.path.abspath(wf_dir)
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        name, ino, size, mt, ct, pattern, imt = line.split("\t")
        try:
            st = os.stat(sd + name, follow_symlinks=False)
        except OSError:
            return False
        if (
            not stat.S_ISREG(st.st_mode)
            or st.st_ino != int(ino)
            or st.st_size != int(size)
            or st.st_mtime_ns != int(mt)
            or st.st_ctime_ns != int(ct)
        ):
            return False
        if pattern and newest_input(inputs_dir, pattern)[0] != int(imt):
            return False
    if shards > 1:
        with contextlib.suppress(OSError):
            replace_text(at_path, f"{(at + 1) % shards}\n")
    return True
