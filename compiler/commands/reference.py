"""`padocc reference`: every input key, made from the schema the loader checks with.

`padocc reference > docs/reference.md` writes the committed copy; a test fails when
that file and the schema disagree, so the reference cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.load import schema as S
from compiler.model.steps import BUILTIN_PLACEHOLDERS, DEFAULT_RES


@dataclass(frozen=True)
class Section:
    file: str  # which input file
    where: str  # where in that file the mapping sits
    record: S.Record
    note: str = ""


OUTLINE: tuple[Section, ...] = (
    Section("workflow.yaml", "top level", S.WORKFLOW,
            "Datasets start at the graph's entry (`graph: {entry: ...}`, default: the graph "
            "file's first key, datasm's `<NAME>:Ready`). Step commands run in the dataset's "
            "work directory (`work_dir/<dataset>/`), through bash."),
    Section("workflow.yaml", "`datasets:`", S.DATASETS),
    Section("workflow.yaml", "`datasets: walks: - ...`", S.WALK),
    Section("workflow.yaml", "`datasets: walks: - levels: - ...`", S.LEVEL),
    Section("workflow.yaml", "`... levels: - split:`", S.SPLIT),
    Section("workflow.yaml", "`datasets: lists: - ...` (a mapping; a plain string is a file)",
            S.LIST_SOURCE),
    Section("workflow.yaml", "`routing_key: - ...` (a list of cases; a plain string is one key)",
            S.ROUTE_CASE),
    Section("workflow.yaml", "`graph:` (a mapping; a plain string is the file)", S.GRAPH),
    Section("workflow.yaml", "`steps: NAME:`", S.STEP,
            "The step's name is the one the graph's `NAME:Ready -> NAME:Engaged` runs. "
            "`command` fields: "
            + ", ".join(f"`{{{p}}}`" for p in BUILTIN_PLACEHOLDERS)
            + ", and the dataset's facets by name."),
    Section("workflow.yaml", "`defaults:`", S.DEFAULTS,
            "What every step gets unless it sets its own."),
    Section("workflow.yaml", "`resources:` (of a step, of `defaults:`, of a gate)", S.RESOURCES,
            "Sizes: a number of megabytes or `500M`, `16G`, `1T`. Durations: a number of "
            "minutes or `90m`, `2h`, `1h30m`, `1d`, `1:30:00`. Defaults: "
            + ", ".join(f"{k} {v}" for k, v in DEFAULT_RES.items() if v != "")
            + " (runtime in minutes, mem_mb in MB); partition and account: the profile's."),
    Section("workflow.yaml", "`retry_growth:` (of a step, of `defaults:`, of a gate)",
            S.RETRY_GROWTH),
    Section("workflow.yaml", "`site:`", S.SITE),
    Section("workflow.yaml and cycle config", "`notify:`", S.NOTIFY,
            "Run once per event, in the workflow directory, as `bash -c COMMAND "
            "padocc-notify EVENT DATASET`; stdin holds one JSON object (event, workflow, "
            "dataset, step, state, cause, log, time, workflow_dir, host); the environment "
            "PADOCC_EVENT, PADOCC_WORKFLOW, PADOCC_DATASET, PADOCC_STEP, PADOCC_STATE, "
            "PADOCC_LOG. Events: `fail` (a dataset's route ended in Fail), `quarantined`, "
            "`stuck` (no new STAT line for `stuck_after`; needs it), `cycle_failed`."),
    Section("gates file (`gates:` in workflow.yaml)", "top level", S.GATES_FILE),
    Section("gates file", "`gates: NAME:`", S.GATE,
            "Time axes take UTC times (`2024-01-01`, `2024-01-01T06:00:00Z`) and durations "
            "(`10m`, `1h`, `1d`); serial and Carrington axes take numbers."),
    Section("gates file", "`gates: NAME: want:`", S.WANT),
    Section("gates file", "`gates: NAME: clock:`", S.CLOCK),
    Section("gates file", "`gates: NAME: gaps: - ...`", S.INTERVAL),
    Section("gates file", "`gates: NAME: preconditions: - ...`", S.PRECONDITION),
    Section("gates file", "`gates: NAME: preconditions: - map:`", S.RANGE_MAP),
    Section("cycle config (`padocc cycle --conf`)", "top level", S.CYCLE,
            "SHEPARD's own keys are read unchanged; the rest are what a deployment needs."),
    Section("campaign file (`padocc campaign submit`)", "top level", S.CAMPAIGN),
    Section("campaign file", "`workflows: - ...`", S.CAMPAIGN_WORKFLOW),
    Section("campaign file", "`workflows: - gates: - ...`", S.GATE_RANGE),
    Section("campaign file", "`final:`", S.FINAL_STEP),
)  # fmt: skip


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_reference() -> str:
    out = [
        "# Input reference",
        "",
        "Every key each input file may hold, made from the schema the loader checks with",
        "(`compiler/load/schema.py`); do not edit by hand: `padocc reference > docs/reference.md`.",
        "An unknown key, a missing required key or a value of another kind is refused at",
        "its line with exit status 2.",
        "",
    ]
    file = None
    for sec in OUTLINE:
        if sec.file != file:
            file = sec.file
            out += [f"## {file}", ""]
        out += [f"### {sec.where}: {sec.record.what}", ""]
        if sec.note:
            out += [sec.note, ""]
        if sec.record.open_keys:
            out += ["Keys are names you choose.", ""]
        out += ["| key | kind | required | meaning |", "|---|---|---|---|"]
        for k in sec.record.keys:
            kinds = " or ".join(k.kinds)
            out.append(f"| `{k.name}` | {kinds} | {'yes' if k.required else ''} | {_cell(k.doc)} |")
        out.append("")
    return "\n".join(out)


def undocumented_records() -> list[str]:
    """Records of the schema that the outline leaves out (a test keeps this empty)."""
    shown = {id(s.record) for s in OUTLINE}
    return sorted(
        name
        for name, value in vars(S).items()
        if isinstance(value, S.Record) and id(value) not in shown
    )


def run() -> int:
    print(render_reference(), end="")
    return 0
