"""Staging (issue 9, item 3): inputs from a central store into the job's work dir, outputs
back to the store, with and without a shared filesystem. Real padocc-compile, real
Snakemake on the local profile; a second temp directory stands in for the central store.

The workflow: 2 datasets, 2 steps. Make reads its staged input raw/{dataset}/in.txt and
writes out/{dataset}.txt; Sum reads that and writes sum.txt. Both outputs are declared,
so both end in <store>/ST/<dataset>/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import compile_wf, final_states, padocc, snakemake

from compiler.core.statusfile import read_history

IDS = ["ST.a", "ST.b"]

WORKFLOW = """name: ST
datasets:
  lists: [ids.txt]
graph: transitions.yaml
defaults:
  resources: {{runtime: 5m, mem: 100M}}
  retries: 0
{site}
steps:
  Make:
    command: "mkdir -p out && tr a-z A-Z < raw/{{dataset}}/in.txt > out/{{dataset}}.txt"
    inputs: ["raw/{{dataset}}/in.txt"]
    outputs: ["out/*.txt"]
  Sum:
    command: "wc -c < out/{{dataset}}.txt > sum.txt"
    outputs: [sum.txt]
"""

GRAPH = """ST:Ready:
  default: [Make:Ready]
Make:Ready:
  default: [Make:Engaged]
Make:Pass:
  default: [Sum:Ready]
Make:Fail:
  default: [Fail]
Sum:Ready:
  default: [Sum:Engaged]
Sum:Pass:
  default: [Pass]
Sum:Fail:
  default: [Fail]
"""

SITES = {
    "link": "site: {shared_fs: true, stage: link, store: ../store}",
    "copy": "site: {shared_fs: true, stage: copy, store: ../store}",
    "plugin": "site: {shared_fs: false, store: ../store, storage_provider: fs}",
}


def make_wf(tmp_path: Path, site: str, ids: list[str] = IDS) -> tuple[Path, Path]:
    wf, store = tmp_path / "st", tmp_path / "store"
    wf.mkdir()
    (wf / "workflow.yaml").write_text(WORKFLOW.format(site=site))
    (wf / "transitions.yaml").write_text(GRAPH)
    (wf / "ids.txt").write_text("".join(i + "\n" for i in ids))
    for i in IDS:
        (store / "raw" / i).mkdir(parents=True)
        (store / "raw" / i / "in.txt").write_text(f"data of {i}\n")
    return wf, store


def final_params(wf: Path, ds: str, step: str) -> dict:
    """The params of the step's last STAT line (its outcome), with its state."""
    stats = read_history(wf / "status" / f"{ds}.status").stats
    last = next(st for st in reversed(stats) if st.step == step)
    return {**last.params, "state": last.state}


def run(wf: Path) -> None:
    compile_wf(wf)
    snakemake(wf)


@pytest.mark.parametrize("mode", ["link", "copy", "plugin"])
def test_staging_modes(tmp_path: Path, mode: str):
    wf, store = make_wf(tmp_path, SITES[mode])
    run(wf)
    assert final_states(wf) == {i: "ST:Pass" for i in IDS}
    for i in IDS:
        # Outputs of both steps are in the store, with the right contents.
        assert (store / "ST" / i / "out" / f"{i}.txt").read_text() == f"DATA OF {i.upper()}\n"
        assert (store / "ST" / i / "sum.txt").read_text().strip() == str(len(f"data of {i}\n"))
        made = sorted(str(p.relative_to(store / "ST" / i)) for p in (store / "ST" / i).rglob("*"))
        assert made == ["out", f"out/{i}.txt", "sum.txt"]
        # The input is in the work dir under its store name: a link to the store, or a copy.
        staged = wf / "work" / i / "raw" / i / "in.txt"
        assert staged.read_text() == f"data of {i}\n"
        if mode == "link":
            assert staged.is_symlink() and staged.resolve() == (store / "raw" / i / "in.txt")
        else:
            assert not staged.is_symlink()
        # Recorded on the STAT lines and in the job log.
        make = final_params(wf, i, "Make")
        assert (make["state"], make["staged_in"], make["staged_out"]) == ("Pass", "1", "1")
        assert final_params(wf, i, "Sum")["staged_out"] == "1"
        assert "staged_in" not in final_params(wf, i, "Sum")  # Sum declares no inputs
        logs = "".join(p.read_text() for p in (wf / ".padocc" / "logs").rglob("*.log"))
        how = "storage plugin fs" if mode == "plugin" else mode
        assert f"padocc: staged in raw/{i}/in.txt <- {store}/raw/{i}/in.txt ({how})" in logs
        assert f"padocc: staged out sum.txt -> {store}/ST/{i}/sum.txt ({how})" in logs
    if mode == "plugin":  # the plugin's StorageProvider was set up (it makes its prefix)
        assert (wf / ".snakemake" / "storage" / "padocc").is_dir()
    # No temp files left beside the outputs in the store.
    assert not [p for p in store.rglob("*") if "padocc-tmp" in p.name]


@pytest.mark.parametrize("mode", ["link", "plugin"])
def test_missing_input_or_output_fails_the_step(tmp_path: Path, mode: str):
    """ST.b's input is not in the store; ST.a's Sum makes total.txt, not its sum.txt."""
    wf, store = make_wf(tmp_path, SITES[mode])
    (store / "raw" / "ST.b" / "in.txt").unlink()
    text = (wf / "workflow.yaml").read_text()
    (wf / "workflow.yaml").write_text(
        text.replace("> sum.txt", "> $([ {dataset} = ST.a ] && echo total || echo sum).txt")
    )
    run(wf)
    assert final_states(wf) == {"ST.a": "ST:Fail", "ST.b": "ST:Fail"}

    p = final_params(wf, "ST.b", "Make")
    assert p["problem"] == f"stage-in: input {store}/raw/ST.b/in.txt is not in the store"
    assert p["state"] == "Fail" and p["exit"] == "-1"  # the command never ran
    assert p["staged_in"] == "0" and "staged_out" not in p
    assert not (wf / "work" / "ST.b" / "out").exists()
    assert not (store / "ST" / "ST.b").exists()  # a failed step stages nothing out

    p = final_params(wf, "ST.a", "Sum")
    assert p["problem"] == "stage-out: declared output sum.txt was not made"
    assert p["state"] == "Fail" and p["exit"] == "0" and p["staged_out"] == "0"
    assert (store / "ST" / "ST.a" / "out" / "ST.a.txt").exists()  # Make's output got there


def compile_error(tmp_path: Path, site: str) -> str:
    wf, _ = make_wf(tmp_path, site)
    r = padocc("compile", "st", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    return r.stderr.strip()


def test_store_must_exist_when_a_step_has_inputs(tmp_path: Path):
    err = compile_error(tmp_path, "site: {shared_fs: true, store: ../nowhere}")
    assert err == (
        "st/workflow.yaml:8:32: error: site store '../nowhere' does not exist "
        "(step 'Make' stages its inputs from it)"
    )


def test_inputs_need_a_store(tmp_path: Path):
    err = compile_error(tmp_path, "")
    assert err == (
        "st/workflow.yaml:10:3: error: step 'Make' declares inputs, but the workflow's "
        "site: names no store to stage them from"
    )


def test_storage_provider_must_be_installed(tmp_path: Path):
    err = compile_error(
        tmp_path, "site: {shared_fs: false, store: ../store, storage_provider: fss}"
    )
    assert err == (
        "st/workflow.yaml:8:61: error: storage_provider 'fss' is not an installed Snakemake "
        "storage plugin (did you mean 'fs'?): pip install snakemake-storage-plugin-fss"
    )
