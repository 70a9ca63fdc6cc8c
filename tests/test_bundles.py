"""Several datasets in one job (`datasets_per_job`, BPS's clustering): real
padocc-compile and real Snakemake on the local executor. The same work is done, with
the same records, in fewer jobs; a retry, a failure and a step needing another
partition stay per dataset. No timing is asserted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from conftest import (
    compile_wf,
    cycle_until_done,
    final_states,
    fresh_copy,
    padocc,
    snakemake,
    stat_lines,
    steps_run,
)
from test_demo import expected_final, expected_runs
from test_scale import GRAPH as SCALE_GRAPH

from compiler.runtime.jobs import NOOP, resource, runnable


def with_key(wf: Path, text: str) -> None:
    y = wf / "workflow.yaml"
    y.write_text(y.read_text().replace("max_visits: 3", f"max_visits: 3\n{text}", 1))


def test_demo_in_jobs_of_five_datasets(tmp_path: Path) -> None:
    demo = fresh_copy("demo", tmp_path / "demo")
    with_key(demo, "datasets_per_job: 5")
    assert cycle_until_done(demo) == 1
    (build,) = [p.name for p in (demo / ".padocc" / "logs").iterdir()]  # the build that ran
    jobs = [ln.split("\t") for ln in (demo / ".padocc" / "builds" / build / "jobs.tsv").read_text().splitlines()]
    members = [m.split(",") for _, _, m in jobs]
    assert sorted(d for ms in members for d in ms) == sorted(expected_final())
    assert all(name.startswith("@") and 1 <= len(ms) <= 5 for (name, _, _), ms in zip(jobs, members, strict=True))
    assert len(jobs) == 8  # 18 atmos (Generate..Publish: 4 slots) and 18 ocean (2 slots), by 5
    snakefile = (demo / ".padocc" / "builds" / build / "Snakefile").read_text()
    assert "#   jobs       8, of up to 5 datasets each (datasets_per_job;" in snakefile
    # The same outcomes and the same step runs as one dataset a job (test_demo).
    assert final_states(demo) == expected_final()
    for ds in expected_final():
        assert dict(steps_run(demo, ds)) == expected_runs(ds), ds

    # Every step of the first build ran in a bundle job, named on its Engaged line,
    # and its log is the bundle's.
    logs = demo / ".padocc" / "logs" / build
    assert sorted(p.name for p in logs.iterdir()) == sorted(name for name, _, _ in jobs)
    by_job: dict[str, set[str]] = {}
    for ds in expected_final():
        for ln in stat_lines(demo, ds):
            if ":Engaged:" in ln and f"build={build}" in ln:
                job = ln.split("job=")[1].split(",")[0]
                by_job.setdefault(job, set()).add(ds)
    assert {j: sorted(d) for j, d in by_job.items()} == {n: sorted(m.split(",")) for n, _, m in jobs}
    (first,) = [n for n, _, m in jobs if "DEMO.ocean.hist.r1.tos" in m.split(",")]
    slot1 = json.loads((demo / ".padocc" / "run" / build / first / "1.Generate.json").read_text())
    assert slot1["datasets"]["DEMO.ocean.hist.r1.tos"]["ran"] == [
        "Generate", "CheckTime", "CheckMeta", "Publish"
    ]  # fmt: skip

    # The report names the bundle's log, which holds the failing command's stderr.
    report = json.loads(padocc("report", str(demo), "--format", "json").stdout)
    (fail,) = [f for f in report["failures"] if f["dataset"] == "DEMO.atmos.hist.r3.pr"]
    assert Path(fail["log"]).parent.name.startswith("@")
    assert "time axis cannot be repaired" in Path(fail["log"]).read_text()


RETRY_WF = """name: RB
datasets:
  lists: [ids.txt]
graph: transitions.yaml
datasets_per_job: 4
defaults:
  resources: {runtime: 5m, mem: 100M}
  retries: 1
  retry_growth: {mem_factor: 2}
steps:
  Make:
    # b2 fails its first attempt only; b3 fails both (a binding Fail).
    command: >-
      echo {dataset} >> {workflow_dir}/runs.log &&
      if [ {dataset} = RB.b3 ]; then exit 1; fi &&
      if [ {dataset} = RB.b2 ] && [ ! -e once ]; then touch once; exit 1; fi
  Check:
    command: "echo {dataset} check >> {workflow_dir}/runs.log"
"""

RETRY_GRAPH = SCALE_GRAPH.replace("SC:Ready:", "RB:Ready:", 1)  # Make -> Check, as there


def test_a_retry_in_a_bundle_reruns_only_its_dataset(tmp_path: Path) -> None:
    wf = tmp_path / "rb"
    wf.mkdir()
    ids = [f"RB.b{i}" for i in range(4)]
    (wf / "ids.txt").write_text("".join(i + "\n" for i in ids))
    (wf / "workflow.yaml").write_text(RETRY_WF)
    (wf / "transitions.yaml").write_text(RETRY_GRAPH)
    compile_wf(wf)
    assert (wf / ".padocc" / "current" / "jobs.tsv").read_text() == f"@1\t1\t{','.join(ids)}\n"
    r = snakemake(wf, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    compile_wf(wf)
    assert final_states(wf) == {
        "RB.b0": "RB:Pass", "RB.b1": "RB:Pass", "RB.b2": "RB:Pass", "RB.b3": "RB:Fail"
    }  # fmt: skip
    runs = Counter((wf / "runs.log").read_text().splitlines())
    # The job ran twice (b2's and b3's retries share its second attempt); datasets that
    # had passed went on or stood still: no step ran twice but the failed ones.
    assert runs == {"RB.b0": 1, "RB.b0 check": 1, "RB.b1": 1, "RB.b1 check": 1,
                    "RB.b2": 2, "RB.b2 check": 1, "RB.b3": 2}  # fmt: skip
    states = [ln.split(":")[5:7] for ln in stat_lines(wf, "RB.b2")]
    assert [s for s, _ in states] == ["Engaged", "Retry", "Engaged", "Pass", "Engaged", "Pass", "Pass"]
    assert "attempt=2" in states[2][1] and "job=@1" in states[2][1]
    b3 = [ln.split(":")[5] for ln in stat_lines(wf, "RB.b3")]
    assert b3 == ["Engaged", "Retry", "Engaged", "Fail", "Fail"]


def step(mem: int, runtime: int, partition: str = "", chain: int = 1) -> dict:
    res = {"mem_mb": mem, "runtime": runtime, "cpus_per_task": 1, "slurm_partition": partition,
           "slurm_account": ""}  # fmt: skip
    growth = {"mem_factor": 2.0, "mem_max": 1000, "runtime_factor": 1.5, "runtime_max": 100}
    return {"resources": res, "growth": growth, "chain": chain}


def test_job_resources_of_mixed_steps() -> None:
    """The job asks for the largest memory, the sum of time limits (each times its
    chain) and its first runnable dataset's partition; a dataset whose step needs
    another partition waits for the next slot."""
    m = {"steps": {"A": step(100, 5, "p1"), "B": step(300, 10, "p1", chain=2), "C": step(900, 5, "p2")}}
    steps = ["", "A", "B", "C"]
    assert runnable(m, steps) == [False, True, True, False]
    none = [(0, 0)] * 4
    assert [resource(m, steps, none, r) for r in ("runtime", "mem_mb", "slurm_partition")] == [
        5 + 2 * 10, 300, "p1"
    ]  # fmt: skip
    # Two failed attempts grow each step's resources, capped (SHEPARD's doubling).
    assert [resource(m, steps, [(2, 2)] * 4, r) for r in ("runtime", "mem_mb")] == [12 + 2 * 23, 1000]
    # Growth follows each dataset's own causes: memory only (after OOM), time only.
    assert [resource(m, steps, [(0, 0), (0, 2), (2, 0), (0, 0)], r) for r in ("runtime", "mem_mb")] == [
        12 + 2 * 10, 1000
    ]  # fmt: skip
    assert [resource(m, ["", ""], none[:2], r) for r in ("runtime", "mem_mb")] == [NOOP["runtime"], NOOP["mem_mb"]]


def test_a_step_on_another_partition_waits_for_the_next_slot(tmp_path: Path) -> None:
    wf = tmp_path / "rb"
    wf.mkdir()
    ids = ["RB.b0", "RB.b1", "RB.b2"]
    (wf / "ids.txt").write_text("".join(i + "\n" for i in ids))
    text = RETRY_WF.replace("  Check:\n", "  Check:\n    resources: {slurm_partition: other}\n")
    text = text.replace("      if [ {dataset} = RB.b3 ]; then exit 1; fi &&\n", "")
    (wf / "workflow.yaml").write_text(text)
    (wf / "transitions.yaml").write_text(RETRY_GRAPH)
    cycle_until_done(wf, max_cycles=3)
    assert set(final_states(wf).values()) == {"RB:Pass"}
    build = sorted((wf / ".padocc" / "run").iterdir())[0]
    slots = sorted(build.glob("@1/*.json"))
    records = [json.loads(p.read_text())["datasets"] for p in slots]
    # Slot 1 ran Make for all three; b2 failed once, so Snakemake ran the job again.
    # That second attempt ran only b2's Make: b0 and b1 were at Check by then, whose
    # partition differs, and they waited for slot 2, which ran all three Checks.
    assert len(records) == 2 and all(sorted(r) == ids for r in records)
    assert [records[0][d].get("ran") for d in ids] == [None, None, ["Make"]]
    assert [records[0][d].get("deferred") for d in ids] == [True, True, None]
    assert [records[1][d]["ran"] for d in ids] == [["Check"]] * 3
    runs = Counter((wf / "runs.log").read_text().splitlines())
    assert runs == {"RB.b0": 1, "RB.b1": 1, "RB.b2": 2, "RB.b0 check": 1, "RB.b1 check": 1,
                    "RB.b2 check": 1}  # fmt: skip
    for ds in ids:
        checks = [ln for ln in stat_lines(wf, ds) if ":Check:Engaged:" in ln]
        assert len(checks) == 1 and "slot=2" in checks[0] and "job=@1" in checks[0]
