"""Shared helpers: real padocc-compile, real Snakemake, on copies of the shipped workflows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "workflows"
REFERENCE = REPO.parent / "shared" / "reference"
PROFILES = REPO / "profiles"
BIN = Path(sys.executable).parent


def padocc(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "compiler", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def compile_wf(wf: Path) -> subprocess.CompletedProcess:
    r = padocc("compile", str(wf))
    assert r.returncode == 0, r.stderr
    return r


def snakemake(
    wf: Path,
    profile: str = "local",
    extra: tuple[str, ...] = (),
    timeout: int = 600,
    check: bool = True,
) -> subprocess.CompletedProcess:
    # Snakemake ignores SIGTERM while it waits on jobs: always a hard timeout.
    cmd = [
        "timeout",
        "-k",
        "10",
        str(timeout),
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        str(PROFILES / profile),
        "-s",
        str(wf / "Snakefile"),
        "-d",
        str(wf),
        *extra,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check:
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def pending_count(wf: Path) -> int:
    return (wf / ".padocc" / "current" / "pending.tsv").read_text().count("\n")


def cycle_until_done(wf: Path, max_cycles: int = 6, profile: str = "local") -> int:
    """Compile and run as cron would, until nothing is pending. Returns cycles run."""
    for n in range(1, max_cycles + 1):
        compile_wf(wf)
        if pending_count(wf) == 0:
            return n - 1
        snakemake(wf, profile)
    compile_wf(wf)
    assert pending_count(wf) == 0, "work left after max cycles"
    return max_cycles


def final_states(wf: Path) -> dict[str, str]:
    from compiler.core.statusfile import position_of, read_history

    out = {}
    for f in sorted((wf / "status").glob("*.status")):
        pos = position_of(read_history(f).stats)
        out[f.name[: -len(".status")]] = f"{pos.step}:{pos.state}"
    return out


def stat_lines(wf: Path, ds: str) -> list[str]:
    """The record lines: STAT, and COMM for the non-binding ones (Retry, Blocked, ...)."""
    return [
        ln
        for ln in (wf / "status" / f"{ds}.status").read_text().splitlines()
        if ln.startswith(("STAT:", "COMM:"))
    ]


def steps_run(wf: Path, ds: str) -> Counter:
    """What the demo's commands themselves logged: each real run of each step."""
    p = wf / "work" / ds / "runs.log"
    return Counter(p.read_text().split()) if p.exists() else Counter()


# What runs leave in a workflow directory: a test copy starts without any of it.
GENERATED = shutil.ignore_patterns(
    ".padocc", ".snakemake", "Snakefile", "status", "work", "gates", "complete", "logs", "profiles"
)


def fresh_copy(name: str, dst: Path) -> Path:
    """A shipped workflow (workflows/<name>) copied to dst as if never run."""
    shutil.copytree(WORKFLOWS / name, dst, ignore=GENERATED)
    return dst


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return fresh_copy("demo", tmp_path / "demo")


def tree_snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
