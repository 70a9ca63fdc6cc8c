"""What the job wrappers do around a job for provenance (issue 9, items 2, 4 and 5):

- before the command: snapshot the work dir (names, mtimes, sizes), unless the
  workflow keeps undeclared files anyway;
- after the step's final STAT line: pack or remove the files the job made or changed
  that no step declares (`undeclared: tar|remove`), hash the step's declared outputs,
  and write the job and its files into the catalog;
- when the dataset's route has ended: remove every step's `temp:` files.

Nothing here may fail a job or touch its STAT lines (written before these hooks run):
each problem is one `padocc: warning:` line in the job log (the wrapper's stderr).
The status files stay whole and `padocc catalog rebuild` restores the catalog.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from compiler.core.statusfile import ENGAGED, parse_stamp, read_history, stats_naming
from compiler.core.words import plural
from compiler.runtime import catalog
from compiler.runtime import workfiles as wfiles
from compiler.runtime.build import manifest

# "off": no live catalog writes (say, a filesystem whose locks cannot be trusted);
# `padocc catalog rebuild` then makes the catalog from the status files when wanted.
CATALOG_ENV = "PADOCC_CATALOG"

_SNAPSHOTS: dict[tuple[str, str], wfiles.Snapshot] = {}
_NAMES_SHOWN = 20


def _say(message: str) -> None:
    print(f"padocc: {message}", file=sys.stderr, flush=True)


def _names(names: list[str]) -> str:
    more = len(names) - _NAMES_SHOWN
    return ", ".join(names[:_NAMES_SHOWN]) + (f" and {more} more" if more > 0 else "")


def _files(n: int) -> str:
    return plural(n, "undeclared file")


# Rows waiting while a job wrapper batches them (see `batched`); a stack, innermost last.
_BATCHES: list[list[tuple[Path, dict]]] = []


def _write(root: Path, **rows) -> None:
    if os.environ.get(CATALOG_ENV, "").lower() in ("off", "0", "no", "false"):
        return
    if _BATCHES:
        _BATCHES[-1].append((root, rows))
        return
    _commit(root, [rows])


def _commit(root: Path, batches: list[dict]) -> None:
    try:
        catalog.record_many(root, batches)
    except Exception as e:  # a catalog is an index: never worth a failed job
        _say(f"warning: catalog not updated ({e}); the status file has the record, "
             "`padocc catalog rebuild` restores the catalog")  # fmt: skip


@contextlib.contextmanager
def batched() -> Iterator[None]:
    """Catalog rows of everything inside, written in one transaction at the end (also
    when it ends by an exception). A job killed before then leaves its rows out of the
    catalog, never out of the status files: `padocc catalog rebuild` brings them back."""
    _BATCHES.append([])
    try:
        yield
    finally:
        rows = _BATCHES.pop()
        by_root: dict[Path, list[dict]] = {}
        for root, r in rows:
            by_root.setdefault(root, []).append(r)
        for root, batches in by_root.items():
            _commit(root, batches)


def _status(m: dict, dataset: str) -> Path:
    return Path(m["workflow"]["status_dir"]) / f"{dataset}.status"


def before_command(req, step_name: str, workdir: Path) -> None:
    """The work dir as it was before the command (and before earlier attempts of it)."""
    try:
        m = manifest(req.build_dir)
        if m["workflow"].get("undeclared", "keep") == "keep":
            return
        files, dirs = wfiles.scan(workdir)
        # Files the failed attempts of this step left count as this attempt's too.
        t0 = _first_attempt_ns(_status(m, req.dataset), step_name)
        if t0 is not None:
            files = {p: sig for p, sig in files.items() if sig[0] < t0}
        _SNAPSHOTS[(req.dataset, step_name)] = (files, dirs)
    except Exception as e:
        _say(f"warning: no snapshot of {workdir} before {step_name} ({e}); "
             "files this job leaves undeclared are kept")  # fmt: skip


def _first_attempt_ns(status: Path, step: str) -> int | None:
    """When the first of this step's current series of attempts was engaged; None
    when this is the first attempt (the attempt is read from the status file, as the
    wrapper counts it, not from Snakemake's)."""
    engaged = []
    for st in reversed(read_history(status).stats):
        if st.step != step or st.state not in (ENGAGED, "Retry"):
            break
        if st.state == ENGAGED:
            engaged.append(st.ts)
    return int(parse_stamp(engaged[-1]).timestamp() * 1e9) if len(engaged) > 1 else None


def after_step(req, step_name: str, stats: list, heal: bool) -> None:
    """Right after a step's final STAT line (`stats`: the history ending with it):
    undeclared files, outputs, catalog rows. `heal`: rows for every job in the history
    (one killed before its commit included), else only this step's."""
    snap = _SNAPSHOTS.pop((req.dataset, step_name), None)
    try:
        m = manifest(req.build_dir)
        root = Path(m["workflow"]["dir"])
        workdir = Path(m["workflow"]["work_dir"]) / req.dataset
        builds = catalog.Builds(root, m)
        runs = catalog.runs_of(stats)
        if not heal:
            runs = [r for r in runs if r.first.step == step_name][-1:]
        rows = [catalog.job_row(r, req.dataset, "step", builds.digest) for r in runs]
        mine = [(r, row) for r, row in zip(runs, rows, strict=True)
                if r.first.step == step_name and r.closing is not None]  # fmt: skip
    except Exception as e:
        _say(f"warning: catalog not updated ({e}); `padocc catalog rebuild` restores it")
        return
    if not mine:
        _write(root, jobs=rows)
        return
    run, job = mine[-1]
    junk: list[catalog.JunkRow] = []
    if snap is not None and run.engaged is not None:
        try:
            junk = _undeclared(m, builds, workdir, req.dataset, job, run.engaged.ts, snap)
        except Exception as e:
            _say(f"warning: undeclared files of {step_name} left in place ({e})")
    files: list[catalog.FileRow] = []
    if run.claims:
        try:
            files = catalog.hashed(
                root, workdir, catalog.step_outputs(builds, job, workdir), job.id
            )
        except Exception as e:
            _say(f"warning: outputs of {step_name} not hashed ({e})")
    _write(root, jobs=rows, files=files, junk=junk)


def _undeclared(m: dict, builds: catalog.Builds, workdir: Path, dataset: str, job: catalog.JobRow,
                engaged_ts: str, snap: wfiles.Snapshot) -> list[catalog.JunkRow]:  # fmt: skip
    mode = m["workflow"].get("undeclared", "keep")
    after = wfiles.scan(workdir)
    changed = wfiles.changed_since(snap, after)
    if mode == "keep" or not changed:
        return []
    facets = builds.facets(m["build"], dataset)
    attempt = job.attempt or 1
    declared: set[str] = set()
    for name, st in m["steps"].items():  # any step's outputs, temp files and inputs
        values = catalog.template_values(m, facets, dataset, name, attempt, workdir)
        pats = [*st.get("outputs", []), *st.get("temp", []), *st.get("inputs", [])]
        declared |= wfiles.matched(
            workdir, wfiles.fill_all(pats, values, st.get("source", ""), "files")
        )
    left = [p for p in changed if p not in declared]
    if not left:
        return []
    stem = wfiles.junk_stem(job.step, engaged_ts, attempt)
    junk = wfiles.dispose(workdir, left, mode, stem, after[1] - snap[1])
    archive = junk[0].archive
    if mode == "tar":
        _say(f"{_files(len(left))} packed into {archive} and removed: {_names(left)}")
    else:
        _say(f"{_files(len(left))} removed (listed in {archive}): {_names(left)}")
    return [catalog.junk_row(builds.root, workdir, job.id, j) for j in junk]


def route_ended(m: dict, dataset: str) -> None:
    """The dataset's route has ended (its final root STAT line is written): no later
    step needs its temp files now."""
    try:
        root = Path(m["workflow"]["dir"])
        workdir = Path(m["workflow"]["work_dir"]) / dataset
        if not any(st.get("temp") for st in m["steps"].values()) or not workdir.is_dir():
            return
        facets = catalog.Builds(root, m).facets(m["build"], dataset)
        pats = []
        for name, st in m["steps"].items():
            values = catalog.template_values(m, facets, dataset, name, 1, workdir)
            pats += wfiles.fill_all(st.get("temp", []), values, st.get("source", ""), "temp")
        removed = wfiles.remove_temp(workdir, pats)
    except Exception as e:
        _say(f"warning: temp files of {dataset} not removed ({e})")
        return
    if removed:
        n = len(removed)
        _say(f"{dataset} has ended: removed {plural(n, 'temp file')}: {_names(removed)}")
        _write(root, forget=[catalog.rel_to(root, workdir / r) for r in removed])


def after_chunk(req) -> None:
    """After a gate chunk's outcome (and its marker, on Pass): its job rows, and the
    marker as the file it made."""
    try:
        m = manifest(req.build_dir)
        root = Path(m["workflow"]["dir"])
        from compiler.render.coverage import gate_status_path  # chunkrun has it loaded

        status = gate_status_path(m["workflow"]["status_dir"], req.gate, req.key)
        ident = status.name[: -len(".status")]
        chunk = f"{req.low}__{req.high}"
        # Only this chunk's lines: runs are keyed by chunk, so the others change nothing.
        runs = [
            r for r in catalog.runs_of(stats_naming(status, "chunk", chunk)) if r.chunk == chunk
        ]
        rows = [catalog.job_row(r, ident, "gate", lambda build, step: None) for r in runs]
        files = catalog.gate_marker(root, req.gate, req.key, runs, rows, chunk)
    except Exception as e:
        _say(f"warning: catalog not updated ({e}); `padocc catalog rebuild` restores it")
        return
    _write(root, jobs=rows, files=files)
