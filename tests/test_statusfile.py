"""The status file: datasm-compatible lines, escaping, tolerant reading, atomic appends."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from compiler.core.statusfile import (
    HistoryTail,
    Stat,
    append_stats,
    format_stat,
    parse_history,
    parse_stat,
    position_of,
    read_history,
    utc_stamp,
)


def test_datasm_line_parses():
    st = parse_stat(
        "STAT:20230503_143045_123456:WAREHOUSE:VALIDATION:CheckTime:Pass:path=/a/b,note=x^y"
    )
    assert (st.workflow, st.sub, st.step, st.state) == (
        "WAREHOUSE",
        "VALIDATION",
        "CheckTime",
        "Pass",
    )
    assert st.params == {"path": "/a/b", "note": "x:y"}


def test_values_round_trip():
    params = {"msg": "a:b,c=d^e%f\nnext", "k": "plain"}
    line = format_stat(Stat(utc_stamp(), "W", "S", "Step", "Fail", params))
    assert "\n" not in line and line.count(":") == 6
    assert "a^b" in line  # ':' is written '^' as datasm does
    assert parse_stat(line).params == params


def test_tolerant_read(tmp_path: Path):
    good = format_stat(Stat("20260101_000000_000000", "W", "W", "A", "Pass", {}))
    data = (
        "DATASETID=x\n# a comment line\n"
        f"{good}\nSTAT:garbage\nBlocked by hand\n"
        "STAT:20260101_000001_000000:W:W:B:Engaged:host=h\n"
        "STAT:20260101_000002_000000:W:W:B:Pa"  # torn last line: no newline
    ).encode()
    h = parse_history(data, "x.status")
    assert h.dataset_id == "x"
    assert [s.step + ":" + s.state for s in h.stats] == ["A:Pass", "B:Engaged"]
    assert h.warnings == [
        "x.status:4: malformed STAT line ignored",
        "x.status:7: torn last line ignored",
    ]
    pos = position_of(h.stats)
    assert (pos.step, pos.state) == ("A", "Pass")  # the open Engaged does not move it
    assert pos.open_engagement is not None


def test_missing_header_and_empty(tmp_path: Path):
    assert parse_history(b"", "e").warnings == ["e: empty status file"]
    h = parse_history(b"STAT:20260101_000000_000000:W:W:A:Pass:\n", "n")
    assert h.warnings == ["n:1: missing DATASETID header"] and len(h.stats) == 1


def test_non_binding_blocked():
    lines = [
        Stat("20260101_000000_000000", "W", "W", "A", "Pass", {}),
        Stat("20260101_000001_000000", "W", "W", "A", "Blocked", {}),
    ]
    pos = position_of(lines)
    assert pos.blocked and (pos.step, pos.state) == ("A", "Pass")
    pos = position_of(lines + [Stat("20260101_000002_000000", "W", "W", "A", "Unblocked", {})])
    assert not pos.blocked


def test_append_closes_torn_line(tmp_path: Path):
    p = tmp_path / "d.status"
    p.write_text("DATASETID=d\nSTAT:2026")  # a crash tore the last line
    append_stats(p, "d", [Stat(utc_stamp(), "W", "W", "A", "Pass", {})])
    h = read_history(p)
    assert [s.state for s in h.stats] == ["Pass"]
    assert p.read_text().count("DATASETID") == 1


def _writer(args):
    path, n, lines = args
    for i in range(lines):
        append_stats(
            Path(path),
            "d",
            [Stat(utc_stamp(), "W", "W", f"S{n}", "Pass", {"i": i, "pad": "x" * 200})],
        )


def test_concurrent_appends(tmp_path: Path):
    p = tmp_path / "d.status"
    with multiprocessing.Pool(32) as pool:
        pool.map(_writer, [(str(p), n, 500) for n in range(32)])
    h = read_history(p)
    assert h.warnings == []
    assert len(h.stats) == 16000
    assert p.read_text().count("\n") == 16001
    for n in range(32):
        assert sorted(int(s.params["i"]) for s in h.stats if s.step == f"S{n}") == list(range(500))


def test_history_tail_reads_what_read_history_reads(tmp_path: Path):
    """A job rereads its dataset's history after each step through HistoryTail, which
    parses only what was appended: the stats must be read_history's at every point,
    across a torn last line, its closing, a malformed line and a rewritten file."""
    p = tmp_path / "d.status"
    tail = HistoryTail(p)
    assert tail.read() == read_history(p).stats == []

    def line(step: str, state: str) -> Stat:
        return Stat(utc_stamp(), "W", "W", step, state, {"note": "a:b"})

    append_stats(p, "d", [line("A", "Engaged")])
    assert tail.read() == read_history(p).stats
    with p.open("a") as f:  # junk, then a torn line a killed writer left
        f.write("STAT:garbage\nnot a stat line\nSTAT:20240101_000000_000000:W:W:B:Pa")
    assert tail.read() == read_history(p).stats and len(tail.stats) == 1
    append_stats(p, "d", [line("A", "Pass"), line("B", "Engaged")])  # closes the torn line
    assert tail.read() == read_history(p).stats and len(tail.stats) == 3
    assert [s.state for s in tail.stats] == ["Engaged", "Pass", "Engaged"]  # "Pa" stays a fragment
    assert tail.read() == read_history(p).stats  # nothing new: the same
    p.write_text("DATASETID=d\n" + format_stat(line("C", "Fail")) + "\n")  # rewritten, shorter
    assert tail.read() == read_history(p).stats and [s.step for s in tail.stats] == ["C"]
