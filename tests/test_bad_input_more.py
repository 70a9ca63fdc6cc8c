"""Bad input, more classes (issue 17): non-regular files, non-finite numbers, absurd
values, limits the file system or Snakemake would hit later, arguments, damaged
state. Each refusal: exit 2, exactly one stderr line `file[:line:col]: error: ...`
(tested exactly), no traceback, nothing written (the directory is snapshotted)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, WORKFLOWS, compile_wf, fresh_copy, padocc, tree_snapshot

W, T, S, VT = (
    "workflow.yaml",
    "transitions.yaml",
    "dataset_spec.yaml",
    "validation/transitions.yaml",
)
LONG = "x" * 1_000_000  # a 1 MB value: messages show its first 80 characters
CUT = "x" * 80 + "…"


def refused(r: subprocess.CompletedProcess, expected: str) -> None:
    assert "Traceback" not in r.stdout + r.stderr, r.stderr[-2000:]
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-500:])
    assert r.stderr.splitlines() == [expected], r.stderr[-1000:]


def edit(path: Path, old: str | None, new: str | bytes) -> None:
    if old is None:
        path.unlink()
        path.write_bytes(new if isinstance(new, bytes) else new.encode())
        return
    text = path.read_text()
    assert old in text, f"fixture drift: {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


# ------------------------------------------------------------ the demo, compiled
# (id, file, old text (None: the whole file), new text, the one stderr line)
DEMO = [
    # Non-finite numbers: refused where they are written, never a traceback.
    (
        "nan-int",
        W,
        "max_visits: 3",
        "max_visits: .nan",
        "demo/workflow.yaml:22:13: error: '.nan' is not a finite number",
    ),
    (
        "inf-retries",
        W,
        "    retries: 1\n",
        "    retries: .inf\n",
        "demo/workflow.yaml:32:14: error: '.inf' is not a finite number",
    ),
    (
        "overflow-float",
        W,
        "mem: 500M",
        "mem: 1.0e+400",
        "demo/workflow.yaml:46:22: error: '1.0e+400' is not a finite number",
    ),
    (
        "neg-inf-runtime",
        W,
        "runtime: 5m",
        "runtime: -.inf",
        "demo/workflow.yaml:25:24: error: '-.inf' is not a finite number",
    ),
    # Absurd values: bounded.
    (
        "mem-huge",
        W,
        "mem: 500M",
        "mem: 99999999999999999999999999G",
        "demo/workflow.yaml:46:22: error: memory '99999999999999999999999999G' is more than the limit of 16T",
    ),
    (
        "mem-huge-mb",
        W,
        "mem: 500M",
        "mem: 99999999999999",
        "demo/workflow.yaml:46:22: error: memory '99999999999999' is more than the limit of 16T",
    ),
    (
        "runtime-huge",
        W,
        "runtime: 5m",
        "runtime: 1000d",
        "demo/workflow.yaml:25:24: error: runtime '1000d' is more than the limit of 366d",
    ),
    (
        "runtime-huge-min",
        W,
        "runtime: 5m",
        "runtime: 99999999999",
        "demo/workflow.yaml:25:24: error: runtime '99999999999' is more than the limit of 366d",
    ),
    (
        "cpus-huge",
        W,
        "cpus_per_task: 1",
        "cpus_per_task: 100000",
        "demo/workflow.yaml:25:54: error: cpus_per_task must be between 1 and 4096",
    ),
    (
        "mem-max-huge",
        W,
        "  retries: 0\n",
        "  retries: 0\n  retry_growth: {mem_max: 100P}\n",
        "demo/workflow.yaml:27:27: error: memory '100P' is more than the limit of 16T",
    ),
    (
        "runtime-max-huge",
        W,
        "  retries: 0\n",
        "  retries: 0\n  retry_growth: {runtime_max: 400d}\n",
        "demo/workflow.yaml:27:31: error: runtime '400d' is more than the limit of 366d",
    ),
    (
        "empty-command",
        W,
        'command: "{python} {workflow_dir}/bin/demo_step.py regrid {dataset}"',
        'command: ""',
        "demo/workflow.yaml:44:14: error: command of step 'Regrid' is empty",
    ),
    (
        "blank-command",
        W,
        'command: "{python} {workflow_dir}/bin/demo_step.py regrid {dataset}"',
        'command: "   "',
        "demo/workflow.yaml:44:14: error: command of step 'Regrid' is empty",
    ),
    (
        "retain-negative",
        W,
        "max_visits: 3",
        "max_visits: 3\nretain: -5",
        "demo/workflow.yaml:23:9: error: duration '-5' must not be negative",
    ),
    (
        "retain-negative-text",
        W,
        "max_visits: 3",
        "max_visits: 3\nretain: '-60'",
        "demo/workflow.yaml:23:9: error: duration '-60' must not be negative",
    ),
    (
        "retain-huge",
        W,
        "max_visits: 3",
        "max_visits: 3\nretain: 99999d",
        "demo/workflow.yaml:23:9: error: duration '99999d' is more than the limit of 36600d",
    ),
    # Names become file names: bounded.
    (
        "workflow-name-5000",
        W,
        "name: DEMO",
        "name: " + "D" * 5000,
        "demo/workflow.yaml:4:7: error: workflow name '"
        + "D" * 80
        + "…' is longer than 100 characters",
    ),
    (
        "step-name-long",
        W,
        "  Regrid:\n",
        "  R" + "e" * 120 + ":\n",
        "demo/workflow.yaml:43:3: error: step name 'R"
        + "e" * 79
        + "…' is longer than 100 characters",
    ),
    (
        "state-name-long",
        W,
        "states: [Warning]",
        "states: [W" + "a" * 120 + "]",
        "demo/workflow.yaml:42:14: error: state name 'W"
        + "a" * 79
        + "…' is longer than 100 characters",
    ),
    # Paths that must be directories: said now, not by the first job.
    (
        "status-dir-file",
        W,
        "max_visits: 3",
        "max_visits: 3\nstatus_dir: bin/demo_step.py",
        "demo/workflow.yaml:23:13: error: status_dir 'bin/demo_step.py' is not a directory",
    ),
    (
        "work-dir-file",
        W,
        "max_visits: 3",
        "max_visits: 3\nwork_dir: dataset_spec.yaml",
        "demo/workflow.yaml:23:11: error: work_dir 'dataset_spec.yaml' is not a directory",
    ),
    # Wrong form: NUL and control characters at line:col; long values cut; one line.
    (
        "nul-byte",
        W,
        "max_visits: 3",
        "max_visits: 3\x00",
        "demo/workflow.yaml:22:14: error: invalid YAML: a NUL byte is not allowed",
    ),
    (
        "nul-in-spec",
        S,
        "variables: [tas, pr, psl]",
        "variables: [tas, p\x00r, psl]",
        "demo/dataset_spec.yaml:4:25: error: invalid YAML: a NUL byte is not allowed",
    ),
    (
        "bell-in-transitions",
        T,
        "DEMO:Ready:",
        "DEMO:Ready:\x07",
        "demo/transitions.yaml:1:12: error: invalid YAML: control character #x0007 is not allowed",
    ),
    (
        "one-mb-id",
        S,
        "ens: [r1, r2, r3]}\n    ocean",
        f"ens: [r1, {LONG}]}}\n    ocean",
        f"demo/workflow.yaml:16:11: error: dataset id 'DEMO.atmos.ssp.{'x' * 65}…' is not allowed: use letters, digits "
        "and _ . + = - (not first), no '..', at most 240 characters",
    ),
    (
        "one-mb-step-name",
        T,
        "    - Publish:Engaged",
        f"    - P{LONG}:Engaged",
        f"demo/transitions.yaml:37:7: error: unknown step 'P{'x' * 79}…': no step of that name is defined",
    ),
    (
        "newline-in-value",
        W,
        "max_visits: 3",
        'max_visits: 3\nundeclared: "tar\\nrm"',
        "demo/workflow.yaml:23:13: error: 'undeclared' must be one of keep, tar, remove, not 'tar\\nrm' (did you mean 'tar'?)",
    ),
    # YAML 1.1 implicit types where a facet value is compared: refused, not turned to False.
    (
        "routing-when-boolean",
        W,
        'routing_key: "{realm}-mon"',
        'routing_key:\n  - when: {ens: no}\n    key: "{realm}-mon"\n  - key: "{realm}-mon"',
        "demo/workflow.yaml:19:17: error: routing key condition on 'ens' must be text, not boolean: "
        "put it in quotes",
    ),
    (
        "facet-maps-boolean",
        W,
        '      id: "DEMO.{realm}.{experiment}.{ens}.{variable}"\n',
        '      id: "DEMO.{realm}.{experiment}.{ens}.{variable}"\n  facet_maps:\n    realm:\n'
        "      atmos: {kind: no}\n      ocean: {kind: sea}\n",
        "demo/workflow.yaml:19:21: error: facet_maps value of 'kind' must be text, not boolean: "
        "put it in quotes",
    ),
    (
        "skip-float",
        W,
        "        - {facet: ens, from: ens}",
        "        - {facet: ens, from: ens, skip: [1.10]}",
        "demo/workflow.yaml:15:42: error: 'skip' entries must be strings, not number",
    ),
    # Only regular files are read.
    ("workflow-dir", W, None, b"", "demo/workflow.yaml: error: is a directory, not a regular file"),
    ("spec-fifo", S, None, b"", "demo/dataset_spec.yaml: error: is a FIFO, not a regular file"),
    (
        "transitions-fifo",
        T,
        None,
        b"",
        "demo/transitions.yaml: error: is a FIFO, not a regular file",
    ),
    (
        "sub-transitions-fifo",
        VT,
        None,
        b"",
        "demo/validation/transitions.yaml: error: is a FIFO, not a regular file",
    ),
    ("workflow-fifo", W, None, b"", "demo/workflow.yaml: error: is a FIFO, not a regular file"),
    (
        "spec-dev-zero",
        S,
        None,
        b"",
        "demo/dataset_spec.yaml: error: is a character device, not a regular file",
    ),
]
# Which DEMO cases replace the file by something else than text.
SPECIAL = {"workflow-dir": "dir", "spec-fifo": "fifo", "transitions-fifo": "fifo", "sub-transitions-fifo": "fifo",
           "workflow-fifo": "fifo", "spec-dev-zero": "/dev/zero"}  # fmt: skip


def _make_special(path: Path, kind: str) -> None:
    path.unlink()
    if kind == "dir":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(kind)


@pytest.mark.parametrize("case", DEMO, ids=[c[0] for c in DEMO])
def test_demo_refused(demo: Path, case):
    name, file, old, new, expected = case
    if name in SPECIAL:
        _make_special(demo / file, SPECIAL[name])
    else:
        edit(demo / file, old, new)
    before = tree_snapshot(demo)
    r = padocc("compile", "demo", cwd=demo.parent)
    refused(r, expected)
    assert tree_snapshot(demo) == before
    assert not (demo / ".padocc").exists() and not (demo / "Snakefile").exists()


def test_message_of_a_huge_value_is_short(demo: Path):
    edit(demo / S, "ens: [r1, r2, r3]}\n    ocean", f"ens: [r1, {LONG}]}}\n    ocean")
    r = padocc("compile", "demo", cwd=demo.parent)
    assert r.returncode == 2 and len(r.stderr) < 400, len(r.stderr)


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_status_file_not_regular(demo: Path, kind):
    """The compile's status scan refuses a status file that is a FIFO (it would hang the
    scan, and a job's append) or a device, at that file, before writing anything."""
    st = demo / "status"
    st.mkdir()
    p = st / "DEMO.atmos.hist.r1.tas.status"
    p.write_text("")
    _make_special(p, kind)
    before = tree_snapshot(demo)
    r = padocc("compile", "demo", cwd=demo.parent, timeout=60)
    what = "a FIFO" if kind == "fifo" else "a character device"
    refused(r, f"{p.parent.resolve()}/{p.name}: error: status file is {what}, not a regular file")
    assert tree_snapshot(demo) == before and not (demo / ".padocc").exists()


# ------------------------------------------------------------ facet values keep their text
def test_facet_values_keep_the_text_written(demo: Path):
    """YAML 1.1 reads `no` as False, `1.10` as 1.1, `0x1F` as 31: a facet value is the
    text the user wrote, so ids never silently change."""
    edit(
        demo / S,
        "ens: [r1, r2, r3]}\n    ocean",
        "ens: [r1, no, 1.10, 0x1F, 2001-01-01, on]}\n    ocean",
    )
    r = padocc("datasets", "demo", cwd=demo.parent)
    assert r.returncode == 0, r.stderr
    ids = set(r.stdout.split())
    for ens in ("no", "1.10", "0x1F", "2001-01-01", "on"):
        assert f"DEMO.atmos.ssp.{ens}.tas" in ids
    assert not any("False" in i or "True" in i or ".1.1." in i or ".31." in i for i in ids)


def test_facet_keys_keep_the_text_written(demo: Path):
    edit(demo / S, "hist: {ens: [r1, r2, r3]}\n        ssp", "no: {ens: [r1]}\n        ssp")
    r = padocc("datasets", "demo", cwd=demo.parent)
    assert r.returncode == 0, r.stderr
    assert "DEMO.atmos.no.r1.tas" in r.stdout.split()


# ------------------------------------------------------------ gates (HMI)
HMI_NOW = "2026-01-01T01:00:00Z"
G = "gates.yaml"
GATES = [
    (
        "maxrange-nan",
        "maxrange: 6h",
        "maxrange: .nan",
        "hmi/gates.yaml:8:15: error: '.nan' is not a finite number",
    ),
    (
        "step-inf",
        "step: 45s",
        "step: .inf",
        "hmi/gates.yaml:6:11: error: '.inf' is not a finite number",
    ),
    (
        "lag-inf",
        "lag: 10m",
        "lag: .inf",
        "hmi/gates.yaml:47:18: error: '.inf' is not a finite number",
    ),
    (
        "lag-negative",
        "lag: 10m",
        "lag: -5",
        "hmi/gates.yaml:47:18: error: duration '-5' must not be negative",
    ),
    (
        "lag-huge",
        "lag: 10m",
        "lag: 99999999d",
        "hmi/gates.yaml:47:18: error: duration '99999999d' is more than the limit of 36600d",
    ),
    (
        "gate-name-300",
        "  hmi.nrt_LOS:",
        "  hmi." + "n" * 296 + ":",
        "hmi/gates.yaml:49:3: error: gate name 'hmi."
        + "n" * 76
        + "…' is longer than 100 characters",
    ),
    (
        "gate-empty-command",
        'command: "{python} {workflow_dir}/bin/hmi.py {gate} {low} {high}"\n    parallelOK: 2\n\n',
        'command: " "\n    parallelOK: 2\n\n',
        "hmi/gates.yaml:12:14: error: command of gate 'hmi.lev1' is empty",
    ),
    (
        "gate-mem-huge",
        "    parallelOK: 2\n\n",
        "    parallelOK: 2\n    resources: {mem: 20T}\n\n",
        "hmi/gates.yaml:14:22: error: memory '20T' is more than the limit of 16T",
    ),
]


@pytest.mark.parametrize("case", GATES, ids=[c[0] for c in GATES])
def test_gates_refused(tmp_path: Path, case):
    _, old, new, expected = case
    wf = fresh_copy("hmi", tmp_path / "hmi")
    edit(wf / G, old, new)
    before = tree_snapshot(wf)
    r = padocc("compile", "hmi", "--now", HMI_NOW, cwd=tmp_path)
    refused(r, expected)
    assert tree_snapshot(wf) == before and not (wf / ".padocc").exists()


def test_gates_file_fifo(tmp_path: Path):
    wf = fresh_copy("hmi", tmp_path / "hmi")
    _make_special(wf / G, "fifo")
    before = tree_snapshot(wf)
    r = padocc("compile", "hmi", "--now", HMI_NOW, cwd=tmp_path, timeout=60)
    refused(r, "hmi/gates.yaml: error: is a FIFO, not a regular file")
    assert tree_snapshot(wf) == before


def _keyed(tmp_path: Path, ds_id: str) -> Path:
    wf = tmp_path / "ar"
    wf.mkdir()
    (wf / W).write_text(
        'name: AR\ndatasets:\n  lists: [{file: ids.txt, pattern: "AR{n}"}]\ngates: gates.yaml\n'
    )
    (wf / "ids.txt").write_text(f"AR1\n{ds_id}\n")
    (wf / G).write_text('gates:\n  sharp_map:\n    axis: time\n    maxrange: 2h\n    keyed: true\n'
                        '    command: "echo {dataset}"\n')  # fmt: skip
    return wf


def _id(n: int) -> str:
    """An id of n characters that no wildcard sees as periodic."""
    return "AR" + "".join("abcdefghijklmnopqrstuvwxyz"[(i * i + 7 * i) % 26] for i in range(n - 2))


def test_keyed_gate_long_id(tmp_path: Path):
    """sharp_map@ID.status must fit a file name (255 bytes): with a 240-character id it
    would not, and `gate make` would fail with "File name too long"."""
    long_id = _id(240)
    wf = _keyed(tmp_path, long_id)
    before = tree_snapshot(wf)
    r = padocc("compile", "ar", cwd=tmp_path)
    name = f"sharp_map@{long_id}.status"
    refused(r, f"ar/gates.yaml:2:3: error: keyed gate 'sharp_map' with dataset '{long_id[:80]}…' makes the file name "
               f"'{name[:80]}…' longer than 255 bytes")  # fmt: skip
    assert tree_snapshot(wf) == before and not (wf / ".padocc").exists()


def test_keyed_gate_id_that_fits(tmp_path: Path):
    compile_wf(_keyed(tmp_path, _id(255 - len("sharp_map@.status"))))


# ------------------------------------------------------------ cycle config (flock)
C = "shepard.yaml"
CYCLE = [
    (
        "profile-missing",
        "profile: local",
        "profile: no/such/profile",
        "shepard.yaml:10:10: error: profile 'no/such/profile' not found: use local, slurm or the path of a profile directory",
    ),
    (
        "profile-file",
        "profile: local",
        "profile: common_valid.txt",
        "shepard.yaml:10:10: error: profile 'common_valid.txt' not found: use local, slurm or the path of a profile directory",
    ),
    (
        "timeout-negative",
        "max_repeats: 5",
        "max_repeats: 5\nsnakemake_timeout: -1",
        "shepard.yaml:13:20: error: snakemake_timeout must be between 1 and 604800 seconds",
    ),
    (
        "timeout-huge",
        "max_repeats: 5",
        "max_repeats: 5\nsnakemake_timeout: 99999999999",
        "shepard.yaml:13:20: error: snakemake_timeout must be between 1 and 604800 seconds",
    ),
    (
        "timeout-nan",
        "max_repeats: 5",
        "max_repeats: 5\nsnakemake_timeout: .nan",
        "shepard.yaml:13:20: error: '.nan' is not a finite number",
    ),
    (
        "batch-huge",
        "batch_limit: 1000",
        "batch_limit: 99999999999",
        "shepard.yaml:2:14: error: batch_limit must be at most 1,000,000",
    ),
    (
        "status-dir-file",
        "max_repeats: 5",
        "max_repeats: 5\nstatus_dir: common_valid.txt",
        "shepard.yaml:13:13: error: status_dir 'common_valid.txt' is not a directory",
    ),
    (
        "log-dir-file",
        "log_dir: logs",
        "log_dir: common_valid.txt",
        "shepard.yaml:11:10: error: log_dir 'common_valid.txt' is not a directory",
    ),
    (
        "workflow-file",
        "workflow: .",
        "workflow: workflow.yaml",
        "shepard.yaml:9:11: error: workflow 'workflow.yaml' is not a directory",
    ),
    (
        "complete-dir-file",
        "complete_dir: complete",
        "complete_dir: common_valid.txt",
        "shepard.yaml:4:15: error: complete_dir 'common_valid.txt' is not a directory",
    ),
    (
        "flock-dir-file",
        "flock_dir: groups",
        "flock_dir: common_valid.txt",
        "shepard.yaml:3:12: error: flock_dir 'common_valid.txt' is not a directory",
    ),
    (
        "source-venv-file",
        "# source_venv: /path/to/venv",
        "source_venv: common_valid.txt",
        "shepard.yaml:6:14: error: source_venv 'common_valid.txt' is not a directory",
    ),
    (
        "source-venv-list",
        "# source_venv: /path/to/venv",
        "source_venv: [a, b]",
        "shepard.yaml:6:14: error: 'source_venv' must be a string, not list",
    ),
    (
        "common-valid-dir",
        "common_valid: common_valid.txt",
        "common_valid: groups",
        "shepard.yaml:5:15: error: common_valid 'groups' is not a regular file",
    ),
    (
        "common-valid-map",
        "common_valid: common_valid.txt",
        "common_valid: {a: 1}",
        "shepard.yaml:5:15: error: 'common_valid' must be a string, not mapping",
    ),
]


@pytest.mark.parametrize("case", CYCLE, ids=[c[0] for c in CYCLE])
def test_cycle_config_refused(tmp_path: Path, case):
    _, old, new, expected = case
    wf = fresh_copy("flock", tmp_path / "flock")
    edit(wf / C, old, new)
    before = tree_snapshot(wf)
    r = padocc("cycle", "--conf", C, "--autolog", cwd=wf)
    refused(r, expected)
    assert tree_snapshot(wf) == before and not (wf / ".padocc").exists()


def test_cycle_config_fifo(tmp_path: Path):
    wf = fresh_copy("flock", tmp_path / "flock")
    _make_special(wf / C, "fifo")
    r = padocc("cycle", "--conf", C, cwd=wf, timeout=60)
    refused(r, "shepard.yaml: error: is a FIFO, not a regular file")
    assert not (wf / ".padocc").exists()


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_cycle_group_not_regular(tmp_path: Path, kind):
    """A FIFO (or a device) in the flock never hangs a cycle that holds the cycle lock:
    that group is skipped with one line, the others are planned."""
    wf = fresh_copy("flock", tmp_path / "flock")
    (wf / "groups" / "bad.txt").write_text("")
    _make_special(wf / "groups" / "bad.txt", kind)
    r = padocc("cycle", "--conf", C, "--dry-run", cwd=wf, timeout=120)
    what = "a FIFO" if kind == "fifo" else "a character device"
    assert r.returncode == 0, r.stderr
    said = [ln for ln in r.stdout.splitlines() if "bad.txt" in ln]  # the cycle's log
    assert said == [f"{wf.resolve()}/groups/bad.txt: error: is {what}, not a regular file"]
    assert "Traceback" not in r.stdout + r.stderr
    assert "next: " in r.stdout  # the other groups go on


@pytest.mark.parametrize("damage", ["truncated", "array", "fifo", "bad-record"])
def test_cycle_damaged_flock_state(tmp_path: Path, damage):
    """A damaged flock.json is said once and the cycle starts from an empty state, so
    one torn write never stops every later cron cycle."""
    wf = fresh_copy("flock", tmp_path / "flock")
    state = wf / ".padocc" / "flock.json"
    state.parent.mkdir()
    if damage == "fifo":
        os.mkfifo(state)
    else:
        state.write_text({"truncated": '{"groups": {"cmip_a": {"dig', "array": "[1, 2]",
                          "bad-record": '{"groups": {}, "completed": {"g": {"to": 3}}}'}[damage])  # fmt: skip
    r = padocc("cycle", "--conf", C, "--dry-run", cwd=wf, timeout=120)
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    warn = [ln for ln in r.stdout.splitlines() if "flock.json" in ln]
    why = {"truncated": "Unterminated string starting at: line 1 column 24 (char 23)", "array": "not a JSON object",
           "fifo": "is a FIFO, not a regular file", "bad-record": "completed record of group 'g' is damaged"}[damage]  # fmt: skip
    assert warn == [
        f"warning: {state.resolve()}: damaged ({why}); started again from an empty flock state"
    ]
    assert "new group cmip_a" in r.stdout


# ------------------------------------------------------------ ops commands, damaged manifest
OPS = [
    (
        "status",
        ["status", "demo"],
        "{abs}: error: unreadable manifest: the manifest is not a JSON object",
    ),
    (
        "report",
        ["report", "demo"],
        "{rel}: error: unreadable manifest: the manifest is not a JSON object",
    ),
    (
        "dashboard",
        ["dashboard", "demo", "-o", "page.html"],
        "{rel}: error: unreadable manifest: the manifest is not a JSON object",
    ),
    (
        "block",
        ["block", "demo", "DEMO.atmos.hist.r1.tas"],
        "{rel}: error: unreadable manifest (the manifest is not a JSON object); run padocc-compile again",
    ),
    (
        "unblock",
        ["unblock", "demo", "DEMO.atmos.hist.r1.tas"],
        "{rel}: error: unreadable manifest (the manifest is not a JSON object); run padocc-compile again",
    ),
    (
        "requeue",
        ["requeue", "demo", "DEMO.atmos.hist.r1.tas", "--at", "Generate"],
        "{rel}: error: unreadable manifest (the manifest is not a JSON object); run padocc-compile again",
    ),
    (
        "cancel",
        ["cancel", "demo"],
        "{rel}: error: unreadable manifest (the manifest is not a JSON object); run padocc-compile again",
    ),
    (
        "catalog-rebuild",
        ["catalog", "rebuild", "demo"],
        "{rel}: error: unreadable manifest (the manifest is not a JSON object); run padocc-compile again",
    ),
    (
        "catalog-stale",
        ["catalog", "stale", "-C", "demo"],
        "{rel}: error: unreadable manifest (the manifest is not a JSON object); run padocc-compile again",
    ),
    (
        "gate-range",
        ["gate", "range", "hmi.lev1", "-C", "demo"],
        "{rel}: error: unreadable manifest (the manifest is not a JSON object); run padocc-compile again",
    ),
    (
        "clean",
        ["clean", "demo", "--dry-run"],
        "{rel}: error: unreadable manifest (the manifest is not a JSON object); run padocc-compile again",
    ),
]


@pytest.mark.parametrize("case", OPS, ids=[c[0] for c in OPS])
def test_ops_on_a_manifest_that_is_an_array(demo: Path, case):
    _, args, expected = case
    compile_wf(demo)
    manifest = demo / ".padocc" / "current" / "manifest.json"
    manifest.resolve().write_text("[1, 2]\n")
    before = tree_snapshot(demo.parent)
    r = padocc(*args, cwd=demo.parent)
    refused(
        r,
        expected.format(
            abs=demo.resolve() / ".padocc/current/manifest.json",
            rel="demo/.padocc/current/manifest.json",
        ),
    )
    assert tree_snapshot(demo.parent) == before


# ------------------------------------------------------------ run-step, arguments
def test_run_step_unknown_build_job_slot(demo: Path):
    compile_wf(demo)
    before = tree_snapshot(demo)
    cases = [
        ((".padocc/builds/nosuch", "DEMO.atmos.hist.r1.tas", "1"),
         ".padocc/builds/nosuch: error: not a build of this workflow (No such file or directory)"),
        ((".padocc/current", "nosuch", "1"), ".padocc/current: error: the build has no job 'nosuch'"),
        ((".padocc/current", "@99", "1"), ".padocc/current: error: the build has no job '@99'"),
        ((".padocc/current", "DEMO.atmos.hist.r1.tas", "99"),
         ".padocc/current: error: job 'DEMO.atmos.hist.r1.tas' has slots 1 to 4, not 99"),
        # a later slot exists only once the round before has ended with the job going on
        ((".padocc/current", "DEMO.atmos.hist.r1.tas", "2"),
         ".padocc/current: error: job 'DEMO.atmos.hist.r1.tas' has no slot 2 yet: "
         "round 1 has not ended with it going on"),
    ]  # fmt: skip
    for args, expected in cases:
        refused(padocc("run-step", *args, cwd=demo), expected)
    assert tree_snapshot(demo) == before


ARGS = [
    (
        "run-timeout-negative",
        ["run", "demo", "--timeout", "-1"],
        "padocc run: error: argument --timeout: must be seconds above 0 and at most a year, not '-1'",
    ),
    (
        "run-timeout-nan",
        ["run", "demo", "--timeout", "nan"],
        "padocc run: error: argument --timeout: must be seconds above 0 and at most a year, not 'nan'",
    ),
    (
        "run-timeout-inf",
        ["run", "demo", "--timeout", "inf"],
        "padocc run: error: argument --timeout: must be seconds above 0 and at most a year, not 'inf'",
    ),
    (
        "run-timeout-word",
        ["run", "demo", "--timeout", "soon"],
        "padocc run: error: argument --timeout: expected seconds, not 'soon'",
    ),
    (
        "gate-timeout-nan",
        ["gate", "wait", "g", "1", "2", "-C", "demo", "--timeout", "nan"],
        "padocc gate: error: argument --timeout: must be seconds above 0 and at most a year, not 'nan'",
    ),
    (
        "max-list-negative",
        ["dashboard", "demo", "-o", "p.html", "--max-list", "-5"],
        "padocc dashboard: error: argument --max-list: must be between 0 and 10,000,000, not '-5'",
    ),
    (
        "run-profile-missing",
        ["run", "demo", "--profile", "no/such"],
        "padocc run: error: profile 'no/such' not found: use local, slurm or the path of a profile "
        "directory",
    ),
    (
        "unknown-option",
        ["compile", "demo", "--bogus"],
        "padocc: error: unrecognized arguments: --bogus",
    ),
    (
        "missing-argument",
        ["requeue", "demo", "X"],
        "padocc requeue: error: the following arguments are required: --at",
    ),
    (
        "dashboard-output-dir",
        ["dashboard", "demo", "-o", "demo"],
        "demo: error: -o is a directory; name the page's file",
    ),
    (
        "dashboard-output-nowhere",
        ["dashboard", "demo", "-o", "no/such/p.html"],
        "no/such/p.html: error: -o is in a directory that does not exist; name the page's file",
    ),
]


@pytest.mark.parametrize("case", ARGS, ids=[c[0] for c in ARGS])
def test_bad_arguments(demo: Path, case):
    _, args, expected = case
    before = tree_snapshot(demo.parent)
    r = padocc(*args, cwd=demo.parent)
    refused(r, expected)
    assert tree_snapshot(demo.parent) == before


def test_compile_bad_argument_is_one_line(demo: Path):
    r = subprocess.run([sys.executable, "-c", "from compiler.cli import compile_main; compile_main(['--bogus'])"],
                       capture_output=True, text=True, cwd=demo.parent, check=False)  # fmt: skip
    refused(r, "padocc-compile: error: unrecognized arguments: --bogus")


# ------------------------------------------------------------ campaign: nothing before the check
def test_campaign_bad_gate_range_compiles_nothing(tmp_path: Path):
    """The second workflow's range is bad: exit 2 before the first is compiled with the
    campaign's filter (its current build would then hold 3 of its 36 datasets)."""
    root = tmp_path / "w"
    shutil.copytree(
        WORKFLOWS,
        root,
        ignore=shutil.ignore_patterns(".padocc", "Snakefile", "status", "work", "runs"),
    )
    camp = root / "campaigns" / "demo-campaign.yaml"
    edit(camp, 'high: "2010-05-02T00:00:00Z"', 'high: "2009-05-02T00:00:00Z"')
    before = tree_snapshot(root)
    r = padocc("campaign", "submit", str(camp), cwd=tmp_path)
    refused(r, f"{camp}:24:30: error: low 2010-05-01T00:00:00Z is after high 2009-05-02T00:00:00Z")
    assert tree_snapshot(root) == before
    assert not (root / "demo" / ".padocc").exists() and not (root / "hmi" / ".padocc").exists()


# ------------------------------------------------------------ a run that cannot run says why
def test_run_lock_is_a_directory(demo: Path):
    (demo / ".padocc" / "run.lock").mkdir(parents=True)
    before = tree_snapshot(demo)
    r = padocc("run", "demo", cwd=demo.parent)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.splitlines() == [
        "demo/.padocc/run.lock: error: the lock file is a directory; remove it"
    ]
    assert tree_snapshot(demo) == before and not (demo / "Snakefile").exists()


def test_run_on_a_full_disk(tmp_path: Path):
    """A full file system (a 1 MB tmpfs in a private mount namespace, filled): the run
    says so in one line, exit 1, and leaves no half-written build."""
    script = f"""
set -e
mount -t tmpfs -o size=1m tmpfs {tmp_path}
cp -r {WORKFLOWS / "demo"} {tmp_path}/demo
dd if=/dev/zero of={tmp_path}/fill bs=4k 2>/dev/null || true
cd {tmp_path}
set +e
for cmd in run compile; do
  {sys.executable} -m compiler $cmd demo > /dev/null 2> /tmp/.padocc-full-$$.err
  echo "rc=$?"
  cat /tmp/.padocc-full-$$.err
done
rm -f /tmp/.padocc-full-$$.err
ls -A demo
"""
    r = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
                       capture_output=True, text=True, timeout=120, check=False,
                       env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[:3] == ["rc=1", "demo: error: no space left on device (0 bytes free)", "rc=2"]
    assert re.fullmatch(
        r"demo/\.padocc/builds: error: cannot write build \S+: No space left on device; "
        r"nothing was published, the previous build is still current",
        out[3],
    ), out
    assert out[4:] == sorted(os.listdir(WORKFLOWS / "demo")), out  # not even .padocc


def test_periodic_id_refused_at_its_line(tmp_path: Path):
    """Snakemake refuses a wildcard value that ends in a part repeated 20 times (it
    takes it for an endless recursion): such an id is refused at compile time, at its
    line, not when Snakemake builds its DAG."""
    wf = _keyed(tmp_path, "AR" + "0" * 25)
    before = tree_snapshot(wf)
    r = padocc("compile", "ar", cwd=tmp_path)
    refused(
        r,
        "ar/ids.txt:2:1: error: dataset id 'AR0000000000000000000000000' ends in '0' repeated "
        "20 times or more, which Snakemake refuses in a wildcard",
    )
    assert tree_snapshot(wf) == before


def test_ops_commands_with_a_status_file_that_is_a_fifo(demo: Path):
    """Readers warn and go on; writers refuse before writing any line; none hangs."""
    compile_wf(demo)
    st = demo / "status"
    st.mkdir()
    fifo = st / "DEMO.atmos.hist.r1.tas.status"
    os.mkfifo(fifo)
    shown = f"{st.resolve()}/{fifo.name}"
    for args in (["status", "demo"], ["report", "demo"], ["catalog", "rebuild", "demo"]):
        r = padocc(*args, cwd=demo.parent, timeout=60)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.splitlines() == [
            f"warning: {shown}: unreadable status file: is a FIFO, not a regular file"
        ]
    before = tree_snapshot(demo)
    for args in (
        ["block", "demo", "DEMO.atmos.hist.r2.tas", "DEMO.atmos.hist.r1.tas"],
        ["requeue", "demo", "DEMO.atmos.hist.r1.tas", "--at", "Generate"],
    ):
        r = padocc(*args, cwd=demo.parent, timeout=60)
        refused(r, f"{shown}: error: status file is a FIFO, not a regular file; nothing written")
    assert tree_snapshot(demo) == before


def test_cycle_group_name_too_long(tmp_path: Path):
    """A group's name becomes complete_dir/.tmp-NAME-<cycle id> when it completes: a
    name too long for that is skipped with one line at the cycle's start, not at the end."""
    wf = fresh_copy("flock", tmp_path / "flock")
    name = "g" * 201
    (wf / "groups" / f"{name}.txt").write_text("LONG_1\n")
    r = padocc("cycle", "--conf", C, "--dry-run", cwd=wf)
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr
    said = [ln for ln in r.stdout.splitlines() if "ggg" in ln]
    assert said == [
        f"{wf.resolve()}/groups/{name}.txt: error: group name is longer than 200 characters"
    ]
    assert "LONG_1" not in r.stdout


def test_current_replaced_by_a_directory(demo: Path):
    """`.padocc/current` replaced by a directory: the compile says so in one line
    before it writes a build (it used to write one, then fail with a traceback)."""
    (demo / ".padocc" / "current").mkdir(parents=True)
    before = tree_snapshot(demo)
    r = padocc("compile", "demo", cwd=demo.parent)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.splitlines() == [
        "demo/.padocc/current: error: a directory, not padocc's link to the current build; "
        "move it away and compile again (nothing was written)"
    ]
    assert tree_snapshot(demo) == before
    assert sorted(p.name for p in (demo / ".padocc").iterdir()) == ["current"]
