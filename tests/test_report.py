"""REPORT.md and summary.json from a run folder written the way train and evaluate leave it."""

import re

import numpy as np
import pytest
from synthetic_run import MIXTURE, load, make_run, metadata, strict_loads

from ssvae.evaluation import metrics
from ssvae.results import plots, report

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
    assert summary["schema_version"] == 2
    assert summary["status"] == "success" and summary["failures"] == []
    assert set(summary) >= {"training", "evaluation", "plots", "warnings", "metadata", "config", "headline"}
    assert summary["metadata"]["run_id"] == RUN_ID
    assert summary["warnings"][0] == "a config warning"
    assert summary["warnings"][1:] == [d["message"] for d in summary["diagnostics"]]
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
    assert (run_dir / "REPORT.html").read_text().startswith("<!DOCTYPE html>")
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
NO_PLOTS = {"skip_plots": list(plots.PLOT_NAMES)}


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


def test_the_headline_carries_the_standard_error_and_the_gain_over_the_baseline(tmp_path):
    run_dir, _ = build(tmp_path, report=NO_PLOTS)
    summary = strict_loads((run_dir / "summary.json").read_text())
    head = summary["headline"]
    n = head["num_examples"]
    assert n == 360 and head["accuracy_se"] == pytest.approx(np.sqrt(head["accuracy"] * (1 - head["accuracy"]) / n))
    assert head["gain"] == pytest.approx(head["accuracy"] - head["baseline_accuracy"])
    text = (run_dir / "REPORT.md").read_text()
    assert f"| test accuracy (this model), ± binomial standard error on 360 images | " \
           f"{100 * head['accuracy']:.1f}% ± {100 * head['accuracy_se']:.1f} |" in text
    assert f"{100 * head['gain']:+.1f} ± {100 * head['gain_se']:.1f} points" in text


def section_of(text, heading):
    start = text.index(heading)
    end = text.find("\n### ", start + len(heading))
    return text[start:end if end > 0 else None]


def test_the_config_table_shows_the_keys_that_act_and_folds_the_rest(tmp_path):
    run_dir, _ = build(tmp_path, MIXTURE, report=NO_PLOTS)
    model = section_of((run_dir / "REPORT.md").read_text(), "### model")
    shown, folded = model.split("<details>")
    for key in ("num_components", "tau_smoothing_alpha", "sigma_max", "kl_c_weight", "latent_dim"):
        assert f"| `{key}` |" in shown
    for key, why in (("vamp_pseudo_init_method", "only for prior_type vamp"),
                     ("geometric_radius", "only for prior_type geometric_mog"),
                     ("dropout_rate", "the τ-classifier has no head"),
                     ("gumbel_temperature", "use_gumbel_softmax is off"), ("xla_flags", "never implemented")):
        assert f"| `{key}` |" in folded and why in folded
        assert f"| `{key}` |" not in shown
    (tmp_path / "std").mkdir()
    standard = section_of((build(tmp_path / "std", report=NO_PLOTS)[0] / "REPORT.md").read_text(), "### model")
    shown, folded = standard.split("<details>")
    assert "| `num_components` |" in folded and "| `dropout_rate` |" in shown
    assert "| `sigma_max` |" in folded and "use_heteroscedastic_decoder is off" in folded


def test_cells_with_a_bar_stay_one_cell_in_markdown_and_html(tmp_path):
    from markdown_it import MarkdownIt

    run_dir, _ = build(tmp_path, MIXTURE, report=NO_PLOTS, experiment={"description": "a | b <script>x</script>"})
    text = (run_dir / "REPORT.md").read_text()
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<script>" not in html and "a | b &lt;script&gt;" in html
    metric_rows = [line for line in text.splitlines() if line.startswith("| `") and "p(y" in line]
    assert metric_rows, "the metric descriptions mention p(y|x)"
    for line in metric_rows:
        assert len(line.replace("\\|", "").split("|")) == 6  # 4 cells
    page = (run_dir / "REPORT.html").read_text()
    assert "<img" not in page and "Headline" in page and "<details>" in page
