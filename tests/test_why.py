"""`padocc why`: each situation a dataset can be in, tried on real runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import compile_wf, fresh_copy, padocc

R1PR, R3PR, SO = "DEMO.atmos.hist.r1.pr", "DEMO.atmos.hist.r3.pr", "DEMO.ocean.ssp.r2.so"


def why(wf: Path, ds: str) -> list[str]:
    r = padocc("why", str(wf), ds)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    return r.stdout.splitlines()


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Path:
    """The demo run to the end once (one cycle)."""
    wf = fresh_copy("demo", tmp_path_factory.mktemp("why") / "demo")
    r = padocc("run", str(wf), timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return wf


def test_not_started_names_the_next_step_by_routing_key(demo: Path):
    compile_wf(demo)
    assert why(demo, R1PR) == [
        f"{R1PR}: not started",
        "  next: Generate (of DEMO, by routing key 'atmos-mon'); it starts in the next cycle",
        f"  to move it on: padocc run {demo}",
    ]


def test_finished_datasets_and_their_last_failure(ran: Path):
    out = why(ran, R3PR)
    assert out[0].startswith(f"{R3PR}: DEMO:Fail since ")
    assert out[1] == "  finished: the workflow ended in Fail"
    assert out[2].startswith("  last failure: FixTime:Fail at ") and "exit=1" in out[2]
    log = out[2].rsplit(", log ", 1)[1]
    assert "time axis cannot be repaired" in Path(log).read_text()  # FixTime's own words
    assert (
        out[3] == f"  to move it on: padocc requeue {ran} {R3PR} --at Generate  (to run it again)"
    )
    # a dataset that failed a check, was repaired and passed: done, the failure kept
    out = why(ran, R1PR)
    assert out[1] == "  finished: the workflow ended in Pass"
    assert out[2].startswith("  last failure: CheckTime:Fail at ")


def test_quarantined_then_blocked(ran: Path):
    out = why(ran, SO)
    assert out[0].startswith(f"{SO}: CheckTime:Quarantined (in VALIDATION) since ")
    assert out[1].endswith(": visit limit: CheckTime already ran 3 times")
    assert out[-1] == f"  to move it on: padocc requeue {ran} {SO} --at CheckTime"
    r = padocc("block", str(ran), SO, "--reason", "bad input files")
    assert r.returncode == 0, r.stderr
    out = why(ran, SO)
    assert out[1].startswith("  blocked since ") and out[1].endswith(
        "(by=padocc block,reason=bad input files)"
    )
    assert out[-1] == f"  to move it on: padocc unblock {ran} {SO}"
    r = padocc("why", str(ran), SO, "--format", "json")
    assert json.loads(r.stdout)["verdict"] == "blocked"


def test_unknown_dataset_gets_one_line_and_a_suggestion(ran: Path):
    r = padocc("why", str(ran), R1PR + "x")
    tsv = ran / ".padocc" / "current" / "datasets.tsv"
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        f"{tsv}: error: no dataset '{R1PR}x' in the current build (did you mean '{R1PR}'?)\n"
    )


WAITING = """\
name: W
datasets:
  lists: [ids.txt]
routing_key: "all"
graph: transitions.yaml
defaults:
  resources: {runtime: 10m, mem: 100M}
  retries: 1  # the killed attempt is one; the next run is the second
steps:
  Hold:
    command: "touch {workflow_dir}/started; while [ ! -e {workflow_dir}/go ]; do sleep 0.05; done"
"""
GRAPH = """\
W:Ready:
  default:
    - Hold:Ready
Hold:Ready:
  default:
    - Hold:Engaged
Hold:Pass:
  default:
    - Pass
Hold:Fail:
  default:
    - Fail
"""


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill_tree(proc: subprocess.Popen) -> None:
    """kill -9 of a run and everything it started (Snakemake runs in a session of
    its own, so a process-group kill would miss it), as a lost host would."""
    pids = [proc.pid, *descendants(proc.pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    for pid in pids[1:]:  # orphans are reaped by init: wait until each is gone
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            stat = Path(f"/proc/{pid}/stat")
            try:
                if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            except (OSError, IndexError):
                break
            time.sleep(0.02)


def test_running_then_killed(tmp_path: Path):
    """While its step runs: running, with the pid and log. After kill -9 of the whole
    run: the step died with no outcome, and the next cycle takes it up."""
    wf = tmp_path / "w"
    wf.mkdir()
    (wf / "ids.txt").write_text("W.one\n")
    (wf / "workflow.yaml").write_text(WAITING)
    (wf / "transitions.yaml").write_text(GRAPH)
    proc = subprocess.Popen(
        [sys.executable, "-m", "compiler", "run", str(wf)],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not (wf / "started").exists():  # the step itself says it has started
            assert proc.poll() is None and time.monotonic() < deadline, "the step never started"
            time.sleep(0.05)
        out = why(wf, "W.one")
        assert out[0].startswith("W.one: Hold:Engaged (in W) since ")
        assert out[1].startswith("  Hold is running since ")
        assert f"on {os.uname().nodename}, attempt 1); log " in out[1]
        assert len(out) == 2  # nothing to do but wait
    finally:
        kill_tree(proc)
    # every process of the run is gone: the engagement is stale
    out = why(wf, "W.one")
    assert out[1].startswith("  Hold started ") and "ended with no outcome" in out[1]
    assert out[-1] == f"  to move it on: padocc run {wf}"
    (wf / "go").touch()
    r = padocc("run", str(wf), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert why(wf, "W.one")[1] == "  finished: the workflow ended in Pass"
