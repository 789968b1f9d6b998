"""Run the benchmark suite: ``python -m bench.run [--only NAME[,NAME]] [--quick]``.

Each benchmark starts its own real server processes (or in-process registries) on loopback,
returns its figures, and the suite writes them to ``bench/results.json`` and prints a table of
every figure against its target. Figures are ratios or percentiles measured within one run.
"""

import argparse
import importlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench.common import BenchContext, Outcome, Row

BENCHMARKS = (
    "sandbox_cost",
    "throughput",
    "precision",
    "cron",
    "first_runs",
    "api_load",
    "scale",
    "isolation",
    "ui_pages",
    "http_calls",
    "fairness",
    "cluster",
)
RESULTS = Path(__file__).resolve().parent / "results.json"


def _machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def _json_safe(value: Any) -> Any:
    """NaN (a figure with no samples) as null: results.json stays strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _table(outcomes: dict[str, Outcome]) -> str:
    lines = []
    label_width = max((len(r.label) for o in outcomes.values() for r in o.rows), default=10)
    value_width = max((len(r.value) for o in outcomes.values() for r in o.rows), default=10)
    for name, outcome in outcomes.items():
        lines.append(f"[{name}]")
        for row in outcome.rows:
            verdict = "" if row.ok is None else ("  ok" if row.ok else "  MISSED")
            target = f"  target {row.target}" if row.target else ""
            lines.append(
                f"  {row.label:<{label_width}}  {row.value:>{value_width}}{target}{verdict}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder and logs")
    args = parser.parse_args(argv)
    names = list(BENCHMARKS)
    if args.only:
        names = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(names) - set(BENCHMARKS))
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {BENCHMARKS}")

    workdir = Path(tempfile.mkdtemp(prefix="arangotasks-bench-"))
    outcomes: dict[str, Outcome] = {}
    report: dict[str, Any] = {
        "machine": _machine(),
        "quick": args.quick,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "benchmarks": {},
    }
    failed = False
    suite_started = time.perf_counter()
    try:
        for name in names:
            load_before = _loadavg()
            print(f"== {name} ... (load average {load_before})", flush=True)
            started = time.perf_counter()
            module = importlib.import_module(f"bench.{name}")
            folder = workdir / name
            folder.mkdir()
            try:
                outcome: Outcome = module.run(BenchContext(quick=args.quick, workdir=folder))
            except Exception:
                failed = True
                traceback.print_exc()
                outcome = Outcome({"error": traceback.format_exc()}, [Row("FAILED", "see log")])
            seconds = time.perf_counter() - started
            outcome.figures["seconds"] = round(seconds, 1)
            # The machine may be shared: the 1-minute load average before and after, for context.
            outcome.figures["load_average"] = [load_before, _loadavg()]
            outcomes[name] = outcome
            report["benchmarks"][name] = {
                "figures": outcome.figures,
                "rows": [vars(row) for row in outcome.rows],
            }
            print(_table({name: outcome}), flush=True)
            print(f"   ({seconds:.0f} s)", flush=True)
    finally:
        report["seconds"] = round(time.perf_counter() - suite_started, 1)
        if args.keep:
            print(f"scratch folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(_json_safe(report), indent=2, ensure_ascii=False, allow_nan=False)
    args.out.write_text(text + "\n", encoding="utf-8")
    print()
    print(f"arangotasks benchmarks — {report['machine']} — {report['seconds']:.0f} s")
    print(_table(outcomes))
    print(f"written to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
