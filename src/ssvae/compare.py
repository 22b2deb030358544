"""Comparison across runs (SPEC section 9): one row per run folder with a summary.json, grouped by arch code,
mean ± std over the seeds of a sweep (runs sharing `metadata.group` and arch code).

Writes results/COMPARISON.md, results/comparison.csv, results/comparison_accuracy.png and
results/comparison_elbo.png. The output depends only on the summaries, so it is byte-stable when they are.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from . import runs
from .report import format_value

COLUMNS = ("run_id", "name", "arch", "ts", "group", "status", "dataset", "prior", "num_components", "latent_dim",
           "num_labeled", "seed", "split", "accuracy", "baseline_accuracy", "elbo", "likelihood", "k_eff", "best_epoch",
           "epochs_completed", "training_time_sec")
AGGREGATED = ("accuracy", "baseline_accuracy", "elbo", "k_eff", "training_time_sec")


def _get(doc: Any, *path, default=None):
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return default
        doc = doc[key]
    return doc


def _success_value(entry: Any, key: str | None = None):
    if not isinstance(entry, dict) or entry.get("status") != "success":
        return None
    value = entry.get("value")
    return value.get(key) if key and isinstance(value, dict) else value


def seedless_identity(config: dict) -> str | None:
    """Hash of the data and model sections without model.random_seed: runs that share it differ only by seed."""
    if not config.get("model") or not config.get("data"):
        return None
    model = {k: v for k, v in config["model"].items() if k != "random_seed"}
    payload = json.dumps({"data": config["data"], "model": model}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def summary_row(base: dict, summary: dict) -> dict:
    """One comparison row from a run's parsed folder name (`runs.list_runs` row) and its summary.json."""
    meta = summary.get("metadata") or {}
    config = summary.get("config") or {}
    evaluation = summary.get("evaluation") or {}
    metrics = evaluation.get("metrics") or {}
    training = summary.get("training") or {}
    model = config.get("model") or {}
    data = config.get("data") or {}
    is_mixture = model.get("prior_type") in ("mixture", "vamp", "geometric_mog")
    return {
        "run_id": base["run_id"],
        "name": base["name"],
        "arch": base["arch"],
        "ts": base["ts"],
        "group": meta.get("group"),
        "seedless_identity": seedless_identity(config),
        "status": summary.get("status"),
        "dataset": meta.get("dataset") or data.get("dataset"),
        "prior": model.get("prior_type"),
        "num_components": model.get("num_components") if is_mixture else None,
        "latent_dim": model.get("latent_dim"),
        "num_labeled": data.get("num_labeled"),
        "seed": meta.get("seed", model.get("random_seed")),
        "split": evaluation.get("split"),
        "accuracy": _success_value(metrics.get("accuracy")),
        "baseline_accuracy": _success_value(_get(evaluation, "baseline", "logistic_regression"), "accuracy"),
        "elbo": _success_value(metrics.get("elbo"), "elbo"),
        "likelihood": _success_value(metrics.get("elbo"), "likelihood"),
        "k_eff": _success_value(metrics.get("k_eff")),
        "best_epoch": training.get("best_epoch"),
        "epochs_completed": training.get("epochs_completed"),
        "training_time_sec": training.get("training_time_sec"),
    }


def run_rows(results_dir: str | Path) -> list[dict]:
    """Every run folder under `results_dir` for the CLI's `ssvae runs` table: the comparison columns where a
    summary.json exists, blanks (None) and the stage reached (planned, training, trained, evaluated, failed)
    otherwise. Sorted by arch code, then run id."""
    rows = []
    for base in runs.list_runs(results_dir):
        if "summary" in base:
            row = summary_row(base, base["summary"])
        else:
            row = {key: None for key in COLUMNS} | {k: base[k] for k in ("run_id", "name", "arch", "ts", "status")}
        row["path"] = base["path"]
        rows.append(row)
    return sorted(rows, key=lambda r: (r["arch"], r["run_id"]))


def _mean_std(values: list) -> tuple[float | None, float | None, int]:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return None, None, 0
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else None
    return float(np.mean(finite)), std, len(finite)


def group_rows(rows: list[dict]) -> list[dict]:
    """Mean ± sample std (ddof 1) over the seeds of a sweep point: runs sharing metadata.group and arch code whose
    data and model sections differ only in model.random_seed (so an edited config that kept its name is not
    averaged with the old one); only buckets of at least two runs."""
    buckets: dict[tuple, list[dict]] = {}
    for row in rows:
        if row.get("group"):
            buckets.setdefault((row["group"], row["arch"], row.get("seedless_identity") or ""), []).append(row)
    groups = []
    for (group, arch, _), members in sorted(buckets.items(), key=lambda item: (item[0][1], item[0][0], item[0][2])):
        if len(members) < 2:
            continue
        entry = {"group": group, "arch": arch, "runs": len(members),
                 "seeds": sorted(m["seed"] for m in members if m.get("seed") is not None),
                 "run_ids": [m["run_id"] for m in members]}
        for column in AGGREGATED:
            mean, std, n = _mean_std([m.get(column) for m in members])
            entry[column] = {"mean": mean, "std": std, "n": n}
        groups.append(entry)
    return groups


def _pm(stat: dict) -> str:
    if stat["mean"] is None:
        return "—"
    text = format_value(stat["mean"])
    return f"{text} ± {format_value(stat['std'])}" if stat["std"] is not None else text


def _markdown(rows: list[dict], groups: list[dict], without_summary: list[dict]) -> str:
    lines = ["# Comparison of runs", "",
             f"{len(rows)} run(s) with a summary.json. Accuracy and ELBO are measured on each run's evaluated split "
             "(the held-out test split unless a run's config says otherwise: see `split`). The baseline is a "
             "logistic regression on raw pixels fitted on the same labeled images as the run.", "",
             "![accuracy](comparison_accuracy.png)", "", "![ELBO](comparison_elbo.png)", ""]
    squared = [r["run_id"] for r in rows if r.get("likelihood") == "squared_error"]
    if squared:
        lines += [f"Note: {len(squared)} run(s) use reconstruction_loss mse without the heteroscedastic decoder; their "
                  "'ELBO' is −(squared error + KL), not a bound in nats, and is not comparable with the others "
                  "(column `likelihood` in comparison.csv).", ""]
    if groups:
        lines += ["## Mean ± std over seeds", "",
                  "Runs that share a sweep group and arch code; std is the sample standard deviation (n − 1).", "",
                  "| group | arch | runs | seeds | accuracy | baseline | ELBO | K_eff | train time (s) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for g in groups:
            lines.append(f"| {g['group']} | `{g['arch']}` | {g['runs']} | {', '.join(map(str, g['seeds']))} | "
                         f"{_pm(g['accuracy'])} | {_pm(g['baseline_accuracy'])} | {_pm(g['elbo'])} | "
                         f"{_pm(g['k_eff'])} | {_pm(g['training_time_sec'])} |")
        lines.append("")
    header = ("| run | prior | K | z dim | labeled | dataset | seed | split | accuracy | baseline | ELBO | K_eff | "
              "best / epochs | train time (s) | status |")
    for arch in sorted({r["arch"] for r in rows}):
        lines += [f"## `{arch}`", "", header, "|" + "---|" * 15]
        for r in (r for r in rows if r["arch"] == arch):
            lines.append(
                f"| [{r['run_id']}]({r['run_id']}/REPORT.md) | {format_value(r['prior'])} | "
                f"{format_value(r['num_components'])} | {format_value(r['latent_dim'])} | "
                f"{format_value(r['num_labeled'])} | {format_value(r['dataset'])} | {format_value(r['seed'])} | "
                f"{format_value(r['split'])} | {format_value(r['accuracy'])} | "
                f"{format_value(r['baseline_accuracy'])} | "
                f"{format_value(r['elbo'])} | {format_value(r['k_eff'])} | "
                f"{format_value(r['best_epoch'])} / {format_value(r['epochs_completed'])} | "
                f"{format_value(r['training_time_sec'])} | {format_value(r['status'])} |")
        lines.append("")
    if without_summary:
        lines += ["## Runs without a summary.json", "", "| run | stage reached |", "|---|---|"]
        lines += [f"| {r['run_id']} | {r['status']} |" for r in without_summary]
        lines.append("")
    if not rows:
        lines += ["No run folder has a summary.json yet.", ""]
    return "\n".join(lines)


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in COLUMNS})
    return buffer.getvalue()


def _plot(rows: list[dict], groups: list[dict], column: str, ylabel: str, title: str, baseline: bool):
    import matplotlib
    from matplotlib.figure import Figure

    from .plots import STYLE, placeholder

    points = [r for r in rows if r.get(column) is not None]
    if not points:
        return placeholder(f"no run has a successful {column} yet")
    archs = sorted({r["arch"] for r in rows})
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(max(5.5, 1.3 * len(archs) + 2.5), 4.4), layout="constrained")
        ax = fig.subplots()
        rng = np.random.default_rng(0)
        scale = 100.0 if column == "accuracy" else 1.0
        group_label = "group mean ± std"
        for i, arch in enumerate(archs):
            mine = [r for r in points if r["arch"] == arch]
            x = i + rng.uniform(-0.12, 0.12, size=len(mine))
            ax.scatter(x, [scale * r[column] for r in mine], color="tab:blue", s=28, zorder=3,
                       label="run" if i == 0 else None)
            if baseline:
                base = [r for r in mine if r.get("baseline_accuracy") is not None]
                ax.scatter(i + rng.uniform(-0.12, 0.12, size=len(base)),
                           [scale * r["baseline_accuracy"] for r in base], color="0.55", marker="x", s=26, zorder=3,
                           label="logistic regression baseline" if i == 0 and base else None)
            for g in (g for g in groups if g["arch"] == arch and g[column]["mean"] is not None):
                std = g[column]["std"] or 0.0
                ax.errorbar(i + 0.28, scale * g[column]["mean"], yerr=scale * std, fmt="o", color="black",
                            capsize=4, markersize=5, zorder=4, label=group_label)
                group_label = None
        ax.set_xticks(range(len(archs)))
        ax.set_xticklabels(archs, rotation=20, ha="right")
        ax.set_xlabel("architecture code")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(frameon=False, fontsize=8)
    return fig


def _save_png(fig, path: Path, dpi: int = 120) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    runs.write_bytes(path, buffer.getvalue())


def compare_runs(results_dir: str | Path) -> dict:
    """Write COMPARISON.md, comparison.csv and the two comparison plots into `results_dir`; return
    {"rows": one dict per run with a summary.json, "groups": mean ± std entries, "files": paths written}."""
    results_dir = Path(results_dir)
    every = run_rows(results_dir)
    rows = [r for r in every if (Path(r["path"]) / "summary.json").exists()]
    without_summary = [r for r in every if r not in rows]
    groups = group_rows(rows)
    files = {
        "markdown": results_dir / "COMPARISON.md",
        "csv": results_dir / "comparison.csv",
        "accuracy_plot": results_dir / "comparison_accuracy.png",
        "elbo_plot": results_dir / "comparison_elbo.png",
    }
    runs.write_text(files["markdown"], _markdown(rows, groups, without_summary))
    runs.write_text(files["csv"], _csv(rows))
    _save_png(_plot(rows, groups, "accuracy", "accuracy (%)", "Accuracy on the evaluated split, per run", True),
              files["accuracy_plot"])
    _save_png(_plot(rows, groups, "elbo", "ELBO (nats / image, higher is better)", "ELBO on the evaluated split, "
                    "per run", False), files["elbo_plot"])
    return {"rows": rows, "groups": groups, "files": {k: str(v) for k, v in files.items()}}
