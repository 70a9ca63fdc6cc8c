"""The fan-out example's two steps, acting in the dataset's work directory.

split DATA ROWS   cut DATA (one number a line) into parts of ROWS lines, p1.txt,
                  p2.txt, ..., then list them in parts.txt, last and atomically, so
                  a compile never reads a half-written listing.
process PART      sum the numbers of PART into result.txt.
"""

import os
import sys
from pathlib import Path


def split(data: Path, rows: int) -> int:
    lines = [ln for ln in data.read_text().splitlines() if ln.strip()]
    names = []
    for i in range(0, len(lines), rows):
        name = f"p{i // rows + 1}.txt"
        Path(name).write_text("\n".join(lines[i : i + rows]) + "\n")
        names.append(name)
    Path("parts.txt.tmp").write_text("".join(n + "\n" for n in names))
    os.replace("parts.txt.tmp", "parts.txt")
    return 0


def process(part: Path) -> int:
    total = sum(int(ln) for ln in part.read_text().split())
    Path("result.txt").write_text(f"sum={total}\n")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "split":
        return split(Path(argv[1]), int(argv[2]))
    if len(argv) == 2 and argv[0] == "process":
        return process(Path(argv[1]))
    print(f"usage: fanout_step.py split DATA ROWS | process PART, not {argv}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
