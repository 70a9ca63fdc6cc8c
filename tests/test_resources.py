"""A step's resources reach Snakemake under the names the SLURM plugin reads, sizes are
read whole ("16G" is 16384 MB, not SHEPARD's "1"), and each retry grows them up to the caps.
Real padocc-compile and a real Snakemake dry run on the local profile; the same values on
real sbatch are in test_slurm.py::test_retry_resubmits_with_more_memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROFILES, compile_wf, small_workflow

from compiler.core.diagnostics import CompileError, Loc
from compiler.core.growth import grown_from_json
from compiler.model.steps import parse_mem_mb, parse_minutes

WORKFLOW = """\
name: RES
datasets:
  lists: [ids.txt]
routing_key: "all"
graph: transitions.yaml
steps:
  Big:
    command: "true"
    resources: {mem: 16G, runtime: "2:00:00", cpus_per_task: 2, slurm_partition: big, slurm_account: proj}
    retries: 3
    retry_growth: {mem_max: 40G, runtime_max: 4h}
"""
TRANSITIONS = """\
RES:Ready:
  default:
    - Big:Ready
Big:Ready:
  default:
    - Big:Engaged
Big:Pass:
  default:
    - Pass
Big:Fail:
  default:
    - Fail
"""


@pytest.mark.parametrize(
    ("text", "mb"),
    [("16G", 16384), ("16GB", 16384), ("16 GiB", 16384), ("500M", 500), ("1.5G", 1536),
     ("2T", 2 * 1024 * 1024), (800, 800), ("900", 900)],
)  # fmt: skip
def test_memory_sizes_are_read_whole(text: str | int, mb: int):
    assert parse_mem_mb(text, Loc("t")) == mb


def test_runtimes_are_minutes():
    assert [parse_minutes(v, Loc("t")) for v in (90, "90m", "2h", "1h30m", "1d", "2:00:00")] == [
        90, 90, 120, 90, 1440, 120,
    ]  # fmt: skip
    with pytest.raises(CompileError):
        parse_mem_mb("G16", Loc("t"))


def test_resources_reach_snakemake_and_grow_capped_on_retry(tmp_path: Path):
    wf = small_workflow(tmp_path / "res", "RES.one\n", WORKFLOW, TRANSITIONS)
    compile_wf(wf)
    step = json.loads((wf / ".padocc" / "current" / "manifest.json").read_text())["steps"]["Big"]
    # What Snakemake schedules the first attempt with, under the plugin's names.
    r = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", str(PROFILES / "local"),
         "-s", str(wf / "Snakefile"), "-d", str(wf), "-n"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    (line,) = [ln for ln in r.stdout.splitlines() if "slurm_account=" in ln]
    res = dict(kv.split("=", 1) for kv in line.split("resources: ")[1].split(", "))
    assert {k: res[k] for k in ("mem_mb", "runtime", "cpus_per_task")} == {
        "mem_mb": "16384",
        "runtime": "120",
        "cpus_per_task": "2",
    }
    assert (res["slurm_partition"], res["slurm_account"]) == ("big", "proj")
    # Each retry: memory x2 (default) up to 40G, time x1.5 (default) up to 4h; the same
    # function the Snakefile's resources call with Snakemake's attempt.
    grown = [grown_from_json(step, attempt) for attempt in (1, 2, 3, 4)]
    assert [(g["mem_mb"], g["runtime"]) for g in grown] == [
        (16384, 120),
        (32768, 180),
        (40960, 240),
        (40960, 240),
    ]
    assert {(g["cpus_per_task"], g["slurm_partition"], g["slurm_account"]) for g in grown} == {
        (2, "big", "proj")
    }
