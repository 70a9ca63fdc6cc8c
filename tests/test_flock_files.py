"""SHEPARD/padocc group files as padocc itself reads them, run through real cycles.

Group CSV columns follow cedadev/padocc at 457c8d5 (457c8d598628c2d1f188f5dfd916bcee0420e70f),
padocc/groups/mixins/initialisation.py,
`_init_group`: proj_code, pattern, updates, removals, then every further field is a
variable to keep (`proj_op.base_cfg['keep_vars'] = list(set(variables))`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import fresh_copy, padocc


@pytest.fixture
def flock(tmp_path: Path) -> Path:
    dst = tmp_path / "flock"
    fresh_copy("flock", dst)
    return dst


def cycle(wf: Path, *args: str):
    return padocc("cycle", "--conf", str(wf / "shepard.yaml"), *args, timeout=600)


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ": error: " in ln]


def test_group_csv_fields_after_the_fourth_are_keep_vars(flock: Path):
    wf = flock / "workflow.yaml"
    # The init step is handed the variables to keep, as padocc's init would use them.
    wf.write_text(wf.read_text().replace("init {dataset} {pattern}", "init {dataset} {keep_vars}"))
    (flock / "groups" / "vars_c.csv").write_text(
        "proj_code,pattern,updates,removals,vars\n"
        "VARS_tas_c,/archive/tas/*.nc,,,tas,tasmax,tas\n"
        "VARS_none_c,/archive/pr/*.nc,,\n"
    )
    r = cycle(flock)
    assert r.returncode == 0, r.stderr
    assert error_lines(r.stdout + r.stderr) == []
    done = flock / "complete" / "vars_c" / "work"
    if not done.exists():  # the group may still be open: its work stays in place
        done = flock / "work"
    init = json.loads((done / "VARS_tas_c" / "init.json").read_text())
    assert init["pattern"] == "tas,tasmax"  # duplicates dropped, first spelling kept
    init = json.loads((done / "VARS_none_c" / "init.json").read_text())
    assert init["pattern"] == ""


def test_two_group_files_of_one_name_are_refused_and_the_rest_runs(flock: Path):
    (flock / "groups" / "obs_b.csv").write_text("proj_code,pattern\nOBS_other_b,/x/*.nc\n")
    r = cycle(flock)
    assert r.returncode == 0, r.stderr
    shown = f"{flock / 'groups'}"
    assert error_lines(r.stdout + r.stderr) == [
        f"{shown}/obs_b.csv: error: group 'obs_b' is also {shown}/obs_b.txt; rename one; "
        "group skipped"
    ]
    # Neither file runs or moves; the other group runs and completes.
    assert (flock / "groups" / "obs_b.csv").exists() and (flock / "groups" / "obs_b.txt").exists()
    status = flock / "status"
    assert not any(status.glob("OBS_*")) if status.exists() else True
    assert (flock / "status" / "CMIP6_tas_a.status").exists() or (
        flock / "complete" / "cmip_a" / "status" / "CMIP6_tas_a.status"
    ).exists()


def test_a_duplicate_id_skips_only_its_group(flock: Path):
    (flock / "groups" / "obs_b.txt").write_text("OBS_sst_b\nOBS_ice_b\n# again\nOBS_sst_b\n")
    r = cycle(flock)
    assert r.returncode == 0, r.stderr
    assert error_lines(r.stdout + r.stderr) == [
        f"{flock / 'groups' / 'obs_b.txt'}:4:1: error: dataset 'OBS_sst_b' is listed twice "
        "in group 'obs_b' (first at line 1); group skipped"
    ]
    status = flock / "status"
    assert not list(status.glob("OBS_*"))
    assert list(status.glob("CMIP6_*")) or list((flock / "complete").rglob("CMIP6_*.status"))


def test_a_byte_order_mark_is_no_part_of_the_first_field(flock: Path):
    # Spreadsheets save "CSV UTF-8" with a byte order mark. padocc reads the file with
    # open() (cedadev/padocc 457c8d5, padocc/core/utils.py `extract_file`) and skips the
    # header by `'proj_code' in datasets[0]` (initialisation.py `_init_group`), so the mark
    # never stops a group there; nor may it here, in a CSV or a plain list.
    bom = "\ufeff"
    (flock / "groups" / "sheet_c.csv").write_text(
        f"{bom}proj_code,pattern,updates,removals\nSHEET_tas_c,/archive/tas/*.nc,,\n"
    )
    (flock / "groups" / "sheet_d.csv").write_text(f"{bom}SHEET_pr_d,/archive/pr/*.nc,,\n")
    (flock / "groups" / "list_e.txt").write_text(f"{bom}LIST_ua_e\n")
    r = cycle(flock, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert error_lines(r.stdout + r.stderr) == []
    out = r.stdout.splitlines()
    for group, ds in (
        ("sheet_c", "SHEET_tas_c"),
        ("sheet_d", "SHEET_pr_d"),
        ("list_e", "LIST_ua_e"),
    ):
        assert f"new group {group}: 1 dataset" in out
        assert any(ln.startswith(f"next: {ds} Init") for ln in out), out


# cedadev/padocc 457c8d5, padocc/groups/shepard.py `__init__`: the config keys SHEPARD
# reads are flock_dir, complete_dir, common_valid, source_venv, `batch_limit` (default
# 100: `conf.get('batch_limit', None) or 100`) and `obliterate_quarantine` (default
# False: quarantined projects are moved to a quarantine group, not deleted).
def test_shepard_config_keys_mean_what_they_mean_in_shepard(flock: Path):
    conf = flock / "shepard.yaml"
    text = conf.read_text().replace("batch_limit: 1000\n", "")
    conf.write_text(text + "obliterate_quarantine: false\n")
    r = cycle(flock, "--dry-run")
    assert (r.returncode, error_lines(r.stdout + r.stderr)) == (0, []), r.stderr
    assert any(ln.startswith("next: ") for ln in r.stdout.splitlines())
    # SHEPARD's `true` deletes quarantined projects; padocc keeps them for requeue, so
    # it refuses the key's meaning rather than ignore it.
    conf.write_text(text + "obliterate_quarantine: true\n")
    r = cycle(flock, "--dry-run")
    line = len(conf.read_text().splitlines())
    assert (r.returncode, r.stdout, r.stderr.splitlines()) == (
        2,
        "",
        [
            f"{conf}:{line}:24: error: obliterate_quarantine: true is not supported: SHEPARD "
            "deletes quarantined projects, padocc keeps a quarantined dataset for padocc "
            "requeue; remove the key or set it to false"
        ],
    )


# cedadev/padocc 457c8d5, padocc's own group files, their rows as they are (only the
# leading /home/users/dwest77/cedadev prefix shortened): padocc/tests/data_creator/Aggs.csv
# (an id that starts with a digit; update and removal files) and
# padocc/tests/data/myfile.csv (ids with '-', a pattern that is a .txt file list, and no
# newline after the last row).
AGGS_CSV = (
    "0DAgg,/c/padocc/padocc/tests/data_creator/0DAgg/*.nc,"
    "/c/padocc/padocc/tests/data_creator/0DAgg/upd.json,"
    "/c/padocc/padocc/tests/data_creator/0DAgg/rem.json\n"
    "1DAgg,/c/padocc/padocc/tests/data_creator/1DAgg/*.nc,,\n"
    "3DAgg,/c/padocc/padocc/tests/data_creator/3DAgg/*.nc,,\n"
)
MYFILE_CSV = (
    "padocc-test-1,/c/padocc/padocc/tests/data/test1.txt,,\n"
    "padocc-test-2,/c/padocc/padocc/tests/data/test2.txt,,"
)


def test_padoccs_own_group_files_are_read(flock: Path):
    (flock / "groups" / "Aggs.csv").write_text(AGGS_CSV)
    (flock / "groups" / "myfile.csv").write_text(MYFILE_CSV)
    r = cycle(flock, "--dry-run")
    assert (r.returncode, error_lines(r.stdout + r.stderr)) == (0, []), r.stderr
    out = r.stdout.splitlines()
    assert "new group Aggs: 3 datasets" in out and "new group myfile: 2 datasets" in out
    nexts = {ln.split()[1] for ln in out if ln.startswith("next: ")}
    assert {"0DAgg", "1DAgg", "3DAgg", "padocc-test-1", "padocc-test-2"} <= nexts
