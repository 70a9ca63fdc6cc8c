"""The one render path: model + plan -> file contents. Returns strings, mutates nothing."""

from __future__ import annotations

import json
import keyword
from collections import Counter

import jinja2

from compiler import MANIFEST_VERSION, __version__
from compiler.core.diagnostics import CompileError, Diagnostic, Loc
from compiler.core.manifestio import portable
from compiler.core.names import (
    ROUND_END,
    chunk_log,
    common_first,
    job_log,
    round_file,
    round_log,
    rule_name,
    slot_file,
)
from compiler.model.types import Workflow
from compiler.render import escape
from compiler.render.assets import asset_dir
from compiler.render.gateplan import GateWork
from compiler.render.manifest import datasets_tsv
from compiler.render.plan import Plan, bundles_tsv, pending_tsv
from compiler.render.routes import routing_sections
from compiler.render.write import WORKFLOW_PROFILE


def _env(html: bool) -> jinja2.Environment:
    """HTML pages escape every value as HTML; every other template (the Snakefile, the
    workflow profile) must end each value in one of escape.FILTERS, or rendering fails."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=html,
        finalize=None if html else escape.only_escaped,
    )
    if not html:
        env.filters.update(escape.FILTERS)
    return env


def _template_source(name: str) -> str:
    return (asset_dir("templates") / name).read_text(encoding="utf-8")


def render_template(name: str, context: dict) -> str:
    try:
        return _env(name.endswith(".html.j2")).get_template(name).render(**context)
    except (jinja2.TemplateError, TypeError, ValueError) as e:
        lineno = getattr(e, "lineno", 0) or 0
        raise CompileError(
            [Diagnostic(Loc(f"templates/{name}", lineno, 1), f"template error: {e}")]
        ) from None


def render_build(
    model: Workflow, manifest: dict, plan: Plan, gate_work: GateWork
) -> dict[str, str]:
    """Every file of a build, by name relative to the build directory."""
    # What the build holds names paths inside the workflow directory relative to it:
    # the directory can be moved or copied (runtime finds it from where the build lies).
    manifest = portable(manifest)
    build = manifest["build"]
    context = {
        "version": __version__,
        "manifest_version": MANIFEST_VERSION,
        "wf": manifest["workflow"],
        "graph_files": [s["file"] for s in manifest["graph"]["subs"]],
        "build": build,
        "created": manifest["created"],
        "steps": [dict(name=n, **s) for n, s in manifest["steps"].items()],
        "n_datasets": len(model.datasets),
        "n_pending": len(plan.pending),
        "n_jobs": len(plan.jobs),
        "per_job": model.datasets_per_job or plan.per_job,
        "per_job_set": bool(model.datasets_per_job),
        # A job may run several steps, each with its own retries (see model/jobs.py).
        "max_retries": min(10, sum(s.retries for s in model.steps)),
        "slot_rules": _slot_rules(plan, list(manifest["steps"])),
        "rounds": {
            "end": round_file("{build}", ROUND_END),
            "end_log": round_log("{build}", ROUND_END),
            "each": round_file("{build}", "{round}"),
            "each_log": round_log("{build}", "{round}"),
        },
        "has_graph": bool(model.graph.entry),
        "routing": routing_sections(
            model.graph, {s["name"]: s["file"] for s in manifest["graph"]["subs"]}
        ),
        "gates": [
            _gate_context(name, g, build) for name, g in manifest["gates"].items() if g["command"]
        ],
        "gate_waiting": len(gate_work.waiting),
        "gate_targets": len(gate_work.targets),
        "gates_file": manifest["gates_file"],
        # Only when the workflow names them: an empty value would override the
        # profile's default-resources, and the SLURM plugin would submit without -A.
        "slurm": {
            k: any(
                r["resources"][f"slurm_{k}"]
                for r in [*manifest["steps"].values(), *manifest["gates"].values()]
            )
            for k in ("partition", "account")
        },
    }
    files = {
        "Snakefile": render_template("Snakefile.j2", context),
        "manifest.json": json.dumps(manifest, indent=1, sort_keys=False) + "\n",
        "datasets.tsv": datasets_tsv(model),
        "pending.tsv": pending_tsv(plan),
        "jobs.tsv": bundles_tsv(plan.jobs),
        "gate_targets.txt": "".join(t + "\n" for t in gate_work.targets),
        "gate_waiting.txt": "".join(t + "\n" for t in gate_work.waiting),
        "status_coverage.json": json.dumps(gate_work.status_coverage) + "\n",
    }
    # Snakemake reads profiles/default/ beside the Snakefile by itself: this is where
    # each gate's parallelOK becomes a global resource limit.
    limits = {rule_name(n): g["parallel"] for n, g in manifest["gates"].items() if g["command"]}
    if limits:
        files[WORKFLOW_PROFILE] = render_template("workflow_profile.yaml.j2", {"limits": limits})
    return files


# The shell of every slot rule.
SLOT_SHELL = (
    "{params.python:q} -m compiler run-step .padocc/builds/{wildcards.build} "
    "{wildcards.job:q} {wildcards.slot} --attempt {resources.attempt} "
    "--runtime {resources.runtime} > {log:q} 2>&1"
    # A wrapper that dies (kill -9, the OOM killer, SLURM's TERM) writes no outcome:
    # its exit status is kept for the next reader, which records the cause.
    ' || {{ rc=$?; echo "$(date -u +%Y%m%d_%H%M%S_%6N) $rc" >> {log:q}.exit; exit $rc; }}'
)


# Rule names the Snakefile already uses, or that a step's name cannot take as is.
_TAKEN = {"all", "advance", "all_rounds", "end_round"}


def step_rule(step: str) -> str:
    """The rule that runs slot 1 of jobs starting at `step`: named as the step, so
    Snakemake's job list and log and the SLURM job comment name it."""
    if step in _TAKEN or step.startswith("gate_") or keyword.iskeyword(step):
        return f"step_{step}"
    return step


def _slot_rules(plan: Plan, steps: list[str]) -> list[dict]:
    """One rule per step of the workflow, then `advance` for a slot whose datasets run
    different steps (a job of several datasets). Each counts the jobs that start at it."""
    firsts = {p.id: p.first for p in plan.pending}
    counts = Counter(common_first(job.members, firsts) for job in plan.jobs)
    rules = [
        {
            "rule": step_rule(step), "step": step, "jobs": counts.get(step, 0),
            "output": slot_file("{build}", "{job}", "{slot}", step),  # type: ignore[arg-type]
        }
        for step in steps
    ]  # fmt: skip
    rules.append({
        "rule": "advance", "step": "", "jobs": counts.get("", 0),
        "output": slot_file("{build}", "{job}", "{slot}"),  # type: ignore[arg-type]
    })  # fmt: skip
    for r in rules:
        n = r["jobs"]
        first = f"slot 1 of {n} job{'s' if n != 1 else ''}, and any later slot" if n else "a slot"
        r["what"] = (
            f"Step {r['step']}: {first} that runs it."
            if r["step"]
            else f"{first[0].upper()}{first[1:]} whose datasets run different steps."
        )
        r["log"] = job_log("{build}", "{job}", "{slot}")
        r["shell"] = SLOT_SHELL
    return rules


def _gate_context(name: str, g: dict, build: str) -> dict:
    keyed = "{key}/" if g["keyed"] else ""
    shell = (
        "{params.python:q} -m compiler run-chunk "
        f".padocc/builds/{escape.shell_word(build)} "
        f"{escape.shell_word(name)} "
        "{wildcards.low} {wildcards.high}"
        + (" --key {wildcards.key:q}" if g["keyed"] else "")
        + " --attempt {resources.attempt} > {log:q} 2>&1"
    )
    return {
        "name": name,
        "rule": rule_name(name),
        "g": g,
        "output": f"gates/{name}/{keyed}{{low}}__{{high}}.done",
        "log": chunk_log(name, "{low}__{high}", "{key}" if g["keyed"] else ""),
        "shell": shell,
        "pres": ", ".join(p["gate"] + _map_text(p["map"]) for p in g["preconditions"]) or "none",
    }


def _map_text(m: dict) -> str:
    if m["hook"]:
        return f" (hook {m['hook_func']})"
    parts = [
        f"{k} {v:g}"
        for k, v in (("offset", m["offset"]), ("lookback", m["before"]), ("lookahead", m["after"]))
        if v
    ]
    return f" ({', '.join(parts)})" if parts else " (same range)"
