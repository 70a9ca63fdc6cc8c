"""The demo workflow, compiled and run by real Snakemake on the local executor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from conftest import (
    PROFILES,
    compile_wf,
    cycle_until_done,
    final_states,
    pending_count,
    snakemake,
    stat_lines,
    steps_run,
)

REALMS = {"atmos": ["tas", "pr", "psl"], "ocean": ["tos", "so", "zos"]}


def expected_final() -> dict[str, str]:
    out = {}
    for realm, variables in REALMS.items():
        for v in variables:
            for exp in ("hist", "ssp"):
                for ens in ("r1", "r2", "r3"):
                    ds = f"DEMO.{realm}.{exp}.{ens}.{v}"
                    if v == "pr" and exp == "hist" and ens == "r3":
                        out[ds] = "DEMO:Fail"  # FixTime cannot repair it
                    elif v == "so" and exp == "ssp" and ens == "r2":
                        out[ds] = "CheckTime:Quarantined"  # loops until the visit limit
                    else:
                        out[ds] = "DEMO:Pass"
    return out


def expected_runs(ds: str) -> dict[str, int]:
    _, realm, exp, ens, v = ds.split(".")
    if v == "pr" and exp == "hist":
        runs = {"generate": 1, "checktime": 1, "fixtime": 1}
        if ens == "r3":
            return runs
        runs["checktime"] = 2
    elif v == "so" and exp == "ssp" and ens == "r2":
        return {"generate": 1, "checktime": 3, "fixtime": 3}
    else:
        runs = {"generate": 1, "checktime": 1}
    runs["checkmeta"] = 1
    if realm == "atmos":
        runs["regrid"] = 1
    runs["publish"] = 1
    return runs


def test_demo_end_to_end(demo: Path):
    cycles = cycle_until_done(demo)
    assert final_states(demo) == expected_final()
    # Every step ran exactly as often as its route says, no more.
    for ds in expected_final():
        assert dict(steps_run(demo, ds)) == expected_runs(ds), ds
    # One cycle: a job runs up to 4 same-resource steps, so even the dataset that
    # loops to its visit limit fits in its budget of jobs.
    assert cycles == 1
    # Steps of one job class ran back to back in one job: fewer jobs than steps.
    (first,) = (demo / ".padocc" / "run").glob("*/DEMO.ocean.hist.r1.tos/1.Generate.json")
    ran = json.loads(first.read_text())["datasets"]["DEMO.ocean.hist.r1.tos"]["ran"]
    assert ran == ["Generate", "CheckTime", "CheckMeta", "Publish"]

    # The branch on a routing key: ocean skips Regrid; the loop; the custom Warning.
    assert not any(":Regrid:" in ln for ln in stat_lines(demo, "DEMO.ocean.hist.r1.tos"))
    assert any(":Regrid:Pass:" in ln for ln in stat_lines(demo, "DEMO.atmos.hist.r1.psl"))
    loop = [
        ln.split(":")[4:6]
        for ln in stat_lines(demo, "DEMO.atmos.hist.r1.pr")
        if ":Engaged:" not in ln
    ]
    assert loop[:4] == [
        ["Generate", "Pass"],
        ["CheckTime", "Fail"],
        ["FixTime", "Pass"],
        ["CheckTime", "Pass"],
    ]
    assert any(":CheckMeta:Warning:" in ln for ln in stat_lines(demo, "DEMO.atmos.ssp.r2.tas"))
    assert not any(":CheckMeta:Warning:" in ln for ln in stat_lines(demo, "DEMO.atmos.ssp.r2.psl"))

    # The record: header, Engaged before every outcome, with host, attempt, wall time, peak memory.
    text = (demo / "status" / "DEMO.atmos.hist.r1.tas.status").read_text()
    assert text.startswith("DATASETID=DEMO.atmos.hist.r1.tas\n")
    lines = stat_lines(demo, "DEMO.atmos.hist.r1.tas")
    assert ":Generate:Engaged:" in lines[0] and "host=" in lines[0] and "attempt=1" in lines[0]
    assert (
        ":Generate:Pass:" in lines[1]
        and "exit=0" in lines[1]
        and "wall=" in lines[1]
        and "maxrss_mb=" in lines[1]
    )
    assert lines[-1].split(":")[2:6] == ["DEMO", "DEMO", "DEMO", "Pass"]

    # A second run does nothing: nothing pending, Snakemake runs no step, no line added.
    before = {ds: stat_lines(demo, ds) for ds in expected_final()}
    compile_wf(demo)
    assert pending_count(demo) == 0
    r = snakemake(demo)
    assert "advance" not in r.stdout + r.stderr
    assert {ds: stat_lines(demo, ds) for ds in expected_final()} == before


def test_generated_snakefile_is_small_and_readable(demo: Path):
    compile_wf(demo)
    text = (demo / "Snakefile").read_text()
    line = (demo / "workflow.yaml").read_text().splitlines().index("  Generate:") + 1
    assert f"/workflow.yaml:{line}:3)" in text and "rule advance:" in text  # each step's source
    assert "DEMO.atmos" not in text  # the dataset list lives in data files, not the Snakefile
    # With its routing table (one line a route) and one short rule per step (20 lines).
    steps = text.count("\n# Step ")
    assert steps == 6 and len(text.splitlines()) < 190 + 20 * steps


def test_kill_9_then_rerun_loses_nothing(demo: Path):
    compile_wf(demo)
    cmd = [
        "timeout",
        "-k",
        "10",
        "300",
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        str(PROFILES / "local"),
        "-s",
        str(demo / "Snakefile"),
        "-d",
        str(demo),
    ]
    # Kill it mid-run: a Publish step waits on a hold file, so the kill lands while
    # steps have finished and one is running, however fast or loaded the machine.
    hold = demo.parent / "hold"
    hold.touch()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "DEMO_STEP_HOLD": str(hold)},
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not Path(f"{hold}.seen").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "no Publish step started"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    hold.unlink()
    assert any(final_states(demo)[ds] != "DEMO:Pass" for ds in final_states(demo))

    held = {
        p.parent.name
        for p in (demo / "work").glob("*/runs.log")
        if p.read_text().split()[-1:] == ["publish"] and not (p.parent / "published").exists()
    }
    assert held  # the Publish steps the kill interrupted
    # Every step the kill interrupted (the held Publish, and whatever the other jobs
    # were running): an open Engaged as the status file's last line.
    interrupted = {}
    for ds in expected_final():
        last = stat_lines(demo, ds)[-1:] if (demo / "status" / f"{ds}.status").exists() else []
        if last and ":Engaged:" in last[0]:
            interrupted[ds] = last[0].split(":")[4]
    assert held <= set(interrupted)
    retries = {n: s["retries"] for n, s in
               json.loads((demo / ".padocc" / "current" / "manifest.json").read_text())["steps"].items()}  # fmt: skip
    cycle_until_done(demo)
    # A killed step is an attempt (issue 14): a step with no retry left (Publish has
    # retries: 0) records Fail, its cause on the line. That Fail is routed like any:
    # the dataset ends Fail, except after CheckTime, whose Fail goes to FixTime and
    # back (the repair loop), so it ends as in an uninterrupted run. So does every
    # other dataset.
    failed = {ds for ds, step in interrupted.items() if retries[step] == 0}
    ended = {ds for ds in failed if interrupted[ds] != "CheckTime"}
    want_final = {ds: ("DEMO:Fail" if ds in ended else st) for ds, st in expected_final().items()}
    assert final_states(demo) == want_final
    for ds in failed:
        (fail,) = [ln for ln in stat_lines(demo, ds) if f":{interrupted[ds]}:Fail:" in ln]
        assert "cause=" in fail, fail
    for ds in expected_final():
        runs = steps_run(demo, ds)
        want = expected_runs(ds)
        # Finished steps never ran again; a killed step never ran twice either.
        assert runs == Counter(want) or ds in interrupted, (ds, dict(runs), want)
        # Every STAT line is whole.
        for ln in stat_lines(demo, ds):
            assert len(ln.split(":")) >= 7, ln
