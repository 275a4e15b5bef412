"""The worst time and memory of `cnnspec check` on hostile specs (issue 25).

    python benchmarks/bench_hostile.py [--sizes largest|all] [--json]

Every generator of tests/fuzz/hostile.py (deep, wide, long inputs and specs that try to exhaust the
work budget) at its largest size (or every size), each through `cnnspec check FILE` and
`cnnspec check FILE --diagnostics json` in a fresh process. Prints one row per generator: the
worst wall time and peak memory of its runs, the exit status and the error codes, against the
bounds of issue 25 (hostile.MAX_SECONDS, hostile.MAX_MB), then the worst of all and the machine.
A shared machine gives noisy times: rerun it, and read the load average printed with it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fuzz import hostile  # noqa: E402

#: A run that takes longer than this is stopped and counted as a timeout.
TIMEOUT_S = 30.0


def measure(generator: hostile.Generator, size: int, folder: Path) -> dict[str, object]:
    """The worst of the text and JSON runs of one generated spec."""
    spec = folder / f"{generator.name}-{size}.cnn"
    spec.write_text(generator.make(size), encoding="utf-8")
    row: dict[str, object] = {
        "generator": generator.name,
        "family": generator.family,
        "size": size,
        "bytes": spec.stat().st_size,
        "exit": [],
        "seconds": 0.0,
        "peak_mb": 0.0,
        "codes": set(),
        "traceback": False,
    }
    for args in ((), ("--diagnostics", "json")):
        try:
            run = hostile.run_check(spec, *args, timeout=TIMEOUT_S, cwd=folder)
        except subprocess.TimeoutExpired:
            row["exit"].append("timeout")  # type: ignore[union-attr]
            row["seconds"] = max(row["seconds"], TIMEOUT_S)  # type: ignore[type-var]
            break  # the other form would take as long
        row["exit"].append(run.returncode)  # type: ignore[union-attr]
        row["seconds"] = max(row["seconds"], run.seconds)  # type: ignore[type-var]
        row["peak_mb"] = max(row["peak_mb"], run.peak_mb)  # type: ignore[type-var]
        row["codes"] |= set(re.findall(r"\b([EW]\d{3})\b", run.stderr + run.stdout))  # type: ignore[operator]
        row["traceback"] = row["traceback"] or "Traceback" in run.stderr or "internal error" in run.stderr
    spec.unlink()
    row["codes"] = sorted(row["codes"])  # type: ignore[arg-type]
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", choices=("largest", "all"), default="largest")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnspec-hostile-") as tmp:
        for g in hostile.GENERATORS:
            for size in g.sizes if args.sizes == "all" else g.sizes[-1:]:
                rows.append(measure(g, size, Path(tmp)))
                if not args.json:
                    r = rows[-1]
                    within = (
                        r["seconds"] < hostile.MAX_SECONDS  # type: ignore[operator]
                        and r["peak_mb"] < hostile.MAX_MB  # type: ignore[operator]
                        and set(r["exit"]) <= {0, 1}  # type: ignore[arg-type]
                        and not r["traceback"]
                    )
                    codes = ",".join(r["codes"][:4]) + ("…" if len(r["codes"]) > 4 else "")  # type: ignore[arg-type,index]
                    exits = "/".join(map(str, r["exit"]))  # type: ignore[call-overload]
                    print(
                        f"{r['family']:7} {r['generator']:17} {r['size']:>16,} {r['bytes']:>11,} B  exit {exits:7} "
                        f"{r['seconds']:6.2f} s {r['peak_mb']:7.1f} MB  {'ok  ' if within else 'OVER'} {codes}",
                        flush=True,
                    )
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    worst_t = max(rows, key=lambda r: r["seconds"])  # type: ignore[arg-type,return-value]
    worst_m = max(rows, key=lambda r: r["peak_mb"])  # type: ignore[arg-type,return-value]
    print(
        f"\nworst time {worst_t['seconds']:.2f} s ({worst_t['generator']} {worst_t['size']:,}); "
        f"worst memory {worst_m['peak_mb']:.1f} MB ({worst_m['generator']} {worst_m['size']:,}); "
        f"bounds {hostile.MAX_SECONDS:g} s and {hostile.MAX_MB} MB"
    )
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{os.cpu_count()} cores, load average {load}; Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
