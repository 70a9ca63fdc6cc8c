"""Property-based fuzzing (issue 8) of every loader: random YAML-ish text and random
structures (also valid files with one subtree replaced) never raise anything but
CompileError; the status-file parser never raises at all."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml
from conftest import WORKFLOWS, fresh_copy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.commands.cycle import load_config
from compiler.core.diagnostics import CompileError
from compiler.core.statusfile import parse_history, parse_stat, position_of
from compiler.load.flock import scan_flock
from compiler.load.yamlpos import load_yaml_text
from compiler.model.resolve import build_model

N = 200
FUZZ = settings(
    max_examples=N,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)

YAMLISH = st.text(
    alphabet=st.sampled_from(list(":-[]{},&*!|>'\"#\n \t%@`?~<=.0123456789abcTFnuly_\\/\u00e9")),
    max_size=200,
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(["", "-", "..", "/etc", "{x}", "{", "}", "6h", "1G", "Pass", "a:b", "~"])
)
STRUCT = st.recursive(
    SCALARS,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)


def _dump(value) -> str:
    return yaml.safe_dump(value, allow_unicode=True)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def _replace(doc, path, value):
    if not path:
        return value
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return doc


@st.composite
def mutated(draw, text: str):
    """A valid file with one subtree replaced (or deleted) at random."""
    doc = yaml.safe_load(text)
    paths = list(_paths(doc))
    path = draw(st.sampled_from(paths))
    if path and draw(st.booleans()) and draw(st.booleans()):
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        del parent[path[-1]]
        return _dump(doc)
    return _dump(_replace(doc, path, draw(STRUCT)))


def _file_input(src: str, name: str):
    text = (WORKFLOWS / src / name).read_text()
    return st.one_of(YAMLISH, STRUCT.map(_dump), mutated(text), mutated(text))


_COPIES: dict[str, Path] = {}


def _build(src: str, name: str, content: str) -> None:
    """build_model on one copy of the workflow (made once) with `name` replaced."""
    if src not in _COPIES:
        wf = Path(tempfile.mkdtemp(prefix="padocc-fuzz-")) / src
        fresh_copy(src, wf)
        _COPIES[src] = wf
    wf = _COPIES[src]
    original = (WORKFLOWS / src / name).read_text()
    (wf / name).write_text(content)
    try:
        build_model(wf, src)
    except CompileError:
        pass
    finally:
        (wf / name).write_text(original)


@FUZZ
@given(_file_input("demo", "workflow.yaml"))
def test_fuzz_workflow_yaml(content):
    _build("demo", "workflow.yaml", content)


@FUZZ
@given(_file_input("demo", "dataset_spec.yaml"))
def test_fuzz_dataset_spec(content):
    _build("demo", "dataset_spec.yaml", content)


@FUZZ
@given(_file_input("demo", "transitions.yaml"))
def test_fuzz_transitions_yaml(content):
    _build("demo", "transitions.yaml", content)


@FUZZ
@given(_file_input("demo", "validation/transitions.yaml"))
def test_fuzz_sub_transitions_yaml(content):
    _build("demo", "validation/transitions.yaml", content)


@FUZZ
@given(_file_input("hmi", "gates.yaml"))
def test_fuzz_gates_yaml(content):
    _build("hmi", "gates.yaml", content)


@FUZZ
@given(_file_input("flock", "shepard.yaml"))
def test_fuzz_cycle_config(content):
    with tempfile.TemporaryDirectory() as tmp:
        wf = Path(tmp) / "flock"
        shutil.copytree(WORKFLOWS / "flock", wf, ignore=shutil.ignore_patterns(".padocc", "status"))
        (wf / "shepard.yaml").write_text(content)
        try:
            load_config(str(wf / "shepard.yaml"))
        except CompileError:
            pass


GROUP_TEXT = st.text(
    alphabet=st.sampled_from(list(",\"'#\n\r \t;$()`-./abcXYZ_0123456789\x00\u00e9")), max_size=200
)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abc_.-;$ ", min_size=1, max_size=6),
            st.sampled_from([".csv", ".txt", ".shpignore", ""]),
            GROUP_TEXT | st.binary(max_size=100),
        ),
        max_size=4,
    )
)
def test_fuzz_group_files(groups):
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "groups"
        d.mkdir()
        for name, ext, content in groups:
            p = d / (name + ext)
            if name in (".", "..") or "/" in name:
                continue
            data = content if isinstance(content, bytes) else content.encode("utf-8", "replace")
            try:
                p.write_bytes(data)
            except (IsADirectoryError, FileNotFoundError):
                continue
        try:
            kept, problems = scan_flock(d, "groups")
        except CompileError:
            return
        for g in kept:  # what is kept is safe to use as file names
            for ds_id, _, _ in g.entries:
                assert "/" not in ds_id and not ds_id.startswith(("-", ".")) and ".." not in ds_id


@FUZZ
@given(YAMLISH | STRUCT.map(_dump))
def test_fuzz_yaml_loader(text):
    try:
        load_yaml_text(text, "f.yaml")
    except CompileError:
        pass


STATUS_LINES = st.lists(
    st.one_of(
        st.text(max_size=80),
        st.builds(
            lambda parts: "STAT:" + ":".join(parts),
            st.lists(st.text(alphabet="0123456789_:=,%^ABCPasEngd\r", max_size=12), max_size=8),
        ),
        st.sampled_from(
            [
                "DATASETID=x",
                "STAT:20260101_000000_000000:W:W:A:Engaged:host=h,pid=1",
                "STAT:20260101_000001_000000:W:W:A:Pass:exit=0",
                "STAT:20260101_000002_000000:W:W:A:Cancelled:",
                "STAT:20260101_000003_000000:W:W:A:Blocked:",
                "STAT:99999999_999999_999999:W:W:A:Pass:",
                "STAT:20260101_000004_000000:W:W:A:Pass:%ZZ=%",
                "STAT:::::::",
            ]
        ),  # fmt: skip
    ),
    max_size=12,
)


@settings(max_examples=N * 2, deadline=None, database=None)
@given(STATUS_LINES, st.binary(max_size=200), st.booleans())
def test_fuzz_status_parser_never_raises(lines, junk, torn):
    data = "\n".join(lines).encode("utf-8", "surrogatepass" if False else "replace")
    data = data + (b"" if torn else b"\n") + junk
    h = parse_history(data, "x.status")
    position_of(h.stats)
    for ln in data.decode("utf-8", "replace").split("\n"):
        parse_stat(ln)


_CAMPAIGN_ROOT: list[Path] = []


@FUZZ
@given(_file_input("campaigns", "demo-campaign.yaml"))
def test_fuzz_campaign_file(content):
    """The campaign loader, beside the workflows its file names (../demo, ../hmi)."""
    from compiler.model.campaign import load_campaign

    if not _CAMPAIGN_ROOT:
        root = Path(tempfile.mkdtemp(prefix="padocc-fuzz-"))
        for name in ("campaigns", "demo", "hmi"):
            fresh_copy(name, root / name)
        _CAMPAIGN_ROOT.append(root)
    path = _CAMPAIGN_ROOT[0] / "campaigns" / "fuzz.yaml"
    path.write_text(content)
    try:
        load_campaign(path, "campaigns/fuzz.yaml")
    except CompileError:
        pass


LIST_TEXT = st.text(
    alphabet=st.sampled_from(list("#\n\r \t;$()`-./{}*?[]:=,abcg12_\x00\u00e9")), max_size=120
)


@FUZZ
@given(LIST_TEXT | st.binary(max_size=80), LIST_TEXT | st.binary(max_size=80))
def test_fuzz_dataset_list_files(ids, listing):
    """The `lists:` loaders: a plain id file (granules.txt) and a listing a step wrote
    (work/{parent}/parts.txt, read through `pattern` and `id`)."""
    if "fanout-lists" not in _COPIES:  # its own copy: the list files stay fuzzed
        wf = Path(tempfile.mkdtemp(prefix="padocc-fuzz-")) / "fanout"
        fresh_copy("fanout", wf)
        (wf / "work" / "g1").mkdir(parents=True)
        _COPIES["fanout-lists"] = wf
    wf = _COPIES["fanout-lists"]
    for p, content in ((wf / "granules.txt", ids), (wf / "work" / "g1" / "parts.txt", listing)):
        p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "replace"))
    try:
        model = build_model(wf, "fanout")
    except CompileError:
        return
    for ds in model.datasets:  # what is kept is safe as a file name
        assert "/" not in ds.id and not ds.id.startswith(("-", ".")) and ".." not in ds.id


@FUZZ
@given(_file_input("fanout", "workflow.yaml"))
def test_fuzz_list_sources_in_workflow_yaml(content):
    _build("fanout", "workflow.yaml", content)


# Issue 17: no text reaches the Snakefile unescaped. Any string the resolved model holds
# (whatever bytes, line breaks, quotes or braces) leaves the Snakefile's code exactly as
# it is for a harmless value: only string literals and comments differ, every literal
# is valid Python, and Snakemake's shell formatting sees only its own fields.
HOSTILE = st.lists(
    st.sampled_from(
        list("\n\r\x0c\x0b\x1c\x85\u2028\u2029\t\x00 '\"\\{}#$:;()=ab_\u00e9")
        + ["\udcff", "import os; os.system('touch CANARY')", '"""', "'''"]
    ),
    max_size=12,
).map("".join)
_SNAKE: dict[str, object] = {}


def _snake_base():
    """The demo with two gates (one with a map hook), compiled once, nothing written."""
    if not _SNAKE:
        import io

        from test_injection import base_workflow

        from compiler.commands.compile import CompileOptions, compile_workflow
        from compiler.render.render import render_build

        wf = base_workflow(Path(tempfile.mkdtemp(prefix="padocc-fuzz-")) / "wf")
        rc, c = compile_workflow(CompileOptions(str(wf), write=False), io.StringIO(), io.StringIO())
        assert rc == 0 and c is not None
        _SNAKE.update(wf=wf, c=c, render=render_build)
        _SNAKE["ref"] = _code_of(render_build(c.model, c.manifest, c.plan, c.gate_work))
    return _SNAKE


def _code_of(files: dict[str, str]) -> tuple:
    """The Snakefile's code tokens (comments and line breaks dropped, each string only
    as 'a string'), and the fields each shell string leaves to Snakemake."""
    import ast
    import io
    import string
    import tokenize

    text = files["Snakefile"]
    text.encode("utf-8")  # written as UTF-8: no lone surrogate may be left raw
    code, fields = [], []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL):
            continue
        if tok.type == tokenize.STRING:
            value = ast.literal_eval(tok.string)  # a valid literal, whatever it holds
            if code[-2:] == ["shell", ":"]:  # Snakemake formats it: only its own fields
                fields.append(tuple(f for _, f, _, _ in string.Formatter().parse(value) if f))
            code.append("STRING")
        else:
            code.append(tok.string)
    return tuple(code), tuple(fields)


def _strings_replaced(doc, value: str, keys: bool = False):
    """doc with every string value (not mapping keys) replaced by `value`."""
    if isinstance(doc, str):
        return value
    if isinstance(doc, dict):
        return {k: _strings_replaced(v, value) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_strings_replaced(v, value) for v in doc]
    return doc


@FUZZ
@given(HOSTILE, st.sampled_from(["workflow", "steps", "gates", "graph", "python", "all"]))
def test_fuzz_no_model_string_escapes_into_the_snakefile(value, where):
    import copy

    value = "x" + value  # an empty command would leave its gate out: another Snakefile
    base = _snake_base()
    c = base["c"]
    m = copy.deepcopy(c.manifest)
    for key in ("workflow", "steps", "gates", "graph", "python", "gates_file", "created"):
        if where in (key, "all"):
            m[key] = _strings_replaced(m[key], value)
    if where == "all":
        m["build"] = value
    try:
        files = base["render"](c.model, m, c.plan, c.gate_work)
    except CompileError:  # only a name used as code (a rule name) may refuse
        assert where == "all" or where == "gates" and not value.isidentifier()
        return
    assert _code_of(files) == base["ref"]


@FUZZ
@given(
    HOSTILE.filter(lambda s: "\udcff" not in s),
    st.sampled_from(
        [
            ("workflow.yaml", ("name",)),
            ("workflow.yaml", ("routing_key",)),
            ("workflow.yaml", ("steps", "Generate", "command")),
            ("workflow.yaml", ("steps", "CheckMeta", "states", 0)),
            ("gates.yaml", ("gates", "g.one", "command")),
            ("gates.yaml", ("gates", "g.two", "preconditions", 0, "map", "hook")),
        ]
    ),
)
def test_fuzz_hostile_text_in_the_yaml_is_refused_or_escaped(value, field):
    """The same through the loaders: refused (CompileError), or compiled to a
    Snakefile whose code is unchanged."""
    import io

    from test_injection import put

    from compiler.commands.compile import CompileOptions, compile_workflow

    base = _snake_base()
    wf, (name, path) = base["wf"], field
    original = (wf / name).read_text()
    put(wf, name, path, value)
    try:
        err = io.StringIO()
        rc, c = compile_workflow(CompileOptions(str(wf), write=False), io.StringIO(), err)
        if rc == 2:
            assert len(err.getvalue().splitlines()) == 1 and c is None, err.getvalue()
            return
        assert rc == 0 and c is not None, err.getvalue()
        files = base["render"](c.model, c.manifest, c.plan, c.gate_work)
        assert _code_of(files) == base["ref"]
    finally:
        (wf / name).write_text(original)
