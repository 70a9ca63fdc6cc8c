"""Issue 18 item 6, tried as a user would: counted nouns agree with their counts, one
time format everywhere, `padocc run` says what it did, `status -l` says which step
failed, and the workflow directory is named the same way in every command."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import padocc

from compiler.core.words import plural


def tiny(wf: Path, variables: list[str], steps: list[str], fail: str = "") -> Path:
    """A workflow of one dataset per variable through `steps` in a line; the step
    named `fail` fails for every dataset."""
    wf.mkdir(parents=True)
    (wf / "dataset_spec.yaml").write_text(f"project:\n  Q:\n    m: [{', '.join(variables)}]\n")
    cmds = "".join(f'  {s}:\n    command: "{"false" if s == fail else "echo ok"}"\n' for s in steps)
    (wf / "workflow.yaml").write_text(
        "name: Q\ndatasets:\n  spec: dataset_spec.yaml\n  walks:\n    - name: w\n"
        "      root: project/Q\n      levels:\n        - {facet: model}\n"
        '        - {facet: variable}\n      id: "Q.{model}.{variable}"\n'
        f"graph: transitions.yaml\nsteps:\n{cmds}"
    )
    t = f"Q:Ready:\n  default: [{steps[0]}:Ready]\n"
    for s, nxt in zip(steps, [*steps[1:], ""], strict=True):
        t += f"{s}:Ready:\n  default: [{s}:Engaged]\n"
        t += f"{s}:Pass:\n  default: [{nxt + ':Ready' if nxt else 'Pass'}]\n"
        t += f"{s}:Fail:\n  default: [Fail]\n"
    (wf / "transitions.yaml").write_text(t)
    return wf


# --- 1. "1 chunk", "2 chunks" ----------------------------------------------------------


def test_plural_for_one_and_two():
    assert [plural(1, "chunk"), plural(2, "chunk")] == ["1 chunk", "2 chunks"]
    assert [plural(1, "gate chunk"), plural(2, "gate chunk")] == ["1 gate chunk", "2 gate chunks"]
    assert [plural(1, "round"), plural(0, "round")] == ["1 round", "0 rounds"]
    two = plural(2, "run directory", "run directories")
    assert [plural(1, "run directory", "run directories"), two] == [
        "1 run directory",
        "2 run directories",
    ]


@pytest.mark.parametrize(
    ("variables", "steps", "said"),
    [
        (["tas"], ["Fetch"], "1 dataset, 1 step"),
        (["tas", "pr"], ["Fetch", "Check"], "2 datasets, 2 steps"),
    ],
)
def test_compile_counts_agree(tmp_path: Path, variables, steps, said):
    wf = tiny(tmp_path / "wf", variables, steps)
    r = padocc("compile", "--check", str(wf))
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{wf}/workflow.yaml: ok: {said}\n", "")
    r = padocc("compile", str(wf))
    n = len(variables)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"compiled Q: {plural(n, 'dataset')} ({n} pending) -> "), r.stdout


# --- 3. `padocc run` ends with what it did -------------------------------------------


def last_line(r) -> str:
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout.splitlines()[-1]


def test_run_ends_with_what_the_cycle_did(tmp_path: Path):
    wf = tiny(tmp_path / "wf", ["tas", "pr"], ["Fetch", "Check"], fail="Check")
    r = padocc("run", str(wf), timeout=600)
    assert last_line(r) == "run: 4 steps ran (2 Pass, 2 Fail), 0 datasets waiting"
    # from the status lines: each dataset's Engaged lines name this run's build
    text = (wf / "status" / "Q.m.tas.status").read_text()
    assert text.count(":Engaged:") == 2 and ":Q:Q:Check:Fail:" in text
    r = padocc("run", str(wf), timeout=600)
    assert r.stdout.splitlines()[-2:] == [
        "nothing to run: Snakemake not started",
        "run: 0 steps ran, 0 datasets waiting",
    ]


def test_run_summary_says_one_step_and_what_waits(tmp_path: Path):
    one = tiny(tmp_path / "one", ["tas"], ["Fetch"])
    assert (
        last_line(padocc("run", str(one), timeout=600))
        == "run: 1 step ran (1 Pass), 0 datasets waiting"
    )
    # One job of one step per dataset per cycle: each dataset has a step left for the next cycle.
    two = tiny(tmp_path / "two", ["tas", "pr"], ["Fetch", "Check"])
    with (two / "workflow.yaml").open("a") as f:
        f.write("max_steps_per_cycle: 1\nsteps_per_job: 1\n")
    r = padocc("run", str(two), timeout=600)
    assert last_line(r) == "run: 2 steps ran (2 Pass), 2 datasets waiting"
    r = padocc("run", str(two), timeout=600)
    assert last_line(r) == "run: 2 steps ran (2 Pass), 0 datasets waiting"


@pytest.mark.parametrize(("high", "said"), [("01:00", "1 chunk made"), ("02:00", "2 chunks made")])
def test_run_summary_counts_gate_chunks(tmp_path: Path, high: str, said: str):
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "workflow.yaml").write_text("name: G\ngates: gates.yaml\n")
    (wf / "gates.yaml").write_text(
        "gates:\n  a:\n    axis: time\n    maxrange: 1h\n"
        f'    want: {{low: "2010-05-01T00:00:00Z", high: "2010-05-01T{high}:00Z"}}\n'
        '    command: "true {low} {high}"\n'
    )
    assert (
        last_line(padocc("run", str(wf), timeout=600))
        == f"run: 0 steps ran, {said}, 0 datasets waiting"
    )
