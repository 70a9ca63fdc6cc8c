"""`pip install .` gives a working padocc-compile that finds its templates and profiles."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import BIN, REPO, final_states, fresh_copy

from compiler.render.assets import asset_dir


def test_wheel_carries_templates_profiles_demo_and_scripts(tmp_path: Path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                        "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    (whl,) = tmp_path.glob("padocc_compile-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for need in ("compiler_assets/templates/Snakefile.j2", "compiler_assets/templates/dashboard.html.j2",
                 "compiler_assets/profiles/slurm/config.yaml", "compiler_assets/profiles/local/config.yaml",
                 "compiler_assets/demo/workflow.yaml", "compiler_assets/demo/validation/transitions.yaml",
                 "compiler_assets/demo/bin/demo_step.py", "compiler/runtime/wrapper.py"):
        assert need in names, need
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(whl).read(entry).decode()
    assert "padocc-compile = compiler.cli:compile_main" in text and "padocc = compiler.cli:main" in text


def test_installed_package_reads_its_own_assets():
    """Installed (as .ci/run does), the assets come from the wheel's compiler_assets;
    from a bare checkout, from the repo's own folders."""
    import importlib.util

    for kind, probe in (("templates", "Snakefile.j2"), ("profiles", "slurm/config.yaml"), ("demo", "workflow.yaml")):
        d = asset_dir(kind)
        assert (d / probe).is_file(), d
        spec = importlib.util.find_spec(f"compiler_assets.{kind}")
        if spec is not None:
            assert str(d) in list(spec.submodule_search_locations), (kind, d)
        else:
            assert d.is_relative_to(REPO), (kind, d)


def _script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """A console script of the environment the tests run in (.ci/run: a plain,
    non-editable `pip install .`), run outside the repo."""
    return subprocess.run([str(BIN / name), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip


def test_console_script_compiles_outside_the_repo(tmp_path: Path):
    fresh_copy("demo", tmp_path / "wf")
    r = _script("padocc-compile", "--check", "wf", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "wf/workflow.yaml: ok: 36 datasets, 6 steps\n"), r.stderr
    r = _script("padocc-compile", "wf", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("compiled DEMO: 36 datasets (36 pending) -> wf/Snakefile")
    text = (tmp_path / "wf" / "Snakefile").read_text()
    assert text.startswith("# ====") and "rule advance:" in text  # from the shipped template


def test_readme_demo_command_runs_to_the_end(tmp_path: Path):
    """The README's first command after the install: `padocc demo`, where no
    workflows/demo is, so it copies the shipped demo and runs the shipped local profile."""
    r = _script("padocc", "demo", cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout.splitlines()
    assert out[0] == "demo workflow copied to demo-run/"
    assert [ln for ln in out if ln.startswith("cycle ")] == [
        "cycle 1: running 36 datasets with Snakemake (profile local)"
    ]
    assert out[-4:] == [
        "final states: 1 CheckTime:Quarantined, 1 DEMO:Fail, 34 DEMO:Pass",
        "status files:        demo-run/status/<dataset>.status",
        "generated Snakefile: demo-run/Snakefile  (build: demo-run/.padocc/current/)",
        "resolved model:      demo-run/.padocc/current/manifest.json",
    ]
    run = tmp_path / "demo-run"
    assert len(final_states(run)) == 36
    current = run / ".padocc" / "current"
    assert (run / "Snakefile").read_text() == (current / "Snakefile").read_text()
    assert (current / "manifest.json").is_file()
    # Run again: the earlier demo copy (it carries .padocc-demo) is replaced, and only it.
    (run / "status" / "stale.status").write_text("left by the first demo\n")
    r = _script("padocc", "demo", cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert not (run / "status" / "stale.status").exists() and len(final_states(run)) == 36
