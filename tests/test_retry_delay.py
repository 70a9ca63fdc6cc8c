"""retry_delay: a failed attempt with retries left waits, across cycles, before the
next; `padocc why` says until when. Real compiles and real Snakemake runs, the clock
moved with --now."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import padocc

DS = "ONE.one"


def workflow(wf: Path, step_extra: str) -> Path:
    """ONE -> Step (always fails, counting its runs) -> Pass/Fail."""
    wf.mkdir(parents=True)
    (wf / "ids.txt").write_text(f"{DS}\n")
    (wf / "workflow.yaml").write_text(
        "name: ONE\ndatasets:\n  lists: [ids.txt]\nrouting_key: all\ngraph: transitions.yaml\n"
        "defaults:\n  resources: {runtime: 10m, mem: 100M, cpus_per_task: 1}\n"
        "  retry_delay: 10m\n"
        "steps:\n  Step:\n"
        f"    command: {json.dumps(f'echo run >> {wf}/runs.txt; exit 1')}\n"
        f"    retries: 2\n{step_extra}"
    )
    (wf / "transitions.yaml").write_text(
        "ONE:Ready:\n  default:\n    - Step:Ready\nStep:Ready:\n  default:\n    - Step:Engaged\n"
        "Step:Pass:\n  default:\n    - Pass\nStep:Fail:\n  default:\n    - Fail\n"
    )
    return wf


def runs(wf: Path) -> int:
    p = wf / "runs.txt"
    return len(p.read_text().splitlines()) if p.exists() else 0


def retry_stamps(wf: Path) -> list[datetime]:
    out = []
    for line in (wf / "status" / f"{DS}.status").read_text().splitlines():
        f = line.split(":")
        if f[0] == "COMM" and f[5] == "Retry":
            out.append(datetime.strptime(f[1], "%Y%m%d_%H%M%S_%f").replace(tzinfo=UTC))
    return out


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def later(t: datetime, minutes: float) -> str:
    """A --now this long after t, to the second (past t's microseconds when it counts)."""
    return iso(t.replace(microsecond=0) + timedelta(minutes=minutes, seconds=1))


def run(wf: Path, *now: str):
    r = padocc("run", str(wf), *(("--now", now[0]) if now else ()), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def why(wf: Path, now: str) -> list[str]:
    r = padocc("why", str(wf), DS, "--now", now)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    return r.stdout.splitlines()


def test_a_failed_attempt_waits_for_its_delay_across_cycles_with_backoff(tmp_path: Path):
    wf = workflow(tmp_path / "wf", "    retry_backoff: 2\n    retry_delay_max: 15m\n")
    run(wf)
    # One attempt in that run: the delayed retry ended the job; Snakemake did not retry.
    assert runs(wf) == 1
    (t1,) = retry_stamps(wf)
    until1 = t1 + timedelta(minutes=10)

    r = run(wf, later(t1, 5))
    assert "1 waiting for retry delay" in r.stdout
    assert "nothing to run: Snakemake not started" in r.stdout
    assert runs(wf) == 1
    out = why(wf, later(t1, 5))
    assert out[1] == (
        f"  Step waits for retry delay until {iso(until1)} (attempt 1 failed at {iso(t1)}); "
        "a cycle after that runs it"
    )

    # Past the delay: the second attempt runs, fails, and waits twice as long, capped at 15m.
    assert why(wf, later(t1, 10))[1].startswith("  next: Step")
    run(wf, later(t1, 10))
    assert runs(wf) == 2
    _, t2 = retry_stamps(wf)
    out = why(wf, later(t2, 14))
    assert out[1].startswith(
        f"  Step waits for retry delay until {iso(t2 + timedelta(minutes=15))} "
    )
    r = run(wf, later(t2, 14))
    assert runs(wf) == 2 and "1 waiting for retry delay" in r.stdout

    # The last attempt has no retry left: it ends in Fail, with nothing to wait for.
    run(wf, later(t2, 15))
    assert runs(wf) == 3
    assert why(wf, later(t2, 15))[1] == "  finished: the workflow ended in Fail"


def test_a_step_without_delay_retries_within_one_run(tmp_path: Path):
    """retry_delay: 0 on the step overrides the defaults' delay: Snakemake's own
    resubmission retries at once, as before."""
    wf = workflow(tmp_path / "wf", "    retry_delay: 0\n")
    run(wf)
    assert runs(wf) == 3
    assert len(retry_stamps(wf)) == 2


def test_bad_retry_delay_settings_are_one_line_at_the_key(tmp_path: Path):
    for extra, line, col, msg in (
        ("    retry_backoff: 0.5\n", 13, 20, "retry_backoff must be between 1 and 100"),
        ("    retry_delay_max: 5m\n", 13, 22, "retry_delay_max is below retry_delay"),
        ("    retry_delay: soon\n", 13, 18,
         "cannot read duration 'soon': use minutes or e.g. '2h', '90m', '1:30:00'"),
    ):  # fmt: skip
        wf = workflow(tmp_path / f"wf{line}{col}", extra)
        r = padocc("compile", str(wf))
        assert (r.returncode, r.stdout) == (2, "")
        assert r.stderr == f"{wf / 'workflow.yaml'}:{line}:{col}: error: {msg}\n"
    wf = workflow(tmp_path / "typo", "    retry_dealy: 10m\n")
    r = padocc("compile", str(wf))
    assert r.returncode == 2
    assert r.stderr == (
        f"{wf / 'workflow.yaml'}:13:5: error: unknown key 'retry_dealy' in step "
        "(did you mean 'retry_delay'?)\n"
    )


def test_in_a_job_of_several_datasets_a_delayed_retry_holds_only_its_own(tmp_path: Path):
    """datasets_per_job 2: ONE.bad fails and waits; ONE.ok, in the same job, ends in
    Pass in that same run, and the job is not resubmitted."""
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "ids.txt").write_text("ONE.bad\nONE.ok\n")
    (wf / "workflow.yaml").write_text(
        "name: ONE\ndatasets:\n  lists: [ids.txt]\nrouting_key: all\ngraph: transitions.yaml\n"
        "datasets_per_job: 2\n"
        "defaults:\n  resources: {runtime: 10m, mem: 100M, cpus_per_task: 1}\n"
        "steps:\n  Step:\n"
        f"    command: {json.dumps(f'echo {{dataset}} >> {wf}/runs.txt; test {{dataset}} = ONE.ok')}\n"
        "    retries: 1\n    retry_delay: 1h\n"
    )
    (wf / "transitions.yaml").write_text(
        "ONE:Ready:\n  default:\n    - Step:Ready\nStep:Ready:\n  default:\n    - Step:Engaged\n"
        "Step:Pass:\n  default:\n    - Pass\nStep:Fail:\n  default:\n    - Fail\n"
    )
    run(wf)
    assert sorted((wf / "runs.txt").read_text().split()) == ["ONE.bad", "ONE.ok"]
    assert "ONE:ONE:ONE:Pass:" in (wf / "status" / "ONE.ok.status").read_text()
    r = padocc("why", str(wf), "ONE.bad")
    assert "  Step waits for retry delay until " in r.stdout
