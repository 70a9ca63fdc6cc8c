"""Leases: what each live run holds, so that overlapping runs share the work.

Every run that starts Snakemake (`padocc run`, `padocc cycle`, `padocc gate make`)
has a directory `.padocc/runs/<run-id>/` with two files:

    lock   flocked (exclusive) for the run's life. The fd is handed to its Snakemake
           too, so the lease lives while either lives, and the kernel drops it when
           both are gone: `kill -9`, a crash, the host's loss (a network file
           system's lock manager frees a dead client's locks).
    held   "run ID pid P on HOST since T build B", then one line per dataset
           ("dataset ID") and gate chunk marker ("chunk PATH") its build carries,
           replaced whole (rename) whenever the run claims.

A run is live exactly while its flock is held; a lease found unlocked is a dead
run's and is removed by the next planner, which then plans its datasets again.
Planning and claiming happen under `.padocc/plan.lock`, so two runs starting at the
same moment never both claim one dataset or chunk.

Each run also holds `.padocc/run.lock` shared: a Snakemake started by hand (which
takes it exclusively) and `padocc clean` see that a run is live.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

RUNS = os.path.join(".padocc", "runs")
# Set in the environment of a Snakemake that runs under a lease (its run id): the
# Snakefile's own run-lock hooks, meant for a Snakemake started by hand, stand down.
LEASE_ENV = "PADOCC_RUN"


@dataclass
class Holdings:
    """What live runs hold: dataset id / chunk marker -> the run's header line."""

    datasets: dict[str, str] = field(default_factory=dict)
    chunks: dict[str, str] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)  # live runs other than the reader's
    freed: list[str] = field(default_factory=list)  # dead runs' leases removed


class Lease:
    """This run's lease (see the module doc). Close it (or leave the `with`) at the end."""

    def __init__(self, workflow_dir: str | Path, kind: str):
        self.dir = Path(workflow_dir)
        runs = self.dir / RUNS
        runs.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.id = f"{stamp}-{os.getpid()}-{secrets.token_hex(3)}"
        self.header = (
            f"run {self.id} ({kind}) pid {os.getpid()} on {socket.gethostname()} since {stamp}"
        )
        # Made under a dot name and renamed: a reader never sees an unlocked new lease.
        new = runs / f".new-{self.id}"
        new.mkdir()
        self.fd = os.open(new / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.path = runs / self.id
        self._write(new, "", (), ())
        os.rename(new, self.path)
        self.run_fd: int | None = os.open(
            self.dir / ".padocc" / "run.lock", os.O_RDWR | os.O_CREAT, 0o644
        )
        try:
            fcntl.flock(self.run_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # a Snakemake started by hand holds it: our lease still works
            os.close(self.run_fd)
            self.run_fd = None

    def _write(self, where: Path, build: str, datasets: Iterable[str], chunks: Iterable[str]):
        text = self.header + (f" build {build}" if build else "") + "\n"
        text += "".join(f"dataset {d}\n" for d in datasets)
        text += "".join(f"chunk {c}\n" for c in chunks)
        tmp = where / "held.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, where / "held")

    def claim(self, build: str, datasets: Iterable[str], chunks: Iterable[str]) -> None:
        """Say what this run's build carries (call under `planning`)."""
        self._write(self.path, build, datasets, chunks)

    def fds(self) -> tuple[int, ...]:
        """The fds a child (Snakemake) must inherit to keep this lease alive."""
        return (self.fd,) + ((self.run_fd,) if self.run_fd is not None else ())

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        for fd in self.fds():
            os.close(fd)
        self.run_fd = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def live_holdings(
    workflow_dir: str | Path, mine: Lease | None = None, clear: bool = False
) -> Holdings:
    """What every live run but `mine` holds. With `clear`, dead runs' leases are
    removed (only under the plan lock: the planner that removes them plans them)."""
    out = Holdings()
    runs = Path(workflow_dir) / RUNS
    try:
        names = sorted(os.listdir(runs))
    except OSError:
        return out
    for name in names:
        if name.startswith(".") or (mine is not None and name == mine.id):
            continue
        d = runs / name
        try:
            fd = os.open(d / "lock", os.O_RDWR)
        except OSError:
            continue  # not a lease (or removed meanwhile)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _read_held(d, out)
            continue
        else:
            if clear:
                header = _header(d)
                shutil.rmtree(d, ignore_errors=True)
                out.freed.append(header)
        finally:
            os.close(fd)
    return out


def _header(d: Path) -> str:
    try:
        with open(d / "held", encoding="utf-8", errors="replace") as f:
            return f.readline().strip()
    except OSError:
        return f"run {d.name}"


def _read_held(d: Path, out: Holdings) -> None:
    try:
        lines = (d / "held").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    header = lines[0] if lines else f"run {d.name}"
    out.runs.append(header)
    for line in lines[1:]:
        kind, _, what = line.partition(" ")
        if kind == "dataset":
            out.datasets[what] = header
        elif kind == "chunk":
            out.chunks[what] = header


@contextmanager
def planning(workflow_dir: str | Path, mine: Lease | None = None) -> Iterator[Holdings]:
    """Hold the plan lock (waiting for it) and yield what live runs hold: plan what
    they do not, and claim it before leaving."""
    pdir = Path(workflow_dir) / ".padocc"
    pdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(pdir / "plan.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield live_holdings(workflow_dir, mine, clear=True)
    finally:
        os.close(fd)
