"""Gates (JSOC's model) with real Snakemake runs on the HMI example."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import fresh_copy, padocc, snakemake

NOW = "2026-01-01T01:00:00Z"


@pytest.fixture
def hmi(tmp_path: Path) -> Path:
    return fresh_copy("hmi", tmp_path / "hmi")


def runs(wf: Path) -> Counter:
    p = wf / "work" / "gates" / "runs.log"
    return (
        Counter(tuple(line.split()) for line in p.read_text().splitlines())
        if p.exists()
        else Counter()
    )


def made(wf: Path, gate: str) -> list[tuple[str, str]]:
    return sorted((lo, hi) for g, lo, hi in runs(wf) if g == gate)


def gate(wf: Path, *args: str, now: str = NOW):
    return padocc("gate", *args, "-C", str(wf), "--now", now, timeout=300)


def compile_at(wf: Path, now: str = NOW) -> list[str]:
    r = padocc("compile", str(wf), "--now", now)
    assert r.returncode == 0, r.stderr
    return (wf / ".padocc" / "current" / "gate_targets.txt").read_text().split()


def test_request_split_on_grid_and_overlap_makes_nothing_twice(hmi: Path):
    r = gate(hmi, "make", "hmi.lev1", "2010-05-01T03:00:00Z", "2010-05-02T02:00:00Z")
    assert r.returncode == 0, r.stdout + r.stderr
    # Widened to whole 6-hour chunks of the grid, the permanent gap (12-18h) left out.
    assert made(hmi, "hmi.lev1") == [
        ("2010-05-01T00:00:00Z", "2010-05-01T06:00:00Z"),
        ("2010-05-01T06:00:00Z", "2010-05-01T12:00:00Z"),
        ("2010-05-01T18:00:00Z", "2010-05-02T00:00:00Z"),
        ("2010-05-02T00:00:00Z", "2010-05-02T06:00:00Z"),
    ]
    # An overlapping second request only makes what the first did not.
    r = gate(hmi, "make", "hmi.lev1", "2010-05-01T20:00:00Z", "2010-05-02T12:00:00Z")
    assert r.returncode == 0
    assert len(made(hmi, "hmi.lev1")) == 5
    assert all(n == 1 for n in runs(hmi).values())
    # Permanent gaps are never asked for, and never reported as gaps.
    assert not any(lo == "2010-05-01T12:00:00Z" for _, lo, _ in runs(hmi))
    r = gate(hmi, "gaps", "hmi.lev1", "2010-05-01T00:00:00Z", "2010-05-02T12:00:00Z")
    assert r.returncode == 0 and r.stdout == ""
    r = gate(hmi, "check", "hmi.lev1", "2010-05-01T00:00:00Z", "2010-05-02T12:00:00Z")
    assert (r.returncode, r.stdout.strip()) == (0, "open")
    r = gate(hmi, "range", "hmi.lev1")
    assert r.stdout.split() == ["2010-05-01T00:00:00Z", "2010-05-02T12:00:00Z"]


def test_precondition_makes_exactly_the_upstream_chunks(hmi: Path):
    r = gate(hmi, "make", "hmi.LOS", "2010-05-02T06:00:00Z", "2010-05-02T12:00:00Z")
    assert r.returncode == 0, r.stdout + r.stderr
    # LOS 06-12 needs that lev1 chunk and the day's cosmic-ray map, which needs the
    # day's four lev1 chunks: nothing else.
    assert made(hmi, "hmi.LOS") == [("2010-05-02T06:00:00Z", "2010-05-02T12:00:00Z")]
    assert made(hmi, "hmi.cosmic_rays") == [("2010-05-02T00:00:00Z", "2010-05-03T00:00:00Z")]
    assert [lo[11:13] for lo, _ in made(hmi, "hmi.lev1")] == ["00", "06", "12", "18"]
    assert all(lo.startswith("2010-05-02") for lo, _ in made(hmi, "hmi.lev1"))


def test_gap_report_empties_once_filled(hmi: Path):
    gate(hmi, "make", "hmi.LOS", "2010-05-01T00:00:00Z", "2010-05-01T06:00:00Z")
    r = gate(hmi, "gaps", "hmi.LOS", "2010-05-01T00:00:00Z", "2010-05-02T00:00:00Z")
    assert r.stdout.splitlines() == [
        "2010-05-01T06:00:00Z 2010-05-01T12:00:00Z missing",
        "2010-05-01T18:00:00Z 2010-05-02T00:00:00Z missing",
    ]
    r = gate(hmi, "check", "hmi.LOS", "2010-05-01T00:00:00Z", "2010-05-02T00:00:00Z")
    assert r.returncode == 1  # closed
    gate(hmi, "make", "hmi.LOS", "2010-05-01T00:00:00Z", "2010-05-02T00:00:00Z")
    r = gate(hmi, "gaps", "hmi.LOS", "2010-05-01T00:00:00Z", "2010-05-02T00:00:00Z")
    assert r.returncode == 0 and r.stdout == ""
    r = gate(hmi, "coverage", "hmi.LOS", "2010-05-01T00:00:00Z", "2010-05-02T00:00:00Z")
    assert r.stdout.splitlines() == [
        "2010-05-01T00:00:00Z 2010-05-01T12:00:00Z done",
        "2010-05-01T12:00:00Z 2010-05-01T18:00:00Z gap",
        "2010-05-01T18:00:00Z 2010-05-02T00:00:00Z done",
    ]


def test_remake_forces_only_the_range(hmi: Path):
    gate(hmi, "make", "hmi.lev1", "2010-05-01T00:00:00Z", "2010-05-01T12:00:00Z")
    r = gate(hmi, "remake", "hmi.lev1", "2010-05-01T00:00:00Z", "2010-05-01T06:00:00Z")
    assert r.returncode == 0, r.stdout + r.stderr
    c = Counter({lo: n for (g, lo, _), n in runs(hmi).items() if g == "hmi.lev1"})
    assert c == {"2010-05-01T00:00:00Z": 2, "2010-05-01T06:00:00Z": 1}


def test_hold_stops_a_gate(hmi: Path):
    p = hmi / "gates.yaml"
    p.write_text(
        p.read_text().replace(
            "  hmi.cosmic_rays:\n    axis: time\n",
            "  hmi.cosmic_rays:\n    state: HOLD\n    axis: time\n",
        )
    )
    targets = compile_at(hmi)
    assert not any("cosmic_rays" in t or "hmi.LOS" in t for t in targets)
    waiting = (hmi / ".padocc" / "current" / "gate_waiting.txt").read_text()
    assert "gate hmi.cosmic_rays is on HOLD" in waiting
    snakemake(hmi)
    assert made(hmi, "hmi.cosmic_rays") == [] and made(hmi, "hmi.LOS") == []
    assert len(made(hmi, "hmi.lev1")) == 7


def test_clock_gate_schedules_only_new_chunks(hmi: Path):
    targets = [t for t in compile_at(hmi, "2026-01-01T01:00:00Z") if "nrt" in t]
    # Covered up to now - 10 minutes: the 10-minute chunks ending by 00:50.
    assert [t.split("/")[-1] for t in targets] == [
        f"20260101T00{a}00Z__20260101T00{b}00Z.done"
        for a, b in [("00", "10"), ("10", "20"), ("20", "30"), ("30", "40"), ("40", "50")]
    ]
    snakemake(hmi)
    targets = [t for t in compile_at(hmi, "2026-01-01T01:30:00Z") if "nrt" in t]
    assert [t.split("/")[-1][:34] for t in targets] == [
        "20260101T005000Z__20260101T010000Z",
        "20260101T010000Z__20260101T011000Z",
        "20260101T011000Z__20260101T012000Z",
    ]
    snakemake(hmi)
    nrt = made(hmi, "hmi.nrt_LOS")
    assert len(nrt) == len(set(nrt)) == 8


def _day(jd: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=jd - 2440587.5)


def test_carrington_mapping_asks_for_the_right_days(hmi: Path):
    r = gate(hmi, "make", "hmi.synoptic", "2096", "2097")
    assert r.returncode == 0, r.stdout + r.stderr
    # Rotation n starts at JD 2398140.227 + 27.2752316 n; every day it overlaps is asked for.
    start, end = _day(2398140.227 + 27.2752316 * 2096), _day(2398140.227 + 27.2752316 * 2097)
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    days = []
    d = first
    while d < end:
        days.append(d.strftime("%Y-%m-%dT%H:%M:%SZ"))
        d += timedelta(days=1)
    assert [lo for lo, _ in made(hmi, "hmi.M_daily")] == days
    assert days[0] == "2010-04-22T00:00:00Z" and days[-1] == "2010-05-19T00:00:00Z"
    assert made(hmi, "hmi.synoptic") == [("2096", "2097")]


def test_wait_times_out_then_opens(hmi: Path):
    compile_at(hmi)
    r = padocc(
        "gate",
        "wait",
        "hmi.lev1",
        "2010-05-01T00:00:00Z",
        "2010-05-01T06:00:00Z",
        "-C",
        str(hmi),
        "--timeout",
        "1",
        "--now",
        NOW,
    )
    assert (r.returncode, r.stdout.strip()) == (4, "timed out")
    gate(hmi, "make", "hmi.lev1", "2010-05-01T00:00:00Z", "2010-05-01T06:00:00Z")
    r = padocc(
        "gate",
        "wait",
        "hmi.lev1",
        "2010-05-01T00:00:00Z",
        "2010-05-01T06:00:00Z",
        "-C",
        str(hmi),
        "--timeout",
        "5",
    )
    assert (r.returncode, r.stdout.strip()) == (0, "open")


def test_failed_chunk_is_a_failure_then_retried_next_cycle(hmi: Path, monkeypatch):
    monkeypatch.setenv("FAIL_CHUNKS", "hmi.lev1@2010-05-01T00:00:00Z")
    r = gate(hmi, "make", "hmi.lev1", "2010-05-01T00:00:00Z", "2010-05-01T12:00:00Z")
    assert r.returncode == 5  # processing error
    status = (hmi / "status" / "gates" / "hmi.lev1.status").read_text()
    assert ":hmi.lev1:Make:Fail:" in status and "exit=1" in status
    r = gate(hmi, "gaps", "hmi.lev1", "2010-05-01T00:00:00Z", "2010-05-01T12:00:00Z")
    assert r.stdout.splitlines() == ["2010-05-01T00:00:00Z 2010-05-01T06:00:00Z missing"]
    monkeypatch.delenv("FAIL_CHUNKS")
    assert (
        gate(hmi, "make", "hmi.lev1", "2010-05-01T00:00:00Z", "2010-05-01T12:00:00Z").returncode
        == 0
    )


BAD = [
    (
        "low-after-high",
        'want: {low: "2010-05-01T00:00:00Z", high: "2010-05-03T00:00:00Z"}\n    gaps',
        'want: {low: "2010-05-04T00:00:00Z", high: "2010-05-03T00:00:00Z"}\n    gaps',
        "hmi/gates.yaml:9:11: error: want: low 2010-05-04T00:00:00Z is after high 2010-05-03T00:00:00Z",
    ),
    (
        "maxrange-zero",
        "maxrange: 1d",
        "maxrange: 0s",
        "hmi/gates.yaml:19:15: error: maxrange must be positive, not '0s'",
    ),
    (
        "unknown-precondition",
        "      - gate: hmi.lev1\n\n",
        "      - gate: hmi.lev2\n\n",
        "hmi/gates.yaml:23:15: error: precondition on unknown gate 'hmi.lev2' (did you mean 'hmi.lev1'?)",
    ),
    (
        "cycle",
        "    parallelOK: 2\n\n  # Cosmic",
        "    parallelOK: 2\n    preconditions: [hmi.LOS]\n\n  # Cosmic",
        "hmi/gates.yaml:24:15: error: preconditions form a cycle: hmi.lev1 -> hmi.LOS -> hmi.cosmic_rays -> hmi.lev1",
    ),
    (
        "bad-time",
        'origin: "2010-05-01T00:00:00Z"',
        'origin: "2010-13-01T00:00:00Z"',
        "hmi/gates.yaml:7:13: error: cannot read time '2010-13-01T00:00:00Z': month must be in 1..12",
    ),
    (
        "unknown-axis",
        "    axis: carrington",
        "    axis: carington",
        "hmi/gates.yaml:69:11: error: unknown axis 'carington' (did you mean 'carrington'?): use time, serial or carrington",
    ),
    (
        "unknown-key",
        "    parallelOK: 2\n\n  # Cosmic",
        "    paralelOK: 2\n\n  # Cosmic",
        "hmi/gates.yaml:13:5: error: unknown key 'paralelOK' in gate (did you mean 'parallelOK'?)",
    ),
    (
        "state",
        '    command: "{python} {workflow_dir}/bin/hmi.py {gate} {low} {high}"\n    parallelOK: 2\n\n  # Cosmic',
        '    command: "{python} {workflow_dir}/bin/hmi.py {gate} {low} {high}"\n    state: PAUSED\n\n  # Cosmic',
        "hmi/gates.yaml:13:12: error: state must be ACTIVE or HOLD, not 'PAUSED'",
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_gate_definitions(hmi: Path, case):
    _, old, new, expected = case
    p = hmi / "gates.yaml"
    text = p.read_text()
    assert old in text, old
    p.write_text(text.replace(old, new, 1))
    r = padocc("compile", "hmi", cwd=hmi.parent)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [expected]
    assert not (hmi / ".padocc").exists()


KEYED = {
    "workflow.yaml": """\
name: AR
datasets:
  lists: [{file: regions.txt, pattern: "AR.{region}"}]
gates: gates.yaml
""",
    "regions.txt": "AR.11100\nAR.11101\n",
    "hooks.py": """\
def day_before(low, high):
    # the odd case: the whole previous day, whatever the chunk
    day = 86400
    start = (low // day) * day
    return start - day, start
""",
    "gates.yaml": """\
gates:
  mag:
    axis: time
    maxrange: 1h
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
  daily:
    axis: time
    maxrange: 1d
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
  sharp:
    axis: time
    maxrange: 2h
    keyed: true
    want: {low: "2010-05-02T00:00:00Z", high: "2010-05-02T04:00:00Z"}
    command: "{python} {workflow_dir}/make.py {gate} {low} {high} {region}"
    preconditions:
      - gate: mag
        map: {lookback: 1h}
      - gate: daily
        map: {hook: "hooks.py:day_before"}
""",
    "make.py": """\
import sys
with open("/".join(__file__.split("/")[:-1]) + "/runs.log", "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
""",
}


def test_keyed_gate_hook_and_lookback(tmp_path: Path):
    wf = tmp_path / "ar"
    wf.mkdir()
    for name, text in KEYED.items():
        (wf / name).write_text(text)
    targets = compile_at(wf)
    assert targets == [
        "gates/sharp/AR.11100/20100502T000000Z__20100502T020000Z.done",
        "gates/sharp/AR.11100/20100502T020000Z__20100502T040000Z.done",
        "gates/sharp/AR.11101/20100502T000000Z__20100502T020000Z.done",
        "gates/sharp/AR.11101/20100502T020000Z__20100502T040000Z.done",
    ]
    snakemake(wf)
    lines = sorted((wf / "runs.log").read_text().splitlines())
    # One gate per dataset, its facets in the command; the unkeyed inputs made once.
    assert [ln for ln in lines if ln.startswith("sharp")] == [
        "sharp 2010-05-02T00:00:00Z 2010-05-02T02:00:00Z 11100",
        "sharp 2010-05-02T00:00:00Z 2010-05-02T02:00:00Z 11101",
        "sharp 2010-05-02T02:00:00Z 2010-05-02T04:00:00Z 11100",
        "sharp 2010-05-02T02:00:00Z 2010-05-02T04:00:00Z 11101",
    ]
    # lookback 1h: [00:00-02:00) needs mag from 23:00 the day before.
    assert [ln.split()[1][11:13] for ln in lines if ln.startswith("mag")] == ["23", "00", "01", "02", "03"]
    # the hook: the whole previous day, once.
    assert [ln for ln in lines if ln.startswith("daily")] == ["daily 2010-05-01T00:00:00Z 2010-05-02T00:00:00Z"]
    assert (wf / "status" / "gates" / "sharp@AR.11101.status").read_text().startswith("DATASETID=sharp@AR.11101\n")


SOURCE = {
    "workflow.yaml": "name: SRC\ngates: gates.yaml\n",
    "gates.yaml": """\
gates:
  # Telemetry arrives from the instrument: not made here, only reported by a status command.
  lev0:
    axis: time
    coverage: "cat {workflow_dir}/telemetry.txt"
  lev1:
    axis: time
    maxrange: 6h
    want: {low: "2010-05-01T00:00:00Z", high: "2010-05-02T00:00:00Z"}
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
    preconditions: [lev0]
""",
    "make.py": KEYED["make.py"],
}


def test_status_command_coverage_lets_only_covered_chunks_through(tmp_path: Path):
    wf = tmp_path / "src"
    wf.mkdir()
    for name, text in SOURCE.items():
        (wf / name).write_text(text)
    (wf / "telemetry.txt").write_text("2010-05-01T00:00:00Z 2010-05-01T13:30:00Z\n")
    targets = compile_at(wf)
    assert [t.split("/")[-1] for t in targets] == [
        "20100501T000000Z__20100501T060000Z.done", "20100501T060000Z__20100501T120000Z.done"]
    waiting = (wf / ".padocc" / "current" / "gate_waiting.txt").read_text().splitlines()
    assert waiting[0] == ("lev1 20100501T120000Z__20100501T180000Z: "
                          "waiting for lev0 data up to 2010-05-01T18:00:00Z")
    snakemake(wf)
    # More telemetry arrives: the next cycle makes only the newly covered chunks.
    (wf / "telemetry.txt").write_text("2010-05-01T00:00:00Z 2010-05-02T00:00:00Z\n")
    assert len(compile_at(wf)) == 2
    snakemake(wf)
    lines = (wf / "runs.log").read_text().splitlines()
    assert len(lines) == len(set(lines)) == 4
    r = gate(wf, "range", "lev0")
    assert r.stdout.split() == ["2010-05-01T00:00:00Z", "2010-05-02T00:00:00Z"]
