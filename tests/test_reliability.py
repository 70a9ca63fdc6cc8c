"""Reliability (issue 8): kill -9 at random points, concurrent writers, stale locks,
damaged status files, disk faults. Real padocc, real Snakemake, local profile."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import (
    PROFILES,
    compile_wf,
    cycle_until_done,
    final_states,
    fresh_copy,
    padocc,
)

from compiler.core.statusfile import (
    Stat,
    append_stats,
    parse_history,
    parse_stat,
    position_of,
    read_history,
    utc_stamp,
)

NOW = "2026-01-01T01:00:00Z"
HMI_REQ = ("hmi.lev1", "2010-05-01T00:00:00Z", "2010-05-02T00:00:00Z")  # 3 chunks
SMALL_SPEC = """project:
  DEMO:
    atmos:
      variables: [tas, pr]
      experiments:
        hist: {ens: [r1]}
"""


# ---------------------------------------------------------------- helpers


def small_demo(dst: Path) -> Path:
    """Two datasets (the Warning chain and the fix loop); every step may retry once,
    so a killed command is retried, as on a real cluster, and ends as it would have."""
    fresh_copy("demo", dst)
    (dst / "dataset_spec.yaml").write_text(SMALL_SPEC)
    wf = dst / "workflow.yaml"
    wf.write_text(wf.read_text().replace("  retries: 0\n", "  retries: 1\n"))
    return dst


def hmi_copy(dst: Path) -> Path:
    return fresh_copy("hmi", dst)


def pids_matching(wf: Path | str, *needles: str) -> list[int]:
    """Processes of workflow wf (named in their command line, or running in it) whose
    command line holds every needle (not this one)."""
    out, wf = [], str(wf)
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            cmd = (
                Path(f"/proc/{d}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            continue
        try:
            cwd = os.readlink(f"/proc/{d}/cwd")
        except OSError:
            cwd = ""
        if (wf in cmd or cwd == wf or cwd.startswith(wf + "/")) and all(n in cmd for n in needles):
            out.append(int(d))
    return out


def wait_quiet(wf: Path, timeout: float = 90) -> None:
    """Orphans of a killed run (jobs Snakemake left behind) finish before the rerun."""
    deadline = time.time() + timeout
    while pids_matching(wf) and time.time() < deadline:
        time.sleep(0.2)
    assert not pids_matching(wf), "processes of the killed run never ended"


def snakemake_popen(wf: Path) -> subprocess.Popen:
    cmd = ["timeout", "-k", "10", "300", sys.executable, "-m", "snakemake", "--profile",
           str(PROFILES / "local"), "-s", str(wf / "Snakefile"), "-d", str(wf)]  # fmt: skip
    return subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def gate_popen(wf: Path) -> subprocess.Popen:
    cmd = ["timeout", "-k", "10", "300", sys.executable, "-m", "compiler", "gate", "make",
           *HMI_REQ, "-C", str(wf), "--now", NOW]  # fmt: skip
    return subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def kill_at_random(
    proc: subprocess.Popen, wf: Path, needles: tuple[str, ...], delay: float
) -> int | None:
    """After `delay`, SIGKILL one random process matching needles; its pid, or None if
    the run ended first. Never proc itself: that is the `timeout` launcher, whose
    command line names the run too, and killing it would interrupt nothing. (A job's
    shell may be chosen for "wrapper": a killed job shell orphans its wrapper.)"""
    rng = random.Random(delay)
    t_end = time.time() + 240
    time.sleep(delay)
    while proc.poll() is None and time.time() < t_end:
        pids = [p for p in pids_matching(wf, *needles) if p != proc.pid]
        if pids:
            pid = rng.choice(pids)
            try:
                os.kill(pid, signal.SIGKILL)
                return pid
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    return None


def job_logs(wf: Path) -> str:
    """What the wrappers said: each job's log under .padocc/logs."""
    return "".join(p.read_text() for p in sorted((wf / ".padocc" / "logs").rglob("*.log")))


def check_status_files(files: list[Path]) -> None:
    """No STAT line lost or torn: a header, every line parses, nothing to warn about."""
    for p in files:
        data = p.read_bytes()
        h = parse_history(data, str(p))
        assert h.warnings == [] and h.dataset_id, (p, h.warnings)
        assert data.endswith(b"\n")
        for ln in data.decode().splitlines()[1:]:
            assert parse_stat(ln) is not None, (p, ln)


def demo_runs(wf: Path) -> dict[tuple[str, str], int]:
    out: Counter = Counter()
    for log in (wf / "work").glob("*/runs.log"):
        for step in log.read_text().split():
            out[(log.parent.name, step)] += 1
    return dict(out)


def demo_outcomes(wf: Path) -> dict[tuple[str, str], int]:
    """Recorded step outcomes (anything but Engaged/Cancelled at step level)."""
    out: Counter = Counter()
    for p in (wf / "status").glob("*.status"):
        ds = p.name[: -len(".status")]
        for st in read_history(p).stats:
            if st.step not in ("DEMO", "VALIDATION") and st.state not in ("Engaged", "Cancelled"):
                out[(ds, st.step.lower())] += 1
    return dict(out)


def hmi_runs(wf: Path) -> dict[tuple[str, ...], int]:
    p = wf / "work" / "gates" / "runs.log"
    return dict(Counter(tuple(ln.split()) for ln in p.read_text().splitlines()))


def markers(wf: Path) -> list[str]:
    return sorted(str(p.relative_to(wf)) for p in (wf / "gates").rglob("*.done"))


def make_until_done(wf: Path) -> None:
    for _ in range(4):
        r = padocc("gate", "make", *HMI_REQ, "-C", str(wf), "--now", NOW, timeout=300)
        if r.returncode == 0:
            return
    raise AssertionError(r.stdout + r.stderr)


def snakemake_dry_run_ok(wf: Path) -> None:
    r = subprocess.run(
        ["timeout", "-k", "5", "120", sys.executable, "-m", "snakemake", "-n", "--profile",
         str(PROFILES / "local"), "-s", str(wf / "Snakefile"), "-d", str(wf)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def generated_output_valid(wf: Path, dry_run: bool = True) -> None:
    cur = wf / ".padocc" / "current"
    assert cur.is_symlink() and cur.resolve().is_dir()
    for f in ("Snakefile", "manifest.json", "pending.tsv"):
        assert (cur / f).is_file(), f
    # The Snakefile is the current build's, or (a kill between its rename and the
    # link's) a newer complete build's: either is whole and names its own build.
    builds = {p.read_bytes() for p in (wf / ".padocc" / "builds").glob("[0-9]*/Snakefile")}
    assert (wf / "Snakefile").read_bytes() in builds | {(cur / "Snakefile").read_bytes()}
    json.loads((cur / "manifest.json").read_text())
    if dry_run:
        snakemake_dry_run_ok(wf)
    else:  # a big build: Snakemake parses it (a full dry-run DAG would take minutes)
        r = subprocess.run(
            ["timeout", "-k", "5", "120", sys.executable, "-m", "snakemake", "--list-rules",
             "-s", str(wf / "Snakefile"), "-d", str(wf)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert r.returncode == 0 and "advance" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


# ---------------------------------------------------------------- 1. crash at random points


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict:
    """One uninterrupted run of each: what every killed run must end equal to."""
    root = tmp_path_factory.mktemp("baseline")
    wf = small_demo(root / "demo")
    cycle_until_done(wf)
    hmi = hmi_copy(root / "hmi")
    make_until_done(hmi)
    return {
        "states": final_states(wf),
        "runs": demo_runs(wf),
        "hmi_markers": markers(hmi),
        "hmi_runs": hmi_runs(hmi),
    }


TARGETS = ("wrapper", "snakemake", "command", "compile")


@pytest.mark.parametrize("seed", range(20))
def test_kill_9_at_a_random_point(seed: int, tmp_path: Path, baseline: dict):
    rng = random.Random(seed)
    target = TARGETS[seed % 4]
    gate_trial = seed % 5 == 4
    delay = rng.uniform(0.2, 3.5)

    if gate_trial:
        wf = hmi_copy(tmp_path / "hmi")
        needles = {
            "wrapper": ("compiler run-chunk",),
            "snakemake": ("-m compiler.runtime.snakemake_main",),  # gate make's Snakemake
            "command": ("hmi.py",),
            "compile": ("compiler gate make",),  # the whole request, its compile too
        }[target]
        for tries in range(1, 5):
            proc = gate_popen(wf)
            killed = kill_at_random(proc, wf, needles, delay)
            proc.wait()
            if killed is not None:
                break
            # The request ended before the random moment came: a fresh copy, whose
            # target is killed as soon as it appears (never a trial that kills nothing).
            wait_quiet(wf)
            wf = hmi_copy(tmp_path / f"hmi{tries}")
            delay = 0
        assert killed is not None, "the request ended before anything was killed"
        if target == "compile":
            # What is left of the request's group goes too. Its Snakemake has a session
            # of its own: it may live on and finish the chunks (wait_quiet waits for it).
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_quiet(wf)
        make_until_done(wf)
        assert markers(wf) == baseline["hmi_markers"]
        runs, want = hmi_runs(wf), baseline["hmi_runs"]
        extra = {k: runs.get(k, 0) - n for k, n in want.items() if runs.get(k, 0) != n}
        assert set(runs) == set(want) and all(v == 1 for v in extra.values()), (killed, extra)
        assert len(extra) <= 1, extra
        files = sorted((wf / "status").rglob("*.status"))
        check_status_files(files)
        # The compiler's view: every chunk covered, nothing left to make.
        r = padocc("gate", "check", *HMI_REQ, "-C", str(wf), "--now", NOW)
        assert r.returncode == 0, r.stdout + r.stderr
        return

    wf = small_demo(tmp_path / "demo")
    compile_wf(wf)
    if target == "compile":
        # A compile killed at a random moment leaves the previous output whole.
        before = os.readlink(wf / ".padocc" / "current")
        p = compile_paused_at(wf, rng.choice(STAGES))  # stopped there: the kill lands
        p.kill()
        p.wait()
        generated_output_valid(wf)
        after = os.readlink(wf / ".padocc" / "current")
        assert after == before or not Path(after).name.startswith("."), after
        killed = p.pid
    else:
        needles = {
            "wrapper": ("compiler run-step",),
            "snakemake": ("-m snakemake",),
            "command": ("demo_step.py",),
        }[target]
        for tries in range(1, 5):
            proc = snakemake_popen(wf)
            killed = kill_at_random(proc, wf, needles, delay)
            proc.wait()
            wait_quiet(wf)
            if killed is not None:
                break
            # The run ended before the random moment came (its jobs take about a
            # second): a fresh copy, whose target is killed as soon as it appears.
            wf = small_demo(tmp_path / f"demo{tries}")
            compile_wf(wf)
            delay = 0  # no wait: kill the first matching process as soon as it exists
        assert killed is not None, "the run ended before anything was killed"

    cycle_until_done(wf)
    assert final_states(wf) == baseline["states"]
    runs, want = demo_runs(wf), baseline["runs"]
    extra = {k: runs.get(k, 0) - n for k, n in want.items() if runs.get(k, 0) != n}
    # Finished steps never ran again; only the interrupted one may differ, by one: it
    # ran once more, or (a failing step killed on its first attempt) the kill used up
    # the attempt its retry would have made.
    assert set(runs) == set(want) and all(abs(v) == 1 for v in extra.values()), (target, extra)
    assert len(extra) <= 1, (target, extra)
    files = sorted((wf / "status").glob("*.status"))
    check_status_files(files)
    # Every run the commands logged has its recorded outcome (one may be the killed one).
    outcomes = demo_outcomes(wf)
    off = {k for k in set(runs) | set(outcomes) if runs.get(k, 0) != outcomes.get(k, 0)}
    assert len(off) <= 1 and all(abs(runs.get(k, 0) - outcomes.get(k, 0)) == 1 for k in off)
    # The compiler's view equals the status file: nothing pending, and each dataset's
    # position is its last binding line.
    r = compile_wf(wf)
    assert "pending" not in r.stdout
    for p in files:
        stats = read_history(p).stats
        binding = [s for s in stats if s.binding and s.state != "Engaged"]
        pos = position_of(stats)
        assert (pos.step, pos.state) == (binding[-1].step, binding[-1].state)
        assert pos.open_engagement is None


# Where a compile stops when told to (PADOCC_TEST_PAUSE_AT), in the order it gets there.
STAGES = ("writing", "build-written", "before-rename", "before-snakefile", "before-current",
          "before-prune")  # fmt: skip


def compile_paused_at(wf: Path, stage: str, timeout: float = 300) -> subprocess.Popen:
    """A compile of wf, stopped at `stage`: returns once it has said so (it waits
    there until killed). No timing: the test waits for its line, under any load."""
    env = {**os.environ, "PADOCC_TEST_PAUSE_AT": stage}
    p = subprocess.Popen([sys.executable, "-m", "compiler", "compile", str(wf)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    watchdog = threading.Timer(timeout, p.kill)  # a compile that never gets there
    watchdog.start()
    said = []
    try:
        assert p.stderr is not None
        for line in p.stderr:
            said.append(line)
            if line == f"padocc-test: paused at {stage}\n":
                return p
    finally:
        watchdog.cancel()
    p.wait()
    raise AssertionError(f"the compile ended (exit {p.returncode}) before {stage}: {said}")


def temporaries(wf: Path) -> set[Path]:
    state = wf / ".padocc"
    return {*(state / "builds").glob(".tmp-*"), *state.glob(".current.tmp-*"),
            *wf.glob(".Snakefile.tmp-*")}  # fmt: skip


def stage_evidence(wf: Path, stage: str, before: str, debris: set[Path]) -> None:
    """What a compile stopped at `stage` has done, and not yet done (debris: what
    earlier killed compiles left)."""
    state = wf / ".padocc"
    new = temporaries(wf) - debris
    tmp = [p for p in new if p.parent.name == "builds"]
    snake_tmp = [p for p in new if p.name.startswith(".Snakefile")]
    builds = sorted(p.name for p in (state / "builds").iterdir() if not p.name.startswith("."))
    current = os.readlink(state / "current")
    if stage in ("writing", "build-written", "before-rename"):
        assert len(tmp) == 1, tmp  # the new build exists only under its temporary name
        names = {p.name for p in tmp[0].iterdir()}
        assert ("manifest.json" in names) == (stage != "writing"), names
        assert bool(snake_tmp) == (stage == "before-rename")
        assert current == before
    elif stage in ("before-snakefile", "before-current"):
        assert not tmp and current == before and builds[-1] != Path(before).name
        new = (state / "builds" / builds[-1] / "Snakefile").read_bytes()
        assert ((wf / "Snakefile").read_bytes() == new) == (stage == "before-current")
    else:  # before-prune: published
        assert current == f"builds/{builds[-1]}" != before


def test_compile_killed_while_writing_keeps_previous_output(tmp_path: Path):
    """A compile killed at each stage of its write, stopped there on purpose (not
    after a guessed delay): the previous output stays whole and runnable, a kill
    before the link swap leaves the previous build current, and the next compile
    sweeps what the killed ones left."""
    wf = small_demo(tmp_path / "demo")
    compile_wf(wf)
    for stage in STAGES:
        before = os.readlink(wf / ".padocc" / "current")
        debris = temporaries(wf)
        p = compile_paused_at(wf, stage)
        try:
            stage_evidence(wf, stage, before, debris)  # really stopped mid-write
        finally:
            p.kill()  # never left waiting, even when the check fails
            p.wait()
        after = os.readlink(wf / ".padocc" / "current")
        assert (after == before) == (stage != "before-prune"), (stage, before, after)
        generated_output_valid(wf)  # whole, and Snakemake runs it (dry run)
    assert temporaries(wf)  # what the killed compiles left...
    compile_wf(wf)
    assert temporaries(wf) == set()  # ...the next compile sweeps
    generated_output_valid(wf)


# ---------------------------------------------------------------- 2. concurrent writers


def _chunk_writer(args):
    path, n, lines = args
    for i in range(lines):
        append_stats(
            Path(path),
            "hmi.lev1@KEY.a",
            [
                Stat(utc_stamp(), "HMI", "hmi.lev1", "make", "Engaged", {"chunk": f"c{n}", "i": i}),
                Stat(utc_stamp(), "HMI", "hmi.lev1", "make", "Pass", {"chunk": f"c{n}", "i": i}),
            ],
        )


def test_keyed_gate_chunks_finishing_together(tmp_path: Path):
    from compiler.render.coverage import gate_status_path

    p = gate_status_path(str(tmp_path / "status"), "hmi.lev1", "KEY.a")
    with multiprocessing.Pool(32) as pool:
        pool.map(_chunk_writer, [(str(p), n, 250) for n in range(32)])
    data = p.read_bytes()
    h = parse_history(data, str(p))
    assert h.warnings == [] and h.dataset_id == "hmi.lev1@KEY.a"
    assert len(h.stats) == 16000 and data.count(b"\n") == 16001
    for n in range(32):
        mine = [s for s in h.stats if s.params["chunk"] == f"c{n}"]
        # Each chunk's Engaged/Pass pair is adjacent: one write, never interleaved.
        assert [s.state for s in mine] == ["Engaged", "Pass"] * 250
        assert [int(s.params["i"]) for s in mine[::2]] == list(range(250))


# ---------------------------------------------------------------- 3. stale locks


def test_cycle_lock_holder_check(tmp_path: Path):
    from compiler.commands.cycle import CycleLock

    host = socket.gethostname()
    lock = CycleLock(str(tmp_path))
    (tmp_path / ".padocc").mkdir()
    # A dead pid: the lock is stale, cleared, and said so.
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock.path.write_text(f"cycle 20260101T000000Z pid {dead.pid} on {host}\n")
    fd = lock.acquire("C2")
    assert fd is not None
    assert lock.notes == [
        f"cleared stale lock of cycle 20260101T000000Z (pid {dead.pid} on {host}, dead)"
    ]
    assert lock.path.read_text() == f"cycle C2 pid {os.getpid()} on {host}\n"
    # Held: a second taker steps aside and says who holds it.
    other = CycleLock(str(tmp_path))
    assert other.acquire("C3") is None and other.holder().startswith("cycle C2 pid")
    lock.release(fd)
    assert lock.path.read_text() == ""  # a normal end leaves no name behind
    # A free flock whose text names a live padocc process on this host: respected.
    live = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "compiler", "cycle"]
    )
    try:
        lock.path.write_text(f"cycle C4 pid {live.pid} on {host}\n")
        lock = CycleLock(str(tmp_path))
        assert lock.acquire("C5") is None
        assert lock.holder() == f"cycle C4 (pid {live.pid} on {host}, alive)"
    finally:
        live.kill()
        live.wait()
    # The same pid now dead: cleared.
    lock = CycleLock(str(tmp_path))
    fd = lock.acquire("C6")
    assert fd is not None and "dead" in lock.notes[0]
    lock.release(fd)


def test_cycle_killed_leaves_no_stale_lock(tmp_path: Path):
    dst = tmp_path / "flock"
    fresh_copy("flock", dst)
    conf = dst / "shepard.yaml"
    conf.write_text(conf.read_text().replace("batch_limit: 1000", "batch_limit: 4"))
    cmd = ["timeout", "-k", "5", "300", sys.executable, "-m", "compiler", "cycle", "--conf",
           str(conf), "--seed", "1"]  # fmt: skip
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)  # fmt: skip
    lockf = dst / ".padocc" / "cycle.lock"
    deadline = time.time() + 60
    while time.time() < deadline and not (lockf.exists() and lockf.read_text().strip()):
        time.sleep(0.05)
    text = lockf.read_text().split()
    cycle_pid = pids_matching(conf, "compiler cycle")
    assert cycle_pid and int(text[3]) in cycle_pid
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    wait_quiet(dst)
    r = padocc("cycle", "--conf", str(conf), "--seed", "1", timeout=300)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    host = socket.gethostname()
    assert f"cleared stale lock of cycle {text[1]} (pid {text[3]} on {host}, dead)" in r.stdout
    assert "still running" not in r.stdout
    assert lockf.read_text() == ""


def test_cycle_lock_of_another_host(tmp_path: Path):
    """A lock text naming another host cannot be checked by pid: its free flock says
    no live holder shares this file system's locks, so it is taken, and said so."""
    from compiler.commands.cycle import CycleLock

    (tmp_path / ".padocc").mkdir()
    lock = CycleLock(str(tmp_path))
    lock.path.write_text(f"cycle C1 pid {os.getpid()} on other-node\n")  # a live pid here
    fd = lock.acquire("C2")
    assert fd is not None
    assert lock.notes == [
        f"lock names cycle C1 (pid {os.getpid()} on other-node), another host: its flock "
        "is free, taking it"
    ]
    # While it is held, a taker from anywhere steps aside.
    assert CycleLock(str(tmp_path)).acquire("C3") is None
    lock.release(fd)


def test_cycle_started_while_jobs_run_and_after_its_kill(tmp_path: Path):
    """Cycle A's jobs are running: cycle B runs none of A's datasets. Then A alone is killed -9
    (its Snakemake and jobs may live on): cycle C names and clears A's stale lock, and
    starts no step that A's jobs are still running. Later cycles finish the work with
    every step ended exactly once."""
    dst = fresh_copy("flock", tmp_path / "flock")
    conf = dst / "shepard.yaml"
    # A's steps wait on a hold file until B has been turned away: A is live when B
    # looks, however fast the machine; then they take a second each.
    hold = tmp_path / "hold"
    hold.touch()
    env = {**os.environ, "FLOCK_STEP_SLEEP": "1.0", "FLOCK_STEP_HOLD": str(hold)}
    cmd = [sys.executable, "-m", "compiler", "cycle", "--conf", str(conf), "--seed", "3"]
    a = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)  # fmt: skip
    deadline = time.time() + 120
    while not Path(f"{hold}.seen").exists():  # a job of A is running a step
        assert time.time() < deadline, "cycle A never started a job"
        time.sleep(0.05)
    lockf = dst / ".padocc" / "cycle.lock"
    a_id = lockf.read_text().split()[1]
    host = socket.gethostname()

    b = padocc("cycle", "--conf", str(conf), timeout=300)
    assert b.returncode == 0, b.stdout + b.stderr
    assert f"cycle {a_id} pid {a.pid} on {host} is still running" in b.stdout, b.stdout
    # A holds every dataset: B runs none of them, and does not wait for A.
    assert "(5 held by a live run, 0 pending)" in b.stdout, b.stdout
    assert "snakemake exited" not in b.stdout
    hold.unlink()

    os.kill(a.pid, signal.SIGKILL)  # the cycle alone, not its Snakemake or jobs
    a.wait()
    c = padocc("cycle", "--conf", str(conf), timeout=300)
    assert c.returncode in (0, 1), c.stdout + c.stderr
    assert f"cleared stale lock of cycle {a_id} (pid {a.pid} on {host}, dead)" in c.stdout
    assert lockf.read_text() == ""
    wait_quiet(dst)
    for _ in range(12):
        r = padocc("cycle", "--conf", str(conf), timeout=300)
        assert r.returncode in (0, 1) and "still running" not in r.stdout, r.stdout + r.stderr
        if not any(p.suffix in (".csv", ".txt") for p in (dst / "groups").iterdir()):
            break
    done = sorted((dst / "complete").rglob("*.status"))
    assert len(done) == 5, done
    check_status_files(done)
    for status in done:
        ds = status.name[: -len(".status")]
        stats = read_history(status).stats
        ends = Counter(s.step for s in stats if s.state in ("Pass", "Warning"))
        assert all(ends[step] == 1 for step in ("Init", "Scan", "Validate")), (ds, ends)
        # What the commands logged against what was recorded: one step at most (one
        # the kill interrupted) ran once more than its records say; none ran twice.
        runs = Counter((dst / "work" / ds / "runs.log").read_text().split())
        outcomes = Counter(
            s.step.lower() for s in stats if s.sub == "PADOCC" and s.step != "PADOCC"
            and s.state not in ("Engaged", "Cancelled")
        )  # fmt: skip
        off = {
            k: runs[k] - outcomes[k] for k in set(runs) | set(outcomes) if runs[k] != outcomes[k]
        }
        assert len(off) <= 1 and all(v == 1 for v in off.values()), (ds, runs, outcomes)


def test_open_engagement_of_a_reused_pid_is_stale(tmp_path: Path):
    """An Engaged line whose pid is alive but is no padocc process (after a reboot the
    killed wrapper's pid is often some daemon's) is a crash: rolled back, not "running"
    for ever. A live padocc process, or another host's, are judged as before."""
    from compiler.core.routing import engagement_alive

    host = socket.gethostname()
    other = subprocess.Popen(["sleep", "60"])
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "compiler"])
    try:
        # Judged from its /proc entry: wait until it shows the program it runs.
        deadline = time.monotonic() + 60
        while b"compiler" not in Path(f"/proc/{ours.pid}/cmdline").read_bytes():
            assert ours.poll() is None and time.monotonic() < deadline, ours.poll()
            time.sleep(0.01)
        assert not engagement_alive({"host": host, "pid": str(other.pid)}, None)
        assert not engagement_alive({"host": host, "pid": "1"}, None)
        assert engagement_alive({"host": host, "pid": str(ours.pid)}, None)
        assert not engagement_alive({"host": "other-node", "pid": str(ours.pid)}, None)
    finally:
        for p in (other, ours):
            p.kill()
            p.wait()
    assert not engagement_alive({"host": host, "pid": str(ours.pid)}, None)
    # The plan: a dataset engaged by pid 1 (init, alive) is pending, not running.
    wf = small_demo(tmp_path / "demo")
    st = wf / "status"
    st.mkdir()
    (st / "DEMO.atmos.hist.r1.tas.status").write_text(
        "DATASETID=DEMO.atmos.hist.r1.tas\n"
        f"STAT:20260101_000000_000000:DEMO:DEMO:Generate:Engaged:host={host},pid=1\n"
    )
    r = padocc("compile", str(wf))
    # ... and its dead engagement is recorded as an attempt whose end nobody saw.
    assert r.returncode == 0 and "(1 killed: LOST, 2 pending)" in r.stdout, r.stdout + r.stderr


def test_snakemake_lock_left_by_a_kill_never_stops_a_run(tmp_path: Path):
    """Snakemake's own lock, left by a run killed with -9, must not stop the next run
    (it used to, silently under --quiet). Runs of padocc hold leases and start
    Snakemake with --nolock: they neither read nor clear its lock directory, so they
    never race over it either. Snakemake started by hand clears a leftover only
    while no run is live."""
    wf = hmi_copy(tmp_path / "hmi")
    chunks = ["20100501T000000Z__20100501T060000Z", "20100501T060000Z__20100501T120000Z"]
    locks = wf / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("".join(f"gates/hmi.lev1/{c}.done\n" for c in chunks))
    r = padocc("gate", "make", *HMI_REQ, "-C", str(wf), "--now", NOW, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "made 3 chunks of hmi.lev1" in r.stdout
    assert (locks / "0.output.lock").exists()
    r = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", str(PROFILES / "local"), "-s",
         str(wf / "Snakefile"), "-d", str(wf)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert not locks.exists()


SLEEPER = {
    "workflow.yaml": """name: W
datasets:
  lists: [ids.txt]
graph: transitions.yaml
defaults:
  resources: {runtime: 10m, mem: 100M}
  retries: 0
steps:
  Sleep:
    command: "{python} -c 'import time; time.sleep(300)' {dataset}"
""",
    "ids.txt": "D1\n",
    "transitions.yaml": """W:Ready:
  default: [Sleep:Ready]
Sleep:Ready:
  default: [Sleep:Engaged]
Sleep:Pass:
  default: [Pass]
Sleep:Fail:
  default: [Fail]
""",
}


def test_killed_wrapper_takes_its_command_with_it(tmp_path: Path):
    """kill -9 of a job's wrapper also ends the step's command (Linux: the parent-death
    signal), so a rerun never runs beside a leftover of it; the open Engaged line it
    leaves is rolled back by the next compile."""
    wf = tmp_path / "w"
    wf.mkdir()
    for name, text in SLEEPER.items():
        (wf / name).write_text(text)
    compile_wf(wf)
    proc = snakemake_popen(wf)
    command: list[int] = []
    try:
        deadline = time.time() + 120
        while not command and time.time() < deadline:
            command = pids_matching(wf, "time.sleep(300)")
            time.sleep(0.1)
        assert command, "the step's command never started"
        wrapper = [  # the wrapper itself, not the job's shell that started it
            pid
            for pid in pids_matching(wf, "compiler run-step")
            if b"pipefail" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(wrapper) == 1, wrapper
        os.kill(wrapper[0], signal.SIGKILL)
        deadline = time.time() + 60  # the command sleeps 300 s: gone before is killed
        while pids_matching(wf, "time.sleep(300)") and time.time() < deadline:
            time.sleep(0.1)
        assert pids_matching(wf, "time.sleep(300)") == []
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for pid in command:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    wait_quiet(wf)
    st = read_history(wf / "status" / "D1.status").stats
    assert [s.state for s in st if s.step == "Sleep"] == ["Engaged"]
    r = padocc("compile", str(wf))
    assert r.returncode == 0 and "1 pending" in r.stdout, r.stdout + r.stderr


# ---------------------------------------------------------------- 6. damaged status files


def test_damaged_status_files(tmp_path: Path):
    wf = small_demo(tmp_path / "demo")
    st = wf / "status"
    st.mkdir()
    tas, pr = "DEMO.atmos.hist.r1.tas", "DEMO.atmos.hist.r1.pr"
    good = "STAT:20260101_000000_000000:DEMO:DEMO:Generate:Engaged:host=h,pid=1\n"
    good += "STAT:20260101_000001_000000:DEMO:DEMO:Generate:Pass:exit=0\n"
    # tas: garbage lines, no header, and a torn last line.
    (st / f"{tas}.status").write_bytes(
        good.encode() + b"STAT:garbage\n\xff\xfe binary\nSTAT:20260101_000002_000000:DEMO:VALI"
    )
    (wf / "work" / tas).mkdir(parents=True)  # what its recorded Generate made
    (wf / "work" / tas / "data.txt").write_text(f"dataset={tas}\ntime=ok\nvalues=1,2,3\n")
    # pr: empty.
    (st / f"{pr}.status").write_bytes(b"")
    before = {p.name: p.read_bytes() for p in st.iterdir() if p.is_file()}
    r = padocc("compile", str(wf))
    assert r.returncode == 0, r.stderr
    err = r.stderr
    assert f"{st / tas}.status:1: missing DATASETID header" in err
    assert f"{st / tas}.status:3: malformed STAT line ignored" in err
    assert f"{st / tas}.status:5: torn last line ignored" in err
    assert f"{st / pr}.status: empty status file" in err
    assert "Traceback" not in err
    # State from valid lines only: tas resumes after Generate:Pass, at VALIDATION.
    assert position_of(read_history(st / f"{tas}.status").stats).step == "Generate"
    cycle_until_done(wf)
    assert final_states(wf) == {tas: "DEMO:Pass", pr: "DEMO:Pass"}
    # Nothing rewritten in place: only bytes appended.
    for name, old in before.items():
        new = (st / name).read_bytes()
        assert new[: len(old)] == old, name
    assert (tas, "generate") not in demo_runs(wf)  # its recorded Pass was kept


def test_unreadable_status_file_is_a_loud_failure(tmp_path: Path):
    wf = small_demo(tmp_path / "demo")
    st = wf / "status"
    st.mkdir()
    tas, pr = "DEMO.atmos.hist.r1.tas", "DEMO.atmos.hist.r1.pr"
    (st / f"{tas}.status").mkdir()  # a directory where the file should be
    (st / f"{pr}.status").symlink_to(tmp_path / "elsewhere" / "x.status")  # dangling
    # The compile refuses the directory, as it does a FIFO (issue 17: said at compile
    # time, not by every cycle's job), and writes nothing.
    before = sorted(p for p in wf.rglob("*"))
    r = padocc("compile", str(wf))
    # (small_demo's graph has a warning of its own, said before.)
    assert (r.returncode, [ln for ln in r.stderr.splitlines() if "error" in ln]) == (
        2,
        [f"{st.resolve() / tas}.status: error: status file is a directory, not a regular file"],
    )
    assert sorted(p for p in wf.rglob("*")) == before
    # Made behind the compile's back: the job fails loudly.
    (st / f"{tas}.status").rmdir()
    r = padocc("compile", str(wf))
    assert r.returncode == 0, r.stderr
    (st / f"{tas}.status").mkdir()
    assert read_history(st / f"{pr}.status").warnings == [
        f"{st / pr}.status: status file is a symbolic link to nowhere; ignored"
    ]
    from conftest import snakemake

    res = snakemake(wf, check=False)
    out = job_logs(wf)
    assert res.returncode != 0 and "exit status 3" in res.stderr + res.stdout
    assert f"cannot open status file {st / tas}.status: Is a directory" in out
    assert f"cannot open status file {st / pr}.status: it is a symbolic link" in out
    # Nothing was created through the dangling link, outside the workflow.
    assert not (tmp_path / "elsewhere").exists()
    assert (st / f"{tas}.status").is_dir() and not any((st / f"{tas}.status").iterdir())
    # No step claims success without its record.
    assert not any((wf / "work").glob("*/runs.log")) or all(
        "publish" not in p.read_text() for p in (wf / "work").glob("*/runs.log")
    )


# ---------------------------------------------------------------- 7. disk and permission faults


def _mount_tmpfs(where: Path, opts: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                       capture_output=True, check=False)  # fmt: skip
    return r.returncode == 0


@pytest.mark.parametrize("fault", ["full", "readonly"])
def test_status_append_fails_loudly(fault: str, tmp_path: Path):
    wf = small_demo(tmp_path / "demo")
    compile_wf(wf)
    st = wf / "status"
    opts = "size=16k" if fault == "full" else "size=64k,ro"
    if not _mount_tmpfs(st, opts):
        pytest.skip("cannot mount a tmpfs here (not root, or no mount namespace)")
    try:
        if fault == "full":
            fill(st / "filler")
        from conftest import snakemake

        r = snakemake(wf, check=False, timeout=200)
        out = job_logs(wf)
        assert r.returncode != 0 and "exit status 3" in r.stderr + r.stdout
        assert "padocc: cannot" in out and "status file" in out
        # No slot claims a step ran: nothing passed with its record missing.
        slots = list((wf / ".padocc" / "run").rglob("*.json"))
        assert not any('"ran"' in p.read_text() for p in slots)
    finally:
        subprocess.run(["umount", "-l", str(st)], check=False)
    # Disk back: the next cycles finish the work, and the records are whole.
    cycle_until_done(wf)
    assert set(final_states(wf).values()) == {"DEMO:Pass"}
    check_status_files(sorted(st.glob("*.status")))


def fill(path: Path) -> None:
    """Write to path until its filesystem is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"x" * 512):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def test_partial_append_on_a_full_disk_is_taken_back(tmp_path: Path):
    """A full disk that takes part of a record (tmpfs allocates whole pages): the
    append fails loudly and leaves the file as it was. Left there, the piece would be
    closed into a whole-looking line by the next append, and read with no warning."""
    from compiler.core.statusfile import StatusWriteError

    mnt = tmp_path / "disk"
    if not _mount_tmpfs(mnt, "size=16k"):
        pytest.skip("cannot mount a tmpfs here (not root, or no mount namespace)")
    try:
        p = mnt / "d.status"
        append_stats(p, "d", [Stat(utc_stamp(), "W", "W", "A", "Pass", {})])
        before = p.read_bytes()
        fill(mnt / "filler")
        # Longer than what is left of the status file's last page: a short write.
        with pytest.raises(StatusWriteError, match="cannot append to status file .*: short write"):
            append_stats(p, "d", [Stat(utc_stamp(), "W", "W", "B", "Fail", {"msg": "y" * 6000})])
        assert p.read_bytes() == before
        os.unlink(mnt / "filler")
        append_stats(p, "d", [Stat(utc_stamp(), "W", "W", "C", "Pass", {})])
        h = read_history(p)
        assert h.warnings == [] and [(s.step, s.state) for s in h.stats] == [
            ("A", "Pass"),
            ("C", "Pass"),
        ]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
