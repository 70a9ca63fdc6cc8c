#!/usr/bin/env python3
"""Soak: days of hourly cycles at an accelerated clock, with long steps, kills, hand
commands and overlapping gate requests; then the invariants, printed as figures.

    python bench/soak.py                       # 2 simulated days: 48 hourly cycles
    python bench/soak.py --quick               # 8 simulated hours (the CI test)
    python bench/soak.py --hours 96 --seed 7 --keep /tmp/soak

The workflow is bench/soakwf: each dataset runs Fetch then Build (bin/step.py, which
logs every start and end, and "overlap" when it finds another start of its dataset
still running), and a gate makes one chunk per simulated hour (bin/chunk.py, the same
for chunks). Simulated hour h (the clock: 2030-01-01 + h hours, through --now):

- a flock group of 1-3 new datasets arrives (groups/hNNN.txt);
- some new datasets' Fetch is a long step: it runs until a release 2-5 hours later;
- `padocc cycle --now T` starts; it is waited for only --slice seconds, so a cycle
  still busy with long steps goes on beside the next hours' cycles;
- at random: a new dataset's step is killed for memory (SIGKILL, as the OOM killer
  does) or for CPU time (the kernel's SIGXCPU at a CPU-time limit); a running long
  step is killed -9; a whole cycle (padocc, its Snakemake
  and its jobs) is killed -9 mid-way (the driver lost with its host); a step fails
  once; a person requeues a finished dataset, blocks a pending one (unblocked two
  hours later) or compiles by hand; a `gate make` request for the last 3 hours starts
  beside the cycles.

Then every long step is released and cycles run until nothing is pending. The
figures: what was played, then each invariant with its count of violations, and the
wait of each new dataset from its arrival to its first Engaged line, in cycles that
started after it arrived and did not engage it (a cycle the driver killed engages
nothing and is not counted; one whose Snakemake failed is). Exit status 0 when every
count is 0 and no wait is over 1 cycle.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from compiler.core.attempts import MEMORY_CAUSES, TIME_CAUSES  # noqa: E402
from compiler.core.statusfile import FINAL, QUARANTINED, read_history  # noqa: E402
from compiler.runtime.leases import live_holdings  # noqa: E402

T0 = datetime(2030, 1, 1, tzinfo=UTC)
PY = sys.executable


def at(hour: int) -> str:
    return (T0 + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")


def padocc(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "compiler", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d.name))
    return out


def kill_tree(p: subprocess.Popen) -> None:
    """kill -9 a padocc command, its Snakemake (a session of its own) and its jobs."""
    for child in children(p.pid):
        try:
            os.killpg(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


class Soak:
    def __init__(self, wf: Path, hours: int, seed: int, slice_s: float, profile: str):
        self.wf, self.hours, self.slice, self.profile = wf, hours, slice_s, profile
        self.rng = random.Random(seed)
        self.control = wf / "control"
        self.arrived: dict[str, int] = {}
        self.release_at: dict[str, int] = {}
        self.blocked: dict[str, int] = {}
        self.ever_blocked: set[str] = set()
        self.requeued: Counter = Counter()
        self.played: Counter = Counter()
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []
        # Every cycle in start order: [hour, its log, killed by the driver].
        self.cycles: list[list] = []
        self.deleted_builds: set[str] = set()

    def run(self) -> None:
        for h in range(self.hours):
            self.hour(h)
        self.drain()

    def hour(self, h: int) -> None:
        rng, wf = self.rng, self.wf
        ids = [f"D{h:03d}_{i}" for i in range(rng.randint(1, 3))]
        for ds in ids:
            self.arrived[ds] = h
            if rng.random() < 0.25:
                (self.control / f"hold-{ds}-Fetch").touch()
                self.release_at[ds] = h + rng.randint(2, 5)
                self.played["long steps"] += 1
            if rng.random() < 0.1:
                (self.control / f"fail-{ds}-{rng.choice(['Fetch', 'Build'])}").touch()
                self.played["steps failed once"] += 1
            for kind, what, sure in (("oom", "memory (SIGKILL)", "Fetch"),
                                     ("cpu", "CPU time (SIGXCPU)", "Build")):  # fmt: skip
                # Each kind at random, and once for sure in hour 0 (the first dataset's
                # Fetch for memory, its Build for time): even a one-hour soak plays both.
                if rng.random() < 0.08:
                    step = rng.choice(["Fetch", "Build"])
                elif h == 0 and ds == ids[0]:
                    step = sure
                else:
                    continue
                (self.control / f"{kind}-{ds}-{step}").touch()
                self.played[f"steps killed for {what}"] += 1
        (wf / "groups" / f"h{h:03d}.txt").write_text("".join(f"{d}\n" for d in ids))
        self.played["groups"] += 1
        for ds, r in self.release_at.items():
            if r == h:
                (self.control / f"release-{ds}-Fetch").touch()
        for ds, r in list(self.blocked.items()):
            if r == h:
                self.hand("unblock", str(wf), ds)
                del self.blocked[ds]
        self.by_hand(h)
        if rng.random() < 0.2:
            self.kill_a_long_step()
        log = wf / "logs" / f"soak-cycle-{h:03d}-{len(self.procs)}.out"
        log.parent.mkdir(exist_ok=True)
        p = self.start("cycle", ["cycle", "--conf", str(wf / "shepard.yaml"), "--now", at(h)], log)
        self.cycles.append([h, log, False])
        self.played["cycles"] += 1
        if rng.random() < 0.3:
            out = wf / "logs" / f"soak-gate-{h:03d}.out"
            self.start("gate", ["gate", "make", "hourly", at(h - 3), at(h), "-C", str(wf),
                                "--now", at(h), "--timeout", "900", "--profile", self.profile],
                       out)  # fmt: skip
            self.played["gate requests"] += 1
        if rng.random() < 0.1:
            # The driver lost at a random moment: after its compile, while it runs jobs.
            self._until(lambda: "compiled" in log.read_text() or p.poll() is not None, 120)
            time.sleep(rng.random() * 2)
            if p.poll() is None:
                kill_tree(p)
                self.cycles[-1][2] = True
                self.played["cycles killed -9 (with their Snakemake and jobs)"] += 1
        self._until(lambda: p.poll() is not None, self.slice)
        self.check_live_builds()

    def by_hand(self, h: int) -> None:
        rng, wf = self.rng, str(self.wf)
        if rng.random() < 0.15:
            # Only in groups still in the flock: a finished group has left it, and with
            # it its datasets (their status files moved to complete/).
            done = [
                d
                for d in self.arrived
                if (self.wf / "status" / f"{d}.status").exists()
                and self.position(d) == ("SOAK", "Pass")
            ]
            if done:
                ds = rng.choice(done)
                if self.hand("requeue", wf, ds, "--at", "Fetch"):
                    self.requeued[ds] += 1
        if rng.random() < 0.15:
            waiting = [
                d for d in self.arrived if self.arrived[d] == h - 1 and d not in self.blocked
            ]
            if waiting:
                ds = rng.choice(waiting)
                if self.hand("block", wf, ds, "--reason", "soak"):
                    self.blocked[ds] = h + 2
                    self.ever_blocked.add(ds)
        if rng.random() < 0.15:
            self.hand("compile", wf, "--now", at(h))

    def hand(self, *args: str) -> bool:
        r = padocc(*args)
        self.played[f"by hand: {args[0]}"] += 1
        if r.returncode != 0:
            self.played[f"by hand: {args[0]} refused"] += 1
        return r.returncode == 0

    def kill_a_long_step(self) -> None:
        running = sorted(self.control.glob("waiting-*"))
        for marker in self.rng.sample(running, len(running)):
            try:
                pid = int(marker.read_text())
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            if b"step.py" in cmd:
                os.kill(pid, signal.SIGKILL)
                marker.unlink()
                self.played["steps killed -9"] += 1
                return

    def start(self, kind: str, args: list[str], out: Path) -> subprocess.Popen:
        p = subprocess.Popen([PY, "-m", "compiler", *args], stdout=out.open("w"),
                             stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.procs.append((kind, p, out))
        return p

    @staticmethod
    def _until(cond, limit: float) -> None:
        end = time.monotonic() + limit
        while not cond() and time.monotonic() < end:
            time.sleep(0.1)

    def check_live_builds(self) -> None:
        """Every live run's build must still be there (its manifest)."""
        for header in live_holdings(self.wf).runs:
            m = re.search(r" build (\S+)$", header)
            if m and not (self.wf / ".padocc" / "builds" / m.group(1) / "manifest.json").exists():
                self.deleted_builds.add(m.group(1))

    def status(self, ds: str) -> Path:
        """A dataset's status file: in status/, or moved with its finished group."""
        p = self.wf / "status" / f"{ds}.status"
        if p.exists():
            return p
        return next(iter(self.wf.glob(f"complete/*/status/{ds}.status")), p)

    def position(self, ds: str) -> tuple[str, str]:
        st = read_history(self.status(ds)).stats
        binding = [s for s in st if s.state not in ("Blocked", "Unblocked", "Retry", "Cancelled")]
        return (binding[-1].step, binding[-1].state) if binding else ("", "")

    def drain(self) -> None:
        for f in self.control.glob("hold-*"):
            (self.control / f.name.replace("hold-", "release-", 1)).touch()
        for f in self.control.glob("fail-*"):
            f.unlink()
        for ds in list(self.blocked):
            self.hand("unblock", str(self.wf), ds)
        self.blocked.clear()
        for _kind, p, _out in self.procs:
            try:
                p.wait(timeout=900)
            except subprocess.TimeoutExpired:
                kill_tree(p)
                self.played["left running at the end (killed)"] += 1
        h = self.hours
        for h in range(self.hours, self.hours + 12):
            log = self.wf / "logs" / f"soak-cycle-{h:03d}-final.out"
            r = padocc("cycle", "--conf", str(self.wf / "shepard.yaml"), "--now", at(h))
            log.write_text(r.stdout + r.stderr)
            self.cycles.append([h, log, False])
            self.played["cycles"] += 1
            if not re.search(r"[(, ][1-9][0-9]* pending", r.stdout):
                break
        self.played["final cycles"] = h - self.hours + 1


def figures(s: Soak) -> dict[str, int]:
    """Each invariant's count of violations (and the wait figure)."""
    wf = s.wf
    builds: dict[str, int] = {}  # build -> index of the cycle that compiled it
    failed_cycles = 0
    for i, (_h, log, killed) in enumerate(s.cycles):
        text = log.read_text()
        for b in re.findall(r"\(build (\S+)\)", text):
            builds[b] = i
        failed_cycles += not killed and bool(re.search(r"snakemake exited [1-9]", text))
    overlaps = torn = unfinished = redone = over_budget = lost = 0
    uncaused = uncarried = 0
    waits: Counter = Counter()
    for ds, arrived in s.arrived.items():
        led = wf / "ledger" / f"{ds}.log"
        lines = [ln.split() for ln in led.read_text().splitlines()] if led.exists() else []
        overlaps += sum(1 for ln in lines if ln[0] == "overlap")
        ends = Counter(ln[1] for ln in lines if ln[0] == "end")
        hist = read_history(s.status(ds))
        torn += len(hist.warnings)
        stats = hist.stats
        last = [x for x in stats if x.state not in ("Blocked", "Unblocked", "Retry", "Cancelled")]
        if not last or not (
            (last[-1].state in FINAL and last[-1].step == "SOAK") or last[-1].state == QUARANTINED
        ):
            unfinished += 1
        # Between requeues (a person's), each step passes at most once.
        seg: Counter = Counter()
        engaged: Counter = Counter()
        passes: Counter = Counter()
        for x in stats:
            if x.params.get("requeue") == "1":
                seg, engaged = Counter(), Counter()
            if x.state == "Pass" and x.step != "SOAK":
                seg[x.step] += 1
                passes[x.step] += 1
                redone += seg[x.step] > 1
            if x.state == "Engaged":
                engaged[x.step] += 1
                over_budget += engaged[x.step] == 6  # max_repeats 5, shepard.yaml
        lost += sum(max(0, ends[k] - passes[k]) for k in ends)
        # Each kill the step made of itself is an outcome line with a cause of its kind.
        kills = Counter((ln[1], ln[2]) for ln in lines if ln[0] == "kill")
        caused = Counter(
            (x.step, "memory" if x.params.get("cause") in MEMORY_CAUSES else "time")
            for x in stats
            if x.state in ("Retry", "Fail")
            and x.params.get("cause", "") in MEMORY_CAUSES | TIME_CAUSES
        )
        uncaused += sum(max(0, n - caused[k]) for k, n in kills.items())
        # After a Retry, the step's next Engaged is the next attempt (counted from the
        # status file, across cycles and killed Snakemakes alike).
        after: dict[str, int] = {}
        for x in stats:
            if x.params.get("requeue") == "1":
                after.clear()
            elif x.state == "Retry":
                after[x.step] = int(x.params.get("attempt", "0") or 0) + 1
            elif x.state == "Engaged":
                want = after.pop(x.step, None)
                uncarried += want is not None and want > 1 and x.params.get("attempt") != str(want)
            elif x.state in ("Pass", "Fail"):
                after.pop(x.step, None)
        first = next((x for x in stats if x.state == "Engaged"), None)
        if first is not None and ds not in s.ever_blocked:
            took = builds.get(first.params.get("build", ""))
            if took is not None:
                # Cycles that started after it arrived, were not killed, and did not
                # engage it: a killed cycle engages nothing, by construction.
                waits[
                    sum(1 for h, _, killed in s.cycles[:took] if h >= arrived and not killed)
                ] += 1
    chunks = wf / "ledger" / "gates.log"
    glines = [ln.split() for ln in chunks.read_text().splitlines()] if chunks.exists() else []
    overlaps += sum(1 for ln in glines if ln[0] == "overlap")
    made = Counter(ln[2] for ln in glines if ln[0] == "end")
    failed_requests = sum(
        1 for kind, p, _ in s.procs if kind == "gate" and p.returncode not in (0,)
    )
    return {
        "datasets": len(s.arrived),
        "two jobs of one dataset (or chunk) at once": overlaps,
        "finished steps redone (between requeues)": redone,
        "torn or unreadable STAT lines": torn,
        "step ends with no outcome line beyond the cycles killed": max(
            0, lost - s.played["cycles killed -9 (with their Snakemake and jobs)"]
        ),
        "step ends with no outcome line (a wrapper killed after its step ended)": lost,
        "datasets not final nor quarantined": unfinished,
        "kills not recorded with a cause of their kind": uncaused,
        "attempts not carried to the next try": uncarried,
        "steps run past the attempt budget (max_repeats 5)": over_budget,
        "gate chunks made twice": sum(1 for v in made.values() if v > 1),
        "gate requests that failed": failed_requests,
        "cycles not killed whose Snakemake failed": failed_cycles,
        "live builds deleted": len(s.deleted_builds),
        "longest wait ready -> Engaged, in cycles not killed": max(waits, default=0),
        "_waits": dict(sorted(waits.items())),  # type: ignore[dict-item]
    }


VIOLATIONS = (
    "two jobs of one dataset (or chunk) at once",
    "finished steps redone (between requeues)",
    "torn or unreadable STAT lines",
    "step ends with no outcome line beyond the cycles killed",
    "datasets not final nor quarantined",
    "kills not recorded with a cause of their kind",
    "attempts not carried to the next try",
    "steps run past the attempt budget (max_repeats 5)",
    "gate chunks made twice",
    "gate requests that failed",
    "cycles not killed whose Snakemake failed",
    "live builds deleted",
)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="8 simulated hours (CI)")
    ap.add_argument("--hours", type=int, help="simulated hours (default 48; --quick 8)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--slice", type=float, default=15,
                    help="wall seconds an hour's cycle is waited for (default 15)")  # fmt: skip
    ap.add_argument("--profile", default="local", help="local (default) or slurm")
    ap.add_argument("--keep", help="work in this directory and keep it")
    a = ap.parse_args()
    hours = a.hours or (8 if a.quick else 48)
    if not 1 <= hours <= 24 * 60:
        ap.error("--hours must be between 1 and 1440")
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="padocc-soak-"))
    wf = root / "wf"
    if wf.exists():
        shutil.rmtree(wf)
    shutil.copytree(REPO / "bench" / "soakwf", wf)
    (wf / "control").mkdir()
    conf = wf / "shepard.yaml"
    conf.write_text(conf.read_text().replace("profile: local", f"profile: {a.profile}"))
    t = time.monotonic()
    s = Soak(wf, hours, a.seed, a.slice, a.profile)
    try:
        s.run()
    finally:
        for _kind, p, _out in s.procs:
            if p.poll() is None:
                kill_tree(p)
    f = figures(s)
    waits = f.pop("_waits")
    print(f"soak: {hours} simulated hours ({hours / 24:.1f} days), seed {a.seed}, "
          f"profile {a.profile}, {time.monotonic() - t:.0f} s wall, in {wf}")  # fmt: skip
    for k, v in sorted(s.played.items()):
        print(f"  played  {k:<55} {v}")
    for k, v in f.items():
        print(f"  {'check ' if k in VIOLATIONS else 'figure'}  {k:<55} {v}")
    print(f"  figure  waits ready -> Engaged (cycles: datasets)     {waits}")
    bad = [k for k in VIOLATIONS if f[k]]
    bad += ["longest wait ready -> Engaged over 1 cycle"] * (
        f["longest wait ready -> Engaged, in cycles not killed"] > 1
    )
    print("soak: ok" if not bad else f"soak: FAILED: {', '.join(bad)}")
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
