"""The replication workload alone: ``python -m bench.replication [--quick|--smoke]``.

``make bench`` runs it with the others (workload ``replication``,
bench/workloads/replication.py, where what is measured is described); this
runs only it, at a profile's sizes, and writes
``bench/results/<stamp>/replication.json`` (plus ``run.json``) without
touching docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from bench.context import PROFILES, TMP_DIR, Context
from bench.run import RESULTS_DIR, machine, run_replication


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.replication", description=__doc__)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="full")
    ap.add_argument("--quick", action="store_const", dest="profile", const="quick")
    ap.add_argument("--smoke", action="store_const", dest="profile", const="smoke")
    ap.add_argument("--out", default=str(RESULTS_DIR), help="results root directory")
    args = ap.parse_args(argv)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    outdir = Path(args.out) / stamp
    outdir.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        profile_name=args.profile,
        workdir=TMP_DIR / "run" / stamp,
        outdir=outdir,
        workloads=["replication"],
    )
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    run_doc = {
        "stamp": stamp,
        "profile": args.profile,
        "sizes": PROFILES[args.profile],
        "command": "python -m bench.replication "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "peers": [],
        "workloads": ["replication"],
        "machine": machine(),
        "status": "running",
    }
    ok = run_replication(ctx)
    run_doc["status"] = "done"
    (outdir / "run.json").write_text(json.dumps(run_doc, indent=2))
    print((outdir / "replication.json").read_text())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
