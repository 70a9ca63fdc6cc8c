"""Campaigns (issue 9, items 1 and 5): a submission's run directory, the final step
after a failed run (BPS finalJob.whenRun), retention clean-up, bad campaign files.
Real padocc, real Snakemake (local profile), on small copies of the shipped workflows."""

from __future__ import annotations

import fcntl
import importlib.metadata
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from conftest import fresh_copy, padocc, tree_snapshot

from compiler.commands import campaign, clean
from compiler.core.manifestio import load_manifest

NOW = "2026-01-01T01:00:00Z"
STAMP = "20260101T010000Z"
SMALL_SPEC = """project:
  DEMO:
    atmos:
      variables: [tas, pr]
      experiments:
        hist: {ens: [r1]}
    ocean:
      variables: [tos]
      experiments:
        hist: {ens: [r1]}
"""
LEV1 = [f"gates/hmi.lev1/{a}__{b}.done" for a, b in (
    ("20100501T000000Z", "20100501T060000Z"), ("20100501T060000Z", "20100501T120000Z"),
    ("20100501T180000Z", "20100502T000000Z"))]  # fmt: skip


def small_demo(dst: Path) -> Path:
    """Three datasets: the Warning chain (tas), the fix loop (pr), and ocean tos."""
    fresh_copy("demo", dst)
    (dst / "dataset_spec.yaml").write_text(SMALL_SPEC)
    return dst


def tiny(dst: Path, command: str = "exit 0", retain: str = "") -> Path:
    """One dataset, one step: the cheapest real run (a failing one with 'exit 1')."""
    dst.mkdir(parents=True)
    (dst / "ids.txt").write_text("T.one\n")
    (dst / "transitions.yaml").write_text(
        "TINY:Ready:\n  default: [Work:Ready]\nWork:Ready:\n  default: [Work:Engaged]\n"
        "Work:Pass:\n  default: [Pass]\nWork:Fail:\n  default: [Fail]\n"
    )
    (dst / "workflow.yaml").write_text(
        "name: TINY\ndatasets:\n  lists: [ids.txt]\ngraph: transitions.yaml\n"
        + (f"retain: {retain}\n" if retain else "")
        + f"steps:\n  Work:\n    command: {json.dumps(command)}\n"
    )
    return dst


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def recompile(wf: Path) -> None:
    """A compile in its own process: a compile holds its build while its process lives
    (for the run that follows it), and clean keeps a build in use."""
    r = padocc("compile", "-q", str(wf))
    assert r.returncode == 0, r.stderr


def submit(camp: Path, *extra: str):
    return padocc("campaign", "submit", str(camp), "--now", NOW, *extra, timeout=300)


# ---------------------------------------------------------------- a complete run directory


@pytest.fixture(scope="module")
def done_run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("campaign")
    demo = small_demo(root / "demo")
    hmi = root / "hmi"
    fresh_copy("hmi", hmi)
    camp = write(
        root / "campaigns" / "c1.yaml",
        """name: c1
workflows:
  - dir: ../demo
    facets: {realm: atmos, variable: [tas, "p*"]}
  - dir: ../hmi
    gates:
      - {gate: hmi.lev1, low: "2010-05-01T00:00:00Z", high: "2010-05-02T00:00:00Z"}
final:
  command: "echo {campaign} {outcome} > {run_dir}/summary.txt"
""",
    )
    r = submit(camp)
    return {"root": root, "demo": demo, "hmi": hmi, "camp": camp, "r": r,
            "run": root / "campaigns" / "runs" / f"c1-{STAMP}"}  # fmt: skip


def test_campaign_run_leaves_a_complete_run_directory(done_run: dict):
    r, run, demo, hmi = done_run["r"], done_run["run"], done_run["demo"], done_run["hmi"]
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in run.iterdir()) == [
        "environment.json", "final.log", "logs", "outcome.json", "resolved.json", "snakefiles",
        "submission.yaml", "summary.txt"]  # fmt: skip
    assert (run / "submission.yaml").read_bytes() == done_run["camp"].read_bytes()

    resolved = json.loads((run / "resolved.json").read_text())
    assert resolved["campaign"]["name"] == "c1" and resolved["campaign"]["submitted"] == NOW
    assert resolved["campaign"]["workflows"][0]["facets"] == {
        "realm": ["atmos"],
        "variable": ["tas", "p*"],
    }
    w_demo, w_hmi = resolved["workflows"]
    assert [w_demo["label"], w_hmi["label"]] == ["demo", "hmi"]
    for w, wf in ((w_demo, demo), (w_hmi, hmi)):
        rnd = w["rounds"][0]
        build = wf / ".padocc" / "builds" / rnd["build"]
        # The build's file names paths inside the workflow relative to it; read back,
        # they are the resolved model's absolute ones.
        assert rnd["manifest"] == load_manifest(str(build / "manifest.json"))
        # The Snakefile copies are the generated ones, byte for byte.
        assert (run / "snakefiles" / w["label"] / "Snakefile").read_bytes() == (
            build / "Snakefile"
        ).read_bytes()
    # The exact targets: the filtered datasets (ocean tos is not one), the range's chunks.
    demo_t = w_demo["rounds"][0]["targets"]
    assert sorted(d["id"] for d in demo_t["datasets"]) == [
        "DEMO.atmos.hist.r1.pr",
        "DEMO.atmos.hist.r1.tas",
    ]
    pending = (
        demo / ".padocc" / "builds" / w_demo["rounds"][0]["build"] / "pending.tsv"
    ).read_text()
    assert sorted(ln.split("\t")[0] for ln in pending.splitlines()) == sorted(
        d["id"] for d in demo_t["datasets"]
    )
    # Snakemake's one dataset target: the end of the build's last round of slots.
    b = w_demo["rounds"][0]["build"]
    assert demo_t["gate_chunks"] == [] and demo_t["snakemake"] == [
        f".padocc/run/{b}/.rounds/end.json"
    ]
    hmi_t = w_hmi["rounds"][0]["targets"]
    assert hmi_t["datasets"] == [] and hmi_t["gate_chunks"] == LEV1 == hmi_t["snakemake"]

    env = json.loads((run / "environment.json").read_text())
    assert env["python"]["version"] == sys.version and env["python"]["executable"] == sys.executable
    assert env["packages"]["snakemake"] == importlib.metadata.version("snakemake")
    assert env["environment"]["PATH"] == os.environ["PATH"]

    outcome = json.loads((run / "outcome.json").read_text())
    assert outcome["outcome"] == "success"
    assert {k: v["result"] for k, v in outcome["workflows"]["demo"]["datasets"].items()} == {
        "DEMO.atmos.hist.r1.pr": "pass", "DEMO.atmos.hist.r1.tas": "pass"}  # fmt: skip
    assert outcome["workflows"]["hmi"]["gate_chunks"] == dict.fromkeys(LEV1, "done")
    assert outcome["final"]["ran"] and outcome["final"]["exit"] == 0
    assert (run / "summary.txt").read_text() == "c1 success\n"
    assert "Finished jobid" in (run / "logs" / "demo.snakemake.log").read_text()
    # Only what the campaign chose ran.
    assert sorted(p.name for p in (demo / "status").glob("*.status")) == [
        "DEMO.atmos.hist.r1.pr.status", "DEMO.atmos.hist.r1.tas.status"]  # fmt: skip
    assert (
        sorted(str(p.relative_to(hmi)) for p in (hmi / "gates" / "hmi.lev1").rglob("*.done"))
        == LEV1
    )


def test_an_existing_run_directory_is_never_overwritten(done_run: dict):
    run, demo = done_run["run"], done_run["demo"]
    before = tree_snapshot(run)
    builds = sorted(os.listdir(demo / ".padocc" / "builds"))
    r = submit(done_run["camp"])
    assert r.returncode == 2
    assert (
        r.stderr == f"{run}: error: run directory already exists; nothing was run or overwritten\n"
    )
    assert tree_snapshot(run) == before
    assert sorted(os.listdir(demo / ".padocc" / "builds")) == builds  # not even compiled


# ---------------------------------------------------------------- the final step


@pytest.mark.parametrize(
    "when_run, failed, final, ran",
    [
        ("always", True, "echo final {campaign} {outcome}", True),
        ("failure", True, "echo final {campaign} {outcome}", True),
        ("success", True, "echo final {campaign} {outcome}", False),
        # A run with nothing to do succeeds (no Snakemake); a final step that fails
        # still makes the exit status 1. SUCCESS: BPS's spelling.
        ("SUCCESS", False, "echo final {campaign} {outcome}; exit 3", True),
    ],
)
def test_final_step_follows_when_run(tmp_path: Path, when_run, failed, final, ran):
    if failed:  # a real run whose one dataset ends in Fail
        tiny(tmp_path / "tiny", "exit 1")
        wf = "tiny"
    else:
        fresh_copy("hmi", tmp_path / "hmi")
        wf = "hmi\n    gates: []"
    text = f"name: fin\nworkflows:\n  - dir: {wf}\n"
    text += f"final:\n  command: {json.dumps(final)}\n  when_run: {when_run}\n"
    camp = write(tmp_path / "c.yaml", text)
    r = submit(camp)
    assert r.returncode == 1, r.stdout + r.stderr
    run = tmp_path / "runs" / f"fin-{STAMP}"
    outcome = json.loads((run / "outcome.json").read_text())
    assert outcome["outcome"] == ("failure" if failed else "success")
    if failed:
        assert outcome["workflows"]["tiny"]["datasets"]["T.one"]["result"] == "fail"
        assert outcome["workflows"]["tiny"]["rounds"][0]["snakemake_exit"] == 0
    else:
        assert outcome["workflows"]["hmi"]["rounds"][0]["snakemake_exit"] is None
    assert outcome["final"]["ran"] is ran
    if ran:
        assert (run / "final.log").read_text() == f"final fin {outcome['outcome']}\n"
        assert outcome["final"]["exit"] == (0 if failed else 3)
    else:
        assert not (run / "final.log").exists()
        assert outcome["final"]["reason"] == "when_run is success and the run's outcome is failure"


# ---------------------------------------------------------------- retention clean-up

DAY = 86400


def age(path: Path, days: float) -> None:
    """Set the mtime of path and everything below it to `days` ago."""
    t = time.time() - days * DAY
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (t, t), follow_symlinks=False)


def clean_run(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    dirs = tuple(a for a in args if not a.startswith("-"))
    opts = clean.CleanOptions(dirs, runs=tuple(a[7:] for a in args if a.startswith("--runs=")),
                              dry_run="--dry-run" in args)  # fmt: skip
    rc = clean.clean(opts, out, err)
    return rc, out.getvalue() + err.getvalue()


def test_clean_removes_only_what_is_past_retention(tmp_path: Path):
    wf = tiny(tmp_path / "tiny", retain="10d")
    camp = write(tmp_path / "c.yaml", "name: cl\nretain: 20d\nworkflows:\n  - dir: tiny\n")
    assert submit(camp).returncode == 0
    runs = tmp_path / "runs"
    first = runs / f"cl-{STAMP}"
    for name in ("cl-old", "cl-recent"):
        shutil.copytree(first, runs / name)
    (runs / "not-a-run").mkdir()
    old_build = os.readlink(wf / ".padocc" / "current").split("/")[-1]
    recompile(wf)
    current = os.readlink(wf / ".padocc" / "current").split("/")[-1]
    assert current != old_build

    write(wf / ".padocc" / "slurm-logs" / "r1" / "rule_advance" / "b_x_1" / "7.log", "failed\n")
    # Everything 15 days old (past the workflow's 10d, within the campaign's 20d) ...
    for p in (wf / ".padocc", wf / ".snakemake", wf / "status", runs):
        age(p, 15)
    age(runs / "cl-old", 30)  # ... but one run directory, past 20d too
    age(runs / "not-a-run", 30)
    fresh = write(wf / ".padocc" / "logs" / "fresh.log", "new\n")
    fresh_slurm = write(wf / ".padocc" / "slurm-logs" / "r2" / "rule_advance" / "8.log", "new\n")
    status = tree_snapshot(wf / "status")
    assert status

    before = {str(p) for p in tmp_path.rglob("*")}
    rc, text = clean_run(str(wf), f"--runs={runs}", "--dry-run")
    assert rc == 0 and {str(p) for p in tmp_path.rglob("*")} == before
    assert f"would remove build {wf}/.padocc/builds/{old_build}" in text

    rc, text = clean_run(str(wf), f"--runs={runs}")
    assert rc == 0, text
    lines = text.splitlines()
    assert f"removed build {wf}/.padocc/builds/{old_build}" in lines
    assert f"removed run directory {runs / 'cl-old'}" in lines
    assert any(ln.startswith("removed 1 job log under") for ln in lines), text
    assert any(ln.startswith("removed 1 Snakemake log under") for ln in lines), text
    assert f"removed 1 SLURM log under {wf}/.padocc/slurm-logs/r1/" in lines, text
    assert [p for p in (wf / ".padocc" / "slurm-logs").rglob("*") if p.is_file()] == [fresh_slurm]
    assert not (wf / ".padocc" / "slurm-logs" / "r1").exists()
    assert sorted(os.listdir(wf / ".padocc" / "builds")) == [current]  # old though it is
    assert not (wf / ".padocc" / "run" / old_build).exists()
    assert list((wf / ".snakemake" / "log").iterdir()) == []
    assert [p for p in (wf / ".padocc" / "logs").rglob("*") if p.is_file()] == [fresh]
    assert sorted(os.listdir(runs)) == [f"cl-{STAMP}", "cl-recent", "not-a-run"]
    assert tree_snapshot(wf / "status") == status

    # A live run holds the run lock: old builds stay until it ends.
    recompile(wf)
    age(wf / ".padocc" / "builds" / current, 15)
    fd = os.open(wf / ".padocc" / "run.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        rc, text = clean_run(str(wf))
        assert f"{wf}: a run holds .padocc/run.lock: 1 old build kept until it ends" in text
        assert current in os.listdir(wf / ".padocc" / "builds")
    finally:
        os.close(fd)
    rc, text = clean_run(str(wf))
    assert f"removed build {wf}/.padocc/builds/{current}" in text.splitlines()


def test_clean_without_retention_removes_nothing(tmp_path: Path):
    wf = tiny(tmp_path / "tiny")
    recompile(wf)
    recompile(wf)
    age(wf / ".padocc", 400)
    before = tree_snapshot(wf)
    r = padocc("clean", str(wf))
    assert r.returncode == 0
    assert r.stdout == f"{wf}: no retention set (workflow 'retain:' or --retain): nothing removed\n"
    assert tree_snapshot(wf) == before
    r = padocc("clean", str(wf), "--retain", "30d")
    assert r.returncode == 0 and r.stdout.startswith("removed build "), r.stdout + r.stderr


# ---------------------------------------------------------------- bad campaign files

BAD = [
    (
        "unknown-key",
        "name: b\nworkflow:\n  - dir: ../demo\n",
        "campaigns/b.yaml:2:1: error: unknown key 'workflow' in campaign (did you mean 'workflows'?)",
    ),
    (
        "missing-workflows",
        "name: b\n",
        "campaigns/b.yaml:1:1: error: campaign is missing required key 'workflows'",
    ),
    (
        "workflow-key",
        "name: b\nworkflows:\n  - dir: ../demo\n    facet: {realm: atmos}\n",
        "campaigns/b.yaml:4:5: error: unknown key 'facet' in campaign workflow (did you mean 'facets'?)",
    ),
    (
        "no-workflow-dir",
        "name: b\nworkflows:\n  - dir: ../nowhere\n",
        "campaigns/b.yaml:3:10: error: no workflow.yaml in '../nowhere' (relative to the campaign file)",
    ),
    (
        "listed-twice",
        "name: b\nworkflows:\n  - dir: ../demo\n  - {dir: ../demo/, label: again}\n",
        "campaigns/b.yaml:4:5: error: workflow directory 'demo' is listed twice (first at line 3)",
    ),
    (
        "when-run",
        "name: b\nworkflows: [{dir: ../demo}]\nfinal: {command: 'true', when_run: sucess}\n",
        "campaigns/b.yaml:3:36: error: 'when_run' must be one of always, success, failure, not 'sucess' "
        "(did you mean 'success'?)",
    ),
    (
        "final-placeholder",
        "name: b\nworkflows: [{dir: ../demo}]\nfinal: {command: 'echo {rundir}'}\n",
        "campaigns/b.yaml:3:18: error: final command names unknown placeholder 'rundir' (did you mean 'run_dir'?)",
    ),
    (
        "bad-name",
        "name: b/c\nworkflows: [{dir: ../demo}]\n",
        "campaigns/b.yaml:1:7: error: campaign name 'b/c' must be letters, digits, '_' and '-'",
    ),
    (
        "unknown-facet",
        "name: b\nworkflows:\n  - dir: ../demo\n    facets: {realn: atmos}\n",
        "campaigns/b.yaml:4:14: error: workflow DEMO has no facet 'realn' (did you mean 'realm'?)",
    ),
    (
        "keeps-nothing",
        "name: b\nworkflows:\n  - dir: ../demo\n    facets: {realm: land}\n",
        "campaigns/b.yaml:4:5: error: the dataset filter keeps none of the 3 datasets of workflow DEMO",
    ),
    (
        "input-set-id",
        "name: b\nworkflows:\n  - dir: ../demo\n    input_set: ids.txt\n",
        "campaigns/ids.txt:2:3: error: dataset 'DEMO.atmos.hist.r9.tas' is not in workflow DEMO",
    ),
    (
        "unknown-gate",
        "name: b\nworkflows:\n  - dir: ../hmi\n    gates: [{gate: hmi.lev, low: 1, high: 2}]\n",
        "campaigns/b.yaml:4:20: error: workflow HMI has no gate 'hmi.lev' (did you mean 'hmi.lev1'?)",
    ),
    (
        "bad-low",
        "name: b\nworkflows:\n  - dir: ../hmi\n    gates: [{gate: hmi.lev1, low: may, high: 2}]\n",
        "campaigns/b.yaml:4:35: error: cannot read time 'may': use UTC like 2010-05-01, 2010-05-01T06:00 or 2010-05-01T06:00:00Z",
    ),
    (
        "bad-profile",
        "name: b\nprofile: nosuch\nworkflows:\n  - dir: ../demo\n",
        "campaigns/b.yaml:4:5: error: Snakemake profile 'nosuch' not found: not a directory, nor a shipped "
        "profile (local, slurm)",
    ),
]


@pytest.fixture(scope="module")
def bad_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    small_demo(root / "demo")
    fresh_copy("hmi", root / "hmi")
    write(root / "campaigns" / "ids.txt", "DEMO.atmos.hist.r1.tas\n  DEMO.atmos.hist.r9.tas\n")
    return root


@pytest.mark.parametrize("text, expected", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_campaign_file(bad_root: Path, monkeypatch, text: str, expected: str):
    monkeypatch.chdir(bad_root)
    write(bad_root / "campaigns" / "b.yaml", text)
    out, err = io.StringIO(), io.StringIO()
    rc = campaign.submit(campaign.CampaignOptions("submit", "campaigns/b.yaml", now=NOW), out, err)
    assert (rc, err.getvalue()) == (2, expected + "\n")
    assert not (bad_root / "campaigns" / "runs").exists()


def test_bad_campaign_file_from_the_command_line(bad_root: Path):
    write(bad_root / "campaigns" / "b.yaml", BAD[0][1])
    r = padocc("campaign", "submit", "campaigns/b.yaml", cwd=bad_root)
    assert (r.returncode, r.stderr) == (2, BAD[0][2] + "\n")


# ---------------------------------------------------------------- rounds


def test_datasets_with_work_left_get_another_round(tmp_path: Path):
    """One step per job and per cycle, two steps: a second round is compiled and run
    (Rubin: "repeat from step 5"), its Snakefile and targets saved before it runs."""
    wf = tiny(tmp_path / "tiny")
    (wf / "transitions.yaml").write_text(
        "TINY:Ready:\n  default: [Work:Ready]\nWork:Ready:\n  default: [Work:Engaged]\n"
        "Work:Pass:\n  default: [More:Ready]\nWork:Fail:\n  default: [Fail]\n"
        "More:Ready:\n  default: [More:Engaged]\nMore:Pass:\n  default: [Pass]\nMore:Fail:\n  default: [Fail]\n"
    )
    with open(wf / "workflow.yaml", "a") as f:
        f.write("  More:\n    command: 'true'\nmax_steps_per_cycle: 1\nsteps_per_job: 1\n")
    camp = write(tmp_path / "c.yaml", "name: rd\nworkflows:\n  - dir: tiny\n")
    r = submit(camp)
    assert r.returncode == 0, r.stdout + r.stderr
    run = tmp_path / "runs" / f"rd-{STAMP}"
    res = json.loads((run / "outcome.json").read_text())["workflows"]["tiny"]
    resolved = json.loads((run / "resolved.json").read_text())["workflows"][0]["rounds"]
    assert res["outcome"] == "success" and res["datasets"]["T.one"]["result"] == "pass"
    assert [x["round"] for x in res["rounds"]] == [x["round"] for x in resolved] == [1, 2]
    assert [x["build"] for x in res["rounds"]] == [x["build"] for x in resolved]
    assert [t["first"] for x in resolved for t in x["targets"]["datasets"]] == ["Work", "More"]
    build = wf / ".padocc" / "builds" / resolved[1]["build"] / "Snakefile"
    assert (
        run / "snakefiles" / "tiny" / "round-2" / "Snakefile"
    ).read_bytes() == build.read_bytes()
