"""Status files as datasm writes and reads them.

Every line shape here is one datasm writes, at E3SM-Project/datasm commit 18eb7f4
(18eb7f46803a9553c4d95916a2b2e0e3887b349e); each is cited by its path. datasm's two
readers are transcribed below from datasm/dataset.py and datasm/util.py of that commit,
so that what padocc writes is checked the way datasm would read it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import compile_wf, fresh_copy, padocc

from compiler.core.statusfile import (
    Stat,
    append_stats,
    format_stat,
    parse_history,
    parse_stat,
    position_of,
    read_history,
)

TS = "20240101_000000_000000"
TORN_MARK = "::TORN:"  # what closes a torn line: the file format, written out

# --- datasm's readers, transcribed (E3SM-Project/datasm 18eb7f4) ---------------------

# datasm/dataset.py, module level
DATASM_NON_BINDING = ["Blocked:", "Unblocked:", "Approved:", "Unapproved:"]


def datasm_latest(text: str) -> str | None:
    """datasm/dataset.py `load_dataset_status_file` then `get_latest_status`: the latest
    binding record as "major:minor:message" (datasm/util.py `load_file_lines` reads the
    lines)."""
    stat: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for line in [x for x in text.split("\n") if x]:
        info = line.split(":")
        if info[0] == "STAT":
            msg = (info[1], ":".join(info[4:]))
            rows = stat.setdefault(info[2], {}).setdefault(info[3], [])
            if msg not in rows:
                rows.append(msg)
    latest, latest_val = "0", None
    for major in stat:
        for minor in stat[major]:
            for item in stat[major][minor]:
                if item[0] >= latest and item[1] not in DATASM_NON_BINDING:
                    latest, latest_val = item[0], f"{major}:{minor}:{item[1]}"
    return latest_val


def datasm_listener_state(text: str) -> str | None:
    """datasm/util.py `get_last_status_line` then datasm/dataset.py
    `update_from_status_file`: the state datasm's listener acts on."""
    last = None
    for line in text.splitlines(keepends=True):
        if "STAT" in line:
            last = line
    if last is None:
        return None
    parts = last.split(":")
    if len(parts) == 5:
        return ":".join(parts[2:]).strip()
    if len(parts) > 5:
        return ":".join(parts[3:]).strip()
    return ":".join(parts[-2:-1]).strip()


def datasm_step_state(state: str) -> str:
    """datasm/workflows/__init__.py `next_state`: the Step:State it routes on."""
    a = state.split(":")
    return state if len(a) < 3 else f"{a[-3]}:{a[-2]}"


# --- every line shape datasm writes ----------------------------------------------------

SHAPES = [
    # datasm/workflows/jobs/__init__.py `add_cmd_suffix`, parent "DATASM:PUBLICATION",
    # the message file written by datasm/scripts/generate_mapfile.py
    (
        f"STAT:{TS}:DATASM:PUBLICATION:GenerateMapfile:Pass:mapfile_path=/p/x.map",
        ("DATASM", "PUBLICATION", "GenerateMapfile", "Pass", {"mapfile_path": "/p/x.map"}),
    ),
    # datasm/workflows/jobs/__init__.py `__call__` through dataset.py's status setter
    (
        f"STAT:{TS}:DATASM:PUBLICATION:GenerateMapfile:Engaged:slurm_id=123",
        ("DATASM", "PUBLICATION", "GenerateMapfile", "Engaged", {"slurm_id": "123"}),
    ),
    # datasm/datasm.py `start_datasets` writing next_state's f"{prefix}{x}:" from the top
    (f"STAT:{TS}:DATASM:PUBLICATION:Ready:", ("DATASM", "DATASM", "PUBLICATION", "Ready", {})),
    # ... and from a sub-sub-workflow (prefix DATASM:VALIDATION:ATMVALIDATION:)
    (
        f"STAT:{TS}:DATASM:VALIDATION:ATMVALIDATION:CheckTime:Ready:",
        ("DATASM", "ATMVALIDATION", "CheckTime", "Ready", {}),
    ),
    # datasm/dataset.py DatasetStatus.READY / SUCCESS through the status setter
    (f"STAT:{TS}:DATASM:Ready:", ("", "", "DATASM", "Ready", {})),
    (f"STAT:{TS}:DATASM:Pass:", ("", "", "DATASM", "Pass", {})),
    # datasm/tools/datasm_verify_publication.py `set_last_status_value`: no DATASM level,
    # and a value with no '=' (datasm's start_datasets skips it)
    (f"STAT:{TS}:PUBLICATION:Verified:v20240101", ("", "", "PUBLICATION", "Verified", {})),
    # ... its failure reason holds unescaped ':': datasm routes on the last three fields
    (
        f"STAT:{TS}:PUBLICATION:Verification_Fail:MismatchedFilecount:pubroot;esgf=3;4",
        (
            "PUBLICATION",
            "PUBLICATION",
            "Verification_Fail",
            "MismatchedFilecount",
            {"pubroot;esgf": "3;4"},
        ),
    ),  # fmt: skip
    # issue 16's shorter line: no DATASM level
    (
        f"STAT:{TS}:PUBLICATION:MapfileGeneration:Pass:version=v20240101",
        ("PUBLICATION", "PUBLICATION", "MapfileGeneration", "Pass", {"version": "v20240101"}),
    ),
    # datasm/scripts/dsm_generate_CMIP6.py (the script it generates): no trailing ':'
    (
        f"STAT:{TS}:POSTPROCESS:DSM_Generate_CMIP6:Fail:return_code=1",
        ("POSTPROCESS", "POSTPROCESS", "DSM_Generate_CMIP6", "Fail", {"return_code": "1"}),
    ),
    # datasm/tools/archive_extraction_service.py `ensureStatusFile`: no trailing ':', so
    # datasm's next_state reads Step:State as "DATASM:EXTRACTION"; so do we
    (f"STAT:{TS}:DATASM:EXTRACTION:Ready", ("", "", "DATASM", "EXTRACTION", {})),
]


@pytest.mark.parametrize(("line", "want"), SHAPES, ids=[s[0][27:] for s in SHAPES])
def test_every_datasm_line_shape_reads_as_datasm_reads_it(line, want):
    st = parse_stat(line)
    assert (st.workflow, st.sub, st.step, st.state, dict(st.params)) == want
    # The Step:State is the one datasm's next_state routes on.
    assert f"{st.step}:{st.state}" == datasm_step_state(datasm_latest(f"{line}\n"))


def test_datasm_notes_and_comments_are_no_records():
    # datasm/tools/archive_extraction_service.py `ensureStatusFile` writes these notes;
    # datasm/scripts/dsm_generate_CMIP6.py writes COMM comment lines.
    text = (
        f"DATASETID=d\nSTAT:{TS}:DATASM:EXTRACTION:Ready:\n"
        "STAT:20240101_000001_000000:DATASM:VALIDATION:Unblocked:\n"
        "STAT:20240101_000002_000000:DATASM:PUBLICATION:Blocked:\n"
        "STAT:20240101_000003_000000:DATASM:PUBLICATION:Unapproved:\n"
        "COMM:20240101_000004_000000:POSTPROCESS:DSM_Generate_CMIP6:NCO:Fail\n"
    )
    h = parse_history(text.encode(), "d.status")
    assert h.warnings == []
    assert [(s.step, s.state) for s in h.stats] == [("EXTRACTION", "Ready")]
    pos = position_of(h.stats)
    assert not pos.blocked and (pos.step, pos.state) == ("EXTRACTION", "Ready")
    assert datasm_latest(text) == "DATASM:EXTRACTION:Ready:"  # datasm agrees


@pytest.mark.parametrize("state", ["Blocked", "Unblocked", "Retry", "Cancelled"])
def test_our_non_binding_lines_are_comments_to_datasm(tmp_path: Path, state: str):
    p = tmp_path / "d.status"
    done = Stat(TS, "DATASM", "PUBLICATION", "GenerateMapfile", "Pass", {})
    note = Stat(
        "20240101_000001_000000", "DATASM", "PUBLICATION", "STATS", state,
        {"by": "ops", "reason": "STATION: down, 100%", "exit": 1},
    )  # fmt: skip
    append_stats(p, "d", [done, note])
    text = p.read_text()
    assert text.splitlines()[-1].startswith("COMM:") and text.count("STAT") == 1
    assert datasm_latest(text) == "DATASM:PUBLICATION:GenerateMapfile:Pass:"
    assert datasm_listener_state(text) == "PUBLICATION:GenerateMapfile:Pass:"
    # We read it back whole, and it binds as before.
    h = read_history(p)
    assert h.warnings == [] and h.stats[1] == Stat(
        note.ts, "DATASM", "PUBLICATION", "STATS", state,
        {"by": "ops", "reason": "STATION: down, 100%", "exit": "1"},
    )  # fmt: skip
    assert (position_of(h.stats).step, position_of(h.stats).state) == ("GenerateMapfile", "Pass")


def test_old_files_non_binding_stat_lines_still_read():
    text = (
        f"DATASETID=d\nSTAT:{TS}:W:W:A:Pass:\n"
        "STAT:20240101_000001_000000:W:W:A:Blocked:by=ops\n"
        "STAT:20240101_000002_000000:W:W:B:Retry:exit=1,attempt=1\n"
    )
    pos = position_of(parse_history(text.encode(), "d").stats)
    assert pos.blocked and (pos.step, pos.state) == ("A", "Pass")


def test_a_closed_torn_line_is_a_fragment_to_us_and_to_datasm(tmp_path: Path):
    p = tmp_path / "d.status"
    p.write_text(f"DATASETID=d\nSTAT:{TS}:W:W:Generate:Engaged:\nSTAT:{TS}:W:W:Generate:Pass")
    append_stats(p, "d", [Stat("20240101_000001_000000", "W", "W", "Generate", "Retry", {})])
    text = p.read_text()
    assert text.splitlines()[2] == f"STAT:{TS}:W:W:Generate:Pass{TORN_MARK}"
    h = read_history(p)
    assert h.warnings == [f"{p}:3: torn line (cut by a crash, closed later) ignored"]
    assert [s.state for s in h.stats] == ["Engaged", "Retry"]
    # datasm's latest is the fragment: a Step:State no graph holds, never a Pass.
    assert datasm_step_state(datasm_latest(text)) == ":TORN"
    assert datasm_step_state(datasm_listener_state(text)) == ":TORN"


def test_format_keeps_our_own_shape():
    line = format_stat(Stat(TS, "DEMO", "VALIDATION", "CheckTime", "Pass", {"a": "b:c"}))
    assert line == f"STAT:{TS}:DEMO:VALIDATION:CheckTime:Pass:a=b^c"


# --- from the user's side: padocc status and padocc run on datasm's lines -------------


@pytest.fixture
def small_demo(tmp_path: Path) -> Path:
    wf = fresh_copy("demo", tmp_path / "demo")
    spec = wf / "dataset_spec.yaml"
    spec.write_text(
        "project:\n  DEMO:\n    atmos:\n      variables: [tas]\n"
        "      experiments:\n        hist: {ens: [r1, r2, r3]}\n"
    )
    return wf


def _run(wf: Path) -> subprocess.CompletedProcess:
    r = padocc("run", str(wf), "--profile", "local", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_status_and_run_on_datasm_lines(small_demo: Path):
    status = small_demo / "status"
    status.mkdir()
    # The shorter line, a top-level datasm line, and a datasm note after it.
    (status / "DEMO.atmos.hist.r1.tas.status").write_text(
        f"DATASETID=DEMO.atmos.hist.r1.tas\nSTAT:{TS}:VALIDATION:CheckTime:Pass:version=v20240101\n"
    )
    (status / "DEMO.atmos.hist.r2.tas.status").write_text(
        "DATASETID=DEMO.atmos.hist.r2.tas\n"
        f"STAT:{TS}:DATASM:Generate:Pass:\n"
        "STAT:20240101_000001_000000:DATASM:VALIDATION:Blocked:\n"
    )
    compile_wf(small_demo)
    r = padocc("status", str(small_demo), "-l", "--no-index")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    rows = {ln.split()[0]: ln.split()[1:4] for ln in r.stdout.splitlines()[1:]}
    assert rows["DEMO.atmos.hist.r1.tas"] == ["VALIDATION", "CheckTime", "Pass"]
    assert rows["DEMO.atmos.hist.r2.tas"] == ["DATASM", "Generate", "Pass"]

    _run(small_demo)
    # Each went on from where its datasm line left it, to the end of the route (the
    # data its skipped steps would have made are missing, so it may end in Fail):
    # r1 straight to CheckMeta, r2 to the VALIDATION sub-workflow, with no Generate.
    for ds in ("r1", "r2", "r3"):
        text = (status / f"DEMO.atmos.hist.{ds}.tas.status").read_text()
        assert text.splitlines()[-1].split(":")[2:5] == ["DEMO", "DEMO", "DEMO"], text
        assert "Quarantined" not in text
    assert "DEMO:DEMO:DEMO:Pass" in (status / "DEMO.atmos.hist.r3.tas.status").read_text()
    r1 = (status / "DEMO.atmos.hist.r1.tas.status").read_text().splitlines()[2:]
    assert ":VALIDATION:CheckMeta:Engaged:" in r1[0]
    assert not any(":Generate:" in ln or ":CheckTime:" in ln for ln in r1)
    r2 = (status / "DEMO.atmos.hist.r2.tas.status").read_text().splitlines()[3:]
    assert ":VALIDATION:CheckTime:Engaged:" in r2[0]
    assert not any(":Generate:" in ln for ln in r2)


def test_a_run_after_a_torn_line_does_not_quarantine(small_demo: Path):
    status = small_demo / "status"
    status.mkdir()
    f = status / "DEMO.atmos.hist.r1.tas.status"
    # Generate engaged by a wrapper long gone, killed while writing its outcome.
    f.write_text(
        "DATASETID=DEMO.atmos.hist.r1.tas\n"
        f"STAT:{TS}:DEMO:DEMO:Generate:Engaged:host=gone,pid=1,attempt=1\n"
        f"STAT:20240101_000001_000000:DEMO:DEMO:Generate:Pa"
    )
    _run(small_demo)
    text = f.read_text()
    assert "Quarantined" not in text
    assert f"\nSTAT:20240101_000001_000000:DEMO:DEMO:Generate:Pa{TORN_MARK}\n" in text
    assert text.splitlines()[-1].split(":")[2:6] == ["DEMO", "DEMO", "DEMO", "Pass"]
    r = padocc("status", str(small_demo), "-l", "--no-index")
    assert f"{f}:3: torn line (cut by a crash, closed later) ignored" in r.stderr
    # datasm reading the file takes our end line, not the fragment.
    assert datasm_latest(text).endswith(datasm_listener_state(text))
    assert datasm_step_state(datasm_latest(text)) == "DEMO:Pass"
    # An operator blocks and unblocks it (compiler/commands/manual.py): COMM lines,
    # which datasm's readers pass over; ours still read them.
    ds = "DEMO.atmos.hist.r1.tas"
    for cmd in (("block", "--reason", "STAT: disk full"), ("unblock",)):
        r = padocc(cmd[0], str(small_demo), ds, *cmd[1:])
        assert r.returncode == 0, r.stderr
    after = f.read_text()
    assert [ln.split(":")[0] + ":" + ln.split(":")[5] for ln in after.splitlines()[-2:]] == [
        "COMM:Blocked",
        "COMM:Unblocked",
    ]
    assert (datasm_latest(after), datasm_listener_state(after)) == (
        datasm_latest(text),
        datasm_listener_state(text),
    )
    assert [s.state for s in read_history(f).stats[-2:]] == ["Blocked", "Unblocked"]
    assert read_history(f).stats[-2].params["reason"] == "STAT: disk full"


def test_lines_are_placed_as_datasm_next_state_places_them():
    """datasm/workflows/__init__.py `next_state`: the top graph first, then down through
    the levels the line names (upper-cased both sides, DATASM stepped over)."""
    from compiler.core.routing import locate

    table = {
        "WAREHOUSE/EXTRACTION:Pass": {},
        "PUBLICATION/GenerateMapfile:Pass": {},
        "ATMValidation/CheckTime:Ready": {},
        "VALIDATION/VALIDATION:Ready": {},
    }

    def at(line: str) -> str:
        return locate(table, "WAREHOUSE", position_of([parse_stat(line)]))

    assert at(f"STAT:{TS}:DATASM:EXTRACTION:Pass:") == "WAREHOUSE/EXTRACTION:Pass"
    assert at(f"STAT:{TS}:PUBLICATION:GenerateMapfile:Pass:") == "PUBLICATION/GenerateMapfile:Pass"
    assert (
        at(f"STAT:{TS}:DATASM:VALIDATION:ATMVALIDATION:CheckTime:Ready:")
        == "ATMValidation/CheckTime:Ready"
    )
    assert at(f"STAT:{TS}:DATASM:VALIDATION:Ready:") == "VALIDATION/VALIDATION:Ready"
    # Step:State itself is compared exactly, as datasm's `test_state in transitions`.
    assert at(f"STAT:{TS}:DATASM:Extraction:Pass:") == "DATASM/Extraction:Pass"


def test_datasm_end_line_ends_the_workflow():
    """datasm/datasm.py `start_datasets`: a dataset at f"{workflow.name.upper()}:Pass:"
    (DatasetStatus.SUCCESS, `DATASM:Pass:`) has succeeded; at `...:Fail:`, failed."""
    from compiler.core.routing import decide

    graph = {"root": "WAREHOUSE", "entry": "WAREHOUSE/WAREHOUSE:Ready", "table": {}}
    for state in ("Pass", "Fail"):
        pos = position_of([parse_stat(f"STAT:{TS}:DATASM:{state}:")])
        assert decide(pos, "", graph, 3) == {"kind": "done", "state": state}


def test_positions_between_steps_route_as_datasm_routes_them(tmp_path: Path):
    """datasm writes a sub-workflow's entry and end as lines of their own and routes a
    dataset on from them: the status setter's `DATASM:PUBLICATION:Ready:`
    (datasm/workflows/__init__.py `next_state` enters the sub-workflow's graph) and a
    sub-workflow's end `DATASM:PUBLICATION:Pass:`, looked up in the parent. A dataset
    standing at either goes on from there; it is never quarantined as 'no route'."""
    wf = fresh_copy("datasm", tmp_path / "datasm")
    top = wf / "graph" / "transitions.yaml"
    lines = top.read_text().splitlines(keepends=True)
    lines[28] = lines[28].replace("Validation:Ready", "VALIDATION:Ready")  # its one defect
    top.write_text("".join(lines))
    # Every pending dataset in the one cycle compiled here (not the default bound,
    # which leaves the most recently touched status files for later cycles).
    (wf / "workflow.yaml").write_text(
        (wf / "workflow.yaml").read_text() + "max_datasets_per_cycle: 100000\n"
    )
    compile_wf(wf)
    ds = "CMIP6.C4MIP.E3SM-Project.E3SM-1-1.hist-bgc.r1i1p1f1.3hr.pr.gr"
    status = wf / "status" / f"{ds}.status"
    status.parent.mkdir()
    status.write_text(f"DATASETID={ds}\nSTAT:{TS}:DATASM:PUBLICATION:Ready:\n")
    r = padocc("why", str(wf), ds)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1] == (
        "  next: MoveToPublication (of PUBLICATION, by routing key 'atmos-cmip-3hr'); "
        "it starts in the next cycle"
    )
    compile_wf(wf)
    (row,) = [ln for ln in (wf / ".padocc/current/pending.tsv").read_text().splitlines()
              if ln.startswith(ds + "\t")]  # fmt: skip
    assert row.split("\t")[3] == "MoveToPublication"
    with status.open("a") as f:
        f.write("STAT:20240101_000001_000000:DATASM:PUBLICATION:Pass:\n")
    r = padocc("why", str(wf), ds)
    assert (
        r.stdout.splitlines()[1]
        == "  next: the end of WAREHOUSE in Pass, recorded by the next cycle"
    )


def test_datasm_ready_line_is_shown_as_datasm_wrote_it(small_demo: Path):
    """datasm/dataset.py DatasetStatus.READY, `DATASM:Ready:`, which datasm/datasm.py
    `start_datasets` writes for every dataset it starts. Its next_state looks
    `DATASM:Ready` up in the top graph, then steps over DATASM and finds no level named
    READY: no route, there as here (datasm leaves the dataset where it is; padocc
    quarantines it, so it shows). What padocc says names the line as it is written."""
    ds = "DEMO.atmos.hist.r1.tas"
    status = small_demo / "status"
    status.mkdir()
    (status / f"{ds}.status").write_text(f"DATASETID={ds}\nSTAT:{TS}:DATASM:Ready:\n")
    compile_wf(small_demo)
    r = padocc("why", str(small_demo), ds)
    assert r.stdout.splitlines()[:2] == [
        f"{ds}: DATASM:Ready since 2024-01-01T00:00:00Z",
        "  no route from 'DATASM:Ready'; the next cycle quarantines it",
    ]
    _run(small_demo)
    r = padocc("why", str(small_demo), ds)
    assert r.stdout.splitlines()[1].endswith(": no route from 'DATASM:Ready'"), r.stdout
