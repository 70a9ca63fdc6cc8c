"""Rounds of slots (issue 15): no job runs no step, on the local executor too.

Real padocc-compile and real Snakemake on the local executor; SLURM's side is in
test_slurm.py (every sbatch job ran a step, its comment names it). No timing is
asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import (
    compile_wf,
    cycle_until_done,
    final_states,
    fresh_copy,
    small_workflow,
    snakemake,
    steps_run,
)
from test_bundles import with_key
from test_demo import expected_final, expected_runs


def slots_of(wf: Path, build: str) -> dict[Path, dict]:
    """Every slot file of a build -> what each of its datasets recorded."""
    run = wf / ".padocc" / "run" / build
    return {
        p: json.loads(p.read_text())["datasets"]
        for p in run.glob("*/*.json")
        if p.parent.name != ".rounds"
    }


def built(wf: Path) -> str:
    """The build the last run used (the one whose slot files exist)."""
    (build,) = [p.name for p in (wf / ".padocc" / "run").iterdir()]
    return build


def test_demo_submits_no_slot_that_runs_no_step(tmp_path: Path) -> None:
    """One dataset a job: 36 jobs, and only the slots a dataset needed. Before rounds,
    the same run made 108 slot jobs, 35 of them with no step (README, SLURM)."""
    wf = fresh_copy("demo", tmp_path / "demo")
    assert cycle_until_done(wf) == 1  # every route, the loops included, in one cycle
    assert final_states(wf) == expected_final()
    for ds in expected_final():
        assert dict(steps_run(wf, ds)) == expected_runs(ds), ds
    build = built(wf)
    slots = slots_of(wf, build)
    idle = [
        p.relative_to(wf) for p, d in slots.items() if not any(v.get("ran") for v in d.values())
    ]
    assert idle == []
    # Each slot file is named by the step its dataset ran first in it, and made by that
    # step's rule: the name Snakemake's log and the SLURM comment show.
    for p, d in slots.items():
        ((ds, rec),) = d.items()
        assert p.parent.name == ds and p.name == f"{p.name.split('.')[0]}.{rec['ran'][0]}.json"
    # The rounds: how many jobs each one went on with, down to none.
    rounds = wf / ".padocc" / "run" / build / ".rounds"
    ends = {int(p.stem): json.loads(p.read_text()) for p in rounds.glob("[0-9]*.json")}
    assert json.loads((rounds / "end.json").read_text()) == {"rounds": len(ends)}
    assert ends[len(ends)]["next"] == {}
    per_round = [
        sum(1 for p in slots if p.name.startswith(f"{r}.")) for r in range(1, len(ends) + 1)
    ]
    assert per_round[0] == 36 and per_round == [36] + [
        len(ends[r]["next"]) for r in range(1, len(ends))
    ]
    assert sum(per_round) == len(slots) < 108


def test_bundled_jobs_run_no_empty_slot_and_name_mixed_ones_advance(tmp_path: Path) -> None:
    """Five datasets a job: a job goes on while one of its datasets has a step left. A
    slot whose datasets run different steps is `advance`'s (`<slot>.json`); one whose
    datasets all run the same step is that step's."""
    wf = fresh_copy("demo", tmp_path / "demo")
    with_key(wf, "datasets_per_job: 5")
    assert cycle_until_done(wf) == 1
    assert final_states(wf) == expected_final()
    slots = slots_of(wf, built(wf))
    assert slots and all(any(v.get("ran") for v in d.values()) for d in slots.values())
    for p, d in slots.items():
        firsts = {v["ran"][0] for v in d.values() if v.get("ran")}
        parts = p.name.split(".")
        if len(parts) == 3:  # <slot>.<Step>.json: every dataset that ran, ran Step first
            assert firsts == {parts[1]}, (p, d)
        else:  # <slot>.json: its datasets were due at different steps
            due = {v["ran"][0] for v in d.values() if v.get("ran")}
            due |= {v["next"]["step"] for v in d.values() if v.get("deferred")}
            assert len(due) > 1, (p, d)
    assert any(len(p.name.split(".")) == 2 for p in slots)  # the demo has such slots


KILLER = """name: KR
datasets:
  lists: [ids.txt]
graph: transitions.yaml
defaults:
  resources: {runtime: 5m, mem: 100M}
  retries: 0
steps:
  A:
    # KR.dies: the job is killed under its step (as the OOM killer would), every time.
    command: >-
      echo {dataset} A >> {workflow_dir}/runs.log &&
      if [ {dataset} = KR.dies ]; then kill -9 $PPID; sleep 5; fi
  B:
    command: "echo {dataset} B >> {workflow_dir}/runs.log"
    resources: {mem: 200M}
"""

KILLER_GRAPH = """KR:Ready:
  default:
    - A:Ready
A:Ready:
  default:
    - A:Engaged
A:Pass:
  default:
    - B:Ready
A:Fail:
  default:
    - Fail
B:Ready:
  default:
    - B:Engaged
B:Pass:
  default:
    - Pass
B:Fail:
  default:
    - Fail
"""


def test_a_killed_job_ends_its_round_and_the_rest_go_on_next_cycle(tmp_path: Path) -> None:
    """A round waits for all of its jobs. When one is killed for good, the round's
    checkpoint cannot run, so the datasets that would go on wait for the next cycle:
    nothing is lost, and nothing runs twice."""
    wf = small_workflow(tmp_path / "kr", "KR.dies\nKR.ok\n", KILLER, KILLER_GRAPH)
    compile_wf(wf)
    r = snakemake(wf, check=False)
    assert r.returncode != 0  # the killed job failed, as Snakemake says
    runs = (wf / "runs.log").read_text().splitlines()
    assert sorted(runs) == ["KR.dies A", "KR.ok A"]  # B is in round 2: not reached
    # Next cycle: the kill is recorded as KR.dies's attempt (Fail, no retries left);
    # KR.ok goes on at B, without running A again.
    compile_wf(wf)
    snakemake(wf)
    compile_wf(wf)
    assert final_states(wf) == {"KR.dies": "KR:Fail", "KR.ok": "KR:Pass"}
    assert sorted((wf / "runs.log").read_text().splitlines()) == ["KR.dies A", "KR.ok A", "KR.ok B"]


def test_end_round_refuses_what_is_not_a_round(tmp_path: Path) -> None:
    """`padocc end-round` is what the Snakefile's checkpoint runs: given a bad round or
    a build that is not one, it says so in one line and exits 2."""
    wf = fresh_copy("demo", tmp_path / "demo")
    compile_wf(wf)
    bdir = os.path.realpath(wf / ".padocc" / "current")
    for args, want in (
        ([bdir, "0"], "a round is a number from 1, or 'end', not '0'"),
        ([bdir, "x"], "a round is a number from 1, or 'end', not 'x'"),
        ([bdir, "2"], "No such file or directory"),  # round 1 has not ended
    ):
        r = subprocess.run([sys.executable, "-m", "compiler", "end-round", *args],
                           capture_output=True, text=True, check=False)  # fmt: skip
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
        assert want in r.stderr and r.stderr.startswith(f"{bdir}: error: round {args[1]}: ")
