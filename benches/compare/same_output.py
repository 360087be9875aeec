"""Checks that two `gridcover analyze` output folders hold the same results.

    benches/compare/.venv/bin/python benches/compare/same_output.py OLD_OUT NEW_OUT

assignments.parquet is compared by value, column by column (the compression may differ);
every CSV and gaps.geojson byte for byte; summary.json as JSON without its "seconds".
Exit status 0 when everything matches, 1 otherwise (the differences are printed).
"""

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq


def main(a: Path, b: Path) -> int:
    bad = 0
    ta, tb = pq.read_table(a / "assignments.parquet"), pq.read_table(b / "assignments.parquet")
    if ta.schema.names != tb.schema.names:
        print(f"assignments.parquet: columns differ: {ta.schema.names} vs {tb.schema.names}")
        bad += 1
    else:
        for name in ta.schema.names:
            ca, cb = ta.column(name), tb.column(name)
            if ca.type != cb.type or not ca.equals(cb):
                print(f"assignments.parquet: column {name} differs ({ca.type} vs {cb.type})")
                bad += 1
        print(f"assignments.parquet: {ta.num_rows} rows, {len(ta.schema.names)} columns compared")
    names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()})
    for n in names:
        if n == "assignments.parquet" or n.endswith(".tmp"):
            continue
        pa, pb = a / n, b / n
        if not (pa.exists() and pb.exists()):
            print(f"{n}: only in one folder")
            bad += 1
        elif n == "summary.json":
            ja, jb = json.loads(pa.read_text()), json.loads(pb.read_text())
            ja.pop("seconds", None)
            jb.pop("seconds", None)
            if ja != jb:
                print("summary.json differs (besides seconds)")
                bad += 1
        elif pa.read_bytes() != pb.read_bytes():
            print(f"{n} differs")
            bad += 1
        else:
            print(f"{n}: same")
    print("SAME" if bad == 0 else f"{bad} DIFFERENCES")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
