"""Inputs known only later (issue 9, item 6): workflows/fanout over real Snakemake cycles.

Cycle 1 splits the granules; each Split lists its parts in work/<granule>/parts.txt.
The compile of cycle 2 reads those listings (`lists: - file: "work/{parent}/parts.txt"`)
and adds one child dataset per part, which then runs Process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import (
    compile_wf,
    final_states,
    fresh_copy,
    padocc,
    pending_count,
    snakemake,
    tree_snapshot,
)

ROWS = 2  # lines per part, as workflow.yaml passes to the Split step


@pytest.fixture
def fanout(tmp_path: Path) -> Path:
    return fresh_copy("fanout", tmp_path / "fanout")


def expected_children(wf: Path) -> dict[str, int]:
    """Child id -> the sum its Process must write, worked out from the data files."""
    out = {}
    for g in ("g1", "g2", "g3"):
        nums = [int(x) for x in (wf / "data" / f"{g}.txt").read_text().split()]
        for i in range(0, len(nums), ROWS):
            out[f"{g}.p{i // ROWS + 1}"] = sum(nums[i : i + ROWS])
    return out


def dataset_ids(wf: Path) -> list[str]:
    r = padocc("datasets", str(wf))
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def stat_counts(wf: Path) -> dict[str, int]:
    return {f.name: f.read_text().count("STAT:") for f in sorted((wf / "status").glob("*.status"))}


def test_fanout_over_cycles(fanout: Path):
    wf = fanout
    parents = ["g1", "g2", "g3"]
    children = expected_children(wf)
    assert len(children) == 6

    # Cycle 1: no listing exists yet (zero matches of the glob are fine): parents only.
    r = compile_wf(wf)
    assert "warning" not in r.stderr  # the children's route is checked already, not warned about
    assert pending_count(wf) == 3
    assert dataset_ids(wf) == parents
    snakemake(wf)
    assert final_states(wf) == {g: "FANOUT:Pass" for g in parents}
    assert not any((wf / "work" / c).exists() for c in children)
    for g in parents:
        listed = (wf / "work" / g / "parts.txt").read_text().split()
        assert listed == [c.split(".", 1)[1] + ".txt" for c in children if c.startswith(g + ".")]
    # `padocc datasets` reads the listings now, before the next compile.
    assert dataset_ids(wf) == parents + list(children)

    # Cycle 2: the compile adds one child per listed part; they run Process.
    compile_wf(wf)
    assert pending_count(wf) == 6
    r = padocc("datasets", "--keys", str(wf))
    keys = dict(line.split("\t") for line in r.stdout.splitlines())
    assert keys == {**{g: "granule" for g in parents}, **{c: "part" for c in children}}
    snakemake(wf)
    states = final_states(wf)
    assert states == {ds: "FANOUT:Pass" for ds in [*parents, *children]}
    for c, total in children.items():
        assert (wf / "work" / c / "result.txt").read_text() == f"sum={total}\n"
        assert "Process" in (wf / "status" / f"{c}.status").read_text()
        assert "Split" not in (wf / "status" / f"{c}.status").read_text()

    # Cycle 3: nothing is pending, and Snakemake changes nothing.
    compile_wf(wf)
    assert pending_count(wf) == 0
    before = tree_snapshot(wf / "status")
    snakemake(wf)
    assert tree_snapshot(wf / "status") == before

    # A parent that lists a new part later gets that child in the next cycle, and
    # nothing else runs again.
    (wf / "work" / "g2" / "p3.txt").write_text("5\n6\n")
    (wf / "work" / "g2" / "parts.txt").write_text("p1.txt\np2.txt\np3.txt\n")
    counts = stat_counts(wf)
    compile_wf(wf)
    assert pending_count(wf) == 1
    snakemake(wf)
    assert final_states(wf)["g2.p3"] == "FANOUT:Pass"
    assert (wf / "work" / "g2.p3" / "result.txt").read_text() == "sum=11\n"
    after = stat_counts(wf)
    assert {k: v for k, v in after.items() if k != "g2.p3.status"} == counts


GLOB = 'file: "work/{parent}/parts.txt"'
W = "workflow.yaml"

# (case, file edited, old, new, listing written first or None, the exact stderr line)
BAD = [
    (
        "glob-escapes",
        W,
        GLOB,
        'file: "../{parent}/parts.txt"',
        None,
        "fanout/workflow.yaml:17:13: error: a dataset list glob must stay inside the workflow "
        "directory, not '../{parent}/parts.txt'",
    ),
    (
        "glob-absolute",
        W,
        GLOB,
        'file: "/tmp/{parent}/parts.txt"',
        None,
        "fanout/workflow.yaml:17:13: error: a dataset list must be a path relative to the "
        "workflow directory, not '/tmp/{parent}/parts.txt'",
    ),
    (
        "id-unknown-facet",
        W,
        'id: "{parent}.{part}"',
        'id: "{parent}.{prt}"',
        None,
        "fanout/workflow.yaml:19:11: error: id template names unknown facet 'prt' "
        "(did you mean 'part'?)",
    ),
    (
        "pattern-facet-from-path",
        W,
        GLOB,
        'file: "work/{part}/parts.txt"',
        None,
        "fanout/workflow.yaml:18:16: error: 'pattern' sets facet 'part', which 'file' sets already",
    ),
    (
        "pattern-facet-twice",
        W,
        'pattern: "{part}.txt"',
        'pattern: "{part}.{part}"',
        None,
        "fanout/workflow.yaml:18:16: error: pattern names facet 'part' twice",
    ),
    (
        "file-placeholder-not-a-name",
        W,
        GLOB,
        'file: "work/{par ent}/parts.txt"',
        None,
        "fanout/workflow.yaml:17:13: error: 'file' placeholder '{par ent}' must name a facet: "
        "letters, digits and _",
    ),
    (
        "id-without-pattern",
        W,
        '      pattern: "{part}.txt"\n',
        "",
        None,
        "fanout/workflow.yaml:18:7: error: 'id' needs a 'pattern' that reads facets from each line",
    ),
    (
        "facets-not-plain",
        W,
        "facets: {kind: part}",
        "facets: {kind: [a, b]}",
        None,
        "fanout/workflow.yaml:20:22: error: facet 'kind' of a dataset list must be a plain value",
    ),
    (
        "unknown-key",
        W,
        'id: "{parent}',
        'ids: "{parent}',
        None,
        "fanout/workflow.yaml:19:7: error: unknown key 'ids' in dataset list (did you mean 'id'?)",
    ),
    (
        "plain-file-missing",  # only a glob may match nothing
        W,
        "file: granules.txt",
        "file: granule.txt",
        None,
        "fanout/granule.txt: error: file not found",
    ),
    (
        "listing-line-off-pattern",
        None,
        None,
        None,
        "p1.txt\np2.dat\n",
        "fanout/work/g1/parts.txt:2:1: error: line 'p2.dat' does not match pattern '{part}.txt'",
    ),
    (
        "listing-bad-id",
        None,
        None,
        None,
        "  p;1.txt\n",
        "fanout/work/g1/parts.txt:1:3: error: dataset id 'g1.p;1' is not allowed: use letters, "
        "digits and _ . + = - (not first), no '..', at most 240 characters",
    ),
    (
        "listing-twice",
        None,
        None,
        None,
        "p1.txt\n# again\np1.txt\n",
        "fanout/work/g1/parts.txt:3:1: error: dataset id 'g1.p1' is listed twice "
        "(first from fanout/work/g1/parts.txt)",
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_list_source(fanout: Path, case):
    _, file, old, new, listing, line = case
    wf = fanout
    if file is not None:
        text = (wf / file).read_text()
        assert old in text
        (wf / file).write_text(text.replace(old, new, 1))
    if listing is not None:
        (wf / "work" / "g1").mkdir(parents=True)
        (wf / "work" / "g1" / "parts.txt").write_text(listing)
    r = padocc("compile", "fanout", cwd=wf.parent)
    assert (r.returncode, r.stderr) == (2, line + "\n")
    assert not (wf / "Snakefile").exists()
