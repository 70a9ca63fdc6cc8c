"""Synthetic stand-in for JSOC's product builders: writes one small file per chunk
under the gate's work directory and logs each run to ../runs.log (so tests can
count exactly what was made). FAIL_CHUNKS (comma-separated 'gate@low') fail."""

import os
import sys
from pathlib import Path


def main(gate: str, low: str, high: str) -> int:
    with open(Path("..") / "runs.log", "a") as f:
        f.write(f"{gate} {low} {high}\n")
    if f"{gate}@{low}" in os.environ.get("FAIL_CHUNKS", "").split(","):
        print(f"{gate} {low}: synthetic failure", file=sys.stderr)
        return 1
    out = Path(f"{low}_{high}.txt".replace(":", ""))
    out.write_text(f"{gate} covering [{low}, {high})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
