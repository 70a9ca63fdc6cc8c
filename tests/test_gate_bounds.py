"""Every range a gate enumerates has a bound (issues 16, 17, 18, 19).

A request past a bound is refused with exit 2 and one located line, or answered from
intervals without listing chunks: coverage, gaps and check cost what is covered, not
the length of the range asked about. A cycle schedules at most `max_chunks` chunks of a
gate and says in one line how many wait for later cycles; nothing is lost or run twice.
The answers equal a chunk-by-chunk oracle computed here, on time, serial and Carrington
axes, with map offsets either way.
"""

from __future__ import annotations

import math
import random
import resource
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import fresh_copy, padocc, snakemake

NOW = "2026-12-05T12:00:00Z"


def bounded(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """padocc under a CPU-time and memory limit far above what an answer from intervals
    needs: listing a huge range chunk by chunk runs into them (a hang guard, no timing)."""

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run(
        [sys.executable, "-m", "compiler", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=limits,
        check=False,
    )


def workflow(root: Path, gates: str, **files: str) -> Path:
    wf = root / "wf"
    wf.mkdir()
    (wf / "workflow.yaml").write_text("name: BOUNDS\ngates: gates.yaml\n")
    (wf / "gates.yaml").write_text(gates)
    for name, text in files.items():
        (wf / name.replace("__", ".")).write_text(text)
    return wf


def refused(r: subprocess.CompletedProcess, line: str) -> None:
    assert (r.returncode, r.stdout, r.stderr.splitlines()) == (2, "", [line]), r.stderr


# ------------------------------------------------------------------ refused inputs

WANT_HUGE = """\
gates:
  syn:
    axis: carrington
    maxrange: 1
    want: {low: 2096, high: 1e12}
    command: "true"
"""

ONE_SECOND_FROM_1970 = """\
gates:
  tick:
    axis: time
    maxrange: 1s
    want: {low: "1970-01-01T00:00:00Z", high: now}
    command: "true"
"""

SERIAL_TEN_MILLION = """\
gates:
  fsn:
    axis: serial
    maxrange: 1
    want: {low: 0, high: 10000000}
    command: "true"
"""

HOOK_EVERYTHING = """\
gates:
  up:
    axis: time
    maxrange: 1h
    command: "true"
  down:
    axis: time
    maxrange: 1h
    want: {low: "2010-05-01T00:00:00Z", high: "2010-05-01T02:00:00Z"}
    command: "true"
    preconditions:
      - gate: up
        map: {hook: "hooks.py:everything"}
"""

LOOKBACK_WIDE = """\
gates:
  up:
    axis: time
    maxrange: 1m
    command: "true"
  down:
    axis: time
    maxrange: 1h
    command: "true"
    preconditions:
      - gate: up
        map: {lookback: 30d}
"""


def test_a_want_of_a_trillion_rotations_is_refused_at_its_line(tmp_path: Path):
    wf = workflow(tmp_path, WANT_HUGE)
    for extra in (["--check"], []):
        r = bounded("compile", "wf", *extra, cwd=tmp_path)
        refused(
            r,
            "wf/gates.yaml:5:11: error: want: [2096, 1000000000000) is 999999997904 chunks of "
            "gate 'syn', more than the limit of 1000000: narrow it, give a window, or raise maxrange",
        )
    assert not (wf / ".padocc").exists()


def test_one_second_chunks_since_1970_are_refused_at_each_compile(tmp_path: Path):
    wf = workflow(tmp_path, ONE_SECOND_FROM_1970)
    n = int(datetime(2026, 12, 5, 12, tzinfo=UTC).timestamp())
    for extra in (["--check"], []):
        r = bounded("compile", "wf", "--now", NOW, *extra, cwd=tmp_path)
        refused(
            r,
            f"wf/gates.yaml:5:11: error: want: [1970-01-01T00:00:00Z, now) is {n} chunks of "
            "gate 'tick', more than the limit of 1000000: narrow it, give a window, or raise maxrange",
        )
    # A window keeps a want up to now bounded whatever the date.
    (wf / "gates.yaml").write_text(
        ONE_SECOND_FROM_1970.replace("high: now}", "high: now, window: 10m}")
    )
    for now in (NOW, "2126-12-05T12:00:00Z"):
        r = bounded("compile", "wf", "--now", now, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert len((wf / ".padocc/current/gate_targets.txt").read_text().split()) == 600
        assert "deferred" not in r.stderr


def test_a_serial_want_of_ten_million_chunks_fails_check(tmp_path: Path):
    workflow(tmp_path, SERIAL_TEN_MILLION)
    refused(
        bounded("compile", "wf", "--check", cwd=tmp_path),
        "wf/gates.yaml:5:11: error: want: [0, 10000000) is 10000000 chunks of gate 'fsn', "
        "more than the limit of 1000000: narrow it, give a window, or raise maxrange",
    )


def test_a_hook_asking_for_everything_is_refused_at_the_precondition(tmp_path: Path):
    hooks = "def everything(low, high):\n    return (0, 1e15)\n"
    wf = workflow(tmp_path, HOOK_EVERYTHING, hooks__py=hooks)
    line = (
        "wf/gates.yaml:12:15: error: hook 'hooks.py:everything' of the precondition on 'up' "
        "asks 277777777778 of its chunks for [2010-05-01T00:00:00Z, 2010-05-01T01:00:00Z), "
        "more than the limit of 10000"
    )
    refused(bounded("compile", "wf", "--now", NOW, cwd=tmp_path), line)
    assert not (wf / ".padocc").exists()
    r = bounded(
        "gate", "make", "down", "2010-05-01T00:00:00Z", "2010-05-01T01:00:00Z", "-C", "wf",
        cwd=tmp_path,
    )  # fmt: skip
    refused(r, line)


def test_a_map_wider_than_the_input_bound_is_refused(tmp_path: Path):
    workflow(tmp_path, LOOKBACK_WIDE)
    refused(
        bounded("compile", "wf", "--check", cwd=tmp_path),
        "wf/gates.yaml:11:15: error: map of the precondition on 'up' asks about 43262 of its "
        "chunks for one chunk of 'down', more than the limit of 10000: shorten "
        "lookback/lookahead or raise the maxrange of 'up'",
    )


@pytest.mark.parametrize(
    "old, new, line",
    [
        (
            "{lookback: 30d}",
            "{lookback: -3600}",
            "wf/gates.yaml:11:15: error: lookback and lookahead must not be negative "
            "(shift with 'offset'), not '-3600'",
        ),
        (
            "{lookback: 30d}",
            "{offset: -1x}",
            "wf/gates.yaml:11:15: error: cannot read duration '-1x': use e.g. '-1d', '10m', '6h'",
        ),
        (
            '    command: "true"\n    preconditions',
            '    command: "true"\n    max_chunks: 0\n    preconditions',
            "wf/gates.yaml:10:17: error: max_chunks must be between 1 and 1000000",
        ),
        (
            "    maxrange: 1h\n",
            '    maxrange: 1h\n    want: {low: "2010-05-01", high: now, window: 0s}\n',
            "wf/gates.yaml:9:50: error: window must be positive, not '0s'",
        ),
    ],
    ids=["negative-lookback", "bad-offset", "max-chunks-zero", "window-zero"],
)
def test_bad_bounds_in_a_gate(tmp_path: Path, old: str, new: str, line: str):
    assert old in LOOKBACK_WIDE
    workflow(tmp_path, LOOKBACK_WIDE.replace(old, new, 1))
    refused(bounded("compile", "wf", "--check", cwd=tmp_path), line)


# ------------------------------------------------- answered from intervals, any range

SOURCES = """\
gates:
  # Made elsewhere, reported by a status command: no chunk is made here.
  tele:
    axis: time
    maxrange: 10m
    coverage: "cat {workflow_dir}/tele.txt"
  fsn:
    axis: serial
    maxrange: 1
    coverage: "cat {workflow_dir}/fsn.txt"
  rot:
    axis: carrington
    maxrange: 1
    coverage: "cat {workflow_dir}/rot.txt"
"""


def test_huge_ranges_are_answered_from_intervals(tmp_path: Path):
    wf = workflow(
        tmp_path,
        SOURCES,
        tele__txt="2010-05-01T00:00:00Z 2010-05-02T00:00:00Z\n",
        fsn__txt="",
        rot__txt="",
    )
    assert bounded("compile", "wf", "--now", NOW, cwd=tmp_path).returncode == 0

    def gate(*args: str) -> subprocess.CompletedProcess:
        return bounded("gate", *args, "-C", "wf", "--now", NOW, cwd=tmp_path)

    # Year 1 to 9999 in 10-minute chunks: 525 million of them.
    lo, hi = "0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z"
    r = gate("check", "tele", lo, hi)
    assert (r.returncode, r.stdout, r.stderr) == (1, "closed\n", "")
    r = gate("gaps", "tele", lo, hi)
    assert (r.returncode, r.stdout.splitlines()) == (
        0,
        [f"{lo} 2010-05-01T00:00:00Z missing", f"2010-05-02T00:00:00Z {hi} missing"],
    )
    r = gate("check", "tele", "2010-05-01T00:00:00Z", "2010-05-02T00:00:00Z")
    assert (r.returncode, r.stdout) == (0, "open\n")
    r = gate("coverage", "fsn", "0", "1e12")
    assert (r.returncode, r.stdout) == (0, "0 1000000000000 missing\n")
    # A serial gate without a want ends where its coverage ends; it never read the
    # clock as a serial number (1.8e9 chunks).
    r = gate("coverage", "fsn")
    assert (r.returncode, r.stdout) == (0, "fsn: nothing covered and no want: give LOW HIGH\n")
    (wf / "fsn.txt").write_text("100 250\n")
    assert gate("coverage", "fsn").stdout.splitlines() == ["0 100 missing", "100 250 done"]
    # A Carrington gate without a want ends at the rotation under way at now.
    (wf / "rot.txt").write_text("2300 2310\n")
    assert gate("coverage", "rot").stdout.splitlines()[-2:] == [
        "2300 2310 done",
        f"2310 {math.ceil(carrington_of(NOW))} missing",
    ]
    # Past what a serial axis holds exactly: refused.
    r = gate("check", "fsn", "0", "1e16")
    refused(r, "HIGH: error: serial value '1e16' is out of range: at most 1e15 either side of 0")


def test_an_empty_range_asks_about_its_point(tmp_path: Path):
    """JSOC's gatekeeper checks that WANTLOW and WANTHIGH lie in the gate's range: LOW =
    HIGH asks about one point, here the chunk that holds it. It is never a free 'open'."""
    workflow(tmp_path, SOURCES, tele__txt="", fsn__txt="10 20\n", rot__txt="")
    assert bounded("compile", "wf", "--now", NOW, cwd=tmp_path).returncode == 0

    def gate(*args: str) -> subprocess.CompletedProcess:
        return bounded("gate", *args, "-C", "wf", "--now", NOW, cwd=tmp_path)

    assert (
        gate("check", "fsn", "25", "25").returncode,
        gate("check", "fsn", "25", "25").stdout,
    ) == (
        1,
        "closed\n",
    )
    assert gate("gaps", "fsn", "25", "25").stdout == "25 26 missing\n"
    assert gate("coverage", "fsn", "25.5", "25.5").stdout == "25 26 missing\n"
    r = gate("check", "fsn", "15", "15")
    assert (r.returncode, r.stdout) == (0, "open\n")
    r = gate("check", "tele", "2010-05-01T00:05:00Z", "2010-05-01T00:05:00Z")
    assert (r.returncode, r.stdout) == (1, "closed\n")
    assert gate("gaps", "tele", "2010-05-01T00:05:00Z", "2010-05-01T00:05:00Z").stdout == (
        "2010-05-01T00:00:00Z 2010-05-01T00:10:00Z missing\n"
    )


# ------------------------------------------------------------- bounded cycles

STEADY = """\
gates:
  g:
    axis: time
    maxrange: 1h
    max_chunks: 5
    want: {low: "2010-05-01T00:00:00Z", high: "2010-05-01T12:00:00Z"}
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
"""

MAKE = """\
import pathlib, sys
here = pathlib.Path(__file__).parent
gate, low, high = sys.argv[1:4]
failing = (here / "fail.txt").read_text().splitlines() if (here / "fail.txt").exists() else []
if f"{gate} {low}" in failing:
    with open(here / "failed.log", "a") as f:
        f.write(f"{gate} {low} {high}\\n")
    sys.exit(1)
with open(here / "runs.log", "a") as f:
    f.write(f"{gate} {low} {high}\\n")
"""


def targets(wf: Path) -> list[str]:
    return (wf / ".padocc/current/gate_targets.txt").read_text().split()


def log(wf: Path, name: str = "runs.log") -> list[list[str]]:
    p = wf / name
    return [ln.split() for ln in p.read_text().splitlines()] if p.exists() else []


def test_a_cycle_makes_at_most_max_chunks_and_later_cycles_the_rest(tmp_path: Path):
    wf = workflow(tmp_path, STEADY, make__py=MAKE)
    deferred, made = [], []
    for _ in range(4):
        r = padocc("compile", "wf", "--now", NOW, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        deferred.append([ln for ln in r.stderr.splitlines() if "deferred" in ln])
        snakemake(wf)
        made.append(sorted(lo[11:13] for _, lo, _ in log(wf)[sum(map(len, made)) :]))
    assert deferred == [
        ["warning: 7 gate chunks deferred to later cycles (a cycle makes at most max_chunks "
         "chunks of each gate, default 1000): g 7"],
        ["warning: 2 gate chunks deferred to later cycles (a cycle makes at most max_chunks "
         "chunks of each gate, default 1000): g 2"],
        [],
        [],
    ]  # fmt: skip
    # Oldest first, each chunk once, nothing lost.
    hours = [f"{h:02d}" for h in range(12)]
    assert made == [hours[:5], hours[5:10], hours[10:], []]


PULLED = """\
gates:
  u:
    axis: time
    maxrange: 1h
    max_chunks: 3
    command: "true"
  d:
    axis: time
    maxrange: 2h
    want: {low: "2010-05-01T00:00:00Z", high: "2010-05-01T08:00:00Z"}
    command: "true"
    preconditions: [u]
"""


@pytest.mark.parametrize("cap", [3, 1])
def test_input_chunks_count_against_their_own_gate_bound(tmp_path: Path, cap: int):
    wf = workflow(tmp_path, PULLED.replace("max_chunks: 3", f"max_chunks: {cap}"))
    r = padocc("compile", "wf", "--now", NOW, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # d's first chunk pulls in two chunks of u; the second would need two more, past 3.
    # With a bound of 1, the first still goes, alone: a chunk whose inputs alone pass
    # the bound never waits forever.
    assert targets(wf) == ["gates/d/20100501T000000Z__20100501T020000Z.done"]
    assert [ln for ln in r.stderr.splitlines() if "deferred" in ln] == [
        "warning: 3 gate chunks deferred to later cycles (a cycle makes at most max_chunks "
        "chunks of each gate, default 1000): d 3"
    ]
    r = snakemake(wf, extra=("-n",))
    assert (r.stdout + r.stderr).count("rule gate_u") == 2


def test_a_request_for_a_huge_range_makes_a_bounded_piece(tmp_path: Path):
    gates = STEADY.replace("axis: time", "axis: serial").replace("maxrange: 1h", "maxrange: 1")
    gates = gates.replace(
        '{low: "2010-05-01T00:00:00Z", high: "2010-05-01T12:00:00Z"}', "{low: 0, high: 10}"
    )
    wf = workflow(tmp_path, gates.replace("max_chunks: 5", "max_chunks: 3"), make__py=MAKE)
    r = padocc("gate", "make", "g", "0", "1e12", "-C", "wf", cwd=tmp_path, timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr  # closed: the rest is still missing
    assert r.stdout.splitlines() == [
        "999999999997 gate chunks deferred to later cycles (a cycle makes at most max_chunks "
        "chunks of each gate, default 1000): g 999999999997: ask again for the rest",
        "made 3 chunks of g",
        "closed",
    ]
    assert sorted(log(wf)) == [["g", "0", "1"], ["g", "1", "2"], ["g", "2", "3"]]


# ---------------------------------------------------------------- the HMI example


@pytest.mark.parametrize("now", [None, "2026-01-01T01:00:00Z", NOW, "2036-12-05T12:00:00Z"])
def test_the_hmi_example_stays_small_at_any_date(tmp_path: Path, now: str | None):
    hmi = fresh_copy("hmi", tmp_path / "hmi")
    r = bounded("compile", "hmi", *(["--now", now] if now else []), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "deferred" not in r.stderr
    assert 0 < len(targets(hmi)) <= 60
    nrt = [t for t in targets(hmi) if "nrt" in t]
    assert len(nrt) <= 36  # the 6-hour window of 10-minute chunks


# ----------------------------------------------- equal to a chunk-by-chunk oracle

_JD0, _PERIOD, _UNIX_JD = 2398140.227, 27.2752316, 2440587.5


def carrington_of(t: str) -> float:
    sec = datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    return (sec / 86400 + _UNIX_JD - _JD0) / _PERIOD


def seconds_of_rotation(cr: float) -> float:
    return (_JD0 + _PERIOD * cr - _UNIX_JD) * 86400


def iso(sec: float) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=sec)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def secs(t: str) -> int:
    return int(datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


class Axis:
    def __init__(self, kind: str, origin: float, size: float):
        self.kind, self.origin, self.size = kind, origin, size

    def show(self, v: float) -> str:
        if self.kind == "time":
            return iso(v)
        return str(int(v)) if float(v).is_integer() else repr(float(v))

    def read(self, text: str) -> float:
        return secs(text) if self.kind == "time" else float(text)

    def chunks(self, lo: float, hi: float) -> list[tuple[float, float]]:
        if lo == hi:  # a point: the chunk that holds it
            k = math.floor((lo - self.origin) / self.size)
            return [(self.origin + k * self.size, self.origin + (k + 1) * self.size)]
        first = math.floor((lo - self.origin) / self.size)
        last = math.ceil((hi - self.origin) / self.size)
        return [
            (self.origin + k * self.size, self.origin + (k + 1) * self.size)
            for k in range(first, last)
        ]


def oracle(axis: Axis, facts: dict, lo: float, hi: float) -> list[tuple[str, str, str]]:
    """Chunk by chunk, the way the enumerating code classified: done, gap, failed, missing."""
    runs: list[list] = []
    for a, b in axis.chunks(lo, hi):
        if (a, b) in facts["made"] or any(x <= a and b <= y for x, y in facts["status"]):
            kind = "done"
        elif any(x <= a and b <= y for x, y in facts["gaps"]):
            kind = "gap"
        elif (a, b) in facts["failed"]:
            kind = "failed"
        else:
            kind = "missing"
        if runs and runs[-1][2] == kind:
            runs[-1][1] = b
        else:
            runs.append([a, b, kind])
    return [(axis.show(a), axis.show(b), k) for a, b, k in runs]


ORACLE_CASES = {
    # gate: (axis, YAML of its grid and gaps, range made by `gate make`,
    #        the status command's interval, the chunk low that fails)
    "t": (
        Axis("time", secs("2010-05-01T00:00:00Z"), 3600),
        'axis: time\n    origin: "2010-05-01T00:00:00Z"\n    maxrange: 1h',
        [("2010-05-01T03:00:00Z", "2010-05-01T05:00:00Z"),
         ("2010-05-01T09:30:00Z", "2010-05-01T11:15:00Z")],
        ("2010-05-01T00:00:00Z", "2010-05-01T08:00:00Z"),
        ("2010-05-01T12:00:00Z", "2010-05-01T14:30:00Z"),
        "2010-05-01T06:00:00Z",
    ),
    "s": (Axis("serial", 3, 4), "axis: serial\n    origin: 3\n    maxrange: 4",
          [("11", "19"), ("30.5", "36")], ("3", "27"), ("40", "52"), "23"),
    "c": (Axis("carrington", 2090, 0.25), "axis: carrington\n    origin: 2090\n    step: 0.25\n    maxrange: 0.25",
          [("2091", "2091.5")], ("2090", "2091.75"), ("2092.1", "2093"), "2090.75"),
}  # fmt: skip


def oracle_gates() -> str:
    out = "gates:\n"
    for g, (_, grid, gaps, _, _, _) in ORACLE_CASES.items():
        listed = ", ".join(f'{{low: "{a}", high: "{b}"}}' for a, b in gaps)
        out += (
            f"  {g}:\n    {grid}\n    gaps: [{listed}]\n"
            f'    coverage: "cat {{workflow_dir}}/{g}.txt"\n'
            '    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"\n'
            "    max_failures: 1\n    retries: 0\n"
        )
    return out


def test_coverage_gaps_and_check_equal_the_chunk_by_chunk_oracle(tmp_path: Path):
    files = {f"{g}__txt": " ".join(case[4]) + "\n" for g, case in ORACLE_CASES.items()}
    fail = "".join(f"{g} {case[5]}\n" for g, case in ORACLE_CASES.items())
    wf = workflow(tmp_path, oracle_gates(), make__py=MAKE, fail__txt=fail, **files)
    for g, (_, _, _, (lo, hi), _, _) in ORACLE_CASES.items():
        r = padocc("gate", "make", g, lo, hi, "-C", "wf", "--now", NOW, cwd=tmp_path, timeout=600)
        assert r.returncode == 5, r.stdout + r.stderr  # one chunk failed: a processing error
    rng = random.Random(16)
    asked = 0
    for g, (axis, _, gaps, _, status, _) in ORACLE_CASES.items():
        facts = {
            "made": {(axis.read(lo), axis.read(hi)) for gg, lo, hi in log(wf) if gg == g},
            "failed": {
                (axis.read(lo), axis.read(hi)) for gg, lo, hi in log(wf, "failed.log") if gg == g
            },
            "status": [(axis.read(status[0]), axis.read(status[1]))],
            "gaps": [(axis.read(a), axis.read(b)) for a, b in gaps],
        }
        assert facts["made"] and facts["failed"]
        half = axis.size / 2
        queries = [(axis.origin - 3 * axis.size, axis.origin + 60 * axis.size)]
        queries += [(axis.origin + 5 * half, axis.origin + 5 * half)]  # a point
        for _ in range(6):
            a, b = sorted(rng.randint(-4, 120) for _ in range(2))
            queries.append((axis.origin + a * half, axis.origin + b * half))
        for lo, hi in queries:
            want = oracle(axis, facts, lo, hi)
            args = (axis.show(lo), axis.show(hi), "-C", "wf", "--now", NOW)
            r = bounded("gate", "coverage", g, *args, cwd=tmp_path)
            assert r.returncode == 0, r.stderr
            assert [tuple(ln.split()) for ln in r.stdout.splitlines()] == want, (g, lo, hi)
            r = bounded("gate", "gaps", g, *args, cwd=tmp_path)
            assert [tuple(ln.split()) for ln in r.stdout.splitlines()] == [
                w for w in want if w[2] not in ("done", "gap")
            ]
            r = bounded("gate", "check", g, *args, cwd=tmp_path)
            closed = any(w[2] not in ("done", "gap") for w in want)
            assert (r.returncode, r.stdout) == ((1, "closed\n") if closed else (0, "open\n"))
            asked += 1
    assert asked == 24


MAPPED = """\
gates:
  u1:
    axis: time
    maxrange: 30m
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
  u2:
    axis: time
    maxrange: 30m
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
  back:
    axis: time
    maxrange: 1h
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
    preconditions:
      - gate: u1
        map: {offset: -1d}
  ahead:
    axis: time
    maxrange: 1h
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
    preconditions:
      - gate: u2
        map: {offset: +45m, lookahead: 20m}
  su:
    axis: serial
    maxrange: 2
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
  sd:
    axis: serial
    origin: 1
    maxrange: 5
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
    preconditions:
      - gate: su
        map: {offset: -3, lookback: 1}
  daily:
    axis: time
    maxrange: 1d
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
  synoptic:
    axis: carrington
    maxrange: 1
    command: "{python} {workflow_dir}/make.py {gate} {low} {high}"
    preconditions:
      - gate: daily
        map: {offset: -1d}
"""


def test_map_offsets_either_way_ask_for_the_oracle_chunks(tmp_path: Path):
    wf = workflow(tmp_path, MAPPED, make__py=MAKE)
    day, h = 86400, 3600
    t0 = secs("2010-05-02T10:00:00Z")
    cases = [
        # downstream request, upstream gate, its axis, the range the map asks for
        ("back", iso(t0), iso(t0 + 2 * h), "u1", Axis("time", 0, 1800), (t0 - day, t0 + 2 * h - day)),
        ("ahead", iso(t0), iso(t0 + 2 * h), "u2", Axis("time", 0, 1800),
         (t0 + 45 * 60, t0 + 2 * h + 45 * 60 + 20 * 60)),
        ("sd", "6", "16", "su", Axis("serial", 0, 2), (6 - 3 - 1, 16 - 3)),
        ("synoptic", "2096", "2097", "daily", Axis("time", 0, day),
         (seconds_of_rotation(2096) - day, seconds_of_rotation(2097) - day)),
    ]  # fmt: skip
    for down, lo, hi, up, axis, (a, b) in cases:
        r = padocc(
            "gate", "make", down, lo, hi, "-C", "wf", "--now", NOW, cwd=tmp_path, timeout=600
        )
        assert r.returncode == 0, r.stdout + r.stderr
        made = sorted((axis.read(x), axis.read(y)) for g, x, y in log(wf) if g == up)
        assert made == axis.chunks(a, b), (down, up)
