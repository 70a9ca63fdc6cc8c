"""`pip install .` gives a working padocc-compile that finds its templates and profiles."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO

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
