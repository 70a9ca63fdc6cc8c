"""The cron cycle, driven several times in a row as cron would, on the local profile."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import fresh_copy, padocc

from compiler.render.plan import Pending, Selection, select


@pytest.fixture
def flock(tmp_path: Path) -> Path:
    dst = tmp_path / "flock"
    fresh_copy("flock", dst)
    conf = dst / "shepard.yaml"
    conf.write_text(conf.read_text().replace("batch_limit: 1000", "batch_limit: 6"))
    return dst


def cycle(wf: Path, *args: str) -> subprocess.CompletedProcess:
    r = padocc("cycle", "--conf", str(wf / "shepard.yaml"), "--autolog", *args, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def current_build(wf: Path) -> str:
    return os.readlink(wf / ".padocc" / "current").split("/")[-1]


def engaged_in_build(wf: Path, build: str) -> int:
    """Jobs that ran in a build: distinct (dataset, slot) of its Engaged lines (a job
    may run several steps, each with its own Engaged line)."""
    jobs = set()
    for d in (wf / "status", wf / "complete"):
        for p in d.rglob("*.status") if d.exists() else []:
            for ln in p.read_text().splitlines():
                if ":Engaged:" in ln and f"build={build}" in ln:
                    jobs.add((p.name, ln.split("slot=")[1].split(",")[0]))
    return len(jobs)


def test_cycles_as_cron_would(flock: Path):
    (flock / "groups" / "obs_b.txt").write_text("OBS_sst_b\nOBS_ice_b\nOBS_sal_bad\n")
    seen_complete: list[str] = []
    for n in range(1, 16):
        if n == 2:  # a new group arrives between cycles
            (flock / "groups" / "new_c.txt").write_text("NEW_x_c\nNEW_y_c\n")
        if n == 3:  # a group changes: one more dataset
            (flock / "groups" / "new_c.txt").write_text("NEW_x_c\nNEW_y_c\nNEW_z_c\n")
        if n == 4:  # quarantine a group for one cycle
            (flock / "groups" / "cmip_a.shpignore").write_text("")
        if n == 5:
            (flock / "groups" / "cmip_a.shpignore").unlink()
        before = {p.name: p.read_text() for p in (flock / "status").glob("CMIP6_*")} if n == 4 else {}
        r = cycle(flock)
        b = current_build(flock)
        # batch_limit holds: what was planned, and what actually engaged.
        slots = sum(int(ln.split("\t")[2]) for ln in (flock / ".padocc/current/pending.tsv").read_text().splitlines())
        assert slots <= 6 and engaged_in_build(flock, b) <= 6
        if n == 2:
            assert "new group new_c: 2 datasets" in r.stdout
        if n == 3:
            assert "group new_c changed" in r.stdout and "1 new dataset (NEW_z_c)" in r.stdout
        if n == 4:
            assert "quarantined group skipped: cmip_a" in r.stdout
            after = {p.name: p.read_text() for p in (flock / "status").glob("CMIP6_*")}
            assert after == before  # skipped entirely
        seen_complete += [ln.split()[1] for ln in r.stdout.splitlines() if ln.startswith("group ") and "complete" in ln]
        # Selection is random: go on until obs_b's failing dataset has had its turn too.
        bad = flock / "status" / "OBS_sal_bad.status"
        bad_ended = bad.exists() and "PADOCC:PADOCC:PADOCC:Fail" in bad.read_text()
        if set(seen_complete) >= {"cmip_a", "new_c"} and bad_ended and n > 6:
            break
    # cmip_a and new_c end in Pass (some with a bypassed metadata Warning): complete.
    assert sorted(set(seen_complete)) == ["cmip_a", "new_c"]
    done = flock / "complete" / "cmip_a"
    assert (done / "cmip_a.csv").exists() and not (flock / "groups" / "cmip_a.csv").exists()
    assert (done / "reports" / "CMIP6_pr_meta" / "data_report.json").exists()
    meta = (done / "status" / "CMIP6_pr_meta.status").read_text()
    assert ":Validate:Warning:" in meta and "bypassed=metadata.attrs" in meta
    # obs_b holds a dataset whose data differ (a real Fail): it stays in the flock.
    assert (flock / "groups" / "obs_b.txt").exists()
    assert "PADOCC:PADOCC:PADOCC:Fail" in (flock / "status" / "OBS_sal_bad.status").read_text()
    # one log file per cycle
    assert len(list((flock / "logs").glob("cycle-*.log"))) >= 4

    # A re-queue by hand: the next cycle runs the dataset again from that step.
    r = padocc("requeue", str(flock), "OBS_sal_bad", "--at", "Validate")
    assert r.returncode == 0, r.stderr
    cycle(flock)
    lines = (flock / "status" / "OBS_sal_bad.status").read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if "requeue=1" in ln)
    assert ":Validate:Engaged:" in lines[i + 1]


def test_selection_is_fair_and_new_groups_do_not_jump(flock: Path):
    old = [Pending(f"A{i}", "", 1, "Init") for i in range(30)] + [Pending(f"B{i}", "", 1, "Init") for i in range(30)]
    new = [Pending(f"N{i}", "", 1, "Init") for i in range(10)]
    picks = Counter()
    for seed in range(400):
        chosen, left = select(old + new, Selection(7, seed))
        assert sum(p.slots for p in chosen) <= 7 and left == 70 - 7
        picks.update(p.id[0] for p in chosen)
    total = sum(picks.values())
    # Shares follow group size (30:30:10), so the new group gets no head start...
    assert abs(picks["N"] / total - 10 / 70) < 0.03
    # ...and nobody starves.
    assert abs(picks["A"] / total - 30 / 70) < 0.05 and abs(picks["B"] / total - 30 / 70) < 0.05
    # The seed is logged and replays the same choice.
    a = cycle(flock, "--dry-run", "--seed", "7").stdout
    b = cycle(flock, "--dry-run", "--seed", "7").stdout
    strip = lambda s: [ln for ln in s.splitlines() if ln.startswith("next:")]  # noqa: E731
    assert strip(a) == strip(b) and "seed 7" in a
    assert not (flock / "status").exists()  # a dry run runs nothing


def test_overlapping_cycle_runs_beside_the_lock_holder(flock: Path):
    """A cycle that finds another's lock runs what no live run holds, and leaves the
    group moves to the lock's holder (the next cycle that takes the lock does them)."""
    lock = flock / ".padocc" / "cycle.lock"
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b"cycle 20260101T000000Z pid 1 on elsewhere\n")
    try:
        r = cycle(flock)
        assert r.returncode == 0, r.stdout + r.stderr
        first = r.stdout.splitlines()[0]
        assert first == (
            "padocc cycle: cycle 20260101T000000Z pid 1 on elsewhere is still running; "
            f"this cycle ({first.split('(')[1].split(')')[0]}) runs what no live run holds "
            "and leaves group moves to it"
        )
        assert "snakemake exited 0" in r.stdout
        assert (flock / "status").is_dir() and not (flock / "complete").exists()
        assert not (flock / ".padocc" / "flock.json").exists()
    finally:
        os.close(fd)
    # The holder is gone: the lock is free at once (the kernel drops a dead holder's flock).
    r = cycle(flock)
    assert "still running" not in r.stdout
    for _ in range(12):
        if (flock / "complete").is_dir() and len(list((flock / "complete").iterdir())) == 2:
            break
        cycle(flock)
    assert sorted(p.name for p in (flock / "complete").iterdir()) == ["cmip_a", "obs_b"]


def until(what, why: str, limit: float = 180) -> None:
    """Wait for a condition (the limit only ends a hung test; no timing is asserted)."""
    end = time.monotonic() + limit
    while not what():
        assert time.monotonic() < end, why
        time.sleep(0.05)


def test_two_cycles_at_once_and_a_kill_lose_nothing(flock: Path):
    # Init and Scan steps finish, Compute steps wait on a hold file: kill -9 whichever
    # cycle is running while one does, mid-way whatever the machine's speed.
    hold = flock.parent / "hold"
    hold.touch()
    env = {**os.environ, "FLOCK_STEP_HOLD": str(hold), "FLOCK_STEP_HOLD_PHASE": "compute"}
    cmd = [sys.executable, "-m", "compiler", "cycle", "--conf", str(flock / "shepard.yaml")]
    a = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    b = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    st = flock / "status"
    until(Path(f"{hold}.seen").exists, "no step reached the hold")
    assert sum(p.read_text().count(":Pass:") for p in st.glob("*.status")) >= 2  # init, scan
    for p in (a, b):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    outs = [p.communicate()[0] for p in (a, b)]
    hold.unlink()
    # One held the lock; the other ran beside it, on what the first did not hold.
    assert sum("still running" in o for o in outs) == 1, outs
    # The next cycles finish the work; nothing was lost or done twice.
    for _ in range(12):
        cycle(flock)
        if not any(p.suffix in (".csv", ".txt") for p in (flock / "groups").iterdir()):
            break
    assert sorted(p.name for p in (flock / "complete").iterdir()) == ["cmip_a", "obs_b"]
    for status in (flock / "complete").rglob("*.status"):
        text = status.read_text()
        for line in text.splitlines()[1:]:
            assert line.startswith("STAT:") and len(line.split(":")) >= 7, line
        ends = Counter(ln.split(":")[4] for ln in text.splitlines() if ln.split(":")[5:6] in (["Pass"], ["Warning"]))
        for step in ("Init", "Scan", "Validate"):
            assert ends[step] == 1, (status.name, ends)


def test_block_and_unblock_a_dataset_between_cycles(flock: Path):
    conf = flock / "shepard.yaml"
    conf.write_text(conf.read_text().replace("batch_limit: 6", "batch_limit: 100"))
    cycle(flock, "--dry-run")  # compiles nothing, writes nothing
    padocc("compile", str(flock))
    r = padocc("block", str(flock), "CMIP6_tas_a", "--reason", "bad input")
    assert r.returncode == 0, r.stderr
    cycle(flock)
    text = (flock / "status" / "CMIP6_tas_a.status").read_text()
    assert ":Blocked:" in text and "reason=bad input" in text and ":Engaged:" not in text
    # the others went on: obs_b finished and left the flock
    assert "PADOCC:PADOCC:PADOCC:Pass" in (flock / "complete" / "obs_b" / "status" / "OBS_sst_b.status").read_text()
    assert (flock / "groups" / "cmip_a.csv").exists()  # held back by its blocked dataset
    padocc("unblock", str(flock), "--group", "cmip_a")
    cycle(flock)
    assert "group cmip_a complete" in (flock / "logs").joinpath(sorted(p.name for p in (flock / "logs").iterdir())[-1]).read_text()


def set_conf(wf: Path, **keys: object) -> None:
    """Replace (or add) top-level keys of the flock's shepard.yaml."""
    conf = wf / "shepard.yaml"
    lines = [ln for ln in conf.read_text().splitlines() if ln.split(":")[0] not in keys]
    conf.write_text("\n".join(lines + [f"{k}: {v}" for k, v in keys.items()]) + "\n")


def test_directory_group_quarantined_from_inside_stays_open_to_manual_commands(flock: Path):
    """SHEPARD's layout: a group is a directory, quarantined by a .shpignore inside it.
    The cycle skips it, but block/unblock --group still reach its datasets."""
    set_conf(flock, batch_limit=100)
    for f in ("cmip_a.csv", "obs_b.txt"):
        (flock / "groups" / f).unlink()
    group = flock / "groups" / "obs_d"
    group.mkdir()
    (group / "list.txt").write_text("OBS_x_d\nOBS_y_d\n")
    (group / ".shpignore").write_text("")
    r = cycle(flock)
    assert "quarantined group skipped: obs_d" in r.stdout
    assert not (flock / "status").exists() and not (flock / "work").exists()
    # Held by an operator while quarantined; a typo is refused, nothing written for it.
    r = padocc("block", str(flock), "--group", "obs_d", "--reason", "held")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["block OBS_x_d", "block OBS_y_d"]
    r = padocc("block", str(flock), "OBS_x_dd")
    assert (r.returncode, r.stderr) == (
        2,
        "padocc: error: unknown dataset 'OBS_x_dd' (did you mean 'OBS_x_d'?)\n",
    )
    assert not (flock / "status" / "OBS_x_dd.status").exists()
    # Out of quarantine but still blocked: it stays put.
    (group / ".shpignore").unlink()
    r = cycle(flock)
    assert "quarantined group skipped" not in r.stdout and group.is_dir()
    assert ":Engaged:" not in (flock / "status" / "OBS_x_d.status").read_text()
    assert padocc("unblock", str(flock), "--group", "obs_d").returncode == 0
    r = cycle(flock)
    assert "group obs_d complete" in r.stdout
    done = flock / "complete" / "obs_d"
    assert (done / "obs_d" / "list.txt").exists() and not group.exists()
    assert sorted(p.name for p in (done / "status").iterdir()) == [
        "OBS_x_d.status",
        "OBS_y_d.status",
    ]
    assert (done / "reports" / "OBS_x_d" / "data_report.json").exists()
    assert not list((flock / "status").glob("OBS_*_d.status"))
    # Every group done, the flock empty: the hourly cycles go on quietly.
    assert "compiled PADOCC: 0 datasets" in cycle(flock).stdout


def test_a_dataset_failing_the_same_step_is_quarantined_after_max_repeats(flock: Path):
    set_conf(flock, batch_limit=100, max_repeats=2)
    (flock / "groups" / "cmip_a.csv").unlink()
    (flock / "groups" / "obs_b.txt").write_text("OBS_sst_b\nOBS_x_broken\n")
    broken = flock / "status" / "OBS_x_broken.status"
    computes = lambda: (flock / "work" / "OBS_x_broken" / "runs.log").read_text().split().count("compute")  # noqa: E731
    for _ in range(4):  # its fail loop may need more than one cycle's slots
        cycle(flock)
        if ":Quarantined:" in broken.read_text():
            break
    last = broken.read_text().splitlines()[-1].split(":")
    assert last[4:6] == ["Compute", "Quarantined"], last
    assert "reason=visit limit^ Compute already ran 2 times" in last[6]
    assert computes() == 2
    r = padocc("status", str(flock), "--state", "Quarantined", "--format", "ids")
    assert r.stdout.split() == ["OBS_x_broken"]
    # Its group waits for it; the other dataset finished.
    cycle(flock)
    assert (flock / "groups" / "obs_b.txt").exists() and computes() == 2
    assert "PADOCC:PADOCC:PADOCC:Pass" in (flock / "status" / "OBS_sst_b.status").read_text()
    # The operator's way out: a re-queue counts afresh.
    assert padocc("requeue", str(flock), "OBS_x_broken", "--at", "Compute").returncode == 0
    for _ in range(3):
        cycle(flock)
        if broken.read_text().splitlines()[-1].split(":")[5] == "Quarantined":
            break
    assert computes() == 4


def test_a_compile_during_a_cycle_changes_nothing_its_jobs_see(flock: Path):
    """Jobs read their own build (its manifest and Snakefile), never the newest one."""
    set_conf(flock, batch_limit=100)
    hold = flock.parent / "hold"
    hold.touch()  # the cycle's steps wait until the compile below is done
    env = {**os.environ, "FLOCK_STEP_HOLD": str(hold)}
    cmd = [sys.executable, "-m", "compiler", "cycle", "--conf", str(flock / "shepard.yaml")]
    run = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        st = flock / "status"
        until(Path(f"{hold}.seen").exists, "no step of the cycle started")
        first = current_build(flock)
        engaged = lambda: sum(p.read_text().count(":Engaged:") for p in st.rglob("*.status"))  # noqa: E731
        # Mid-cycle, the workflow changes: every step now fails, and is recompiled.
        yaml = flock / "workflow.yaml"
        yaml.write_text(yaml.read_text().replace("bin/padocc_step.py", "bin/no_such_step.py"))
        r = padocc("compile", str(flock))
        assert r.returncode == 0, r.stderr
        assert current_build(flock) != first
        before = engaged()
        hold.unlink()
        out, _ = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == 0, out
    # Steps started after the compile (status files moved to complete_dir with their groups)...
    assert sum(p.read_text().count(":Engaged:") for p in flock.rglob("*.status")) > before
    # ... and all ran the cycle's own build's commands: every group completed.
    assert "group cmip_a complete" in out and "group obs_b complete" in out
    for status in (flock / "complete").rglob("*.status"):
        text = status.read_text()
        assert ":Fail:" not in text.replace(":Compute:Fail:", "") and f"build={first}" in text


def test_a_cycle_killed_while_moving_a_group_is_finished_by_the_next(
    flock: Path, monkeypatch: pytest.MonkeyPatch
):
    """The move to complete_dir is recorded before its rename: killed before the rename,
    the next cycle undoes it; killed after, the next cycle finishes it. Never twice."""
    from compiler.commands import cycle as cycle_cmd

    set_conf(flock, batch_limit=100)
    opts = cycle_cmd.CycleOptions(str(flock / "shepard.yaml"))

    class Killed(Exception):
        pass

    real_save = cycle_cmd._save_state

    def killed_after_recording(path: Path, state: dict) -> None:
        real_save(path, state)
        raise Killed

    def killed_before_removing(rec: dict) -> None:
        raise Killed

    # 1: killed right after recording the first move, before its rename.
    monkeypatch.setattr(cycle_cmd, "_save_state", killed_after_recording)
    with pytest.raises(Killed):
        cycle_cmd.run(opts)
    assert [p.name[:11] for p in (flock / "complete").iterdir()] == [".tmp-cmip_a"]
    # 2: the next cycle undoes that, then is killed after cmip_a's rename.
    monkeypatch.setattr(cycle_cmd, "_save_state", real_save)
    monkeypatch.setattr(cycle_cmd, "_remove_originals", killed_before_removing)
    with pytest.raises(Killed):
        cycle_cmd.run(opts)
    assert sorted(p.name for p in (flock / "complete").iterdir()) == ["cmip_a"]
    assert (flock / "groups" / "cmip_a.csv").exists()  # not yet removed
    # 3: a whole cycle finishes cmip_a's move and moves obs_b.
    r = cycle(flock)
    assert "group cmip_a: finished moving to" in r.stdout
    assert "group obs_b complete" in r.stdout and "group cmip_a complete" not in r.stdout
    assert sorted(p.name for p in (flock / "complete").iterdir()) == ["cmip_a", "obs_b"]
    assert [p.name for p in (flock / "groups").iterdir()] == []
    assert list((flock / "status").iterdir()) == []
    assert len(list((flock / "complete" / "cmip_a" / "status").iterdir())) == 3


def paused_at(stage: str, *args: str) -> subprocess.Popen:
    """`padocc ARGS`, stopped at a test pause stage (core/testpause): returns once it
    has said so; it waits there for SIGUSR1. Its stdout is a pipe, for the test."""
    env = {**os.environ, "PADOCC_TEST_PAUSE_AT": stage}
    p = subprocess.Popen([sys.executable, "-m", "compiler", *args], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert p.stderr is not None
    for line in p.stderr:
        if line == f"padocc-test: paused at {stage}\n":
            return p
    raise AssertionError(f"padocc {args[0]} ended (exit {p.wait()}) before {stage}")


def test_a_completed_group_leaves_status_and_manual_commands_at_once(flock: Path):
    """Right after the cycle that completes obs_b (no compile in between): its
    datasets are no longer listed, and a block by hand is refused, starting no
    orphan status file (the 48-hour soak found one: a dataset stuck at Ready)."""
    set_conf(flock, batch_limit=100)
    r = cycle(flock)
    assert "group obs_b complete" in r.stdout
    listed = padocc("status", str(flock), "--format", "ids")
    assert listed.returncode == 0, listed.stderr
    assert "OBS_sst_b" not in listed.stdout.split()
    r = padocc("block", str(flock), "OBS_sst_b", "--reason", "late")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        "padocc: error: dataset 'OBS_sst_b' is done: its group 'obs_b' completed and moved "
        f"to {flock / 'complete' / 'obs_b'}; nothing written\n"
    )
    assert not (flock / "status" / "OBS_sst_b.status").exists()
    assert ":Blocked:" not in (flock / "complete/obs_b/status/OBS_sst_b.status").read_text()


def test_a_block_during_a_group_move_is_refused_or_moved_never_lost(flock: Path):
    """A cycle paused while it moves obs_b (holding the moves lock and the group's
    status files); a person blocks one of its datasets meanwhile. The block waits,
    then is refused in one line: no orphan status file, no line lost in a removed file."""
    set_conf(flock, batch_limit=100)
    c = paused_at("group-locked", "cycle", "--conf", str(flock / "shepard.yaml"))
    try:
        moving = json.loads((flock / ".padocc" / "flock.json").read_text()) if (
            flock / ".padocc" / "flock.json").exists() else {}  # fmt: skip
        b = subprocess.Popen([sys.executable, "-m", "compiler", "block", str(flock),
                              "OBS_sst_b", "CMIP6_tas_a"], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    finally:
        os.kill(c.pid, signal.SIGUSR1)
    out, err = b.communicate(timeout=300)
    c_out, c_err = c.communicate(timeout=600)
    assert c.returncode == 0, c_out + c_err
    assert "OBS_sst_b" not in str(moving.get("completed"))  # the pause was before the move
    # Which group moved first is the cycle's order: whichever it was, the block is
    # refused for it, and nothing is written for the other either.
    assert b.returncode == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "completed and moved to" in err and err.endswith("; nothing written\n")
    assert list((flock / "status").iterdir()) == []
    for p in (flock / "complete").rglob("*.status"):
        assert ":Blocked:" not in p.read_text()


def test_every_starts_cycles_on_an_interval(flock: Path):
    """`padocc cycle --every`: each cycle its own process, started on the interval;
    --cycles bounds them. Quiet on stderr when all is well."""
    set_conf(flock, batch_limit=100)
    r = padocc("cycle", "--conf", str(flock / "shepard.yaml"), "--every", "10s", "--cycles", "2",
               timeout=900)  # fmt: skip
    assert r.returncode == 0 and r.stderr == "", r.stdout + r.stderr
    assert len(re.findall(r"^cycle \S+ seed \d+", r.stdout, re.M)) == 2, r.stdout
    assert "group obs_b complete" in r.stdout


def test_every_stops_on_sigterm_and_starts_no_new_cycle(flock: Path):
    p = subprocess.Popen([sys.executable, "-m", "compiler", "cycle", "--conf",
                          str(flock / "shepard.yaml"), "--every", "1h"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert p.stdout is not None
    for line in p.stdout:  # the first cycle has started
        if re.match(r"cycle \S+ seed \d+", line):
            break
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    assert not re.search(r"^cycle \S+ seed", out, re.M)
    # Only what a cycle stopped inside its Snakemake says (it stops that run too).
    said = [ln for ln in err.splitlines() if not ln.startswith("Using profile ")]
    assert said == [] or (
        len(said) == 2
        and said[0].startswith("padocc: SIGTERM received: Snakemake stopped")
        and said[1].endswith("stopped by SIGTERM")
    ), err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--every", "5s"], "--every: error: an interval of at least 10s, not '5s'\n"),
        (["--every", "soon"], "--every: error: cannot read duration 'soon': use e.g. '10m', '6h', '1d'\n"),
        (["--every", "10m", "--cycles", "0"], "--cycles: error: must be between 1 and 1000000\n"),
        (["--cycles", "3"], "padocc cycle: error: --cycles needs --every, and --every takes no "
                            "--dry-run, --seed or --now\n"),
        (["--every", "10m", "--now", "2030-01-01"], "padocc cycle: error: --cycles needs --every, "
                                                   "and --every takes no --dry-run, --seed or --now\n"),
    ],
)  # fmt: skip
def test_every_bad_arguments_start_nothing(flock: Path, args: list[str], said: str):
    r = padocc("cycle", "--conf", str(flock / "shepard.yaml"), *args)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", said)
    assert not (flock / ".padocc").exists()


def test_a_compile_that_read_the_flock_before_a_group_moved_does_not_rerun_it(flock: Path):
    """A compile has read the flock (obs_b there, its datasets done) when a cycle comes
    to move obs_b: the move waits for that compile, which plans from the status files
    as they were, so obs_b's datasets are not taken for new ones and run again."""
    r = padocc("run", str(flock), timeout=600)  # everything done; a run moves no group
    assert r.returncode == 0, r.stdout + r.stderr
    a = paused_at("datasets-read", "compile", str(flock))
    try:
        c = subprocess.Popen([sys.executable, "-m", "compiler", "cycle", "--conf",
                              str(flock / "shepard.yaml")], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    finally:
        os.kill(a.pid, signal.SIGUSR1)
    out, err = a.communicate(timeout=600)
    assert a.returncode == 0, err
    c_out, c_err = c.communicate(timeout=600)
    assert c.returncode == 0 and "group obs_b complete" in c_out, c_out + c_err
    planned = out.split("(build ")[1].rstrip(")\n")
    pending = (flock / ".padocc" / "builds" / planned / "pending.tsv").read_text()
    assert "OBS_" not in pending, pending
    assert list((flock / "status").glob("OBS_*")) == []
