"""docs/reference.md is made from the schema the loader uses: it cannot drift."""

from __future__ import annotations

from conftest import REPO, padocc

from compiler.commands.reference import OUTLINE, undocumented_records
from compiler.load import schema as S


def test_reference_file_is_the_schema():
    r = padocc("reference")
    assert r.returncode == 0, r.stderr
    assert (REPO / "docs" / "reference.md").read_text() == r.stdout, (
        "docs/reference.md is stale: run `padocc reference > docs/reference.md`"
    )


def test_every_record_and_key_of_the_schema_is_in_the_reference():
    assert undocumented_records() == []
    text = padocc("reference").stdout
    for sec in OUTLINE:
        for key in sec.record.keys:
            assert f"| `{key.name}` | {' or '.join(key.kinds)} |" in text, (sec.where, key.name)


def test_a_key_added_to_the_schema_shows_up(monkeypatch):
    """The test above can fail: a key the schema gains changes the reference."""
    import dataclasses

    from compiler.commands import reference

    before = reference.render_reference()
    grown = S.Record(S.CLOCK.what, (*S.CLOCK.keys, S.K("jitter", S.STR, doc="new")))
    outline = tuple(
        dataclasses.replace(sec, record=grown) if sec.record is S.CLOCK else sec
        for sec in reference.OUTLINE
    )
    monkeypatch.setattr(reference, "OUTLINE", outline)
    assert reference.render_reference() != before
    assert "| `jitter` | string |  | new |" in reference.render_reference()
