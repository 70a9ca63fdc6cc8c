"""A campaign file -> the frozen campaign it describes (Rubin's steps 1-3).

A campaign names one or more workflow directories (relative to the campaign file),
each with its parameters: facet globs and an input set that choose datasets, gate
ranges to make, a Snakemake profile. It has one final step, run after the whole run
as BPS runs `finalJob` (whenRun ALWAYS / SUCCESS / FAILURE).

Everything is checked here, at the user's line, before anything runs. Gate range
values are kept as written: their axis is known only once the workflow is compiled.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.core.diagnostics import Loc, fail, suggest
from compiler.load import schema as S
from compiler.load.yamlpos import YList, YMap, load_yaml, read_text
from compiler.model.axes import parse_duration_s
from compiler.model.dsfilter import DatasetFilter
from compiler.model.templates import parse_template

WHEN_RUN = ("always", "success", "failure")
FINAL_FIELDS = ("run_dir", "campaign", "outcome", "python")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z")


@dataclass(frozen=True)
class GateRange:
    gate: str
    low: str
    high: str
    key: str | None  # a keyed gate: this dataset; None: every dataset kept
    gate_loc: Loc
    low_loc: Loc
    high_loc: Loc
    key_loc: Loc


@dataclass(frozen=True)
class CampaignWorkflow:
    label: str
    dir: str  # absolute
    shown_dir: str  # as messages show it
    loc: Loc
    dataset_filter: DatasetFilter | None
    input_set: str  # the list file as shown, "" for none
    gates: tuple[GateRange, ...] | None  # None: what each gate's `want` asks for
    profile: str
    profile_loc: Loc


@dataclass(frozen=True)
class FinalStep:
    command: str
    when_run: str  # always | success | failure
    loc: Loc


@dataclass(frozen=True)
class Campaign:
    name: str
    file: str  # as shown
    path: str  # absolute
    run_root: str  # absolute
    workflows: tuple[CampaignWorkflow, ...]
    final: FinalStep | None
    retain_s: int  # 0: no retention set
    rounds: int  # compile-and-run rounds per workflow at most (Rubin: "repeat from 5")

    def as_json(self) -> dict:
        """The fully resolved configuration, as resolved.json records it."""
        return {
            "name": self.name,
            "file": self.file,
            "path": self.path,
            "run_root": self.run_root,
            "retain_s": self.retain_s,
            "rounds": self.rounds,
            "final": None if self.final is None else {
                "command": self.final.command, "when_run": self.final.when_run},
            "workflows": [
                {
                    "label": w.label,
                    "dir": w.dir,
                    "profile": w.profile,
                    "facets": {n: list(g) for n, g, _ in w.dataset_filter.facets}
                    if w.dataset_filter else {},
                    "input_set": {"file": w.input_set, "ids": [i for i, _ in w.dataset_filter.ids]}
                    if w.input_set and w.dataset_filter else None,
                    "gates": None if w.gates is None else [
                        {"gate": g.gate, "low": g.low, "high": g.high, "key": g.key} for g in w.gates],
                }
                for w in self.workflows
            ],
        }  # fmt: skip


def load_campaign(path: Path, shown: str, profile: str | None = None) -> Campaign:
    """Read and check a campaign file; `profile` (the command line's) wins over the file's."""
    doc = load_yaml(path, shown)
    if doc is None:
        raise fail(Loc(shown), "campaign file is empty")
    doc = S.check(doc, S.CAMPAIGN, Loc(shown, 1, 1))
    base = path.resolve().parent
    shown_base = os.path.dirname(shown)
    name = doc["name"]
    if not _NAME.match(name):
        raise fail(
            doc.val_loc("name"), f"campaign name '{name}' must be letters, digits, '_' and '-'"
        )
    default_profile = _profile(base, profile or doc.get("profile", "local"))
    wfs = doc["workflows"]
    assert isinstance(wfs, YList)
    if not wfs:
        raise fail(doc.val_loc("workflows"), "'workflows' must name at least one workflow")
    workflows: list[CampaignWorkflow] = []
    for i, item in enumerate(wfs):
        w = _workflow(S.check(item, S.CAMPAIGN_WORKFLOW, wfs.item_loc(i)), base, shown_base, default_profile,
                      profile)  # fmt: skip
        for other in workflows:
            if other.dir == w.dir:
                raise fail(
                    w.loc,
                    f"workflow directory '{w.shown_dir}' is listed twice (first at line {other.loc.line})",
                )
            if other.label == w.label:
                raise fail(w.loc, f"two workflows are labelled '{w.label}' (first at line {other.loc.line}); "
                                  "give one a 'label'")  # fmt: skip
        workflows.append(w)
    return Campaign(
        name=name,
        file=shown,
        path=str(path.resolve()),
        run_root=str(base / doc.get("run_root", "runs")),
        workflows=tuple(workflows),
        final=_final(doc["final"], doc.val_loc("final")) if "final" in doc else None,
        retain_s=parse_duration_s(doc["retain"], doc.val_loc("retain")) if "retain" in doc else 0,
        rounds=_rounds(doc),
    )


def _rounds(doc: YMap) -> int:
    n = doc.get("rounds", 5)
    if not 1 <= n <= 100:
        raise fail(doc.val_loc("rounds"), "rounds must be between 1 and 100")
    return n


def _profile(base: Path, name: str) -> str:
    """A profile directory beside the campaign file, as an absolute path; else the name
    as given (a shipped profile, or a path from where padocc runs)."""
    p = base / name
    return str(p) if p.is_dir() else name


def _workflow(
    m: YMap, base: Path, shown_base: str, default_profile: str, cli_profile: str | None
) -> CampaignWorkflow:
    rel = m["dir"]
    shown_dir = os.path.normpath(os.path.join(shown_base, rel))
    wf_dir = (base / rel).resolve()
    if not (wf_dir / "workflow.yaml").is_file():
        raise fail(m.val_loc("dir"), f"no workflow.yaml in '{rel}' (relative to the campaign file)")
    label = m.get("label", wf_dir.name)
    if not _NAME.match(label):
        where = m.val_loc("label") if "label" in m else m.val_loc("dir")
        raise fail(where, f"workflow label '{label}' must be letters, digits, '_' and '-'")
    facets = []
    if "facets" in m:
        fm = m["facets"]
        for facet, globs in fm.items():
            gl = S.str_list(globs, fm.val_loc(facet), f"globs of facet '{facet}'")
            if not gl:
                raise fail(fm.val_loc(facet), f"facet '{facet}' needs at least one glob")
            facets.append((facet, tuple(g for g, _ in gl), fm.key_loc(facet)))
    ids: list[tuple[str, Loc]] = []
    input_set = ""
    if "input_set" in m:
        input_set = os.path.normpath(os.path.join(shown_base, m["input_set"]))
        text = read_text(base / m["input_set"], input_set)
        for n, line in enumerate(text.splitlines(), start=1):
            s = line.strip()
            if s and not s.startswith("#"):
                ids.append((s, Loc(input_set, n, line.index(s[0]) + 1)))
    dsf = None
    if facets or "input_set" in m:
        where = m.key_loc("facets") if "facets" in m else m.key_loc("input_set")
        dsf = DatasetFilter(tuple(facets), tuple(ids), "input_set" in m, where)
    gates = None
    if "gates" in m:
        gl = m["gates"]
        assert isinstance(gl, YList)
        gates = tuple(
            _gate_range(S.check(g, S.GATE_RANGE, gl.item_loc(i))) for i, g in enumerate(gl)
        )
    return CampaignWorkflow(
        label=label,
        dir=str(wf_dir),
        shown_dir=shown_dir,
        loc=m.loc,
        dataset_filter=dsf,
        input_set=input_set,
        gates=gates,
        profile=cli_profile
        or (_profile(base, m["profile"]) if "profile" in m else default_profile),
        profile_loc=m.val_loc("profile") if "profile" in m else m.loc,
    )


def _gate_range(g: YMap) -> GateRange:
    return GateRange(
        gate=g["gate"], low=str(g["low"]), high=str(g["high"]), key=g.get("key"),
        gate_loc=g.val_loc("gate"), low_loc=g.val_loc("low"), high_loc=g.val_loc("high"),
        key_loc=g.val_loc("key"),
    )  # fmt: skip


def _final(value: Any, loc: Loc) -> FinalStep:
    m = S.check(value, S.FINAL_STEP, loc)
    when = m.get("when_run", "always")
    if when.lower() not in WHEN_RUN:  # BPS spells them ALWAYS / SUCCESS / FAILURE
        hint = suggest(when.lower(), WHEN_RUN)
        raise fail(
            m.val_loc("when_run"),
            f"'when_run' must be one of {', '.join(WHEN_RUN)}, not '{when}'{hint}",
        )
    cmd, cloc = m["command"], m.val_loc("command")
    parse_template(cmd, cloc, FINAL_FIELDS, "final command", shell=True, noun="placeholder")
    return FinalStep(cmd, when.lower(), m.loc)
