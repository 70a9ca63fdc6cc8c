"""The one render path: model + plan -> file contents. Returns strings, mutates nothing."""

from __future__ import annotations

import json
import shlex

import jinja2

from compiler import MANIFEST_VERSION, __version__
from compiler.core.diagnostics import CompileError, Diagnostic, Loc
from compiler.model.types import Workflow
from compiler.render.assets import asset_dir
from compiler.render.manifest import datasets_tsv
from compiler.render.plan import Plan, pending_tsv


def _py(value: object) -> str:
    """A Python literal for a Snakefile (tojson would HTML-escape '<', '>' and '&')."""
    return json.dumps(value, ensure_ascii=False)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["py"] = _py
    return env


def _template_source(name: str) -> str:
    return (asset_dir("templates") / name).read_text(encoding="utf-8")


def render_template(name: str, context: dict) -> str:
    try:
        return _env().get_template(name).render(**context)
    except jinja2.TemplateError as e:
        lineno = getattr(e, "lineno", 0) or 0
        raise CompileError(
            [Diagnostic(Loc(f"templates/{name}", lineno, 1), f"template error: {e}")]
        ) from None


def render_build(model: Workflow, manifest: dict, plan: Plan) -> dict[str, str]:
    """Every file of a build, by name relative to the build directory."""
    build = manifest["build"]
    python = manifest["python"]
    shell = (
        f"{shlex.quote(python)} -m compiler run-step .padocc/builds/{{wildcards.build}} "
        "{wildcards.dataset:q} {wildcards.slot} --attempt {resources.attempt} > {log:q} 2>&1"
    )
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
        "max_retries": max((s.retries for s in model.steps), default=0),
        "shell": shell,
    }
    return {
        "Snakefile": render_template("Snakefile.j2", context),
        "manifest.json": json.dumps(manifest, indent=1, sort_keys=False) + "\n",
        "datasets.tsv": datasets_tsv(model),
        "pending.tsv": pending_tsv(plan),
    }
