"""The routing table as the Snakefile's header shows it: per (sub-)workflow, each
`Step:State` a dataset can stand at, where it goes next for each routing key, and the
line of the graph file that says so. Plain text cells: the template escapes them."""

from __future__ import annotations

from compiler.model.types import Action, Graph

DEFAULT = "default"


def _target(act: Action, sub: str) -> str:
    if act.kind == "run":
        return f"run {act.step}" if act.sub == sub else f"run {act.sub}/{act.step}"
    if act.kind == "final":
        return act.state  # the workflow's end: Pass or Fail
    return "stuck (quarantined)"  # the reason, with its file position, is in the manifest


def routing_sections(graph: Graph, files: dict[str, str]) -> list[dict]:
    """[{"sub", "file", "rows": [text of one route]}] in the order of the graph's
    sub-workflows; `files` maps each sub-workflow to its graph file, relative to the
    workflow directory. A position routed one way for every key has one row (key
    "default"); otherwise a row per routing key that goes elsewhere, then "default"."""
    lines = dict(graph.lines)
    by_sub: dict[str, list[tuple[int, str, list[tuple[str, str]]]]] = {}
    for pos, acts in graph.table:
        sub, _, at = pos.partition("/")
        routed = dict(acts)
        keyed = sorted((k, _target(a, sub)) for k, a in routed.items() if k)
        rows = [*keyed, (DEFAULT, _target(routed[""], sub))] if "" in routed else keyed
        by_sub.setdefault(sub, []).append((lines.get(pos, 0), at, rows))
    out = []
    for s in graph.subs:
        entries = sorted(by_sub.get(s.name, []), key=lambda e: (e[0] == 0, e[0], e[1]))
        width_at = max((len(at) for _, at, _ in entries), default=0)
        width_key = max((len(k) for _, _, rows in entries for k, _ in rows), default=0)
        width_to = max((len(t) for _, _, rows in entries for _, t in rows), default=0)
        rows = []
        for line, at, routes in entries:
            for i, (key, to) in enumerate(routes):
                head = at if i == 0 else ""
                where = (f"line {line}" if line else "(implied)") if i == 0 else ""
                rows.append(
                    f"{head.ljust(width_at)}  {key.ljust(width_key)} -> {to.ljust(width_to)}  "
                    f"{where}".rstrip()
                )
        out.append({"sub": s.name, "file": files.get(s.name, s.file), "rows": rows})
    return out
