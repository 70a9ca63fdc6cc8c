"""The provenance catalog: an embedded SQLite file, `<workflow>/.padocc/catalog.sqlite`.

It indexes what the status files and the work dirs already say; it is never the
source of truth. Every job row is derived from STAT lines (its Engaged line and the
line that closed it), so the wrapper writing rows live and `padocc catalog rebuild`
reading all status files give the same rows.

Tables:
  jobs        one row per job: a step of a dataset, or a chunk of a gate
  files       one row per output file: path (relative to the workflow dir), size,
              sha256, and the job that made it: the latest job that ran a command,
              ended with an outcome and declared the path
  undeclared  files jobs left but did not declare, and what became of them

SQLite on a shared filesystem (NFS, Lustre, GPFS): the rollback journal
(journal_mode=DELETE), never WAL, whose shared-memory index is not shared between
nodes; a busy timeout plus retries with jittered back-off on "database is locked";
one short transaction per job, taken with BEGIN IMMEDIATE, and all hashing done
before it. A write that still fails is a warning in the job log, never a failed job.
"""

from __future__ import annotations

import contextlib
import json
import operator
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from compiler.core.manifestio import load_manifest
from compiler.core.statusfile import ENGAGED, Stat, parse_stamp, read_history
from compiler.runtime import workfiles as wfiles

CATALOG = Path(".padocc") / "catalog.sqlite"
SCHEMA_VERSION = "1"
BUSY_TIMEOUT_S = 10.0
TRIES = 6  # with the busy timeout: about a minute before a job gives up and warns

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,          -- <status id>:<step>[:<chunk>]:<Engaged stamp>
    kind TEXT NOT NULL,           -- step | gate
    build TEXT, dataset TEXT, sub TEXT, step TEXT NOT NULL,
    chunk_low TEXT, chunk_high TEXT,
    attempt INTEGER, slurm_jobid TEXT, host TEXT, pid INTEGER,
    started TEXT, ended TEXT,     -- ISO 8601 UTC
    exit INTEGER, state TEXT NOT NULL, wall REAL, maxrss_mb REAL,
    digest TEXT                   -- the step's definition digest in its build's manifest
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, sha256 TEXT NOT NULL, job_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS undeclared (
    job_id TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
    action TEXT NOT NULL, archive TEXT NOT NULL, PRIMARY KEY (job_id, path)
);
CREATE INDEX IF NOT EXISTS files_job ON files (job_id);
CREATE INDEX IF NOT EXISTS jobs_build ON jobs (build);
CREATE INDEX IF NOT EXISTS undeclared_path ON undeclared (path);
"""
TABLES = ("jobs", "files", "undeclared")


class CatalogError(Exception):
    """No usable catalog; str() is one line `path: error: what`."""


def catalog_path(workflow_dir: str | Path) -> Path:
    return Path(workflow_dir) / CATALOG


# --- rows --------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRow:
    id: str
    kind: str
    build: str | None
    dataset: str | None
    sub: str
    step: str
    chunk_low: str | None
    chunk_high: str | None
    attempt: int | None
    slurm_jobid: str | None
    host: str | None
    pid: int | None
    started: str | None
    ended: str | None
    exit: int | None
    state: str
    wall: float | None
    maxrss_mb: float | None
    digest: str | None


@dataclass(frozen=True)
class FileRow:
    path: str
    size: int
    sha256: str
    job_id: str


@dataclass(frozen=True)
class JunkRow:
    job_id: str
    path: str
    size: int
    action: str
    archive: str


@dataclass(frozen=True)
class Run:
    """One job as a status file tells it: its Engaged line and the line that closed it
    (None while running, or if it was lost: a later Engaged or Ready superseded it)."""

    engaged: Stat | None
    closing: Stat | None
    lost: bool = False

    @property
    def first(self) -> Stat:
        return self.engaged or self.closing  # type: ignore[return-value]

    @property
    def chunk(self) -> str:
        return self.first.params.get("chunk", "")

    @property
    def claims(self) -> bool:
        """Ran a command and ended with an outcome: the outputs it declares are its own.
        Not a job that died: padocc closed it for it (`by=`, core/attempts.py)."""
        return (
            self.engaged is not None
            and self.closing is not None
            and self.closing.state not in ("Retry", "Cancelled")
            and "by" not in self.closing.params
        )


def runs_of(stats: Iterable[Stat]) -> list[Run]:
    """The jobs in a history. Engagements are keyed by (sub, step, chunk): gate chunks
    of one gate run side by side in one status file."""
    open_: dict[tuple[str, str, str], Stat] = {}
    out: list[Run] = []
    for st in stats:
        if st.state in ("Blocked", "Unblocked"):
            continue
        k = (st.sub, st.step, st.params.get("chunk", ""))
        if st.state == ENGAGED:
            if k in open_:
                out.append(Run(open_.pop(k), None, lost=True))
            open_[k] = st
        elif st.state in ("Ready", "Quarantined"):  # routing records, not job outcomes
            if k in open_:
                out.append(Run(open_.pop(k), None, lost=True))
        elif k in open_:
            out.append(Run(open_.pop(k), st))
        elif "exit" in st.params and "attempt" in st.params:
            out.append(Run(None, st))  # the wrapper recorded an outcome without running it
    out.extend(Run(e, None) for e in open_.values())
    return out


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except ValueError:
        return None


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None


def iso_us(ts: str | None) -> str | None:
    """A STAT stamp as ISO 8601 UTC, to the microsecond."""
    return parse_stamp(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if ts else None


def job_row(run: Run, ident: str, kind: str, digest_of: Callable[[str | None, str], str | None]) -> JobRow:
    e, c, first = run.engaged, run.closing, run.first
    p = {**(e.params if e else {}), **(c.params if c else {})}
    build = (e.params.get("build") if e else None) or (c.params.get("build") if c else None)
    dataset = ident if kind == "step" else (ident.partition("@")[2] or None)
    chunk = run.chunk
    return JobRow(
        id=":".join(x for x in (ident, first.step, chunk, first.ts) if x),
        kind=kind,
        build=build or None,
        dataset=dataset,
        sub=first.sub,
        step=first.step,
        chunk_low=p.get("low") if chunk else None,
        chunk_high=p.get("high") if chunk else None,
        attempt=_int(p.get("attempt")),
        slurm_jobid=p.get("slurm_jobid") or None,
        host=p.get("host") or None,
        pid=_int(p.get("pid")),
        started=iso_us(e.ts) if e else None,
        ended=iso_us(c.ts) if c else None,
        exit=_int(p.get("exit")) if c else None,
        state=c.state if c else ("Lost" if run.lost else ENGAGED),
        wall=_float(p.get("wall")) if c else None,
        maxrss_mb=_float(p.get("maxrss_mb")) if c else None,
        digest=digest_of(build, first.step) if kind == "step" else None,
    )


# --- what the builds said ----------------------------------------------------------


class Builds:
    """Manifests and dataset facets of the builds jobs ran under, loaded once each.
    `bulk` (a rebuild) reads each datasets.tsv whole; a job looks up its one row."""

    def __init__(self, root: Path, current: dict, bulk: bool = False):
        self.root, self.current, self.bulk = root, current, bulk
        self._m: dict[str, dict | None] = {current["build"]: current}
        self._tsv: dict[str, dict[str, dict]] = {}

    def build_dir(self, build: str) -> Path:
        return self.root / ".padocc" / "builds" / build

    def manifest(self, build: str | None) -> dict | None:
        if not build:
            return None
        if build not in self._m:
            try:
                self._m[build] = load_manifest(str(self.build_dir(build) / "manifest.json"))
            except (OSError, ValueError):
                self._m[build] = None  # removed by clean-up, or unreadable
        return self._m[build]

    def digest(self, build: str | None, step: str) -> str | None:
        """The step's digest in the job's own build: no fallback, or staleness would hide."""
        m = self.manifest(build)
        return (m or {}).get("steps", {}).get(step, {}).get("digest")

    def step(self, build: str | None, step: str) -> dict | None:
        """The step as its build defined it (its outputs), else as the current build does."""
        for m in (self.manifest(build), self.current):
            if m and step in m.get("steps", {}):
                return m["steps"][step]
        return None

    def facets(self, build: str | None, ds: str) -> dict:
        for b in (build, self.current["build"]):
            if b and self.manifest(b) is not None:
                row = self._facets_in(b, ds)
                if row is not None:
                    return row
        return {}

    def _facets_in(self, build: str, ds: str) -> dict | None:
        tsv = self.build_dir(build) / "datasets.tsv"
        if not self.bulk:
            prefix = ds + "\t"
            with contextlib.suppress(OSError), open(tsv, encoding="utf-8") as f:
                for line in f:
                    if line.startswith(prefix):
                        return json.loads(line.rstrip("\n").split("\t", 2)[2])
            return None
        if build not in self._tsv:
            rows: dict[str, dict] = {}
            with contextlib.suppress(OSError), open(tsv, encoding="utf-8") as f:
                for line in f:
                    d, _, facets = line.rstrip("\n").split("\t", 2)
                    rows[d] = json.loads(facets)
            self._tsv[build] = rows
        return self._tsv[build].get(ds)


def template_values(m: dict, facets: dict, dataset: str, step: str, attempt: object, workdir: Path) -> dict:
    """What an outputs/temp template may name: as the wrapper fills a command."""
    return {
        **facets, "dataset": dataset, "workdir": str(workdir), "attempt": str(attempt),
        "step": step, "python": m.get("python", ""), "workflow_dir": m["workflow"]["dir"],
    }  # fmt: skip


def rel_to(root: Path, path: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def step_outputs(builds: Builds, row: JobRow, workdir: Path) -> list[str]:
    """The files (relative to workdir) a step job's declared outputs name on disk now."""
    step = builds.step(row.build, row.step)
    if step is None or row.dataset is None or not step.get("outputs"):
        return []
    m = builds.manifest(row.build) or builds.current
    values = template_values(
        m, builds.facets(row.build, row.dataset), row.dataset, row.step, row.attempt or 1, workdir
    )
    pats = wfiles.fill_all(step.get("outputs", []), values, step.get("source", ""), "outputs")
    return sorted(wfiles.matched(workdir, pats))


def hashed(root: Path, workdir: Path, names: Iterable[str], job_id: str) -> list[FileRow]:
    out = []
    for n in names:
        try:
            size, sha = wfiles.sha256_of(workdir / n)
        except OSError:
            continue  # a dangling link, or gone meanwhile
        out.append(FileRow(rel_to(root, workdir / n), size, sha, job_id))
    return out


def gate_marker(root: Path, gate: str, key: str, runs: list[Run], rows: list[JobRow], chunk: str) -> list[FileRow]:
    """The chunk's marker file, made by the chunk's latest Pass."""
    from compiler.render.coverage import marker_path

    passes = [
        (r.closing.ts, row)
        for r, row in zip(runs, rows, strict=True)
        if r.chunk == chunk and r.claims and r.closing and r.closing.state == "Pass"
    ]
    if not passes:
        return []
    job = max(passes, key=lambda t: t[0])[1]
    marker = root / marker_path(gate, chunk, key)
    return hashed(root, marker.parent, [marker.name], job.id) if marker.exists() else []


def junk_rows(root: Path, workdir: Path, dataset: str) -> list[JunkRow]:
    return [
        JunkRow(":".join((dataset, step, ts)), rel_to(root, workdir / j.path), j.size, j.action,
                rel_to(root, workdir / j.archive))
        for step, ts, _attempt, j in wfiles.junk_records(workdir)
    ]  # fmt: skip


def junk_row(root: Path, workdir: Path, job_id: str, j: wfiles.Junk) -> JunkRow:
    return JunkRow(job_id, rel_to(root, workdir / j.path), j.size, j.action, rel_to(root, workdir / j.archive))


# --- writing -----------------------------------------------------------------------


def _busy(e: sqlite3.OperationalError) -> bool:
    msg = str(e).lower()
    return "locked" in msg or "busy" in msg


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    # The rollback journal: WAL keeps its index in shared memory, which NFS and
    # Lustre do not share between nodes. Set every time: a copy made elsewhere may be WAL.
    if con.execute("PRAGMA journal_mode").fetchone()[0].lower() not in ("delete", "truncate"):
        con.execute("PRAGMA journal_mode = DELETE")
    return con


def _check_schema(con: sqlite3.Connection, path: Path) -> None:
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            con.execute(stmt)
    row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if row is None:
        con.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
    elif row[0] != SCHEMA_VERSION:
        raise CatalogError(
            f"{path}: error: catalog schema {row[0]} is not {SCHEMA_VERSION}; run `padocc catalog rebuild`"
        )


def _transact(path: Path, fn: Callable[[sqlite3.Connection], None]) -> None:
    """One short write transaction, retried with jittered back-off while the database
    is locked by another job (beyond what the busy timeout already waits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    delay = 0.1
    for attempt in range(1, TRIES + 1):
        con = None
        try:
            con = _connect(path)
            con.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
            _check_schema(con, path)
            fn(con)
            con.execute("COMMIT")
            return
        except sqlite3.OperationalError as e:
            if not _busy(e) or attempt == TRIES:
                raise
        finally:
            if con is not None:
                if con.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        con.execute("ROLLBACK")
                con.close()
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, 3.0)


def _insert(con: sqlite3.Connection, table: str, rows: Iterable) -> None:
    rows = list(rows)
    if not rows:
        return
    # Rows hold plain values only: a shallow tuple (astuple deep-copies each field).
    names = [f.name for f in fields(rows[0])]  # every row type has several fields
    get = operator.attrgetter(*names)
    marks = ",".join("?" * len(names))
    con.executemany(f"INSERT OR REPLACE INTO {table} VALUES ({marks})", [get(r) for r in rows])


def record(
    workflow_dir: str | Path,
    jobs: Iterable[JobRow] = (),
    files: Iterable[FileRow] = (),
    junk: Iterable[JunkRow] = (),
    forget: Iterable[str] = (),
) -> None:
    """Write one job's rows in one transaction. Raises sqlite3.Error or CatalogError;
    the hooks turn that into a warning."""
    record_many(workflow_dir, [{"jobs": jobs, "files": files, "junk": junk, "forget": forget}])


def record_many(workflow_dir: str | Path, batches: list[dict]) -> None:
    """Several `record` calls, in order, in one transaction (a job of several steps or
    datasets commits once, not once a step)."""
    batches = [{k: list(v) for k, v in b.items()} for b in batches]
    # A job's steps each rewrite their dataset's job rows: only the last copy counts.
    last = {r.id: i for i, b in enumerate(batches) for r in b.get("jobs", ())}
    for i, b in enumerate(batches):
        if "jobs" in b:
            b["jobs"] = [r for r in b["jobs"] if last[r.id] == i]

    def write(con: sqlite3.Connection) -> None:
        for b in batches:
            _insert(con, "jobs", b.get("jobs", ()))
            if b.get("forget"):
                con.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in b["forget"]])
            _insert(con, "files", b.get("files", ()))
            _insert(con, "undeclared", b.get("junk", ()))

    _transact(catalog_path(workflow_dir), write)


# --- rebuilding --------------------------------------------------------------------


@dataclass(frozen=True)
class Rebuilt:
    jobs: int
    files: int
    undeclared: int
    warnings: tuple[str, ...]


def collect(workflow_dir: str | Path) -> tuple[list[JobRow], list[FileRow], list[JunkRow], list[str]]:
    """Every row, from the status files and the files on disk now. Raises CompileError
    when there is no compiled workflow."""
    from compiler.render.coverage import GATE_STATUS_DIR
    from compiler.render.manifest import current_manifest

    m = current_manifest(workflow_dir)
    wf = m["workflow"]
    root = Path(wf["dir"])
    builds = Builds(root, m, bulk=True)
    status_dir, work_dir = Path(wf["status_dir"]), Path(wf["work_dir"])
    jobs: list[JobRow] = []
    files: list[FileRow] = []
    junk: list[JunkRow] = []
    warnings: list[str] = []
    for sf in sorted(status_dir.glob("*.status")):
        ds = sf.name[: -len(".status")]
        h = read_history(sf)
        warnings += h.warnings
        runs = runs_of(h.stats)
        rows = [job_row(r, ds, "step", builds.digest) for r in runs]
        jobs += rows
        workdir = work_dir / ds
        owner: dict[str, str] = {}
        claims = sorted(((r.closing.ts, row) for r, row in zip(runs, rows, strict=True) if r.claims),
                        key=lambda t: t[0])  # fmt: skip
        for _, row in claims:  # the latest job that declared a path made it
            owner.update(dict.fromkeys(step_outputs(builds, row, workdir), row.id))
        for name in sorted(owner):
            files += hashed(root, workdir, [name], owner[name])
        junk += junk_rows(root, workdir, ds)
    for sf in sorted((status_dir / GATE_STATUS_DIR).glob("*.status")):
        ident = sf.name[: -len(".status")]
        gate, _, key = ident.partition("@")
        h = read_history(sf)
        warnings += h.warnings
        runs = runs_of(h.stats)
        rows = [job_row(r, ident, "gate", builds.digest) for r in runs]
        jobs += rows
        for chunk in sorted({r.chunk for r in runs if r.chunk}):
            files += gate_marker(root, gate, key, runs, rows, chunk)
    return jobs, files, junk, warnings


def rebuild(workflow_dir: str | Path) -> Rebuilt:
    """Replace the catalog's rows with what the status files and the disk say, in one
    transaction (jobs ending meanwhile wait for it). A damaged catalog file is
    replaced. Raises CompileError (no compiled workflow) or sqlite3.Error."""
    from compiler.render.manifest import current_manifest

    jobs, files, junk, warnings = collect(workflow_dir)
    path = catalog_path(current_manifest(workflow_dir)["workflow"]["dir"])

    def write(con: sqlite3.Connection) -> None:
        for t in TABLES:
            con.execute(f"DELETE FROM {t}")
        _insert(con, "jobs", jobs)
        _insert(con, "files", files)
        _insert(con, "undeclared", junk)

    try:
        _transact(path, write)
    except (sqlite3.DatabaseError, CatalogError) as e:
        if isinstance(e, sqlite3.OperationalError) and _busy(e):
            raise
        for p in (path, path.with_name(path.name + "-journal")):  # not a database: start anew
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        _transact(path, write)
    return Rebuilt(len(jobs), len(files), len(junk), tuple(warnings))


# --- reading -----------------------------------------------------------------------


@contextlib.contextmanager
def reading(workflow_dir: str | Path) -> Iterator[sqlite3.Connection]:
    """A connection for queries. Raises CatalogError when there is none."""
    path = catalog_path(workflow_dir)
    if not path.exists():
        raise CatalogError(
            f"{path}: error: no catalog yet (jobs write it as they end; "
            "`padocc catalog rebuild` makes it from the status files)"
        )
    try:
        con = _connect(path)
        con.row_factory = sqlite3.Row
        row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.DatabaseError as e:
        raise CatalogError(f"{path}: error: unreadable catalog ({e}); run `padocc catalog rebuild`") from None
    if row is None or row[0] != SCHEMA_VERSION:
        con.close()
        raise CatalogError(f"{path}: error: catalog schema is not {SCHEMA_VERSION}; run `padocc catalog rebuild`")
    try:
        yield con
    finally:
        con.close()


def table_rows(workflow_dir: str | Path) -> dict[str, list[tuple]]:
    """Every table's rows, sorted: what a rebuild must reproduce."""
    with reading(workflow_dir) as con:
        return {t: sorted(tuple(r) for r in con.execute(f"SELECT * FROM {t}")) for t in TABLES}


JOB_COLUMNS = tuple(f.name for f in fields(JobRow))
