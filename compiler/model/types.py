"""The resolved model: frozen dataclasses, built once by `resolve`, never mutated."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.core.diagnostics import Diagnostic, Loc


@dataclass(frozen=True)
class Dataset:
    id: str
    facets: tuple[tuple[str, str], ...]
    routing_key: str
    source: str  # walk name or list file

    def facet_dict(self) -> dict[str, str]:
        return dict(self.facets)


@dataclass(frozen=True)
class Resources:
    runtime: int  # minutes
    mem_mb: int
    cpus_per_task: int
    slurm_partition: str
    slurm_account: str


@dataclass(frozen=True)
class Growth:
    """How resources grow on each retry, with caps (SHEPARD doubles memory)."""

    mem_factor: float
    mem_max: int
    runtime_factor: float
    runtime_max: int


@dataclass(frozen=True)
class Notify:
    """The `notify:` command (model/notify.py, runtime/notify.py)."""

    command: str
    events: tuple[str, ...]
    stuck_after_s: int  # 0: stuck datasets are not looked for
    timeout_s: int
    source: str  # file:line:col of the `notify:` key, for messages


@dataclass(frozen=True)
class RetryDelay:
    """How long a failed attempt waits before the next: delay_min after the first
    failure, times backoff after each further one, at most max_min (0: no cap)."""

    delay_min: int = 0
    backoff: float = 1.0
    max_min: int = 0


@dataclass(frozen=True)
class Step:
    name: str
    loc: Loc
    command: str
    resources: Resources
    retries: int
    growth: Growth
    states: tuple[str, ...]  # outcomes beyond Pass/Fail the command may name
    inputs: tuple[str, ...] = ()  # templates: paths in the site's store, staged in first
    outputs: tuple[str, ...] = ()  # templates (globs allowed), relative to the work dir
    temp: tuple[str, ...] = ()  # work-dir globs removed once the dataset's route has ended
    retry_delay: RetryDelay = RetryDelay()


@dataclass(frozen=True)
class Site:
    """Where inputs come from and outputs go (Rubin's staging steps)."""

    shared_fs: bool = True
    stage: str = "link"  # link | copy, with a shared filesystem
    store: str = ""  # absolute; "" = no staging
    storage_provider: str = "fs"  # Snakemake storage plugin, without a shared filesystem


@dataclass(frozen=True)
class Action:
    """What routing from a position leads to: run a step, finish, or stop stuck."""

    kind: str  # "run" | "final" | "stuck"
    sub: str = ""
    step: str = ""
    state: str = ""  # final state, for "final"
    reason: str = ""  # for "stuck"

    def as_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass(frozen=True)
class SubGraph:
    name: str
    file: str
    parent: str | None


@dataclass(frozen=True)
class Graph:
    root: str
    entry: str  # position key "sub/Step:State"
    subs: tuple[SubGraph, ...]
    # position key -> routing key ("" = default) -> action
    table: tuple[tuple[str, tuple[tuple[str, Action], ...]], ...]
    findings: tuple[Diagnostic, ...]
    # position key -> the line of its `Step:State` key in its sub-workflow's file (a
    # position only implied, like a step's Ready no file writes, has none)
    lines: tuple[tuple[str, int], ...] = ()

    def routes(self) -> dict[str, dict[str, Action]]:
        return {pos: dict(acts) for pos, acts in self.table}

    def table_json(self) -> dict[str, dict[str, dict]]:
        """The table as the manifest stores it and core.routing reads it."""
        return {pos: {k: a.as_json() for k, a in acts} for pos, acts in self.table}


@dataclass(frozen=True)
class Workflow:
    name: str
    dir: str
    source_file: str
    datasets: tuple[Dataset, ...]
    steps: tuple[Step, ...]
    graph: Graph
    max_visits: int
    max_steps_per_cycle: int
    status_dir: str  # absolute
    work_dir: str  # absolute
    gates: tuple = ()  # model.gates.Gate
    gates_file: str = ""
    common_valid: str = ""  # error-bypass template (absolute path), from a cycle config
    groups: tuple = ()  # (name, digest, dataset ids) of the flock groups in this build
    quarantined: tuple = ()  # (name, dataset ids) of groups a .shpignore keeps out of it
    skipped: tuple = ()  # flock groups skipped, and load warnings (repeated keys): printed once each
    inputs: str = ""  # `datasets: inputs:` id-template glob of each dataset's input files
    input_change: str = "content"  # content | mtime: what re-queues a finished dataset
    site: Site = Site()
    undeclared: str = "keep"  # keep | tar | remove: files a job left but did not declare
    retain_s: int = 0  # retention of logs and old run directories, seconds (0 = forever)
    notify: Notify | None = None  # the operator's command (model/notify.py)
    steps_per_job: int = 1
    datasets_per_job: int = 0  # BPS clustering: datasets one job runs in turn; 0 = chosen
    max_datasets_per_cycle: int = 5000  # pending datasets one cycle takes; the rest wait
    # step name -> (job class, chain): see model/jobs.py
    jobs: tuple[tuple[str, int, int], ...] = ()
