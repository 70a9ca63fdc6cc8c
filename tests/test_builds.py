"""Builds (issue 14, items 3 and 4; issue 17's compile tracebacks): a build in use is
never deleted; no compile publishes a build it did not write whole, alone or beside
other compiles, on a full disk or with a directory where its link belongs; a moved or
copied workflow directory acts on itself only. Real compiles, real Snakemake."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PROFILES, compile_wf, final_states, padocc, tree_snapshot
from test_reliability import (
    _mount_tmpfs,
    compile_paused_at,
    fill,
    generated_output_valid,
    small_demo,
    temporaries,
)

BUILD_FILES = {"Snakefile", "manifest.json", "datasets.tsv", "pending.tsv", "jobs.tsv",
               "gate_targets.txt", "gate_waiting.txt", "status_coverage.json"}  # fmt: skip
NOT_PUBLISHED = "nothing was published, the previous build is still current"


def compile_env(wf: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compiler", "compile", str(wf)],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, **env})  # fmt: skip


def builds_of(wf: Path) -> list[str]:
    return sorted(
        p.name for p in (wf / ".padocc" / "builds").iterdir() if not p.name.startswith(".")
    )


def current_build(wf: Path) -> str:
    return os.readlink(wf / ".padocc" / "current").split("/")[-1]


def assert_whole(wf: Path, build: str) -> None:
    bdir = wf / ".padocc" / "builds" / build
    assert {p.name for p in bdir.iterdir()} >= BUILD_FILES, (build, sorted(bdir.iterdir()))
    m = json.loads((bdir / "manifest.json").read_text())
    assert m["build"] == build
    assert build in (bdir / "Snakefile").read_text()


def one_step_workflow(wf: Path, command: str, ids: tuple[str, ...] = ("one",)) -> Path:
    """NAME -> Step -> Pass/Fail, datasets ONE.<id>."""
    wf.mkdir(parents=True)
    (wf / "ids.txt").write_text("".join(f"ONE.{i}\n" for i in ids))
    (wf / "workflow.yaml").write_text(
        "name: ONE\ndatasets:\n  lists: [ids.txt]\nrouting_key: all\ngraph: transitions.yaml\n"
        "defaults:\n  resources: {runtime: 10m, mem: 100M, cpus_per_task: 1}\n  retries: 0\n"
        f"steps:\n  Step:\n    command: {json.dumps(command)}\n"
    )
    (wf / "transitions.yaml").write_text(
        "ONE:Ready:\n  default:\n    - Step:Ready\nStep:Ready:\n  default:\n    - Step:Engaged\n"
        "Step:Pass:\n  default:\n    - Pass\nStep:Fail:\n  default:\n    - Fail\n"
    )
    return wf


def wait_for(what, why: str, limit: float = 180) -> None:
    """Wait on a condition (a file, a process gone); the limit only ends a hung test."""
    end = time.monotonic() + limit
    while not what():
        assert time.monotonic() < end, why
        time.sleep(0.1)


# ------------------------------------------------------------- concurrent compiles


def test_a_compile_never_removes_another_compiles_temporary_build(tmp_path: Path):
    """A paused in the middle of its write while B compiles and prunes: A's temporary
    build survives B, and A then publishes it whole."""
    wf = small_demo(tmp_path / "demo")
    compile_wf(wf)
    a = compile_paused_at(wf, "build-written")
    try:
        mine = temporaries(wf)
        assert len(mine) == 1
        b = compile_env(wf, PADOCC_KEEP_BUILDS="1")
        assert b.returncode == 0, b.stderr
        assert mine <= temporaries(wf)  # B swept nothing A is writing
    finally:
        os.kill(a.pid, signal.SIGUSR1)  # A goes on
    assert a.wait(timeout=300) == 0
    rest = a.stderr.read()
    assert "Traceback" not in rest, rest
    assert_whole(wf, current_build(wf))
    assert current_build(wf) != b.stdout.split("(build ")[1].rstrip(")\n")
    generated_output_valid(wf)


@pytest.mark.parametrize("stage", ["writing", "build-written"])
def test_a_compile_whose_temporary_build_vanished_publishes_nothing(stage: str, tmp_path: Path):
    wf = small_demo(tmp_path / "demo")
    compile_wf(wf)
    before, builds = current_build(wf), builds_of(wf)
    snakefile = (wf / "Snakefile").read_bytes()
    a = compile_paused_at(wf, stage)
    try:
        (tmp,) = temporaries(wf)
        shutil.rmtree(tmp)  # what an older compile's sweep did
    finally:
        os.kill(a.pid, signal.SIGUSR1)
    assert a.wait(timeout=300) == 2
    assert a.stderr.read() == (
        f"{tmp}: error: the temporary build was removed while it was written; {NOT_PUBLISHED}\n"
    )
    assert current_build(wf) == before and builds_of(wf) == builds
    assert (wf / "Snakefile").read_bytes() == snakefile and temporaries(wf) == set()


def test_an_older_build_published_last_is_never_pruned(tmp_path: Path):
    """A started first (its build's name is older) but publishes after B. B, keeping
    one build, must not prune A's build: A is about to make it current."""
    wf = small_demo(tmp_path / "demo")
    compile_wf(wf)
    a = compile_paused_at(wf, "before-current")
    try:
        b = compile_env(wf, PADOCC_KEEP_BUILDS="1")
        assert b.returncode == 0, b.stderr
    finally:
        os.kill(a.pid, signal.SIGUSR1)
    assert a.wait(timeout=300) == 0, a.stderr.read()
    assert_whole(wf, current_build(wf))
    generated_output_valid(wf)
    assert compile_env(wf, PADOCC_KEEP_BUILDS="1").returncode == 0  # alone: prunes
    assert builds_of(wf) == [current_build(wf)]


def test_parallel_compiles_publish_only_whole_builds(tmp_path: Path):
    """Rounds of 6 compiles at once, keeping 3 builds: every compile exits 0 (or 2 with
    one line), none says a traceback, and every build left is whole."""
    wf = small_demo(tmp_path / "demo")
    compile_wf(wf)
    env = {**os.environ, "PADOCC_KEEP_BUILDS": "3"}
    cmd = [sys.executable, "-m", "compiler", "compile", str(wf)]
    for _ in range(3):
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env) for _ in range(6)]  # fmt: skip
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode in (0, 2) and "Traceback" not in err, err
            if p.returncode == 0:
                build = out.split("(build ")[1].rstrip(")\n")
                assert (wf / ".padocc" / "builds" / build).is_dir() or build not in builds_of(wf)
            else:
                assert len(err.splitlines()) == 1 and ": error: " in err, err
        for build in builds_of(wf):
            assert_whole(wf, build)
        assert_whole(wf, current_build(wf))
    generated_output_valid(wf)
    compile_wf(wf)  # alone: keeps 20 by default, sweeps the debris (none here)
    assert temporaries(wf) == set()


# ------------------------------------------------------------- faults


def test_current_replaced_by_a_directory(tmp_path: Path):
    wf = small_demo(tmp_path / "demo")
    compile_wf(wf)
    cur = wf / ".padocc" / "current"
    cur.unlink()
    cur.mkdir()
    (cur / "notes.txt").write_text("someone's\n")
    before = tree_snapshot(wf)
    for cmd in (["compile", str(wf)], ["run", str(wf), "--profile", "local"]):
        r = padocc(*cmd)
        assert r.returncode == 2, r.stdout + r.stderr
        assert r.stderr == (
            f"{cur}: error: a directory, not padocc's link to the current build; move it "
            "away and compile again (nothing was written)\n"
        )
        assert tree_snapshot(wf) == before
    shutil.rmtree(cur)
    compile_wf(wf)
    generated_output_valid(wf)


def test_compile_on_a_full_disk(tmp_path: Path):
    """Exit 2 with one line; nothing half-written is left or published; the previous
    build stays current; with space again, the next compile works."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "size=4m"):
        pytest.skip("cannot mount a tmpfs here (not root, or no mount namespace)")
    try:
        wf = small_demo(disk / "demo")
        compile_wf(wf)
        before, builds = current_build(wf), builds_of(wf)
        fill(disk / "filler")
        snap = tree_snapshot(wf)
        r = padocc("compile", "-q", str(wf))  # errors only: the graph's warnings left out
        assert r.returncode == 2, r.stdout + r.stderr
        assert re.fullmatch(
            rf"{re.escape(str(wf))}/\S+: error: cannot write build \S+: No space left on "
            rf"device; {NOT_PUBLISHED}\n",
            r.stderr,
        ), r.stderr
        assert tree_snapshot(wf) == snap
        assert current_build(wf) == before and builds_of(wf) == builds
        os.unlink(disk / "filler")  # Snakemake needs room to run at all
        generated_output_valid(wf)  # the previous build, whole and runnable
        compile_wf(wf)
        assert current_build(wf) != before
        generated_output_valid(wf)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# ------------------------------------------------------------- builds in use


WAIT_FOR_GO = "touch {workflow_dir}/started; while [ ! -e {workflow_dir}/go ]; do sleep 0.1; done"


def start_run(wf: Path) -> subprocess.Popen:
    """Plain `snakemake` on the workflow's Snakefile, in a session of its own."""
    cmd = ["timeout", "-k", "10", "600", sys.executable, "-m", "snakemake", "--profile",
           str(PROFILES / "local"), "-s", str(wf / "Snakefile"), "-d", str(wf)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip


def session_alive(sid: int) -> bool:
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[3]) == sid and stat[0] != "Z":
                return True
    return False


def live_run(tmp_path: Path) -> tuple[Path, str, subprocess.Popen]:
    """A compiled workflow, the build, and a run of it whose job is waiting for `go`."""
    wf = one_step_workflow(tmp_path / "one", WAIT_FOR_GO)
    compile_wf(wf)
    run = start_run(wf)
    try:
        wait_for((wf / "started").exists, "the run's job never started")
    except AssertionError:
        os.killpg(run.pid, signal.SIGKILL)
        raise
    return wf, current_build(wf), run


def test_prune_never_removes_a_build_a_live_run_holds(tmp_path: Path):
    wf, held, run = live_run(tmp_path)
    try:
        for _ in range(3):  # three compiles, each keeping only the newest build
            r = compile_env(wf, PADOCC_KEEP_BUILDS="1")
            assert r.returncode == 0, r.stderr
        assert builds_of(wf) == sorted([held, current_build(wf)])  # the others went
        assert_whole(wf, held)
        (wf / "go").touch()
        assert run.wait(timeout=300) == 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert final_states(wf) == {"ONE.one": "ONE:Pass"}
    assert compile_env(wf, PADOCC_KEEP_BUILDS="1").returncode == 0
    assert held not in builds_of(wf)  # the run ended: no longer held


def test_a_run_killed_with_kill_9_frees_its_build(tmp_path: Path):
    wf, held, run = live_run(tmp_path)
    try:
        assert compile_env(wf, PADOCC_KEEP_BUILDS="1").returncode == 0
        assert held in builds_of(wf)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # Snakemake, the job's wrapper, its command
        run.wait()
    wait_for(lambda: not session_alive(run.pid), "the killed run's processes never ended")
    assert compile_env(wf, PADOCC_KEEP_BUILDS="1").returncode == 0
    assert builds_of(wf) == [current_build(wf)]


def test_clean_never_removes_a_build_a_job_still_holds(tmp_path: Path):
    """A job outlives its Snakemake (killed -9 alone here; on SLURM, a job runs on after
    its run is killed): nothing holds the run lock any more, but the job's wrapper holds
    its build. `padocc clean` keeps that build however old, and removes it once the job
    has ended (before, it removed it under the running job)."""
    wf, held, run = live_run(tmp_path)
    try:
        (snake,) = [int(d) for d in os.listdir("/proc") if d.isdigit() and _ppid(int(d)) == run.pid]
        os.kill(snake, signal.SIGKILL)  # Snakemake alone: its job's wrapper lives on
        run.wait()
        compile_wf(wf)
        assert current_build(wf) != held
        clean = ("clean", str(wf), "--retain", "1d", "--now", "2100-01-01")
        r = padocc(*clean)
        assert r.returncode == 0, r.stderr
        assert f"{wf}: build {held} is in use by a live run or job: kept" in r.stdout.splitlines()
        assert held in builds_of(wf)
        assert_whole(wf, held)
        (wf / "go").touch()
        wait_for(lambda: final_states(wf) == {"ONE.one": "ONE:Pass"}, "the job never ended")
        wait_for(lambda: not session_alive(run.pid), "the job's processes never ended")
    finally:
        if session_alive(run.pid):
            os.killpg(run.pid, signal.SIGKILL)
    r = padocc(*clean)
    assert r.returncode == 0, r.stderr
    assert builds_of(wf) == [current_build(wf)]


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError):
        return 0


@pytest.mark.parametrize("var, top", [("PADOCC_KEEP_BUILDS", 10000), ("PADOCC_SWEEP", 10000000)])
def test_a_count_from_the_environment_must_be_a_whole_number(tmp_path: Path, var: str, top: int):
    wf = small_demo(tmp_path / "demo")
    for bad in ("0", "-1", "x", str(top + 1)):
        r = compile_env(wf, **{var: bad})
        assert r.returncode == 2
        assert r.stderr == f"{var}: error: must be a whole number from 1 to {top}, not {bad!r}\n"
        assert not (wf / ".padocc").exists()


# ------------------------------------------------------------- moved and copied


def no_absolute_paths(wf: Path, *roots: Path) -> None:
    """Nothing padocc keeps under .padocc/ (jobs' own logs aside), nor the Snakefile,
    names a workflow directory by its absolute path."""
    files = [wf / "Snakefile", *(p for p in (wf / ".padocc").rglob("*") if "logs" not in p.parts)]
    for p in files:
        if p.is_file():
            text = p.read_text(errors="replace")
            for root in roots:
                assert str(root) not in text, (p, root)


@pytest.mark.parametrize("how", ["mv", "cp"])
def test_a_moved_or_copied_workflow_acts_on_itself(how: str, tmp_path: Path):
    src = one_step_workflow(tmp_path / "a" / "wf", "echo ran >> runs.log", ids=("one", "two"))
    compile_wf(src)
    dst = tmp_path / "b" / "wf"
    dst.parent.mkdir()
    if how == "mv":
        src.rename(dst)
        (src.parent / "wf").mkdir()  # a new directory where the old one was: never touched
    else:
        subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    original = tree_snapshot(src)
    no_absolute_paths(dst, src, dst)

    r = padocc("block", str(dst), "ONE.one", "--reason", "moved")
    assert r.returncode == 0, r.stderr
    assert ":Blocked:" in (dst / "status" / "ONE.one.status").read_text()
    r = padocc("unblock", str(dst), "ONE.one")
    assert r.returncode == 0, r.stderr
    r = padocc("status", str(dst), "--format", "ids")
    assert r.returncode == 0 and set(r.stdout.split()) == {"ONE.one", "ONE.two"}, r
    # The build compiled in the old place runs in the new one, as it is.
    sm = subprocess.run(["timeout", "-k", "10", "600", sys.executable, "-m", "snakemake",
                         "--profile", str(PROFILES / "local"), "-s", str(dst / "Snakefile"),
                         "-d", str(dst)], capture_output=True, text=True, check=False)  # fmt: skip
    assert sm.returncode == 0, sm.stderr[-3000:]
    assert final_states(dst) == {"ONE.one": "ONE:Pass", "ONE.two": "ONE:Pass"}
    r = padocc("requeue", str(dst), "ONE.one", "--at", "Step")
    assert r.returncode == 0, r.stderr
    r = padocc("run", str(dst), "--profile", "local", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert final_states(dst) == {"ONE.one": "ONE:Pass", "ONE.two": "ONE:Pass"}
    assert (
        sorted((dst / "work").glob("*/runs.log"))
        and sum(p.read_text().count("ran") for p in (dst / "work").glob("*/runs.log")) == 3
    )  # two in the first run, one after the requeue
    assert tree_snapshot(src) == original  # the original: untouched
    no_absolute_paths(dst, src, dst)


def test_a_moved_workflow_calls_its_own_precondition_hook(tmp_path: Path):
    """A precondition's map hook is found from where the build lies: after `mv`, the
    build compiled in the old place (plain `snakemake` on its Snakefile) calls the moved
    hook file, and no file under .padocc names either place. Before, the manifest held
    the hook's absolute path: the moved build could not load it (and a copy ran the
    original's hook)."""
    from test_gate_requests import HOOKED, log_lines
    from test_gate_requests import workflow as gate_workflow

    (tmp_path / "a").mkdir()
    src = gate_workflow(tmp_path / "a", HOOKED)
    (src / "hooks.py").write_text("def odd(low, high):\n    return low, high\n")
    compile_wf(src)
    dst = tmp_path / "b" / "wf"
    dst.parent.mkdir()
    src.rename(dst)
    sm = subprocess.run(["timeout", "-k", "10", "600", sys.executable, "-m", "snakemake",
                         "--profile", str(PROFILES / "local"), "-s", str(dst / "Snakefile"),
                         "-d", str(dst)], capture_output=True, text=True, check=False)  # fmt: skip
    assert sm.returncode == 0, sm.stderr[-3000:]
    made = sorted((gate, lo) for what, gate, lo, _ in log_lines(dst) if what == "start")
    assert made == [("fsn", "1000"), ("lev1", "1000"), ("lev1", "1050")], made
    no_absolute_paths(dst, src, dst)


def test_no_message_a_build_keeps_names_the_workflow_directory(tmp_path: Path):
    """The messages a build keeps (a routing dead end's reason, which a job writes into
    the dataset's Quarantined line; the graph's warnings) name the workflow's files
    relative to it, as every path in the build does: a moved or copied directory's
    jobs never write the old place's path. Before, a compile given the directory's
    absolute path kept it in each reason."""
    from conftest import fresh_copy

    wf = fresh_copy("fanout", tmp_path / "fanout")
    compile_wf(wf)
    m = json.loads((wf / ".padocc" / "current" / "manifest.json").read_text())
    reasons = [a["reason"] for acts in m["graph"]["table"].values() for a in acts.values()
               if "reason" in a]  # fmt: skip
    assert reasons and all(r.startswith("./transitions.yaml:") for r in reasons), reasons
    no_absolute_paths(wf, wf)
