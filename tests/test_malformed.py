"""Malformed inputs (issue 8): gates, transitions, cycle config, dataset lists and
flock group files. Each: exit 2, exactly one stderr line at file:line(:col), no
traceback, nothing written. (test_bad_input.py and test_gates.py hold more.)"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import WORKFLOWS, padocc, tree_snapshot

BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)

# --------------------------------------------------------------- transitions (demo)
T, VT = "transitions.yaml", "validation/transitions.yaml"
# (id, file, old (None: whole file), new, expected location prefix, words in message)
TRANSITIONS = [
    ("t-list", T, None, "- a\n- b\n", "demo/transitions.yaml:1:1", "must be a mapping"),
    (
        "t-routes-string",
        T,
        "DEMO:Ready:\n  default:\n    - Generate:Ready",
        "DEMO:Ready: Generate:Ready",
        "demo/transitions.yaml:1:",
        "must be a mapping",
    ),
    (
        "t-targets-map",
        T,
        "  default:\n    - Generate:Engaged",
        "  default: {a: b}",
        "demo/transitions.yaml:",
        "must be",
    ),
    (
        "t-targets-empty",
        T,
        "  default:\n    - Generate:Engaged",
        "  default: []",
        "demo/transitions.yaml:",
        "to nothing",
    ),
    (
        "t-target-int",
        T,
        "    - Generate:Engaged",
        "    - 12",
        "demo/transitions.yaml:7:7",
        "not Pass, Fail or Step:State",
    ),
    (
        "t-state-typo",
        T,
        "    - Generate:Engaged",
        "    - Generate:Engagd",
        "demo/transitions.yaml:",
        "Engagd",
    ),
    ("t-no-colon", T, "Generate:Ready:\n", "Generate:\n", "demo/transitions.yaml:", "Generate"),
    ("t-broken-yaml", VT, None, "a: [b\n", "demo/validation/transitions.yaml:", "invalid YAML"),
    (
        "t-duplicate",
        T,
        "Generate:Pass:",
        "Generate:Ready:\n  default: [Fail]\nGenerate:Pass:",
        "demo/transitions.yaml:",
        "duplicate key",
    ),
    ("t-empty", T, None, "", "demo/transitions.yaml", "empty"),
    ("t-alias-bomb", T, None, BOMB, "demo/transitions.yaml:", "expands to more than"),
    (
        "t-tab",
        T,
        "    - Generate:Engaged",
        "\t- Generate:Engaged",
        "demo/transitions.yaml:",
        "invalid YAML",
    ),
    (
        "t-merge-key",
        T,
        None,
        "base: &b {default: [Fail]}\nDEMO:Ready:\n  <<: *b\n",
        "demo/transitions.yaml:3:",
        "merge keys",
    ),
    (
        "t-sub-self-alias",
        VT,
        None,
        "a: &a [*a]\n",
        "demo/validation/transitions.yaml:1:",
        "refers to itself",
    ),
]

# --------------------------------------------------------------- workflow odds (demo)
W, S = "workflow.yaml", "dataset_spec.yaml"
WORKFLOW = [
    ("w-binary", W, "name: DEMO", "name: DEMO\xff", "demo/workflow.yaml:", "UTF-8"),
    ("w-alias-bomb", W, None, BOMB, "demo/workflow.yaml:", "expands to more than"),
    (
        "w-deep-spec",
        S,
        None,
        "x: " + "[" * 300 + "]" * 300 + "\n",
        "demo/dataset_spec.yaml:",
        "nested more than",
    ),
    (
        "w-graph-absolute",
        W,
        "graph: transitions.yaml",
        "graph: /etc/passwd",
        "demo/workflow.yaml:",
        "relative",
    ),
    (
        "w-graph-missing",
        W,
        "graph: transitions.yaml",
        "graph: nothere.yaml",
        "demo/nothere.yaml",
        "not found",
    ),
    (
        "w-graph-dir",
        W,
        "graph: transitions.yaml",
        "graph: validation",
        "demo/validation",
        "directory",
    ),
    ("w-steps-list", W, "steps:\n", "steps: [a]\nx_steps:\n", "demo/workflow.yaml:", "steps"),
]

# --------------------------------------------------------------- dataset lists (demo)
LISTS = [
    ("l-missing", "ids.txt", None, "demo/ids.txt", "not found"),
    ("l-bad-id", "ids.txt", "# ids\nbad;id\n", "demo/ids.txt:2:1", "not allowed"),
    ("l-leading-dash", "ids.txt", "-rf\n", "demo/ids.txt:1:1", "not allowed"),
    ("l-dotdot", "ids.txt", "a..b\n", "demo/ids.txt:1:1", "not allowed"),
    ("l-binary", "ids.txt", b"GOOD.one\nA\xff\n", "demo/ids.txt:2:1", "UTF-8"),
    ("l-absolute", "/etc/hostname", None, "demo/workflow.yaml:", "relative"),
    ("l-space", "ids.txt", "  A B\n", "demo/ids.txt:1:3", "not allowed"),
]

# --------------------------------------------------------------- gates (hmi)
G = "gates.yaml"
GATES = [
    ("g-empty-file", G, None, "", "hmi/gates.yaml", "empty"),
    ("g-list", G, None, "- a\n", "hmi/gates.yaml:1:1", "mapping"),
    ("g-no-gates", G, None, "gates: {}\n", "hmi/gates.yaml:1:", "at least one gate"),
    (
        "g-unknown-key",
        G,
        "    maxrange: 6h\n    want",
        "    maxrang: 6h\n    want",
        "hmi/gates.yaml:",
        "maxrang",
    ),
    (
        "g-bad-axis",
        G,
        "  hmi.lev1:\n    axis: time",
        "  hmi.lev1:\n    axis: thyme",
        "hmi/gates.yaml:",
        "thyme",
    ),
    (
        "g-bad-maxrange",
        G,
        "maxrange: 6h\n    want",
        "maxrange: 6 hours\n    want",
        "hmi/gates.yaml:",
        "6 hours",
    ),
    ("g-bad-step", G, "step: 45s\n    origin", "step: fast\n    origin", "hmi/gates.yaml:", "fast"),
    (
        "g-unknown-pre",
        G,
        "      - gate: hmi.cosmic_rays\n      - gate: hmi.lev1",
        "      - gate: hmi.cosmic_ray\n      - gate: hmi.lev1",
        "hmi/gates.yaml:",
        "cosmic_ray",
    ),
    (
        "g-bad-origin",
        G,
        'origin: "2010-05-01T00:00:00Z"\n    maxrange: 6h\n    want',
        'origin: "yesterday"\n    maxrange: 6h\n    want',
        "hmi/gates.yaml:",
        "yesterday",
    ),
    (
        "g-gaps-string",
        G,
        '    gaps:\n      - {low: "2010-05-01T12:00:00Z", high: "2010-05-01T18:00:00Z"}\n    command: "{python} {workflow_dir}/bin/hmi.py {gate} {low} {high}"\n    parallelOK: 2\n\n',
        '    gaps: [oops]\n    command: "{python} {workflow_dir}/bin/hmi.py {gate} {low} {high}"\n    parallelOK: 2\n\n',
        "hmi/gates.yaml:",
        "mapping",
    ),
    (
        "g-parallel-string",
        G,
        "parallelOK: 2\n\n  # Cosmic",
        "parallelOK: two\n\n  # Cosmic",
        "hmi/gates.yaml:",
        "integer",
    ),
    (
        "g-unknown-placeholder",
        G,
        'bin/hmi.py {gate} {low} {high}"\n    parallelOK: 2\n\n  # Cosmic',
        'bin/hmi.py {gate} {lo} {high}"\n    parallelOK: 2\n\n  # Cosmic',
        "hmi/gates.yaml:",
        "lo",
    ),
    (
        "g-pre-cycle",
        G,
        "  hmi.M_daily:\n    axis: time",
        "  hmi.M_daily:\n    preconditions: [{gate: hmi.synoptic}]\n    axis: time",
        "hmi/gates.yaml:",
        "cycle",
    ),
    (
        "g-file-missing",
        "workflow.yaml",
        "gates: gates.yaml",
        "gates: nogates.yaml",
        "hmi/nogates.yaml",
        "not found",
    ),
    (
        "g-file-absolute",
        "workflow.yaml",
        "gates: gates.yaml",
        "gates: /etc/passwd",
        "hmi/workflow.yaml:",
        "relative",
    ),
    ("g-alias-bomb", G, None, BOMB, "hmi/gates.yaml:", "expands to more than"),
]

# --------------------------------------------------------------- cycle config (flock)
C = "shepard.yaml"
CYCLE = [
    ("c-empty", None, "", "shepard.yaml", "empty"),
    ("c-list", None, "- a\n", "shepard.yaml:1:1", "mapping"),
    ("c-limit-zero", "batch_limit: 1000", "batch_limit: 0", "shepard.yaml:2:", "at least 1"),
    ("c-limit-string", "batch_limit: 1000", "batch_limit: many", "shepard.yaml:2:", "integer"),
    (
        "c-unknown-key",
        "batch_limit: 1000",
        "batch_limit: 1000\nbatch_limt: 3",
        "shepard.yaml:3:1",
        "batch_limt",
    ),
    ("c-no-workflow", "workflow: .", "workflow: ./nowhere", "shepard.yaml:", "does not exist"),
    ("c-repeats", "max_repeats: 5", "max_repeats: 1000", "shepard.yaml:", "between 1 and 100"),
    ("c-broken-yaml", "batch_limit: 1000", "batch_limit: [1000", "shepard.yaml:", "invalid YAML"),
    ("c-no-flock", "flock_dir: groups", "flock_dir: nogroups", "shepard.yaml:", "does not exist"),
    ("c-alias-bomb", None, BOMB, "shepard.yaml:", "expands to more than"),
]


def _copy(src: str, dst: Path) -> Path:
    shutil.copytree(
        WORKFLOWS / src,
        dst,
        ignore=shutil.ignore_patterns(
            ".padocc", "status", "work", "gates", "Snakefile", "complete", "logs", "profiles"
        )
        if src != "hmi"
        else shutil.ignore_patterns(".padocc", "status", "work", "Snakefile"),
    )
    if src == "hmi":
        shutil.rmtree(dst / "gates", ignore_errors=True)
    return dst


def _edit(path: Path, old: str | None, new: str | bytes) -> None:
    if old is None:
        path.write_bytes(new if isinstance(new, bytes) else new.encode())
        return
    text = path.read_text()
    assert old in text, f"case does not apply: {old!r} not in {path}"
    path.write_bytes(text.replace(old, new, 1).encode("utf-8", "surrogateescape"))


def _one_line_error(r, where: str, words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith(where), (line, where)
    assert re.match(r"^[^:]+(:\d+(:\d+)?)?: error: ", line), line
    assert words in line, (line, words)
    return line


def _nothing_written(wf: Path, before: dict) -> None:
    assert not (wf / ".padocc").exists() and not (wf / "Snakefile").exists()
    assert not (wf / "status").exists()
    assert tree_snapshot(wf) == before


@pytest.mark.parametrize("case", TRANSITIONS + WORKFLOW, ids=[c[0] for c in TRANSITIONS + WORKFLOW])
def test_malformed_workflow_files(tmp_path: Path, case):
    _, file, old, new, where, words = case
    wf = _copy("demo", tmp_path / "demo")
    if file == W and new.endswith("\xff"):
        text = (wf / W).read_bytes().replace(b"name: DEMO", b"name: DEMO\xff", 1)
        (wf / W).write_bytes(text)
    else:
        _edit(wf / file, old, new)
    before = tree_snapshot(wf)
    r = padocc("compile", "demo", cwd=tmp_path)
    _one_line_error(r, where, words)
    _nothing_written(wf, before)


@pytest.mark.parametrize("case", LISTS, ids=[c[0] for c in LISTS])
def test_malformed_dataset_lists(tmp_path: Path, case):
    _, name, content, where, words = case
    wf = _copy("demo", tmp_path / "demo")
    text = (wf / W).read_text()
    text = text.replace("      id: \"DEMO.{realm}.{experiment}.{ens}.{variable}\"\n",
                        f"      id: \"DEMO.{{realm}}.{{experiment}}.{{ens}}.{{variable}}\"\n  lists: [{name}]\n")  # fmt: skip
    (wf / W).write_text(text)
    if content is not None:
        (wf / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    before = tree_snapshot(wf)
    r = padocc("compile", "demo", cwd=tmp_path)
    _one_line_error(r, where, words)
    _nothing_written(wf, before)


@pytest.mark.parametrize("case", GATES, ids=[c[0] for c in GATES])
def test_malformed_gates(tmp_path: Path, case):
    _, file, old, new, where, words = case
    wf = _copy("hmi", tmp_path / "hmi")
    _edit(wf / file, old, new)
    before = tree_snapshot(wf)
    r = padocc("compile", "hmi", "--now", "2026-01-01T01:00:00Z", cwd=tmp_path)
    _one_line_error(r, where, words)
    _nothing_written(wf, before)


@pytest.mark.parametrize("case", CYCLE, ids=[c[0] for c in CYCLE])
def test_malformed_cycle_config(tmp_path: Path, case):
    _, old, new, where, words = case
    wf = _copy("flock", tmp_path / "flock")
    _edit(wf / C, old, new)
    before = tree_snapshot(wf)
    r = padocc("cycle", "--conf", C, "--autolog", cwd=wf)
    _one_line_error(r, where, words)
    _nothing_written(wf, before)


# --------------------------------------------------------------- flock group files
# A bad group is skipped with one line at its file:line; the other groups go on
# (one bad group file must not stop a whole flock). Nothing of it is planned.
GROUPS = [
    # (five fields and more are padocc's keep_vars: accepted, tests/test_flock_files.py)
    ("f-twice", "bad.txt", "GOOD_1\nGOOD_1\n", "groups/bad.txt:2:1", "listed twice"),
    ("f-bad-id", "bad.txt", "GOOD_1\n$(touch x)\n", "groups/bad.txt:2:1", "not allowed"),
    ("f-binary", "bad.txt", b"GOOD_1\n\xff\xfe\n", "groups/bad.txt:2:1", "UTF-8"),
    ("f-bad-name", "b;ad.txt", "GOOD_1\n", "groups/b;ad.txt", "group name"),
    ("f-dash-name", "-bad.txt", "GOOD_1\n", "groups/-bad.txt", "group name"),
    ("f-dup-id", "zz.txt", "OBS_sst_b\n", "groups/zz.txt:1:1", "also in group"),
    ("f-csv-quote", "bad.csv", 'A1,"/x\n', "groups/bad.csv", ""),
]


@pytest.mark.parametrize("case", GROUPS, ids=[c[0] for c in GROUPS])
def test_malformed_group_files(tmp_path: Path, case):
    _, name, content, where, words = case
    wf = _copy("flock", tmp_path / "flock")
    (wf / "groups" / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    r = padocc("cycle", "--conf", C, "--dry-run", cwd=wf)
    assert "Traceback" not in r.stdout + r.stderr
    if case[0] == "f-csv-quote":  # an unclosed quote runs to the end: one odd id, rejected
        assert r.returncode in (0, 2), r.stderr
        assert not (wf / ".padocc").exists()
        return
    assert r.returncode == 0, r.stderr
    # The cycle's log (stdout) says it, once, at the file and line.
    problems = [ln for ln in (r.stdout + r.stderr).splitlines() if ": error: " in ln]
    assert len(problems) == 1, r.stderr
    assert words in problems[0] and where in problems[0], problems[0]
    assert re.search(r":\d+:\d+: error: |: error: ", problems[0])
    assert "next: GOOD_1" not in r.stdout  # the bad group is not planned
    assert not (wf / ".padocc" / "builds").exists()
