"""What Snakemake users see of a generated Snakefile (issue 15): it holds no path of the
machine it was compiled on, `snakemake --lint` finds nothing in it but the one lint the
Snakefile explains, and its header shows the routing table. Real compiles, real
Snakemake."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import compile_wf, fresh_copy

SOFTWARE_LINT = "Specify a conda environment or container for each rule."


def lint(wf: Path) -> set[tuple[str, str]]:
    """(what, lint title) for each lint `snakemake --lint` prints (its `json` form prints
    text too in this Snakemake), e.g. ("rule advance", SOFTWARE_LINT)."""
    r = subprocess.run(
        ["timeout", "-k", "10", "300", sys.executable, "-m", "snakemake", "--lint",
         "-s", str(wf / "Snakefile"), "-d", str(wf)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr[-3000:]  # 1: something linted
    found, what = set(), ""
    for line in r.stderr.splitlines():
        head = re.match(r"Lints for (snakefile \S+|rule \S+) ", line + " ")
        if head:
            what = head.group(1).split(" (")[0]
        elif line.startswith("    * "):
            found.add((what, line[6:].rstrip(":")))
    assert (r.returncode == 1) == bool(found), r.stderr[-3000:]
    return found


@pytest.mark.parametrize("name", ["demo", "hmi"])
def test_snakemake_lint_finds_only_the_explained_lint(name: str, tmp_path: Path):
    wf = fresh_copy(name, tmp_path / name)
    compile_wf(wf)
    text = (wf / "Snakefile").read_text()
    # No path of this machine: not the workflow dir, not the Python that compiled it.
    assert str(wf) not in text and sys.executable not in text
    found = lint(wf)
    rules = {what for what, _ in found}
    assert rules and all(r.startswith("rule ") for r in rules), found
    assert found == {(rule, SOFTWARE_LINT) for rule in rules}
    # ... and that one lint is explained in the Snakefile, above the rules.
    assert "`snakemake --lint` asks every rule below for a conda environment" in text


def header_routes(text: str) -> dict[str, list[tuple[str, str, str, str]]]:
    """graph file -> [(Step:State, routing key, next, line)] as the header shows them."""
    out: dict[str, list[tuple[str, str, str, str]]] = {}
    rows = None
    at = ""
    for line in text.split("# Routing:", 1)[1].split("\n# Steps.", 1)[0].splitlines():
        sec = re.match(r"#   (\S+)  \((\S+)\)$", line)
        row = re.match(r"#     (\S*)\s+(\S+)\s+-> (\S+(?: \S+)?)\s*(line \d+|\(implied\))?$", line)
        if sec:
            rows = out.setdefault(sec.group(2), [])
        elif row and rows is not None:
            at = row.group(1) or at
            rows.append((at, row.group(2), row.group(3), row.group(4) or ""))
    return out


@pytest.mark.parametrize("name", ["demo", "fanout"])
def test_the_header_shows_the_routing_table_with_its_lines(name: str, tmp_path: Path):
    wf = fresh_copy(name, tmp_path / name)
    compile_wf(wf)
    text = (wf / "Snakefile").read_text()
    m = json.loads((wf / ".padocc" / "current" / "manifest.json").read_text())
    files = {s["name"]: s["file"] for s in m["graph"]["subs"]}
    shown = header_routes(text)
    assert set(shown) == set(files.values())
    seen = set()
    for file, rows in shown.items():
        sub = next(s for s, f in files.items() if f == file)
        source = (wf / file).read_text().splitlines()
        for at, key, to, where in rows:
            if where.startswith("line "):  # the line that holds this Step:State key
                assert source[int(where[5:]) - 1].strip().startswith(f"{at}:"), (file, at)
            act = m["graph"]["table"][f"{sub}/{at}"]["" if key == "default" else key]
            if act["kind"] == "run":
                here = act["sub"] == sub
                want = f"run {act['step']}" if here else f"run {act['sub']}/{act['step']}"
            else:
                want = act["state"] if act["kind"] == "final" else "stuck (quarantined)"
            assert to == want, (file, at, key)
            seen.add((f"{sub}/{at}", "" if key == "default" else key))
    # Every position and every routing key the jobs route by is shown.
    assert seen == {(pos, k) for pos, acts in m["graph"]["table"].items() for k in acts}


def test_dry_run_names_each_first_step_with_its_real_resources(tmp_path: Path):
    """Slot 1 of every job runs the step its status file says: that step's own rule,
    so `snakemake -n` (and Snakemake's log, and the SLURM job comment, which name the
    rule) show the step, and its resources are known before anything ran. Later
    slots are not in the dry run: they exist only once a round has ended."""
    wf = fresh_copy("demo", tmp_path / "demo")
    compile_wf(wf)
    bdir = wf / ".padocc" / "current"
    m = json.loads((bdir / "manifest.json").read_text())
    firsts = {
        r.split("\t")[0]: r.split("\t")[3] for r in (bdir / "pending.tsv").read_text().splitlines()
    }
    slots = sum(int(r.split("\t")[1]) for r in (bdir / "jobs.tsv").read_text().splitlines())
    r = subprocess.run(
        ["timeout", "-k", "10", "300", sys.executable, "-m", "snakemake", "-n",
         "-s", str(wf / "Snakefile"), "-d", str(wf)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1], re.M))
    want = {s: str(n) for s, n in Counter(firsts.values()).items()}
    assert {k: v for k, v in stats.items() if k in m["steps"]} == want
    # Later rounds are added by the round checkpoint once the round before has ended:
    # -n shows the checkpoint, and no job that might run no step.
    assert stats["end_round"] == "1" and "advance" not in stats
    assert slots >= len(firsts)  # the jobs' budgets: what the old design submitted
    for step in want:
        res = m["steps"][step]["resources"]
        blocks = re.findall(rf"^rule {step}:\n(?:    .*\n)*?    resources: (.*)$", out, re.M)
        assert len(blocks) == int(want[step])
        for line in blocks:
            assert "<TBD>" not in line
            assert f"mem_mb={res['mem_mb']}," in line
            assert f"runtime={res['runtime'] * m['steps'][step]['chain']}," in line
