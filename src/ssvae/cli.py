"""The `ssvae` command: validate configs, name runs, list, show, diff and compare runs, print the naming legend."""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import fnmatch
import io
import json
import math
import os
import re
import sys
from pathlib import Path

from ssvae import config, disk, document, naming, shapes, text
from ssvae.results import runs, runstate

SORT_KEYS = ("accuracy", "gain", "elbo", "k_eff", "date", "name", "arch", "status", "training_time")


def _out(line: str = "", file=None) -> None:
    """Print text that may hold strings from configs or run folders: no control character reaches the terminal."""
    print(text.terminal_lines(line), file=file or sys.stdout)


def _warn(message: str) -> None:
    _out(f"warning: {message}", file=sys.stderr)


def _validate(args) -> int:
    from ssvae.pipeline import planning, validation

    failed = 0
    searches: dict[str, str | None] = {}
    for path in args.configs:
        for plan in validation.load_plans(path):
            if plan.search:
                searches[path] = plan.search["name"]
            label = f"{path}" + (f" [{plan.key}]" if plan.point else "")
            for warning in plan.warnings:
                _out(f"warning: {warning}", file=sys.stderr)
            if plan.ok:
                _out(f"ok: {label}: {plan.name}__{plan.arch}")
            else:
                failed += 1
                _out(f"invalid: {label}: {len(plan.errors)} error(s)", file=sys.stderr)
                for error in plan.errors:
                    _out(f"  - {error}", file=sys.stderr)
    for name, files in planning.shared_searches(searches).items():
        for path in files:
            failed += 1
            error = planning.shared_search_error(path, [f for f in files if f != path], name)
            _out(f"invalid: {path}: 1 error(s)\n  - {error}", file=sys.stderr)
    return 1 if failed else 0


def existing_run(results: Path, name: str, arch: str, identity: str) -> str | None:
    """The run id of the folder this identity was trained into, if it exists: the ledger's timestamp, or else a
    folder `name__arch__*` whose config.yaml records the identity."""
    ts = runs.recorded_timestamp(results, name, identity)
    if ts and (results / f"{name}__{arch}__{ts}").is_dir():
        return f"{name}__{arch}__{ts}"
    import yaml

    for folder in sorted(results.glob(f"{name}__{arch}__*"), reverse=True):
        try:
            recorded = yaml.safe_load(disk.read_regular(folder / "config.yaml").decode("utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(recorded, dict) and recorded.get("identity") == identity:
            return folder.name
    return None


def _arch(args) -> int:
    from ssvae.pipeline import validation

    status = 0
    for path in args.configs:
        for plan in validation.load_plans(path):
            if not plan.ok:
                status = 1
                for error in plan.errors:
                    _out(f"error: {error}", file=sys.stderr)
                continue
            run_id = existing_run(args.results, plan.name, plan.arch, plan.identity)
            shown = run_id or f"{plan.name}__{plan.arch}__<YYYYmmdd_HHMMSS>"
            if args.verbose:
                where = f"exists in {args.results}" if run_id else "not run yet"
                _out(f"{plan.arch}\t{shown}\tidentity {plan.identity}\t{path}\t{where}")
            else:
                _out(f"{plan.arch}\t{shown}")
    return status


# plan ---------------------------------------------------------------------------------------------

def default_experiments(workflow_config: Path = Path("workflow/config.yaml")) -> list[str]:
    """The configs a plain `snakemake` runs: the workflow's `experiments` setting (a glob or a list; files
    starting with `_` skipped), or `configs/*.yaml` without a workflow config."""
    import glob

    import yaml

    spec = "configs/*.yaml"
    with contextlib.suppress(OSError, yaml.YAMLError, AttributeError):
        spec = (yaml.safe_load(workflow_config.read_text()) or {}).get("experiments", spec)
    if isinstance(spec, list):
        return [str(p) for p in spec]
    return sorted(p for p in glob.glob(str(spec)) if not Path(p).name.startswith("_"))


def _plan(args) -> int:
    from ssvae.pipeline import planning

    files = args.configs or default_experiments()
    if not files:
        _out("no experiment configs (give some, or put them in configs/)", file=sys.stderr)
        return 1
    rows = planning.preview(files, args.results)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 1 if any(r["action"] == "invalid" for r in rows) else 0
    table = [("config", "run id", "action", "stage", "reason")]
    for r in rows:
        config_label = r["config"] + (f" [{r['key']}]" if r["key"] != Path(r["config"]).stem else "")
        run_id = r["run_id"] or (f"{r['name']}__{r['arch']}__(new)" if r["name"] else "-")
        reason = (r["reason"] or "").splitlines()
        table.append((config_label, run_id, r["action"], r["stage"] or "-", reason[0] if reason else ""))
        table += [("", "", "", "", line) for line in reason[1:]]
    widths = [max(len(t[i]) for t in table) for i in range(4)]
    for line in table:
        _out("  ".join(cell.ljust(width) for cell, width in zip(line[:4], widths)) + "  " + line[4])
    counts = {action: sum(r["action"] == action for r in rows) for action in planning.ACTIONS}
    trains = sum(r["stage"] == "train" for r in rows if r["action"] in ("new", "stale"))
    _out(f"\n{counts['new']} new, {counts['stale']} stale, {counts['done']} done, {counts['invalid']} invalid: "
         f"the next snakemake trains {trains} run(s)")
    return 1 if counts["invalid"] else 0


# runs ---------------------------------------------------------------------------------------------

def _fmt(value, digits=3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _points(value, se=None) -> str:
    return document.plus_minus(value, se, signed=True, sep="±", missing="-")


def _date(ts: str) -> str:
    return f"{ts[:4]}-{ts[4:6]}-{ts[6:8]} {ts[9:11]}:{ts[11:13]}"


def _parse_date(text: str, end: bool) -> str:
    """A --since/--until bound as a comparable timestamp: YYYY-mm-dd, YYYY-mm-ddTHH:MM or YYYYmmdd_HHMMSS."""
    for fmt in ("%Y%m%d_%H%M%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y%m%d"):
        try:
            moment = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        if end and fmt in ("%Y-%m-%d", "%Y%m%d"):
            moment = moment.replace(hour=23, minute=59, second=59)
        return moment.strftime(naming.TS_FORMAT)
    raise SystemExit(f"ssvae runs: cannot read the date {text!r} (use YYYY-mm-dd, YYYY-mm-ddTHH:MM or "
                     "YYYYmmdd_HHMMSS)")


def _arch_matches(pattern: str, arch: str) -> bool:
    """A glob (`*_tau_*`) or a prefix (`mix10` matches mix10_tau_ca and mix10-dir_head_plain)."""
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(arch, pattern)
    return arch.startswith(pattern)


def _filter(rows: list[dict], args) -> list[dict]:
    if args.arch:
        rows = [r for r in rows if _arch_matches(args.arch, r["arch"])]
    if args.name:
        rows = [r for r in rows if r["name"] == args.name or r["name"].startswith(args.name)
                or fnmatch.fnmatchcase(r["name"], args.name)]
    if args.status:
        wanted = set(args.status.split(","))
        rows = [r for r in rows if r["status"] in wanted or ("superseded" in wanted and r.get("superseded_by"))]
    if args.tag:
        rows = [r for r in rows if args.tag in (r.get("tags") or [])]
    if args.dataset:
        rows = [r for r in rows if r.get("dataset") == args.dataset]
    if args.sweep:
        rows = [r for r in rows if args.sweep in (r.get("sweep"), r.get("group"))]
    if args.search:
        rows = sorted((r for r in rows if r.get("search") == args.search), key=lambda r: r["trial"])
    if args.since:
        since = _parse_date(args.since, end=False)
        rows = [r for r in rows if r["ts"] >= since]
    if args.until:
        until = _parse_date(args.until, end=True)
        rows = [r for r in rows if r["ts"] <= until]
    return rows


RANKED_WITHIN_BLOCKS = ("accuracy", "gain")


def _sort(rows: list[dict], key: str) -> list[dict]:
    """Metrics best first (missing values last), date newest first, the rest alphabetically. Accuracy and gain
    are ranked within each dataset and test split (`compare.block_of`): scores on other test images are not
    comparable."""
    from ssvae.results.compare import block_of

    column = {"date": "ts", "training_time": "training_time_sec"}.get(key, key)
    if key in ("name", "arch", "status"):
        return sorted(rows, key=lambda r: (str(r.get(column)), r["run_id"]))
    descending = key not in ("training_time",)
    present = [r for r in rows if r.get(column) is not None]
    missing = [r for r in rows if r.get(column) is None]
    ordered = sorted(present, key=lambda r: r[column], reverse=descending)
    if key in RANKED_WITHIN_BLOCKS:
        ordered.sort(key=block_of)  # stable: best first within each block
    return ordered + missing


def differing_config_keys(rows: list[dict]) -> list[str]:
    """The effective config keys (`section.key` of data, model, evaluation) whose values differ between the rows
    that have a config: what sets the listed runs apart."""
    from ssvae.results.compare import flatten_config

    flats = [flatten_config(r["config"]) for r in rows if r.get("config")]
    keys = sorted({k for flat in flats for k in flat})
    return [k for k in keys if len({json.dumps(flat.get(k), sort_keys=True) for flat in flats}) > 1]


def _config_values(row: dict, keys: list[str]) -> dict:
    from ssvae.results.compare import flatten_config

    flat = flatten_config(row.get("config") or {})
    return {k: flat.get(k) for k in keys}


LISTED = ("run_id", "name", "arch", "ts", "status", "superseded_by", "reason", "epoch", "log", "dataset", "tags",
          "group", "sweep", "seed", "data_seed", "split", "n", "accuracy", "accuracy_se", "baseline_accuracy", "gain",
          "gain_se", "elbo", "likelihood", "k_eff", "best_epoch", "epochs_completed", "stopped_early",
          "training_time_sec", "warnings", "path", "progress", "search", "trial", "rung", "epochs_trained",
          "search_value", "search_finished")


STATUS_FILTERS = (*runstate.STATUSES, "superseded")
# What a reader does about a run in each of these states (printed under the table with the run's reason).
NOTED = ("training", "interrupted", "waiting", "stopped", "failed", "stale", "unreadable")


def _not_started(results: Path, rows: list[dict]) -> list[dict]:
    """The runs the latest plans name that have no folder yet: `planned`, never started."""
    from ssvae.results import compare

    listed = {r["run_id"] for r in rows}
    missing = []
    for run in sorted(runs.planned_runs(results).values(), key=lambda run: run["run_id"]):
        if run["run_id"] in listed:
            continue
        parsed = naming.RunId.parse(run["run_id"])
        missing.append({"run_id": run["run_id"], "name": parsed.name, "arch": parsed.arch, "ts": parsed.ts,
                        "status": "planned", "reason": "not started yet", "path": str(results / run["run_id"]),
                        **compare.pending_search_columns(results / run["run_id"], run)})
    return missing


def _check_statuses(wanted: str) -> None:
    unknown = [s for s in wanted.split(",") if s not in STATUS_FILTERS]
    if unknown:
        raise SystemExit(f"ssvae runs: --status {wanted}: unknown status {', '.join(map(repr, unknown))}; "
                         f"allowed: {', '.join(STATUS_FILTERS)} (comma-separated)")


def _runs(args) -> int:
    from ssvae.results import compare
    from ssvae.results.compare import block_of

    if args.status:
        _check_statuses(args.status)
    rows = compare.run_rows(args.results, warn=_warn)
    rows += _not_started(args.results, rows)
    rows = _filter(rows, args)
    hidden = [] if args.all or args.status else [r for r in rows if r.get("superseded_by")]
    rows = [r for r in rows if r not in hidden]
    rows = _sort(rows, args.sort) if args.sort else rows
    keys = differing_config_keys(rows)
    if args.json:
        print(json.dumps([{k: r.get(k) for k in LISTED} | {"config": _config_values(r, keys)} for r in rows],
                         indent=2))
        return 0
    if args.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[*LISTED, *keys], lineterminator="\n")
        writer.writeheader()
        for r in rows:
            out = {k: r.get(k) for k in LISTED} | {k: json.dumps(v) if isinstance(v, (list, dict)) else v
                                                     for k, v in _config_values(r, keys).items()}
            out["progress"] = runs.progress_text(r.get("progress"))
            out["warnings"] = " ".join(r.get("warnings") or [])
            out["tags"] = " ".join(r.get("tags") or [])
            writer.writerow({k: "" if v is None else text.csv_cell(v) for k, v in out.items()})
        sys.stdout.write(buffer.getvalue())
        return 0
    filtered = any(getattr(args, k) for k in ("arch", "name", "status", "tag", "dataset", "sweep", "search", "since",
                                              "until"))
    if not rows:
        _out(f"no runs under {args.results}" + (" matching the filters" if filtered else ""))
    else:
        header = ("run id", "status", "acc %", "± SE", "baseline %", "gain (points)", "warnings", "date")
        if args.search:
            metric = (rows[0].get("search_info") or {}).get("metric") or "metric"
            header = (*header[:2], "rung (epochs)", metric, *header[2:])
        table = []
        for r in rows:
            status = r["status"] + (" (superseded)" if r.get("superseded_by") else "")
            if r["status"] == "training" and r.get("progress"):
                status += " " + runs.progress_text(r["progress"])
            warnings = ",".join(r.get("warnings") or [])
            if r.get("other_warnings"):
                warnings += ("," if warnings else "") + f"+{r['other_warnings']} more"
            searched = ()
            if args.search:
                epochs = "" if r.get("epochs_trained") is None else f" ({r['epochs_trained']})"
                value = r.get("search_value")
                searched = (f"{r.get('rung') or 0}{epochs}",
                            "-" if value is None or not math.isfinite(value) else f"{value:.4f}")
            table.append((r["run_id"], status, *searched,
                          "-" if r.get("accuracy") is None else f"{100 * r['accuracy']:.1f}",
                          "-" if r.get("accuracy_se") is None else f"{100 * r['accuracy_se']:.1f}",
                          "-" if r.get("baseline_accuracy") is None else f"{100 * r['baseline_accuracy']:.1f}",
                          _points(r.get("gain"), r.get("gain_se")) + (" ▼" if (r.get("gain") or 0) < 0 else ""),
                          warnings or "-", _date(r["ts"])))
        widths = [max(len(str(t[i])) for t in [header, *table]) for i in range(len(header))]
        for line in [header, *table]:
            _out("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip())
    if args.search and rows:
        from ssvae.results import searches

        summary = searches.summarise(rows)
        winner = summary["winner"]
        pending = sum(1 for r in rows if r.get("search_finished") is False)
        if pending:
            _out(f"in progress: {len(rows) - pending} of {len(rows)} trial(s) finished")
        if winner is not None:
            _out(f"{'leading so far' if pending else 'winner'}: trial {winner['trial']} ({winner['run_id']}), "
                 f"{summary['metric']} {winner['search_value']:.4f}" + (f" at rung {winner['rung'] or 0}"
                                                                         if pending else ""))
        _out(f"epochs trained{' so far' if pending else ''}: {summary['epochs_spent']:,} of "
             f"{summary['epochs_full']:,} for every trial trained to {summary['rungs'][-1]} epochs")
    blocks = {"/".join(block_of(r)[:2]) for r in rows if r.get("accuracy") is not None}
    if args.sort in RANKED_WITHIN_BLOCKS and len(blocks) > 1:
        _out(f"(ranked within each dataset and test split: {', '.join(sorted(blocks))}; accuracies on different "
             "test images are not compared)")
    noted = [r for r in rows if r["status"] in NOTED and r.get("reason")]
    if noted:
        _out()
        for r in noted:
            log = f" (log: {Path(r['path']) / r['log']})" if r.get("log") else ""
            _out(f"{r['run_id']}: {r['status']}: {r['reason']}{log}")
    if hidden:
        _out(f"({len(hidden)} superseded run(s) hidden: an older identity of the same experiment; --all shows them)")
    return 0


# show / diff --------------------------------------------------------------------------------------

RUN_SPEC = re.compile(r"[a-z0-9][a-z0-9_-]*")


def resolve_run(results: Path, spec: str, rows: list[dict]) -> dict:
    """A run from a run id, a run folder path, a unique run-id prefix, or an experiment name (its current run).

    Nothing else: a folder outside `results`, an empty argument or one with characters no run id has is an
    error (`/` or `''` would otherwise name the one run of a folder, or the current folder)."""
    if not spec.strip():
        raise SystemExit(f"an empty run name; give a run id, a run folder under {results} or an experiment name")
    if "/" in spec or spec in (".", "..") or Path(spec).is_dir():
        folder = Path(spec).resolve()
        if folder.parent != Path(results).resolve() or not folder.is_dir():
            raise SystemExit(f"{text.terminal(spec)!r} is not a run folder under {results} (give a run id, a "
                             f"folder {results}/<run id> or an experiment name)")
        spec = folder.name
    if not RUN_SPEC.fullmatch(spec):
        raise SystemExit(f"{text.terminal(spec)!r} is not a run id, a run folder or an experiment name (they "
                         "hold only a-z, 0-9, '_' and '-')")
    by_id = {r["run_id"]: r for r in rows}
    if spec in by_id:
        return by_id[spec]
    named = [r for r in rows if r["name"] == spec]
    current = [r for r in named if not r.get("superseded_by")]
    if len(current) == 1:
        return current[0]
    prefixed = [r for r in rows if r["run_id"].startswith(spec)]
    if len(prefixed) == 1:
        return prefixed[0]
    matches = current or prefixed
    if matches:
        raise SystemExit(f"{spec!r} matches {len(matches)} runs under {results}: "
                         + ", ".join(r["run_id"] for r in matches[:10]) + "; give the full run id")
    raise SystemExit(f"no run {spec!r} under {results} (give a run id, a run folder or an experiment name; "
                     "`ssvae runs` lists them)")


def _headline_pairs(row: dict) -> list[tuple[str, str]]:
    likelihood = {"bernoulli_nll": "Bernoulli", "gaussian_nll": "Gaussian", "squared_error": "squared error"}
    return [
        ("status", row["status"] + (f" (superseded by {row['superseded_by']})" if row.get("superseded_by") else "")),
        (f"{row.get('split') or 'test'} accuracy",
         "-" if row.get("accuracy") is None else
         f"{100 * row['accuracy']:.1f}% ± {100 * (row.get('accuracy_se') or 0):.1f} (binomial SE, n={row.get('n')})"),
        ("baseline (logistic regression)",
         "-" if row.get("baseline_accuracy") is None else f"{100 * row['baseline_accuracy']:.1f}%"),
        ("gain over the baseline", _points(row.get("gain"), row.get("gain_se")) + " points"
         + (" (below the baseline)" if (row.get("gain") or 0) < 0 else "")),
        ("ELBO", f"{_fmt(row.get('elbo'))} ({likelihood.get(row.get('likelihood'), '-')} likelihood)"),
        ("K_eff", _fmt(row.get("k_eff"))),
        ("seeds", f"model {_fmt(row.get('seed'))}, data {_fmt(row.get('data_seed'))}"),
        ("best epoch / epochs", f"{_fmt(row.get('best_epoch'))} / {_fmt(row.get('epochs_completed'))}"
         + (" (stopped early)" if row.get("stopped_early") else "")),
        ("training time (s)", _fmt(row.get("training_time_sec"), 1)),
    ]


def _show_sweep(args, members: list[dict]) -> int:
    """A sweep (or seed group) by name: what it varied, its points ranked within each dataset and test split with
    ties marked, and its runs that are not finished."""
    from ssvae.results import compare

    finished = [r for r in members if r["status"] in compare.RANKABLE]
    blocks = [compare.rank_entries(b) for b in compare.blocks_of(compare.make_entries(finished))]
    for block in blocks:
        compare.mark_ties(block, "accuracy")
    keys = differing_config_keys(members)
    if args.json:
        print(json.dumps({
            "sweep": args.run, "varied": keys,
            "runs": [{k: r.get(k) for k in LISTED} | {"config": _config_values(r, keys)} for r in members],
            "blocks": [{"block": "/".join(compare.block_of(b[0]["members"][0])), "entries": [
                {"label": e["label"], "arch": e["arch"], "run_ids": [m["run_id"] for m in e["members"]],
                 "accuracy": e["stats"]["accuracy"], "vs_best": e.get("vs_best")} for e in b]} for b in blocks]},
            indent=2))
        return 0
    sources = sorted({str(((r.get("config") or {}).get("experiment") or {}).get("name") or r["name"]) for r in members})
    _out(f"sweep {args.run}: {len(members)} run(s), {len(finished)} finished; experiments {', '.join(sources[:5])}"
         + (" …" if len(sources) > 5 else ""))
    _out(f"  varies: {', '.join(keys) if keys else 'nothing (one point)'}")
    for block in blocks:
        _out(f"\n{compare.block_title(block)}: ranked by accuracy (SE: binomial, one run; sd: over seeds)")
        header = ("#", "entry", "arch", "accuracy %", "vs best (points)", "gain (points)")
        table = [header] + [(str(i), e["label"] if e["single"] is not None else
                             f"{e['label']} ({len(e['members'])} seeds: {compare._seeds_text(e)})", e["arch"],
                             compare._accuracy_cell(e), compare._vs_best_cell(e), compare._gain_cell(e))
                            for i, e in enumerate(block, 1)]
        widths = [max(len(r[i]) for r in table) for i in range(len(header))]
        for line in table:
            _out("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
    unfinished = [r for r in members if r["status"] not in compare.RANKABLE]
    if unfinished:
        _out(f"\nnot finished ({len(unfinished)}):")
        for r in unfinished:
            _out(f"  {r['run_id']}  {r['status']}" + (f" {runs.progress_text(r.get('progress'))}"
                                                      if r.get("progress") else "")
                 + (f": {r['reason']}" if r.get("reason") else ""))
    return 0


def _show(args) -> int:
    from ssvae.results import compare

    rows = compare.run_rows(args.results, warn=_warn)
    if not any(args.run in (r["run_id"], r["name"]) for r in rows) and not Path(args.run).is_dir():
        members = [r for r in rows if args.run in (r.get("sweep"), r.get("group")) and not r.get("superseded_by")]
        if members:
            return _show_sweep(args, members)
    row = resolve_run(args.results, args.run, rows)
    folder = Path(row["path"])
    summary, _ = shapes.read(folder / "summary.json", "SUMMARY")
    summary = summary or {}
    if args.json:
        print(json.dumps({k: row.get(k) for k in LISTED} | {"warning_messages": summary.get("warnings", []),
                                                             "plots": summary.get("plots", {})}, indent=2))
        return 0
    meta = summary.get("metadata") or {}
    _out(f"{row['run_id']}")
    _out(f"  experiment {row['name']} · arch {row['arch']} · {_date(row['ts'])}"
          + (f" · sweep {row['sweep']}" if row.get("sweep") else ""))
    if meta.get("description"):
        _out(f"  {meta['description'].strip()}")
    if row.get("reason"):
        _out(f"  {row['reason']}")
    if row.get("log"):
        _out(f"  log: {folder / row['log']}")
    _out()
    width = max(len(k) for k, _ in _headline_pairs(row))
    for key, value in _headline_pairs(row):
        _out(f"  {key.ljust(width)}  {value}")
    warnings = summary.get("warnings") or []
    _out(f"\nwarnings ({len(warnings)}):" if warnings else "\nwarnings: none")
    for w in warnings:
        _out(f"  - {w}")
    _out("\nfigures:")
    for name, entry in (summary.get("plots") or {}).items():
        files = (entry.get("value") or {}).get("files") or []
        if entry.get("status") == "disabled":
            continue
        where = ", ".join(str(folder / f) + ("" if (folder / f).exists() else " (missing)") for f in files) or "-"
        note = f"  ({entry['status']}: {entry.get('reason')})" if entry.get("status") != "success" else ""
        _out(f"  {name}: {where}{note}")
    for doc in ("REPORT.md", "REPORT.html"):
        if (folder / doc).exists():
            _out(f"report: {folder / doc}")
    return 0


def _diff(args) -> int:
    from ssvae.results import compare, relevance

    rows = compare.run_rows(args.results, warn=_warn)
    a, b = resolve_run(args.results, args.run_a, rows), resolve_run(args.results, args.run_b, rows)
    flat_a = compare.flatten_config(a.get("config") or {}, ("experiment", "data", "model", "evaluation", "report"))
    flat_b = compare.flatten_config(b.get("config") or {}, ("experiment", "data", "model", "evaluation", "report"))
    keys = [k for k in sorted(set(flat_a) | set(flat_b))
            if json.dumps(flat_a.get(k), sort_keys=True) != json.dumps(flat_b.get(k), sort_keys=True)]

    def acts(row, key):
        section, _, name = key.partition(".")
        return relevance.not_applicable(section, name, row.get("config") or {}) is None

    metrics = ("status", "arch", "accuracy", "baseline_accuracy", "gain", "elbo", "likelihood", "k_eff",
               "clustering_accuracy", "nmi", "ece", "best_epoch", "epochs_completed", "training_time_sec")
    changed = [m for m in metrics if a.get(m) != b.get(m)]
    if args.json:
        print(json.dumps({"a": a["run_id"], "b": b["run_id"],
                          "config": {k: {"a": flat_a.get(k), "b": flat_b.get(k)} for k in keys},
                          "metrics": {m: {"a": a.get(m), "b": b.get(m)} for m in changed}}, indent=2, default=str))
        return 0
    _out(f"A: {a['run_id']}\nB: {b['run_id']}\n")
    if compare.block_of(a) != compare.block_of(b) and a.get("accuracy") is not None and b.get("accuracy") is not None:
        _out("note: A and B were scored on different test images (" + " vs ".join(
            "/".join(compare.block_of(r)[:2]) + f", n={r.get('n')}" for r in (a, b))
             + "): their accuracies are not comparable\n")
    if keys:
        table = [("config key", "A", "B")]
        for k in keys:
            va = json.dumps(flat_a.get(k)) + ("" if acts(a, k) else " (n/a)") if k in flat_a else "(absent)"
            vb = json.dumps(flat_b.get(k)) + ("" if acts(b, k) else " (n/a)") if k in flat_b else "(absent)"
            table.append((k, va, vb))
        widths = [max(len(r[i]) for r in table) for i in range(3)]
        for r in table:
            _out("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    else:
        _out("the configs are identical")
    _out()
    if changed:
        table = [("metric", "A", "B", "B − A")]
        for m in changed:
            va, vb = a.get(m), b.get(m)
            delta = (f"{vb - va:+.4g}" if isinstance(va, (int, float)) and isinstance(vb, (int, float))
                     and not isinstance(va, bool) else "")
            if m == "accuracy" and delta and a.get("accuracy_se") is not None and b.get("accuracy_se") is not None:
                se = (a["accuracy_se"] ** 2 + b["accuracy_se"] ** 2) ** 0.5  # the two runs' test errors
                delta += f" ± {se:.2g} (SE)"
            table.append((m, _fmt(va, 4), _fmt(vb, 4), delta))
        widths = [max(len(r[i]) for r in table) for i in range(4)]
        for r in table:
            _out("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    else:
        _out("the headline metrics are identical")
    return 0


def _watch(args) -> int:
    from ssvae import watch
    from ssvae.results import compare

    if not args.results.is_dir():
        raise SystemExit(f"ssvae watch: no results folder {args.results} (give --results, or start snakemake first)")
    return watch.watch(args.results, lambda: compare.run_rows(args.results), interval=args.interval,
                       grace=args.grace, once=args.once)


def _compare(args) -> int:
    from ssvae.results import compare

    result = compare.compare_runs(args.results, metric=args.sort, warn=_warn)
    _out(f"ranked {len(result['ranked'])} entries of {len(result['rows'])} run folders by {args.sort}: "
          f"{result['files']['markdown']}")
    return 0


def _legend(args) -> int:
    text = naming.naming_legend(config.defaults()["model"])
    if args.out:
        disk.write_text(args.out, text)
    else:
        _out(text)
    return 0


def _run(args) -> int:
    from ssvae.pipeline import stages

    try:
        for config_path in args.configs:
            for folder in stages.run_experiment(config_path, args.results):
                _out(folder)
    except config.ConfigErrors as exc:
        for error in exc.errors:
            _out(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ssvae.results.compare import RANK_METRICS

    parser = argparse.ArgumentParser(prog="ssvae", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check configs; exit 1 if any is invalid")
    p.add_argument("configs", nargs="+")
    p.set_defaults(func=_validate)
    p = sub.add_parser("arch", help="print the arch code and the run id (the real one when the run exists) of "
                                    "each run the configs ask for")
    p.add_argument("configs", nargs="+")
    p.add_argument("--results", default="results", type=Path)
    p.add_argument("-v", "--verbose", action="store_true", help="also print the identity hash and the config")
    p.set_defaults(func=_arch)
    p = sub.add_parser("plan", help="what the next snakemake does with each config and sweep point (new, stale and "
                                    "which stage, done, invalid), without running anything")
    p.add_argument("configs", nargs="*", help="config files (default: the workflow's experiments, configs/*.yaml)")
    p.add_argument("--results", default="results", type=Path)
    p.add_argument("--json", action="store_true", help="a list of {config, run_id, action, stage, reason, ...}")
    p.set_defaults(func=_plan)
    p = sub.add_parser("runs", help="table of existing runs: status, accuracy ± SE, gain over baseline, warnings")
    p.add_argument("--arch", help="arch code prefix (mix10) or glob (*_tau_*)")
    p.add_argument("--name", help="experiment name, its prefix, or a glob")
    p.add_argument("--status", help="comma-separated: " + ", ".join(STATUS_FILTERS) + " (training: a live process "
                                    "holds the run; interrupted: stopped, resumes on the next run; waiting: a halving "
                                    "trial between rungs; stopped: a halving trial not promoted; failed: a stage "
                                    "failed, with the reason and its log; planned: never started)")
    p.add_argument("--tag", help="only runs with this experiment tag")
    p.add_argument("--dataset", help="only runs on this dataset")
    p.add_argument("--sweep", help="only runs of this sweep (config file stem) or seed group")
    p.add_argument("--search", help="only the trials of this search (its experiment name), by trial, with the "
                                    "search's summary")
    p.add_argument("--since", help="runs planned on or after this date (YYYY-mm-dd[THH:MM])")
    p.add_argument("--until", help="runs planned on or before this date")
    p.add_argument("--sort", choices=SORT_KEYS, help="metrics best first, date newest first")
    p.add_argument("--all", action="store_true", help="also list superseded runs")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the rows as JSON")
    out.add_argument("--csv", action="store_true", help="print the rows as CSV")
    p.add_argument("--results", default="results", type=Path)
    p.set_defaults(func=_runs)
    p = sub.add_parser("show", help="one run: headline with standard errors, warnings, where the figures are")
    p.add_argument("run", help="run id, run folder, unique run-id prefix or experiment name")
    p.add_argument("--json", action="store_true")
    p.add_argument("--results", default="results", type=Path)
    p.set_defaults(func=_show)
    p = sub.add_parser("diff", help="the config keys and headline metrics that differ between two runs")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--json", action="store_true")
    p.add_argument("--results", default="results", type=Path)
    p.set_defaults(func=_diff)
    p = sub.add_parser("watch", help="live view of every run: trainings with epoch, losses and ETA first, then "
                                     "the finished runs' headlines; refreshes until nothing runs")
    p.add_argument("--once", action="store_true", help="print the view once and exit (for scripts)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")
    p.add_argument("--grace", type=float, default=60.0,
                   help="exit once no training is live and no run folder has changed for this many seconds "
                        "(default 60; raise it when a cluster queue holds jobs back)")
    p.add_argument("--results", default="results", type=Path)
    p.set_defaults(func=_watch)
    p = sub.add_parser("compare", help="rewrite results/COMPARISON.md (+ .html, .csv, plots), ranked by a metric")
    p.add_argument("--sort", default="accuracy", choices=tuple(RANK_METRICS))
    p.add_argument("--results", default="results", type=Path)
    p.set_defaults(func=_compare)
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
        code = args.func(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # the reader stopped reading (`ssvae runs | head`): not an error; nothing more is printed
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        fault = disk.write_fault(exc)
        if fault is None:
            raise
        _out(f"error: {disk.write_fault_message(fault)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
