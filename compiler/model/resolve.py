"""Raw workflow -> the frozen resolved model, built once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from compiler.core.diagnostics import CompileError, Loc, fail, suggest
from compiler.core.limits import check_file_name, check_name_length
from compiler.load.schema import SITE, check
from compiler.load.workflow import RawWorkflow, load_workflow
from compiler.load.yamlpos import YMap
from compiler.model.axes import parse_duration_s
from compiler.model.chunks import DEFAULT_MAX_CHUNKS, MAX_WANT_CHUNKS
from compiler.model.datasets import expand_datasets, promised_keys
from compiler.model.dsfilter import DatasetFilter
from compiler.model.gates import resolve_gates
from compiler.model.graph import resolve_graph
from compiler.model.jobs import chain_lengths, job_classes
from compiler.model.notify import resolve_notify
from compiler.model.site import checked_site
from compiler.model.steps import resolve_steps, run_defaults
from compiler.model.templates import parse_template
from compiler.model.types import Graph, Site, Workflow

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z")


def _inside(wf_dir: Path, rel: str, loc: Loc, what: str) -> str:
    p = (wf_dir / rel).resolve()
    if Path(rel).is_absolute() or not (p == wf_dir.resolve() or wf_dir.resolve() in p.parents):
        raise fail(loc, f"{what} must stay inside the workflow directory, not '{rel}'")
    check_dir_or_absent(p, loc, what, rel)
    return str(p)


def check_dir_or_absent(path: Path, loc: Loc, what: str, shown: str) -> None:
    """A directory padocc will write into: refused now if something else holds its name
    (the first job would fail on it, after Snakemake has started)."""
    if path.exists() and not path.is_dir():
        raise fail(loc, f"{what} '{shown}' is not a directory")


def _check_keyed_names(gates, datasets) -> None:
    """A keyed gate keeps one status file per dataset, GATE@ID.status: it must fit a file name."""
    keyed = [g for g in gates if g.keyed]
    if not keyed or not datasets:
        return
    longest = max((d.id for d in datasets), key=len)
    for g in keyed:
        check_file_name(
            f"{g.name}@{longest}.status", g.loc, f"keyed gate '{g.name}' with dataset '{longest}'"
        )


@dataclass(frozen=True)
class Overrides:
    """What a cycle config (or a campaign) sets for the workflow it drives."""

    flock_dir: str | None = None
    status_dir: str | None = None
    max_visits: int | None = None
    common_valid: str | None = None
    dataset_filter: DatasetFilter | None = None  # a campaign's facet globs / input set
    max_datasets_per_cycle: int | None = None  # a cycle config's bounds (win over workflow.yaml)
    max_chunks_per_cycle: int | None = None


def resolve(raw: RawWorkflow, ov: Overrides = Overrides()) -> Workflow:
    has_datasets = bool(raw.walks or raw.lists or raw.has_flock)
    datasets, facets = expand_datasets(raw) if has_datasets else ((), set())
    steps = resolve_steps(raw.steps, raw.defaults, facets)
    doc = raw.doc
    max_datasets = ov.max_datasets_per_cycle or bounded_key(
        doc, "max_datasets_per_cycle", DEFAULT_MAX_DATASETS, MAX_CYCLE_DATASETS
    )
    max_chunks = ov.max_chunks_per_cycle or bounded_key(
        doc, "max_chunks_per_cycle", DEFAULT_MAX_CHUNKS, MAX_WANT_CHUNKS
    )
    keys = {d.routing_key for d in datasets if d.routing_key} | promised_keys(raw, facets)
    if raw.graph is not None:
        graph = resolve_graph(
            raw.graph,
            raw.entry,
            {s.name: s.states for s in steps},
            keys,
            {s.name: s.loc for s in steps},
        )
    else:
        graph = Graph(raw.name, "", (), (), ())
    gates = ()
    if raw.gates is not None:
        gates = resolve_gates(
            raw.gates, raw.dir, run_defaults(raw.defaults), facets, has_datasets, max_chunks
        )
    if any(d.severity == "error" for d in graph.findings):
        raise CompileError(graph.findings)  # errors first, then the warnings
    if not _NAME.match(raw.name):
        raise fail(
            doc.val_loc("name"), f"workflow name '{raw.name}' must be letters, digits, '_' and '-'"
        )
    check_name_length(raw.name, doc.val_loc("name"), "workflow name")
    _check_keyed_names(gates, datasets)
    max_visits = ov.max_visits or doc.get("max_visits", 3)
    if not 1 <= max_visits <= 100:
        raise fail(doc.val_loc("max_visits"), "max_visits must be between 1 and 100")
    max_steps = doc.get("max_steps_per_cycle", 50)
    if not 1 <= max_steps <= 1000:
        raise fail(
            doc.val_loc("max_steps_per_cycle"), "max_steps_per_cycle must be between 1 and 1000"
        )
    if ov.dataset_filter is not None:  # after the graph checks, which need every routing key
        datasets = ov.dataset_filter.apply(raw.name, datasets, facets)
    per_job = doc.get("steps_per_job", 4)
    if not 1 <= per_job <= 100:
        raise fail(doc.val_loc("steps_per_job"), "steps_per_job must be between 1 and 100")
    per_bundle = doc.get("datasets_per_job", 0)  # 0: the compile chooses (render/sizing.py)
    if "datasets_per_job" in doc and not 1 <= per_bundle <= 1000:
        raise fail(doc.val_loc("datasets_per_job"), "datasets_per_job must be between 1 and 1000")
    classes = job_classes(steps)
    chains = chain_lengths(graph, steps, tuple(keys), per_job)
    return Workflow(
        name=raw.name,
        dir=str(raw.dir.resolve()),
        source_file=raw.file,
        datasets=datasets,
        steps=steps,
        graph=graph,
        max_visits=max_visits,
        max_steps_per_cycle=max_steps,
        status_dir=ov.status_dir
        or _inside(
            raw.dir, doc.get("status_dir", "status"), doc.val_loc("status_dir"), "status_dir"
        ),
        work_dir=_inside(raw.dir, doc.get("work_dir", "work"), doc.val_loc("work_dir"), "work_dir"),
        gates=gates,
        gates_file=raw.gates_file,
        common_valid=ov.common_valid or "",
        groups=tuple((g.name, g.digest, tuple(i for i, _, _ in g.entries)) for g in raw.flock),
        quarantined=tuple(
            (g.name, tuple(i for i, _, _ in g.entries)) for g in raw.flock_all if g.ignored
        ),
        skipped=tuple(raw.flock_problems) + tuple(raw.load_warnings),
        inputs=_inputs(raw, facets),
        input_change=_input_change(raw),
        steps_per_job=per_job,
        datasets_per_job=per_bundle,
        max_datasets_per_cycle=max_datasets,
        jobs=tuple((s.name, classes[s.name], chains[s.name]) for s in steps),
        site=checked_site(raw, _site(raw), steps),
        undeclared=_choice(doc, "undeclared", ("keep", "tar", "remove"), "keep"),
        retain_s=parse_duration_s(doc["retain"], doc.val_loc("retain")) if "retain" in doc else 0,
        notify=resolve_notify(doc["notify"], doc.val_loc("notify")) if "notify" in doc else None,
    )


DEFAULT_MAX_DATASETS = 5000
MAX_CYCLE_DATASETS = 10_000_000


def bounded_key(doc: YMap, key: str, default: int | None, most: int) -> int | None:
    """An integer key from 1 to `most` (a cycle's bounds), or `default` when absent."""
    if key not in doc:
        return default
    if not 1 <= doc[key] <= most:
        raise fail(doc.val_loc(key), f"{key} must be between 1 and {most:,}")
    return doc[key]


def _choice(m: YMap, key: str, choices: tuple[str, ...], default: str) -> str:
    value = m.get(key, default)
    if value not in choices:
        raise fail(
            m.val_loc(key),
            f"'{key}' must be one of {', '.join(choices)}, not '{value}'{suggest(value, choices)}",
        )
    return value


def _site(raw: RawWorkflow) -> Site:
    m = raw.doc.get("site")
    if m is None:
        return Site()
    check(m, SITE, raw.doc.val_loc("site"))
    store = m.get("store", "")
    if store and "://" not in store:  # a URL is a storage plugin's query (s3://...)
        store = str((raw.dir / store).resolve())
    return Site(
        shared_fs=m.get("shared_fs", True),
        stage=_choice(m, "stage", ("link", "copy"), "link"),
        store=store,
        storage_provider=m.get("storage_provider", "fs"),
    )


def _inputs(raw: RawWorkflow, facets: set[str]) -> str:
    """`datasets: inputs:`, checked like any template: only facets datasets have."""
    ds = raw.doc.get("datasets")
    if not isinstance(ds, dict) or "inputs" not in ds:
        return ""
    text = ds["inputs"]
    parse_template(text, ds.val_loc("inputs"), facets, "inputs")
    return text


def _input_change(raw: RawWorkflow) -> str:
    ds = raw.doc.get("datasets")
    if not isinstance(ds, dict):
        return "content"
    return _choice(ds, "input_change", ("content", "mtime"), "content")


def build_model(wf_dir: Path, shown_dir: str, ov: Overrides = Overrides()) -> Workflow:
    return resolve(
        load_workflow(wf_dir, shown_dir, Path(ov.flock_dir) if ov.flock_dir else None), ov
    )
