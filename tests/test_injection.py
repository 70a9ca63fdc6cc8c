"""Issue 17, security: no text from an input file (or the workflow directory's own name)
reaches the generated Snakefile unescaped. Every string field of every input kind is
given newlines, quotes, backslashes, braces, other line breaks, NUL and non-UTF-8
bytes; each is either refused at its line (exit 2, one located line, nothing written)
or compiles with the value intact. Then real Snakemake parses the Snakefile holding all
the accepted values at once, and the payload's Python never runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PROFILES, fresh_copy, tree_snapshot

CANARY = "CANARY"
# Python that would run if it escaped a comment or a string literal of the Snakefile.
ESCAPE = f"\nimport os; os.system('touch {CANARY}')\n#"
HOSTILE = " \"dq\" 'sq' \\ \\n \r\x0c\x0b\x1c\x85\u2028\u2029\t\u00e9 end"


def payload(command: bool, tag: str = "x") -> str:
    """In a command, '{{'/'}}' are literal braces and '${...}' is the shell's."""
    braces = "{{}} {{x}} ${HOME:-/}" if command else "{} {x} {"
    return tag + HOSTILE + " " + braces + ESCAPE


GATES = {
    "gates": {
        "g.one": {
            "axis": "serial",
            "maxrange": 10,
            "want": {"low": 0, "high": 20},
            "command": "{python} -c pass {gate} {low} {high}",
        },
        "g.two": {
            "axis": "serial",
            "maxrange": 10,
            "want": {"low": 0, "high": 20},
            "command": "{python} -c pass {gate} {low} {high}",
            "preconditions": [{"gate": "g.one", "map": {"hook": "hook.py:same"}}],
        },
    }
}
HOOK = "def same(low, high):\n    return low, high\n"

KEY = object()  # the last element of a path: rename this key rather than set its value
# (file, path to the string, True: a shell command, None: names a file, False: other)
FIELDS = [
    ("workflow.yaml", ("name",), False),
    ("workflow.yaml", ("routing_key",), False),
    ("workflow.yaml", ("graph",), None),
    ("workflow.yaml", ("gates",), None),
    ("workflow.yaml", ("datasets", "spec"), None),
    ("workflow.yaml", ("datasets", "walks", 0, "name"), False),
    ("workflow.yaml", ("datasets", "walks", 0, "root"), False),
    ("workflow.yaml", ("datasets", "walks", 0, "id"), False),
    ("workflow.yaml", ("datasets", "walks", 0, "levels", 0, "facet"), False),
    ("workflow.yaml", ("defaults", "resources", "mem"), False),
    ("workflow.yaml", ("defaults", "resources", "runtime"), False),
    ("workflow.yaml", ("defaults", "resources", "slurm_partition"), False),
    ("workflow.yaml", ("defaults", "resources", "slurm_account"), False),
    ("workflow.yaml", ("steps", "Generate", "command"), True),
    ("workflow.yaml", ("steps", "Publish", "command"), True),
    ("workflow.yaml", ("steps", "Generate", "outputs", 0), False),
    ("workflow.yaml", ("steps", "CheckMeta", "states", 0), False),
    ("workflow.yaml", ("steps", "Publish", KEY), False),
    ("dataset_spec.yaml", ("project", "DEMO", "atmos", "variables", 0), False),
    ("dataset_spec.yaml", ("project", "DEMO", "atmos", "experiments", "hist", "ens", 0), False),
    ("dataset_spec.yaml", ("project", "DEMO", "ocean", "experiments", "ssp", KEY), False),
    ("transitions.yaml", ("VALIDATION:Pass", "ocean-mon", KEY), False),
    ("transitions.yaml", ("Generate:Fail", "default", 0), False),
    ("transitions.yaml", ("Publish:Ready", KEY), False),
    ("validation/transitions.yaml", ("CheckMeta:Warning", "default", 0), False),
    ("gates.yaml", ("gates", "g.one", KEY), False),
    ("gates.yaml", ("gates", "g.one", "command"), True),
    ("gates.yaml", ("gates", "g.one", "axis"), False),
    ("gates.yaml", ("gates", "g.one", "want", "low"), False),
    ("gates.yaml", ("gates", "g.two", "preconditions", 0, "gate"), False),
    ("gates.yaml", ("gates", "g.two", "preconditions", 0, "map", "hook"), False),
]
LOCATED = re.compile(r"[^\n]+:\d+:\d+: error: [^\n]+\n\Z")
# A missing file is reported at that file (the loader's choice), not at the line naming it.
DIAGNOSTIC = re.compile(r":\d+:\d+: (error|warning): ")
MISSING = re.compile(r"[^\n]+: error: file not found\n\Z")


def base_workflow(dst: Path) -> Path:
    """The demo, with two small gates (one with a map hook) beside its steps."""
    wf = fresh_copy("demo", dst)
    doc = yaml.safe_load((wf / "workflow.yaml").read_text())
    doc["gates"] = "gates.yaml"
    doc["defaults"]["resources"].update(slurm_partition="main", slurm_account="padocc")
    (wf / "workflow.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    (wf / "gates.yaml").write_text(yaml.safe_dump(GATES, allow_unicode=True))
    (wf / "hook.py").write_text(HOOK)
    return wf


def put(wf: Path, name: str, path: tuple, value: str) -> None:
    doc = yaml.safe_load((wf / name).read_text())
    cur = doc
    for p in path[:-2] if path[-1] is KEY else path[:-1]:
        cur = cur[p]
    if path[-1] is KEY:
        cur[value] = cur.pop(path[-2])
    else:
        cur[path[-1]] = value
    (wf / name).write_text(yaml.safe_dump(doc, allow_unicode=True, width=10**6))


def strings(doc) -> list[str]:
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, dict):
        return [s for k, v in doc.items() for s in (*strings(k), *strings(v))]
    if isinstance(doc, list):
        return [s for v in doc for s in strings(v)]
    return []


def compiled_strings(wf: Path) -> list[str]:
    """Every string the build holds: the manifest, and each dataset's facets."""
    build = wf / ".padocc" / "current"
    out = strings(json.loads((build / "manifest.json").read_text()))
    for line in (build / "datasets.tsv").read_text().splitlines():
        ds, key, facets = line.split("\t")
        out += [ds, key, *strings(json.loads(facets))]
    return out


def canaries(*roots: Path) -> list[Path]:
    return [p for r in roots for p in r.rglob(f"*{CANARY}*") if p.name == CANARY]


def compile_and_judge(
    wf: Path, cwd: Path, value: str, where: str, names_file: bool = False
) -> bool:
    """True if compiled with `value` intact; False if refused in the one right form."""
    before = tree_snapshot(wf)
    # (a non-UTF-8 directory name comes back in the output as the bytes it is)
    r = subprocess.run(
        [sys.executable, "-m", "compiler", "compile", str(wf)],
        cwd=cwd, capture_output=True, text=True, errors="surrogateescape", timeout=300, check=False,
    )  # fmt: skip
    assert "Traceback" not in r.stderr, r.stderr
    if r.returncode == 2:
        assert LOCATED.match(r.stderr) or names_file and MISSING.match(r.stderr), (where, r.stderr)
        assert tree_snapshot(wf) == before, where
        return False
    assert r.returncode == 0, (where, r.stderr)
    intact(wf, value, where)
    return True


def intact(wf: Path, value: str, where: str) -> None:
    """Wherever the build holds the value (some fields are only labels), it is whole."""
    if HOSTILE not in value:  # a directory name: the build never names its directory
        # (paths in it are relative, so that a moved copy acts on itself)
        assert not any(value in s for s in compiled_strings(wf)), (where, "directory named")
        return
    head = value[: value.index(HOSTILE)]
    held = [
        s
        for s in compiled_strings(wf)
        if head + HOSTILE in s and not DIAGNOSTIC.search(s)  # messages quote it escaped
    ]
    assert all(value in s for s in held), (where, "value not intact", held)


def snakemake_parses(wf: Path, cwd: Path) -> None:
    """Real Snakemake reads the Snakefile: a dry run and its linter."""
    for extra in (["-n"], ["--lint"]):
        r = subprocess.run(
            [sys.executable, "-m", "snakemake", "--profile", str(PROFILES / "local"),
             "-s", str(wf / "Snakefile"), "-d", str(wf), *extra],
            cwd=cwd, capture_output=True, text=True, errors="surrogateescape", timeout=600,
            check=False,
        )  # fmt: skip
        out = r.stdout + r.stderr
        assert "SyntaxError" not in out, out[-3000:]
        # (--lint: Snakemake's own logger cannot print a non-UTF-8 path; its lints
        # about conda environments are no concern of ours)
        if extra == ["-n"]:
            assert r.returncode == 0 and "Traceback" not in out, out[-3000:]


def test_every_input_string_is_refused_or_escaped(tmp_path: Path):
    accepted = []
    for i, (name, path, command) in enumerate(FIELDS):
        value = payload(bool(command), f"f{i}")
        wf = base_workflow(tmp_path / f"f{i}" / "wf")
        put(wf, name, path, value)
        if compile_and_judge(wf, tmp_path / f"f{i}", value, f"{name} {path}", command is None):
            accepted.append((name, path, value))
        assert canaries(tmp_path) == [], f"{name} {path}"
    # Some fields must take such text (commands hold any shell), or this proves nothing.
    assert [p for _, p, _ in accepted if p[-1] == "command"], accepted

    # All the accepted values at once, in a directory whose own name is hostile.
    wf = base_workflow(tmp_path / "all" / ("wf" + HOSTILE + " {} {x}" + ESCAPE))
    for name, path, value in accepted:
        put(wf, name, path, value)
    assert compile_and_judge(wf, tmp_path / "all", str(wf), "hostile directory name")
    for name, path, value in accepted:
        intact(wf, value, f"{name} {path}")
    snakemake_parses(wf, tmp_path / "all")
    assert canaries(tmp_path) == []


@pytest.mark.parametrize(
    "name", ["workflow.yaml", "dataset_spec.yaml", "transitions.yaml", "gates.yaml"]
)
def test_non_utf8_bytes_in_a_file_are_refused_at_their_line(tmp_path: Path, name: str):
    # (a raw NUL byte is the loader's own case, tested with the other malformed files)
    for i, bad in enumerate((b"\xff\xfe", b"\xc3")):
        wf = base_workflow(tmp_path / f"{i}" / "wf")
        text = (wf / name).read_bytes()
        # right after the first key of the file
        at = text.index(b":") + 1
        (wf / name).write_bytes(text[:at] + b"x" + bad + text[at:])
        assert not compile_and_judge(wf, tmp_path, "", name)


def test_a_non_utf8_directory_name_compiles_and_parses(tmp_path: Path):
    root = tmp_path / os.fsdecode(b"dir\xff\xfe")
    wf = base_workflow(root / ("wf" + ESCAPE))
    assert compile_and_judge(wf, tmp_path, str(wf), "non-UTF-8 directory name")
    snakemake_parses(wf, tmp_path)
    assert canaries(tmp_path) == []


HOOKED = """\
gates:
  up:
    axis: serial
    maxrange: 10
    command: "{python} -c pass {gate} {low} {high}"
  down:
    axis: serial
    maxrange: 10
    want: {low: 0, high: 10}
    command: "{python} -c pass {gate} {low} {high}"
    preconditions:
      - gate: up
        map: {hook: "hook.py:same"}
"""
LOAD = "wf/gates.yaml:13:21: error: hook file 'hook.py' failed to load: "
CALL = "wf/gates.yaml:12:15: error: hook 'hook.py:same' of the precondition on 'up' failed for [0, 10): "


def hooked_workflow(tmp_path: Path) -> Path:
    """tmp_path/wf: two gates, `down` asking `up` through the map hook hook.py:same
    (the test writes hook.py)."""
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "workflow.yaml").write_text("name: HOOK\ngates: gates.yaml\n")
    (wf / "gates.yaml").write_text(HOOKED)
    return wf


def test_a_hook_that_exits_is_an_error_at_its_line_never_the_end_of_the_compiler(
    tmp_path: Path,
):
    """A hook's sys.exit (any code, 0 too) or KeyboardInterrupt, at import or when
    called, is exit 2 and one located line: padocc-compile never exits 0 without
    having published a build (under cron, `padocc-compile && snakemake` would run
    the old Snakefile)."""
    wf = hooked_workflow(tmp_path)
    call = "def same(low, high):\n    {}\n"
    cases = [
        ("import sys\nsys.exit(0)\n", LOAD + "it called sys.exit(0)"),
        ("import sys\nsys.exit()\n", LOAD + "it called sys.exit(None)"),
        ("raise SystemExit(3)\n", LOAD + "it called sys.exit(3)"),
        ("raise SystemExit('bye')\n", LOAD + "it called sys.exit('bye')"),
        ("raise KeyboardInterrupt\n", LOAD + "KeyboardInterrupt"),
        ("import sys\n" + call.format("sys.exit(0)"), CALL + "it called sys.exit(0)"),
        (call.format("raise KeyboardInterrupt"), CALL + "KeyboardInterrupt"),
        (call.format("raise SystemExit"), CALL + "it called sys.exit(None)"),
    ]
    compiler = Path(sys.executable).parent / "padocc-compile"
    for hook, line in cases:
        (wf / "hook.py").write_text(hook)
        before = tree_snapshot(wf)
        r = subprocess.run(
            [str(compiler), "wf"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        assert (r.returncode, r.stderr.splitlines(), r.stdout) == (2, [line], ""), hook
        assert tree_snapshot(wf) == before, hook
    (wf / "hook.py").write_text(call.format("return low, high"))
    r = subprocess.run(
        [str(compiler), "wf"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert r.returncode == 0 and (wf / "Snakefile").is_file(), r.stderr


def test_two_gate_names_that_would_make_one_rule_are_refused(tmp_path: Path):
    """A gate name becomes a rule name ('.' -> '_'): 'a.b' and 'a_b' would give a
    Snakefile with one rule twice, which Snakemake refuses only at run time."""
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "workflow.yaml").write_text("name: TWO\ngates: gates.yaml\n")
    gate = {"axis": "serial", "maxrange": 10, "want": {"low": 0, "high": 10}}
    gates = {
        "gates": {"a.b": {**gate, "command": "true {low}"}, "a_b": {**gate, "command": "true"}}
    }
    (wf / "gates.yaml").write_text(yaml.safe_dump(gates, sort_keys=False))
    before = tree_snapshot(wf)
    r = subprocess.run(
        [sys.executable, "-m", "compiler", "compile", "wf"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (r.returncode, r.stderr.splitlines()) == (
        2,
        [
            "wf/gates.yaml:9:3: error: gate name 'a_b' and gate 'a.b' make the same "
            "Snakefile rule 'gate_a_b' ('.' becomes '_'): rename one"
        ],
    )
    assert tree_snapshot(wf) == before
