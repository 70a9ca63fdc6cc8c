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
a survey faster but never stale. `report` and `dashboard` need whole histories: they
read every file and tally each history as it is read (`Tally`), keeping none.
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

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


Visit = Callable[["Record", list[Parts]], None]


def survey(workflow_dir: str | Path, *, visit: Visit | None = None, use_index: bool = True) -> Survey:
    """Every dataset of the current build with its position.

    With `visit`, every status file is read whole and `visit(record, lines)` sees each
    history (its valid STAT lines) once, which is not kept. Without it, `use_index`
    takes unchanged files from the index.
    """
    wf_dir = Path(os.path.abspath(workflow_dir))  # log paths in reports are absolute
    manifest, tsv = load_current(wf_dir)
    status_dir = Path(manifest["workflow"]["status_dir"])
    if not status_dir.is_absolute():
        status_dir = wf_dir / status_dir
    entry = _entry(manifest)
    index = _Index(wf_dir / INDEX_FILE, str(status_dir)) if use_index and visit is None else None
    records: list[Record] = []
    warnings: list[str] = []
    seen: set[str] = set()
    sdir = os.path.join(str(status_dir), "")  # with its trailing separator
    for ds, key, facets in _datasets(tsv):
        name = ds + ".status"
        path = sdir + name
        brief: Brief | None = None
        lines: list[Parts] = []
        sig: list[int] | None = None
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
                brief = index.get(name, sig)
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
                if visit is not None:
                    hid, lines, w = scan(data, path)
                    brief = fold_lines(hid, lines, w)
                else:
                    brief = fold(data, path)
                if index is not None and sig is not None:
                    index.put(name, sig, brief)
        rec = _record(ds, key, facets, path, brief, entry)
        warnings.extend(rec.warnings)
        records.append(rec)
        if visit is not None and lines:
            visit(rec, lines)
    if index is not None:
        index.save(seen)
    return Survey(wf_dir, manifest, status_dir, records, warnings)


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


def iso(ts: str | None) -> str | None:
    """A STAT stamp as ISO 8601 UTC to the second."""
    if not ts:
        return None
    return parse_stamp(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


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


@dataclass(frozen=True)
class Engagement:
    dataset: str
    workflow: str
    step: str
    engaged: Parts
    end: Parts | None  # the outcome, Retry or Cancelled that closed it
    outcome: str  # Pass, Fail, a custom state, or: retry, cancelled, lost (crashed), open
    seconds: float | None  # the wall= of its end, else the time from Engaged to its end
    maxrss_mb: float | None = None


def _float(s: str | None) -> float | None:
    try:
        v = float(s) if s is not None else None
    except ValueError:
        return None
    return v if v is not None and math.isfinite(v) else None


_ENDS = ("wall", "maxrss_mb")


def _closed(dataset: str, start: Parts, end: Parts, outcome: str) -> Engagement:
    got = pick(end[5], _ENDS) if end[5] else {}
    wall = _float(got.get("wall"))
    secs = wall if wall is not None else (parse_stamp(end[0]) - parse_stamp(start[0])).total_seconds()
    return Engagement(dataset, start[2], start[3], start, end, outcome, secs, _float(got.get("maxrss_mb")))


def engagements(dataset: str, lines: Iterable[Parts]) -> list[Engagement]:
    """Pair each Engaged with what closed it. An Engaged followed by something else of
    another step (or another Engaged) crashed: it is `lost`; one never closed is `open`."""
    out: list[Engagement] = []
    cur: Parts | None = None
    for p in lines:
        state = p[4]
        if state == ENGAGED:
            if cur is not None:
                out.append(Engagement(dataset, cur[2], cur[3], cur, None, "lost", None))
            cur = p
        elif state == "Retry" or state == "Cancelled":
            if cur is not None and cur[3] == p[3]:
                out.append(_closed(dataset, cur, p, state.lower()))
                cur = None
        elif state in NON_BINDING:
            continue
        elif cur is not None:
            if cur[2] == p[2] and cur[3] == p[3]:
                out.append(_closed(dataset, cur, p, state))
            else:
                out.append(Engagement(dataset, cur[2], cur[3], cur, None, "lost", None))
            cur = None
    if cur is not None:
        out.append(Engagement(dataset, cur[2], cur[3], cur, None, "open", None))
    return out


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
    """Where the wrapper's job log of an engagement is (build and slot are on its line)."""
    if engaged is None:
        return None
    build, slot = param(engaged[5], "build"), param(engaged[5], "slot")
    if not build or not slot:
        return None
    return str(workflow_dir / ".padocc" / "logs" / build / dataset / f"{slot}.log")


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


class _StepTally:
    __slots__ = ("datasets", "outcomes", "retries", "seconds", "peak")

    def __init__(self) -> None:
        self.datasets = 0
        self.outcomes: dict[str, int] = {}
        self.retries = 0
        self.seconds: list[float] = []
        self.peak: float | None = None


class Tally:
    """What `report` shows of the histories, gathered one status file at a time: a
    survey of 100,000 files never holds all their lines at once."""

    def __init__(self, manifest: Mapping, workflow_dir: Path, since: str | None = None):
        self.root = manifest["graph"]["root"]
        self.workflow_dir, self.since = workflow_dir, since
        self.steps: dict[str, _StepTally] = {name: _StepTally() for name in manifest["steps"]}
        self.failures: list[Failure] = []

    def add(self, rec: Record, lines: list[Parts]) -> None:
        since = self.since
        engs = engagements(rec.id, lines)
        seen: set[str] = set()
        for e in engs:
            if since is not None and not at_or_after(e.engaged[0], since):
                continue
            t = self.steps.get(e.step) or self.steps.setdefault(e.step, _StepTally())
            if e.step not in seen:
                seen.add(e.step)
                t.datasets += 1
            t.outcomes[e.outcome] = t.outcomes.get(e.outcome, 0) + 1
            if e.seconds is not None:
                t.seconds.append(e.seconds)
            mb = e.maxrss_mb
            if mb is not None and (t.peak is None or mb > t.peak):
                t.peak = mb
        for p in lines:
            if p[4] == "Retry" and (since is None or at_or_after(p[0], since)):
                (self.steps.get(p[3]) or self.steps.setdefault(p[3], _StepTally())).retries += 1
        f = self._failure(rec, lines, engs)
        if f is not None and (since is None or at_or_after(f.ts, since)):
            self.failures.append(f)

    def _failure(self, rec: Record, lines: list[Parts], engs: list[Engagement]) -> Failure | None:
        """A dataset that ended `<root>:Fail` or is Quarantined (and not running again)."""
        cur, root = rec.current_parts, self.root
        if cur is None or rec.engaged_parts is not None:
            return None
        if not ((cur[2] == root and cur[3] == root and cur[4] == "Fail") or cur[4] == QUARANTINED):
            return None
        # The root's end marker only says "Fail": the line before it says why.
        why = next((p for p in reversed(lines) if p[4] not in NON_BINDING and p[4] != ENGAGED
                    and not (p[2] == root and p[3] == root)), cur)
        ended = next((e for e in reversed(engs) if e.end is not None), None)
        eng = ended.engaged if ended is not None else None
        jobid = (param(why[5], "slurm_jobid")
                 or (param(ended.end[5], "slurm_jobid") if ended is not None and ended.end else None)
                 or (param(eng[5], "slurm_jobid") if eng is not None else None) or "")
        step = cur[3] if cur[4] == QUARANTINED else why[3]
        return Failure(rec.id, why[2], step, cur[4], cur[0], parse_params(why[5]) if why[5] else {},
                       log_path(self.workflow_dir, rec.id, eng), jobid)

    def step_rows(self) -> list[StepRow]:
        grand = sum(sum(t.seconds) for t in self.steps.values())
        rows = []
        for name, t in self.steps.items():
            secs, o = t.seconds, t.outcomes
            total = sum(secs)
            rows.append(StepRow(
                step=name, datasets=t.datasets, engaged=sum(o.values()), passed=o.get("Pass", 0),
                failed=o.get("Fail", 0), other=sum(n for k, n in o.items() if k not in _SPECIAL),
                retries=t.retries, cancelled=o.get("cancelled", 0), lost=o.get("lost", 0), open=o.get("open", 0),
                total_s=total, mean_s=total / len(secs) if secs else None,
                median_s=statistics.median(secs) if secs else None, p95_s=p95(secs),
                share=total / grand if grand else 0.0, peak_mb=t.peak,
            ))
        return rows

    def recent_failures(self) -> list[Failure]:
        return sorted(self.failures, key=lambda f: (parse_stamp(f.ts), f.dataset), reverse=True)


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
    failed, permanent) and the gaps, what neither done nor permanently missing covers."""

    gate: str
    axis: str
    low: float
    high: float
    intervals: tuple[tuple[float, float, str], ...]
    gaps: tuple[tuple[float, float], ...]

    @property
    def covered(self) -> float:
        span = self.high - self.low
        return 1.0 - sum(b - a for a, b in self.gaps) / span if span > 0 else 1.0


def _axis_value(v: object) -> float:
    if isinstance(v, bool):
        raise ValueError(v)
    if isinstance(v, int | float):
        return float(v)
    t = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


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
    """Coverage rows of the build's gates over their wanted range, from the gates' own
    coverage view (chunk outputs, status files, status commands): intervals by kind
    (done, missing, running, failed, permanent) and the gaps. Keyed gates get one row
    per key that has a status file; clock gates have nothing to show."""
    from compiler.render.coverage import ChunkStates, chunk_states, coverage_runs

    if now is None:  # the compile's "now": what that build planned against
        now = float(manifest.get("now") or time.time())
    rows = []
    status_dir = manifest["workflow"]["status_dir"]
    for name, g in sorted((manifest.get("gates") or {}).items()):
        if g.get("clock_lag") is not None or g.get("want_low") is None:
            continue
        lo = float(g["want_low"])
        hi = float(now if g["want_now"] else g["want_high"])
        keys = [""]
        if g["keyed"]:
            d = Path(status_dir) / "gates"
            found = d.glob(f"{name}@*.status") if d.is_dir() else []
            keys = sorted(p.name[len(name) + 1 : -len(".status")] for p in found)
        for key in keys:
            st: ChunkStates = chunk_states(dict(manifest), name, now, key)
            ivs = tuple((float(a), float(b), "permanent" if k == "gap" else k) for a, b, k in coverage_runs(g, st, lo, hi))
            filled = [(a, b) for a, b, k in ivs if k in ("done", "permanent")]
            label = f"{name}@{key}" if key else name
            rows.append(Coverage(label, str(g["axis"]), lo, hi, ivs, tuple(gaps_of(lo, hi, filled))))
    return rows


# --- time arguments -----------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `6h`, `7d`, `2w`, or several: `1d12h`."""
    t = text.strip()
    if not t or _DURATION.sub("", t):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 6h, 7d, 1d12h)")
    return timedelta(seconds=sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(t)))


def parse_since(text: str, now: datetime) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), or a duration back from now."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time or duration: {text!r} (use e.g. 2026-11-20, "
                         "2026-11-20T06:00, 7d)") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


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
