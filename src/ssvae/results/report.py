"""The report stage: figures, REPORT.md, REPORT.html and summary.json of one run folder, all drawn from its files.

Reads train.json, history.csv, metrics.json and predictions.npz (no JAX, no scikit-learn, no model). Every
metric and every plot appears with its status; the run's status says `partial` and lists what failed whenever
anything did. The warnings a researcher needs (`diagnostics`) are computed here from the same files.
REPORT.html is REPORT.md as one self-contained page for the Snakemake report (figures named, not embedded:
they are the run's other report entries).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ssvae import disk, document, shapes, text
from ssvae.config import SECTIONS, Experiment
from ssvae.document import format_number, format_value  # noqa: F401  (re-exported: the report's number format)
from ssvae.evaluation import metrics as metrics_mod
from ssvae.evaluation.predictions import read_predictions
from ssvae.results import diagnostics, relevance
from ssvae.results import plots as plots_mod
from ssvae.results import summary as summary_mod

# 2: headline with n, standard errors and gain; `diagnostics`
SCHEMA_VERSION = 2
STATUS_MARK = {"success": "✓ success", "disabled": "○ disabled", "skipped": "⊘ skipped", "failed": "✗ failed"}
TRAIN_FIELDS = ("status", "epochs_completed", "best_epoch", "monitor_metric", "best_value", "stopped_early",
                "training_time_sec", "samples_per_sec")


def read_history(path: str | Path) -> dict[str, np.ndarray]:
    """history.csv as column -> float array (empty cells and non-numbers become NaN)."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns: dict[str, list[float]] = {name: [] for name in reader.fieldnames or []}
        for row in reader:
            for name in columns:
                try:
                    columns[name].append(float(row.get(name) or "nan"))
                except ValueError:
                    columns[name].append(math.nan)
    return {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}


def _mark(status: str) -> str:
    return STATUS_MARK.get(status, status)


# summary ------------------------------------------------------------------------------------------

def _failures(training: dict, evaluation: dict, plot_status: dict) -> list[str]:
    failures = []
    if training.get("status") not in (None, "success", "completed", "ok"):
        failures.append(f"training: status {training.get('status')!r}")
    for name, entry in evaluation.get("metrics", {}).items():
        if entry.get("status") == "failed":
            failures.append(f"metric {name}: {entry.get('reason')}")
    for name, entry in (evaluation.get("baseline") or {}).items():
        if entry.get("status") == "failed":
            failures.append(f"baseline {name}: {entry.get('reason')}")
    for name, entry in (evaluation.get("artifacts") or {}).items():
        if entry.get("status") == "failed":
            failures.append(f"artifact {name}: {entry.get('reason')}")
    for name, entry in plot_status.items():
        if entry.get("status") == "failed":
            failures.append(f"plot {name}: {entry.get('reason')}")
    return failures


def _consistency_warnings(metrics_doc: dict, metadata: dict, train: dict) -> list[str]:
    """Checks that catch a report about something other than what it claims."""
    found = []
    if metrics_doc.get("split") != "test":
        found.append(f"metrics were computed on the {metrics_doc.get('split')!r} split, not the held-out test split")
    evaluated = metrics_doc.get("dataset_fingerprint")
    recorded = metadata.get("dataset_fingerprint") or (train.get("data") or {}).get("fingerprint")
    if evaluated and recorded and evaluated != recorded:
        found.append(f"the evaluated data (fingerprint {evaluated}) differ from the training data's record "
                     f"({recorded}); metrics.json may be stale")
    evaluated_epoch = (metrics_doc.get("checkpoint") or {}).get("epoch")
    if evaluated_epoch is not None and train.get("best_epoch") is not None and evaluated_epoch != train["best_epoch"]:
        found.append(f"metrics.json scored the checkpoint of epoch {evaluated_epoch}, but train.json's best epoch is "
                     f"{train['best_epoch']}; metrics.json may be stale")
    for note in metrics_doc.get("notes") or []:
        found.append(f"evaluate: {note}")
    return found


def build_report(run_dir: str | Path, experiment: Experiment, effective_config: dict, metadata: dict,
                 warnings: list[str]) -> tuple[dict, str]:
    """Draw every figure into figures/ and return (summary.json document, REPORT.md text); writes nothing else.

    Reads train.json, metrics.json (both required), history.csv and predictions.npz (plots that need a missing
    one fail with that reason) from `run_dir`.
    """
    run_dir = Path(run_dir)
    for required in ("train.json", "metrics.json"):
        if not (run_dir / required).exists():
            raise FileNotFoundError(f"{run_dir / required} is missing: run the earlier stages first")
    train = disk.read_json(run_dir / "train.json")
    metrics_doc, problem = shapes.read(run_dir / "metrics.json", "METRICS")
    if problem is not None:
        raise ValueError(f"{run_dir / 'metrics.json'} cannot be reported: {problem}; run evaluate again "
                         "(snakemake --forcerun evaluate)")
    warnings = list(warnings)
    history: dict[str, np.ndarray] = {}
    if (run_dir / "history.csv").exists():
        history = read_history(run_dir / "history.csv")
    else:
        warnings.append("history.csv is missing: no loss curves")
    arrays: dict[str, np.ndarray] = {}
    if (run_dir / "predictions.npz").exists():
        arrays = read_predictions(run_dir)
    else:
        warnings.append("predictions.npz is missing: figures that draw predictions fail")
    warnings += _consistency_warnings(metrics_doc, metadata, train)
    found = diagnostics.diagnose(effective_config.get("model") or {}, train, history, metrics_doc)
    warnings += [d.message for d in found]

    inputs = plots_mod.PlotInputs(experiment, history, arrays, metrics_doc, train)
    plot_status = {name: status.to_dict() for name, status in plots_mod.draw_plots(inputs, run_dir).items()}

    evaluation = {key: metrics_doc.get(key) for key in
                  ("split", "num_examples", "dataset", "dataset_fingerprint", "num_labeled_train", "checkpoint",
                   "metrics", "baseline", "artifacts", "timings")}
    failures = _failures(train, evaluation, plot_status)
    summary = {
        "schema_version": SCHEMA_VERSION,
        "status": "partial" if failures else "success",
        "failures": failures,
        "headline": summary_mod.headline(train, evaluation),
        "training": train,
        "evaluation": evaluation,
        "plots": plot_status,
        "warnings": warnings,
        "diagnostics": [d.to_dict() for d in found],
        "metadata": metadata,
        "config": {section: effective_config.get(section) for section in SECTIONS if section in effective_config},
    }
    summary = disk.jsonable(summary)
    return summary, render_markdown(summary)


# REPORT.md ----------------------------------------------------------------------------------------

def elbo_label(summary: dict, split: str) -> str:
    kind = summary_mod.success_value((summary["evaluation"].get("metrics") or {}).get("elbo"), "likelihood")
    if kind == "squared_error":
        return f"{split} −(squared error + KL) per image (reconstruction_loss mse: not a bound in nats)"
    return f"{split} ELBO (nats / image, higher is better)"


def _headline_lines(summary: dict) -> list[str]:
    h = summary["headline"]
    training = summary["training"]
    evaluation = summary["evaluation"]
    split = evaluation.get("split") or "test"
    n = evaluation.get("num_examples")
    baseline = (evaluation.get("baseline") or {}).get(metrics_mod.BASELINE_NAME) or {}
    if baseline.get("status") == "success":
        base_text = document.plus_minus(h["baseline_accuracy"], diagnostics.binomial_se(h["baseline_accuracy"], n),
                                        unit="%")
    else:
        base_text = f"{_mark(baseline.get('status', '—'))}: {baseline.get('reason') or ''}".strip(": ")
    labeled = evaluation.get("num_labeled_train")
    gain = h.get("gain")
    gain_text = document.plus_minus(gain, h.get("gain_se"), signed=True)
    if gain is not None:
        gain_text += " points" + (" — **below the baseline**" if gain < 0 else "")
    rows = [
        [f"{split} accuracy (this model), ± binomial standard error on {format_value(n)} images",
         document.plus_minus(h["accuracy"], h.get("accuracy_se"), unit="%")],
        [f"{split} accuracy, logistic regression on raw pixels ({labeled} labeled training images, the same ones)",
         base_text],
        ["gain over the baseline (± standard error of the difference)", gain_text],
        [elbo_label(summary, split), format_value(h["elbo"])],
    ]
    if h.get("k_eff") is not None:
        rows.append(["K_eff (effective components)", format_value(h["k_eff"])])
    stopped = " (stopped early)" if training.get("stopped_early") else " (max_epochs reached)"
    rows.append(["best epoch (evaluated) / epochs run",
                 f"{format_value(h['best_epoch'])} / {format_value(h['epochs_completed'])}{stopped}"])
    rows.append(["training time (s)", format_value(h["training_time_sec"])])
    return document.table(["", "value"], rows)


def _shown(value) -> str:
    """A config value in a table cell: whatever string it holds stays literal text."""
    return text.markdown_text(format_value(value, max_items=64))


def _config_lines(config: dict) -> list[str]:
    """Per section, the keys that act on this run's model; the others in a fold, each with why it does not act."""
    lines = []
    for section in SECTIONS:
        if not config.get(section):
            continue
        acting, idle = relevance.split_section(section, config)
        lines += [f"### {section}", ""]
        lines += document.table(["key", "value"],
                                [[f"`{k}`", _shown(v)] for k, v in acting.items()])
        lines.append("")
        if idle:
            lines += document.fold(
                f"{len(idle)} {section} key(s) that do not act on this model",
                document.table(["key", "value", "why it does not act"],
                               [[f"`{k}`", _shown(v), why] for k, (v, why) in idle.items()]))
    return lines


def _metric_lines(summary: dict) -> list[str]:
    evaluation = summary["evaluation"]
    rows = []
    for name, entry in (evaluation.get("metrics") or {}).items():
        note = entry.get("reason") if entry.get("status") != "success" else metrics_mod.DESCRIPTIONS.get(name, "")
        rows.append([f"`{name}`", format_value(entry.get("value")), _mark(entry.get("status")), note or ""])
        if name == "accuracy":
            for base_name, base in (evaluation.get("baseline") or {}).items():
                ok = base.get("status") == "success"
                note = metrics_mod.DESCRIPTIONS.get(base_name) if ok else base.get("reason")
                rows.append([f"`accuracy` of baseline `{base_name}`",
                             format_value(summary_mod.success_value(base, "accuracy")),
                             _mark(base.get("status")), note or ""])
    for name, entry in (evaluation.get("artifacts") or {}).items():
        if entry.get("status") != "success":
            rows.append([f"artifact `{name}`", "—", _mark(entry.get("status")), entry.get("reason") or ""])
    return document.table(["metric", "value", "status", "meaning / reason"], rows)


def _plot_table_lines(summary: dict, links: bool) -> list[str]:
    rows = []
    for name, entry in summary["plots"].items():
        files = (entry.get("value") or {}).get("files") or []
        shown = (f"[{Path(f).name}]({f})" if links else f"`{f}`" for f in files)
        detail = entry.get("reason") or ", ".join(shown)
        rows.append([f"`{name}`", _mark(entry.get("status")), detail])
    return document.table(["plot", "status", "file / reason"], rows)


def _figure_lines(summary: dict) -> list[str]:
    lines = []
    for spec in plots_mod.PLOTS:
        entry = summary["plots"].get(spec.name)
        if not entry or entry.get("status") == "disabled":
            continue
        lines += [f"### {spec.title}", ""]
        if entry.get("status") != "success":
            lines += [f"*{_mark(entry['status'])}: {entry.get('reason')}*", ""]
            continue
        png = next(f for f in entry["value"]["files"] if f.endswith(".png"))
        lines += [spec.caption, "", f"![{spec.title}]({png})", ""]
    return lines


def _provenance_lines(metadata: dict) -> list[str]:
    rows = []
    for key, value in metadata.items():
        if key in ("description", "tags"):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items() if v is not None)
        rows.append([text.markdown_text(key), text.markdown_text(format_value(value))])
    return document.table(["field", "value"], rows)


def render_markdown(summary: dict, figures: bool = True) -> str:
    """REPORT.md: headline, warnings, configuration, training, metrics, plot status, figures, provenance.

    figures=False leaves the images out (REPORT.html in the Snakemake report, where the figures are entries
    of their own and relative image links would not resolve).
    """
    meta = summary.get("metadata") or {}
    name = meta.get("experiment_name") or meta.get("run_id") or "experiment"
    lines = [f"# {text.markdown_text(name)}", ""]
    if meta.get("description"):
        lines += [text.markdown_from_config(meta["description"]), ""]
    facts = [f"**Run:** {text.markdown_code(meta.get('run_id'))}",
             f"**Architecture:** {text.markdown_code(meta.get('architecture_code'))}",
             f"**Timestamp:** {text.markdown_text(meta.get('timestamp'))}",
             f"**Status:** {text.markdown_text(summary['status'])}"]
    lines += [" · ".join(facts), ""]
    if meta.get("tags"):
        tags = meta["tags"] if isinstance(meta["tags"], list) else [meta["tags"]]
        lines += ["**Tags:** " + ", ".join(text.markdown_code(t) for t in tags), ""]
    lines += ["## Headline", ""] + _headline_lines(summary) + [""]
    if summary["failures"]:
        lines += ["## Failures", ""] + [f"- {text.markdown_text(f)}" for f in summary["failures"]] + [""]
    if summary["warnings"]:
        lines += ["## Warnings", ""] + [f"- {text.markdown_text(w)}" for w in summary["warnings"]] + [""]
    lines += ["## Configuration", "",
              "The effective configuration (every default resolved): the keys that act on this run's model; "
              "the others are folded away below each table.", ""]
    lines += _config_lines(summary.get("config") or {})
    training = summary["training"]
    lines += ["## Training", ""]
    rows = [[k, format_value(training.get(k))] for k in TRAIN_FIELDS if k in training]
    final = training.get("final") or {}
    at = f"at best epoch {final['epoch']}" if final.get("epoch") == training.get("best_epoch") else "final"
    for k, v in final.items():
        if k.startswith(("train_", "val_")):
            rows.append([f"{at}: {k}", format_value(v)])
    data = training.get("data") or {}
    for k in ("num_train", "num_labeled", "labeled_per_class", "num_val", "num_test", "fingerprint"):
        if k in data:
            rows.append([f"data {k}", format_value(data[k], max_items=20)])
    lines += document.table(["field", "value"], rows) + [""]
    evaluation = summary["evaluation"]
    lines += ["## Metrics", "",
              f"Computed once on the **{text.markdown_text(evaluation.get('split'))}** split "
              f"({text.markdown_text(evaluation.get('num_examples'))} images, "
              "never used for training or model selection) with the best checkpoint. Full values in "
              "[metrics.json](metrics.json).", ""]
    lines += _metric_lines(summary) + [""]
    lines += ["## Plots", ""] + _plot_table_lines(summary, links=figures) + [""]
    if figures:
        lines += ["## Figures", ""] + _figure_lines(summary)
    else:
        lines += ["The figures are this run's other entries in the Snakemake report (files under `figures/` in "
                  "the run folder; REPORT.md shows them inline).", ""]
    lines += ["## Provenance", ""] + _provenance_lines(meta) + [""]
    return "\n".join(lines)


def render_html(summary: dict) -> str:
    """REPORT.html: the report without inline figures, as one self-contained page."""
    meta = summary.get("metadata") or {}
    return document.to_html(render_markdown(summary, figures=False), meta.get("run_id") or "report")


def write_report(run_dir: str | Path, summary: dict, report_md: str) -> None:
    """Write summary.json, REPORT.md and REPORT.html atomically."""
    run_dir = Path(run_dir)
    disk.write_json(run_dir / "summary.json", summary)
    disk.write_text(run_dir / "REPORT.md", report_md)
    disk.write_text(run_dir / "REPORT.html", render_html(summary))
