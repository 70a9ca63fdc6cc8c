"""`padocc dashboard`: one self-contained page, checked in a real headless Chromium.

The page is rendered from the fixture of test_status_report.py; Chromium loads it from
disk, runs its script, and we read the counts back from the DOM it dumps, then take a
screenshot. Without Chromium the browser tests skip, unless PADOCC_REQUIRE_BROWSER=1
(CI), where they fail: install it with `apt-get install -y chromium`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_status_report import NOW, A, B, C, D, E, make_fixture

from compiler.commands import dashboard
from compiler.core.manifestio import load_manifest
from compiler.runtime import survey as sv

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync"]

CELLS = {
    ("DEMO", "DEMO", "Ready"): 30,
    ("DEMO", "Generate", "Pass"): 2,
    ("VALIDATION", "CheckTime", "Engaged"): 1,
    ("VALIDATION", "CheckTime", "Quarantined"): 1,
    ("DEMO", "DEMO", "Pass"): 1,
    ("DEMO", "DEMO", "Fail"): 1,
}
SECONDS = {"Generate": 65.0, "CheckTime": 33.0, "FixTime": 14.0, "CheckMeta": 5.0, "Regrid": 100.0, "Publish": 10.0}


def chromium() -> str:
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if exe:
        return exe
    why = "chromium is not installed (apt-get update && apt-get install -y chromium)"
    if os.environ.get("PADOCC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"PADOCC_REQUIRE_BROWSER=1 but {why}")
    pytest.skip(why)


class Dom(HTMLParser):
    """Elements with their attributes, text and ancestors: enough to read data-* back."""

    VOID = {"meta", "link", "br", "img", "input", "hr", "rect", "path"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[dict] = []
        self.stack: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "text": "", "parents": [e["tag"] for e in self.stack],
              "parent_ids": [e["attrs"].get("id") for e in self.stack]}
        self.elements.append(el)
        if tag not in self.VOID:
            self.stack.append(el)

    def handle_startendtag(self, tag, attrs):
        self.elements.append({"tag": tag, "attrs": dict(attrs), "text": "", "parents": [], "parent_ids": []})

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i]["tag"] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        for el in self.stack:
            el["text"] += data

    def by_id(self, ident: str) -> dict:
        found = [e for e in self.elements if e["attrs"].get("id") == ident]
        assert len(found) == 1, f"{len(found)} elements with id {ident!r}"
        return found[0]

    def all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[dict]:
        """Elements by tag, class and attributes (data_step= means data-step=)."""
        return [e for e in self.elements
                if (tag is None or e["tag"] == tag)
                and (cls is None or cls in e["attrs"].get("class", "").split())
                and all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())]


@pytest.fixture
def page(tmp_path: Path) -> Path:
    wf = make_fixture(tmp_path)
    out = tmp_path / "page" / "dashboard.html"
    out.parent.mkdir()
    assert dashboard.run(dashboard.DashboardOptions(str(wf), str(out), now=NOW)) == 0
    return out


def check_counts(dom: Dom) -> None:
    cells = {(e["attrs"]["data-workflow"], e["attrs"]["data-step"], e["attrs"]["data-state"]): e
             for e in dom.all("td", cls="cell")}
    assert {k: int(e["attrs"]["data-count"]) for k, e in cells.items()} == CELLS
    assert cells[("DEMO", "Generate", "Pass")]["attrs"]["data-blocked"] == "1"
    assert int(dom.by_id("total-datasets")["attrs"]["data-count"]) == 36
    assert dom.by_id("total-blocked")["attrs"]["data-count"] == "1"
    # Every step of the graph has a row, the workflow's own last.
    assert [e["attrs"]["data-step"] for e in dom.all("tr", cls="matrix-row")] == \
        ["Generate", "CheckTime", "FixTime", "CheckMeta", "Regrid", "Publish", "DEMO"]
    # Each count links to a list in the page holding exactly that many ids.
    for key, n in CELLS.items():
        (link,) = [e for e in dom.all("a") if cells[key]["attrs"]["id"] in e["parent_ids"]]
        target = dom.by_id(link["attrs"]["href"][1:])
        assert target["tag"] == "details" and int(target["attrs"]["data-count"]) == n
        assert (target["attrs"]["data-workflow"], target["attrs"]["data-step"], target["attrs"]["data-state"]) == key
    per_list = {}
    current = None
    for e in dom.elements:
        if e["tag"] == "details":
            current = e["attrs"]["id"]
            per_list[current] = []
        elif e["tag"] == "li" and "data-dataset" in e["attrs"] and current:
            per_list[current].append(e["attrs"]["data-dataset"])
    for d in dom.all("details"):
        assert len(per_list[d["attrs"]["id"]]) == int(d["attrs"]["data-count"])
    assert per_list[dom.all("details", data_state="Quarantined")[0]["attrs"]["id"]] == [D]
    assert per_list[dom.all("details", data_step="Generate", data_state="Pass")[0]["attrs"]["id"]] == \
        [E, "DEMO.ocean.hist.r3.so"]
    # Time per step: the bars carry their seconds.
    assert {e["attrs"]["data-step"]: float(e["attrs"]["data-seconds"]) for e in dom.all("g", cls="bar")} == SECONDS
    # Failures newest first; markup in parameters stays text.
    rows = dom.all("tr", cls="failure")
    assert [(r["attrs"]["data-dataset"], r["attrs"]["data-step"], r["attrs"]["data-state"]) for r in rows] == \
        [(D, "CheckTime", "Quarantined"), (C, "FixTime", "Fail")]
    assert "note=<b>bold</b>" in rows[1]["text"]
    assert not [e for e in dom.all("b") if "tr" in e["parents"]]
    assert "reason=visit limit: CheckTime already ran 3 times" in rows[0]["text"]
    assert [r["attrs"]["data-dataset"] for r in dom.all("tr", cls="stuck")] == [B]
    assert dom.by_id("coverage")["attrs"]["data-gates"] == "0"
    assert "no gates" in dom.by_id("coverage")["text"]
    # No gates, no empty "Failed gate chunks" section either.
    assert not [e for e in dom.elements if e["attrs"].get("id") == "gate-failures"]
    assert dom.by_id("warnings")["attrs"]["data-count"] == "5"
    assert A not in [r["attrs"].get("data-dataset") for r in rows]


def test_page_stands_alone(page: Path):
    html = page.read_text(encoding="utf-8")
    # Nothing fetched: no external script, style, image or font; no URL but the logs'.
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\(", html)
    assert not [u for u in re.findall(r"\b(?:https?|ftp)://", html)]
    # Log links are relative to the page: a copy of the page and the workflow opens anywhere.
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert all(h.startswith("#") or ("://" not in h and not h.startswith("/")) for h in hrefs)
    logs = [h for h in hrefs if not h.startswith("#")]
    assert logs and all((page.parent / h).resolve().name.endswith(".log") for h in logs)
    # A link reads as it points: no absolute path of this machine in the text either.
    texts = re.findall(r'<a href="[^#"][^"]*">([^<]*)</a>', html)
    assert texts and all(not t.startswith("/") for t in texts), texts
    assert str(page.parent) not in html
    dom = Dom(html)
    assert dom.by_id("js-total")["text"] == "?"  # filled in by the page's script only
    check_counts(dom)


def test_dataset_lists_are_capped(tmp_path: Path):
    wf = make_fixture(tmp_path)
    out = tmp_path / "capped.html"
    assert dashboard.run(dashboard.DashboardOptions(str(wf), str(out), max_list=10, now=NOW)) == 0
    html = out.read_text(encoding="utf-8")
    dom = Dom(html)
    ready = dom.all("details", data_state="Ready")[0]
    assert ready["attrs"]["data-count"] == "30"
    listed = [e["attrs"]["data-dataset"] for e in dom.all("li") if ready["attrs"]["id"] in e["parent_ids"]]
    assert len(listed) == 10 and listed == sorted(listed)
    assert "and 20 more" in ready["text"]


def test_gate_coverage_in_report_and_page(tmp_path: Path):
    """Coverage rows come from the gates' own coverage view: a partly made gate shows
    its done chunks, the permanent gap and what is still missing."""
    from conftest import WORKFLOWS, padocc

    assert sv.coverage({"workflow": {"status_dir": str(tmp_path)}, "gates": {}}) == []
    wf = tmp_path / "hmi"
    shutil.copytree(WORKFLOWS / "hmi", wf)
    r = padocc("gate", "make", "hmi.lev1", "2010-05-01T00:00:00Z", "2010-05-02T00:00:00Z", "-C", str(wf),
               "--now", "2026-01-01T01:00:00Z")
    assert r.returncode == 0, r.stdout + r.stderr
    # paths in a build's manifest are relative to the workflow: read it as commands do
    m = load_manifest(str(wf / ".padocc" / "current" / "manifest.json"))
    rows = {c.gate: c for c in sv.coverage(m)}
    lev1 = rows["hmi.lev1"]
    assert [k for _, _, k in lev1.intervals] == ["done", "permanent", "done", "missing"]
    day = 86400.0
    assert lev1.gaps == ((lev1.low + day, lev1.low + 2 * day),)
    assert abs(lev1.covered - 0.5) < 1e-9
    # `padocc report` shows the same rows, gaps spelled out on each gate's axis.
    r = padocc("report", str(wf))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("gate coverage", 1)[1] == """\
 (6):
GATE             AXIS        FROM                  TO                    COVERED  GAPS
hmi.LOS          time        2010-05-01T00:00:00Z  2010-05-03T00:00:00Z  12.5%    \
2010-05-01T00:00:00Z..2010-05-01T12:00:00Z 2010-05-01T18:00:00Z..2010-05-03T00:00:00Z
hmi.M_daily      time        -                     -                     no want  -
hmi.cosmic_rays  time        2010-05-01T00:00:00Z  2010-05-03T00:00:00Z  0.0%     \
2010-05-01T00:00:00Z..2010-05-03T00:00:00Z
hmi.lev1         time        2010-05-01T00:00:00Z  2010-05-03T00:00:00Z  50.0%    \
2010-05-02T00:00:00Z..2010-05-03T00:00:00Z
hmi.nrt_LOS      time        2026-01-01T00:00:00Z  2026-01-01T01:00:00Z  0.0%     \
2026-01-01T00:00:00Z..2026-01-01T01:00:00Z
hmi.synoptic     carrington  2096                  2097                  0.0%     2096..2097
"""
    doc = json.loads(padocc("report", str(wf), "--format", "json").stdout)
    (row,) = [c for c in doc["coverage"] if c["gate"] == "hmi.lev1"]
    assert (row["covered"], row["gaps"]) == (0.5, [[lev1.low + day, lev1.low + 2 * day]])
    assert [k for _, _, k in row["intervals"]] == ["done", "permanent", "done", "missing"]
    out = tmp_path / "gates.html"
    assert dashboard.run(dashboard.DashboardOptions(str(wf), str(out), now=NOW)) == 0
    dom = Dom(out.read_text(encoding="utf-8"))
    gates = {g["attrs"]["data-gate"]: g for g in dom.all("div", cls="gate")}
    assert dom.by_id("coverage")["attrs"]["data-gates"] == str(len(gates))
    assert gates["hmi.lev1"]["attrs"]["data-gaps"] == "1"
    assert "2010-05-02T00:00:00Z .. 2010-05-03T00:00:00Z" in gates["hmi.lev1"]["text"]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_in_headless_chromium(page: Path, tmp_path: Path):
    exe = chromium()
    profile = tmp_path / "chromium-profile"
    url = page.resolve().as_uri()
    r = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                       capture_output=True, text=True, timeout=180, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = Dom(r.stdout)
    # The script ran: it marks the body and adds up the matrix itself.
    assert dom.all("body")[0]["attrs"].get("data-js") == "ready", r.stderr[-2000:]
    assert dom.by_id("js-total")["text"] == "36"
    check_counts(dom)

    # A count's link opens its list: load the page at one and the <details> is open.
    target = dom.all("details", data_state="Quarantined")[0]["attrs"]["id"]
    assert "open" not in dom.by_id(target)["attrs"]
    r = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", f"{url}#{target}"],
                       capture_output=True, text=True, timeout=180, check=False)
    at = Dom(r.stdout)
    assert [d["attrs"]["id"] for d in at.all("details") if "open" in d["attrs"]] == [target], r.stderr[-2000:]

    # The graph is drawn in the page, with the datasets at each step.
    if shutil.which("dot") or os.environ.get("CI") == "true":
        assert dom.by_id("graph")["attrs"]["data-drawn"] == "yes"
        assert "CheckTime" in dom.by_id("graph")["text"] and "Quarantined 1" in dom.by_id("graph")["text"]
    # The why search answers from the page itself: page.html#why=ID.
    r = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", f"{url}#why={D}"],
                       capture_output=True, text=True, timeout=180, check=False)
    ans = Dom(r.stdout).by_id("why-answer")
    assert ans["attrs"].get("data-found") == "yes", r.stderr[-2000:]
    assert ans["text"].startswith(f"{D}: CheckTime:Quarantined (in VALIDATION) since ")
    assert "quarantined: visit limit: CheckTime already ran 3 times" in ans["text"]

    shot = tmp_path / "shot.png"
    r = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                        "--window-size=1280,1600", "--hide-scrollbars", url],
                       capture_output=True, text=True, timeout=180, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert shot.exists(), r.stderr[-2000:]
    assert _png_size(shot) == (1280, 1600)
    # A blank page compresses to a few kB; this one has tables, bars and text.
    assert shot.stat().st_size > 30_000
    keep = os.environ.get("PADOCC_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
