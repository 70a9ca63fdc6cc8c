"""The README's quickstart, run exactly as printed: its files are taken from the
README, its commands run as a shell runs them, and what it says they print is checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def quickstart() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("## Quickstart")
    return text[start : text.index("\n## ", start + 1)]


def files_and_commands(section: str) -> tuple[dict[str, str], list[str]]:
    files = dict(
        re.findall(
            r"^`(myflow/[^`]+)`[^\n]*\n(?:[^\n`][^\n]*\n)*?\n?```yaml\n(.*?)```",
            section,
            re.S | re.M,
        )
    )
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return files, blocks[-1].strip().splitlines()


def test_the_readme_quickstart_as_printed(tmp_path: Path):
    section = quickstart()
    files, commands = files_and_commands(section)
    assert sorted(files) == [
        "myflow/dataset_spec.yaml", "myflow/transitions.yaml", "myflow/workflow.yaml"
    ]  # fmt: skip
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    # the install block made these: the test's own environment is that install
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = {}
    for cmd in commands:
        r = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=600, check=False)  # fmt: skip
        assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-2000:])
        out[cmd] = r.stdout
    # what the README says they print
    said = re.search(r"`--check` says `([^`]+)`", section)[1]
    assert out["padocc-compile --check myflow"] == said + "\n"
    status = out["padocc status myflow"].splitlines()
    assert re.fullmatch(r"QUICK +QUICK +Pass +3 +0", status[1]), status
    why = out["padocc why myflow QUICK.modelA.pr"].splitlines()
    assert why[0].startswith("QUICK.modelA.pr: QUICK:Pass since ")
    assert "routing key `pr` took the `default` route" in section
    assert not (tmp_path / "myflow/work/QUICK.modelA.pr/plot.txt").exists()
    assert (tmp_path / "myflow/work/QUICK.modelA.tas/plot.txt").read_text() == "plotted tas\n"
    assert (tmp_path / "myflow/work/QUICK.modelB.tas/plot.txt").is_file()
    assert (tmp_path / "myflow/Snakefile").is_file()
    assert len(list((tmp_path / "myflow/status").glob("*.status"))) == 3
