"""Commands as users write them (issue 17): a `command: |` block of several lines runs
as one bash script, a failing line fails the step, `{{`/`}}` are literal braces and
`${...}` is the shell's own. Real padocc-compile and real Snakemake, local executor;
dataset steps (the job wrapper) and gate chunks go through the same runner."""

from __future__ import annotations

from pathlib import Path

from conftest import compile_wf, final_states, padocc, snakemake

TRANSITIONS = """\
CMD:Ready:
  default: [Work:Ready]
Work:Ready:
  default: [Work:Engaged]
Work:Pass:
  default: [Pass]
Work:Fail:
  default: [Fail]
"""


def workflow(tmp_path: Path, command: str, ids: str = "d1\n") -> Path:
    """One dataset, one step running `command` (a YAML block, indented here)."""
    wf = tmp_path / "wf"
    wf.mkdir(parents=True)
    (wf / "ids.txt").write_text(ids)
    (wf / "transitions.yaml").write_text(TRANSITIONS)
    block = "".join(f"      {ln}\n" for ln in command.splitlines())
    (wf / "workflow.yaml").write_text(
        "name: CMD\n"
        "datasets:\n  lists:\n    - file: ids.txt\n"
        "graph: transitions.yaml\n"
        "defaults:\n  resources: {runtime: 5m, mem: 100M, cpus_per_task: 1}\n"
        f"steps:\n  Work:\n    command: |\n{block}"
    )
    return wf


def run_once(wf: Path) -> str:
    compile_wf(wf)
    snakemake(wf, check=False)
    return final_states(wf)["d1"]


def test_a_multi_line_command_runs_as_one_script(tmp_path: Path):
    wf = workflow(
        tmp_path,
        "cd {workdir}\n"
        "x=two  # a variable set on one line is seen on the next: one script\n"
        'echo one > out.txt\necho "$x" >> out.txt\necho three >> out.txt',
    )
    assert run_once(wf) == "CMD:Pass"
    assert (wf / "work" / "d1" / "out.txt").read_text() == "one\ntwo\nthree\n"


def test_a_failing_line_fails_the_step_and_runs_nothing_after_it(tmp_path: Path):
    wf = workflow(
        tmp_path,
        "cd {workdir}\necho one > out.txt\nfalse\necho three >> out.txt",
    )
    assert run_once(wf) == "CMD:Fail"
    assert (wf / "work" / "d1" / "out.txt").read_text() == "one\n"
    # as in a pipeline: the failing stage fails it (pipefail)
    wf2 = workflow(tmp_path / "p", "cd {workdir}\nfalse | cat\necho after > out.txt")
    assert run_once(wf2) == "CMD:Fail"
    assert not (wf2 / "work" / "d1" / "out.txt").exists()


def test_literal_braces_and_shell_expansions_in_a_command(tmp_path: Path):
    wf = workflow(
        tmp_path,
        'cd {workdir}\nSLEEP=""\n'
        "echo {{literal}} {{ }} ${SLEEP:-300} ${NOPE:-${HOME:+home}} {dataset} > out.txt",
    )
    assert run_once(wf) == "CMD:Pass"
    assert (wf / "work" / "d1" / "out.txt").read_text() == "{literal} { } 300 home d1\n"


def test_an_unknown_name_in_braces_is_still_refused_at_its_line(tmp_path: Path):
    wf = workflow(tmp_path, "echo {datset}")
    r = padocc("compile", "wf", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "wf/workflow.yaml:10:14: error: command of step 'Work' names unknown facet 'datset' "
        "(did you mean 'dataset'?)"
    ]
    for text, what in (("echo {", "'{' (write '{{' for a literal one)"),
                       ("echo }", "'}' (write '}}' for a literal one)"),
                       ("echo ${X", "'${' (no '}' closes it)")):  # fmt: skip
        (wf / "workflow.yaml").write_text(
            (wf / "workflow.yaml").read_text().rsplit("\n      ", 1)[0] + f"\n      {text}\n"
        )
        r = padocc("compile", "wf", cwd=tmp_path)
        assert r.returncode == 2
        assert r.stderr.splitlines() == [
            f"wf/workflow.yaml:10:14: error: command of step 'Work' has an unbalanced {what}"
        ]
    assert not (wf / "Snakefile").exists()


GATE = """\
gates:
  g:
    axis: serial
    maxrange: 10
    want: {low: 0, high: 10}
    command: |
      cd {workflow_dir}
      echo "{gate} ${PADOCC_LOW:-?}" > chunk.txt
      echo {{ {low} }} >> chunk.txt
"""


def test_a_gate_command_of_several_lines_with_braces(tmp_path: Path):
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "workflow.yaml").write_text("name: G\ngates: gates.yaml\n")
    (wf / "gates.yaml").write_text(GATE)
    compile_wf(wf)
    snakemake(wf)
    assert (wf / "chunk.txt").read_text() == "g 0\n{ 0 }\n"
