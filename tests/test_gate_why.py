"""Gates from the user's side (issue 18): `padocc why WF GATE LOW HIGH`, and
`compile --check` on a gate-only workflow. Real compiles, real Snakemake runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import padocc
from test_gate_requests import GATES, gate_popen, log_lines, until
from test_gate_requests import workflow as request_workflow

A0, A1, A2, A4, A6 = (f"2010-05-01T0{h}:00:00Z" for h in (0, 1, 2, 4, 6))
BEFORE = "2010-04-30T22:00:00Z"
LOG_A0 = "wf/.padocc/logs/gates/a/20100501T000000Z__20100501T010000Z.log"

# `a` as in test_gate_requests (4 chunks of 1 hour wanted), failing for good at the first
# failure; `b` needs `a` and has 2-hour chunks; `c` has no want.
TWO = (
    GATES.replace("    parallelOK: 1\n", "    max_failures: 1\n")
    + """\
  b:
    axis: time
    maxrange: 2h
    want: {low: "2010-05-01T00:00:00Z", high: "2010-05-01T04:00:00Z"}
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
    preconditions: [{gate: a}]
  c:
    axis: serial
    maxrange: 10
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
"""
)


def workflow(tmp_path: Path, gates: str = TWO) -> Path:
    return request_workflow(tmp_path, gates)


def why(tmp_path: Path, *args: str) -> list[str]:
    r = padocc("why", "wf", *args, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    return r.stdout.splitlines()


def test_check_on_a_gate_only_workflow_counts_gates_and_wanted_chunks(tmp_path: Path):
    wf = workflow(tmp_path)
    r = padocc("compile", "--check", "wf", cwd=tmp_path)
    # a: 4 chunks, b: 2, c: no want.
    assert (r.returncode, r.stdout) == (
        0,
        "wf/workflow.yaml: ok: 0 datasets, 3 gates, 6 chunks wanted\n",
    )
    # Permanent gaps are not wanted; one gate, one chunk, said in the singular.
    (wf / "gates.yaml").write_text(GATES.replace(
        "    parallelOK: 1\n",
        '    gaps: [{low: "2010-05-01T01:00:00Z", high: "2010-05-01T04:00:00Z"}]\n'))  # fmt: skip
    r = padocc("compile", "--check", "wf", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (
        0,
        "wf/workflow.yaml: ok: 0 datasets, 1 gate, 1 chunk wanted\n",
    )


def test_why_a_gate_range_says_per_run_of_chunks_what_it_waits_on(tmp_path: Path):
    wf = workflow(tmp_path)
    assert padocc("compile", "wf", cwd=tmp_path).returncode == 0
    assert why(tmp_path, "a", BEFORE, A2) == [
        f"a {BEFORE} {A2}: 4 chunks",
        f"  {BEFORE} {A0} (2 chunks): not wanted (outside the gate's want): no cycle makes it",
        f"    to move it on: padocc gate make a {BEFORE} {A0} -C wf",
        f"  {A0} {A2} (2 chunks): missing: the next cycle makes it",
        "    to move it on: padocc run wf",
    ]
    (wf / "fail").touch()
    r = padocc("gate", "make", "a", A0, A1, "-C", "wf", cwd=tmp_path, timeout=300)
    assert r.returncode == 5, r.stdout + r.stderr
    (wf / "fail").unlink()
    assert (tmp_path / LOG_A0).is_file()
    assert why(tmp_path, "a", A0, A2) == [
        f"a {A0} {A2}: 2 chunks",
        f"  {A0} {A1} (1 chunk): failed 1 time, max_failures (1) reached: no cycle makes it "
        f"again; last log {LOG_A0}",
        f"    to move it on: padocc gate remake a {A0} {A1} -C wf",
        f"  {A1} {A2} (1 chunk): missing: the next cycle makes it",
        "    to move it on: padocc run wf",
    ]
    # b's first chunk needs a's failed chunk: it says which, in what state, and the remake.
    assert why(tmp_path, "b", A0, A6) == [
        f"b {A0} {A6}: 3 chunks",
        f"  {A0} {A2} (1 chunk): waits on precondition a {A0} {A1}: failed 1 time, "
        f"max_failures reached; last log {LOG_A0}",
        f"    to move it on: padocc gate remake a {A0} {A1} -C wf",
        f"  {A2} {A4} (1 chunk): missing: the next cycle makes it",
        "    to move it on: padocc run wf",
        f"  {A4} {A6} (1 chunk): not wanted (outside the gate's want): no cycle makes it",
        f"    to move it on: padocc gate make b {A4} {A6} -C wf",
    ]
    # The remake it names moves it on; then all is made.
    r = padocc("gate", "remake", "a", A0, A1, "-C", "wf", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert why(tmp_path, "a", A0, A1) == [f"a {A0} {A1}: 1 chunk", f"  {A0} {A1} (1 chunk): made"]


def test_a_chunk_that_failed_below_max_failures_is_made_again_by_the_next_cycle(tmp_path: Path):
    wf = workflow(tmp_path, TWO.replace("    max_failures: 1\n", "    max_failures: 3\n"))
    (wf / "fail").touch()
    r = padocc("gate", "make", "a", A0, A1, "-C", "wf", cwd=tmp_path, timeout=300)
    assert r.returncode == 5, r.stdout + r.stderr
    assert why(tmp_path, "a", A0, A1) == [
        f"a {A0} {A1}: 1 chunk",
        f"  {A0} {A1} (1 chunk): missing (failed 1 time of max_failures 3): the next "
        f"cycle makes it; last log {LOG_A0}",
        "    to move it on: padocc run wf",
    ]


def test_why_names_the_live_run_making_a_chunk(tmp_path: Path):
    wf = workflow(tmp_path)
    (wf / "hold").touch()
    first = gate_popen(wf, "make", "a", A0, A1, out=tmp_path / "first.out")
    try:
        until(lambda: log_lines(wf), "the chunk never started")
        [lease] = [p for p in (wf / ".padocc" / "runs").iterdir() if not p.name.startswith(".")]
        header = (lease / "held").read_text().splitlines()[0]
        assert why(tmp_path, "b", A0, A2) == [
            f"b {A0} {A2}: 1 chunk",
            f"  {A0} {A2} (1 chunk): waits on precondition a {A0} {A1}: being made by a live "
            f"run: {header}",
        ]
        assert why(tmp_path, "a", A0, A1) == [
            f"a {A0} {A1}: 1 chunk",
            f"  {A0} {A1} (1 chunk): being made by a live run: {header}",
        ]
    finally:
        (wf / "release").touch()
        assert first.wait(timeout=300) == 0, (tmp_path / "first.out").read_text()


def test_a_huge_range_is_answered_in_a_bounded_number_of_lines(tmp_path: Path):
    gates = """\
gates:
  s:
    axis: serial
    maxrange: 1
    want: {low: 0, high: 1000000}
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
"""
    workflow(tmp_path, gates)
    assert padocc("compile", "--check", "wf", cwd=tmp_path).stdout == (
        "wf/workflow.yaml: ok: 0 datasets, 1 gate, 1000000 chunks wanted\n"
    )
    assert padocc("compile", "wf", cwd=tmp_path).returncode == 0
    assert why(tmp_path, "s", "0", "1000000000000000") == [
        "s 0 1000000000000000: 1000000000000000 chunks",
        "  0 1000 (1000 chunks): missing: the next cycle makes it",
        "    to move it on: padocc run wf",
        "  1000 1000000 (999000 chunks): missing; not looked at one by one (past 1000 chunks): "
        "ask about a narrower range",
        "    to move it on: padocc run wf",
        "  1000000 1000000000000000 (999999999000000 chunks): not wanted (outside the gate's "
        "want): no cycle makes it",
        "    to move it on: padocc gate make s 1000000 1000000000000000 -C wf",
    ]


def test_bad_gate_or_range_is_one_line_and_exit_2(tmp_path: Path):
    workflow(tmp_path)
    assert padocc("compile", "wf", cwd=tmp_path).returncode == 0
    cases = [
        (("a",), "padocc why: error: 'a' is a gate: give LOW and HIGH"),
        (("a", A0), "padocc why: error: gate 'a': give both LOW and HIGH"),
        (("aa", A0, A1), "padocc why: error: unknown gate 'aa' (did you mean 'a'?)"),
        (("a", "x", A1), "LOW: error: cannot read time 'x': use UTC like 2010-05-01, 2010-05-01T06:00 or 2010-05-01T06:00:00Z"),
        (("a", A1, A0), f"padocc why: error: low {A1} is after high {A0}"),
        (("c", "0", "1e16"), "HIGH: error: serial value '1e16' is out of range: at most 1e15 either side of 0"),
        (("a", A0, A1, "--key", "x"), "padocc why: error: gate 'a' is not keyed: --key does not apply"),
    ]  # fmt: skip
    for args, line in cases:
        r = padocc("why", "wf", *args, cwd=tmp_path)
        assert (r.returncode, r.stdout, r.stderr) == (2, "", line + "\n"), args


def failed_and_made(tmp_path: Path) -> Path:
    """a's first chunk failed for good, c (no want) made over [0, 20)."""
    wf = workflow(tmp_path)
    (wf / "fail").touch()
    r = padocc("gate", "make", "a", A0, A1, "-C", "wf", cwd=tmp_path, timeout=300)
    assert r.returncode == 5, r.stdout + r.stderr
    (wf / "fail").unlink()
    r = padocc("gate", "make", "c", "0", "20", "-C", "wf", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return wf


def test_report_shows_failed_gate_chunks_gate_time_and_gates_without_want(tmp_path: Path):
    wf = failed_and_made(tmp_path)
    log = str(wf.resolve() / ".padocc/logs/gates/a/20100501T000000Z__20100501T010000Z.log")
    doc = json.loads(padocc("report", "wf", "--format", "json", cwd=tmp_path).stdout)
    (f,) = doc["gate_failures"]
    assert (f["gate"], f["chunk"], f["fails"], f["max_failures"], f["reached"], f["log"]) == (
        "a", "20100501T000000Z__20100501T010000Z", 1, 1, True, log)  # fmt: skip
    assert f["params"]["exit"] == "1" and Path(log).is_file()
    steps = {s["step"]: (s["engaged"], s["passed"], s["failed"]) for s in doc["steps"]}
    assert steps == {"gate a": (1, 0, 1), "gate c": (2, 2, 0)}
    # A chunk may take less than the 0.1 s a run's wall time is kept to: 0 is a time.
    assert all(s["total_s"] >= 0 for s in doc["steps"])
    cov = {c["gate"]: (c["wanted"], c["low"], c["high"], c["covered"]) for c in doc["coverage"]}
    assert cov == {"a": (True, 1272672000.0, 1272686400.0, 0.0),
                   "b": (True, 1272672000.0, 1272686400.0, 0.0),
                   "c": (False, 0.0, 20.0, 1.0)}  # fmt: skip
    text = padocc("report", "wf", cwd=tmp_path).stdout
    failed = text.split("gate chunks failed", 1)[1].split("\n\n", 1)[0].splitlines()
    assert failed[0] == " (1):"
    assert failed[1].split() == [
        "GATE",
        "FROM",
        "TO",
        "FAILS",
        "NEXT",
        "WHEN",
        "SLURM_JOB",
        "LOG",
        "PARAMS",
    ]
    assert failed[2].startswith(f"a     {A0}  {A1}  1 of 1  remake (max_failures reached)  20")
    assert f"  -          {log}  exit=1, wall=" in failed[2]
    assert text.split("gate coverage", 1)[1].splitlines()[-1] == (
        "c     serial  0                     20                    100.0% (no want)  -"
    )
    # The remake clears it from the list.
    r = padocc("gate", "remake", "a", A0, A1, "-C", "wf", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    text = padocc("report", "wf", cwd=tmp_path).stdout
    assert "\ngate chunks failed (0):\n\ngate coverage (3):\n" in text


def test_dashboard_shows_failed_gate_chunks_and_gate_time_in_chromium(tmp_path: Path):
    from test_dashboard import FLAGS, Dom, chromium

    exe = chromium()
    failed_and_made(tmp_path)
    out = tmp_path / "page.html"
    r = padocc("dashboard", "wf", "-o", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([exe, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", out.as_uri()],
                       capture_output=True, text=True, timeout=180, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    dom = Dom(r.stdout)
    assert dom.all("body")[0]["attrs"].get("data-js") == "ready", r.stderr[-2000:]
    assert dom.by_id("gate-failures")["attrs"]["data-count"] == "1"
    (row,) = dom.all("tr", cls="gate-failure")
    assert (
        row["attrs"]["data-gate"],
        row["attrs"]["data-fails"],
        row["attrs"]["data-reached"],
    ) == ("a", "1", "yes")
    assert "remake (max_failures reached)" in row["text"]
    # The log link is relative to the page.
    logs = [e["attrs"]["href"] for e in dom.all("a") if e["attrs"].get("href", "").endswith(".log")]
    assert logs == ["wf/.padocc/logs/gates/a/20100501T000000Z__20100501T010000Z.log"]
    bars = {
        e["attrs"]["data-step"]: float(e["attrs"]["data-seconds"]) for e in dom.all("g", cls="bar")
    }
    assert set(bars) == {"gate a", "gate c"} and all(v >= 0 for v in bars.values())
    gates = {g["attrs"]["data-gate"]: g for g in dom.all("div", cls="gate")}
    assert set(gates) == {"a", "b", "c"} and gates["c"]["attrs"]["data-wanted"] == "no"
    assert "serial axis, 0 .. 20, 100.0% (no want)" in gates["c"]["text"]


def test_at_most_40_runs_are_shown_the_rest_counted(tmp_path: Path):
    gaps = ", ".join(f"{{low: {2 * i + 1}, high: {2 * i + 2}}}" for i in range(30))
    workflow(tmp_path, f"""\
gates:
  s:
    axis: serial
    maxrange: 1
    want: {{low: 0, high: 60}}
    gaps: [{gaps}]
    command: "{{python}} {{workflow_dir}}/make.py {{gate}} {{low}} {{high}}"
""")  # fmt: skip
    assert padocc("compile", "wf", cwd=tmp_path).returncode == 0
    out = why(tmp_path, "s", "0", "60")
    assert out[0] == "s 0 60: 60 chunks"
    assert out[1:4] == [
        "  0 1 (1 chunk): missing: the next cycle makes it",
        "    to move it on: padocc run wf",
        "  1 2 (1 chunk): a permanent gap: never made",
    ]
    assert len(out) == 1 + 20 * 3 + 1
    assert out[-2:] == [
        "  39 40 (1 chunk): a permanent gap: never made",
        "  ... 20 more runs of chunks: ask about a narrower range",
    ]
    doc = json.loads(padocc("why", "wf", "s", "0", "60", "--format", "json", cwd=tmp_path).stdout)
    assert (doc["gate"], doc["chunks"], len(doc["runs"]), doc["more_runs"]) == ("s", 60, 40, 20)
    assert doc["runs"][0] == {
        "low": "0", "high": "1", "chunks": 1, "verdict": "next", "log": None,
        "detail": "missing: the next cycle makes it", "move_on": "padocc run wf",
    }  # fmt: skip


def test_why_a_keyed_gate_names_the_dataset(tmp_path: Path):
    from test_gates import KEYED

    wf = tmp_path / "wf"
    wf.mkdir()
    for name, text in KEYED.items():
        (wf / name).write_text(text)
    assert padocc("compile", "wf", cwd=tmp_path).returncode == 0
    b0, b4, b6 = "2010-05-02T00:00:00Z", "2010-05-02T04:00:00Z", "2010-05-02T06:00:00Z"
    assert why(tmp_path, "sharp", b0, b6, "--key", "AR.11100") == [
        f"sharp@AR.11100 {b0} {b6}: 3 chunks",
        f"  {b0} {b4} (2 chunks): missing: the next cycle makes it",
        "    to move it on: padocc run wf",
        f"  {b4} {b6} (1 chunk): not wanted (outside the gate's want): no cycle makes it",
        f"    to move it on: padocc gate make sharp {b4} {b6} -C wf --key AR.11100",
    ]
    for args, line in [
        ((), "padocc why: error: gate 'sharp' is keyed: name a dataset with --key"),
        (("--key", "AR.1100"), "padocc why: error: gate 'sharp' has no dataset 'AR.1100' (did you mean 'AR.11100'?)"),
    ]:  # fmt: skip
        r = padocc("why", "wf", "sharp", b0, b6, *args, cwd=tmp_path)
        assert (r.returncode, r.stdout, r.stderr) == (2, "", line + "\n"), args
