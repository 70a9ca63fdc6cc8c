"""Hostile data (issue 8): injected shell, odd bytes and path tricks are rejected
with one clear line, or passed through quoted; a canary proves nothing ran, and no
file lands outside the workflow directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import fresh_copy, padocc, snakemake

NOW = "2026-01-01T01:00:00Z"


def payloads(canary: Path) -> list[str]:
    c = str(canary)
    return [
        f"a;touch {c}",
        f"$(touch {c})",
        f"`touch {c}`",
        f"x' ; touch {c} ; '",
        f'x" ; touch {c} ; "',
        f"a b && touch {c}",
        f"-rf {c}",
        "../../../../tmp/escape",
        f"{c}",
        "a\\nb",
    ]


def outside_files(tmp_path: Path, wf: Path) -> list[Path]:
    """Every file under tmp_path but outside the workflow directory."""
    return [p for p in tmp_path.rglob("*") if p.is_file() and wf not in p.parents]


def _demo(tmp_path: Path) -> Path:
    return fresh_copy("demo", tmp_path / "demo")


@pytest.mark.parametrize("i", range(10))
def test_hostile_dataset_ids_rejected(tmp_path: Path, i: int):
    wf = _demo(tmp_path)
    canary = tmp_path / "CANARY"
    bad = payloads(canary)[i]
    text = (wf / "workflow.yaml").read_text()
    text = text.replace("routing_key:", "  lists: [ids.txt]\nrouting_key:", 1)
    (wf / "workflow.yaml").write_text(text)
    (wf / "ids.txt").write_text(f"# hostile\n{bad}\n")
    r = padocc("compile", "demo", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("demo/ids.txt:2:"), r.stderr
    assert "is not allowed" in lines[0]
    assert not canary.exists() and not (wf / ".padocc").exists()
    assert outside_files(tmp_path, wf) == []


def test_non_utf8_and_newline_ids_rejected(tmp_path: Path):
    wf = _demo(tmp_path)
    text = (
        (wf / "workflow.yaml")
        .read_text()
        .replace("routing_key:", "  lists: [ids.txt]\nrouting_key:", 1)
    )
    (wf / "workflow.yaml").write_text(text)
    (wf / "ids.txt").write_bytes(b"GOOD\nA\xffB\n")
    r = padocc("compile", "demo", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == "demo/ids.txt:2:1: error: not valid UTF-8 text"


HOSTILE_WF = """name: HOSTILE
datasets:
  spec: spec.yaml
  walks:
    - name: h
      root: vals
      levels:
        - {facet: n}
      id: "H.{n}"
  facet_maps:
    n: {NOTES}
routing_key: "k"
graph: transitions.yaml
defaults:
  resources: {runtime: 5m, mem: 100M}
  retries: 0
steps:
  Echo:
    command: "printf '%s' {note} > note.bin; printf '%s\\\\n' {dataset} {n} >> args.txt"
"""
TRANSITIONS = """HOSTILE:Ready:
  default: [Echo:Ready]
Echo:Ready:
  default: [Echo:Engaged]
Echo:Pass:
  default: [Pass]
Echo:Fail:
  default: [Fail]
"""


def test_hostile_facet_values_reach_commands_quoted(tmp_path: Path):
    """Facet values are data, not syntax: a real run hands each one to the command as
    one word, byte for byte, and no injected command runs."""
    import json

    canary = tmp_path / "CANARY"
    values = payloads(canary) + ["multi\nline", "tab\there", "$HOME", "*", "~", "%s %n"]
    wf = tmp_path / "hostile"
    wf.mkdir()
    spec = {"vals": [f"v{i}" for i in range(len(values))]}
    (wf / "spec.yaml").write_text(json.dumps(spec))
    notes = {f"v{i}": {"note": v} for i, v in enumerate(values)}
    (wf / "workflow.yaml").write_text(HOSTILE_WF.replace("{NOTES}", json.dumps(notes)))
    (wf / "transitions.yaml").write_text(TRANSITIONS)
    r = padocc("compile", str(wf))
    assert r.returncode == 0, r.stderr
    snakemake(wf)
    for i, v in enumerate(values):
        work = wf / "work" / f"H.v{i}"
        assert (work / "note.bin").read_text() == v, (i, v)
        assert (work / "args.txt").read_text() == f"H.v{i}\nv{i}\n"
        assert ":Echo:Pass:" in (wf / "status" / f"H.v{i}.status").read_text()
    assert not canary.exists()
    assert outside_files(tmp_path, wf) == []


@pytest.mark.parametrize(
    "args",
    [
        ("make", "hmi.lev1", "$(touch {c})", "2010-05-01T06:00:00Z"),
        ("make", "hmi.lev1", "2010-05-01T00:00:00Z", "`touch {c}`"),
        ("make", "../../{c}", "2010-05-01T00:00:00Z", "2010-05-01T06:00:00Z"),
        ("make", "hmi.lev1;touch {c}", "2010-05-01T00:00:00Z", "2010-05-01T06:00:00Z"),
        ("make", "hmi.lev1", "-1", "--now"),
        ("check", "hmi.lev1", "2010-05-01T00:00:00Z\n; touch {c}", "2010-05-01T06:00:00Z"),
        ("make", "hmi.lev1", "2010-05-01T00:00:00Z", "2010-05-01T06:00:00Z", "--key", "../../{c}"),
        (
            "make",
            "hmi.lev1",
            "2010-05-01T00:00:00Z",
            "2010-05-01T06:00:00Z",
            "--key",
            "$(touch {c})",
        ),
    ],
)
def test_hostile_gate_parameters(tmp_path: Path, args):
    wf = tmp_path / "hmi"
    fresh_copy("hmi", wf)
    canary = tmp_path / "CANARY"
    argv = [a.replace("{c}", str(canary)) for a in args]
    r = padocc("gate", *argv, "-C", str(wf), "--now", NOW, timeout=300)
    assert "Traceback" not in r.stdout + r.stderr
    assert r.returncode != 0, r.stdout + r.stderr
    if "--key" in argv:  # hmi.lev1 is not keyed: a key is refused, never used
        assert r.returncode == 2 and r.stderr.splitlines() == [
            "padocc gate: error: gate 'hmi.lev1' is not keyed: --key does not apply"
        ]
        assert not any("CANARY" in str(p) for p in tmp_path.rglob("*"))
    assert not canary.exists()
    assert outside_files(tmp_path, wf) == []
    # nothing made for a rejected request
    assert not (wf / "gates").exists() or not list((wf / "gates").rglob("*.done"))


def test_status_file_symlink_is_never_followed(tmp_path: Path):
    """A status file replaced by a link out of the workflow: the job fails loudly and
    writes nothing through it."""
    from compiler.core.statusfile import Stat, StatusWriteError, append_stats, utc_stamp

    target = tmp_path / "outside.txt"
    target.write_text("precious\n")
    st = tmp_path / "wf" / "status"
    st.mkdir(parents=True)
    (st / "D.status").symlink_to(target)
    with pytest.raises(StatusWriteError, match="it is a symbolic link"):
        append_stats(st / "D.status", "D", [Stat(utc_stamp(), "W", "W", "A", "Pass", {})])
    assert target.read_text() == "precious\n"


KEYED_WF = {
    "workflow.yaml": 'name: AR\ndatasets:\n  lists: [{file: regions.txt, pattern: "AR.{region}"}]\n'
    "gates: gates.yaml\n",
    "regions.txt": "AR.11100\nAR.11101\n",
    "gates.yaml": """gates:
  sharp:
    axis: time
    maxrange: 2h
    keyed: true
    command: "echo {region} >> {workflow_dir}/runs.log"
""",
}


def test_hostile_keys_of_a_keyed_gate(tmp_path: Path):
    """A key names a dataset of the build, or the request is refused with one line
    (exit 2) before anything reaches Snakemake, a path or a command."""
    wf = tmp_path / "ar"
    wf.mkdir()
    for name, text in KEYED_WF.items():
        (wf / name).write_text(text)
    canary = tmp_path / "CANARY"
    low, high = "2010-05-02T00:00:00Z", "2010-05-02T02:00:00Z"
    for key in [*payloads(canary), "AR.11100\n; touch x", "AR.99999"]:
        for action in ("make", "check"):
            r = padocc("gate", action, "sharp", low, high, f"--key={key}", "-C", str(wf),
                       "--now", NOW, timeout=300)  # fmt: skip
            assert r.returncode == 2 and "Traceback" not in r.stderr, (key, r.stderr)
            lines = r.stderr.splitlines()  # one line, the key shown escaped
            assert len(lines) == 1 and lines[0].startswith(
                f"padocc gate: error: gate 'sharp' has no dataset {key!r}"
            ), (key, r.stderr)
    r = padocc("gate", "make", "sharp", low, high, "--key=AR.1110", "-C", str(wf), "--now", NOW)
    assert r.stderr.strip().endswith("(did you mean 'AR.11101'?)"), r.stderr
    assert not canary.exists() and not (wf / "runs.log").exists()
    assert not (wf / "gates").exists() and not (wf / "status").exists()
    assert outside_files(tmp_path, wf) == []
    # A real key still works.
    r = padocc("gate", "make", "sharp", low, high, "--key", "AR.11101", "-C", str(wf),
               "--now", NOW, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert (wf / "runs.log").read_text() == "11101\n"
