"""Bad input: exit 2, one line naming file:line:col and the problem, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import compile_wf, padocc, tree_snapshot

W, T, V, S = "workflow.yaml", "transitions.yaml", "validation/transitions.yaml", "dataset_spec.yaml"

# (id, file, old text (None: replace the whole file), new text, expected stderr line)
CASES = [
    (
        "broken-yaml",
        W,
        "name: DEMO",
        "name: [DEMO",
        "demo/workflow.yaml:6:9: error: invalid YAML: expected ',' or ']', but got ':'",
    ),
    (
        "unknown-key-suggest",
        W,
        "max_visits: 3",
        "max_visit: 3",
        "demo/workflow.yaml:22:1: error: unknown key 'max_visit' in workflow (did you mean 'max_visits'?)",
    ),
    (
        "unknown-step-key",
        W,
        "    retries: 1\n",
        "    retires: 1\n",
        "demo/workflow.yaml:32:5: error: unknown key 'retires' in step (did you mean 'retries'?)",
    ),
    (
        "missing-step",
        T,
        "    - Publish:Engaged",
        "    - Publsh:Engaged",
        "demo/transitions.yaml:37:7: error: unknown step 'Publsh': no step of that name is defined "
        "(did you mean 'Publish'?)",
    ),
    ("empty-spec", S, None, "", "demo/dataset_spec.yaml: error: dataset spec is empty"),
    (
        "id-unknown-facet",
        W,
        'id: "DEMO.{realm}',
        'id: "DEMO.{relm}',
        "demo/workflow.yaml:16:11: error: id template names unknown facet 'relm' (did you mean 'realm'?)",
    ),
    (
        "duplicate-key",
        W,
        "graph: transitions.yaml",
        "graph: transitions.yaml\ngraph: other.yaml",
        "demo/workflow.yaml:21:1: error: duplicate key 'graph' (first at line 20) with a different value: "
        "a YAML reader keeps only the last and silently drops the first; merge them or remove one",
    ),
    (
        "missing-required",
        W,
        "name: DEMO\n",
        "",
        "demo/workflow.yaml:5:1: error: workflow is missing required key 'name'",
    ),
    (
        "wrong-type",
        W,
        "max_visits: 3",
        "max_visits: three",
        "demo/workflow.yaml:22:13: error: 'max_visits' must be an integer, not string",
    ),
    (
        "bad-memory",
        W,
        "resources: {mem: 500M}",
        "resources: {mem: 500 megs}",
        "demo/workflow.yaml:46:22: error: cannot read memory size '500 megs': use MB or a size like '16G', '500M'",
    ),
    (
        "bad-runtime",
        W,
        "runtime: 5m",
        "runtime: soon",
        "demo/workflow.yaml:25:24: error: cannot read duration 'soon': use minutes or e.g. '2h', '90m', '1:30:00'",
    ),
    (
        "unknown-state",
        V,
        "CheckTime:Fail:",
        "CheckTime:Fial:",
        "demo/validation/transitions.yaml:12:1: error: unknown state 'Fial' in 'CheckTime:Fial' (did you mean 'Fail'?)",
    ),
    (
        "absolute-spec",
        W,
        "spec: dataset_spec.yaml",
        "spec: /etc/passwd",
        "demo/workflow.yaml:7:9: error: 'spec' must be a path relative to the workflow directory, not '/etc/passwd'",
    ),
    (
        "graph-missing",
        W,
        "graph: transitions.yaml",
        "graph: nowhere.yaml",
        "demo/nowhere.yaml: error: file not found",
    ),
    (
        "command-unknown-facet",
        W,
        "checktime {dataset}",
        "checktime {datset}",
        "demo/workflow.yaml:34:14: error: command of step 'CheckTime' names unknown facet 'datset' "
        "(did you mean 'dataset'?)",
    ),
    (
        "walk-missing-key",
        W,
        "from: experiments",
        "from: experiment",
        "demo/dataset_spec.yaml:4:7: error: walk 'demo' expects key 'experiment' here",
    ),
    (
        "routing-unknown-facet",
        W,
        'routing_key: "{realm}-mon"',
        'routing_key: "{region}-mon"',
        "demo/workflow.yaml:18:14: error: routing key names unknown facet 'region'",
    ),
    ("empty-workflow", W, None, "# nothing\n", "demo/workflow.yaml: error: workflow file is empty"),
    (
        "custom-state-reserved",
        W,
        "states: [Warning]",
        "states: [Pass]",
        "demo/workflow.yaml:42:14: error: 'Pass' cannot be a custom state: it must be a new name of letters and digits",
    ),
    (
        "max-visits-range",
        W,
        "max_visits: 3",
        "max_visits: 0",
        "demo/workflow.yaml:22:13: error: max_visits must be between 1 and 100",
    ),
    (
        "steps-per-job-range",
        W,
        "max_visits: 3",
        "max_visits: 3\nsteps_per_job: 0",
        "demo/workflow.yaml:23:16: error: steps_per_job must be between 1 and 100",
    ),
    (
        "datasets-per-job-range",
        W,
        "max_visits: 3",
        "max_visits: 3\ndatasets_per_job: 1001",
        "demo/workflow.yaml:23:19: error: datasets_per_job must be between 1 and 1000",
    ),
    (
        "undeclared-choice",
        W,
        "max_visits: 3",
        "max_visits: 3\nundeclared: tarball",
        "demo/workflow.yaml:23:13: error: 'undeclared' must be one of keep, tar, remove, not 'tarball' "
        "(did you mean 'tar'?)",
    ),
    (
        "retain-duration",
        W,
        "max_visits: 3",
        "max_visits: 3\nretain: soon",
        "demo/workflow.yaml:23:9: error: cannot read duration 'soon': use e.g. '10m', '6h', '1d'",
    ),
    (
        "output-escapes-workdir",
        W,
        "    outputs: [data.txt, runs.log]\n    retries: 1",
        "    outputs: [../data.txt, runs.log]\n    retries: 1",
        "demo/workflow.yaml:31:15: error: outputs of step 'Generate' must stay inside the work dir",
    ),
    (
        "dead-end-state",
        W,
        "states: [Warning]",
        "states: [Warning, Odd]",
        "demo/validation/transitions.yaml:29:7: error: dead end: 'CheckMeta:Odd' has no transition in "
        "demo/validation/transitions.yaml",
    ),
    (
        "bad-step-name",
        W,
        "  Regrid:\n",
        "  Re-grid:\n",
        "demo/workflow.yaml:43:3: error: step name 'Re-grid' must be a letter then letters, digits or _",
    ),
    (
        "split-graph-key",
        T,
        "Regrid:Ready:",
        "Regrid-Ready:",
        "demo/transitions.yaml:25:1: error: key 'Regrid-Ready' is not of the form Step:State",
    ),
    (
        "not-utf8",
        S,
        None,
        b"project:\n  DEMO: \xff\xfe\n",
        "demo/dataset_spec.yaml:2:1: error: not valid UTF-8 text",
    ),
    (
        "levels-not-list",
        W,
        "      levels:\n",
        "      levels: 3\n      old_levels:\n",
        "demo/workflow.yaml:11:15: error: 'levels' must be a list, not integer",
    ),
]


def _apply(wf: Path, file: str, old, new) -> None:
    p = wf / file
    if old is None:
        p.write_bytes(new if isinstance(new, bytes) else new.encode())
        return
    text = p.read_text()
    assert old in text, f"fixture drift: {old!r} not in {file}"
    p.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(demo: Path, case):
    _, file, old, new, expected = case
    _apply(demo, file, old, new)
    before = tree_snapshot(demo)
    r = padocc("compile", "demo", cwd=demo.parent)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.splitlines() == [expected]
    assert "Traceback" not in r.stderr
    assert tree_snapshot(demo) == before  # nothing written, not even .padocc/
    assert not (demo / ".padocc").exists() and not (demo / "Snakefile").exists()


def test_failed_compile_keeps_previous_build(demo: Path):
    compile_wf(demo)
    before = tree_snapshot(demo)
    _apply(demo, W, "max_visits: 3", "max_visit: 3")
    r = padocc("compile", str(demo))
    assert r.returncode == 2
    after = tree_snapshot(demo)
    del after["workflow.yaml"], before["workflow.yaml"]
    assert after == before


def test_catalogue_is_wide_enough():
    assert len(CASES) >= 15
