"""`padocc graph`: the compiled transition graph as Graphviz DOT and SVG."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import compile_wf, padocc

from compiler.render.graphdot import dot_str, graph_dot

DEMO_DOT = """\
digraph "DEMO" {
  rankdir=TB;
  graph [fontname="Helvetica", fontsize=12];
  node [shape=box, style="rounded,filled", fillcolor="#f4f6fb", fontname="Helvetica"];
  edge [fontname="Helvetica", fontsize=10];
  "start" [label="DEMO:Ready", shape=oval];
  "end:Fail" [label="Fail", shape=doublecircle];
  "end:Pass" [label="Pass", shape=doublecircle];
  subgraph "cluster_DEMO" {
    label="DEMO";
    "DEMO/Generate" [label="Generate"];
    "DEMO/Regrid" [label="Regrid"];
    "DEMO/Publish" [label="Publish"];
    subgraph "cluster_VALIDATION" {
      label="VALIDATION";
      "VALIDATION/CheckTime" [label="CheckTime"];
      "VALIDATION/FixTime" [label="FixTime"];
      "VALIDATION/CheckMeta" [label="CheckMeta"];
    }
  }
  "start" -> "DEMO/Generate";
  "DEMO/Generate" -> "end:Fail" [label="Fail"];
  "DEMO/Generate" -> "VALIDATION/CheckTime" [label="Pass"];
  "DEMO/Publish" -> "end:Fail" [label="Fail"];
  "DEMO/Publish" -> "end:Pass" [label="Pass"];
  "DEMO/Regrid" -> "end:Fail" [label="Fail"];
  "DEMO/Regrid" -> "DEMO/Publish" [label="Pass"];
  "VALIDATION/CheckMeta" -> "end:Fail" [label="Fail"];
  "VALIDATION/CheckMeta" -> "DEMO/Regrid" [label="Pass [default]\\nWarning [default]"];
  "VALIDATION/CheckMeta" -> "DEMO/Publish" [label="Pass [ocean-mon]\\nWarning [ocean-mon]"];
  "VALIDATION/CheckTime" -> "VALIDATION/FixTime" [label="Fail"];
  "VALIDATION/CheckTime" -> "VALIDATION/CheckMeta" [label="Pass"];
  "VALIDATION/FixTime" -> "end:Fail" [label="Fail"];
  "VALIDATION/FixTime" -> "VALIDATION/CheckTime" [label="Pass"];
}
"""


def need_dot() -> str:
    exe = shutil.which("dot")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Graphviz's dot is missing: .ci/run installs it")
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    return exe


def test_demo_graph_as_dot(demo: Path):
    compile_wf(demo)
    r = padocc("graph", str(demo))
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == DEMO_DOT
    # Graphviz reads it back
    exe = need_dot()
    c = subprocess.run(
        [exe, "-Tcanon"], input=r.stdout, capture_output=True, text=True, check=False
    )
    assert c.returncode == 0, c.stderr


def test_demo_graph_as_svg_with_counts(demo: Path, tmp_path: Path):
    need_dot()
    compile_wf(demo)
    out = tmp_path / "g.svg"
    r = padocc("graph", str(demo), "--format", "svg", "--counts", "-o", str(out))
    assert (r.returncode, r.stderr, r.stdout) == (0, "", "")
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    # nothing has run: all 36 datasets stand at the entry
    assert ">DEMO:Ready</text>" in svg and ">36</text>" in svg
    for step in ("Generate", "CheckTime", "FixTime", "CheckMeta", "Regrid", "Publish"):
        assert f">{step}</text>" in svg


def test_graph_without_a_build_is_one_line(tmp_path: Path):
    r = padocc("graph", str(tmp_path))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        f"{tmp_path}/.padocc/current/manifest.json: error: no compiled workflow here "
        "(run `padocc compile` first)\n"
    )


def test_no_name_or_key_can_break_out_of_a_dot_string():
    for text in ['a"b', "a\\", 'x"; "evil" -> "y', "line\nbreak", '\\"', "{}[];"]:
        s = dot_str(text)
        assert s[0] == s[-1] == '"' and "\n" not in s
        body = s[1:-1].replace("\\\\", "").replace('\\"', "")
        assert '"' not in body
    graph = {
        "root": "W", "entry": "W/W:Ready", "subs": [{"name": "W", "parent": None}],
        "table": {"W/W:Ready": {"": {"kind": "run", "sub": "W", "step": "S"}},
                  "W/S:Pass": {'k"ey': {"kind": "final", "state": "Pass"},
                               "": {"kind": "final", "state": "Fail"}}},
    }  # fmt: skip
    text = graph_dot(graph, 'W"; x')
    assert 'digraph "W\\"; x" {' in text and '[label="Pass [k\\"ey]"]' in text
    exe = shutil.which("dot")
    if exe:
        c = subprocess.run(
            [exe, "-Tcanon"], input=text, capture_output=True, text=True, check=False
        )
        assert c.returncode == 0, c.stderr


def test_datasm_graphs(tmp_path: Path):
    """datasm's shipped graphs (E3SM-Project/datasm 18eb7f4, datasm/workflows/**/
    transitions.yaml, as in workflows/datasm/graph) with their one real defect mended
    (top graph line 29, 'Validation:Ready'): every sub-workflow is a cluster inside
    its parent, and datasets part ways by routing key."""
    from conftest import fresh_copy

    wf = fresh_copy("datasm", tmp_path / "datasm")
    top = wf / "graph" / "transitions.yaml"
    lines = top.read_text().splitlines(keepends=True)
    assert lines[28].strip() == "- Validation:Ready"
    lines[28] = lines[28].replace("Validation:Ready", "VALIDATION:Ready")
    top.write_text("".join(lines))
    compile_wf(wf)
    r = padocc("graph", str(wf))
    assert (r.returncode, r.stderr) == (0, "")
    text = r.stdout
    # nesting: each cluster opens inside its parent's
    depth, parent_of, stack = 0, {}, []
    for line in text.splitlines():
        if line.strip().startswith("subgraph "):
            name = line.split('"')[1].removeprefix("cluster_")
            parent_of[name] = stack[-1] if stack else None
            stack.append(name)
            depth = max(depth, len(stack))
        elif line.strip() == "}" and stack:
            stack.pop()
    assert parent_of["WAREHOUSE"] is None
    for sub in ("EXTRACTION", "VALIDATION", "POSTPROCESS", "PUBLICATION", "CLEANUP"):
        assert parent_of[sub] == "WAREHOUSE", sub
    for sub in ("ATMValidation", "LNDVALIDATION", "MPASVALIDATION"):
        assert parent_of[sub] == "VALIDATION", sub
    assert depth == 3
    # the entry routes by key: climatologies go straight to postprocessing
    assert '"start" -> "POSTPROCESS/GenerateAtmMonClimo" [label="[atmos-climo-mon]"];' in text
    assert '"PUBLICATION/PublishEsgf" -> "end:Pass" [label="Pass"];' in text
    c = subprocess.run(
        [need_dot(), "-Tcanon"], input=text, capture_output=True, text=True, check=False
    )
    assert c.returncode == 0, c.stderr
