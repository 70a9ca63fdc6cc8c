"""The survey: every dataset of the current build and where it stands, from the status files.

Shared by `padocc status`, `padocc report`, `padocc dashboard` and bench/survey.py.
It reads the build's manifest.json and datasets.tsv (never the YAML) and one status
file per dataset, tolerantly: a damaged file gives warnings that name it, and the
state its valid lines say.

Speed. `status` needs only each file's position: `fold` checks all its STAT lines
with one regular expression, then reads only the lines that decide, walking back from
the end. The survey keeps an index under WORKFLOW_DIR/.padocc/survey/ keyed by file
name and (device, inode, size, mtime_ns, ctime_ns): a file whose signature differs in
any field is read again, and a file changed in the last RACY_NS is not indexed at all
(a rewrite within one tick of a coarse clock would keep its mtime), so the index makes
a survey faster but never stale. `report` and `dashboard` need whole histories: each
is tallied as it is read (`Tally.read`, compact: per engagement its step and outcome,
seconds and peak memory) and the lines are not kept. The report cache
(WORKFLOW_DIR/.padocc/survey/report-cache.json) keeps each file's position and tally
under the same signature and 2-s rule, with the range of the file's stamps in place of
the stamps, so `--since` takes from it the files wholly before or after it and reads
the others; an entry that is not what `Tally.read` makes throws the cache away. Both
are updated in place: a save appends what changed to a delta (see `statusindex.Index`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import json
import math
import os
import re
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple, TextIO

from compiler.core.diagnostics import suggest
from compiler.core.names import chunk_log, job_log
from compiler.core.statusfile import (
    ENGAGED,
    NON_BINDING,
    QUARANTINED,
    Stat,
    parse_params,
    parse_stamp,
    unescape_value,
)
from compiler.core.statusindex import (  # noqa: F401  (re-exported for the survey's users)  # noqa: F401
    INDEX_FILE,
    INDEX_VERSION,
    RACY_NS,
    Brief,
    Parts,
    _line,
    _no_gc,
    _read,
    _unline,
    fold,
    fold_lines,
    history_of,
    scan,
    stamp_ok,
    to_stat,
)
from compiler.core.statusindex import Index as _Index
from compiler.core.utctime import parse_utc
from compiler.render.manifest import load_manifest


class SurveyError(Exception):
    """No usable build to survey: `path` is the file at fault."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: error: {message}")
        self.path = path


# --- the survey --------------------------------------------------------------------


@dataclass(slots=True)
class Record:
    """One dataset of the build. `workflow`/`step`/`state` is its current Step:State:
    the open Engaged if there is one, else the last binding line, else (no status
    line yet) the graph's entry. Not frozen, with slots: a survey makes 100,000 of
    them and frozen init costs twice as much; nothing changes them once made."""

    id: str
    routing_key: str
    facets_json: str
    status_file: str | None  # None: no status file yet
    workflow: str  # the (sub-)workflow of the current step
    step: str
    state: str
    since: str | None  # stamp of the line that put it there
    blocked: bool
    current_parts: Parts | None
    engaged_parts: Parts | None
    warnings: tuple[str, ...] = ()

    @property
    def facets(self) -> dict[str, str]:
        try:
            f = json.loads(self.facets_json)
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in f.items()} if isinstance(f, dict) else {}

    @property
    def current(self) -> Stat | None:
        return to_stat(self.current_parts) if self.current_parts else None

    @property
    def engaged(self) -> Stat | None:
        return to_stat(self.engaged_parts) if self.engaged_parts else None


@dataclass
class Survey:
    workflow_dir: Path
    manifest: dict
    status_dir: Path
    records: list[Record]
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.manifest["workflow"]["name"]

    @property
    def root(self) -> str:
        return self.manifest["graph"]["root"]


def manifest_path(workflow_dir: str | Path) -> Path:
    return Path(workflow_dir) / ".padocc" / "current" / "manifest.json"


def load_current(workflow_dir: str | Path) -> tuple[dict, Path]:
    """The current build's manifest and its datasets.tsv. Raises SurveyError."""
    mpath = manifest_path(workflow_dir)
    try:
        m = load_manifest(str(mpath))
        for part, key in (("workflow", "status_dir"), ("workflow", "name"), ("graph", "entry"),
                          ("graph", "root"), ("datasets", "file")):
            if not isinstance(m[part][key], str):
                raise ValueError(f"{part}.{key} is not a string")
        if not isinstance(m["steps"], dict):
            raise ValueError("steps is not a mapping")
        tsv = mpath.parent / m["datasets"]["file"]
    except FileNotFoundError:
        raise SurveyError(str(mpath), "no compiled workflow here (run `padocc compile` first)") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SurveyError(str(mpath), f"unreadable manifest: {e}") from None
    if not tsv.is_file():
        raise SurveyError(str(tsv), "the build's dataset list is missing")
    return m, tsv


def _datasets(tsv: Path) -> list[tuple[str, str, str]]:
    rows = []
    with open(tsv, encoding="utf-8", errors="replace") as f:
        for line in f:
            ds, _, rest = line.rstrip("\n").partition("\t")
            key, _, facets = rest.partition("\t")
            if ds:
                rows.append((ds, key, facets or "{}"))
    return rows


def _entry(manifest: Mapping) -> tuple[str, str, str]:
    sub, _, pos = manifest["graph"]["entry"].partition("/")
    step, _, state = pos.partition(":")
    return sub, step, state


def _record(ds: str, key: str, facets: str, path: str | None, brief: Brief | None,
            entry: tuple[str, str, str]) -> Record:
    if brief is None:
        return Record(ds, key, facets, None, *entry, None, False, None, None, ())
    warnings = brief.warnings
    if brief.dataset_id is not None and brief.dataset_id != ds:
        warnings += (f"{path}:1: header names dataset {brief.dataset_id!r}, not {ds!r}",)
    at = brief.engaged or brief.current
    if at is None:
        wf, step, state, since = *entry, None
    else:
        wf, step, state, since = at[2], at[3], at[4], at[0]
    return Record(ds, key, facets, path, wf, step, state, since, brief.blocked, brief.current,
                  brief.engaged, warnings)


def survey(workflow_dir: str | Path, *, tally: Tally | None = None, use_index: bool = True) -> Survey:
    """Every dataset of the current build with its position.

    With `tally`, each status file's whole history is added to it (`Tally.add`) and
    not kept. `use_index` takes unchanged files from the index (from the report cache,
    with their tallies, when there is a `tally`).
    """
    wf_dir = Path(os.path.abspath(workflow_dir))  # log paths in reports are absolute
    manifest, tsv = load_current(wf_dir)
    status_dir = Path(manifest["workflow"]["status_dir"])
    if not status_dir.is_absolute():
        status_dir = wf_dir / status_dir
    entry = _entry(manifest)
    index: _Index | None = None
    cache: _ReportCache | None = None
    if use_index and tally is None:
        index = _Index(wf_dir / INDEX_FILE, str(status_dir))
    elif use_index and tally is not None:
        index = cache = _ReportCache(wf_dir / REPORT_CACHE_FILE, str(status_dir), manifest["graph"]["root"])
        tally.use_keys(cache.keys)
        cache.keys = tally.keys  # the keys of the tallies read now are saved with them
    sdir = os.path.join(str(status_dir), "")  # with its trailing separator
    rows = _datasets(tsv)
    # A survey makes a few objects per file and no cycles: the collector's passes over
    # them (and over the loaded index) would only cost time.
    with _no_gc():
        try:
            records, warnings, seen = _walk(rows, sdir, entry, index, cache, tally)
            if tally is not None:
                warnings += tally_gates(tally, manifest, status_dir)
                tally.finish()
        except DamagedCache:
            if cache is None or tally is None:
                raise
            # A cached tally was damaged: read every file again (and cache them anew).
            cache.clear()
            tally.clear()
            records, warnings, seen = _walk(rows, sdir, entry, index, cache, tally)
            warnings += tally_gates(tally, manifest, status_dir)
            tally.finish()
        if index is not None:
            index.save(seen)
    return Survey(wf_dir, manifest, status_dir, records, warnings)


def _walk(rows: list[tuple[str, str, str]], sdir: str, entry: tuple[str, str, str], index: _Index | None,
          cache: _ReportCache | None, tally: Tally | None) -> tuple[list[Record], list[str], set[str]]:
    """survey's loop over the datasets: (records, warnings, the status files seen)."""
    records: list[Record] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for ds, key, facets in rows:
        name = ds + ".status"
        path = sdir + name
        brief: Brief | None = None
        ft: FileTally | None = None
        sig: list[int] | None = None
        hit = False
        if index is not None:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                records.append(_record(ds, key, facets, None, None, entry))
                continue
            except OSError as e:
                st = None
                brief = Brief(None, None, None, False, (f"{path}: unreadable status file: {e.strerror}",))
            if st is not None:
                seen.add(name)
                # Taken before the read: a file that grows meanwhile differs next time.
                sig = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
                if cache is None:
                    brief = index.get(name, sig)
                elif tally is not None and (got := cache.get_tally(name, sig)) is not None:
                    hit = True
                    ft = tally.cached(got[1], got[2], got[3])
                    if ft is not None:  # else --since cuts through this file: read it
                        brief = got[0]
        if brief is None:
            try:
                data = _read(path)
            except FileNotFoundError:
                records.append(_record(ds, key, facets, None, None, entry))
                continue
            except OSError as e:
                data = None
                brief = Brief(None, None, None, False, (f"{path}: unreadable status file: {e.strerror}",))
                sig = None  # never index an unreadable file: try it again next time
            if data is not None:
                if tally is not None:
                    hid, lines, w = scan(data, path)
                    brief = fold_lines(hid, lines, w)
                    ft = tally.read(brief, lines)
                    if cache is not None and sig is not None and not hit:
                        cache.put_tally(name, sig, brief, ft)
                else:
                    brief = fold(data, path)
                    if index is not None and sig is not None:
                        index.put(name, sig, brief)
        rec = _record(ds, key, facets, path, brief, entry)
        warnings.extend(rec.warnings)
        records.append(rec)
        if tally is not None and ft is not None:
            tally.add(rec, ft)
    return records, warnings, seen


# --- selecting and ordering ---------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """Globs (fnmatch, case-sensitive). Several values of one filter: any may match;
    different filters (and different facets): all must match."""

    facets: tuple[tuple[str, str], ...] = ()
    workflows: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    states: tuple[str, ...] = ()


def _any(globs: Sequence[str], *values: str) -> bool:
    return any(fnmatch.fnmatchcase(v, g) for g in globs for v in values)


def select(records: Iterable[Record], f: Filters) -> list[Record]:
    by_facet: dict[str, list[str]] = {}
    for k, g in f.facets:
        by_facet.setdefault(k, []).append(g)
    out = []
    for r in records:
        if f.workflows and not _any(f.workflows, r.workflow):
            continue
        if f.steps and not _any(f.steps, r.step):
            continue
        # `--state Blocked` finds blocked datasets, whatever their Step:State.
        if f.states and not _any(f.states, r.state, *(("Blocked",) if r.blocked else ())):
            continue
        if by_facet:
            facets = r.facets
            if not all(k in facets and _any(gs, facets[k]) for k, gs in by_facet.items()):
                continue
        out.append(r)
    return out


def filter_mistake(records: Sequence[Record], manifest: Mapping, f: Filters) -> str | None:
    """A filter that names nothing this build has (a facet, a facet value, a step or
    state of the graph), with a suggestion; None when each names something. A filter
    that names something that no dataset is at right now is not a mistake."""
    facets: dict[str, set[str]] = {}
    for r in records:
        for k, v in r.facets.items():
            facets.setdefault(k, set()).add(v)
    for k, glob in f.facets:
        if k not in facets:
            return f"no dataset has a facet '{k[:80]}'{suggest(k, facets)}"
        if not _any((glob,), *facets[k]):
            return f"no dataset has {k} matching '{glob[:80]}'{suggest(glob, facets[k])}"
    steps = {manifest["graph"]["root"], *manifest["steps"]}
    steps |= {pos.partition("/")[0] for pos in manifest["graph"]["table"]}
    for glob in f.steps:
        if not _any((glob,), *steps):
            return f"no step or workflow '{glob[:80]}' in this build{suggest(glob, steps)}"
    for glob in f.workflows:
        if not _any((glob,), *steps):
            return f"no workflow '{glob[:80]}' in this build{suggest(glob, steps)}"
    states = {pos.rpartition(":")[2] for pos in manifest["graph"]["table"]}
    states |= {"Ready", ENGAGED, "Pass", "Fail", QUARANTINED, "Blocked"}
    for glob in f.states:
        if not _any((glob,), *states):
            return f"no state '{glob[:80]}' in this build{suggest(glob, states)}"
    return None


_STATE_RANK = {"Ready": 0, ENGAGED: 1, "Pass": 2, "Fail": 8, QUARANTINED: 9}


def position_order(manifest: Mapping) -> functools.partial:
    """A sort key for (workflow, step, state): not started first, then steps in the
    order the workflow declares them, the workflow's own end states last."""
    root = manifest["graph"]["root"]
    steps = {s: i for i, s in enumerate(manifest["steps"])}
    return functools.partial(_position_key, root, steps)


def _position_key(root: str, steps: Mapping[str, int], pos: tuple[str, str, str]) -> tuple:
    wf, step, state = pos
    if step == root and wf == root:
        group = 0 if state == "Ready" else 3
    else:
        group = 1 if step in steps else 2
    return (group, steps.get(step, 0), step, *state_key(state), wf)


def state_key(state: str) -> tuple[int, str]:
    """Ready, Engaged, Pass, custom outcomes (by name), Fail, Quarantined."""
    return (_STATE_RANK.get(state, 5), state)


# --- reports ------------------------------------------------------------------------


def param(text: str, key: str) -> str | None:
    """One parameter of a STAT line's raw `k=v,...` text, as parse_params would give it."""
    return pick(text, (key,)).get(key)


def pick(text: str, keys: tuple[str, ...]) -> dict[str, str]:
    """Some parameters of a raw `k=v,...` text, as parse_params gives them (the last of a
    repeated key wins), without unescaping all the others: reports read two or three
    parameters of a million lines."""
    found: dict[str, str] = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        if "%" in k or "^" in k:
            k = unescape_value(k)
        if k in keys:
            found[k] = unescape_value(v) if ("%" in v or "^" in v) else v
    return found


def _float(s: str | None) -> float | None:
    try:
        v = float(s) if s is not None else None
    except ValueError:
        return None
    return v if v is not None and math.isfinite(v) else None


_ENDS = ("wall", "maxrss_mb")
# The two parameters of an outcome line that reports read, as `pick` finds them in a
# text without escapes ('%' or '^'): whole keys, the last one wins, a bare key is "".
_ENDS_RE = re.compile(r"(?:^|,)(wall|maxrss_mb)(?:=([^,]*))?(?=,|$)")


def _ends(text: str) -> tuple[float | None, float | None]:
    """(wall, maxrss_mb) of an outcome line's raw parameters."""
    if not text:
        return None, None
    got = pick(text, _ENDS) if "%" in text or "^" in text else dict(_ENDS_RE.findall(text))
    return _float(got.get("wall")), _float(got.get("maxrss_mb"))


@dataclass(frozen=True)
class StepRow:
    step: str
    datasets: int
    engaged: int
    passed: int
    failed: int
    other: int  # custom outcome states, e.g. Warning
    retries: int  # Retry lines
    cancelled: int
    lost: int
    open: int
    total_s: float
    mean_s: float | None
    median_s: float | None
    p95_s: float | None
    share: float  # of all processing time
    peak_mb: float | None


def p95(values: Sequence[float]) -> float | None:
    """Nearest-rank 95th percentile: a value that was really measured."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(0.95 * len(s)) - 1)]


def log_path(workflow_dir: Path, dataset: str, engaged: Parts | None) -> str | None:
    """Where the wrapper's job log of an engagement is (build, slot and, for a job of
    several datasets, the job are on its line)."""
    return None if engaged is None else _log(workflow_dir, dataset, engaged[5])


def _log(workflow_dir: Path, dataset: str, params: str | None) -> str | None:
    """log_path from the Engaged line's raw parameters."""
    if params is None:
        return None
    got = pick(params, ("build", "slot", "job"))
    build, slot = got.get("build"), got.get("slot")
    if not build or not slot:
        return None
    job = got.get("job") or dataset
    return str(workflow_dir / job_log(build, job, slot))


@dataclass(frozen=True)
class Failure:
    dataset: str
    workflow: str
    step: str  # the step that failed, or the one quarantined at
    state: str  # Fail (the workflow ended failed) or Quarantined
    ts: str
    params: Mapping[str, str]  # of the last STAT line that says why
    log: str | None
    slurm_jobid: str


_SPECIAL = frozenset({"Pass", "Fail", "retry", "cancelled", "lost", "open"})
_GATE_ENDS = {"Pass": "Pass", "Fail": "Fail", "Retry": "retry", "Cancelled": "cancelled"}


class _StepTally:
    __slots__ = ("datasets", "outcomes", "retries", "seconds", "peak")

    def __init__(self) -> None:
        self.datasets = 0
        self.outcomes: dict[str, int] = {}
        self.retries = 0
        self.seconds: list[float] = []
        self.peak: float | None = None


class FileTally(NamedTuple):
    """What a report takes from one status file, small enough to cache."""

    engs: list  # flat: key (Tally.keys), seconds, maxrss_mb of each engagement, in order
    retries: list[str]  # the step of each Retry line
    failure: list | None  # Tally._failure's row
    stamps: list[str] | None  # when each engagement began, then each Retry; None: cached


_NO_TALLY = FileTally([], [], None, None)


class DamagedCache(ValueError):
    """A cached tally does not hold what a tally holds: the cache is to be ignored."""


class Tally:
    """What `report` shows of the histories, gathered one status file at a time: a
    survey of 100,000 files never holds all their lines at once. `read` makes a file's
    FileTally, `add` gathers it (from `since` on), `finish` counts all at once."""

    def __init__(self, manifest: Mapping, workflow_dir: Path, since: str | None = None):
        self.root = manifest["graph"]["root"]
        self.workflow_dir, self.since = workflow_dir, since
        self._step_names = list(manifest["steps"])
        # The (step, outcome) of each key in FileTally.engs: small ints cache compactly.
        self.keys: list[tuple[str, str]] = []
        self._key_of: dict[tuple[str, str], int] = {}
        self.clear()

    def clear(self) -> None:
        """Forget what was added (not the keys)."""
        self.steps: dict[str, _StepTally] = {name: _StepTally() for name in self._step_names}
        self.failures: list[Failure] = []
        # Every engagement added, in order (one list a field), counted by `finish`.
        self._keys: list = []
        self._secs: list = []
        self._mbs: list = []
        self._files: list[int] = []  # engagements per file added (of those with any, or a Retry)
        self._engaged: list = []  # the steps each file engaged, once a file
        self._retries: list[tuple[int, list[str]]] = []  # (index in _files, steps of its Retry lines)
        self._finished = False

    def use_keys(self, keys: Iterable[tuple[str, str]]) -> None:
        """Take the keys of cached FileTallies; only before the first `read`."""
        if self.keys:
            raise RuntimeError("a Tally takes keys only before it reads")
        self.keys = [(s, o) for s, o in keys]
        self._key_of = {k: i for i, k in enumerate(self.keys)}

    def _key(self, step: str, outcome: str) -> int:
        k = (step, outcome)
        i = self._key_of.get(k)
        if i is None:
            i = self._key_of[k] = len(self.keys)
            self.keys.append(k)
        return i

    def read(self, brief: Brief, lines: list[Parts]) -> FileTally:
        """One whole history (`since` is applied in `add`). Pairs each Engaged with what
        closed it; the outcome is Pass, Fail, a custom state, or retry, cancelled, lost
        (an Engaged followed by something else of another step, or by another Engaged:
        it crashed) or open (never closed). Seconds: the wall= of its end, else the
        time from Engaged to its end."""
        key, known = self._key, self._key_of.get
        engs: list = []
        stamps: list[str] = []
        retries: list[str] = []
        retry_stamps: list[str] = []
        cur: Parts | None = None
        ended: tuple[Parts, Parts] | None = None  # the last engagement closed: Engaged, end
        for p in lines:
            state = p[4]
            if state == ENGAGED:
                if cur is not None:
                    engs += (key(cur[3], "lost"), None, None)
                    stamps.append(cur[0])
                cur = p
                continue
            if state == "Retry" or state == "Cancelled":
                if state == "Retry":
                    retries.append(p[3])
                    retry_stamps.append(p[0])
                if cur is None or cur[3] != p[3]:
                    continue
                outcome = state.lower()
            elif state in NON_BINDING or cur is None:
                continue
            elif cur[2] != p[2] or cur[3] != p[3]:
                engs += (key(cur[3], "lost"), None, None)
                stamps.append(cur[0])
                cur = None
                continue
            else:
                outcome = state
            wall, mb = _ends(p[5])
            if wall is None:
                wall = (parse_stamp(p[0]) - parse_stamp(cur[0])).total_seconds()
            k = known((cur[3], outcome))  # inline: one call less per engagement
            engs += (key(cur[3], outcome) if k is None else k, wall, mb)
            stamps.append(cur[0])
            ended, cur = (cur, p), None
        if cur is not None:
            engs += (key(cur[3], "open"), None, None)
            stamps.append(cur[0])
        return FileTally(engs, retries, self._failure(brief, lines, ended), stamps + retry_stamps)

    def _failure(self, brief: Brief, lines: list[Parts], ended: tuple[Parts, Parts] | None) -> list | None:
        """A dataset that ended `<root>:Fail` or is Quarantined (and not running again):
        [workflow, step, state, stamp, params text, its Engaged's params text, SLURM job]."""
        cur, root = brief.current, self.root
        if cur is None or brief.engaged is not None:
            return None
        if not ((cur[2] == root and cur[3] == root and cur[4] == "Fail") or cur[4] == QUARANTINED):
            return None
        # The root's end marker only says "Fail": the line before it says why.
        why = next((p for p in reversed(lines) if p[4] not in NON_BINDING and p[4] != ENGAGED
                    and not (p[2] == root and p[3] == root)), cur)
        eng, end = ended if ended is not None else (None, None)
        jobid = (param(why[5], "slurm_jobid") or (param(end[5], "slurm_jobid") if end is not None else None)
                 or (param(eng[5], "slurm_jobid") if eng is not None else None) or "")
        step = cur[3] if cur[4] == QUARANTINED else why[3]
        return [why[2], step, cur[4], cur[0], why[5], None if eng is None else eng[5], jobid]

    def read_gate(self, label: str, lines: list[Parts]) -> FileTally:
        """A gate's status file, as the row `label`: each chunk's Engaged paired with its
        outcome by the chunk= parameter (chunks running side by side write one file). A
        Retry line is the outcome of a failed attempt with attempts left."""
        key = self._key
        engs: list = []
        stamps: list[str] = []
        retries: list[str] = []
        retry_stamps: list[str] = []
        running: dict[str, Parts] = {}
        for p in lines:
            state, c = p[4], param(p[5], "chunk")
            if not c:
                continue
            if state == ENGAGED:
                if c in running:
                    engs += (key(label, "lost"), None, None)
                    stamps.append(running[c][0])
                running[c] = p
                continue
            if state not in _GATE_ENDS:
                continue
            if state == "Retry":
                retries.append(label)
                retry_stamps.append(p[0])
            cur = running.pop(c, None)
            if cur is None:
                continue
            wall, mb = _ends(p[5])
            if wall is None:
                wall = (parse_stamp(p[0]) - parse_stamp(cur[0])).total_seconds()
            engs += (key(label, _GATE_ENDS[state]), wall, mb)
            stamps.append(cur[0])
        for cur in running.values():
            engs += (key(label, "open"), None, None)
            stamps.append(cur[0])
        return FileTally(engs, retries, None, stamps + retry_stamps)

    def cached(self, ft: FileTally, lo: str | None, hi: str | None) -> FileTally | None:
        """A cached FileTally as `add` takes it, or None: read the file again. The cache
        keeps only the range lo..hi of the file's stamps (None: some have an unusual
        shape), so with `since` it serves files wholly after or wholly before it."""
        since = self.since
        if since is None:
            return ft
        if lo is None or hi is None or len(since) != 22:  # at_or_after compares such as times
            return None
        if since <= lo:
            return ft
        return _NO_TALLY if since > hi else None

    def add(self, rec: Record | None, ft: FileTally) -> None:
        """A file's tally (`rec`: its dataset; None for a gate's, which has no failure)."""
        if self.since is not None and ft.stamps is not None:
            ft = self._after(ft, self.since)
        e = ft.engs
        if e or ft.retries:
            if ft.retries:
                self._retries.append((len(self._files), ft.retries))
            self._files.append(len(e) // 3)
            keys, known = e[0::3], self.keys
            try:
                self._engaged += {known[k][0] for k in keys}
            except (IndexError, TypeError):
                raise DamagedCache("engagement keys") from None
            self._keys += keys
            self._secs += e[1::3]
            self._mbs += e[2::3]
        f = ft.failure
        if f is not None and rec is not None:
            self.failures.append(Failure(rec.id, f[0], f[1], f[2], f[3], parse_params(f[4]) if f[4] else {},
                                         _log(self.workflow_dir, rec.id, f[5]), f[6]))

    def finish(self) -> None:
        """Count what was added: per step, datasets, outcomes, seconds (in the order
        they were read: sums come out the same), peak memory and retries. Raises
        DamagedCache if something added from the cache is not what `read` makes."""
        if self._finished:
            return
        keys, secs, mbs = self._keys, self._secs, self._mbs
        retried = [s for _, r in self._retries for s in r]
        if keys and not (set(map(type, keys)) == _INT and min(keys) >= 0 and max(keys) < len(self.keys)):
            raise DamagedCache("engagement keys")
        if not (set(map(type, secs)) <= _FLOAT and set(map(type, mbs)) <= _FLOAT and set(map(type, retried)) <= _STR):
            raise DamagedCache("engagement values")
        steps = self.steps
        if not ({self.keys[k][0] for k in set(keys)} | set(retried)) <= steps.keys():
            self._register()
        tallies = list(steps.values())
        at = {name: i for i, name in enumerate(steps)}
        key_at = [at.get(s, -1) for s, _ in self.keys]  # -1: a key of the cache not used now
        where = list(map(key_at.__getitem__, keys))  # each engagement's step, as an index in tallies
        for k, n in Counter(keys).items():
            step, outcome = self.keys[k]
            o = steps[step].outcomes
            o[outcome] = o.get(outcome, 0) + n
        for step, n in Counter(self._engaged).items():
            steps[step].datasets += n
        seconds: list[list[float]] = [t.seconds for t in tallies]
        peaks: list[list[float]] = [[] for _ in tallies]
        for i, x, mb in zip(where, secs, mbs, strict=True):
            if x is not None:
                seconds[i].append(x)
            if mb is not None:
                peaks[i].append(mb)
        for t, p in zip(tallies, peaks, strict=True):
            t.peak = max(p) if p else None
        for step, n in Counter(retried).items():
            steps[step].retries += n
        self._finished = True

    def _register(self) -> None:
        """Add the steps the manifest does not name, in the order they first appear."""
        steps, keys, at = self.steps, self._keys, 0
        retries = dict(self._retries)
        for f, n in enumerate(self._files):
            for k in keys[at : at + n]:
                steps.setdefault(self.keys[k][0], _StepTally())
            at += n
            for step in retries.get(f, ()):
                steps.setdefault(step, _StepTally())

    @staticmethod
    def _after(ft: FileTally, since: str) -> FileTally:
        """Only what began at or after `since`."""
        n, stamps = len(ft.engs) // 3, ft.stamps or []
        engs = [x for i in range(n) if at_or_after(stamps[i], since) for x in ft.engs[3 * i : 3 * i + 3]]
        retries = [s for s, ts in zip(ft.retries, stamps[n:], strict=True) if at_or_after(ts, since)]
        f = ft.failure if ft.failure is not None and at_or_after(ft.failure[3], since) else None
        return FileTally(engs, retries, f, None)

    def step_rows(self) -> list[StepRow]:
        self.finish()
        grand = sum(sum(t.seconds) for t in self.steps.values())
        rows = []
        for name, t in self.steps.items():
            secs, o = t.seconds, t.outcomes
            total = sum(secs)  # in the order read: a sorted sum could differ in the last bit
            ordered = sorted(secs)  # sorted once: median's and p95's sorts then take one pass
            rows.append(StepRow(
                step=name, datasets=t.datasets, engaged=sum(o.values()), passed=o.get("Pass", 0),
                failed=o.get("Fail", 0), other=sum(n for k, n in o.items() if k not in _SPECIAL),
                retries=t.retries, cancelled=o.get("cancelled", 0), lost=o.get("lost", 0), open=o.get("open", 0),
                total_s=total, mean_s=total / len(secs) if secs else None,
                median_s=statistics.median(ordered) if secs else None, p95_s=p95(ordered),
                share=total / grand if grand else 0.0, peak_mb=t.peak,
            ))
        return rows

    def recent_failures(self) -> list[Failure]:
        return sorted(self.failures, key=lambda f: (parse_stamp(f.ts), f.dataset), reverse=True)


REPORT_CACHE_FILE = Path(".padocc") / "survey" / "report-cache.json"
# The types in a sound cache: keys are ints, steps strs, seconds and maxrss_mb floats or null.
_INT, _STR, _FLOAT = frozenset({int}), frozenset({str}), frozenset({float, type(None)})


class _ReportCache(_Index):
    """The status index's entries (same signature, same 2-s rule: never stale), each
    with its file's FileTally less the stamps, whose range it keeps instead, and the
    (step, outcome) keys of the tallies. Made for one root step: failures depend on it."""

    version = "report-2"  # 2: status lines read as datasm reads them (statusindex 3)

    def __init__(self, path: Path, status_dir: str, root: str):
        self.keys: list[tuple[str, str]] = []
        super().__init__(path, status_dir, root=root)

    def loaded(self, data: dict) -> None:
        keys = data["keys"]
        if type(keys) is not list or not all(type(k) is list and len(k) == 2 and set(map(type, k)) == _STR
                                             for k in keys):
            raise ValueError("damaged keys")
        self.keys = [(s, o) for s, o in keys]

    def more(self) -> dict:
        return {"keys": self.keys}

    def get_tally(self, name: str, sig: list[int]) -> tuple[Brief, FileTally, str | None, str | None] | None:
        brief = self.get(name, sig)
        if brief is None:
            return None
        e = self.files[name]
        if len(e) != 15:
            return None
        lo, hi, engs, retries, failure = e[10:]
        # The shape only: Tally.finish checks the values of all entries at once.
        if not ((lo is None and hi is None) or (type(lo) is str and type(hi) is str)):
            return None
        if type(engs) is not list or len(engs) % 3 or type(retries) is not list:
            return None
        if failure is not None and not (type(failure) is list and len(failure) == 7
                                        and set(map(type, failure)) <= _STR | {type(None)}
                                        and None not in (failure[:5] + failure[6:]) and stamp_ok(failure[3])):
            return None
        return brief, FileTally(engs, retries, failure, None), lo, hi

    def put_tally(self, name: str, sig: list[int], brief: Brief, ft: FileTally) -> None:
        ts = (ft.stamps or []) + ([ft.failure[3]] if ft.failure is not None else [])
        if not ts:
            lo = hi = ""  # nothing --since could leave out
        elif set(map(len, ts)) == {22}:  # at_or_after compares them as text
            lo, hi = min(ts), max(ts)
        else:
            lo = hi = None
        self.put(name, sig, brief, lo, hi, ft.engs, ft.retries, ft.failure)


@dataclass(frozen=True)
class Stuck:
    dataset: str
    workflow: str
    step: str
    ts: str
    age_s: float
    host: str
    pid: str
    slurm_jobid: str
    log: str | None


def stuck(s: Survey, now: datetime, after: timedelta) -> list[Stuck]:
    """Datasets `Engaged` for longer than `after`: a long job, or a crash nobody saw."""
    out = []
    for r in s.records:
        p = r.engaged_parts
        if p is None:
            continue
        age = (now - parse_stamp(p[0])).total_seconds()
        if age > after.total_seconds():
            out.append(Stuck(r.id, p[2], p[3], p[0], age, param(p[5], "host") or "", param(p[5], "pid") or "",
                             param(p[5], "slurm_jobid") or "", log_path(s.workflow_dir, r.id, p)))
    out.sort(key=lambda x: (parse_stamp(x.ts), x.dataset))
    return out


@dataclass(frozen=True)
class Coverage:
    """One gate's coverage on its axis: intervals by kind (done, missing, running,
    failed, permanent) and the gaps, what neither done nor permanently missing covers.
    A gate without a want (`wanted` False) is shown over what it made, failed or is
    making (low = high when that is nothing)."""

    gate: str
    axis: str
    low: float
    high: float
    intervals: tuple[tuple[float, float, str], ...]
    gaps: tuple[tuple[float, float], ...]
    wanted: bool = True

    @property
    def covered(self) -> float:
        span = self.high - self.low
        return 1.0 - sum(b - a for a, b in self.gaps) / span if span > 0 else 1.0


@dataclass(frozen=True)
class GateFailure:
    """A gate chunk whose last runs failed (since its last success): how many times,
    whether that reached the gate's max_failures (then no cycle makes it again), and the
    last failure's STAT parameters, SLURM job and log."""

    gate: str  # gate, or gate@key
    low: float
    high: float
    chunk: str
    fails: int
    max_failures: int
    ts: str
    params: Mapping[str, str]
    log: str | None
    slurm_jobid: str

    @property
    def reached(self) -> bool:
        return self.fails >= self.max_failures


def gaps_of(low: float, high: float, filled: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out, at = [], low
    for a, b in sorted((max(a, low), min(b, high)) for a, b in filled):
        if a > at:
            out.append((at, a))
        at = max(at, b)
    if at < high:
        out.append((at, high))
    return out


def coverage(manifest: Mapping, now: float | None = None) -> list[Coverage]:
    """Coverage rows of the build's gates (see `gates_survey`)."""
    return gates_survey(manifest, now)[0]


def gates_survey(
    manifest: Mapping, now: float | None = None, workflow_dir: str | Path = ".", since: str | None = None
) -> tuple[list[Coverage], list[GateFailure]]:
    """Coverage rows of the build's gates, from the gates' own coverage view (chunk
    outputs, status files, status commands): intervals by kind (done, missing, running,
    failed, permanent) and the gaps, over the wanted range (a gate without a want: over
    what it made, failed or is making). Keyed gates get one row per key that has a status
    file; clock gates have nothing to show. And the failed chunks, newest first (`since`:
    a STAT stamp; only chunks whose last failure is from then on)."""
    from compiler.model.chunks import edge, want_range
    from compiler.render.coverage import ChunkStates, coverage_runs, grid_index
    from compiler.render.covmap import mapped_states

    if now is None:  # the compile's "now": what that build planned against
        now = float(manifest.get("now") or time.time())
    rows, failed = [], []
    status_dir = manifest["workflow"]["status_dir"]
    for name, g in sorted((manifest.get("gates") or {}).items()):
        if g.get("clock_lag") is not None:
            continue
        rng = want_range(g, now)
        keys = [""]
        if g["keyed"]:
            d = Path(status_dir) / "gates"
            found = d.glob(f"{name}@*.status") if d.is_dir() else []
            keys = sorted(p.name[len(name) + 1 : -len(".status")] for p in found)
        for key in keys:
            st: ChunkStates = mapped_states(dict(manifest), name, now, key)
            label = f"{name}@{key}" if key else name
            for c, n in st.failures.items():
                k = grid_index(g, c)
                ts, params = st.last_fail.get(c, ("", ""))
                if k is None or (since is not None and not (ts and at_or_after(ts, since))):
                    continue
                pp = parse_params(params) if params else {}
                log = Path(workflow_dir) / chunk_log(name, c, key)
                failed.append(GateFailure(label, float(edge(g, k)), float(edge(g, k + 1)), c, n,
                                          int(g["max_failures"]), ts, pp, str(log),
                                          pp.get("slurm_jobid", "")))  # fmt: skip
            if rng is not None:
                lo, hi = float(rng[0]), float(rng[1])
            else:
                lo, hi = _made_span(g, st)
            ivs = tuple((float(a), float(b), "permanent" if k == "gap" else k) for a, b, k in coverage_runs(g, st, lo, hi))
            filled = [(a, b) for a, b, k in ivs if k in ("done", "permanent")]
            rows.append(Coverage(label, str(g["axis"]), lo, hi, ivs, tuple(gaps_of(lo, hi, filled)), rng is not None))
    failed.sort(key=lambda f: (f.ts, f.gate, f.low), reverse=True)
    return rows, failed


def tally_gates(tally: Tally, manifest: Mapping, status_dir: Path) -> list[str]:
    """Add each gate's chunk runs to the tally, one row per gate ('gate NAME', all keys
    of a keyed gate together), read whole each time (a gate's file holds a line or two
    per chunk run). Returns the warnings of damaged status files."""
    from compiler.core.safeio import read_regular
    from compiler.render.coverage import GATE_STATUS_DIR

    d = status_dir / GATE_STATUS_DIR
    warnings: list[str] = []
    for name, g in sorted((manifest.get("gates") or {}).items()):
        if not g.get("command"):
            continue
        files = sorted(d.glob(f"{glob_escape(name)}@*.status")) if g["keyed"] else [d / f"{name}.status"]
        for path in files:
            try:
                data = read_regular(path)
            except OSError:
                continue  # none yet (or not a regular file: `padocc gate` says so)
            _, lines, w = scan(data, str(path))
            warnings += w
            tally.add(None, tally.read_gate(f"gate {name}", lines))
    return warnings


def glob_escape(name: str) -> str:
    """A name as a glob pattern that matches only itself."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def _made_span(g: Mapping, st) -> tuple[float, float]:
    """What a gate without a want made, failed or is making: from the first such chunk
    to the end of the last (origin to origin when nothing)."""
    from compiler.model.chunks import edge
    from compiler.render.coverage import grid_index

    ks = [k for k in map(lambda c: grid_index(g, c), [*st.done, *st.running, *st.failures]) if k is not None]
    lows = [float(edge(g, k)) for k in ks] + [float(a) for a, _ in st.covered_by_status]
    highs = [float(edge(g, k + 1)) for k in ks] + [float(b) for _, b in st.covered_by_status]
    lows += [float(edge(g, a)) for a, _ in st.done_runs]
    highs += [float(edge(g, b)) for _, b in st.done_runs]
    if not lows:
        return float(g["origin"]), float(g["origin"])
    return min(lows), max(highs)


# --- time arguments -----------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `6h`, `7d`, `2w`, or several: `1d12h`."""
    t = text.strip()
    if not t or _DURATION.sub("", t):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 6h, 7d, 1d12h)")
    try:
        return timedelta(seconds=sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(t)))
    except OverflowError:
        raise ValueError(f"duration too long: {text!r}") from None


def parse_since(text: str, now: datetime) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), or a duration back from now."""
    try:
        return now - parse_duration(text)
    except ValueError as e:
        if "too long" in str(e):
            raise
    except OverflowError:  # "1000000d": a time before the year 1
        raise ValueError(f"duration too long: {text!r}") from None
    try:
        return parse_utc(text)
    except ValueError as e:
        if "use UTC like" not in str(e):  # a time, but no such day or hour
            raise
        raise ValueError(f"not a time or duration: {text!r} (use e.g. 2026-11-20, "
                         "2026-11-20T06:00, 7d)") from None


def at_or_after(ts: str, since: str) -> bool:
    """Compare STAT stamps: as text when both have the usual 22 characters (it sorts
    in time order), else as times (strptime also takes shorter fractions)."""
    if len(ts) == 22 and len(since) == 22:
        return ts >= since
    return parse_stamp(ts) >= parse_stamp(since)


def stamp_of(t: datetime) -> str:
    """A datetime as a STAT stamp, which sorts as text in time order."""
    return t.astimezone(UTC).strftime("%Y%m%d_%H%M%S_%f")


# --- output helpers ------------------------------------------------------------------


def text_table(headers: Sequence[str], rows: Iterable[Sequence[object]], right: Iterable[int] = ()) -> str:
    """Columns padded to their widest cell; `right` are the indexes right-aligned (numbers)."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    ra = set(right)
    out = []
    for r in cells:
        line = "  ".join(c.rjust(w) if i in ra else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        out.append(line.rstrip())
    return "\n".join(out) + "\n"


def human_seconds(s: float | None) -> str:
    """12.3s, 4m05s, 3h02m, 2d03h: readable at a glance, exact enough for operators."""
    if s is None:
        return "-"
    if s < 59.95:  # what rounds to 60.0s is shown as 1m00s
        return f"{s:.1f}s"
    n = int(round(s))
    if n < 3600:
        return f"{n // 60}m{n % 60:02d}s"
    if n < 86400:
        return f"{n // 3600}h{n % 3600 // 60:02d}m"
    return f"{n // 86400}d{n % 86400 // 3600:02d}h"


def write_or_quit(out: TextIO, text: str) -> bool:
    """Write; False if the reader went away (`padocc status --format ids | head`): the
    rest of the output is dropped quietly, not a traceback."""
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's own flush at exit stays quiet.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())
            os.close(devnull)
        return False
    return True
