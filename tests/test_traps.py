"""Traps a new user fell into (issue 18), each tried as that user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO, TEST_CLUSTER_MARK, padocc, tree_snapshot


def test_demo_refuses_a_directory_it_did_not_make(tmp_path: Path):
    """`padocc demo --dir X` used to delete X whole, a user's own files included."""
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("months of work\n")
    before = tree_snapshot(tmp_path)
    r = padocc("demo", "--dir", str(mine))
    assert r.returncode == 2
    assert r.stderr == (
        f"{mine}: error: not empty and not an earlier demo copy (no .padocc-demo); "
        "choose another --dir\n"
    )
    assert tree_snapshot(tmp_path) == before


def test_demo_dir_dot_in_a_users_directory_deletes_nothing(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("keep me\n")
    before = tree_snapshot(tmp_path)
    r = padocc("demo", "--dir", ".", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.count("\n") == 1 and "not an earlier demo copy" in r.stderr
    assert tree_snapshot(tmp_path) == before


def test_demo_refuses_a_file_or_a_symlink(tmp_path: Path):
    f = tmp_path / "data.nc"
    f.write_bytes(b"\x89HDF")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    for dest in (f, link):
        r = padocc("demo", "--dir", str(dest))
        assert (r.returncode, r.stderr) == (
            2,
            f"{dest}: error: exists and is not a directory; choose another --dir\n",
        )
    assert f.read_bytes() == b"\x89HDF" and not (tmp_path / "elsewhere").exists()


def test_slurm_tests_never_submit_to_a_cluster_that_is_not_ours(tmp_path: Path):
    """The README's test command on a cluster login node sent real jobs to the site's
    scheduler. A client config not written by cluster/start-slurm.sh makes every SLURM
    test skip with one line saying why, before any sbatch."""
    site = tmp_path / "slurm.conf"
    site.write_text("ClusterName=site\nSlurmctldHost=localhost\n")
    assert not site.read_text().startswith(TEST_CLUSTER_MARK)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PADOCC_")}
    env["SLURM_CONF"] = str(site)
    # sinfo/sacct must answer for the check to reach the config: stand-ins that
    # answer, on PATH first (a login node's real clients would answer too).
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool in ("sinfo", "sacct", "sbatch"):
        script = fake / tool
        script.write_text(f"#!/bin/sh\necho {tool} >> {tmp_path}/called\n")
        script.chmod(0o755)
    env["PATH"] = f"{fake}:{env['PATH']}"
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         str(REPO / "tests" / "test_slurm.py")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    # a module-level skip collects no test: pytest's exit 5, with the reason under -rs
    assert r.returncode == 5, r.stdout[-2000:] + r.stderr[-2000:]
    assert "is not the project's test cluster from cluster/start-slurm.sh" in r.stdout
    assert " passed" not in r.stdout and " failed" not in r.stdout
    assert "sbatch" not in (tmp_path / "called").read_text()


def test_typical_use_finds_an_installed_profile(tmp_path: Path, demo: Path):
    """`padocc-compile && snakemake --profile slurm` failed with "no profile found":
    `padocc profile install` puts the shipped profile where Snakemake looks for a name."""
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home)}
    env.pop("XDG_CONFIG_HOME", None)

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            cmd, cwd=demo, env=env, capture_output=True, text=True, timeout=300, check=False
        )

    bindir = Path(sys.executable).parent
    assert run(str(bindir / "padocc-compile")).returncode == 0
    r = run(str(bindir / "snakemake"), "--profile", "local", "-n")
    assert r.returncode != 0  # not installed yet: Snakemake cannot find it by name
    r = run(str(bindir / "padocc"), "profile", "install", "local")
    target = home / ".config" / "snakemake" / "local" / "config.yaml"
    assert (r.returncode, r.stdout.splitlines()[0]) == (0, f"profile local written to {target}")
    r = run(str(bindir / "snakemake"), "--profile", "local", "-n")
    assert r.returncode == 0, r.stderr[-2000:]
    # Never over a profile the user already has, unless asked.
    target.write_text("executor: local\ncores: 1\n")
    r = run(str(bindir / "padocc"), "profile", "install", "local")
    assert (r.returncode, r.stderr) == (2, f"{target}: error: exists; --force replaces it\n")
    assert target.read_text() == "executor: local\ncores: 1\n"


def test_profile_install_fills_account_and_partition(tmp_path: Path):
    dest = tmp_path / "p"
    r = padocc("profile", "install", "slurm", "--account", "proj42", "--partition", "big",
               "--dest", str(dest))  # fmt: skip
    assert r.returncode == 0, r.stderr
    import yaml

    conf = yaml.safe_load((dest / "config.yaml").read_text())
    assert conf["executor"] == "slurm"
    assert (conf["default-resources"]["slurm_account"],
            conf["default-resources"]["slurm_partition"]) == ("proj42", "big")  # fmt: skip
    # The shipped template names no account or partition of ours.
    shipped = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert not {"slurm_account", "slurm_partition"} & shipped["default-resources"].keys()
    for bad in ("a b", "x;rm -rf /", "-p", "a" * 65, "ü"):
        r = padocc("profile", "install", "slurm", f"--account={bad}", "--dest", str(tmp_path / "q"))
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (bad, r.stderr)
        assert not (tmp_path / "q").exists()
