"""datasm's real spec and graphs: our declarative walks list exactly datasm's ids,
and the checker finds the real defects in datasm's transition graphs."""

from __future__ import annotations

import filecmp

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


def _datasm_ids() -> set[str]:
    """datasm's own enumeration (collect_cmip_datasets / collect_e3sm_datasets), written
    out as plain loops over the spec: our declarative walks must give exactly these."""
    import yaml

    spec = yaml.safe_load((DATASM / "dataset_spec.yaml").read_text())
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
                            for ens in e["ens"]
                        )
    return out


def test_every_id_matches_datasm(ids):
    assert set(ids) == _datasm_ids()


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


G = "workflows/datasm/graph"
EXPECTED_ERRORS = [
    f"{G}/transitions.yaml:29:11: error: unknown step 'Validation' in 'Validation:Ready'; "
    "it differs only in case from 'VALIDATION:Ready'",
    f"{G}/validation/atm-validation/transitions.yaml:23:7: error: dead end: sub-workflow 'ATMValidation' "
    f"ends in 'Fail', but {G}/validation/transitions.yaml has no 'ATMValidation:Fail'; "
    "it differs only in case from 'ATMVALIDATION:Fail'",
    f"{G}/validation/atm-validation/transitions.yaml:30:9: error: dead end: sub-workflow 'ATMValidation' "
    f"ends in 'Pass', but {G}/validation/transitions.yaml has no 'ATMValidation:Pass'; "
    "it differs only in case from 'ATMVALIDATION:Pass'",
]
EXPECTED_WARNINGS = [
    f"{G}/cleanup/transitions.yaml:3:7: warning: unknown step 'EvictDataset' in 'EvictDataset:Ready'; "
    "it differs only in case from 'EvictDataSet:Ready'",
    f"{G}/transitions.yaml:2:5: warning: routing key 'atmos-ts-mon' of 'WAREHOUSE:Ready' is produced by no "
    "dataset of the spec (did you mean 'atmos-native-mon'?)",
    f"{G}/transitions.yaml:18:5: warning: routing key 'ocn-cmip-mon' of 'WAREHOUSE:Ready' is produced by no "
    "dataset of the spec (did you mean 'ocean-cmip-mon'?)",
    f"{G}/postprocess/transitions.yaml:24:3: warning: routing key 'ice-cmip-mon' of 'POSTPROCESS:Ready' is "
    "produced by no dataset of the spec (did you mean 'seaice-cmip-mon'?)",
    f"{G}/extraction/transitions.yaml:8:1: warning: unreachable: no dataset of the spec reaches 'ZstashExtract:Fail'",
    f"{G}/validation/mpas-validation/transitions.yaml:1:1: warning: unreachable: no dataset of the spec enters "
    f"{G}/validation/mpas-validation/transitions.yaml",
    f"{G}/validation/mpas-validation/transitions.yaml:3:11: warning: dead end: sub-workflow 'MPASVALIDATION' "
    f"ends in 'Pass', but {G}/validation/transitions.yaml has no 'MPASVALIDATION:Pass'",
    f"{G}/postprocess/transitions.yaml:39:1: warning: unreachable: no dataset of the spec reaches "
    "'GenerateAtmMonTimeseries:Ready'",
]


def test_checker_finds_datasm_defects():
    r = padocc("compile", "--check", "workflows/datasm", cwd=DATASM.parent.parent)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    errors = [ln for ln in lines if ": error: " in ln]
    for e in EXPECTED_ERRORS:
        assert e in errors, "\n".join(errors)
    assert len(errors) == 5  # the three above, and the second Pass and Fail exits of atm-validation


def test_checker_warnings_on_datasm():
    r = padocc("compile", "--check", "workflows/datasm", cwd=DATASM.parent.parent)
    warnings = [ln for ln in r.stderr.splitlines() if ": warning: " in ln]
    for w in EXPECTED_WARNINGS:
        assert w in warnings, "\n".join(warnings)
