"""Scoping a cycle to pending work loses no work: real padocc-compile, real Snakemake.

A small workflow (6 datasets, 2 steps, one declared input file each) is run to the
end; then a changed input, a manual re-queue and a gate remake must each run again,
and a no-op compile must carry nothing and reuse what it can. No timing is asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import WORKFLOWS, compile_wf, cycle_until_done, padocc, pending_count, snakemake

from compiler.model.resolve import build_model
from compiler.render.manifest import manifest_of
from compiler.render.plan import make_plan

IDS = [f"SC.a{i}" for i in range(6)]

WORKFLOW = """name: SC
datasets:
  lists: [ids.txt]
  inputs: "data/{dataset}.in"
graph: transitions.yaml
defaults:
  resources: {runtime: 5m, mem: 100M}
  retries: 0
steps:
  Make:
    command: "echo {dataset} {step} >> {workflow_dir}/runs.log"
  Check:
    command: "echo {dataset} {step} >> {workflow_dir}/runs.log"
"""

GRAPH = """SC:Ready:
  default: [Make:Ready]
Make:Ready:
  default: [Make:Engaged]
Make:Pass:
  default: [Check:Ready]
Make:Fail:
  default: [Fail]
Check:Ready:
  default: [Check:Engaged]
Check:Pass:
  default: [Pass]
Check:Fail:
  default: [Fail]
"""

RACY = 2.1  # the status index leaves files changed in the last 2 s unindexed


@pytest.fixture
def done(tmp_path: Path) -> Path:
    return make_done(tmp_path / "sc")


def make_done(wf: Path, workflow: str = WORKFLOW) -> Path:
    """The workflow, run to the end once: every dataset Make then Check, final Pass."""
    (wf / "data").mkdir(parents=True)
    (wf / "workflow.yaml").write_text(workflow)
    (wf / "transitions.yaml").write_text(GRAPH)
    (wf / "ids.txt").write_text("".join(i + "\n" for i in IDS))
    past = time.time() - 3600
    for i in IDS:
        (wf / "data" / f"{i}.in").write_text("x")
        os.utime(wf / "data" / f"{i}.in", (past, past))
    assert cycle_until_done(wf) == 1
    assert runs(wf) == Counter({(i, s): 1 for i in IDS for s in ("Make", "Check")})
    return wf


def runs(wf: Path) -> Counter:
    log = wf / "runs.log"
    return (
        Counter(tuple(ln.split()) for ln in log.read_text().splitlines())
        if log.exists()
        else Counter()
    )


def status_lines(wf: Path, ds: str) -> list[str]:
    return (wf / "status" / f"{ds}.status").read_text().splitlines()


def plan_of(wf: Path):
    model = build_model(wf, str(wf))
    return make_plan(model, manifest_of(model, "b", "now", 0))


def builds(wf: Path) -> list[Path]:
    return sorted(p for p in (wf / ".padocc" / "builds").iterdir() if not p.name.startswith("."))


def test_noop_compile_carries_nothing_and_reuses_its_data(done: Path):
    time.sleep(RACY)
    r = compile_wf(done)
    assert pending_count(done) == 0 and "6 done" in r.stdout
    compile_wf(done)
    # The dataset list did not change: the new build links the previous one's file.
    a, b = builds(done)[-2:]
    assert os.stat(a / "datasets.tsv").st_ino == os.stat(b / "datasets.tsv").st_ino
    # Every status file's position came from the index: none was read.
    plan = plan_of(done)
    assert (plan.index_hits, plan.files_read, plan.pending) == (len(IDS), 0, [])
    assert plan.counts == {"done": len(IDS)}


def test_changed_input_inside_a_finished_dataset_is_rebuilt(done: Path):
    time.sleep(RACY)
    compile_wf(done)  # the index now holds every finished dataset
    (done / "data" / "SC.a3.in").write_text("new data")
    r = compile_wf(done)
    assert pending_count(done) == 1, r.stdout + r.stderr
    assert (
        "re-queued 1 finished dataset whose input changed after the final STAT line: SC.a3 ("
        in r.stderr
    )
    requeue = [ln for ln in status_lines(done, "SC.a3") if "requeue=1" in ln]
    assert (
        len(requeue) == 1
        and ":SC:SC:SC:Ready:" in requeue[0]
        and "reason=input changed" in requeue[0]
    )
    snakemake(done)
    assert runs(done)[("SC.a3", "Make")] == 2 and runs(done)[("SC.a3", "Check")] == 2
    assert sum(runs(done).values()) == 2 * len(IDS) + 2  # nothing else ran
    assert status_lines(done, "SC.a3")[-1].split(":")[4:6] == ["SC", "Pass"]
    compile_wf(done)
    assert pending_count(done) == 0  # rebuilt after the change: not re-queued again


def test_manual_requeue_is_picked_up_through_the_index(done: Path):
    time.sleep(RACY)
    compile_wf(done)
    assert plan_of(done).files_read == 0
    r = padocc("requeue", str(done), "SC.a1", "SC.a4", "--at", "Check")
    assert r.returncode == 0, r.stderr
    plan = plan_of(done)
    assert sorted(p.id for p in plan.pending) == ["SC.a1", "SC.a4"]
    assert {p.first for p in plan.pending} == {"Check"} and plan.files_read == 2
    compile_wf(done)
    snakemake(done)
    c = runs(done)
    assert c[("SC.a1", "Check")] == 2 and c[("SC.a4", "Check")] == 2
    assert c[("SC.a1", "Make")] == 1  # re-queued at Check: Make is not run again
    compile_wf(done)
    assert pending_count(done) == 0


def test_forced_remake_from_the_start(done: Path):
    r = padocc("requeue", str(done), "SC.a0", "--at", "Make")
    assert r.returncode == 0, r.stderr
    compile_wf(done)
    assert pending_count(done) == 1
    snakemake(done)
    assert runs(done)[("SC.a0", "Make")] == 2 and runs(done)[("SC.a0", "Check")] == 2


def test_gate_remake_runs_again(tmp_path: Path):
    hmi = tmp_path / "hmi"
    shutil.copytree(
        WORKFLOWS / "hmi", hmi, ignore=shutil.ignore_patterns(".padocc", "status", "work", "gates")
    )
    now = "2026-01-01T01:00:00Z"
    lo, mid, hi = "2010-05-01T00:00:00Z", "2010-05-01T06:00:00Z", "2010-05-01T12:00:00Z"
    r = padocc("gate", "make", "hmi.lev1", lo, hi, "-C", str(hmi), "--now", now, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = padocc("gate", "remake", "hmi.lev1", lo, mid, "-C", str(hmi), "--now", now, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    log = (hmi / "work" / "gates" / "runs.log").read_text().splitlines()
    c = Counter(ln.split()[1] for ln in log if ln.split()[0] == "hmi.lev1")
    assert c == {lo: 2, mid: 1}


def test_padocc_run_starts_snakemake_only_when_there_is_work(done: Path):
    """The cron line `padocc run`: an idle hour is a compile, no Snakemake; a changed
    input is rebuilt, its two same-resource steps in one job."""
    logs = done / ".snakemake" / "log"
    before = len(list(logs.iterdir()))
    r = padocc("run", str(done), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing to run: Snakemake not started" in r.stdout
    assert len(list(logs.iterdir())) == before
    ds = IDS[0]
    (done / "data" / f"{ds}.in").write_text("changed")
    r = padocc("run", str(done), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(list(logs.iterdir())) == before + 1
    assert runs(done)[(ds, "Make")] == 2 and runs(done)[(ds, "Check")] == 2
    assert sum(runs(done).values()) == 2 * len(IDS) + 2  # nothing else ran again
    build = os.readlink(done / ".padocc" / "current").split("/")[-1]
    slot1 = done / ".padocc" / "run" / build / ds / "1.Make.json"  # slot 1: step Make's rule
    assert json.loads(slot1.read_text())["datasets"][ds]["ran"] == ["Make", "Check"]


def test_snakemake_launcher_keeps_snakemake_exit_status_and_skips_the_cwd_scan(tmp_path: Path):
    """padocc starts Snakemake through compiler.runtime.snakemake_main (safe-path mode,
    and a quick exit once Snakemake's main returns). Its exit status must be
    Snakemake's, its log whole, and the working directory off sys.path."""
    from compiler.runtime.snakemake_run import run_snakemake

    (tmp_path / "Snakefile").write_text(
        "import sys, os\n"
        "rule all:\n"
        "    input: 'ok.txt'\n"
        "rule ok:\n"
        "    output: 'ok.txt'\n"
        "    run:\n"
        "        open(output[0], 'w').write(str(sys.flags.safe_path) + ' ' + os.environ['PYTHONSAFEPATH'])\n"
        "rule bad:\n"
        "    output: 'bad.txt'\n"
        "    shell: 'exit 3'\n"
    )
    log = tmp_path / "out.log"
    with log.open("w") as f:
        assert run_snakemake(str(tmp_path), "local", extra=["all"], log=f) == 0
    assert (tmp_path / "ok.txt").read_text() == "True 1"
    assert "steps (100%) done" in log.read_text()
    with log.open("w") as f:
        assert run_snakemake(str(tmp_path), "local", extra=["bad.txt"], log=f) == 1
    assert "Error in rule bad" in log.read_text()
