"""The input schema, declared once and checked before any work starts.

Each `Record` lists the keys a YAML mapping may hold. `check` rejects unknown keys
(with a suggested spelling), missing required keys and values of the wrong kind,
always at the user's line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compiler.core.diagnostics import Loc, fail, suggest
from compiler.load.yamlpos import YList, YMap

# Kinds a value may have; names are what the error message shows.
STR, INT, NUM, BOOL, MAP, LIST = "string", "integer", "number", "boolean", "mapping", "list"


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return NUM
    if isinstance(value, str):
        return STR
    if isinstance(value, dict):
        return MAP
    if isinstance(value, list):
        return LIST
    return "null" if value is None else type(value).__name__


@dataclass(frozen=True)
class Key:
    name: str
    kinds: tuple[str, ...]
    required: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Record:
    what: str  # e.g. "step", shown in messages
    keys: tuple[Key, ...]
    open_keys: bool = False  # a mapping of user-chosen names (e.g. steps), not fixed keys
    by_name: dict = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {k.name: k for k in self.keys})


def check_kind(value: Any, kinds: tuple[str, ...], loc: Loc, what: str) -> None:
    k = kind_of(value)
    if k in kinds or (k == INT and NUM in kinds):
        return
    article = "an" if kinds[0][0] in "aeiou" else "a"
    raise fail(loc, f"{what} must be {article} {' or '.join(kinds)}, not {k}")


def check(value: Any, record: Record, loc: Loc) -> YMap:
    """Validate one mapping against its record; returns it typed as YMap."""
    check_kind(value, (MAP,), loc, record.what)
    assert isinstance(value, YMap)
    for key in value:
        spec = record.by_name.get(key)
        if spec is None:
            raise fail(
                value.key_loc(key),
                f"unknown key '{key}' in {record.what}{suggest(key, record.by_name)}",
            )
        check_kind(value[key], spec.kinds, value.val_loc(key), f"'{key}'")
    for spec in record.keys:
        if spec.required and spec.name not in value:
            raise fail(value.loc, f"{record.what} is missing required key '{spec.name}'")
    return value


def str_list(value: Any, loc: Loc, what: str) -> list[tuple[str, Loc]]:
    """A list of strings (a lone string counts as a list of one), with positions."""
    if isinstance(value, str):
        return [(value, loc)]
    check_kind(value, (LIST,), loc, what)
    out = []
    for i, item in enumerate(value):
        iloc = value.item_loc(i) if isinstance(value, YList) else loc
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            # A float would lose its text (1.10 -> 1.1), a boolean be 'True'.
            raise fail(iloc, f"{what} entries must be strings, not {kind_of(item)}")
        out.append((str(item), iloc))
    return out


def K(name: str, *kinds: str, required: bool = False, doc: str = "") -> Key:
    return Key(name, tuple(kinds), required, doc)


RESOURCES = Record(
    "resources",
    (
        K("runtime", INT, STR, doc="minutes, or a duration like '2h', '90m'"),
        K("mem_mb", INT, STR, doc="megabytes, or a size like '16G', '500M'"),
        K("mem", INT, STR, doc="alias of mem_mb accepting sizes like '16G'"),
        K("cpus_per_task", INT),
        K("slurm_partition", STR),
        K("slurm_account", STR),
    ),
)

RETRY_GROWTH = Record(
    "retry_growth",
    (
        K("mem_factor", NUM, doc="memory multiplier per retry (default 2)"),
        K("mem_max", INT, STR, doc="memory cap, e.g. '64G'"),
        K("runtime_factor", NUM, doc="time-limit multiplier per retry (default 1.5)"),
        K("runtime_max", INT, STR, doc="time-limit cap, e.g. '24h'"),
    ),
)

# How long a failed attempt waits before the next one: declared once, for steps and
# for the workflow's defaults.
RETRY_DELAY_KEYS = (
    K("retry_delay", INT, STR, doc="how long a failed attempt waits before the next: '10m'"),
    K("retry_backoff", NUM, doc="factor the delay grows by after each further failure (default 1)"),
    K("retry_delay_max", INT, STR, doc="longest delay, e.g. '6h' (default: no cap)"),
)

STEP = Record(
    "step",
    (
        K("command", STR, required=True, doc="shell command template"),
        K("resources", MAP),
        K("retries", INT),
        K("retry_growth", MAP),
        *RETRY_DELAY_KEYS,
        K("states", LIST, doc="extra states the command may name, e.g. [Warning]"),
        K("inputs", LIST, STR, doc="files staged into the work dir first: paths in the site's store"),
        K("outputs", LIST, STR, doc="files the step makes, relative to its work dir (globs allowed)"),
        K("temp", LIST, STR, doc="intermediates (work-dir globs) removed once the dataset ends"),
        K("doc", STR),
    ),
)

SITE = Record(
    "site",
    (
        K("shared_fs", BOOL, doc="jobs see the store as a shared filesystem (default true)"),
        K("stage", STR, doc="with a shared filesystem: link or copy (default link)"),
        K("store", STR, doc="the central store: a directory (default: no staging)"),
        K("storage_provider", STR, doc="Snakemake storage plugin without a shared fs (default fs)"),
    ),
)

LEVEL = Record(
    "walk level",
    (
        K("facet", STR, doc="facet this level names; omit to iterate without naming"),
        K("from", STR, doc="key (or /absolute/path) holding the values; default: the node itself"),
        K("descend", BOOL, doc="move into the chosen value (default true)"),
        K("skip", LIST, STR, doc="facet values to drop"),
        K("attrs", LIST, STR, doc="keys of the node copied into facets"),
        K("split", MAP, doc="{sep: '.', into: [a, b]} splits the value into more facets"),
        K(
            "except",
            LIST,
            STR,
            doc="later facets that the chosen node's except list filters (datasm's scope)",
        ),
    ),
)

SPLIT = Record("split", (K("sep", STR, required=True), K("into", LIST, required=True)))

WALK = Record(
    "walk",
    (
        K("name", STR, required=True),
        K("root", STR, doc="slash path to the subtree walked, e.g. project/E3SM"),
        K("levels", LIST, required=True),
        K("id", STR, required=True, doc="id template over facets"),
        K("except_key", STR, doc="key of the lists that drop facet values (default 'except')"),
    ),
)

LIST_SOURCE = Record(
    "dataset list",
    (
        K("file", STR, required=True, doc="a file, or a glob: work/{parent}/parts.txt"),
        K("pattern", STR, doc="template reading facets back from each line (the id, unless 'id')"),
        K("id", STR, doc="id template over facets, e.g. '{parent}.{part}' (default: the line)"),
        K("facets", MAP, doc="facets every dataset of this list gets, e.g. {kind: part}"),
    ),
)

DATASETS = Record(
    "datasets",
    (
        K("spec", STR, doc="facet-tree file, datasm dataset_spec.yaml style"),
        K("walks", LIST),
        K("lists", LIST, doc="plain id list files, one id per line"),
        K("facet_maps", MAP, doc="facet -> value -> extra facets"),
        K("flock", STR, doc="a flock directory of groups (a cycle config's flock_dir wins)"),
        K("inputs", STR, doc="glob of a dataset's input files, e.g. data/{dataset}/*.nc"),
        K("input_change", STR, doc="what re-queues a finished dataset whose input is newer: "
          "content (default: size, then SHA-256 for files up to 1 MB) or mtime"),
    ),
)

ROUTE_CASE = Record(
    "routing key case",
    (K("when", MAP, doc="facet: value (or list of values)"), K("key", STR, required=True)),
)

GRAPH = Record(
    "graph",
    (
        K("file", STR, required=True),
        K("entry", STR, doc="Step:State where datasets start (default: the file's first key)"),
    ),
)

# One operator command run when something needs a person; the same key in a workflow
# and in a cycle config (the cycle config's wins).
NOTIFY = Record(
    "notify",
    (
        K("command", STR, required=True, doc="bash; JSON facts on stdin, $1 event, $2 dataset"),
        K("on", LIST, STR, doc="events: fail, quarantined, stuck, cycle_failed (default all)"),
        K("stuck_after", STR, INT, doc="no progress this long is stuck, e.g. 6h (default: off)"),
        K("timeout", STR, INT, doc="the command's time limit (default 60s, at most 1h)"),
    ),
)

WORKFLOW = Record(
    "workflow",
    (
        K("name", STR, required=True, doc="workflow name written in STAT lines"),
        K("datasets", MAP),
        K("graph", MAP, STR),
        K("steps", MAP),
        K("routing_key", STR, LIST),
        K("max_visits", INT, doc="times one step may run for one dataset (default 3)"),
        K("max_steps_per_cycle", INT, doc="cap on steps one dataset runs in one cycle"),
        K("steps_per_job", INT, doc="same-resource steps one job runs back to back (default 4)"),
        K("datasets_per_job", INT, doc="datasets one job runs one after the other (default: chosen by the compile)"),
        K("max_datasets_per_cycle", INT, doc="datasets one cycle takes at most (default 5000); the rest wait, longest waiting first"),
        K("max_chunks_per_cycle", INT, doc="chunks of each gate one cycle makes at most, for gates without max_chunks (default 1000)"),
        K("status_dir", STR, doc="where per-dataset status files live (default status)"),
        K("work_dir", STR, doc="where step commands run and write (default work)"),
        K("defaults", MAP, doc="resources, retries, retry_growth, retry_delay for every step"),
        K("gates", STR, doc="gates file (see docs)"),
        K("site", MAP, doc="staging: shared_fs, stage, store, storage_provider"),
        K("undeclared", STR, doc="files a job leaves but did not declare: keep, tar or remove"),
        K("retain", STR, INT, doc="how long logs and old run directories are kept, e.g. 30d"),
        K("notify", MAP, doc="{command, on, stuck_after, timeout}: tell a person (see notify)"),
        K("doc", STR),
    ),
)

DEFAULTS = Record(
    "defaults",
    (K("resources", MAP), K("retries", INT), K("retry_growth", MAP), *RETRY_DELAY_KEYS),
)

GATES_FILE = Record("gates file", (K("gates", MAP, required=True),))

WANT = Record(
    "want",
    (
        K("low", STR, INT, NUM, required=True),
        K("high", STR, INT, NUM, required=True, doc="a value, or 'now'"),
        K("window", STR, INT, NUM, doc="only the last this much up to high, e.g. 6h"),
    ),
)

INTERVAL = Record("interval", (K("low", STR, INT, NUM, required=True), K("high", STR, INT, NUM, required=True)))

RANGE_MAP = Record(
    "precondition map",
    (
        K("offset", STR, INT, NUM, doc="shift both ends, e.g. '-1h'"),
        K("lookback", STR, INT, NUM, doc="also need this much before"),
        K("lookahead", STR, INT, NUM, doc="also need this much after"),
        K("hook", STR, doc="'file.py:function' in the workflow directory, for the odd case"),
    ),
)

PRECONDITION = Record("precondition", (K("gate", STR, required=True), K("map", MAP)))

GATE = Record(
    "gate",
    (
        K("axis", STR, required=True, doc="time, serial or carrington"),
        K("step", STR, INT, NUM, doc="axis resolution (time: a duration; default 1 / 1s)"),
        K("origin", STR, INT, NUM, doc="where the chunk grid starts (default 1970-01-01 / 0)"),
        K("maxrange", STR, INT, NUM, doc="the largest range one job makes: the chunk size"),
        K("want", MAP, doc="{low, high}: the range to keep covered; high may be 'now'"),
        K("command", STR, doc="makes one chunk: {low}, {high}, {gate}, facets of keyed gates"),
        K("task", STR, doc="the step name in STAT lines (default Make)"),
        K("coverage", STR, doc="status command printing covered 'low high' intervals"),
        K("clock", MAP, doc="{lag: 10m}: a clock gate, covered up to now minus lag"),
        K("parallelOK", INT, doc="chunks of this gate that may run at once (1 to 10,000; default 1)"),
        K("state", STR, doc="ACTIVE or HOLD"),
        K("gaps", LIST, doc="permanent gaps: [{low, high}], never asked for"),
        K("preconditions", LIST),
        K("keyed", BOOL, doc="one gate per dataset of the spec"),
        K("resources", MAP),
        K("retries", INT),
        K("retry_growth", MAP),
        K("max_failures", INT, doc="failed runs of one chunk before it waits for a remake (default 3)"),
        K("max_chunks", INT, doc="chunks one cycle schedules at most (default: the workflow's max_chunks_per_cycle, 1000); the rest wait"),
        K("catch_up", STR, doc="which waiting chunks a cycle makes first: oldest (default) or newest"),
        K("doc", STR),
    ),
)

CLOCK = Record("clock", (K("lag", STR, INT, NUM, required=True),))

CYCLE = Record(
    "cycle config",
    (
        # SHEPARD's own keys, unchanged
        K("source_venv", STR, doc="virtual environment activated for the jobs"),
        K("batch_limit", INT, doc="jobs submitted per cycle at most (SHEPARD's default 100)"),
        K("flock_dir", STR, required=True, doc="where the groups are"),
        K("complete_dir", STR, required=True, doc="where finished groups go"),
        K("common_valid", STR, doc="error-bypass template: differences that are only warnings"),
        K("obliterate_quarantine", BOOL, doc="false only: quarantined datasets are kept"),
        # what a deployment needs besides
        K("workflow", STR, required=True, doc="the workflow directory the flock runs through"),
        K("profile", STR, doc="Snakemake profile: local, slurm or a path (default local)"),
        K("log_dir", STR, doc="where --autolog writes one log per cycle"),
        K("status_dir", STR, doc="where status files live (overrides the workflow's)"),
        K("max_repeats", INT, doc="runs of one step for one dataset before quarantine (SHEPARD: 5)"),
        K("snakemake_timeout", INT, doc="seconds one cycle's Snakemake may run (default 3300)"),
        K("notify", MAP, doc="{command, on, stuck_after, timeout}: wins over the workflow's"),
        K("max_datasets_per_cycle", INT, doc="datasets one cycle takes at most (overrides the workflow's)"),
        K("max_chunks_per_cycle", INT, doc="chunks of each gate one cycle makes at most (overrides the workflow's)"),
    ),
)

CAMPAIGN = Record(
    "campaign",
    (
        K("name", STR, required=True, doc="campaign name; run directories are NAME-<UTC time>"),
        K("workflows", LIST, required=True, doc="the workflows run, in this order"),
        K("run_root", STR, doc="where run directories go (default runs/ beside the campaign file)"),
        K("profile", STR, doc="Snakemake profile: local, slurm or a path (default local)"),
        K("final", MAP, doc="{command, when_run}: one step after the run (BPS finalJob)"),
        K("retain", STR, INT, doc="how long `padocc clean --runs` keeps its run directories"),
        K("rounds", INT, doc="compile-and-run rounds per workflow while datasets have work (default 5)"),
        K("doc", STR),
    ),
)

CAMPAIGN_WORKFLOW = Record(
    "campaign workflow",
    (
        K("dir", STR, required=True, doc="workflow directory, relative to the campaign file"),
        K("label", STR, doc="its name in the run directory (default: the directory's name)"),
        K("facets", MAP, doc="facet: glob (or list of globs): only the datasets that match"),
        K("input_set", STR, doc="file of dataset ids, one a line: only these datasets"),
        K("gates", LIST, doc="[{gate, low, high, key}]: make these ranges (default: each want)"),
        K("profile", STR, doc="Snakemake profile for this workflow (default: the campaign's)"),
        K("doc", STR),
    ),
)

GATE_RANGE = Record(
    "gate range",
    (
        K("gate", STR, required=True),
        K("low", STR, INT, NUM, required=True),
        K("high", STR, INT, NUM, required=True),
        K("key", STR, doc="dataset id of a keyed gate (default: every dataset kept)"),
    ),
)

FINAL_STEP = Record(
    "final step",
    (
        K("command", STR, required=True, doc="shell command: {run_dir}, {campaign}, {outcome}, {python}"),
        K("when_run", STR, doc="always, success or failure (default always): BPS finalJob.whenRun"),
    ),
)
