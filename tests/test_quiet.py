"""--quiet for cron: nothing printed when all is well (so MAILTO mails only trouble),
everything when a run fails; a cycle config's notify wins over the workflow's."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import fresh_copy, padocc
from test_notify import workflow


def test_padocc_run_quiet_prints_nothing_when_all_is_well(tmp_path: Path):
    """Datasets that fail or are quarantined are the notify command's business: the
    run itself went well."""
    wf = workflow(tmp_path / "wf", json.dumps({"command": "true"}))
    for _ in range(2):  # a cycle with work, then a no-op one
        r = padocc("run", str(wf), "--quiet", timeout=600)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert "ONE:Pass" in (wf / "status" / "ONE.ok.status").read_text()
    r = padocc("run", str(wf), timeout=600)  # without it: what the cycle did
    assert "nothing to run: Snakemake not started" in r.stdout


def test_padocc_run_quiet_shows_everything_when_the_run_fails(tmp_path: Path):
    wf = workflow(tmp_path / "wf", json.dumps({"command": "true"}), kinds=("slow", "loop"))
    r = padocc("run", str(wf), "--quiet", "--timeout", "1", timeout=600)
    assert r.returncode == 1
    out = r.stdout.splitlines()
    assert out[0].startswith("compiled ONE: 2 datasets (2 pending)")
    assert out[-1] == "snakemake stopped at the 1 s deadline"


def test_a_quiet_cycle_tells_through_the_cycle_configs_notify(tmp_path: Path):
    wf = fresh_copy("flock", tmp_path / "flock")
    (wf / "groups" / "bad_c.txt").write_text("OBS_sst_bad\n")
    conf = wf / "shepard.yaml"
    conf.write_text(conf.read_text() + 'notify: {command: "cat >> told.jsonl"}\n')
    with open(wf / "workflow.yaml", "a") as f:
        f.write('notify: {command: "cat >> workflow-told.jsonl"}\n')
    for _ in range(2):
        r = padocc("cycle", "--conf", str(conf), "--quiet", timeout=600)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    (ev,) = [json.loads(x) for x in (wf / "told.jsonl").read_text().splitlines()]
    assert (ev["event"], ev["dataset"], ev["state"]) == ("fail", "OBS_sst_bad", "Fail")
    assert not (wf / "workflow-told.jsonl").exists()
    assert (wf / "complete" / "cmip_a").is_dir()  # the rest of the flock went on


def test_a_bad_notify_in_a_cycle_config_is_one_line(tmp_path: Path):
    wf = fresh_copy("flock", tmp_path / "flock")
    conf = wf / "shepard.yaml"
    n = len(conf.read_text().splitlines())
    conf.write_text(conf.read_text() + "notify: {command: x, timeout: 2h}\n")
    r = padocc("cycle", "--conf", str(conf), "--quiet", timeout=600)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"{conf}:{n + 1}:31: error: notify timeout must be between 1s and 1h\n"
    assert not (wf / "status").exists()
