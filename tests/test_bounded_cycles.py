"""Bounded cycles and jobs sized by the compile (issue 19, items 1 and 2), from the
user's side: real padocc-compile, `padocc run` and Snakemake on the local executor.

A cycle takes at most `max_datasets_per_cycle` pending datasets (workflow.yaml or the
cycle config), those waiting longest first, and says in one line how many it leaves;
later cycles do the rest, each dataset exactly once, also while an earlier run is still
going. A gate catches up oldest or newest first, as it says (`catch_up`). With no
`datasets_per_job`, a run sizes jobs from its profile; a value the user sets wins.
No timing is asserted: a run in flight is seen by its Engaged line, not by a sleep.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import PROFILES, padocc, pending_count, snakemake
from test_gate_bounds import MAKE, NOW, STEADY, log
from test_gate_bounds import workflow as gate_workflow

IDS = [f"BC.d{i}" for i in range(5)]

WORKFLOW = """name: BC
datasets:
  lists: [ids.txt]
graph: transitions.yaml
max_datasets_per_cycle: 2
defaults:
  resources: {runtime: 60m, mem: 100M}
  retries: 0
steps:
  Make:
    command: >-
      if grep -qx {dataset} {workflow_dir}/wait.txt;
      then while [ ! -e {workflow_dir}/go ]; do sleep 0.1; done; fi;
      echo {dataset} >> {workflow_dir}/runs.log
"""

GRAPH = """BC:Ready:
  default: [Make:Ready]
Make:Ready:
  default: [Make:Engaged]
Make:Pass:
  default: [Pass]
Make:Fail:
  default: [Fail]
"""

DEFERRED = (
    "warning: {n} datasets deferred to later cycles (a cycle takes at most "
    "max_datasets_per_cycle datasets, here {k}, those waiting longest first)"
)


def make_wf(root: Path, ids: list[str] = IDS, workflow: str = WORKFLOW) -> Path:
    wf = root / "wf"
    wf.mkdir()
    (wf / "workflow.yaml").write_text(workflow)
    (wf / "transitions.yaml").write_text(GRAPH)
    (wf / "ids.txt").write_text("".join(i + "\n" for i in ids))
    (wf / "wait.txt").write_text("")
    return wf


def pending_ids(wf: Path) -> list[str]:
    text = (wf / ".padocc" / "current" / "pending.tsv").read_text()
    return [ln.split("\t")[0] for ln in text.splitlines()]


def runs(wf: Path) -> list[str]:
    p = wf / "runs.log"
    return p.read_text().split() if p.exists() else []


def deferred_lines(r: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in (r.stdout + r.stderr).splitlines() if "deferred" in ln]


def test_bounded_cycles_lose_nothing_and_take_the_longest_waiting_first(tmp_path: Path):
    wf = make_wf(tmp_path)
    taken, said = [], []
    for _ in range(4):
        r = padocc("compile", str(wf))
        assert r.returncode == 0, r.stderr
        said.append(deferred_lines(r))
        taken.append(pending_ids(wf))
        if taken[-1]:
            snakemake(wf)
    # New datasets in the spec's order, two a cycle; each run exactly once.
    assert taken == [IDS[:2], IDS[2:4], IDS[4:], []]
    assert said == [[DEFERRED.format(n=3, k=2)], [DEFERRED.format(n=1, k=2)], [], []]
    assert Counter(runs(wf)) == Counter({i: 1 for i in IDS})

    # Requeued datasets wait since their status file last changed: the oldest go first.
    r = padocc("requeue", str(wf), IDS[3], IDS[1], IDS[4], "--at", "Make")
    assert r.returncode == 0, r.stderr
    base = time.time() - 3600
    for age, ds in enumerate([IDS[4], IDS[1], IDS[3]]):  # d4 waited longest
        os.utime(wf / "status" / f"{ds}.status", (base + age, base + age))
    taken = []
    for _ in range(3):
        r = padocc("compile", str(wf))
        assert r.returncode == 0, r.stderr
        taken.append(sorted(pending_ids(wf)))
        if taken[-1]:
            snakemake(wf)
    assert taken == [sorted([IDS[4], IDS[1]]), [IDS[3]], []]
    assert Counter(runs(wf)) == Counter({i: 2 if i in (IDS[1], IDS[3], IDS[4]) else 1 for i in IDS})


def _wait_engaged(wf: Path, ids: list[str], proc: subprocess.Popen) -> None:
    """Until every dataset of `ids` has an Engaged line (the run is in flight)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if all(
            (wf / "status" / f"{d}.status").exists()
            and ":Engaged:" in (wf / "status" / f"{d}.status").read_text()
            for d in ids
        ):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError("the first run never started its steps")


def test_an_overlapping_run_takes_the_deferred_datasets_and_nothing_twice(tmp_path: Path):
    wf = make_wf(tmp_path)
    (wf / "wait.txt").write_text("".join(i + "\n" for i in IDS[:2]))
    first = subprocess.Popen(
        [sys.executable, "-m", "compiler", "run", str(wf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_engaged(wf, IDS[:2], first)
        # The first run holds d0 and d1 (its steps wait); the next one takes d2 and d3.
        second = padocc("run", str(wf), timeout=600)
        assert second.returncode == 0, second.stderr
        assert deferred_lines(second) == [DEFERRED.format(n=1, k=2)]
        assert sorted(runs(wf)) == IDS[2:4]
        (wf / "go").write_text("")
        out, err = first.communicate(timeout=600)
        assert first.returncode == 0, err
        assert deferred_lines(subprocess.CompletedProcess([], 0, out, err)) == [
            DEFERRED.format(n=3, k=2)
        ]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    third = padocc("run", str(wf), timeout=600)
    assert third.returncode == 0, third.stderr
    assert deferred_lines(third) == []
    assert Counter(runs(wf)) == Counter({i: 1 for i in IDS})
    r = padocc("compile", str(wf))
    assert r.returncode == 0 and pending_count(wf) == 0, r.stderr


@pytest.mark.parametrize("order", ["oldest", "newest"])
def test_a_gate_catches_up_in_the_order_it_says(tmp_path: Path, order: str):
    gates = STEADY.replace("max_chunks: 5", f"max_chunks: 5\n    catch_up: {order}")
    wf = gate_workflow(tmp_path, gates, make__py=MAKE)
    made: list[list[str]] = []
    for _ in range(4):
        r = padocc("compile", "wf", "--now", NOW, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        snakemake(wf)
        made.append([lo[11:13] for _, lo, _ in log(wf)[sum(map(len, made)) :]])
    hours = [f"{h:02d}" for h in range(12)]
    if order == "newest":
        hours.reverse()
    assert [sorted(m) for m in made] == [
        sorted(hours[:5]),
        sorted(hours[5:10]),
        sorted(hours[10:]),
        [],
    ]
    assert Counter(lo for _, lo, _ in log(wf)).most_common(1)[0][1] == 1  # each chunk once


def test_the_cycle_config_bounds_a_cycle(tmp_path: Path):
    wf = make_wf(tmp_path, workflow=WORKFLOW.replace("max_datasets_per_cycle: 2\n", ""))
    (tmp_path / "flock").mkdir()
    (tmp_path / "flock" / "g.txt").write_text("".join(i + "\n" for i in IDS))
    conf = tmp_path / "shepard.yaml"
    conf.write_text(
        "batch_limit: 1000\nflock_dir: flock\ncomplete_dir: complete\nworkflow: wf\n"
        "max_datasets_per_cycle: 3\n"
    )
    (wf / "workflow.yaml").write_text(
        (wf / "workflow.yaml").read_text().replace("  lists: [ids.txt]", "  flock: groups")
    )
    r = padocc("cycle", "--conf", str(conf), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert deferred_lines(r) == [DEFERRED.format(n=2, k=3)]


@pytest.mark.parametrize("key", ["max_datasets_per_cycle", "max_chunks_per_cycle"])
def test_a_bad_bound_is_one_located_line(tmp_path: Path, key: str):
    wf = make_wf(tmp_path)
    text = WORKFLOW.replace("max_datasets_per_cycle: 2\n", "") + f"{key}: 0\n"
    (wf / "workflow.yaml").write_text(text)
    line = len(text.splitlines())
    most = "10,000,000" if key == "max_datasets_per_cycle" else "1,000,000"
    r = padocc("compile", str(wf))
    assert (r.returncode, r.stdout, r.stderr.splitlines()) == (
        2,
        "",
        [f"{wf}/workflow.yaml:{line}:{len(key) + 3}: error: {key} must be between 1 and {most}"],
    )
    assert not (wf / ".padocc").exists() and not (wf / "status").exists()
    conf = tmp_path / "shepard.yaml"
    (tmp_path / "flock").mkdir()
    conf.write_text(
        f"batch_limit: 10\nflock_dir: flock\ncomplete_dir: done\nworkflow: wf\n{key}: 0\n"
    )
    r = padocc("cycle", "--conf", str(conf))
    assert (r.returncode, r.stdout, r.stderr.splitlines()) == (
        2,
        "",
        [f"{conf}:5:{len(key) + 3}: error: {key} must be between 1 and {most}"],
    )


def test_a_bad_catch_up_is_one_located_line(tmp_path: Path):
    gates = STEADY.replace("max_chunks: 5", "max_chunks: 5\n    catch_up: newst")
    gate_workflow(tmp_path, gates, make__py=MAKE)
    r = padocc("compile", "wf", "--now", NOW, cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr.splitlines()) == (
        2,
        "",
        [
            "wf/gates.yaml:6:15: error: catch_up must be oldest or newest, not 'newst' (did you mean 'newest'?)"
        ],
    )


# ------------------------------------------------------------------ job sizing


def jobs_of(wf: Path) -> list[list[str]]:
    text = (wf / ".padocc" / "current" / "jobs.tsv").read_text()
    return [ln.split("\t")[2].split(",") for ln in text.splitlines()]


MANY = [f"BC.m{i:03d}" for i in range(60)]


def test_a_run_sizes_its_jobs_from_the_profile_and_does_everything_once(tmp_path: Path):
    wf = make_wf(tmp_path, MANY, WORKFLOW.replace("max_datasets_per_cycle: 2\n", ""))
    r = padocc("run", str(wf), timeout=600)
    assert r.returncode == 0, r.stderr
    jobs = jobs_of(wf)
    # Local profile, cores: all: a few jobs per core, not one job per dataset.
    cores = os.cpu_count() or 1
    assert len(jobs) < len(MANY)
    assert max(map(len, jobs)) == -(-len(MANY) // (4 * cores))
    assert sorted(d for j in jobs for d in j) == MANY
    assert Counter(runs(wf)) == Counter({i: 1 for i in MANY})


def test_a_datasets_per_job_the_user_sets_wins(tmp_path: Path):
    wf = make_wf(
        tmp_path, MANY, WORKFLOW.replace("max_datasets_per_cycle: 2", "datasets_per_job: 1")
    )
    r = padocc("compile", str(wf), "--profile", "local")
    assert r.returncode == 0, r.stderr
    assert jobs_of(wf) == [[d] for d in MANY]


def test_a_cluster_job_keeps_its_time_limit_within_budget(tmp_path: Path):
    wf = make_wf(tmp_path, MANY, WORKFLOW.replace("max_datasets_per_cycle: 2\n", ""))
    prof = tmp_path / "few"
    prof.mkdir()
    (prof / "config.yaml").write_text(
        (PROFILES / "slurm" / "config.yaml").read_text().replace("jobs: 20", "jobs: 2")
    )
    r = padocc("compile", str(wf), "--profile", str(prof))
    assert r.returncode == 0, r.stderr
    # 60 pending over 2 queue places would be 8 a job; 60-minute steps fit two in 2 h.
    assert max(map(len, jobs_of(wf))) == 2
    (wf / "workflow.yaml").write_text(
        (wf / "workflow.yaml").read_text().replace("runtime: 60m", "runtime: 10m")
    )
    r = padocc("compile", str(wf), "--profile", str(prof))
    assert r.returncode == 0, r.stderr
    assert max(map(len, jobs_of(wf))) == 8
    r = padocc("compile", str(wf), "--profile", "nosuch")
    assert (r.returncode, r.stderr.splitlines()) == (
        2,
        [
            "padocc compile: error: profile 'nosuch' not found: use local, slurm or the path of a profile directory"
        ],
    )
