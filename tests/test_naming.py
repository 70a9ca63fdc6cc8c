"""Issue 18 item 6, tried as a user would: counted nouns agree with their counts, one
time format everywhere, `padocc run` says what it did, `status -l` says which step
failed, and the workflow directory is named the same way in every command."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import WORKFLOWS, fresh_copy, padocc

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


# --- 2. one time format everywhere -----------------------------------------------------

# One instant, written each way a person writes it: with or without Z and seconds,
# date only (midnight).
SAME_MIDNIGHT = [
    "2026-01-01",
    "2026-01-01T00:00",
    "2026-01-01T00:00Z",
    "2026-01-01T00:00:00",
    "2026-01-01T00:00:00Z",
]
BAD_TIMES = [
    (
        "soon",
        "cannot read time 'soon': use UTC like 2010-05-01, 2010-05-01T06:00 or 2010-05-01T06:00:00Z",
    ),
    ("2026-02-30", "cannot read time '2026-02-30': day is out of range for month"),
    ("2026-01-01T24:00", "cannot read time '2026-01-01T24:00': hour must be in 0..23"),
]


def one_error(r, line: str) -> None:
    assert (r.returncode, r.stderr) == (2, line + "\n"), (r.returncode, r.stdout, r.stderr)


def built_now(wf: Path) -> int:
    import json

    return json.loads((wf / ".padocc" / "current" / "manifest.json").read_text())["now"]


def test_compile_and_run_take_every_form_of_now(tmp_path: Path):
    wf = tiny(tmp_path / "wf", ["tas"], ["Fetch"])
    seen = set()
    for t in SAME_MIDNIGHT:
        r = padocc("compile", str(wf), "--now", t)
        assert r.returncode == 0, (t, r.stderr)
        seen.add(built_now(wf))
    assert seen == {1767225600}  # 2026-01-01T00:00:00Z
    for t, said in BAD_TIMES:
        one_error(padocc("compile", str(wf), "--now", t), f"--now: error: {said}")
    assert last_line(padocc("run", str(wf), "--now", "2026-01-01T06:30", timeout=600)).startswith(
        "run: "
    )
    assert built_now(wf) == 1767225600 + 6 * 3600 + 30 * 60
    before = built_now(wf)
    for t, said in BAD_TIMES:
        one_error(padocc("run", str(wf), "--now", t), f"--now: error: {said}")
    assert built_now(wf) == before  # nothing compiled


def gated(wf: Path, want: str) -> Path:
    wf.mkdir()
    (wf / "workflow.yaml").write_text("name: G\ngates: gates.yaml\n")
    (wf / "gates.yaml").write_text(
        f"gates:\n  a:\n    axis: time\n    maxrange: 1h\n    want: {want}\n"
        '    command: "true {low} {high}"\n'
    )
    return wf


def test_gate_files_take_unquoted_dates_and_times_without_seconds(tmp_path: Path):
    wf = gated(tmp_path / "wf", "{low: 2010-05-01, high: 2010-05-01T02:00}")
    r = padocc("compile", str(wf))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("compiled G: 0 datasets (none), 2 gate chunks to make, 0 waiting ")
    bad = gated(tmp_path / "bad", "{low: 2010-05-01, high: 2010-05-01T02:61}")
    one_error(
        padocc("compile", str(bad)),
        f"{bad}/gates.yaml:5:35: error: cannot read time '2010-05-01T02:61': minute must be in 0..59",
    )


def test_gate_ranges_and_now_take_every_form(tmp_path: Path):
    wf = gated(tmp_path / "wf", '{low: "2010-05-01T00:00:00Z", high: "2010-05-01T02:00:00Z"}')
    assert padocc("compile", str(wf)).returncode == 0
    want = "2010-05-01T00:00:00Z 2010-05-01T01:00:00Z missing\n"
    for lo, hi in [
        ("2010-05-01", "2010-05-01T01:00"),
        ("2010-05-01T00:00Z", "2010-05-01T01:00:00"),
    ]:
        r = padocc("gate", "gaps", "a", lo, hi, "-C", str(wf), "--now", "2010-06-01")
        assert (r.returncode, r.stdout, r.stderr) == (0, want, ""), (lo, hi)
    for t, said in BAD_TIMES:
        one_error(
            padocc("gate", "gaps", "a", t, "2010-05-01", "-C", str(wf)), f"LOW: error: {said}"
        )
        one_error(padocc("gate", "range", "a", "-C", str(wf), "--now", t), f"--now: error: {said}")


def test_report_dashboard_since_take_every_form(tmp_path: Path):
    wf = tiny(tmp_path / "wf", ["tas"], ["Fetch"])
    assert padocc("compile", str(wf)).returncode == 0
    for t in SAME_MIDNIGHT:
        r = padocc("report", str(wf), "--since", t)
        assert r.returncode == 0, (t, r.stderr)
        assert ", since 2026-01-01T00:00:00Z\n" in r.stdout.splitlines(keepends=True)[0]
        r = padocc("dashboard", str(wf), "--since", t, "-o", str(tmp_path / "d.html"))
        assert r.returncode == 0, (t, r.stderr)
    r = padocc("report", str(wf), "--since", "2026-02-30")
    one_error(
        r, "padocc report: error: cannot read time '2026-02-30': day is out of range for month"
    )
    r = padocc("report", str(wf), "--since", "soon")
    one_error(
        r,
        "padocc report: error: not a time or duration: 'soon' (use e.g. 2026-11-20, 2026-11-20T06:00, 7d)",
    )


def test_cycle_clean_campaign_take_every_form_and_reject_a_bad_now_first(tmp_path: Path):
    wf = fresh_copy("flock", tmp_path / "flock")
    conf = wf / "shepard.yaml"
    camp = tmp_path / "c.yaml"
    camp.write_text("name: c\nworkflows:\n  - dir: flock\n")
    for t, said in BAD_TIMES:
        for cmd in (["cycle", "--conf", str(conf)], ["clean", str(wf), "--retain", "1d"],
                    ["campaign", "submit", str(camp)]):  # fmt: skip
            r = padocc(*cmd, "--now", t)
            one_error(r, f"--now: error: {said}")
            assert r.stdout == "", cmd
    assert sorted(p.name for p in wf.iterdir()) == sorted(
        p.name for p in (WORKFLOWS / "flock").iterdir()
    )
    assert {p.name for p in tmp_path.iterdir()} == {"flock", "c.yaml"}  # no run directory
    assert padocc("compile", str(wf)).returncode == 0
    for t in SAME_MIDNIGHT:
        r = padocc("cycle", "--conf", str(conf), "--dry-run", "--now", t)
        assert r.returncode == 0, (t, r.stderr)
        r = padocc("clean", str(wf), "--retain", "1d", "--dry-run", "--now", t)
        assert r.returncode == 0, (t, r.stderr)


# --- 4. `status -l` says which step failed ----------------------------------------------


def test_status_list_shows_the_step_that_failed(tmp_path: Path):
    wf = tiny(tmp_path / "wf", ["tas", "pr", "uas"], ["Fetch", "Check"])
    assert padocc("compile", str(wf)).returncode == 0
    (wf / "status").mkdir()
    ts = "STAT:20260101_000000_000000:Q:Q"
    lines = {
        "tas": ["Fetch:Engaged:", "Fetch:Pass:", "Check:Engaged:", "Check:Fail:exit=1", "Q:Fail:"],
        "pr": ["Fetch:Engaged:", "Fetch:Fail:exit=2", "Q:Fail:"],
        "uas": ["Fetch:Engaged:", "Fetch:Pass:"],
    }
    for v, stats in lines.items():
        (wf / "status" / f"Q.m.{v}.status").write_text(
            f"DATASETID=Q.m.{v}\n" + "".join(f"{ts}:{s}\n" for s in stats)
        )
    r = padocc("status", str(wf), "-l")
    assert r.returncode == 0, r.stderr
    head, *rows = r.stdout.splitlines()
    assert head.split() == ["DATASET", "WORKFLOW", "STEP", "STATE", "SINCE", "BLOCKED", "FAILED"]
    assert [row.split() for row in rows] == [
        ["Q.m.pr", "Q", "Q", "Fail", "2026-01-01T00:00:00Z", "Fetch"],
        ["Q.m.tas", "Q", "Q", "Fail", "2026-01-01T00:00:00Z", "Check"],
        ["Q.m.uas", "Q", "Fetch", "Pass", "2026-01-01T00:00:00Z"],
    ]
    # the column lines up under its header
    at = head.index("FAILED")
    assert rows[1][at:] == "Check"


# --- 5. the workflow directory, named the same way in every command --------------------

# Every command that acts on one workflow directory: its arguments after the directory.
ON_A_WORKFLOW = [
    ["compile", "--check"],
    ["datasets"],
    ["graph"],
    ["status"],
    ["report"],
    ["why", "Q.m.tas"],
    ["block", "Q.m.tas"],
    ["unblock", "Q.m.tas"],
    ["requeue", "Q.m.tas", "--at", "Fetch"],
    ["cancel"],
    ["catalog", "rebuild"],
    ["catalog", "stale"],
    ["gate", "range", "nosuch"],
]


def test_every_command_takes_the_workflow_dir_as_C_or_as_cwd(tmp_path: Path):
    wf = tiny(tmp_path / "wf", ["tas"], ["Fetch"])
    assert padocc("compile", str(wf)).returncode == 0
    for cmd in ON_A_WORKFLOW:
        by_c = padocc(*cmd[:2 if cmd[0] in ("catalog", "gate") else 1], "-C", str(wf),
                      *cmd[2 if cmd[0] in ("catalog", "gate") else 1:])  # fmt: skip
        in_cwd = padocc(*cmd, cwd=wf)
        # the same answer; paths are shown as given (DIR/x from -C DIR, x from the cwd)
        shown = by_c.stdout.replace(f"{wf}/", "").replace(str(wf), ".").replace("./", "")
        assert (by_c.returncode, shown) == (in_cwd.returncode, in_cwd.stdout.replace("./", "")), cmd
        assert by_c.returncode == (2 if cmd[0] == "gate" else 0), (cmd, by_c.stderr)
    r = padocc("gate", "range", "nosuch", "-C", str(wf))
    assert r.stderr == "padocc gate: error: unknown gate 'nosuch'\n"


def test_the_old_first_argument_still_names_it(tmp_path: Path):
    wf = tiny(tmp_path / "wf", ["tas"], ["Fetch"])
    assert padocc("compile", str(wf)).returncode == 0
    for cmd in (["why", str(wf), "Q.m.tas"], ["block", str(wf), "Q.m.tas"], ["status", str(wf)]):
        r = padocc(*cmd)
        assert r.returncode == 0, (cmd, r.stderr)
        assert r.stdout == padocc(cmd[0], "-C", str(wf), *cmd[2:]).stdout, cmd
    r = padocc("status", str(wf), "-C", str(wf))
    one_error(
        r,
        f"padocc status: error: the workflow directory is given twice ('{wf}' and -C '{wf}'): give it once",
    )
    r = padocc("why", str(wf), "Q.m.tas", "Q.m.pr", "Q.m.ua", "Q.m.va")
    one_error(
        r, "padocc why: error: give [WF] DATASET, or [WF] GATE LOW HIGH"
    )
