"""Bad input an outside reviewer wrote without reading our other cases (issue 17):
each refusal is exit 2 with exactly one stderr line (tested exactly), no traceback,
and the workflow directory unchanged (snapshotted before and after)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import fresh_copy, padocc, tree_snapshot
from test_bad_input_more import edit, refused
from test_injection import CALL, LOAD, hooked_workflow

HMI_NOW = "2026-01-01T01:00:00Z"


def _no_traceback(r: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in r.stdout + r.stderr, r.stderr[-2000:]


def test_time_chunks_never_run_past_year_1_or_9999(tmp_path: Path):
    """A grid whose origin is not midnight has chunks that straddle 0001-01-01 and
    9999-12-31: they are cut at the first and last second a time can be written in,
    never a traceback (was: `ValueError: year 0 is out of range` from gaps, coverage,
    why, make; `year 10000` from a compile with a far --now)."""
    wf = fresh_copy("hmi", tmp_path / "hmi")
    edit(wf / "gates.yaml", 'origin: "2010-05-01T00:00:00Z"', 'origin: "2010-05-01T05:00:00Z"')
    assert padocc("compile", str(wf), "--now", HMI_NOW).returncode == 0
    lo, hi = "0001-01-01", "9999-12-31T23:59:59Z"

    def gate(*args: str) -> subprocess.CompletedProcess:
        r = padocc("gate", *args, "-C", str(wf), "--now", HMI_NOW, timeout=60)
        _no_traceback(r)
        return r

    r = gate("gaps", "hmi.lev1", lo, hi)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines()[0].startswith("0001-01-01T00:00:00Z ")
    assert r.stdout.splitlines()[-1].endswith(" 9999-12-31T23:59:59Z missing")
    r = gate("coverage", "hmi.lev1", lo, "0001-01-02")
    assert (r.returncode, r.stdout) == (0, "0001-01-01T00:00:00Z 0001-01-02T05:00:00Z missing\n")
    r = padocc("why", "-C", str(wf), "--now", HMI_NOW, "hmi.lev1", lo, hi)
    _no_traceback(r)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines()[0] == (
        "hmi.lev1 0001-01-01T00:00:00Z 9999-12-31T23:59:59Z: 14608237 chunks"
    )
    # The near-real-time gate's window at the last second there is: its last chunk
    # ends there too.
    r = padocc("compile", str(wf), "--now", "9999-12-31T23:59:59Z")
    _no_traceback(r)
    assert r.returncode == 0, r.stderr
    r = padocc("gate", "coverage", "hmi.nrt_LOS", "-C", str(wf), "--now", "9999-12-31T23:59:59Z")
    _no_traceback(r)
    assert (r.returncode, r.stdout) == (
        0,
        "9999-12-31T17:50:00Z 9999-12-31T23:59:59Z missing\n",
    )


def test_gate_make_refuses_a_bad_request_before_it_compiles(tmp_path: Path):
    """make and remake compile first; a request that makes no sense (LOW after HIGH,
    no LOW and HIGH, an unreadable --now) is refused before that compile writes a
    build, so the workflow is left as it was (was: a new build, then the refusal)."""
    wf = fresh_copy("hmi", tmp_path / "hmi")
    assert padocc("compile", str(wf), "--now", HMI_NOW).returncode == 0
    # A changed input, so that a compile would write a new build.
    edit(wf / "gates.yaml", "parallelOK: 2", "parallelOK: 3")
    before = tree_snapshot(wf)
    cases = [
        (
            ("make", "hmi.lev1", "2010-05-02", "2010-05-01"),
            "padocc gate: error: low 2010-05-02 is after high 2010-05-01",
        ),
        (
            ("remake", "hmi.synoptic", "2097", "2096"),
            "padocc gate: error: low 2097 is after high 2096",
        ),
        (("make", "hmi.lev1"), "padocc gate: error: 'make' needs LOW and HIGH"),
    ]
    for args, line in cases:
        refused(padocc("gate", *args, "-C", str(wf), "--now", HMI_NOW), line)
    refused(
        padocc(
            "gate",
            "make",
            "hmi.lev1",
            "2010-05-01",
            "2010-05-02",
            "-C",
            str(wf),
            "--now",
            "2026-02-30",
        ),
        "--now: error: cannot read time '2026-02-30': day is out of range for month",
    )
    assert tree_snapshot(wf) == before


# ------------------------------------------------------------ one compile, refused
# (id, workflow, file, old text, new text, the one stderr line); compiled as
# `padocc compile WF --now HMI_NOW` from the directory above the copy.
COMPILE = [
    (
        "parallelOK-huge",
        "hmi",
        "gates.yaml",
        "parallelOK: 2",
        "parallelOK: 100000000000000000000000",
        "hmi/gates.yaml:13:17: error: parallelOK must be between 1 and 10,000",
    ),
    (
        "parallelOK-zero",
        "hmi",
        "gates.yaml",
        "parallelOK: 2",
        "parallelOK: 0",
        "hmi/gates.yaml:13:17: error: parallelOK must be between 1 and 10,000",
    ),
    # The outside review's other cases, refused as they should be from the start:
    # kept here so that they stay so.
    (
        "tab-indent",
        "demo",
        "workflow.yaml",
        "  Regrid:\n",
        "\tRegrid:\n",
        "demo/workflow.yaml:43:1: error: invalid YAML: found character '\\t' that cannot "
        "start any token",
    ),
    (
        "nested-too-deeply",
        "demo",
        "dataset_spec.yaml",
        None,
        "project:\n  DEMO: " + "[" * 20000 + "]" * 20000 + "\n",
        "demo/dataset_spec.yaml: error: invalid YAML: nested too deeply",
    ),
    (
        "ten-mb-line",
        "demo",
        "transitions.yaml",
        None,
        "DEMO:Ready: " + "A" * 10_000_000,
        "demo/transitions.yaml:1:13: error: transitions of 'DEMO:Ready' must be a mapping, "
        "not string",
    ),
    (
        "spec-100-values-10-deep",
        "demo",
        "dataset_spec.yaml",
        None,
        "".join(
            f"x{k}: &x{k} {{"
            + ", ".join(f"v{i}: " + (f"*x{k - 1}" if k else "[]") for i in range(100))
            + "}\n"
            for k in range(10)
        )
        + "project:\n  DEMO: *x9\n",
        "demo/dataset_spec.yaml:3:5: error: YAML document expands to more than 1,000,000 "
        "values (aliases '*' repeat whole subtrees); write it out or split it",
    ),
    (
        "utf-16",
        "demo",
        "workflow.yaml",
        None,
        "name: DEMO\n".encode("utf-16"),
        "demo/workflow.yaml:1:1: error: not valid UTF-8 text",
    ),
    (
        "two-documents",
        "demo",
        "workflow.yaml",
        "    outputs: [published, runs.log]\n",
        "    outputs: [published, runs.log]\n---\nname: OTHER\n",
        "demo/workflow.yaml:50:1: error: invalid YAML: but found another document",
    ),
    (
        "cr-in-step-name",
        "demo",
        "workflow.yaml",
        "  Regrid:\n",
        '  "Reg\\rrid":\n',
        "demo/workflow.yaml:43:3: error: step name 'Reg\\rrid' must be a letter then letters, "
        "digits or _",
    ),
    (
        "rtl-override-in-facet",
        "demo",
        "dataset_spec.yaml",
        "ens: [r1, r2, r3]}\n        ssp",
        'ens: [r1, "r\\u202e2", r3]}\n        ssp',
        "demo/workflow.yaml:16:11: error: dataset id 'DEMO.atmos.hist.r\\u202e2.tas' is not "
        "allowed: use letters, digits and _ . + = - (not first), no '..', at most 240 "
        "characters",
    ),
    (
        "transition-without-target",
        "demo",
        "transitions.yaml",
        "Generate:Fail:\n  default:\n    - Fail",
        "Generate:Fail:\n  default:\n    - ",
        "demo/transitions.yaml:13:6: error: targets of 'Generate:Fail' for 'default' entries "
        "must be strings, not null",
    ),
    (
        "outputs-outside",
        "demo",
        "workflow.yaml",
        "outputs: [regridded.txt, runs.log]",
        "outputs: [../../../../etc/passwd, runs.log]",
        "demo/workflow.yaml:45:15: error: outputs of step 'Regrid' must stay inside the work dir",
    ),
    (
        "yaml-python-tag",
        "demo",
        "workflow.yaml",
        "max_visits: 3",
        "max_visits: !!python/object/apply:os.system ['touch CANARY']",
        "demo/workflow.yaml:22:13: error: 'max_visits' must be an integer, not list",
    ),
    (
        "maxrange-zero",
        "hmi",
        "gates.yaml",
        "maxrange: 1d\n    want",
        "maxrange: 0\n    want",
        "hmi/gates.yaml:19:15: error: maxrange must be positive, not '0'",
    ),
    (
        "step-a-microsecond",
        "hmi",
        "gates.yaml",
        "step: 45s",
        "step: 0.000001s",
        "hmi/gates.yaml:6:11: error: step must be positive, not '0.000001s'",
    ),
    (
        "february-30",
        "hmi",
        "gates.yaml",
        'want: {low: "2010-05-01T00:00:00Z"',
        'want: {low: "2026-02-30T00:00:00Z"',
        "hmi/gates.yaml:9:17: error: cannot read time '2026-02-30T00:00:00Z': day is out of "
        "range for month",
    ),
    (
        "time-zone-name",
        "hmi",
        "gates.yaml",
        'origin: "2010-05-01T00:00:00Z"',
        'origin: "2010-05-01T00:00:00 EST"',
        "hmi/gates.yaml:7:13: error: cannot read time '2010-05-01T00:00:00 EST': use UTC like "
        "2010-05-01, 2010-05-01T06:00 or 2010-05-01T06:00:00Z",
    ),
    (
        "window-negative",
        "hmi",
        "gates.yaml",
        "window: 6h",
        "window: -6h",
        "hmi/gates.yaml:53:60: error: cannot read duration '-6h': use e.g. '10m', '6h', '1d'",
    ),
    (
        "gap-reversed",
        "hmi",
        "gates.yaml",
        '- {low: "2010-05-01T12:00:00Z", high: "2010-05-01T18:00:00Z"}',
        '- {low: "2010-05-01T18:00:00Z", high: "2010-05-01T12:00:00Z"}',
        "hmi/gates.yaml:11:9: error: gap: low 2010-05-01T18:00:00Z is after high "
        "2010-05-01T12:00:00Z",
    ),
    (
        "own-precondition",
        "hmi",
        "gates.yaml",
        "      - gate: hmi.M_daily\n",
        "      - gate: hmi.synoptic\n",
        "hmi/gates.yaml:74:15: error: gate 'hmi.synoptic' cannot be its own precondition",
    ),
]


@pytest.mark.parametrize("case", COMPILE, ids=[c[0] for c in COMPILE])
def test_compile_refused(tmp_path: Path, case):
    _, name, file, old, new, expected = case
    wf = fresh_copy(name, tmp_path / name)
    if old is None:
        (wf / file).write_bytes(new if isinstance(new, bytes) else new.encode())
    else:
        edit(wf / file, old, new)
    before = tree_snapshot(wf)
    refused(padocc("compile", name, "--now", HMI_NOW, cwd=tmp_path, timeout=60), expected)
    assert tree_snapshot(wf) == before and not (wf / ".padocc").exists()


def test_output_named_by_o_must_be_a_regular_file(tmp_path: Path):
    """`graph -o` opened a FIFO to write and waited for a reader forever; `dashboard
    -o` replaced the FIFO by the page. Both refuse it, in one line, and leave it."""
    wf = fresh_copy("demo", tmp_path / "demo")
    assert padocc("compile", str(wf)).returncode == 0
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    before = tree_snapshot(wf)
    refused(
        padocc("graph", "-C", str(wf), "-o", str(fifo), timeout=60),
        f"{fifo}: error: cannot write: is a FIFO, not a regular file",
    )
    refused(
        padocc("dashboard", "-C", str(wf), "-o", str(fifo), timeout=60),
        f"{fifo}: error: -o is a FIFO, not a regular file; name the page's file",
    )
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and tree_snapshot(wf) == before
    # A regular file is written as before.
    r = padocc("graph", "-C", str(wf), "-o", str(tmp_path / "g.dot"))
    assert (r.returncode, r.stderr) == (0, "")
    assert (tmp_path / "g.dot").read_text().startswith("digraph")


def _chain(wf: Path, n: int) -> Path:
    """A workflow of n steps in a row: S0 -> S1 -> ... -> Pass."""
    wf.mkdir()
    (wf / "dataset_spec.yaml").write_text("project:\n  C: [a, b]\n")
    graph = ["C:Ready:\n  default:\n    - S0:Ready\n"]
    steps = []
    for i in range(n):
        nxt = f"S{i + 1}:Ready" if i + 1 < n else "Pass"
        graph.append(
            f"S{i}:Ready:\n  default:\n    - S{i}:Engaged\n"
            f"S{i}:Pass:\n  default:\n    - {nxt}\n"
            f"S{i}:Fail:\n  default:\n    - Fail\n"
        )
        steps.append(f'  S{i}:\n    command: "true"\n')
    (wf / "transitions.yaml").write_text("".join(graph))
    (wf / "workflow.yaml").write_text(
        "name: C\ndatasets:\n  spec: dataset_spec.yaml\n  walks:\n    - name: w\n"
        '      root: project/C\n      levels:\n        - {facet: v}\n      id: "C.{v}"\n'
        "graph: transitions.yaml\nsteps:\n" + "".join(steps)
    )
    return wf


def test_a_long_graph_compiles_or_is_refused_at_its_limit(tmp_path: Path):
    """333 steps in a row (999 graph entries) compile: the plan's and the job chains'
    walks are no longer recursive (a RecursionError traceback at a few hundred steps).
    Past the limits (500 steps, 1,000 graph entries) the file is refused at the line
    that crosses it, in one line, before the graph is walked (a chain of 8,000 steps
    took minutes, checking keys for case slips pair by pair, then crashed)."""
    wf = _chain(tmp_path / "c333", 333)
    r = padocc("compile", "c333", cwd=tmp_path, timeout=300)
    _no_traceback(r)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr[-2000:]
    assert "2 datasets (2 pending)" in r.stdout
    assert (wf / "Snakefile").is_file()

    wf = _chain(tmp_path / "c8000", 8000)
    before = tree_snapshot(wf)
    refused(
        padocc("compile", "c8000", cwd=tmp_path, timeout=300),
        "c8000/workflow.yaml:1012:3: error: a workflow has at most 500 steps",
    )
    assert tree_snapshot(wf) == before
    # 400 steps fit, but their 1,201 graph entries do not.
    wf = _chain(tmp_path / "c400", 400)
    refused(
        padocc("compile", "c400", cwd=tmp_path, timeout=300),
        "c400/transitions.yaml:3001:1: error: the transition graph holds more than the "
        "limit of 1,000 entries (over all its files)",
    )


def test_reason_and_seed_are_bounded(tmp_path: Path):
    """`--reason` goes on a status line: 100,000 characters were written there whole.
    `--seed` took any integer (a 400-digit one was logged as the replay seed); a
    cycle's own seeds are 0 to 2**32 - 1. Both refused in one line, nothing written."""
    wf = fresh_copy("demo", tmp_path / "demo")
    assert padocc("compile", str(wf)).returncode == 0
    before = tree_snapshot(wf)
    ds = "DEMO.atmos.hist.r1.tas"
    for cmd in ("block", "unblock"):
        refused(
            padocc(cmd, "-C", str(wf), "--reason", "r" * 100_000, ds),
            f"padocc {cmd}: error: argument --reason: at most 1,000 characters, not 100,000",
        )
    refused(
        padocc("requeue", "-C", str(wf), "--at", "Generate", "--reason", "r" * 1001, ds),
        "padocc requeue: error: argument --reason: at most 1,000 characters, not 1,001",
    )
    assert tree_snapshot(wf) == before
    r = padocc("block", "-C", str(wf), "--reason", "r" * 1000, ds)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr

    flock = fresh_copy("flock", tmp_path / "flock")
    before = tree_snapshot(flock)
    for seed in ("-1", "4294967296"):
        refused(
            padocc("cycle", "--conf", str(flock / "shepard.yaml"), "--dry-run", "--seed", seed),
            f"padocc cycle: error: argument --seed: must be between 0 and 4294967295, not '{seed}'",
        )
    assert tree_snapshot(flock) == before
    r = padocc("cycle", "--conf", str(flock / "shepard.yaml"), "--dry-run", "--seed", "4294967295")
    assert r.returncode == 0 and "seed 4294967295" in r.stdout, r.stderr


def test_a_hook_that_ends_its_process_or_never_returns_is_an_error_at_its_line(
    tmp_path: Path,
):
    """os._exit in a map hook (no Python handler can catch it) made padocc-compile exit
    0 with no output and no build; a hook that loops forever hung it. Hooks run in a
    child process: either is exit 2 and one line at the hook's line, nothing written;
    what a hook prints goes to stderr."""
    wf = hooked_workflow(tmp_path)
    call = "import os\ndef same(low, high):\n    {}\n"
    cases = [
        ("import os\nos._exit(0)\n", LOAD + "it ended its process (exit status 0)"),
        (call.format("os._exit(0)"), CALL + "it ended its process (exit status 0)"),
        (call.format("os.kill(os.getpid(), 9)"), CALL + "it ended its process (signal 9)"),
        ("while True:\n    pass\n", LOAD + "it did not return within 20 s"),
    ]
    for hook, line in cases:
        (wf / "hook.py").write_text(hook)
        before = tree_snapshot(wf)
        r = padocc("compile", "wf", cwd=tmp_path, timeout=120)
        assert (r.returncode, r.stderr.splitlines(), r.stdout) == (2, [line], ""), hook
        assert tree_snapshot(wf) == before, hook
    (wf / "hook.py").write_text("print('hello')\ndef same(low, high):\n    return low, high\n")
    r = padocc("compile", "wf", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "hello\n"), r.stderr
    assert "hello" not in r.stdout and (wf / "Snakefile").is_file()


def test_a_dataset_list_or_campaign_file_that_is_a_fifo_is_refused(tmp_path: Path):
    """Kinds of input the earlier FIFO cases did not try: a dataset list and a
    campaign file that are FIFOs, a gates file and a cycle config that are links to
    /dev/zero. Each is one line naming the file, never a wait."""
    demo = fresh_copy("demo", tmp_path / "demo")
    os.mkfifo(demo / "ids.txt")
    edit(demo / "workflow.yaml", "  walks:\n", "  lists: [ids.txt]\n  walks:\n")
    before = tree_snapshot(demo)
    refused(
        padocc("compile", "demo", cwd=tmp_path, timeout=60),
        "demo/ids.txt: error: is a FIFO, not a regular file",
    )
    assert tree_snapshot(demo) == before

    camp = fresh_copy("campaigns", tmp_path / "campaigns")
    (camp / "demo-campaign.yaml").unlink()
    os.mkfifo(camp / "demo-campaign.yaml")
    before = tree_snapshot(camp)
    refused(
        padocc("campaign", "submit", "campaigns/demo-campaign.yaml", cwd=tmp_path, timeout=60),
        "campaigns/demo-campaign.yaml: error: is a FIFO, not a regular file",
    )
    assert tree_snapshot(camp) == before and not (camp / "runs").exists()

    hmi = fresh_copy("hmi", tmp_path / "hmi")
    (hmi / "gates.yaml").unlink()
    (hmi / "gates.yaml").symlink_to("/dev/zero")
    before = {p for p in hmi.rglob("*")}
    refused(
        padocc("compile", "hmi", cwd=tmp_path, timeout=60),
        "hmi/gates.yaml: error: is a character device, not a regular file",
    )
    assert set(hmi.rglob("*")) == before
    flock = fresh_copy("flock", tmp_path / "flock")
    (flock / "zero.yaml").symlink_to("/dev/zero")
    before = tree_snapshot(flock)
    refused(
        padocc("cycle", "--conf", "flock/zero.yaml", cwd=tmp_path, timeout=60),
        "flock/zero.yaml: error: is a character device, not a regular file",
    )
    assert tree_snapshot(flock) == before


def test_a_status_file_that_is_a_directory_is_refused_by_the_compile(tmp_path: Path):
    """It was a warning, and every cycle then ran the dataset's job to fail it (exit 3,
    "cannot open status file: Is a directory"). Refused at compile time like a FIFO."""
    wf = fresh_copy("demo", tmp_path / "demo")
    p = wf / "status" / "DEMO.atmos.hist.r1.tas.status"
    p.mkdir(parents=True)
    before = tree_snapshot(wf)
    refused(
        padocc("compile", "demo", cwd=tmp_path),
        f"{p.parent.resolve()}/{p.name}: error: status file is a directory, not a regular file",
    )
    assert tree_snapshot(wf) == before and not (wf / ".padocc").exists()
