"""`padocc clean [WF...] [--retain 30d] [--runs DIR] [--dry-run]`: retention clean-up.

JSOC's cleanup script removes each task's DONE instances older than that task's
RETAIN_TIME. Here, per workflow, everything older than its retention (the workflow's
`retain:`, or --retain) goes:

    .padocc/logs/...           job logs (per file)
    .padocc/builds/<build>     old builds, with their slot files .padocc/run/<build>;
                               never the current build, none while a run holds
                               the run lock (.padocc/run.lock): it may be using one,
                               and never one a live job holds (its flock)
    .snakemake/log/*.log       Snakemake's own run logs
    .padocc/slurm-logs/<run>/  the SLURM logs the plugin keeps (of failed jobs)
    DIR/<campaign>-<time>      with --runs DIR: campaign run directories (those with a
                               submission.yaml); kept for the campaign's `retain:`,
                               else the longest retention of its workflows

Age is modification time (a directory's: the newest of it and what it holds). Status
files are never touched, nor anything under the status directory. Without a
retention nothing is removed: unlike JSOC's one-day default, forgetting the setting
must not delete anything.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from compiler.core.buildlock import flock_held, try_remove_unused
from compiler.core.diagnostics import CompileError, Loc, fail
from compiler.core.safeio import read_regular
from compiler.core.words import plural
from compiler.model.axes import parse_duration_s, parse_time
from compiler.render.manifest import current_manifest


@dataclass(frozen=True)
class CleanOptions:
    workflow_dirs: tuple[str, ...] = (".",)
    retain: str | None = None  # wins over each workflow's (and campaign's) retain
    runs: tuple[str, ...] = ()  # directories holding campaign run directories
    dry_run: bool = False
    now: str | None = None


def run(opts: CleanOptions) -> int:
    return clean(opts, sys.stdout, sys.stderr)


def clean(opts: CleanOptions, out: TextIO, err: TextIO) -> int:
    try:
        now = parse_time(opts.now, Loc("--now")) if opts.now else time.time()
        retain = parse_duration_s(opts.retain, Loc("--retain")) if opts.retain else None
        if retain is not None and retain <= 0:
            raise fail(Loc("--retain"), "retention must be longer than 0")
        manifests = [(wf, current_manifest(wf)) for wf in opts.workflow_dirs]
        for d in opts.runs:
            if not Path(d).is_dir():
                raise fail(Loc(d), "run root not found (--runs)")
    except CompileError as e:
        for d in e.diagnostics:
            print(d, file=err)
        return 2
    c = Cleaner(now, opts.dry_run, out, err)
    for wf, m in manifests:
        keep = retain or m["workflow"]["retain_s"]
        if not keep:
            print(
                f"{wf}: no retention set (workflow 'retain:' or --retain): nothing removed",
                file=out,
            )
            continue
        c.workflow(Path(wf), m, keep)
    for d in opts.runs:
        c.runs(Path(d), retain)
    return 1 if c.failed else 0


def _newest_mtime(path: Path) -> float:
    """A directory's age: the newest modification of it or anything below it."""
    newest = path.lstat().st_mtime
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
            except OSError:
                pass
    return newest


def run_lock_held(workflow_dir: Path) -> bool:
    """Is a Snakemake of this workflow running? It holds .padocc/run.lock (flock)."""
    return flock_held(workflow_dir / ".padocc" / "run.lock")


class Cleaner:
    def __init__(self, now: float, dry_run: bool, out: TextIO, err: TextIO):
        self.now, self.dry_run, self.out, self.err = now, dry_run, out, err
        self.verb = "would remove" if dry_run else "removed"
        self.failed = False
        self.protected: list[Path] = []  # status directories: never touched

    def _remove(self, path: Path) -> bool:
        if any(path == p or p in path.parents for p in self.protected):
            return False
        if self.dry_run:
            return True
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            return False
        except OSError as e:
            print(f"error: cannot remove {path}: {e.strerror}", file=self.err)
            self.failed = True
            return False
        return True

    def workflow(self, wf: Path, m: dict, retain_s: int) -> None:
        cutoff = self.now - retain_s
        self.protected = [Path(m["workflow"]["status_dir"]).resolve()]
        wf_abs = wf.resolve()
        self._files(wf, wf_abs / ".padocc" / "logs", cutoff, "job log", per_top=True)
        self._builds(wf, wf_abs, cutoff)
        self._files(wf, wf_abs / ".snakemake" / "log", cutoff, "Snakemake log", per_top=False)
        # Failed jobs' SLURM logs, one directory per run (runtime/snakemake_run.py).
        self._files(wf, wf_abs / ".padocc" / "slurm-logs", cutoff, "SLURM log", per_top=True)

    def _files(self, wf: Path, top: Path, cutoff: float, what: str, per_top: bool) -> None:
        """Files older than cutoff under top; then directories left empty that are old
        themselves (a new empty one may be about to receive a running job's log)."""
        if not top.is_dir():
            return
        dir_old = {}
        for root, _, _ in os.walk(top):  # before removing anything changes them
            dir_old[root] = os.lstat(root).st_mtime < cutoff
        counts: Counter = Counter()
        for root, _, files in os.walk(top):
            rel = os.path.relpath(root, top)
            group = "" if rel == "." or not per_top else rel.split(os.sep)[0] + "/"
            for name in files:
                p = Path(root) / name
                try:
                    old = p.lstat().st_mtime < cutoff
                except OSError:
                    continue
                if old and self._remove(p):
                    counts[group] += 1
        if not self.dry_run:
            for root, _, _ in sorted(os.walk(top), key=lambda t: -len(t[0])):
                if root != str(top) and dir_old.get(root) and not os.listdir(root):
                    self._remove(Path(root))
        shown = os.path.join(str(wf), os.path.relpath(top, wf.resolve()))
        for group, n in sorted(counts.items()):
            print(
                f"{self.verb} {plural(n, what)} under {os.path.join(shown, group)}", file=self.out
            )

    def _builds(self, wf: Path, wf_abs: Path, cutoff: float) -> None:
        builds = wf_abs / ".padocc" / "builds"
        if not builds.is_dir():
            return
        try:
            current = os.path.basename(os.readlink(wf_abs / ".padocc" / "current"))
        except OSError:
            current = ""
        old = []
        for b in sorted(builds.iterdir()):
            if b.name.startswith(".") or b.name == current:
                continue
            run = wf_abs / ".padocc" / "run" / b.name
            age = max(b.lstat().st_mtime, run.lstat().st_mtime if run.exists() else 0)
            if age < cutoff:
                old.append(b)
        if old and run_lock_held(wf_abs):
            print(f"{wf}: a run holds .padocc/run.lock: {plural(len(old), 'old build')} kept until it ends",
                  file=self.out)  # fmt: skip
            return
        for b in old:
            # A job can outlive its run (a SLURM job after its Snakemake was killed):
            # it holds its build's flock, not the run lock.
            if not self.dry_run and not try_remove_unused(b):
                if b.exists():
                    print(f"{wf}: build {b.name} is in use by a live run or job: kept",
                          file=self.out)  # fmt: skip
                continue
            if not self.dry_run and b.exists():
                print(f"error: cannot remove {b}", file=self.err)
                self.failed = True
                continue
            self._remove(wf_abs / ".padocc" / "run" / b.name)
            print(
                f"{self.verb} build {os.path.join(str(wf), '.padocc', 'builds', b.name)}",
                file=self.out,
            )

    def runs(self, root: Path, retain: int | None) -> None:
        self.protected = []
        kept_without = 0
        for d in sorted(root.iterdir()):
            if not d.is_dir() or d.is_symlink() or not (d / "submission.yaml").is_file():
                continue  # not a campaign run directory: not ours to judge
            keep = retain or _run_retention(d)
            if not keep:
                kept_without += 1
                continue
            if _newest_mtime(d) < self.now - keep and self._remove(d):
                print(f"{self.verb} run directory {d}", file=self.out)
        if kept_without:
            print(f"{root}: {kept_without} run directories kept: no retention set (campaign or "
                  "workflow 'retain:', or --retain)", file=self.out)  # fmt: skip


def _run_retention(run_dir: Path) -> int:
    """The campaign's retain, else the longest of its workflows' (0: none)."""
    try:
        r = json.loads(read_regular(run_dir / "resolved.json"))
        if not isinstance(r, dict):
            return 0
    except (OSError, ValueError):
        return 0
    camp = r.get("campaign", {}).get("retain_s") or 0
    if camp:
        return camp
    return max((w.get("manifest", {}).get("workflow", {}).get("retain_s") or 0
                for w in r.get("workflows", [])), default=0)  # fmt: skip
