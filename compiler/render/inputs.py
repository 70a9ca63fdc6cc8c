"""Has a finished dataset's input changed? Decided as Snakemake 9 decides it.

A finished dataset is looked at only when one of its declared input files
(`datasets: inputs:`) is newer than its final STAT line. With `input_change:
content` (the default) each such newer file then counts as changed only when its
content differs from what it was when the dataset was last queued: its size is
compared first, then a file of 1 MB or less (Snakemake's `max_checksum_file_size`)
is hashed (SHA-256) and compared with the checksum recorded then; a larger file,
or one with no recorded checksum, counts as changed, as in Snakemake. So a `touch`, or a copy that keeps the
content, does not rerun a dataset. `input_change: mtime` keeps the older rule: a
newer file is a changed file.

The checksums are recorded by the compile that queues a dataset at the graph's
entry (its inputs are what that run reads), in .padocc/survey/input-sums.json:
written to a temporary file, fsynced, then renamed over the old one, so a crash
leaves the old or the new store, never half of one. Only datasets that still
have a status file or are pending are kept, so it never outgrows the status
directory. A missing or damaged store is read as empty: a touched input then
reruns its dataset, the safe side.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import stat
from pathlib import Path

from compiler.core.diagnostics import Loc
from compiler.core.safeio import read_regular, replace_text
from compiler.model.datasets import fast_fill
from compiler.model.templates import parse_template
from compiler.model.types import Workflow

CHECKSUM_MAX = 1_000_000  # bytes: Snakemake 9's default max_checksum_file_size
STORE_FILE = Path(".padocc") / "survey" / "input-sums.json"
STORE_VERSION = 1


class Inputs:
    """A dataset's declared input files: the workflow's `datasets: inputs:` template, or
    for a flock group's dataset its CSV `pattern` (when not empty). Relative globs are
    taken from the workflow directory."""

    def __init__(self, model: Workflow):
        self.dir = model.dir
        self.fill = None
        if model.inputs:
            t = parse_template(model.inputs, Loc(model.source_file), _names(model.inputs), "inputs")
            self.fill = fast_fill(t)

    def pattern(self, facets: dict[str, str]) -> str:
        if facets.get("pattern"):
            return facets["pattern"]
        if self.fill is None:
            return ""
        try:
            return self.fill(facets)
        except KeyError:
            return ""

    def files(self, pattern: str) -> list[tuple[str, os.stat_result]]:
        """Every regular file matching, with its stat."""
        full = pattern if pattern[:1] == "/" else f"{self.dir}/{pattern}"
        paths = glob.glob(full, recursive=True) if any(c in full for c in "*?[") else [full]
        out = []
        for p in paths:
            try:
                st = os.stat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.append((p, st))
        return out

    def newest(self, pattern: str) -> tuple[int, str]:
        """(mtime_ns, path) of the newest file matching, or (0, "") when none does."""
        return newest_input(self.dir, pattern)


def newest_input(base: str, pattern: str) -> tuple[int, str]:
    """(mtime_ns, path) of the newest file matching `pattern` (relative to `base`),
    or (0, "") when none does."""
    full = pattern if pattern[:1] == "/" else f"{base}/{pattern}"
    if not any(c in full for c in "*?["):  # one plain file: a stat, no glob machinery
        try:
            return os.stat(full).st_mtime_ns, full
        except OSError:
            return 0, ""
    best = (0, "")
    for p in glob.glob(full, recursive=True):
        try:
            m = os.stat(p).st_mtime_ns
        except OSError:
            continue
        if m > best[0]:
            best = (m, p)
    return best


def _names(template: str) -> set[str]:
    return {m.split("|")[0].strip() for m in re.findall(r"\{([^{}]*)\}", template)}


def checksum(path: str) -> str | None:
    """SHA-256 of a file of at most CHECKSUM_MAX bytes; None when larger or unreadable."""
    try:
        return hashlib.sha256(read_regular(path, limit=CHECKSUM_MAX)).hexdigest()
    except OSError:
        return None


class InputSums:
    """dataset id -> {input path: "size:SHA-256" when it was queued}, loaded on first use."""

    def __init__(self, wf_dir: str, inputs: Inputs):
        self.wf_dir, self.inputs = wf_dir, inputs
        self.path = Path(wf_dir) / STORE_FILE
        self._sums: dict[str, dict[str, str]] | None = None
        self.changed = False

    @property
    def sums(self) -> dict[str, dict[str, str]]:
        if self._sums is None:
            self._sums = {}
            try:
                data = json.loads(read_regular(self.path))
                if data["version"] == STORE_VERSION:
                    sums = data["datasets"]
                    if all(
                        isinstance(v, dict) and all(isinstance(s, str) for s in v.values())
                        for v in sums.values()
                    ):
                        self._sums = sums
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                pass  # missing or damaged: no checksum known, touched inputs rerun
        return self._sums

    def _key(self, path: str) -> str:
        # Relative to the workflow when inside it: a moved workflow keeps its checksums.
        rel = os.path.relpath(path, self.wf_dir)
        return path if rel.startswith("..") else rel

    def changed_after(self, ds_id: str, pattern: str, after_ns: int) -> str:
        """The newest input file changed after `after_ns` (content, see above), or ""."""
        known = self.sums.get(ds_id, {})
        newer = sorted(
            ((st.st_mtime_ns, p, st) for p, st in self.inputs.files(pattern)
             if st.st_mtime_ns > after_ns),
            reverse=True,
        )  # fmt: skip
        for _, p, st in newer:
            size, _, old = known.get(self._key(p), "").partition(":")
            if not old or st.st_size > CHECKSUM_MAX or str(st.st_size) != size:
                return p  # no checksum known, too large to hash, or another size
            if checksum(p) != old:
                return p
        return ""

    def record(self, ds_id: str, pattern: str) -> None:
        """The checksums of a dataset's inputs now, as the run being queued reads them."""
        new = {}
        for p, st in self.inputs.files(pattern):
            if st.st_size <= CHECKSUM_MAX:
                s = checksum(p)
                if s is not None:
                    new[self._key(p)] = f"{st.st_size}:{s}"
        if not new:  # no file (yet), or none small enough to hash: nothing to keep
            if self.sums.pop(ds_id, None) is not None:
                self.changed = True
        elif self.sums.get(ds_id) != new:
            self.sums[ds_id] = new
            self.changed = True

    def save(self, keep: set[str]) -> None:
        """Write the store (only datasets in `keep`) when it changed; atomically."""
        if self._sums is None:
            return
        gone = self._sums.keys() - keep
        for ds_id in gone:
            del self._sums[ds_id]
        if not (self.changed or gone):
            return
        text = json.dumps({"version": STORE_VERSION, "datasets": self._sums})
        with contextlib.suppress(OSError):  # read-only or full: not kept, touched inputs rerun
            replace_text(self.path, text, durable=True)
