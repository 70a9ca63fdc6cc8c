"""`padocc catalog ACTION`: the provenance catalog (.padocc/catalog.sqlite).

    rebuild [WF]                      make it again from the status files and the disk
    what-made PATH [-C WF]            the job that made a file; is the file as it made it?
    produced BUILD|--latest [-C WF]   what a run (a build) produced
    stale [-C WF]                     outputs made by a step version that has changed since

Exit status: 0; 1 when the answer is "nothing" (a file the catalog does not know, a
build with no jobs); 2 for a request that makes no sense (no catalog, no build).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from compiler.core.diagnostics import CompileError
from compiler.core.words import plural
from compiler.runtime import catalog
from compiler.runtime import workfiles as wfiles
from compiler.runtime.survey import human_seconds, text_table, write_or_quit

ACTIONS = ("rebuild", "what-made", "produced", "stale")
DIGESTED = ("command", "inputs", "outputs", "states")  # what a step digest covers


@dataclass(frozen=True)
class CatalogOptions:
    action: str
    workflow_dir: str = "."
    path: str = ""  # what-made
    build: str = ""  # produced
    latest: bool = False  # produced
    format: str = "table"  # table | json


def run(opts: CatalogOptions) -> int:
    if opts.action != "rebuild" and opts.workflow_dir == ".":
        opts = replace(opts, workflow_dir=_find_workflow(Path.cwd()))
    try:
        if opts.action == "rebuild":
            return _rebuild(opts)
        if opts.action == "what-made":
            return _what_made(opts)
        if opts.action == "produced":
            return _produced(opts)
        return _stale(opts)
    except CompileError as e:
        for d in e.diagnostics:
            print(d, file=sys.stderr)
        return 2
    except catalog.CatalogError as e:
        print(e, file=sys.stderr)
        return 2
    except sqlite3.Error as e:
        print(f"{catalog.catalog_path(opts.workflow_dir)}: error: {e}", file=sys.stderr)
        return 2


def _find_workflow(here: Path) -> str:
    """Without -C: the nearest directory up from here that has a catalog (a query is
    often asked from inside a dataset's work dir)."""
    for d in (here, *here.parents):
        if catalog.catalog_path(d).exists():
            return str(d)
    return "."


def _emit(opts: CatalogOptions, data: object, text: str) -> None:
    write_or_quit(sys.stdout, json.dumps(data, indent=1) + "\n" if opts.format == "json" else text)


def _rebuild(opts: CatalogOptions) -> int:
    r = catalog.rebuild(opts.workflow_dir)
    for w in r.warnings:
        print(f"warning: {w}", file=sys.stderr)
    _emit(opts, {"jobs": r.jobs, "files": r.files, "undeclared": r.undeclared},
          f"{catalog.catalog_path(opts.workflow_dir)}: {plural(r.jobs, 'job')}, {plural(r.files, 'file')}, "
          f"{plural(r.undeclared, 'undeclared file')}, from the status files and the disk\n")  # fmt: skip
    return 0


def _rel_path(path: str, root: Path) -> str:
    """PATH as the catalog keys it: relative to the workflow dir. A path that exists
    from here is taken from here; any other is taken as relative to the workflow."""
    p = Path(path)
    if not (p.is_absolute() or p.exists() or p.is_symlink()):
        return Path(os.path.normpath(path)).as_posix()
    rel = catalog.rel_to(root, Path(os.path.abspath(p)))
    if rel.startswith("../"):  # one of them reached through a symbolic link
        rel = catalog.rel_to(root.resolve(), p.parent.resolve() / p.name)
    return rel


def _disk(root: Path, path: str, sha: str) -> tuple[str, str | None]:
    """(verdict, sha256 on disk) of a catalogued file."""
    try:
        _, now = wfiles.sha256_of(root / path)
    except FileNotFoundError:
        return "the file is gone", None
    except OSError as e:
        return f"unreadable now ({e.strerror})", None
    return ("the file is as the job left it" if now == sha else "the file CHANGED since"), now


def _job_text(j: dict) -> list[str]:
    what = f"{j['dataset'] or '-'} {j['step']}"
    if j["kind"] == "gate":
        what = f"gate {j['sub']} chunk [{j['chunk_low']}, {j['chunk_high']})" + (
            f" of {j['dataset']}" if j["dataset"] else "")
    slurm = j["slurm_jobid"] or "-"
    return [
        f"  made by   {what}, attempt {j['attempt'] or '-'}: {j['state']} (exit {j['exit']})",
        f"  job       {j['id']}",
        f"  build     {j['build'] or '-'}",
        f"  host      {j['host'] or '-'}  pid {j['pid'] or '-'}  SLURM job {slurm}",
        f"  started   {j['started'] or '-'}  ended {j['ended'] or '-'}  "
        f"wall {human_seconds(j['wall'])}  peak {j['maxrss_mb'] if j['maxrss_mb'] is not None else '-'} MB",
    ]


def _what_made(opts: CatalogOptions) -> int:
    root = Path(os.path.abspath(opts.workflow_dir))
    rel = _rel_path(opts.path, root)
    with catalog.reading(opts.workflow_dir) as con:
        f = con.execute("SELECT * FROM files WHERE path = ?", (rel,)).fetchone()
        job = f and con.execute("SELECT * FROM jobs WHERE id = ?", (f["job_id"],)).fetchone()
        junk = con.execute(
            "SELECT u.*, j.dataset, j.step, j.attempt FROM undeclared u LEFT JOIN jobs j ON j.id = u.job_id"
            " WHERE u.path = ? ORDER BY u.job_id", (rel,)).fetchall()  # fmt: skip
    if f is None:
        if not junk:
            print(f"padocc catalog: {rel} is not in the catalog: no job declared it", file=sys.stderr)
            return 1
        lines = [f"{rel}: not a declared output; left undeclared by"]
        lines += [f"  {u['dataset'] or '-'} {u['step'] or u['job_id']} attempt {u['attempt'] or '-'}: "
                  + (f"packed into {u['archive']}" if u["action"] == "tar" else f"removed (listed in {u['archive']})")
                  for u in junk]  # fmt: skip
        _emit(opts, {"path": rel, "undeclared": [dict(u) for u in junk]}, "\n".join(lines) + "\n")
        return 0
    verdict, now = _disk(root, rel, f["sha256"])
    j = dict(job) if job else None
    lines = [f"{rel}"]
    lines += _job_text(j) if j else [f"  made by   job {f['job_id']} (no longer in the catalog)"]
    lines.append(f"  sha256    {f['sha256']}  {f['size']} bytes: {verdict}")
    if now and now != f["sha256"]:
        lines.append(f"  now       {now}")
    _emit(opts, {"path": rel, "size": f["size"], "sha256": f["sha256"], "sha256_now": now,
                 "verdict": verdict, "job": j}, "\n".join(lines) + "\n")  # fmt: skip
    return 0


def _produced(opts: CatalogOptions) -> int:
    if bool(opts.build) == opts.latest:
        print("padocc catalog produced: error: give either a BUILD or --latest", file=sys.stderr)
        return 2
    with catalog.reading(opts.workflow_dir) as con:
        build = opts.build
        if opts.latest:
            row = con.execute(
                "SELECT build FROM jobs WHERE build IS NOT NULL GROUP BY build"
                " ORDER BY max(coalesce(ended, started)) DESC LIMIT 1").fetchone()  # fmt: skip
            if row is None:
                print("padocc catalog: no jobs in the catalog yet", file=sys.stderr)
                return 1
            build = row[0]
        states = con.execute(
            "SELECT state, count(*) FROM jobs WHERE build = ? GROUP BY state ORDER BY state", (build,)
        ).fetchall()
        files = [dict(r) for r in con.execute(
            "SELECT f.path, f.size, f.sha256, j.dataset, j.step, j.attempt, j.state, j.ended FROM files f"
            " JOIN jobs j ON j.id = f.job_id WHERE j.build = ? ORDER BY f.path", (build,))]  # fmt: skip
    if not states:
        print(f"padocc catalog: no jobs of build {build} in the catalog", file=sys.stderr)
        return 1
    counts = ", ".join(f"{n} {s}" for s, n in states)
    head = (f"build {build}: {plural(sum(n for _, n in states), 'job')} ({counts}); "
            f"{plural(len(files), 'file')} it made {'is' if len(files) == 1 else 'are'} current\n")  # fmt: skip
    table = text_table(("path", "bytes", "sha256", "dataset", "step", "attempt", "state"),
                       [(f["path"], f["size"], f["sha256"][:16], f["dataset"], f["step"], f["attempt"],
                         f["state"]) for f in files], right=(1, 5)) if files else ""  # fmt: skip
    _emit(opts, {"build": build, "jobs": dict(states), "files": files}, head + table)
    return 0


def _stale(opts: CatalogOptions) -> int:
    from compiler.render.manifest import current_manifest

    m = current_manifest(opts.workflow_dir)
    builds = catalog.Builds(Path(m["workflow"]["dir"]), m)
    with catalog.reading(opts.workflow_dir) as con:
        rows = [dict(r) for r in con.execute(
            "SELECT f.path, j.dataset, j.step, j.build, j.digest FROM files f JOIN jobs j ON j.id = f.job_id"
            " WHERE j.kind = 'step' ORDER BY f.path")]  # fmt: skip
    stale, unknown = [], 0
    for r in rows:
        now = m["steps"].get(r["step"])
        if r["digest"] is None:
            unknown += 1
        elif now is None:
            stale.append({**r, "changed": "step removed"})
        elif now.get("digest") != r["digest"]:
            stale.append({**r, "changed": _what_changed(builds, r["build"], r["step"], now)})
    text = (text_table(("path", "dataset", "step", "build", "changed"),
                       [(s["path"], s["dataset"], s["step"], s["build"], s["changed"]) for s in stale])
            if stale else "no stale outputs: every catalogued output came from its step's current version\n")  # fmt: skip
    if unknown:
        text += f"({plural(unknown, 'output')} from builds whose manifest is gone or has no step digests {'was' if unknown == 1 else 'were'} not checked)\n"
    _emit(opts, {"build": m["build"], "stale": stale, "unchecked": unknown}, text)
    return 0


def _what_changed(builds: catalog.Builds, build: str | None, step: str, now: dict) -> str:
    old = (builds.manifest(build) or {}).get("steps", {}).get(step)
    if old is None:
        return "definition"
    return ", ".join(k for k in DIGESTED if old.get(k) != now.get(k)) or "definition"
