"""Quiet cycles and the change journal (render/quiet.py, core/journal.py), from the
operator's side: a no-op cycle of a large workflow answers from the last full compile
without reading every dataset, and is never stale.

Each test starts from a workflow of QUIET_FROM (10,000) finished datasets, each with a
declared input, the smallest a quiet cycle serves. A change made through padocc (a
job, `padocc requeue`, `padocc block`) is seen at once through the journal; a change
made behind its back (an editor, a new input, a removed status file, a list or YAML
edit) is seen by the sweep or the file signatures; a damaged journal or snapshot only
costs a full compile. Real padocc, real Snakemake. No timing is asserted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import padocc

from compiler.core.journal import journal_path
from compiler.render.quiet import QUIET_FILE, QUIET_FROM

N = QUIET_FROM
IDS = [f"QJ.g{i // 1000:02d}.m{i % 1000:03d}" for i in range(N)]

WORKFLOW = """name: QJ
datasets:
  lists: [ids.txt]
  inputs: "data/{dataset}.in"
graph: transitions.yaml
defaults:
  resources: {runtime: 5m, mem: 100M}
  retries: 0
steps:
  Make:
    command: "echo {dataset} >> {workflow_dir}/runs.log"
"""

GRAPH = """QJ:Ready:
  default: [Make:Ready]
Make:Ready:
  default: [Make:Engaged]
Make:Pass:
  default: [Pass]
Make:Fail:
  default: [Fail]
"""


def _stamp(t: datetime) -> str:
    return t.strftime("%Y%m%d_%H%M%S_%f")


def _finished(ds: str, t: datetime) -> str:
    t2 = t + timedelta(milliseconds=5)
    t3 = t2 + timedelta(milliseconds=5)
    return (
        f"DATASETID={ds}\n"
        f"STAT:{_stamp(t)}:QJ:QJ:Make:Engaged:host=t,pid=1,attempt=1\n"
        f"STAT:{_stamp(t2)}:QJ:QJ:Make:Pass:exit=0,attempt=1\n"
        f"STAT:{_stamp(t3)}:QJ:QJ:QJ:Pass:build=t\n"
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wf = tmp_path_factory.mktemp("qj") / "wf"
    (wf / "data").mkdir(parents=True)
    (wf / "status").mkdir()
    (wf / "workflow.yaml").write_text(WORKFLOW)
    (wf / "transitions.yaml").write_text(GRAPH)
    (wf / "ids.txt").write_text("".join(i + "\n" for i in IDS))
    past = time.time() - 86400
    t0 = datetime.now(UTC) - timedelta(hours=1)
    for i in IDS:
        p = wf / "data" / f"{i}.in"
        p.write_text("v1\n")
        os.utime(p, (past, past))
        (wf / "status" / f"{i}.status").write_text(_finished(i, t0))
    return wf


@pytest.fixture
def wf(template: Path, tmp_path: Path) -> Path:
    """A copy, compiled in full twice: the second compile's snapshot is the one the
    test's cycles may answer from (the first had just made the journal)."""
    dst = tmp_path / "wf"
    shutil.copytree(template, dst)
    assert padocc("compile", str(dst), timeout=300).returncode == 0
    for cmd in ("block", "unblock"):  # padocc writes: the journal has entries
        assert padocc(cmd, str(dst), IDS[0], "--reason", "test").returncode == 0
    time.sleep(2.1)  # past the status index's racy window: the no-op compiles are no-ops
    for _ in range(2):
        r = padocc("compile", str(dst), timeout=300)
        assert r.returncode == 0, r.stderr
    assert quietly(dst), "a no-op compile of an unchanged workflow answers quietly"
    return dst


def quietly(wf: Path, *env: tuple[str, str]) -> bool:
    """Compile; True when it answered from the last full compile (nothing written)."""
    before = os.readlink(wf / ".padocc" / "current")
    r = run(["compile", str(wf)], env)
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip().splitlines()[-1]
    assert line.startswith(f"compiled QJ: {N} datasets"), line
    said_so = line.endswith(", unchanged)")
    # A quiet compile writes no build; a full one makes a new one current.
    assert said_so == (os.readlink(wf / ".padocc" / "current") == before), r.stdout
    return said_so


def run(args: list[str], env: tuple[tuple[str, str], ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "compiler", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **dict(env)},
    )


def counts_line(wf: Path) -> str:
    r = run(["compile", str(wf)])
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


def append_behind_padocc(path: Path, line: str) -> None:
    """What an editor or another tool does: no padocc writer, no journal entry."""
    with open(path, "a") as f:
        f.write(line + "\n")


def padocc_run(wf: Path) -> subprocess.CompletedProcess:
    r = run(["run", str(wf)])
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def runs_log(wf: Path) -> list[str]:
    p = wf / "runs.log"
    return p.read_text().split() if p.exists() else []


def test_a_no_op_cycle_answers_quietly_and_padocc_run_starts_no_snakemake(wf: Path):
    r = padocc_run(wf)
    assert "unchanged)" in r.stdout and "nothing to run: Snakemake not started" in r.stdout
    assert runs_log(wf) == []


def test_a_requeue_through_padocc_is_seen_at_once(wf: Path):
    ds = IDS[4321]
    assert padocc("requeue", str(wf), ds, "--at", "Make").returncode == 0
    r = padocc_run(wf)
    assert "unchanged)" not in r.stdout
    assert runs_log(wf) == [ds]
    assert not quietly(wf), "the run's own lines are in the journal: one full compile"
    assert quietly(wf)


def test_a_status_file_edited_behind_padoccs_back_is_seen(wf: Path):
    ds = IDS[7777]
    stamp = _stamp(datetime.now(UTC))
    append_behind_padocc(wf / "status" / f"{ds}.status", f"STAT:{stamp}:QJ:QJ:Make:Ready:by=hand")
    padocc_run(wf)
    assert runs_log(wf) == [ds]


def test_an_input_given_new_content_behind_padoccs_back_is_seen(wf: Path):
    ds = IDS[12]
    (wf / "data" / f"{ds}.in").write_text("v2\n")
    r = padocc_run(wf)
    assert "re-queued 1 finished dataset" in r.stderr
    assert runs_log(wf) == [ds]


def test_an_input_touched_with_the_same_content_reruns_nothing_and_stays_quiet(wf: Path):
    ds = IDS[99]
    assert padocc("requeue", str(wf), ds, "--at", "Make").returncode == 0
    padocc_run(wf)  # its run records its input's checksum
    assert runs_log(wf) == [ds]
    assert not quietly(wf)
    assert quietly(wf)
    os.utime(wf / "data" / f"{ds}.in")
    # The sweep sees a newer input: a full compile, which finds the content unchanged.
    assert "1 inputs touched, content unchanged" in counts_line(wf)
    assert quietly(wf)
    padocc_run(wf)
    assert runs_log(wf) == [ds]


def test_a_removed_status_file_is_seen(wf: Path):
    ds = IDS[500]
    (wf / "status" / f"{ds}.status").unlink()
    padocc_run(wf)
    assert runs_log(wf) == [ds]


def test_a_new_dataset_in_the_list_is_seen(wf: Path):
    with open(wf / "ids.txt", "a") as f:
        f.write("QJ.new.m000\n")
    (wf / "data" / "QJ.new.m000.in").write_text("v1\n")
    padocc_run(wf)
    assert runs_log(wf) == ["QJ.new.m000"]


def test_an_edited_workflow_file_compiles_in_full(wf: Path):
    y = wf / "workflow.yaml"
    y.write_text(y.read_text().replace("echo {dataset}", "echo edited {dataset}"))
    assert not quietly(wf)
    snakefile_build = os.readlink(wf / ".padocc" / "current")
    assert "edited" in (wf / ".padocc" / snakefile_build / "manifest.json").read_text()
    assert quietly(wf)


def test_a_block_through_padocc_is_seen_at_once_whatever_the_sweep(wf: Path):
    """With the sweep cut to 1,000 files a cycle (ten cycles to see every file), a
    change through padocc is still seen by the very next cycle: it is in the journal."""
    env = (("PADOCC_SWEEP", "1000"),)
    assert not quietly(wf, *env)  # a full compile lays the sweep out in slices
    assert padocc("block", str(wf), IDS[9000], "--reason", "bad data").returncode == 0
    assert "1 blocked" in run(["compile", str(wf)], env).stdout


def test_a_change_behind_padoccs_back_is_seen_within_one_round_of_the_sweep(wf: Path):
    """PADOCC_SWEEP=3000 over 10,000 datasets: four slices, each cycle checks one. An
    edit behind padocc's back is seen by the cycle whose slice holds it: at the latest
    four cycles on, never missed."""
    env = (("PADOCC_SWEEP", "3000"),)
    assert not quietly(wf, *env)
    assert quietly(wf, *env)
    ds = IDS[-1]  # in the last slice
    stamp = _stamp(datetime.now(UTC))
    append_behind_padocc(wf / "status" / f"{ds}.status", f"STAT:{stamp}:QJ:QJ:Make:Ready:by=hand")
    seen = None
    for cycle in range(1, 5):
        r = run(["compile", str(wf)], env)
        assert r.returncode == 0, r.stderr
        if "1 pending" in r.stdout:
            seen = cycle
            break
        assert "unchanged)" in r.stdout
    assert seen is not None, "not seen in a whole round of the sweep"


@pytest.mark.parametrize("damage", ["cut", "garbage", "fifo", "removed"])
def test_a_damaged_journal_costs_one_full_compile_and_is_made_again(wf: Path, damage: str):
    j = journal_path(wf / "status")
    assert j.stat().st_size > 0
    if damage == "cut":
        # A requeue's entry, then the journal cut back to its marked size by hand.
        size = j.stat().st_size
        assert padocc("requeue", str(wf), IDS[3], "--at", "Make").returncode == 0
        os.truncate(j, size)  # the journal now says nothing changed: the sweep sees it
    elif damage == "garbage":
        j.write_bytes(b"\x00\xff not a journal \n")
    elif damage == "fifo":
        j.unlink()
        os.mkfifo(j)
    else:
        j.unlink()
    r = run(["compile", str(wf)])
    assert r.returncode == 0, r.stderr
    assert "unchanged)" not in r.stdout
    if damage == "cut":
        assert "1 pending" in r.stdout  # the requeue itself is in its status file
        return
    if damage != "removed":  # a removed one is made by the next padocc write
        assert j.is_file() and not j.is_symlink(), "made again as a regular file"
    assert quietly(wf) or quietly(wf)  # the first may see the remade file's directory


@pytest.mark.parametrize("damage", ["garbage", "empty", "directory"])
def test_a_damaged_snapshot_costs_one_full_compile(wf: Path, damage: str):
    q = wf / QUIET_FILE
    if damage == "directory":
        q.unlink()
        q.mkdir()
    else:
        q.write_text("{not json" if damage == "garbage" else "")
    r = run(["compile", str(wf)])
    assert r.returncode == 0, r.stderr
    assert "unchanged)" not in r.stdout and "(10000 done)" in r.stdout
    if damage != "directory":
        assert quietly(wf)


def test_a_moved_workflow_compiles_in_full_once_then_quietly(wf: Path, tmp_path: Path):
    moved = tmp_path / "moved"
    wf.rename(moved)
    assert not quietly(moved)
    assert quietly(moved)
    padocc_run(moved)
    assert runs_log(moved) == []


def test_a_copy_answers_for_itself_not_for_the_original(wf: Path, tmp_path: Path):
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(wf), str(copy)], check=True)
    ds = IDS[42]
    assert padocc("requeue", str(copy), ds, "--at", "Make").returncode == 0
    assert quietly(wf), "the original is unchanged"
    padocc_run(copy)
    assert runs_log(copy) == [ds] and runs_log(wf) == []


def test_a_quiet_compile_beside_a_live_run_leaves_the_run_its_datasets(wf: Path):
    """A run whose step waits on a go-file holds its dataset; compiles meanwhile must
    not answer 'nothing to do' from before the run, and nothing runs twice."""
    ds = IDS[2024]
    y = wf / "workflow.yaml"
    y.write_text(
        y.read_text().replace(
            'command: "echo {dataset} >> {workflow_dir}/runs.log"',
            'command: "touch {workflow_dir}/started; while [ ! -e {workflow_dir}/go ]; do '
            'sleep 0.2; done; echo {dataset} >> {workflow_dir}/runs.log"',
        )
    )
    assert not quietly(wf)
    assert quietly(wf)
    assert padocc("requeue", str(wf), ds, "--at", "Make").returncode == 0
    p = subprocess.Popen(
        [sys.executable, "-m", "compiler", "run", str(wf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (wf / "started").exists():
            assert p.poll() is None, p.communicate()[0]
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.2)
        beside = run(["compile", str(wf)])
        assert beside.returncode == 0, beside.stderr
        assert "unchanged)" not in beside.stdout and "1 held by a live run" in beside.stdout
        (wf / "go").touch()
        out = p.communicate(timeout=300)[0]
        assert p.returncode == 0, out
    finally:
        if p.poll() is None:
            p.kill()
    assert runs_log(wf) == [ds]
    assert not quietly(wf) and quietly(wf)
