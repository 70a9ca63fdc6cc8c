"""`padocc profile install NAME [--account A] [--partition P] [--dest DIR] [--force]`:
write a shipped Snakemake profile where `snakemake --profile NAME` finds it."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from compiler.render.assets import asset_dir
from compiler.runtime.snakemake_run import user_profile_root

# SLURM account and partition names: what sacctmgr and slurm.conf accept, bounded.
_SLURM_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
SHIPPED = ("local", "slurm")


@dataclass(frozen=True)
class ProfileOptions:
    action: str
    name: str
    account: str = ""
    partition: str = ""
    dest: str = ""
    force: bool = False


def fill(template: str, account: str, partition: str) -> str:
    """The shipped profile text with the commented account/partition lines set."""
    for key, value in (("slurm_account", account), ("slurm_partition", partition)):
        if value:
            template, n = re.subn(
                rf"^(\s*)# {key}: \S+$", rf"\g<1>{key}: {value}", template, count=1, flags=re.M
            )
            if n != 1:
                raise ValueError(f"the shipped profile has no {key} line")
    return template


def run(opts: ProfileOptions) -> int:
    if opts.name not in SHIPPED:
        print(f"padocc profile: error: no shipped profile {opts.name!r} "
              f"(choose from {', '.join(SHIPPED)})", file=sys.stderr)  # fmt: skip
        return 2
    for what, value in (("--account", opts.account), ("--partition", opts.partition)):
        if value and not _SLURM_NAME.fullmatch(value):
            print(f"padocc profile: error: {what} {value[:80]!r} is not a SLURM name "
                  "(letters, digits, _ . -; at most 64)", file=sys.stderr)  # fmt: skip
            return 2
    if opts.name != "slurm" and (opts.account or opts.partition):
        print("padocc profile: error: --account and --partition are for the slurm profile",
              file=sys.stderr)  # fmt: skip
        return 2
    dest = Path(opts.dest) if opts.dest else user_profile_root() / opts.name
    target = dest / "config.yaml"
    if target.exists() and not opts.force:
        print(f"{target}: error: exists; --force replaces it", file=sys.stderr)
        return 2
    text = fill((asset_dir("profiles") / opts.name / "config.yaml").read_text(),
                opts.account, opts.partition)  # fmt: skip
    try:
        dest.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".config.", dir=dest)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, target)
    except OSError as e:
        print(f"{dest}: error: cannot write the profile: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"profile {opts.name} written to {target}")
    if dest == user_profile_root() / opts.name:
        print(f"use it with: snakemake --profile {opts.name}  or  padocc run --profile {opts.name}")
    else:
        print(f"use it with: snakemake --profile {dest}  or  padocc run --profile {dest}")
    return 0
