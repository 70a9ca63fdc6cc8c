"""End to end through REAL sbatch: the slurm profile, job ids in STAT lines, retries with
more memory, `padocc cancel`. Needs a running cluster (cluster/start-slurm.sh).

Without one these tests skip with one line saying why; with PADOCC_REQUIRE_SLURM=1
(set by .ci/run) they fail instead.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    PROFILES,
    REPO,
    WORKFLOWS,
    compile_wf,
    final_states,
    padocc,
    pending_count,
    slurm_problem,
    slurm_required,
    snakemake,
    steps_run,
)
from test_demo import expected_final, expected_runs

from compiler.core.statusfile import Stat, parse_stamp, read_history

# Snakemake ignores SIGTERM while it waits on SLURM jobs: every run has a hard limit.
RUN_TIMEOUT = 420


SLURM_PROBLEM = slurm_problem()
REQUIRED = slurm_required()
if SLURM_PROBLEM and not REQUIRED:
    pytest.skip(
        f"no usable SLURM ({SLURM_PROBLEM}); start one with `cluster/start-slurm.sh`",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def need_slurm() -> None:
    """First line of every test: with PADOCC_REQUIRE_SLURM=1 a missing cluster FAILS."""
    if SLURM_PROBLEM:
        pytest.fail(
            f"PADOCC_REQUIRE_SLURM=1 but SLURM is not usable: {SLURM_PROBLEM} "
            "(start it with `cluster/start-slurm.sh --install`)",
            pytrace=False,
        )


# ----------------------------------------------------------------------- helpers


def cycle_until_done_slurm(wf: Path, max_cycles: int = 3, profile: str = "slurm") -> int:
    """conftest.cycle_until_done through sbatch. Returns the cycles run."""
    for n in range(1, max_cycles + 1):
        compile_wf(wf)
        if pending_count(wf) == 0:
            return n - 1
        snakemake(wf, profile, timeout=RUN_TIMEOUT)
    compile_wf(wf)
    assert pending_count(wf) == 0, "work left after max cycles"
    return max_cycles


def stats(wf: Path, ds: str) -> list[Stat]:
    return read_history(wf / "status" / f"{ds}.status").stats


def step_stats(wf: Path, ds: str) -> list[Stat]:
    """Lines of steps (Engaged, outcomes, Retry, Cancelled), not the graph's end line."""
    return [s for s in stats(wf, ds) if s.step != s.workflow]


def sacct(ids: list[str], fields: str, want: re.Pattern | None = None) -> dict[str, list[str]]:
    """`sacct -n -X -P -j IDS -o JobID,FIELDS` as {jobid: [fields...]}, times as epoch
    seconds. slurmdbd learns of a job's end a moment after it: with `want`, wait (30 s
    at most) until every job's first field matches it."""
    assert ids, "no job ids to look up"
    cmd = ["sacct", "-n", "-X", "-P", "-j", ",".join(ids), "-o", f"JobID,{fields}"]
    env = {**os.environ, "SLURM_TIME_FORMAT": "%s"}
    deadline = time.monotonic() + 30
    while True:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
        assert r.returncode == 0, f"{' '.join(cmd)}: {r.stderr}"
        rows = {ln.split("|")[0]: ln.split("|")[1:] for ln in r.stdout.splitlines() if ln}
        ok = set(ids) <= rows.keys() and (
            want is None or all(want.fullmatch(rows[i][0]) for i in ids)
        )
        if ok or time.monotonic() > deadline:
            return rows
        time.sleep(1)


def mem_mb(reqmem: str) -> float:
    """sacct's ReqMem in MB: `100M`, `2G`; older SLURM appends n (per node) or c (per CPU)."""
    m = re.fullmatch(r"([0-9.]+)([KMGT])[nc]?", reqmem)
    assert m, f"cannot read ReqMem {reqmem!r}"
    return float(m[1]) * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[m[2]]


def write_workflow(wf: Path, name: str, steps: str, ids: tuple[str, ...] = ("one",)) -> None:
    """A one-step workflow (datasets NAME.one, or NAME.<each of ids>): NAME -> Step -> Pass/Fail."""
    (step,) = re.findall(r"^  (\w+):$", steps, re.M)
    wf.mkdir(parents=True)
    (wf / "ids.txt").write_text("".join(f"{name}.{i}\n" for i in ids))
    (wf / "workflow.yaml").write_text(
        f"name: {name}\n"
        "datasets:\n  lists: [ids.txt]\n"
        'routing_key: "all"\n'
        "graph: transitions.yaml\n"
        "defaults:\n  resources: {runtime: 10m, mem: 100M, cpus_per_task: 1}\n  retries: 0\n"
        f"steps:\n{steps}"
    )
    (wf / "transitions.yaml").write_text(
        f"{name}:Ready:\n  default:\n    - {step}:Ready\n"
        f"{step}:Ready:\n  default:\n    - {step}:Engaged\n"
        f"{step}:Pass:\n  default:\n    - Pass\n"
        f"{step}:Fail:\n  default:\n    - Fail\n"
    )


# ------------------------------------------------------------- the demo, on SLURM

SUBSET = {f"DEMO.atmos.hist.{ens}.{v}" for v in ("tas", "pr") for ens in ("r1", "r3")}
# tas: CheckMeta ends in the custom Warning; pr r1: CheckTime fails, FixTime repairs it
# (the loop); pr r3: FixTime cannot repair it and the dataset ends DEMO:Fail.
DEMO_SPEC = """\
project:
  DEMO:
    atmos:
      variables: [tas, pr]
      experiments:
        hist: {ens: [r1, r3]}
"""


@pytest.fixture(scope="module")
def slurm_demo(tmp_path_factory) -> tuple[Path, int] | None:
    """The demo shrunk to 4 datasets, run to the end through sbatch (once per module)."""
    if SLURM_PROBLEM:
        return None  # each test fails with the reason in need_slurm()
    wf = tmp_path_factory.mktemp("slurm") / "demo"
    shutil.copytree(
        WORKFLOWS / "demo",
        wf,
        ignore=shutil.ignore_patterns(".padocc", "status", "work", "Snakefile", ".snakemake"),
    )
    (wf / "dataset_spec.yaml").write_text(DEMO_SPEC)
    # The profile a user makes from the shipped template, as the README says.
    prof = wf.parent / "profile"
    r = padocc("profile", "install", "slurm", "--account", "padocc", "--partition", "main",
               "--dest", str(prof))  # fmt: skip
    assert r.returncode == 0, r.stderr
    t0 = time.monotonic()
    cycles = cycle_until_done_slurm(wf, profile=str(prof))
    print(f"demo subset through sbatch: {cycles} cycle(s), {time.monotonic() - t0:.0f} s")
    return wf, cycles


def demo_expected() -> dict[str, str]:
    """tests/test_demo.py's expectations, for the 4 datasets of the subset."""
    return {ds: state for ds, state in expected_final().items() if ds in SUBSET}


def test_demo_completes_through_sbatch(slurm_demo):
    need_slurm()
    wf, cycles = slurm_demo
    want = demo_expected()
    assert len(want) == 4
    assert final_states(wf) == want
    for ds in want:
        assert dict(steps_run(wf, ds)) == expected_runs(ds), ds
    assert cycles == 1  # the rounds drive every route, loop included, in one cycle
    # The custom Warning and the fix loop went through SLURM like the rest.
    assert any(
        s.step == "CheckMeta" and s.state == "Warning" for s in stats(wf, "DEMO.atmos.hist.r1.tas")
    )
    loop = [
        (s.step, s.state) for s in step_stats(wf, "DEMO.atmos.hist.r1.pr") if s.state != "Engaged"
    ]
    assert loop[:4] == [
        ("Generate", "Pass"),
        ("CheckTime", "Fail"),
        ("FixTime", "Pass"),
        ("CheckTime", "Pass"),
    ]

    # Every Engaged and outcome line names its SLURM job, and sacct knows each one
    # as a job that COMPLETED (a step that fails is a recorded outcome, not a failed job).
    ids = []
    for ds in want:
        for s in step_stats(wf, ds):
            assert re.fullmatch(r"[0-9]+", s.params.get("slurm_jobid", "")), (ds, s)
            ids.append(s.params["slurm_jobid"])
    rows = sacct(sorted(set(ids)), "State,Account,Partition", re.compile(r"COMPLETED"))
    assert {i: rows.get(i, ["(not in sacct)"])[0] for i in set(ids)} == dict.fromkeys(
        set(ids), "COMPLETED"
    )
    # submitted with the account and partition `padocc profile install` wrote
    assert {tuple(rows[i][1:]) for i in set(ids)} == {("padocc", "main")}


def test_every_sbatch_job_ran_a_step_and_names_it(slurm_demo):
    """Issue 15: no submitted job runs no step. Every job SLURM ran in the demo's
    directory is named by some status line (it ran a step there), and its comment (the
    plugin's `rule_<rule>_wildcards_...`, kept by sacct) names the step it ran."""
    need_slurm()
    wf, _ = slurm_demo
    r = subprocess.run(
        ["sacct", "-a", "-n", "-X", "-P", "-S", "now-1days", "-o", "JobID,Comment%300,WorkDir%500"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    jobs = {}
    for line in r.stdout.splitlines():
        jobid, comment, workdir = line.split("|", 2)
        if Path(workdir) == wf:
            jobs[jobid] = comment
    ran: dict[str, set[str]] = {}  # slurm job -> the steps its status lines name
    for ds in demo_expected():
        for s in step_stats(wf, ds):
            ran.setdefault(s.params.get("slurm_jobid", ""), set()).add(s.step)
    assert jobs, "sacct lists no job of the demo's directory"
    assert sorted(set(jobs) - set(ran)) == []  # jobs that ran no step
    for jobid, comment in jobs.items():
        m = re.fullmatch(r"rule_(\w+?)_wildcards_.*", comment)
        assert m and m[1] in ran[jobid], (jobid, comment, ran[jobid])


def test_failing_step_is_recorded_with_its_job(slurm_demo):
    need_slurm()
    wf, _ = slurm_demo
    ds = "DEMO.atmos.hist.r3.pr"
    fails = [s for s in step_stats(wf, ds) if s.step == "FixTime" and s.state == "Fail"]
    assert len(fails) == 1, step_stats(wf, ds)
    fail = fails[0]
    assert fail.params["exit"] == "1"
    jobid = fail.params["slurm_jobid"]
    assert jobid.isdigit()
    assert jobid in sacct([jobid], "State", re.compile(r"COMPLETED"))
    # The Fail routes to the graph's end: the dataset is finished, in Fail, and the
    # next compile plans nothing for it.
    assert final_states(wf)[ds] == "DEMO:Fail"
    last = stats(wf, ds)[-1]
    assert (last.sub, last.step, last.state) == ("DEMO", "DEMO", "Fail")
    assert ds not in (wf / ".padocc" / "current" / "pending.tsv").read_text()


def test_stat_lines_carry_the_real_slurm_job_id(slurm_demo):
    need_slurm()
    wf, _ = slurm_demo
    engaged, n_jobs = 0, 0
    for ds in demo_expected():
        lines = step_stats(wf, ds)
        jobs: dict[str, list[Stat]] = {}
        for s in lines:
            jobs.setdefault(s.params["slurm_jobid"], []).append(s)
        # One SLURM job per run of same-resource steps: each step's Engaged line and
        # its outcome, in turn, all with that job's id.
        for jid, run in jobs.items():
            assert len(run) % 2 == 0, (ds, jid, run)
            for a, b in zip(run[0::2], run[1::2], strict=True):
                assert a.state == "Engaged" and b.state != "Engaged" and a.step == b.step
        engaged += sum(len(run) // 2 for run in jobs.values())
        n_jobs += len(jobs)
        # The id is the job that ran the step: sacct's Start..End of that job holds
        # the moment the wrapper wrote Engaged and the outcome (epoch s, 1 s slack).
        rows = sacct(sorted(jobs), "State,Start,End", re.compile(r"COMPLETED"))
        for jid, run in jobs.items():
            _, start, end = rows[jid]
            for s in run:
                t = parse_stamp(s.ts).timestamp()
                assert int(start) - 1 <= t <= int(end) + 1, (ds, jid, s, start, end)
    # tas 5 steps each, pr r1 7 (the loop), pr r3 3, as the demo's own run logs count
    # them; fewer SLURM jobs than steps (Generate, CheckTime, CheckMeta share one).
    assert engaged == 5 + 5 + 7 + 3
    assert engaged == sum(sum(steps_run(wf, ds).values()) for ds in demo_expected())
    assert n_jobs < engaged
    first = step_stats(wf, "DEMO.atmos.hist.r1.tas")[:6]
    assert [s.step for s in first[1::2]] == ["Generate", "CheckTime", "CheckMeta"]
    assert len({s.params["slurm_jobid"] for s in first}) == 1


def test_one_sbatch_job_runs_several_datasets(tmp_path: Path):
    """datasets_per_job: 4 datasets, one SLURM job, asking for the sum of their time
    limits; each dataset keeps its own STAT lines, all with that job's id."""
    need_slurm()
    wf = tmp_path / "bundle"
    ids = ("a", "b", "c", "d")
    write_workflow(wf, "BUNDLE", '  Note:\n    command: "echo $SLURM_JOB_ID > job.txt"\n', ids=ids)
    y = wf / "workflow.yaml"
    y.write_text(y.read_text() + "datasets_per_job: 4\n")
    assert cycle_until_done_slurm(wf) == 1
    names = [f"BUNDLE.{i}" for i in ids]
    assert final_states(wf) == dict.fromkeys(names, "BUNDLE:Pass")
    lines = {ds: step_stats(wf, ds) for ds in names}
    assert all([s.state for s in run] == ["Engaged", "Pass"] for run in lines.values())
    (jid,) = {s.params["slurm_jobid"] for run in lines.values() for s in run}
    assert all(run[0].params["job"] == "@1" for run in lines.values())
    assert {(wf / "work" / ds / "job.txt").read_text().strip() for ds in names} == {jid}
    rows = sacct([jid], "State,ReqMem,Timelimit", re.compile(r"COMPLETED"))
    assert (rows[jid][0], mem_mb(rows[jid][1]), rows[jid][2]) == ("COMPLETED", 100, "00:40:00")


# --------------------------------------------------------------------- retries


def node_cpus() -> int:
    """CPUs of the cluster's (one) node: a job asking for all of them runs alone."""
    r = subprocess.run(
        ["sinfo", "-h", "-o", "%c"], check=False, capture_output=True, text=True, timeout=30
    )
    return int(r.stdout.split()[0].rstrip("+"))


def test_retry_resubmits_with_more_memory(tmp_path: Path):
    need_slurm()
    wf = tmp_path / "retry"
    cpus = node_cpus()
    # Fails on attempts 1 and 2, passes on attempt 3; each attempt logs the memory of
    # the allocation it runs in, as slurmctld sees it. Memory doubles (100M, 200M, then
    # 400M capped at 300M) and the time limit doubles (10, 20, then 40 capped at 30 min).
    write_workflow(
        wf,
        "RETRY",
        "  Flaky:\n"
        '    command: "echo attempt={attempt} job=$SLURM_JOB_ID >> tries.log; '
        "scontrol show job -o $SLURM_JOB_ID | grep -o 'MinMemoryNode=[^ ]*' >> tries.log; "
        'test {attempt} -ge 3"\n'
        f"    resources: {{mem: 100M, runtime: 10m, cpus_per_task: {cpus}, "
        "slurm_partition: main, slurm_account: padocc}\n"
        "    retry_growth: {mem_max: 300M, runtime_factor: 2, runtime_max: 30m}\n"
        "    retries: 2\n",
    )
    assert cycle_until_done_slurm(wf) == 1
    ds = "RETRY.one"
    assert final_states(wf) == {ds: "RETRY:Pass"}
    lines = step_stats(wf, ds)
    assert [(s.state, s.params.get("attempt")) for s in lines] == [
        ("Engaged", "1"),
        ("Retry", "1"),
        ("Engaged", "2"),
        ("Retry", "2"),
        ("Engaged", "3"),
        ("Pass", "3"),
    ]
    jobs = [s.params["slurm_jobid"] for s in lines]
    a, b, c = jobs[0], jobs[2], jobs[4]
    assert all(j.isdigit() for j in (a, b, c)) and len({a, b, c}) == 3
    assert jobs == [a, a, b, b, c, c]
    # What SLURM was asked for, as sacct has it: memory and time limit grown and capped;
    # the CPUs, partition and account of the step. Attempts 1 and 2 failed (that is what
    # made Snakemake resubmit), attempt 3 completed.
    rows = sacct(
        [a, b, c],
        "State,ReqMem,Timelimit,ReqCPUS,Partition,Account",
        re.compile(r"COMPLETED|FAILED"),
    )
    got = {j: (rows[j][0], mem_mb(rows[j][1]), *rows[j][2:]) for j in (a, b, c)}
    assert got == {
        a: ("FAILED", 100, "00:10:00", str(cpus), "main", "padocc"),
        b: ("FAILED", 200, "00:20:00", str(cpus), "main", "padocc"),
        c: ("COMPLETED", 300, "00:30:00", str(cpus), "main", "padocc"),
    }
    # ... and what each job ran in.
    tries = (wf / "work" / ds / "tries.log").read_text().split()
    assert tries == [
        "attempt=1",
        f"job={a}",
        "MinMemoryNode=100M",
        "attempt=2",
        f"job={b}",
        "MinMemoryNode=200M",
        "attempt=3",
        f"job={c}",
        "MinMemoryNode=300M",
    ]


# ---------------------------------------------------------------------- cancel


SLEEP_STEP = (
    '  Sleep:\n    command: "echo run >> runs.log; test -e {workflow_dir}/go || sleep 300"\n'
)


def start_snakemake(wf: Path, log) -> subprocess.Popen:
    """One run through sbatch in the background, in its own session (to kill it all)."""
    return subprocess.Popen(
        [
            "timeout", "-k", "10", "300",
            sys.executable, "-m", "snakemake",
            "--profile", str(PROFILES / "slurm"),
            "-s", str(wf / "Snakefile"),
            "-d", str(wf),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def stop(proc: subprocess.Popen, log) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


def queue_of(wf: Path) -> dict[str, tuple[str, str]]:
    """squeue's jobs that run in wf: {job id: (state, the plugin's comment)}."""
    r = subprocess.run(
        ["squeue", "-h", "-o", "%i|%T|%Z|%k"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    rows = [ln.split("|", 3) for ln in r.stdout.splitlines() if ln.count("|") == 3]
    return {j: (st, k) for j, st, wd, k in rows if os.path.realpath(wd) == os.path.realpath(wf)}


def test_cancel_stops_the_slurm_job_and_the_next_cycle_reruns_it(tmp_path: Path):
    need_slurm()
    wf = tmp_path / "sleepy"
    write_workflow(wf, "SLEEPY", SLEEP_STEP)
    ds = "SLEEPY.one"
    status = wf / "status" / f"{ds}.status"
    compile_wf(wf)
    log = (tmp_path / "snakemake.log").open("w")
    proc = start_snakemake(wf, log)
    try:
        # Wait for the step to be running inside its SLURM job.
        deadline = time.monotonic() + 120
        engaged: list[Stat] = []
        while time.monotonic() < deadline and proc.poll() is None:
            if status.exists():
                engaged = [s for s in stats(wf, ds) if s.state == "Engaged"]
                if engaged and engaged[0].params.get("slurm_jobid"):
                    break
            time.sleep(0.5)
        assert engaged, f"step never engaged: {(tmp_path / 'snakemake.log').read_text()[-3000:]}"
        jobid = engaged[0].params["slurm_jobid"]
        assert jobid.isdigit()

        r = padocc("cancel", str(wf), "--dataset", ds)
        assert r.returncode == 0, r.stderr
        assert f"SLURM job {jobid}" in r.stdout

        cancelled = [s for s in stats(wf, ds) if s.state == "Cancelled"]
        assert len(cancelled) == 1 and cancelled[0].params["slurm_jobid"] == jobid
        assert cancelled[0].step == "Sleep"
        state = sacct([jobid], "State", re.compile(r"CANCELLED.*"))[jobid][0]
        assert state.startswith("CANCELLED"), state  # sacct says "CANCELLED by <uid>"

        # The run notices at its next status poll, well before the 300 s sleep would end.
        try:
            rc = proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail("snakemake did not end within 90 s of the cancel")
        assert rc not in (0, 124, 137), rc  # it ended by itself, reporting the failed job
    finally:
        stop(proc, log)

    # Next cycle: the step starts again cleanly and, with the flag file, passes.
    (wf / "go").touch()
    assert cycle_until_done_slurm(wf) == 1
    assert final_states(wf) == {ds: "SLEEPY:Pass"}
    after = step_stats(wf, ds)[[s.state for s in step_stats(wf, ds)].index("Cancelled") + 1 :]
    assert [(s.step, s.state) for s in after] == [("Sleep", "Engaged"), ("Sleep", "Pass")]
    new = after[0].params["slurm_jobid"]
    assert new.isdigit() and new != jobid and after[1].params["slurm_jobid"] == new
    assert after[0].params["attempt"] == "1"
    assert sacct([new], "State", re.compile(r"COMPLETED"))[new] == ["COMPLETED"]
    assert (wf / "work" / ds / "runs.log").read_text().split() == ["run", "run"]


def test_cancel_in_a_copy_never_cancels_the_originals_slurm_job(tmp_path: Path):
    """`cp -a` of a workflow while its step runs in a SLURM job copies the open Engaged
    line naming that job. `padocc cancel` in the copy records the cancel there and
    leaves the job alone (squeue runs it in the original directory): before, it
    scancelled the original's job."""
    need_slurm()
    wf = tmp_path / "orig"
    poll = "echo run >> runs.log; while [ ! -e {workflow_dir}/go ]; do sleep 0.2; done"
    write_workflow(wf, "ORIG", f'  Sleep:\n    command: "{poll}"\n')
    ds = "ORIG.one"
    compile_wf(wf)
    log = (tmp_path / "snakemake.log").open("w")
    proc = start_snakemake(wf, log)
    copy = tmp_path / "copy"
    try:
        deadline = time.monotonic() + 120
        jobid = ""
        while not jobid and time.monotonic() < deadline and proc.poll() is None:
            if (wf / "work" / ds / "runs.log").exists():
                eng = [s for s in stats(wf, ds) if s.state == "Engaged"]
                jobid = eng[-1].params.get("slurm_jobid", "") if eng else ""
            time.sleep(0.5)
        assert jobid, f"step never engaged: {(tmp_path / 'snakemake.log').read_text()[-3000:]}"
        subprocess.run(["cp", "-a", str(wf), str(copy)], check=True)
        r = padocc("cancel", str(copy))
        assert (r.returncode, r.stdout) == (0, f"cancelled {ds} Sleep\n"), r.stderr
        assert jobid in queue_of(wf), "the original's job was cancelled"
        (wf / "go").touch()
        assert proc.wait(timeout=RUN_TIMEOUT) == 0, (tmp_path / "snakemake.log").read_text()
    finally:
        (wf / "go").touch()
        stop(proc, log)
    assert [s.state for s in step_stats(wf, ds)] == ["Engaged", "Pass"]
    assert [s.state for s in step_stats(copy, ds)] == ["Engaged", "Cancelled"]
    assert sacct([jobid], "State", re.compile(r"COMPLETED"))[jobid] == ["COMPLETED"]


def test_cancel_reaches_jobs_still_in_the_queue(tmp_path: Path):
    """Jobs waiting in the SLURM queue have no Engaged line yet: `padocc cancel WF`
    finds them in squeue and cancels them too, before any of them starts."""
    need_slurm()
    wf = tmp_path / "queued"
    names = [f"QUEUED.{i}" for i in ("a", "b", "c")]
    # Each job asks for every CPU of the node: one runs, two wait in the queue.
    write_workflow(
        wf,
        "QUEUED",
        SLEEP_STEP + f"    resources: {{cpus_per_task: {node_cpus()}}}\n",
        ("a", "b", "c"),
    )
    compile_wf(wf)
    log = (tmp_path / "snakemake.log").open("w")
    proc = start_snakemake(wf, log)
    try:
        deadline = time.monotonic() + 120
        jobs: dict[str, tuple[str, str]] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            jobs = queue_of(wf)
            states = sorted(st for st, _ in jobs.values())
            if len(jobs) == 3 and states == ["PENDING", "PENDING", "RUNNING"]:
                break
            time.sleep(0.5)
        assert len(jobs) == 3, f"{jobs}: {(tmp_path / 'snakemake.log').read_text()[-3000:]}"
        # Slot 1 is the step's own rule: the job comment names the step (issue 15).
        assert all(k.startswith("rule_Sleep_wildcards_") for _, k in jobs.values()), jobs
        waiting = {
            next(ds for ds in names if k.endswith(f"_{ds}_1")): j  # wildcards build, job, slot
            for j, (st, k) in jobs.items()
            if st == "PENDING"
        }
        assert len(waiting) == 2, jobs

        r = padocc("cancel", str(wf))
        assert r.returncode == 0, r.stderr
        for ds, j in waiting.items():
            assert f"cancelled {ds} (queued SLURM job {j})" in r.stdout.splitlines(), r.stdout
        deadline = time.monotonic() + 30
        while queue_of(wf) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert queue_of(wf) == {}, "jobs left in the queue after padocc cancel"
        rows = sacct(sorted(jobs), "State", re.compile(r"CANCELLED.*"))
        assert all(rows[j][0].startswith("CANCELLED") for j in jobs), rows
        try:
            rc = proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail("snakemake did not end within 90 s of the cancel")
        assert rc not in (0, 124, 137), rc
    finally:
        stop(proc, log)
        # A failure above must not leave jobs that hold every CPU for the next test.
        left = list(queue_of(wf))
        if left:
            subprocess.run(["scancel", *left], check=False, timeout=60)
    # The waiting ones never ran: a Cancelled line names the job, nothing else.
    for ds, j in waiting.items():
        assert [(s.state, s.params["slurm_jobid"], s.params["queued"]) for s in stats(wf, ds)] == [
            ("Cancelled", j, "1")
        ]
        assert not (wf / "work" / ds / "runs.log").exists()

    # Next cycle: every dataset starts cleanly (side by side now) and passes.
    (wf / "go").touch()
    yaml = wf / "workflow.yaml"
    yaml.write_text(
        yaml.read_text().replace(f"cpus_per_task: {node_cpus()}}}", "cpus_per_task: 1}")
    )
    assert cycle_until_done_slurm(wf) == 1
    assert final_states(wf) == dict.fromkeys(names, "QUEUED:Pass")
    for ds in waiting:
        # (step_stats leaves out the Cancelled line: it names the graph's root)
        assert [(s.step, s.state, s.params.get("attempt")) for s in step_stats(wf, ds)] == [
            ("Sleep", "Engaged", "1"),
            ("Sleep", "Pass", "1"),
        ]
        assert (wf / "work" / ds / "runs.log").read_text().split() == ["run"]


def test_multi_line_commands_through_sbatch(tmp_path: Path):
    """The same runner inside a SLURM job: d1 runs all three lines, d2 stops at its
    failing middle line."""
    from test_commands import workflow

    need_slurm()
    wf = workflow(
        tmp_path,
        "cd {workdir}\n"
        "echo one ${SLURM_JOB_ID:+in-slurm} {{braces}} > out.txt\n"
        "if [ {dataset} = d2 ]; then false; fi\n"
        "echo three >> out.txt",
        ids="d1\nd2\n",
    )
    compile_wf(wf)
    snakemake(wf, "slurm", timeout=RUN_TIMEOUT, check=False)
    assert final_states(wf) == {"d1": "CMD:Pass", "d2": "CMD:Fail"}
    assert (wf / "work" / "d1" / "out.txt").read_text() == "one in-slurm {braces}\nthree\n"
    assert (wf / "work" / "d2" / "out.txt").read_text() == "one in-slurm {braces}\n"


def test_the_slurm_bench_measures_datasm_on_both_sides_and_every_job_ran(tmp_path: Path):
    """bench/slurm.py, the README's SLURM figures, at a tiny size: datasm's graph with
    trivial steps, ours, plain Snakemake one rule a job, and plain grouped. Each side
    ends its work, ours submits no job that ran no step, and the counts add up."""
    need_slurm()
    r = subprocess.run(
        ["timeout", "-k", "10", "900", sys.executable, str(REPO / "bench" / "slurm.py"),
         "--no-demo", "--datasets", "0", "--datasm", "2", "--step-minutes", "1",
         "--plain-grouped", "--plain-max", "2"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    table = r.stdout.rsplit("|---|", 1)[1].split("\n\n", 1)[0].strip().splitlines()[1:]
    rows = {c[0].split(": ", 1)[1]: c[1:] for c in (ln.strip("|").split(" | ") for ln in table)}
    assert list(rows) == [
        "padocc",
        "plain Snakemake",
        "plain Snakemake, grouped 1 dataset a job (knob)",
    ]
    sbatch, jobs, no_step, squeue, sacct, wall = rows["padocc"]
    assert no_step == "0" and int(sbatch) == int(jobs) >= 2
    plain, grouped = (
        rows["plain Snakemake"],
        rows["plain Snakemake, grouped 1 dataset a job (knob)"],
    )
    # Plain runs one job per step of the two routes; grouped one job per dataset, each
    # making its whole route.
    assert plain[0] == plain[1] and int(plain[1]) > 2
    assert grouped[:2] == ["2", "2"]
    assert grouped[2] == f"0 (one group each; made {plain[1]}/{plain[1]})"
