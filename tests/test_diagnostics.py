"""Each warning a researcher needs fires on the case it names, carries its number, and stays quiet otherwise;
through the report stage they land in summary.json, REPORT.md and `ssvae runs`."""

import math
import os
import time

import numpy as np
import pytest
from synthetic_run import MIXTURE, load, make_run, metadata, strict_loads

from ssvae import cli
from ssvae.results import diagnostics, report, runstate

MODEL = {"max_epochs": 100, "patience": 20, "sigma_min": 0.05, "sigma_max": 1.0}


def ok(value):
    return {"value": value, "status": "success", "reason": None}


def test_still_improving_when_max_epochs_ended_training_near_its_best_epoch():
    history = {"val_loss": np.linspace(120.0, 100.0, 100)}
    train = {"epochs_completed": 100, "best_epoch": 98, "stopped_early": False, "monitor_metric": "val_loss"}
    found = diagnostics.still_improving(MODEL, train, history)
    assert found.code == "still_improving" and found.value == 98 and found.threshold == 90  # window of 10 epochs
    assert "max_epochs = 100" in found.message and "epoch 98 of 100" in found.message
    assert "over the last 10 epoch(s) (102 → 100.4)" in found.message
    assert diagnostics.still_improving(MODEL, {**train, "best_epoch": 80}, history) is None  # long plateau: done
    assert diagnostics.still_improving(MODEL, {**train, "stopped_early": True}, history) is None
    assert diagnostics.still_improving(MODEL, {**train, "epochs_completed": 60}, history) is None  # not at the cap


def test_sigma_at_its_bound_for_most_images():
    metrics = {"sigma": ok({"mean": 1.0, "median": 1.0, "fraction_at_max": 1.0, "fraction_at_min": 0.0})}
    found = diagnostics.sigma_at_bound(MODEL, metrics, 360)
    assert found.code == "sigma_at_bound" and found.value == 1.0 and found.threshold == 0.5
    assert "upper bound sigma_max = 1 for 100% of the 360 evaluated images" in found.message
    low = {"sigma": ok({"median": 0.05, "fraction_at_max": 0.0, "fraction_at_min": 0.7})}
    assert "lower bound sigma_min = 0.05 for 70%" in diagnostics.sigma_at_bound(MODEL, low, 360).message
    spread = {"sigma": ok({"median": 0.3, "fraction_at_max": 0.2, "fraction_at_min": 0.1})}
    assert diagnostics.sigma_at_bound(MODEL, spread, 360) is None
    assert diagnostics.sigma_at_bound(MODEL, {"sigma": {"value": None, "status": "disabled"}}, 360) is None


def test_a_class_far_below_the_rest():
    accuracy = [0.9, 0.85, 0.0, 0.88, 0.3, 0.9, 0.92, 0.86, 0.89, 0.91]
    metrics = {"per_class_accuracy": ok({"accuracy": accuracy, "count": [36] * 10})}
    found = diagnostics.weak_class(metrics)
    assert found.code == "weak_class" and found.value == 0.0
    assert found.message.startswith("class 2 0.0% (0 of 36); class 4 30.0% (11 of 36): far below 88.9% mean")
    even = {"per_class_accuracy": ok({"accuracy": [0.8, 0.7, 0.75, 0.9], "count": [30] * 4})}
    assert diagnostics.weak_class(even) is None
    # a class with 3 test images says little: not flagged
    tiny = {"per_class_accuracy": ok({"accuracy": [0.9, 0.9, 0.0], "count": [30, 30, 3]})}
    assert diagnostics.weak_class(tiny) is None


def test_components_and_tau_columns_never_used():
    usage = {"component_usage": ok([0.5, 0.495, 0.005, 0.0])}
    found = diagnostics.unused_components(usage)
    assert found.code == "unused_component" and found.value == 2 and "component(s) 2, 3" in found.message
    assert diagnostics.unused_components({"component_usage": ok([0.25] * 4)}) is None
    labels = {"components_per_label": ok({"counts": [2, 0, 1, 0], "labels_covered": 2, "uncovered_labels": [1, 3]})}
    found = diagnostics.unused_tau_labels(labels)
    assert found.code == "unused_tau_label" and found.value == 2 and found.message.startswith("label(s) 1, 3")
    full = {"components_per_label": ok({"counts": [1, 1], "labels_covered": 2, "uncovered_labels": []})}
    assert diagnostics.unused_tau_labels(full) is None


def test_accuracy_below_the_baseline_with_the_standard_error_of_the_difference():
    metrics = {"accuracy": ok(0.712)}
    found = diagnostics.below_baseline(metrics, ok({"accuracy": 0.760}), 1000, "test")
    se = math.sqrt((0.712 * 0.288 + 0.76 * 0.24) / 1000)
    assert found.code == "below_baseline" and found.value == pytest.approx(-0.048) and found.threshold == 0.0
    assert found.message == (f"test accuracy 71.2% is 4.8 points below the logistic-regression baseline 76.0% "
                             f"(standard error of the difference ±{100 * se:.1f} points on 1000 images)")
    close = diagnostics.below_baseline({"accuracy": ok(0.75)}, ok({"accuracy": 0.76}), 360, "test")
    assert close.message.endswith(": within noise)")
    assert diagnostics.below_baseline({"accuracy": ok(0.8)}, ok({"accuracy": 0.76}), 360, "test") is None


def test_binomial_standard_error():
    assert diagnostics.binomial_se(0.5, 100) == pytest.approx(0.05)
    assert diagnostics.binomial_se(0.9, 360) == pytest.approx(math.sqrt(0.09 / 360))
    assert diagnostics.binomial_se(None, 100) is None and diagnostics.binomial_se(0.5, 0) is None


def test_warnings_reach_summary_report_and_the_runs_listing(tmp_path, capsys):
    model = {**MIXTURE, "sigma_min": 0.05, "sigma_max": 0.06, "max_epochs": 6}  # σ clipped at 0.06 nearly always
    experiment, effective = load(tmp_path, model=model,
                                 report={"skip_plots": ["latent_by_label", "reconstructions", "samples",
                                                        "calibration", "confusion_matrix", "sigma_maps"]})
    run_id = "warned__mix10_tau_het__20250101_120000"
    run_dir, splits, _ = make_run(tmp_path / "results", run_id, experiment, epochs=6)
    summary, text = report.build_report(run_dir, experiment, effective, metadata(experiment, run_id,
                                                                                 splits.fingerprint), [])
    report.write_report(run_dir, summary, text)
    summary = strict_loads((run_dir / "summary.json").read_text())
    codes = [d["code"] for d in summary["diagnostics"]]
    assert "sigma_at_bound" in codes and "below_baseline" in codes
    for d in summary["diagnostics"]:
        assert d["message"] in summary["warnings"] and d["value"] is not None
        assert f"- {d['message'].replace('|', chr(92) + '|')}" in text  # REPORT.md's Warnings section
    # the synthetic folder holds only what the report needs: give it every other stage output, in stage order,
    # so that it lists as the finished run it stands for
    for stage_index, stage in enumerate(runstate.STAGES):
        for out in runstate.STAGE_OUTPUTS[stage]:
            path = run_dir / out
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("{}")
            stamp = time.time_ns() + stage_index * 1_000_000_000
            os.utime(path, ns=(stamp, stamp))
    assert cli.main(["runs", "--results", str(tmp_path / "results")]) == 0
    listed = capsys.readouterr().out
    assert "sigma_at_bound" in listed and "below_baseline" in listed
