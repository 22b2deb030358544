"""REPORT.md and summary.json from a run folder written the way train and evaluate leave it."""

import re

import numpy as np
import pytest

from ssvae import metrics, plots, report

from synthetic_run import MIXTURE, load, make_run, metadata, strict_loads

RUN_ID = "synthetic__mix10_tau_het__20250101_120000"


def build(tmp_path, model=None, history=True, warnings=(), **load_kwargs):
    experiment, effective = load(tmp_path, model=model, **load_kwargs)
    run_dir, splits, _ = make_run(tmp_path / "results", RUN_ID, experiment, history=history)
    meta = metadata(experiment, RUN_ID, splits.fingerprint)
    summary, text = report.build_report(run_dir, experiment, effective, meta, list(warnings))
    report.write_report(run_dir, summary, text)
    return run_dir, experiment


def test_summary_and_report_of_a_complete_run(tmp_path):
    run_dir, experiment = build(tmp_path, MIXTURE, warnings=["a config warning"])
    summary = strict_loads((run_dir / "summary.json").read_text())
    assert summary["schema_version"] == 1
    assert summary["status"] == "success" and summary["failures"] == []
    assert set(summary) >= {"training", "evaluation", "plots", "warnings", "metadata", "config", "headline"}
    assert summary["metadata"]["run_id"] == RUN_ID
    assert summary["warnings"] == ["a config warning"]
    assert set(summary["evaluation"]["metrics"]) == set(metrics.METRIC_NAMES)
    assert all(m["status"] == "success" for m in summary["evaluation"]["metrics"].values())
    assert set(summary["plots"]) == set(plots.PLOT_NAMES)
    assert all(p["status"] == "success" for p in summary["plots"].values())
    # NaN in train.json becomes null, the rest of training is kept as written
    assert summary["training"]["final"] == {"train_loss": 95.0, "val_loss": None}
    assert summary["training"]["best_epoch"] == 4
    head = summary["headline"]
    assert head["accuracy"] == summary["evaluation"]["metrics"]["accuracy"]["value"]
    assert head["baseline_accuracy"] == summary["evaluation"]["baseline"]["logistic_regression"]["value"]["accuracy"]
    assert head["k_eff"] == pytest.approx(summary["evaluation"]["metrics"]["k_eff"]["value"])
    assert summary["config"]["model"]["prior_type"] == "mixture"

    text = (run_dir / "REPORT.md").read_text()
    assert text.startswith("# synthetic\n")
    assert "synthetic run for tests" in text and "`test`" in text  # description and tags
    for section in ("## Headline", "## Warnings", "## Configuration", "## Training", "## Metrics", "## Plots",
                    "## Figures", "## Provenance"):
        assert section in text
    accuracy_line = text.index("test accuracy (this model)")
    baseline_line = text.index("test accuracy, logistic regression on raw pixels (50 labeled")
    assert 0 < baseline_line - accuracy_line < 200  # next to each other
    metric_rows = text[text.index("## Metrics"):text.index("## Plots")]
    assert metric_rows.index("| `accuracy` |") < metric_rows.index("baseline `logistic_regression`") < \
        metric_rows.index("| `per_class_accuracy` |")
    links = re.findall(r"\]\((figures/[^)]+)\)", text)
    assert {f"figures/{name}.png" for name in plots.PLOT_NAMES} <= set(links)
    for link in links:
        assert (run_dir / link).exists()
    for document in (text, (run_dir / "summary.json").read_text()):
        assert str(tmp_path) not in document  # every path is relative to the run folder


def test_a_standard_prior_report_lists_disabled_items_with_reasons(tmp_path):
    run_dir, _ = build(tmp_path)
    summary = strict_loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "success"
    assert summary["evaluation"]["metrics"]["nmi"]["status"] == "disabled"
    assert summary["plots"]["tau_heatmap"] == {"value": None, "status": "disabled",
                                               "reason": "use_tau_classifier is false"}
    assert summary["headline"]["k_eff"] is None
    text = (run_dir / "REPORT.md").read_text()
    assert "| `tau_heatmap` | ○ disabled | use_tau_classifier is false |" in text
    assert "figures/tau_heatmap.png" not in text and not (run_dir / "figures" / "tau_heatmap.png").exists()


FEW_PLOTS = {"skip_plots": ["latent_by_label", "reconstructions", "samples", "calibration", "confusion_matrix"]}


def test_a_failed_plot_makes_the_run_partial_and_says_why(tmp_path):
    run_dir, _ = build(tmp_path, history=False, report=FEW_PLOTS)
    summary = strict_loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "partial"
    assert summary["plots"]["loss_curves"]["status"] == "failed"
    assert any(f.startswith("plot loss_curves:") for f in summary["failures"])
    assert any("history.csv is missing" in w for w in summary["warnings"])
    assert summary["plots"]["samples"]["status"] == "skipped"  # skipped is not a failure
    assert not any(f.startswith("plot samples") for f in summary["failures"])
    text = (run_dir / "REPORT.md").read_text()
    assert "## Failures" in text and "✗ failed" in text and "⊘ skipped" in text
    assert "![Loss curves]" not in text  # a placeholder is never presented as the figure


def test_a_validation_split_evaluation_is_flagged(tmp_path):
    run_dir, _ = build(tmp_path, evaluation={"split": "val"}, report=FEW_PLOTS)
    summary = strict_loads((run_dir / "summary.json").read_text())
    assert summary["evaluation"]["split"] == "val"
    assert any("not the held-out test split" in w for w in summary["warnings"])
    assert "val accuracy (this model)" in (run_dir / "REPORT.md").read_text()


def test_build_report_needs_the_earlier_stages(tmp_path):
    experiment, effective = load(tmp_path)
    with pytest.raises(FileNotFoundError, match="metrics.json|train.json"):
        report.build_report(tmp_path, experiment, effective, {}, [])


def test_read_history_turns_blanks_into_nan(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,train_loss,val_loss\n1,2.5,\n2,1.5,nan\n")
    history = report.read_history(tmp_path / "history.csv")
    assert history["epoch"].tolist() == [1.0, 2.0] and history["train_loss"].tolist() == [2.5, 1.5]
    assert np.isnan(history["val_loss"]).all()


def test_format_value_keeps_lines_short():
    assert report.format_value(None) == "—"
    assert report.format_value(0.123456) == "0.1235"
    assert report.format_value([[1, 2], [3, 4]]) == "2×2 matrix (metrics.json)"
    assert report.format_value(list(range(30))) == "30 values (metrics.json)"
    assert report.format_value({"count": 3, "variance": list(range(30))}) == "count: 3"
