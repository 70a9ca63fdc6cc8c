"""`padocc cycle --conf shepard.yaml`: one hourly cycle of SHEPARD's flock automation.

Lock (never wait) -> scan the flock -> compile with at most batch_limit jobs picked
at random (seed logged) among the datasets no live run holds -> run Snakemake on that
build's own Snakefile -> move finished groups to complete_dir. A cycle that finds the
lock held still compiles and runs what no live run holds; the group moves are left
to the lock's holder.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import random
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from compiler.commands import compile as compile_cmd
from compiler.core.buildlock import group_moves, make_moves_lock
from compiler.core.diagnostics import CompileError, Loc, fail, one_line
from compiler.core.routing import padocc_alive
from compiler.core.safeio import open_regular, read_regular
from compiler.core.statusfile import position_of, read_history
from compiler.core.testpause import pause_at
from compiler.core.words import plural
from compiler.load import schema as S
from compiler.load.profile import executor_of
from compiler.load.yamlpos import load_yaml
from compiler.model.axes import parse_time
from compiler.model.chunks import MAX_WANT_CHUNKS
from compiler.model.notify import resolve_notify
from compiler.model.resolve import MAX_CYCLE_DATASETS, Overrides, bounded_key
from compiler.model.types import Notify
from compiler.render.assets import asset_dir
from compiler.render.plan import Selection
from compiler.runtime.held import Held
from compiler.runtime.leases import Lease
from compiler.runtime.notify import notify_after
from compiler.runtime.snakemake_run import (
    cannot_run,
    failed_because,
    profile_dir,
    run_snakemake,
)


@dataclass(frozen=True)
class CycleOptions:
    conf: str
    autolog: bool = False
    dry_run: bool = False
    seed: int | None = None
    now: str | None = None
    quiet: bool = False  # hold the output back unless the cycle fails or warns (cron)


@dataclass(frozen=True)
class CycleConfig:
    source_venv: str
    batch_limit: int
    flock_dir: str
    complete_dir: str
    common_valid: str
    workflow: str
    profile: str
    log_dir: str
    status_dir: str
    max_repeats: int
    snakemake_timeout: int
    notify: Notify | None = None  # wins over the workflow's
    max_datasets_per_cycle: int | None = None  # None: the workflow's
    max_chunks_per_cycle: int | None = None


def load_config(path: str) -> CycleConfig:
    doc = load_yaml(Path(path), path)
    if doc is None:
        raise fail(Loc(path), "cycle config is empty")
    doc = S.check(doc, S.CYCLE, Loc(path, 1, 1))
    base = Path(path).resolve().parent

    def p(key: str, must_exist: bool = True, kind: str = "dir") -> str:
        """A path the config names, checked now for what the cycle will do with it:
        a directory it reads or writes into, or a file it reads."""
        if key not in doc:
            return ""
        full = (base / doc[key]).resolve()
        if must_exist and not full.exists():
            raise fail(doc.val_loc(key), f"{key} '{doc[key]}' does not exist")
        if kind == "dir" and full.exists() and not full.is_dir():
            raise fail(doc.val_loc(key), f"{key} '{doc[key]}' is not a directory")
        if kind == "file" and full.exists() and not full.is_file():
            raise fail(doc.val_loc(key), f"{key} '{doc[key]}' is not a regular file")
        return str(full)

    batch_limit = doc.get("batch_limit", SHEPARD_BATCH_LIMIT)
    if batch_limit < 1:
        raise fail(doc.val_loc("batch_limit"), "batch_limit must be at least 1")
    if batch_limit > MAX_BATCH:
        raise fail(doc.val_loc("batch_limit"), f"batch_limit must be at most {MAX_BATCH:,}")
    if doc.get("obliterate_quarantine"):
        # SHEPARD's true deletes quarantined projects; ignoring it would keep what the
        # user asked to delete, so its meaning is refused instead.
        raise fail(
            doc.val_loc("obliterate_quarantine"),
            "obliterate_quarantine: true is not supported: SHEPARD deletes quarantined "
            "projects, padocc keeps a quarantined dataset for padocc requeue; remove the "
            "key or set it to false",
        )
    repeats = doc.get("max_repeats", 5)
    if not 1 <= repeats <= 100:
        raise fail(doc.val_loc("max_repeats"), "max_repeats must be between 1 and 100")
    timeout = doc.get("snakemake_timeout", 3300)
    if not 1 <= timeout <= MAX_TIMEOUT_S:
        raise fail(
            doc.val_loc("snakemake_timeout"),
            f"snakemake_timeout must be between 1 and {MAX_TIMEOUT_S} seconds",
        )
    bounds = {
        "max_datasets_per_cycle": bounded_key(
            doc, "max_datasets_per_cycle", None, MAX_CYCLE_DATASETS
        ),
        "max_chunks_per_cycle": bounded_key(doc, "max_chunks_per_cycle", None, MAX_WANT_CHUNKS),
    }
    return CycleConfig(
        source_venv=p("source_venv"),
        batch_limit=batch_limit,
        flock_dir=p("flock_dir"),
        complete_dir=p("complete_dir", must_exist=False),
        common_valid=p("common_valid", kind="file"),
        workflow=p("workflow"),
        profile=_profile(doc, base),
        log_dir=p("log_dir", must_exist=False) or str(base / "logs"),
        status_dir=p("status_dir", must_exist=False),
        max_repeats=repeats,
        snakemake_timeout=timeout,
        notify=resolve_notify(doc["notify"], doc.val_loc("notify")) if "notify" in doc else None,
        **bounds,
    )


MAX_BATCH = 1_000_000
SHEPARD_BATCH_LIMIT = 100  # cedadev/padocc groups/shepard.py: conf.get('batch_limit') or 100
MAX_TIMEOUT_S = 7 * 86400


def _profile(doc, base: Path) -> str:
    """'local', 'slurm' or a profile directory (relative to the config): checked now,
    not when Snakemake starts."""
    name = doc.get("profile", "local")
    if (asset_dir("profiles") / name).is_dir() and "/" not in name:
        return name
    for cand in (Path(name), base / name):
        if cand.is_dir():
            return str(cand.resolve())
    raise fail(
        doc.val_loc("profile"),
        f"profile '{name}' not found: use local, slurm or the path of a profile directory",
    )


class CycleLock:
    """flock on .padocc/cycle.lock: the kernel drops it when its holder dies, so a
    lock left by `kill -9` is never held; the file's text says who took it last
    ("cycle ID pid P on HOST"), and is emptied when a cycle ends normally.

    Taking the lock checks that text explicitly: a free flock whose text names a
    live padocc process on this host is reported and respected (a holder the
    flock does not show, e.g. on a file system without flock); one naming a dead
    pid is a stale lock of a killed cycle, cleared with a message saying so."""

    def __init__(self, workflow_dir: str):
        self.path = Path(workflow_dir) / ".padocc" / "cycle.lock"
        self.notes: list[str] = []

    def acquire(self, cycle_id: str) -> int | None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        text = os.pread(fd, 512, 0).decode(errors="replace").strip()
        held = parse_holder(text)
        if held is not None:
            old_id, pid, host = held
            if host != socket.gethostname():
                self.notes.append(
                    f"lock names cycle {old_id} (pid {pid} on {host}), another host: "
                    "its flock is free, taking it"
                )
            elif pid != os.getpid() and padocc_alive(pid):
                os.close(fd)  # releases our flock
                self.live_holder = f"cycle {old_id} (pid {pid} on {host}, alive)"
                return None
            else:
                self.notes.append(
                    f"cleared stale lock of cycle {old_id} (pid {pid} on {host}, dead)"
                )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"cycle {cycle_id} pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        os.fsync(fd)
        return fd

    def release(self, fd: int) -> None:
        """A normal end: empty the text while still holding the flock, then drop it."""
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def holder(self) -> str:
        if getattr(self, "live_holder", None):
            return self.live_holder
        try:
            return self.path.read_text().strip() or "another cycle"
        except OSError:
            return "another cycle"


def parse_holder(text: str) -> tuple[str, int, str] | None:
    """("ID", pid, "HOST") from "cycle ID pid P on HOST", else None."""
    parts = text.split()
    if len(parts) == 6 and parts[0] == "cycle" and parts[2] == "pid" and parts[4] == "on":
        try:
            return parts[1], int(parts[3]), parts[5]
        except ValueError:
            return None
    return None


class _Tee:
    def __init__(self, *streams: TextIO):
        self.streams = streams

    def write(self, s: str) -> int:
        for st in self.streams:
            st.write(s)
            st.flush()
        return len(s)

    def flush(self) -> None:
        for st in self.streams:
            st.flush()


def run(opts: CycleOptions) -> int:
    try:
        if opts.now:  # a bad --now is said before anything is locked, logged or run
            parse_time(opts.now, Loc("--now"))
        cfg = load_config(opts.conf)
    except CompileError as e:
        print(e.diagnostics[0], file=sys.stderr)
        return 2
    cycle_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    why = None if opts.dry_run else cannot_run(cfg.workflow)
    if why:
        print(why, file=sys.stderr)
        return 1
    lock = CycleLock(cfg.workflow)
    fd = None if opts.dry_run else lock.acquire(cycle_id)
    held = Held() if opts.quiet else None
    rc = 1
    with ExitStack() as stack:
        if held is not None:  # shown at the end only if the cycle failed or warned
            stack.callback(lambda: held.release(rc != 0, sys.stdout))
        out: TextIO = held or sys.stdout  # type: ignore[assignment]
        if opts.autolog and not opts.dry_run:
            os.makedirs(cfg.log_dir, exist_ok=True)
            logf = stack.enter_context(
                open(Path(cfg.log_dir) / f"cycle-{cycle_id}.log", "w", encoding="utf-8")
            )
            out = _Tee(out, logf)  # type: ignore[assignment]
        if fd is None and not opts.dry_run:
            # Cluster jobs can outlast an hour: this cycle does not wait for that one.
            # It runs what no live run holds, and leaves the flock's group moves
            # (flock.json, complete_dir) to the cycle holding the lock.
            print(
                f"padocc cycle: {lock.holder()} is still running; this cycle ({cycle_id}) "
                "runs what no live run holds and leaves group moves to it",
                file=out,
            )
        for note in lock.notes:
            print(f"padocc cycle: {note}", file=out)
        lease = None
        if not opts.dry_run:
            lease = stack.enter_context(Lease(cfg.workflow, f"cycle {cycle_id}"))
            make_moves_lock(cfg.workflow)  # before this cycle's compile (see group_moves)
        try:
            rc = _cycle(cfg, opts, cycle_id, out, lease, moves=fd is not None)
            return rc
        finally:
            if fd is not None:
                lock.release(fd)


def _cycle(
    cfg: CycleConfig,
    opts: CycleOptions,
    cycle_id: str,
    out: TextIO,
    lease: Lease | None,
    moves: bool,
) -> int:
    """One cycle; `moves`: it holds the cycle lock, and so finishes and makes the
    flock's group moves."""
    seed = opts.seed if opts.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"cycle {cycle_id} seed {seed} (replay with --seed {seed})", file=out)
    state_path = Path(cfg.workflow) / ".padocc" / "flock.json"
    prev = _load_state(state_path, out)
    if moves:
        _finish_completions(prev, cfg, out)

    copts = compile_cmd.CompileOptions(
        cfg.workflow,
        now=opts.now,
        overrides=Overrides(
            cfg.flock_dir,
            cfg.status_dir or None,
            cfg.max_repeats,
            cfg.common_valid or None,
            max_datasets_per_cycle=cfg.max_datasets_per_cycle,
            max_chunks_per_cycle=cfg.max_chunks_per_cycle,
        ),
        selection=Selection(cfg.batch_limit, seed),
        write=not opts.dry_run,
        lease=lease,
        executor=executor_of(profile_dir(cfg.profile)),
    )
    rc, c = compile_cmd.compile_workflow(copts, out, out)
    if c is None:
        if not opts.dry_run:
            notify_after(cfg.notify, cfg.workflow, None, time.time(), sys.stderr,
                         f"the compile failed (exit {rc})", workflow=Path(cfg.workflow).name)  # fmt: skip
        return rc
    _report_flock(prev, c.manifest, cfg, out)
    for p in c.plan.pending:
        print(f"next: {p.id} {p.first or '(records its end)'} ({plural(p.slots, 'job')} at most)", file=out)
    if opts.dry_run:
        return 0
    rc, failed = 0, ""
    if c.plan.pending or c.gate_work.targets:
        wf = Path(cfg.workflow)
        env_path = os.environ.get("PATH", "")
        if cfg.source_venv:  # as SHEPARD does: the jobs see the venv's tools first
            os.environ["VIRTUAL_ENV"] = cfg.source_venv
            os.environ["PATH"] = f"{cfg.source_venv}/bin:{env_path}"
        snakefile = wf / ".padocc" / "builds" / c.build / "Snakefile"
        t0 = time.monotonic()
        rc = run_snakemake(
            cfg.workflow,
            cfg.profile,
            str(snakefile),
            extra=["--quiet", "all"],
            log=out,
            timeout=cfg.snakemake_timeout,
            build=c.build,
            lease=lease,
        )
        failed = failed_because(cfg.workflow, rc) if rc else ""
        print(f"{failed_because(cfg.workflow, rc)} after {time.monotonic() - t0:.0f}s", file=out)
    notify = cfg.notify or c.model.notify
    if not moves:
        notify_after(notify, cfg.workflow, c.model, float(c.manifest["now"]), sys.stderr, failed)
        return 0 if rc == 0 else 1
    state = {
        "groups": {
            g["name"]: {"digest": g["digest"], "datasets": g["datasets"]}
            for g in c.manifest["groups"]
        },
        "completed": prev.get("completed", {}),
    }
    moved = _complete_groups(c, cfg, state, state_path, cycle_id, out)
    _save_state(state_path, state)
    if moved:
        # The build this cycle ran still lists the groups' datasets, whose status files
        # have just left: `padocc status` would show them as new, and a `padocc block`
        # would start them afresh. A build without them becomes current now, not at
        # the next cycle.
        said = io.StringIO()  # the first compile said its warnings already
        rc2, c2 = compile_cmd.compile_workflow(copts, io.StringIO(), said)
        if c2 is not None:
            print(f"recompiled without the completed groups (build {c2.build})", file=out)
        else:
            out.write(said.getvalue())
        rc = rc or rc2
    notify_after(notify, cfg.workflow, c.model, float(c.manifest["now"]), sys.stderr, failed)
    return 0 if rc == 0 else 1


def _load_state(state_path: Path, out: TextIO) -> dict:
    """flock.json, or an empty state. A damaged one (cut short by a full disk, not a
    regular file) would stop every later cycle: it is said once and started afresh;
    what it remembered is only which groups changed, and unfinished group moves."""
    empty: dict = {"groups": {}, "completed": {}}
    if not state_path.exists() and not state_path.is_symlink():
        return empty
    try:
        state = json.loads(read_regular(state_path))
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
        for key in ("groups", "completed"):
            if not isinstance(state.setdefault(key, {}), dict):
                raise ValueError(f"'{key}' is not a JSON object")
            for name, rec in state[key].items():
                if key == "completed" and not (
                    isinstance(rec, dict)
                    and all(isinstance(rec.get(k), str) for k in ("to", "source", "status_dir"))
                    and isinstance(rec.get("datasets"), list)
                ):
                    raise ValueError(f"completed record of group '{name}' is damaged")
    except (OSError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) else e
        print(
            one_line(
                f"warning: {state_path}: damaged ({why}); started again from an empty flock state"
            ),
            file=out,
        )
        return empty
    return state


def _save_state(state_path: Path, state: dict) -> None:
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, state_path)


def _digest(rec) -> str:
    return rec["digest"] if isinstance(rec, dict) else rec


def _ids(rec) -> list[str]:
    return rec.get("datasets", []) if isinstance(rec, dict) else []


def _report_flock(prev: dict, manifest: dict, cfg: CycleConfig, out: TextIO) -> None:
    old = prev.get("groups", {})
    for g in manifest["groups"]:
        if g["name"] not in old:
            print(f"new group {g['name']}: {plural(len(g['datasets']), 'dataset')}", file=out)
        elif _digest(old[g["name"]]) != g["digest"]:
            added = sorted(set(g["datasets"]) - set(_ids(old[g["name"]])))
            print(
                f"group {g['name']} changed (content hash {g['digest']}): {plural(len(added), 'new dataset')}"
                + (
                    f" ({', '.join(added[:5])}{', ...' if len(added) > 5 else ''})" if added else ""
                ),
                file=out,
            )
    for entry in sorted(Path(cfg.flock_dir).iterdir()):
        if entry.suffix == ".shpignore" or (entry.is_dir() and (entry / ".shpignore").exists()):
            print(
                f"quarantined group skipped: {entry.stem if entry.is_file() else entry.name}",
                file=out,
            )


def _group_done(c, ids: list[str]) -> bool:
    status_dir = Path(c.model.status_dir)
    root = c.manifest["graph"]["root"]
    for ds in ids:
        pos = position_of(read_history(status_dir / f"{ds}.status").stats)
        if not (pos.sub == root and pos.step == root and pos.state == "Pass"):
            return False
    return True


def _complete_groups(
    c, cfg: CycleConfig, state: dict, state_path: Path, cycle_id: str, out: TextIO
) -> list[str]:
    """A group whose every dataset ended in Pass (Success, or a non-fatal Warning)
    moves to complete_dir with its status files and reports, atomically: a copy is
    renamed into place, then the originals go. The move is recorded in flock.json
    before the rename, so a cycle killed anywhere in it is finished by the next one
    (see _finish_completions), never done twice."""
    flock = Path(cfg.flock_dir)
    moved = []
    for g in c.manifest["groups"]:
        if not g["datasets"] or not _group_done(c, g["datasets"]):
            continue
        src = next(
            (
                p
                for p in flock.iterdir()
                if (p.stem if p.is_file() else p.name) == g["name"]
                and not p.name.endswith(".shpignore")
            ),
            None,
        )
        if src is None:
            continue
        dest_root = Path(cfg.complete_dir)
        dest_root.mkdir(parents=True, exist_ok=True)
        final = dest_root / g["name"]
        if final.exists():
            final = dest_root / f"{g['name']}.{cycle_id}"
        tmp = dest_root / f".tmp-{g['name']}-{cycle_id}"
        shutil.rmtree(tmp, ignore_errors=True)
        with _status_locked(cfg.workflow, c.model.status_dir, g["datasets"]):
            if not _group_done(c, g["datasets"]):
                continue  # a requeue or block came in before the locks were taken
            _move_group(c, g, src, tmp, final, state, state_path)
        moved.append(g["name"])
        print(f"group {g['name']} complete: moved to {final}", file=out)
    return moved


@contextmanager
def _status_locked(workflow_dir: str, status_dir: str, datasets: list[str]) -> Iterator[None]:
    """The group moves' lock (see core/buildlock.group_moves), and every status file
    of the group, locked from before its copy to after its removal: a line any other
    writer appends meanwhile waits, then finds the file gone and says so
    (core/statusfile.append_stats), instead of landing in a removed file after the
    copy was made."""
    with ExitStack() as stack:
        stack.enter_context(group_moves(workflow_dir, exclusive=True))
        for ds in datasets:
            fd = open_regular(Path(status_dir) / f"{ds}.status", os.O_RDONLY | os.O_NOFOLLOW)
            stack.callback(os.close, fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        pause_at("group-locked")
        yield


def _move_group(
    c, g: dict, src: Path, tmp: Path, final: Path, state: dict, state_path: Path
) -> None:
    """Copy, record in flock.json, rename into place, remove the originals."""
    tmp.mkdir()
    if src.is_dir():
        shutil.copytree(src, tmp / src.name, ignore=_not_regular)
    else:
        shutil.copy2(src, tmp / src.name)
    for ds in g["datasets"]:
        st = Path(c.model.status_dir) / f"{ds}.status"
        (tmp / "status").mkdir(exist_ok=True)
        shutil.copy2(st, tmp / "status" / st.name)
        work = Path(c.model.work_dir) / ds
        for rep in sorted(work.glob("*report*")) if work.is_dir() else []:
            (tmp / "reports" / ds).mkdir(parents=True, exist_ok=True)
            shutil.copy2(rep, tmp / "reports" / ds / rep.name)
    rec = {
        "to": str(final),
        "tmp": str(tmp),
        "source": str(src),
        "datasets": g["datasets"],
        "status_dir": c.model.status_dir,
    }
    state.setdefault("completed", {})[g["name"]] = rec
    _save_state(state_path, state)
    os.rename(tmp, final)
    _remove_originals(rec)
    state["groups"].pop(g["name"], None)


def _not_regular(d: str, names: list[str]) -> list[str]:
    """A FIFO or device in a group directory is not copied (copying one would block or
    fail): only its files and directories move to complete_dir."""
    return [
        n
        for n in names
        if not (os.path.isfile(os.path.join(d, n)) or os.path.isdir(os.path.join(d, n)))
    ]


def _remove_originals(rec: dict) -> None:
    """Status files first, the group last: while the group is there, the move is
    unfinished (see _finish_completions)."""
    for ds in rec["datasets"]:
        p = Path(rec["status_dir"]) / f"{ds}.status"
        if p.exists():
            p.unlink()
    src = Path(rec["source"])
    if src.is_dir():
        shutil.rmtree(src, ignore_errors=True)
    elif src.exists():
        src.unlink()


def _finish_completions(prev: dict, cfg: CycleConfig, out: TextIO) -> None:
    """Finish the moves a killed cycle left half done: renamed into place, originals
    not all gone -> remove them; killed before the rename -> forget the move (the
    group is still whole in the flock and completes again). Runs under the cycle
    lock, so any .tmp-* copy left in complete_dir is debris."""
    for name, rec in list(prev.get("completed", {}).items()):
        if not Path(rec["source"]).exists():
            continue
        tmp = rec.get("tmp")  # older records were written after the rename
        if Path(rec["to"]).exists() and not (tmp and Path(tmp).exists()):
            _remove_originals(rec)
            print(f"group {name}: finished moving to {rec['to']}", file=out)
        else:
            del prev["completed"][name]
            print(f"group {name}: an interrupted move to {rec['to']} is undone", file=out)
    done = Path(cfg.complete_dir)
    for debris in done.glob(".tmp-*") if done.is_dir() else []:
        shutil.rmtree(debris, ignore_errors=True)
