"""datasm's real spec and graphs: our declarative walks list exactly datasm's ids,
and the checker finds the real defects in datasm's transition graphs."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REFERENCE, WORKFLOWS, padocc

DATASM = WORKFLOWS / "datasm"


@pytest.fixture(scope="module")
def ids() -> list[str]:
    r = padocc("datasets", str(DATASM))
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_counts_match_datasm(ids):
    assert len(ids) == len(set(ids)) == 32146
    assert sum(i.startswith("CMIP6.") for i in ids) == 26658
    assert sum(i.startswith("E3SM.") for i in ids) == 5488


def _datasm_ids(spec_file: Path = DATASM / "dataset_spec.yaml") -> set[str]:
    """datasm's own enumeration, written out as plain loops over the spec: our
    declarative walks must give exactly these. E3SM-Project/datasm at
    18eb7f46803a9553c4d95916a2b2e0e3887b349e, datasm/datasm.py, collect_cmip_datasets and
    collect_e3sm_datasets (an experiment's `except` filters tables and variables; an
    E3SM {grid, data_types} entry's `except` filters its data types)."""
    import yaml

    spec = yaml.safe_load(spec_file.read_text())
    out = set()
    for act, institutions in spec["project"]["CMIP6"].items():
        if act == "test":
            continue
        for inst, sources in institutions.items():
            for src, experiments in sources.items():
                for exp, e in experiments.items():
                    skip = set(e.get("except") or ())
                    for ens in e["ens"]:
                        for table, variables in spec["tables"].items():
                            out.update(
                                f"CMIP6.{act}.{inst}.{src}.{exp}.{ens}.{table}.{v}.gr"
                                for v in variables
                                if v != "all" and v not in skip and table not in skip
                            )
    for ver, experiments in spec["project"]["E3SM"].items():
        if ver == "test":
            continue
        for exp, e in experiments.items():
            for res, realms in e["resolution"].items():
                for realm, entries in realms.items():
                    for entry in entries:
                        out.update(
                            f"E3SM.{ver}.{exp}.{res}.{realm}.{entry['grid']}.{dt}.{ens}"
                            for dt in entry["data_types"]
                            if not (entry.get("except") and dt in entry["except"])
                            for ens in e["ens"]
                        )
    return out


def test_every_id_matches_datasm(ids):
    assert set(ids) == _datasm_ids()


def test_except_scope_is_datasms(tmp_path):
    # No shipped spec tells the scopes apart: give the real spec `except` names that
    # datasm does not drop (an ensemble; a grid named at an E3SM experiment) and one it
    # does (a data type in one {grid, data_types} entry).
    wf = tmp_path / "datasm"
    shutil.copytree(DATASM, wf)
    spec = wf / "dataset_spec.yaml"
    lines = spec.read_text().split("\n")
    cmip = next(
        i for i, ln in enumerate(lines) if ln == "                        except:" and i > 260
    )
    lines.insert(cmip + 1, "                            - r1i1p1f1")
    hr = lines.index("            1950-1970-Transient-HR:")
    exp = lines.index("                except:", hr)
    lines.insert(exp + 1, "                    - native")
    item = lines.index("                                grid: native", hr)
    lines[item + 1 : item + 1] = [
        "                                except:",
        "                                    - model-output.mon",
    ]
    spec.write_text("\n".join(lines))
    want = _datasm_ids(spec)
    assert len(want) < 32146  # the entry's except dropped something, and only that
    assert len(_datasm_ids(DATASM / "dataset_spec.yaml")) - len(want) == 1
    r = padocc("datasets", str(wf))
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) == want


def test_except_names_a_later_facet(tmp_path):
    wf = tmp_path / "datasm"
    shutil.copytree(DATASM, wf)
    w = wf / "workflow.yaml"
    w.write_text(w.read_text().replace("except: [table, variable]", "except: [tabel, variable]"))
    r = padocc("datasets", "datasm", cwd=tmp_path)
    assert r.returncode == 2
    line = _line_of(w, "except: [tabel")
    col = w.read_text().split("\n")[line - 1].index("tabel") + 1
    assert r.stderr.splitlines() == [
        f"datasm/workflow.yaml:{line}:{col}: error: walk 'cmip6': 'except' names facet 'tabel', "
        "which no later level has"
    ]


def test_sample_ids(ids):
    s = set(ids)
    for i in [
        "CMIP6.C4MIP.E3SM-Project.E3SM-1-1.hist-bgc.r1i1p1f1.Amon.tas.gr",
        "CMIP6.C4MIP.E3SM-Project.E3SM-1-1.hist-bgc.r1i1p1f1.3hr.pr.gr",
        "CMIP6.RFMIP.E3SM-Project.E3SM-2-0.piClim-histaer.r3i1p1f1.Amon.tas.gr",
        "E3SM.1_0.piControl.1deg_atm_60-30km_ocean.atmos.native.model-output.mon.ens1",
        "E3SM.1_0.piControl.1deg_atm_60-30km_ocean.land.180x360.time-series.mon.ens1",
        "E3SM.3_0.ssp370.LR.sea-ice.native.restart.fixed.ens25",
    ]:
        assert i in s, i
    # skipped: 'all', the test activity and version, and each experiment's except list
    assert not any(".all.gr" in i or i.startswith(("CMIP6.test.", "E3SM.test.")) for i in ids)
    assert "CMIP6.C4MIP.E3SM-Project.E3SM-1-1.hist-bgc.r1i1p1f1.SImon.siu.gr" not in s
    assert not any(
        i.startswith("CMIP6.RFMIP.E3SM-Project.E3SM-2-0.piClim-control.r1i1p1f1.Omon.") for i in ids
    )
    assert "CMIP6.RFMIP.E3SM-Project.E3SM-2-0.piClim-control.r1i1p1f1.Lmon.gpp.gr" not in s


def test_routing_keys_follow_datasm():
    r = padocc("datasets", str(DATASM), "--keys")
    keys = dict(line.split("\t") for line in r.stdout.splitlines())
    assert (
        keys["E3SM.1_0.piControl.1deg_atm_60-30km_ocean.atmos.native.model-output.mon.ens1"]
        == "atmos-native-mon"
    )
    assert (
        keys["E3SM.1_0.piControl.1deg_atm_60-30km_ocean.land.180x360.time-series.mon.ens1"]
        == "land-timeseries-mon"
    )
    assert keys["E3SM.3_0.ssp370.LR.sea-ice.native.restart.fixed.ens25"] == "seaice-native-fixed"
    assert (
        keys["CMIP6.C4MIP.E3SM-Project.E3SM-1-1.hist-bgc.r1i1p1f1.Amon.tas.gr"] == "atmos-cmip-mon"
    )


def test_inputs_are_datasm_unchanged():
    if not REFERENCE.is_dir():
        pytest.skip("shared/reference is not beside this checkout")
    ref = REFERENCE / "datasm"
    assert filecmp.cmp(ref / "dataset_spec.yaml", DATASM / "dataset_spec.yaml", shallow=False)
    for f in (ref / "workflows").rglob("transitions.yaml"):
        ours = DATASM / "graph" / f.relative_to(ref / "workflows")
        assert filecmp.cmp(f, ours, shallow=False), f


# The graphs are E3SM-Project/datasm at 18eb7f46803a9553c4d95916a2b2e0e3887b349e,
# datasm/workflows/**/transitions.yaml (unchanged copies in workflows/datasm/graph).
# datasm reads them in datasm/workflows/__init__.py (Workflow.next_state): it finds a
# sub-workflow by `state_attrs[idx].upper()` among children keyed `NAME.upper()`, a key
# by `test_state in self.transitions` (exactly), and a sub-workflow ends by writing
# `<NAME.upper()>:Pass`. Under those rules the shipped graphs have one real defect.
G = "workflows/datasm/graph"
EXPECTED_ERRORS = [
    f"{G}/transitions.yaml:29:11: error: 'Validation:Ready' enters sub-workflow 'VALIDATION' "
    f"(names match in any case), but {G}/validation/transitions.yaml has no 'Validation:Ready' "
    "(keys match exactly); it has 'VALIDATION:Ready'",
]
EXPECTED_WARNINGS = [
    f"{G}/cleanup/transitions.yaml:1:1: warning: unreachable: no dataset of the spec enters "
    f"{G}/cleanup/transitions.yaml",
    f"{G}/cleanup/transitions.yaml:3:7: warning: unknown step 'EvictDataset' in 'EvictDataset:Ready'; "
    "it differs only in case from 'EvictDataSet:Ready'",
    f"{G}/extraction/transitions.yaml:8:1: warning: unreachable: no dataset of the spec reaches 'ZstashExtract:Fail'",
    f"{G}/postprocess/transitions.yaml:24:3: warning: routing key 'ice-cmip-mon' of 'POSTPROCESS:Ready' is "
    "produced by no dataset of the spec (did you mean 'seaice-cmip-mon'?)",
    *(
        f"{G}/postprocess/transitions.yaml:{line}:1: warning: unreachable: no dataset of the spec "
        f"reaches '{key}'"
        for line, key in [
            (39, "GenerateAtmMonTimeseries:Ready"),
            (42, "GenerateAtmMonTimeseries:Pass"),
            (45, "GenerateAtmMonTimeseries:Fail"),
            (59, "GenerateLndTimeseries:Ready"),
            (62, "GenerateLndTimeseries:Pass"),
            (65, "GenerateLndTimeseries:Fail"),
        ]
    ),
    *(
        f"{G}/transitions.yaml:{line}:5: warning: routing key '{key}' of 'WAREHOUSE:Ready' is "
        f"produced by no dataset of the spec (did you mean '{near}'?)"
        for line, key, near in [
            (2, "atmos-ts-mon", "atmos-native-mon"),
            (14, "land-ts-mon", "land-native-mon"),
            (18, "ocn-cmip-mon", "ocean-cmip-mon"),
            (20, "ocn-cmip-fixed", "ocean-cmip-fixed"),
        ]
    ),
    f"{G}/transitions.yaml:57:1: warning: unreachable: no dataset of the spec reaches 'CLEANUP:Pass'",
    f"{G}/transitions.yaml:60:1: warning: unreachable: no dataset of the spec reaches 'CLEANUP:Fail'",
    f"{G}/validation/mpas-validation/transitions.yaml:1:1: warning: unreachable: no dataset of the spec "
    f"enters {G}/validation/mpas-validation/transitions.yaml",
    *(
        f"{G}/validation/mpas-validation/transitions.yaml:{line}:11: warning: dead end: sub-workflow "
        "'MPASVALIDATION' ends in 'Pass', which datasm reads as 'MPASVALIDATION:Pass', but "
        f"{G}/validation/transitions.yaml has no 'MPASVALIDATION:Pass'"
        for line in (3, 5)
    ),
]
UNUSED_STEPS = ["GenerateAtmMonTimeseries", "GenerateLndTimeseries", "EvictDataSet"]


def _check(wf: Path, cwd: Path) -> tuple[int, list[str], list[str]]:
    r = padocc("compile", "--check", str(wf.relative_to(cwd)), cwd=cwd)
    lines = r.stderr.splitlines()
    return (
        r.returncode,
        [x for x in lines if ": error: " in x],
        [x for x in lines if ": warning: " in x],
    )


def test_checker_finds_exactly_datasm_defects():
    rc, errors, warnings = _check(DATASM, DATASM.parent.parent)
    assert rc == 2
    assert errors == EXPECTED_ERRORS
    assert warnings == EXPECTED_WARNINGS + [
        f"workflows/datasm/workflow.yaml:{_line_of(DATASM / 'workflow.yaml', f'  {step}:')}:3: "
        f"warning: step '{step}' is defined but no dataset reaches '{step}:Engaged'"
        for step in UNUSED_STEPS
    ]


@pytest.fixture
def wf(tmp_path: Path) -> Path:
    """A copy of the datasm workflow, to change one line of its real files."""
    shutil.copytree(DATASM, tmp_path / "datasm")
    return tmp_path / "datasm"


def _edit(path: Path, line: int, old: str, new: str) -> None:
    lines = path.read_text().split("\n")
    assert old in lines[line - 1], lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new)
    path.write_text("\n".join(lines))


def _fix_line_29(wf: Path) -> None:
    _edit(wf / "graph/transitions.yaml", 29, "Validation:Ready", "VALIDATION:Ready")


def _check_edited(wf: Path, file: str, line: int, old: str, new: str):
    """Check datasm's graph, its real defect fixed, with one more line changed."""
    _fix_line_29(wf)
    _edit(wf / file, line, old, new)
    return _check(wf, wf.parent)


V = "datasm/graph/validation/transitions.yaml"
ATM = "datasm/graph/validation/atm-validation/transitions.yaml"


def test_sub_workflow_names_match_in_any_case(wf):
    # With its one real defect fixed, datasm's graph compiles: `ATMValidation:Ready`
    # enters atm-validation/, whose end `ATMVALIDATION:Pass` the parent holds.
    _fix_line_29(wf)
    rc, errors, warnings = _check(wf, wf.parent)
    assert (rc, errors) == (0, [])
    assert not [w for w in warnings if "VALIDATION" in w.upper() and "mpas" not in w]
    assert padocc("compile", str(wf)).returncode == 0


def test_sub_workflow_end_is_read_in_capitals_exactly(wf):
    # datasm writes `<NAME.upper()>:Pass`: a parent key `ATMValidation:Pass` never matches.
    rc, errors, _ = _check_edited(
        wf, "graph/validation/transitions.yaml", 51, "ATMVALIDATION:Pass:", "ATMValidation:Pass:"
    )
    assert rc == 2
    assert errors == [
        f"{ATM}:{line}:9: error: dead end: sub-workflow 'ATMValidation' ends in 'Pass', which "
        f"datasm reads as 'ATMVALIDATION:Pass', but {V} has no 'ATMVALIDATION:Pass'; it has "
        "'ATMValidation:Pass', but keys are matched exactly"
        for line in (30, 40)
    ]


def test_unproduced_routes_get_name_checks(wf):
    # `atmos-ts-mon` is produced by no dataset: a misspelt sub-workflow under it is a warning.
    rc, errors, warnings = _check_edited(
        wf, "graph/transitions.yaml", 3, "POSTPROCESS:Ready", "PostProcessing:Ready"
    )
    assert (rc, errors) == (0, [])
    assert (
        "datasm/graph/transitions.yaml:3:11: warning: unknown step 'PostProcessing' in "
        "'PostProcessing:Ready': not a step, sub-workflow or entry of this graph "
        "(did you mean 'POSTPROCESS'?)"
    ) in warnings


def test_routing_key_differing_in_case_is_an_error(wf):
    # datasm: `self.transitions[test_state].get(target_data_type)`, else 'default'.
    rc, errors, _ = _check_edited(
        wf, "graph/validation/transitions.yaml", 24, "atmos-native-mon:", "Atmos-native-mon:"
    )
    assert rc == 2
    assert errors == [
        f"{V}:24:5: error: routing key 'Atmos-native-mon' of 'CheckFileIntegrity:Pass' differs "
        "only in case from 'atmos-native-mon', which datasets of the spec produce; routing keys "
        "are matched exactly, so those datasets take 'default'"
    ]


def _line_of(path: Path, text: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if text in ln)


def test_steps_and_states_differing_in_case(wf):
    w = wf / "workflow.yaml"
    _fix_line_29(wf)
    _edit(w, _line_of(w, "  CheckTimeUnit:"), '"true"}', '"true", states: [warning]}')
    _edit(w, _line_of(w, "  CheckTime:"), '"true"}', '"true", states: [Warning]}')
    w.write_text(w.read_text() + '  checkTime: {command: "true"}\n')
    rc, errors, _ = _check(wf, wf.parent)
    assert rc == 2
    ctu, ct, low = (_line_of(w, t) for t in ("  CheckTimeUnit:", "  CheckTime:", "  checkTime:"))
    assert (
        f"datasm/workflow.yaml:{low}:3: error: step 'checkTime' differs only in case from step "
        f"'CheckTime' (line {ct})"
    ) in errors
    assert (
        f"datasm/workflow.yaml:{ct}:3: error: state 'Warning' of step 'CheckTime' differs only "
        "in case from state 'warning' of step 'CheckTimeUnit'"
    ) in errors
    assert ctu < ct


def test_every_unknown_state_key_at_once(wf):
    _fix_line_29(wf)
    atm = wf / "graph/validation/atm-validation/transitions.yaml"
    _edit(atm, 11, "CheckTimeUnit:Fail:", "CheckTimeUnit:Fial:")
    _edit(atm, 21, "FixTimeUnits:Fail:", "FixTimeUnits:Failed:")
    rc, errors, _ = _check(wf, wf.parent)
    assert rc == 2
    assert errors == [
        f"{ATM}:11:1: error: unknown state 'Fial' in 'CheckTimeUnit:Fial' (did you mean 'Fail'?)",
        f"{ATM}:21:1: error: unknown state 'Failed' in 'FixTimeUnits:Failed' (did you mean 'Fail'?)",
    ]


def test_sub_workflow_engaged_as_a_step(wf):
    rc, errors, _ = _check_edited(
        wf, "graph/validation/transitions.yaml", 25, "ATMValidation:Ready", "ATMValidation:Engaged"
    )
    assert rc == 2
    assert errors == [
        f"{V}:25:11: error: 'ATMValidation:Engaged' runs a step, but 'ATMValidation' is a "
        f"sub-workflow ({ATM}); enter it with 'ATMValidation:Ready'"
    ]


def test_mistake_inside_sub_workflow_at_its_own_line(wf):
    # CheckTimeUnit engaged straight from the sub-workflow's entry, and its Fail outcome
    # left without a transition: the dead end is at the sub-workflow's line 3.
    _fix_line_29(wf)
    atm = wf / "graph/validation/atm-validation/transitions.yaml"
    _edit(atm, 3, "CheckTimeUnit:Ready", "CheckTimeUnit:Engaged")
    for line in (5, 6, 7, 11, 12, 13):
        lines = atm.read_text().split("\n")
        lines[line - 1] = "#" + lines[line - 1]
        atm.write_text("\n".join(lines))
    rc, errors, _ = _check(wf, wf.parent)
    assert rc == 2
    assert errors == [
        f"{ATM}:3:7: error: dead end: 'CheckTimeUnit:Fail' has no transition in {ATM}"
    ]


# Duplicate keys, in the shapes of datasm's own history. PyYAML's SafeLoader (datasm's)
# keeps the last value silently.
RIVER = """\
                        river:
                            -
                                grid: 360x720
                                data_types:
                                    - model-output.mon
"""


def test_duplicate_key_with_another_value_is_refused(wf):
    # E3SM-Project/datasm@306a9cf91d506e794423681556eaa2ffc4f3e3db
    # datasm/resources/dataset_spec.yaml lines 971 and 986: `river:` twice under one
    # experiment's realms, the native entry lost to the 360x720 one.
    spec = wf / "dataset_spec.yaml"
    first = _line_of(spec, "                        river:")
    end = _line_of(spec, "                        sea-ice:")
    assert end > first
    lines = spec.read_text().split("\n")
    spec.write_text("\n".join(lines[: end - 1]) + "\n" + RIVER + "\n".join(lines[end - 1 :]))
    r = padocc("compile", "--check", "datasm", cwd=wf.parent)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"datasm/dataset_spec.yaml:{end}:25: error: duplicate key 'river' (first at line {first}) "
        "with a different value: a YAML reader keeps only the last and silently drops the first; "
        "merge them or remove one"
    ]


def test_duplicate_key_with_the_same_value_is_a_warning(wf):
    # E3SM-Project/datasm@a3638f666cc2fbb4a66ed2c9d45f0373e87ca90a
    # datasm/resources/dataset_spec.yaml lines 1095 and 1363: experiment
    # `1950-1970-Transient-HR` written twice, the same both times.
    _fix_line_29(wf)
    spec = wf / "dataset_spec.yaml"
    first = _line_of(spec, "                        river:")
    end = _line_of(spec, "                        sea-ice:")
    lines = spec.read_text().split("\n")
    block = lines[first - 1 : end - 1]  # `river:` and its entry, repeated as they are
    spec.write_text("\n".join(lines[: end - 1] + block + lines[end - 1 :]))
    r = padocc("compile", "--check", "datasm", cwd=wf.parent)
    assert r.returncode == 0, r.stderr
    assert (
        f"datasm/dataset_spec.yaml:{end}:25: warning: duplicate key 'river' (first at line "
        f"{first}) with the same value; the repeat is ignored"
    ) in r.stderr.splitlines()
    r = padocc("datasets", "datasm", cwd=wf.parent)
    assert r.returncode == 0 and len(r.stdout.split()) == 32146


# E3SM-Project/datasm@bdec472c791b99a344b1c4c3351456970390f634
# warehouse/warehouse/workflows/postprocess/transitions.yaml lines 1-5: a routing key
# twice, the climatology route lost.
POSTPROCESS_HEAD = """\
POSTPROCESS:Ready:
  atmos-native-mon:
    - GenerateAtmClimo:Ready
  atmos-native-mon:
    - GenerateAtmTimeseries:Ready
"""


def test_duplicate_routing_key_is_refused(wf):
    pp = wf / "graph/postprocess/transitions.yaml"
    pp.write_text(POSTPROCESS_HEAD + pp.read_text().split("\n", 1)[1])
    r = padocc("compile", "--check", "datasm", cwd=wf.parent)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "datasm/graph/postprocess/transitions.yaml:4:3: error: duplicate key 'atmos-native-mon' "
        "(first at line 2) with a different value: a YAML reader keeps only the last and "
        "silently drops the first; merge them or remove one"
    ]


def test_duplicate_routing_key_same_target_is_a_warning(wf):
    _fix_line_29(wf)
    pp = wf / "graph/postprocess/transitions.yaml"
    head = POSTPROCESS_HEAD.replace("GenerateAtmTimeseries", "GenerateAtmClimo")
    head = head.replace("GenerateAtmClimo", "GenerateAtmMonClimo")
    pp.write_text(head + pp.read_text().split("\n", 1)[1])
    r = padocc("compile", "--check", "datasm", cwd=wf.parent)
    assert r.returncode == 0, r.stderr
    assert (
        "datasm/graph/postprocess/transitions.yaml:4:3: warning: duplicate key 'atmos-native-mon' "
        "(first at line 2) with the same value; the repeat is ignored"
    ) in r.stderr.splitlines()


def test_key_of_an_outer_graph_is_taken_first(wf):
    # datasm's next_state tests `test_state in self.transitions` at the top graph, then
    # at each sub-workflow on the way down: an outer key shadows an inner one.
    _fix_line_29(wf)
    v = wf / "graph/validation/transitions.yaml"
    v.write_text(v.read_text() + "\nCheckTime:Pass:\n    default:\n        - Fail\n")
    line = _line_of(v, "CheckTime:Pass:")
    r = padocc("compile", "datasm", cwd=wf.parent)
    assert r.returncode == 0, r.stderr
    for sub in ("atm-validation", "lnd-validation"):
        assert (
            f"datasm/graph/validation/{sub}/transitions.yaml:28:1: warning: 'CheckTime:Pass' is "
            f"never used: datasm looks keys up from the top graph down and takes {V}'s (line {line})"
        ) in r.stderr.splitlines()
    table = json.loads((wf / ".padocc/current/manifest.json").read_text())["graph"]["table"]
    assert table["ATMValidation/CheckTime:Pass"] == {"": {"kind": "final", "state": "Fail"}}


def test_readme_shows_the_whole_check_of_datasm_graphs():
    """The README's example is the true output of `cd workflows/datasm && padocc-compile
    --check`, every line of it, in its order: no excerpt that could drift from the code."""
    readme = (DATASM.parent.parent / "README.md").read_text()
    intro = readme.index("On datasm's own graphs (`cd workflows/datasm && padocc-compile --check`)")
    start = readme.index("```\n", intro) + 4
    shown = readme[start : readme.index("```\n", start)]
    r = subprocess.run(
        [str(Path(sys.executable).parent / "padocc-compile"), "--check"],
        cwd=DATASM, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert (r.returncode, r.stdout) == (2, "")
    assert shown == r.stderr


# E3SM-Project/datasm 18eb7f46803a9553c4d95916a2b2e0e3887b349e: the job classes, by
# their module's NAME (datasm/workflows/__init__.py `load_jobs` keys them so, and
# `get_job` looks `self.jobs[job_name]` up exactly): datasm/workflows/jobs/*.py.
DATASM_JOBS = {
    "ExtractionValidate": "ValidateExtraction",  # jobs/ValidateExtraction.py
    "EvictDataSet": "EvictDataset",  # jobs/EvictDataset.py
}


def test_steps_named_after_datasm_jobs_find_the_misnamed_job(wf):
    # workflows/datasm's stand-in steps take the graph's names; named after datasm's
    # own job classes, the checker finds the step datasm's get_job cannot create.
    _fix_line_29(wf)
    w = wf / "workflow.yaml"
    for graph_name, job in DATASM_JOBS.items():
        _edit(w, _line_of(w, f"  {graph_name}:"), f"{graph_name}:", f"{job}:")
    rc, errors, warnings = _check(wf, wf.parent)
    assert rc == 2
    assert errors == [
        "datasm/graph/extraction/transitions.yaml:14:12: error: unknown step "
        "'ExtractionValidate': no step of that name is defined"
    ]
    assert (
        "datasm/graph/cleanup/transitions.yaml:7:7: warning: unknown step 'EvictDataSet': no "
        "step of that name is defined; it differs only in case from 'EvictDataset:Engaged'"
    ) in warnings
