"""What a generated Snakefile calls. Kept small: the Snakefile stays readable and
all per-build data is read from that build's directory, chosen by the `build`
wildcard, so a job of an older build never sees a newer compile's data."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import sys
import time

from compiler.core.buildlock import hold_build, workflow_dir_of
from compiler.core.growth import grown_from_json
from compiler.core.names import round_file, rule_name
from compiler.model.axes import untag
from compiler.model.chunks import upstream_chunks
from compiler.render.coverage import chunk_name, marker_path
from compiler.runtime import rounds
from compiler.runtime.build import BUILDS, gate_targets, manifest, status_coverage
from compiler.runtime.jobs import growths, next_steps, resource
from compiler.runtime.leases import LEASE_ENV

__all__ = ["Build", "Gates", "use_safe_path", "workflow_dir_of"]


def use_safe_path() -> None:
    """Jobs (and the Snakemake a SLURM job starts) run `python -m` in the workflow dir:
    without safe-path mode each start lists every file under it (see snakemake_run.py).
    Set here, not in the Snakefile: `snakemake --lint` reads any `os.environ[...]` there
    as a variable the user must provide."""
    os.environ["PYTHONSAFEPATH"] = "1"


class Build:
    def __init__(self, workflow_dir: str, build: str):
        self.dir = workflow_dir
        self.build = build
        self._lock_fd: int | None = None
        # In use while this Snakemake lives: no compile's prune removes it.
        hold_build(self.build_dir(build))

    def build_dir(self, build: str) -> str:
        return os.path.join(self.dir, BUILDS, build)

    def targets(self) -> list[str]:
        bdir = self.build_dir(self.build)
        return rounds.targets(bdir) + gate_targets(bdir)

    def previous_slot(self, wildcards) -> list[str]:
        slot = int(wildcards.slot)
        if slot <= 1:
            return []
        return [rounds.slot_of(self.build_dir(wildcards.build), slot - 1, wildcards.job)]

    def round_slots(self, wildcards) -> list[str]:
        """The slot files of one round: what its end_round checkpoint waits for."""
        return list(
            rounds.round_jobs(self.build_dir(wildcards.build), int(wildcards.round)).values()
        )

    def every_round(self, checkpoints):
        """Round 1, then each round the one before it ended with jobs to go on."""

        def every_round(wildcards) -> list[str]:
            bdir, out, rnd = self.build_dir(wildcards.build), [], 1
            while True:
                out.append(round_file(wildcards.build, rnd))
                checkpoints.end_round.get(build=wildcards.build, round=str(rnd))
                if not rounds.round_jobs(bdir, rnd + 1):
                    return out
                rnd += 1

        return every_round

    def resource(self, name: str):
        def value(wildcards, input, attempt):
            if name == "attempt":
                return attempt
            bdir = self.build_dir(wildcards.build)
            previous = input[0] if len(input) else None
            slot = int(wildcards.slot)
            steps = next_steps(bdir, wildcards.job, slot, previous)
            grow = growths(bdir, wildcards.job, slot, attempt, previous, steps)
            return resource(manifest(bdir), steps, grow, name)

        value.__name__ = f"padocc_{name}"
        return value

    def clear_stale_snakemake_locks(self) -> None:
        """Called as the Snakefile is parsed, in the main process. Every live run of
        this workflow holds the run lock (from onstart to its exit), and the run lock
        is what keeps two runs apart. So while nobody holds it, Snakemake's own locks
        are leftovers of a run killed with -9 or of one that stopped itself at onstart
        ("already running", which skips Snakemake's unlock), and would make this run
        fail with "Directory cannot be locked", silently under --quiet.

        Only for a Snakemake started by hand: one started by padocc runs under a lease
        with --nolock, and leaves the lock directory alone (see runtime/leases.py)."""
        if os.environ.get(LEASE_ENV):
            return
        path = os.path.join(self.dir, ".padocc", "run.lock")
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            fd = None  # never run: a lock dir can only be a foreign leftover
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a run is live: its locks are real
        finally:
            if fd is not None:
                os.close(fd)
        shutil.rmtree(os.path.join(self.dir, ".snakemake", "locks"), ignore_errors=True)

    def take_run_lock(self) -> None:
        """Hold the workflow's run lock for this Snakemake process's lifetime.

        Two runs of different builds share no output files, so Snakemake's own lock
        would let both submit the same dataset; this lock does not. A Snakemake
        started by padocc holds a lease instead (runtime/leases.py), and the run lock
        shared, so runs of padocc overlap, each with what no other live run holds.
        """
        if os.environ.get(LEASE_ENV):
            return
        path = os.path.join(self.dir, ".padocc", "run.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another run"
            print(
                f"padocc: workflow is already running ({holder}); nothing submitted",
                file=sys.stderr,
            )
            sys.stderr.flush()
            os._exit(0)
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            f"pid {os.getpid()} on {socket.gethostname()} since "
            f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, build {self.build}\n".encode(),
            0,
        )
        self._lock_fd = fd


class Gates:
    """Snakefile helpers for gate chunk rules."""

    def __init__(self, workflow_dir: str, build: str):
        self.dir = workflow_dir
        self.build = build

    def _m(self) -> dict:
        return manifest(os.path.join(self.dir, BUILDS, self.build))

    def _status_covered(self) -> dict:
        return status_coverage(os.path.join(self.dir, BUILDS, self.build))

    def inputs(self, name: str):
        def chunk_inputs(wildcards) -> list[str]:
            m = self._m()
            g = m["gates"][name]
            lo, hi = untag(g["axis"], wildcards.low), untag(g["axis"], wildcards.high)
            key = getattr(wildcards, "key", "")
            covered_by_status = self._status_covered()
            out = []
            for pre in g["preconditions"]:
                up = m["gates"][pre["gate"]]
                if not up["command"] or up["hold"]:
                    continue  # clock, source or held gates: the plan checked their coverage
                ukey = key if up["keyed"] else ""
                spans = covered_by_status.get(f"{pre['gate']}@{ukey}", [])
                for ulo, uhi in upstream_chunks(pre, g, up, lo, hi):
                    if any(a <= ulo and uhi <= b for a, b in spans):
                        continue
                    out.append(marker_path(pre["gate"], chunk_name(up, ulo, uhi), ukey))
            return out

        chunk_inputs.__name__ = f"inputs_of_{rule_name(name)}"
        return chunk_inputs

    def resource(self, name: str, what: str):
        def value(wildcards, attempt):
            g = self._m()["gates"][name]
            if what == "attempt":
                return attempt
            return grown_from_json(g, attempt)[what]

        value.__name__ = f"{rule_name(name)}_{what}"
        return value
