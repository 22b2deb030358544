"""The `ssvae` command: validate configs, show arch codes and run ids, list runs, print the naming legend."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import config, naming, runs


def _validate(args) -> int:
    failed = 0
    for path in args.configs:
        for plan in config.load_plans(path):
            label = f"{path}" + (f" [{plan.key}]" if plan.point else "")
            for warning in plan.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            if plan.ok:
                print(f"ok: {label}: {plan.name}__{plan.arch}")
            else:
                failed += 1
                print(f"invalid: {label}: {len(plan.errors)} error(s)", file=sys.stderr)
                for error in plan.errors:
                    print(f"  - {error}", file=sys.stderr)
    return 1 if failed else 0


def _arch(args) -> int:
    status = 0
    for plan in config.load_plans(args.config):
        if not plan.ok:
            status = 1
            for error in plan.errors:
                print(f"error: {error}", file=sys.stderr)
            continue
        pattern = f"{plan.name}__{plan.arch}__<YYYYmmdd_HHMMSS>"
        if args.verbose:
            print(f"{plan.arch}\t{pattern}\tidentity {plan.identity}")
        else:
            print(f"{plan.arch}\t{pattern}")
    return status


def _fmt(value, digits=3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _runs(args) -> int:
    rows = runs.list_runs(args.results)
    if args.arch:
        rows = [r for r in rows if r["arch"] == args.arch]
    if args.name:
        rows = [r for r in rows if r["name"] == args.name or r["name"].startswith(args.name)]
    if not rows:
        print(f"no runs under {args.results}" + (" matching the filters" if args.arch or args.name else ""))
        return 0
    header = ("run id", "status", "test acc", "baseline", "date")
    table = []
    for row in rows:
        headline = row.get("summary", {}).get("headline", {})
        date = f"{row['ts'][:4]}-{row['ts'][4:6]}-{row['ts'][6:8]} {row['ts'][9:11]}:{row['ts'][11:13]}"
        table.append((row["run_id"], row["status"], _fmt(headline.get("accuracy")),
                      _fmt(headline.get("baseline_accuracy")), date))
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    for line in [header, *table]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip())
    return 0


def _legend(args) -> int:
    text = naming.naming_legend(config.defaults()["model"])
    if args.out:
        runs.write_text(args.out, text)
    else:
        print(text)
    return 0


def _run(args) -> int:
    from . import stages

    try:
        for config_path in args.configs:
            for folder in stages.run_experiment(config_path, args.results):
                print(folder)
    except config.ConfigErrors as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssvae", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check configs; exit 1 if any is invalid")
    p.add_argument("configs", nargs="+")
    p.set_defaults(func=_validate)
    p = sub.add_parser("arch", help="print the arch code and run-id pattern a config produces")
    p.add_argument("config")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the run identity hash")
    p.set_defaults(func=_arch)
    p = sub.add_parser("runs", help="table of existing runs")
    p.add_argument("--arch", help="only runs with this arch code")
    p.add_argument("--name", help="only runs whose name is or starts with this")
    p.add_argument("--results", default="results", type=Path)
    p.set_defaults(func=_runs)
    p = sub.add_parser("legend", help="print (or write) the naming legend")
    p.add_argument("--out", type=Path)
    p.set_defaults(func=_legend)
    p = sub.add_parser("run", help="run configs through all five stages in this process, without Snakemake")
    p.add_argument("configs", nargs="+")
    p.add_argument("--results", default="results", type=Path)
    p.set_defaults(func=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OSError as exc:
        fault = runs.write_fault(exc)
        if fault is None:
            raise
        print(f"error: {runs.write_fault_message(fault)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
