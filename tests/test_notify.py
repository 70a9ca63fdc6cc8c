"""notify: the operator's command, run once per event (a dataset ending in Fail, a
quarantine, a stuck dataset, a failed run), never breaking the run. Real compiles
and real Snakemake runs; the clock moved with --now."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import padocc


def workflow(wf: Path, notify: str, kinds=("ok", "bad", "loop"), extra: str = "") -> Path:
    """ONE.<kind>: ok passes; bad fails and ends in Fail; loop fails and is sent back to
    the step, which max_visits 1 quarantines."""
    wf.mkdir(parents=True)
    (wf / "ids.txt").write_text("".join(f"ONE.{k}\n" for k in kinds))
    (wf / "workflow.yaml").write_text(
        'name: ONE\ndatasets:\n  lists: [{file: ids.txt, pattern: "ONE.{kind}"}]\n'
        'routing_key: "{kind}"\ngraph: transitions.yaml\nmax_visits: 1\n'
        "defaults:\n  resources: {runtime: 10m, mem: 100M, cpus_per_task: 1}\n"
        f"{extra}"
        "steps:\n  Step:\n"
        '    command: "case {kind} in ok) exit 0;; slow) sleep 120;; *) exit 1;; esac"\n'
        f"notify: {notify}\n"
    )
    (wf / "transitions.yaml").write_text(
        "ONE:Ready:\n  default:\n    - Step:Ready\nStep:Ready:\n  default:\n    - Step:Engaged\n"
        "Step:Pass:\n  default:\n    - Pass\n"
        "Step:Fail:\n  loop:\n    - Step:Ready\n  default:\n    - Fail\n"
    )
    return wf


def recorder(wf: Path) -> str:
    """A notify command that keeps what it was given: stdin, $1 $2 and the env."""
    return json.dumps(
        {
            "command": f'cat >> {wf}/told.jsonl; echo "$1 $2 $PADOCC_EVENT $PADOCC_DATASET" >> {wf}/args.txt'
        }
    )


def told(wf: Path) -> list[dict]:
    p = wf / "told.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def notes(r: subprocess.CompletedProcess) -> str:
    """What padocc's notifier said on stderr (Snakemake says its own things there)."""
    return "".join(x + "\n" for x in r.stderr.splitlines() if x.startswith("padocc: notify"))


def run(wf: Path, *args: str) -> subprocess.CompletedProcess:
    r = padocc("run", str(wf), *args, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_fail_and_quarantine_are_told_once_with_their_facts(tmp_path: Path):
    wf = tmp_path / "wf"
    workflow(wf, recorder(wf))
    r = run(wf)
    assert notes(r) == ""
    facts = {e["event"]: e for e in told(wf)}
    assert sorted(facts) == ["fail", "quarantined"]
    fail, quar = facts["fail"], facts["quarantined"]
    assert (fail["workflow"], fail["dataset"], fail["step"], fail["state"], fail["cause"]) == (
        "ONE",
        "ONE.bad",
        "Step",
        "Fail",
        "exit 1",
    )
    assert Path(fail["log"]).is_file() and fail["workflow_dir"] == str(wf)
    assert datetime.strptime(fail["time"], "%Y-%m-%dT%H:%M:%SZ")
    assert (quar["dataset"], quar["step"], quar["state"]) == ("ONE.loop", "Step", "Quarantined")
    assert "visit limit" in quar["cause"]
    assert sorted((wf / "args.txt").read_text().splitlines()) == [
        "fail ONE.bad fail ONE.bad",
        "quarantined ONE.loop quarantined ONE.loop",
    ]
    # The next cycles tell nothing again.
    run(wf)
    run(wf)
    assert len(told(wf)) == 2
    # A requeued dataset that fails again is a new event.
    r = padocc("requeue", str(wf), "ONE.bad", "--at", "Step")
    assert r.returncode == 0, r.stderr
    run(wf)
    assert [e["dataset"] for e in told(wf)].count("ONE.bad") == 2
    assert len(told(wf)) == 3


def test_two_runs_at_once_tell_each_event_once(tmp_path: Path):
    wf = tmp_path / "wf"
    workflow(wf, recorder(wf))
    run(wf)
    (wf / ".padocc" / "notify.json").unlink()  # as if never told
    (wf / "told.jsonl").unlink()
    cmd = [sys.executable, "-m", "compiler", "run", str(wf)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    assert sorted(e["event"] for e in told(wf)) == ["fail", "quarantined"]


def test_a_stuck_dataset_is_told_once(tmp_path: Path):
    """A dataset waiting a day for its retry: with stuck_after 6h, told when no line
    came for 7h01m, and not again an hour later."""
    wf = tmp_path / "wf"
    notify = json.loads(recorder(wf))
    notify["stuck_after"] = "6h"
    workflow(wf, json.dumps(notify), kinds=("bad",), extra="  retries: 1\n  retry_delay: 1d\n")
    run(wf)
    assert told(wf) == []
    line = next(x for x in (wf / "status" / "ONE.bad.status").read_text().splitlines()
                if ":Engaged:" in x)  # fmt: skip
    t = datetime.strptime(line.split(":")[1], "%Y%m%d_%H%M%S_%f").replace(tzinfo=UTC)
    for hours in (7, 8):
        now = (t + timedelta(hours=hours, minutes=1, seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        run(wf, "--now", now)
    (ev,) = told(wf)
    assert (ev["event"], ev["dataset"], ev["step"]) == ("stuck", "ONE.bad", "Step")
    assert ev["cause"] == f"no progress for 7h01m (last: Step:Engaged at {t:%Y-%m-%dT%H:%M:%SZ})"


def test_a_failing_or_hanging_command_is_one_line_and_the_run_goes_on(tmp_path: Path):
    wf = tmp_path / "wf"
    workflow(wf, json.dumps({"command": "echo mail server down >&2; exit 3", "on": ["fail"]}))
    r = run(wf)
    assert notes(r) == "padocc: notify: command exited 3: mail server down for fail of ONE.bad\n"
    # Not told: tried again by the next run.
    r = run(wf)
    assert notes(r) == "padocc: notify: command exited 3: mail server down for fail of ONE.bad\n"

    wf = tmp_path / "hang"
    workflow(wf, json.dumps({"command": "sleep 300", "timeout": "1s"}))
    r = run(wf)
    assert notes(r) == (
        "padocc: notify: command still running after 1s, killed for fail of ONE.bad;"
        " 1 more left to the next cycle\n"
    ) or notes(r) == (
        "padocc: notify: command still running after 1s, killed for quarantined of ONE.loop;"
        " 1 more left to the next cycle\n"
    )


def test_a_failed_run_is_told(tmp_path: Path):
    wf = tmp_path / "wf"
    workflow(wf, recorder(wf), kinds=("slow",))
    r = padocc("run", str(wf), "--timeout", "1", timeout=600)
    assert r.returncode == 1
    (ev,) = told(wf)
    assert (ev["event"], ev["dataset"]) == ("cycle_failed", "")
    assert ev["cause"] == "snakemake stopped at the 1 s deadline"


def test_bad_notify_config_is_one_line_and_nothing_runs(tmp_path: Path):
    wf = workflow(tmp_path / "wf", '{command: "true", on: [fial]}')
    r = padocc("run", str(wf))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        f"{wf / 'workflow.yaml'}:12:32: error: unknown notify event 'fial' (did you mean "
        "'fail'?): use fail, quarantined, stuck, cycle_failed\n"
    )
    assert not (wf / "status").exists()
    wf = workflow(tmp_path / "wf2", "{comand: x}")
    r = padocc("run", str(wf))
    assert r.returncode == 2
    assert r.stderr == (
        f"{wf / 'workflow.yaml'}:12:10: error: unknown key 'comand' in notify "
        "(did you mean 'command'?)\n"
    )
    wf = workflow(tmp_path / "wf3", '{command: "true", stuck_after: 10s}')
    r = padocc("run", str(wf))
    assert r.stderr == f"{wf / 'workflow.yaml'}:12:40: error: stuck_after must be at least 1m\n"


def test_a_record_that_cannot_be_written_is_one_line_and_the_run_goes_on(tmp_path: Path):
    wf = tmp_path / "wf"
    workflow(wf, recorder(wf))
    (wf / ".padocc").mkdir()
    (wf / ".padocc" / "notify.json").mkdir()  # not a file: never replaced
    r = run(wf)
    assert notes(r) == (
        f"padocc: notify: {wf / '.padocc' / 'notify.json'}: Is a directory; "
        "events left to the next run\n"
    )
    assert told(wf) == []
