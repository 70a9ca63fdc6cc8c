"""The resolved transition graph as Graphviz DOT: steps as boxes inside one cluster per
(sub-)workflow, nested as the workflows are, edges labelled with the outcome state and,
where a route is taken only by some datasets, their routing keys.

Rendering returns a string and reads only the manifest's graph (and, for the
dashboard, counts of datasets per position); every name reaches the text through
`dot_str`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

START, STUCK = "start", "stuck"
MAX_KEYS = 4  # routing keys written on one edge; the rest are counted


def dot_str(text: object) -> str:
    """A DOT double-quoted string: any text, one line, nothing it holds can end it."""
    s = str(text)
    s = s.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + s.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n") + '"'


def _node(sub: str, step: str) -> str:
    return f"{sub}/{step}"


def graph_dot(
    graph: Mapping,
    name: str,
    counts: Mapping[tuple[str, str], Mapping[str, int]] | None = None,
    order: Sequence[str] = (),
) -> str:
    """`graph` is a manifest's `graph`; `counts` (sub, step) -> state -> datasets;
    `order` the steps as the workflow declares them (boxes are drawn in that order)."""
    table: Mapping[str, Mapping[str, dict]] = graph["table"]
    real = set(order)  # the workflow's steps, when given
    counts = counts or {}
    steps: dict[str, list[str]] = {}  # sub -> steps, in first-seen order
    # (from, to) -> state -> routing keys ("" = default)
    edges: dict[tuple[str, str], dict[str, list[str]]] = {}
    ends: set[str] = set()

    def add_step(sub: str, step: str) -> None:
        lst = steps.setdefault(sub, [])
        if step not in lst:
            lst.append(step)

    def target(act: dict) -> str:
        if act["kind"] == "run":
            add_step(act["sub"], act["step"])
            return _node(act["sub"], act["step"])
        if act["kind"] == "final":
            ends.add(act["state"])
            return f"end:{act['state']}"
        ends.add(STUCK)
        return f"end:{STUCK}"

    for pos, acts in table.items():
        sub, _, rest = pos.partition("/")
        step, _, state = rest.partition(":")
        if state == "Engaged":
            continue
        if pos == graph["entry"]:
            src = START
        elif state == "Ready" or (real and step not in real):
            # X:Ready runs X: the step's own box. A position between steps (a
            # sub-workflow's entry or end, kept for datasm's lines) is not a box: the
            # edges through it are drawn from the steps that lead there.
            continue
        else:
            add_step(sub, step)
            src = _node(sub, step)
        for key, act in acts.items():
            edges.setdefault((src, target(act)), {}).setdefault(state, []).append(key)

    parents = {s["name"]: s.get("parent") for s in graph.get("subs", [])}
    children: dict[str | None, list[str]] = {}
    for sub in [s["name"] for s in graph.get("subs", [])] + sorted(set(steps) - set(parents)):
        children.setdefault(parents.get(sub), []).append(sub)

    out = [
        f"digraph {dot_str(name)} {{",
        "  rankdir=TB;",
        '  graph [fontname="Helvetica", fontsize=12];',
        '  node [shape=box, style="rounded,filled", fillcolor="#f4f6fb", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    # Datasets not started stand at the workflow's own Ready, finished ones at its ends.
    at_root = counts.get((graph["root"], graph["root"]), {})

    def with_count(label: str, n: int | None) -> str:
        return f"{label}\n{n}" if n else label

    entry_label = with_count(graph["entry"].partition("/")[2], at_root.get("Ready"))
    out.append(f"  {dot_str(START)} [label={dot_str(entry_label)}, shape=oval];")
    for end in sorted(ends):
        shape = "octagon" if end == STUCK else "doublecircle"
        label = with_count(end, at_root.get(end))
        out.append(f"  {dot_str('end:' + end)} [label={dot_str(label)}, shape={shape}];")

    rank = {step: i for i, step in enumerate(order)}
    for lst in steps.values():
        lst.sort(key=lambda st: rank.get(st, len(rank)))

    def cluster(sub: str, indent: str) -> None:
        out.append(f"{indent}subgraph {dot_str('cluster_' + sub)} {{")
        out.append(f"{indent}  label={dot_str(sub)};")
        for step in steps.get(sub, []):
            label = step
            c = counts.get((sub, step))
            if c:
                label += "\n" + " · ".join(f"{st} {n}" for st, n in sorted(c.items()))
            out.append(f"{indent}  {dot_str(_node(sub, step))} [label={dot_str(label)}];")
        for child in children.get(sub, []):
            cluster(child, indent + "  ")
        out.append(f"{indent}}}")

    for top in children.get(None, []):
        cluster(top, "  ")
    # A state routed to one place for every key is labelled with the state alone;
    # otherwise each edge names its routing keys ("default": every other key).
    places: dict[tuple[str, str], int] = {}
    for (src, _dst), by_state in edges.items():
        for state in by_state:
            places[(src, state)] = places.get((src, state), 0) + 1
    for (src, dst), by_state in edges.items():
        parts = []
        for state, keys in by_state.items():
            shown = "" if src == START else state  # the entry's "state" is only Ready
            if places[(src, state)] > 1:
                named = ["default"] * ("" in keys) + sorted(k for k in keys if k)
                more = f", +{len(named) - MAX_KEYS} more" if len(named) > MAX_KEYS else ""
                shown = f"{shown} [{', '.join(named[:MAX_KEYS])}{more}]".strip()
            if shown:
                parts.append(shown)
        label = "\n".join(parts)
        attrs = f" [label={dot_str(label)}]" if label else ""
        out.append(f"  {dot_str(src)} -> {dot_str(dst)}{attrs};")
    out.append("}")
    return "\n".join(out) + "\n"
