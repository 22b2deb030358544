"""Each evaluation metric on a case with a known answer, and the statuses around them."""

import dataclasses
import math

import numpy as np
import pytest
from synthetic_run import MIXTURE, CentroidModel, load, strict_loads

from ssvae import disk
from ssvae.data import datasets
from ssvae.evaluation import evaluate, metrics
from ssvae.evaluation.predictions import Predictions


def one_hot(labels, n):
    return np.eye(n)[labels]


def predictions(y_prob, responsibilities=None, z=None, sigma=None, terms=None):
    n = len(y_prob)
    z = np.zeros((n, 2)) if z is None else z
    return Predictions(z=z, z_logvar=np.zeros_like(z), y_prob=y_prob, responsibilities=responsibilities,
                       recon=np.zeros((n, 8, 8)), sigma=sigma,
                       terms=terms if terms is not None else {"reconstruction": np.ones(n), "kl_z": np.ones(n)})


# classification


def test_accuracy_per_class_and_confusion_on_a_hand_example():
    y = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0, 2])
    prob = one_hot(predicted, 4) * 0.7 + 0.075
    assert metrics.accuracy(y, prob).value == pytest.approx(4 / 6)
    per_class = metrics.per_class_accuracy(y, prob, 4).value
    assert per_class["accuracy"][:3] == pytest.approx([0.5, 2 / 3, 1.0])
    assert per_class["accuracy"][3] is None  # class 3 is absent from the split: undefined, not 0
    assert per_class["count"] == [2, 3, 1, 0]
    matrix = np.array(metrics.confusion_matrix(y, prob, 4).value)
    assert matrix.tolist() == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert matrix.sum() == len(y)


def test_ece_of_perfectly_calibrated_predictions_is_zero():
    prob = np.tile([0.7, 0.3], (100, 1))
    y = np.array([0] * 70 + [1] * 30)  # 70% right at 70% confidence
    value = metrics.calibration(y, prob).value
    assert value["ece"] == pytest.approx(0.0, abs=1e-12)
    filled = [b for b in value["bins"] if b["count"]]
    assert len(filled) == 1 and filled[0]["count"] == 100
    assert filled[0]["accuracy"] == pytest.approx(0.7) and filled[0]["confidence"] == pytest.approx(0.7)
    assert sum(b["count"] for b in value["bins"]) == 100


def test_ece_of_overconfident_predictions_is_the_gap():
    prob = np.tile([0.9, 0.1], (10, 1))
    y = np.array([0] * 5 + [1] * 5)  # 50% right at 90% confidence
    assert metrics.calibration(y, prob).value["ece"] == pytest.approx(0.4)


def test_ece_of_sampled_calibrated_predictions_is_small():
    rng = np.random.default_rng(0)
    prob = rng.dirichlet(np.ones(5), size=20000)
    y = np.array([rng.choice(5, p=p) for p in prob])
    assert metrics.calibration(y, prob).value["ece"] < 0.02


def test_certainty_splits_right_and_wrong():
    prob = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    value = metrics.certainty(np.array([0, 1, 1]), prob).value
    assert value["mean"] == pytest.approx((0.9 + 0.6 + 0.8) / 3)
    assert value["mean_when_correct"] == pytest.approx(0.85)
    assert value["mean_when_wrong"] == pytest.approx(0.6)


# ELBO


def test_elbo_is_minus_the_sum_of_mean_terms():
    terms = {"reconstruction": np.array([10.0, 20.0]), "kl_z": np.array([1.0, 3.0]), "kl_c": np.array([0.5, 0.5])}
    value = metrics.elbo(terms).value
    assert value["elbo"] == pytest.approx(-(15.0 + 2.0 + 0.5))
    assert value["reconstruction"] == 15.0 and value["kl_z"] == 2.0 and value["kl_c"] == 0.5


def test_elbo_with_a_nan_term_fails_instead_of_reporting_nan():
    status = metrics.elbo({"reconstruction": np.array([1.0, np.nan]), "kl_z": np.zeros(2)})
    assert status.status == "failed" and "non-finite reconstruction" in status.reason


# mixture


def test_perfect_clustering_scores_one():
    y = np.repeat(np.arange(5), 20)
    resp = one_hot(y, 5)
    assert metrics.clustering_accuracy(y, resp, 5).value == pytest.approx(1.0)
    assert metrics.nmi(y, resp).value == pytest.approx(1.0)
    assert metrics.ari(y, resp).value == pytest.approx(1.0)


def test_a_permuted_labelling_still_scores_one_after_hungarian_matching():
    y = np.repeat(np.arange(5), 20)
    permutation = np.array([3, 0, 4, 1, 2])
    resp = one_hot(permutation[y], 5) * 0.9 + 0.02
    assert metrics.accuracy(y, one_hot(permutation[y], 5)).value == 0.0  # raw ids disagree everywhere
    assert metrics.clustering_accuracy(y, resp, 5).value == pytest.approx(1.0)
    assert metrics.nmi(y, resp).value == pytest.approx(1.0)
    assert metrics.ari(y, resp).value == pytest.approx(1.0)


def test_hungarian_matching_is_one_to_one_when_components_outnumber_classes():
    y = np.array([0] * 40 + [1] * 40)
    components = np.array([0] * 20 + [1] * 20 + [2] * 20 + [3] * 20)  # two components per class
    status = metrics.clustering_accuracy(y, one_hot(components, 4), 2)
    assert status.value == pytest.approx(0.5)
    # NMI and ARI do not require a one-to-one match: the split is pure, so NMI is high but below 1.
    assert 0.5 < metrics.nmi(y, one_hot(components, 4)).value < 1.0


def test_random_assignment_has_ari_near_zero():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 5000)
    resp = one_hot(rng.integers(0, 10, 5000), 10)
    assert abs(metrics.ari(y, resp).value) < 0.01


def test_k_eff_of_uniform_usage_is_k_and_of_one_component_is_one():
    k = 7
    assert metrics.effective_components(np.full((50, k), 1 / k)).value == pytest.approx(k)
    assert metrics.effective_components(one_hot(np.arange(49) % k, k)).value == pytest.approx(k)
    assert metrics.effective_components(one_hot(np.zeros(50, int), k)).value == pytest.approx(1.0)


def test_usage_active_components_and_confidence():
    resp = np.array([[0.5, 0.495, 0.005]] * 4)
    assert metrics.component_usage(resp).value == pytest.approx([0.5, 0.495, 0.005])
    assert metrics.active_components(resp).value == 2
    assert metrics.responsibility_confidence(resp).value["mean"] == pytest.approx(0.5)
    assert metrics.mixture_weights(np.array([0.25, 0.75])).value == [0.25, 0.75]


def test_missing_responsibilities_are_skipped_not_success():
    for status in (metrics.component_usage(None), metrics.effective_components(None), metrics.nmi(np.zeros(3), None),
                   metrics.clustering_accuracy(np.zeros(3, int), None, 2), metrics.mixture_weights(None)):
        assert status.status == "skipped" and status.reason


# τ


def test_tau_sparsity_and_components_per_label():
    tau = np.array([[0.98, 0.01, 0.01], [0.9, 0.05, 0.05], [0.02, 0.96, 0.02], [0.3, 0.3, 0.4]])
    assert metrics.tau_sparsity(tau).value == pytest.approx(4 / 12)  # entries < 0.05 (0.05 itself is not)
    value = metrics.components_per_label(tau).value
    assert value == {"counts": [2, 1, 1], "labels_covered": 3, "uncovered_labels": []}
    uncovered = metrics.components_per_label(np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0]])).value
    assert uncovered["counts"] == [2, 0, 0] and uncovered["uncovered_labels"] == [1, 2]


# heteroscedastic, latent


def test_sigma_statistics_report_mass_at_the_clip_bounds():
    sigma = np.array([0.05, 0.05, 0.2, 0.5])
    value = metrics.sigma_statistics(sigma, 0.05, 0.5).value
    assert value["fraction_at_min"] == 0.5 and value["fraction_at_max"] == 0.25
    assert value["mean"] == pytest.approx(0.2) and value["median"] == pytest.approx(0.125)


def test_active_units_count_dimensions_whose_means_vary():
    rng = np.random.default_rng(0)
    z = np.stack([rng.normal(0, 1, 1000), np.full(1000, 0.3), rng.normal(0, 0.05, 1000), rng.normal(0, 0.5, 1000)], 1)
    value = metrics.active_units(z).value
    assert value["count"] == 2 and value["latent_dim"] == 4


# baseline


def test_logistic_regression_baseline_on_separable_pixels():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 10)
    x = rng.uniform(0, 0.2, (20, 4, 4))
    x[y == 1, :2] += 0.8
    x_eval = rng.uniform(0, 0.2, (8, 4, 4))
    y_eval = np.array([0, 1] * 4)
    x_eval[y_eval == 1, :2] += 0.8
    value = metrics.logistic_regression_baseline(x, y, x_eval, y_eval).value
    assert value["accuracy"] == 1.0 and value["num_train"] == 20 and value["classes_seen"] == 2


def test_baseline_without_labels_or_with_one_class_is_skipped():
    x = np.zeros((3, 2, 2))
    assert metrics.logistic_regression_baseline(x[:0], np.array([], int), x, np.zeros(3)).status == "skipped"
    assert "single class" in metrics.logistic_regression_baseline(x, np.zeros(3, int), x, np.zeros(3)).reason


# registry: disabled / skipped / failed


def test_standard_prior_disables_every_mixture_metric(tmp_path):
    experiment, _ = load(tmp_path)
    prob = one_hot(np.arange(20) % 10, 10)
    inputs = metrics.MetricInputs(predictions(prob), np.arange(20) % 10, 10)
    results = metrics.compute_metrics(inputs, experiment.model)
    assert list(results) == list(metrics.METRIC_NAMES)
    for name in ("component_usage", "pi", "k_eff", "active_components", "responsibility_confidence",
                 "clustering_accuracy", "nmi", "ari"):
        assert results[name].status == "disabled" and "standard" in results[name].reason
    for name in ("tau_matrix", "tau_sparsity", "components_per_label"):
        assert results[name].status == "disabled" and "use_tau_classifier" in results[name].reason
    assert results["sigma"].status == "disabled"
    assert results["accuracy"].ok and results["accuracy"].value == 1.0


def test_a_single_component_mixture_disables_mixture_metrics(tmp_path):
    experiment, _ = load(tmp_path, model={"prior_type": "mixture", "num_components": 1})
    inputs = metrics.MetricInputs(predictions(one_hot(np.arange(10), 10), np.ones((10, 1))), np.arange(10), 10,
                                  pi=np.ones(1))
    results = metrics.compute_metrics(inputs, experiment.model)
    assert results["k_eff"].status == "disabled" and "single component" in results["k_eff"].reason
    assert results["nmi"].status == "disabled"


def test_skip_metrics_skips_with_the_reason(tmp_path):
    experiment, _ = load(tmp_path)
    inputs = metrics.MetricInputs(predictions(one_hot(np.arange(10), 10)), np.arange(10), 10)
    results = metrics.compute_metrics(inputs, experiment.model, skip=("calibration",))
    assert results["calibration"].status == "skipped"
    assert results["calibration"].reason == "skipped by evaluation.skip_metrics"


def test_exceptions_and_non_finite_values_fail_never_succeed(tmp_path):
    experiment, _ = load(tmp_path)
    y = np.array([0, 1, 12])  # a label outside num_classes: the confusion matrix cannot index it
    z = np.array([[0.0, np.nan], [1.0, 2.0], [2.0, 1.0]])
    inputs = metrics.MetricInputs(predictions(one_hot([0, 1, 2], 10), z=z), y, 10)
    results = metrics.compute_metrics(inputs, experiment.model)
    assert results["confusion_matrix"].status == "failed" and "IndexError" in results["confusion_matrix"].reason
    assert results["active_units"].status == "failed" and "not finite" in results["active_units"].reason
    assert all(s.value is None for s in results.values() if s.status == "failed")


# evaluate: one pass, every metric, strict JSON


def test_evaluate_runs_the_model_once_and_writes_strict_json(tmp_path):
    experiment, _ = load(tmp_path, model=MIXTURE, evaluation={"skip_metrics": ["nmi"]})
    # validation rejects unknown names; evaluate still notes one that reaches it another way
    experiment = dataclasses.replace(experiment, evaluation=dataclasses.replace(
        experiment.evaluation, skip_metrics=("nmi", "no_such_metric")))
    splits = datasets.load_splits(experiment.data)
    model = CentroidModel(experiment, splits)
    document, arrays = evaluate.evaluate(experiment, splits, model)
    assert model.predict_calls == 1
    assert document["split"] == "test" and document["num_examples"] == len(splits.y_test)
    statuses = {name: m["status"] for name, m in document["metrics"].items()}
    assert set(statuses) == set(metrics.METRIC_NAMES)
    assert statuses["nmi"] == "skipped"
    assert all(s == "success" for name, s in statuses.items() if name != "nmi"), statuses
    assert any("no_such_metric" in note for note in document["notes"])
    baseline = document["baseline"]["logistic_regression"]
    assert baseline["status"] == "success" and baseline["value"]["num_train"] == 50 == splits.labeled.sum()
    accuracy = document["metrics"]["accuracy"]["value"]
    assert accuracy == pytest.approx(np.mean(arrays["y_prob"].argmax(1) == splits.y_test))
    assert arrays["y_true"].tolist() == splits.y_test.tolist()
    assert len(arrays["z"]) == len(arrays["plot_index"]) == 200
    assert arrays["samples"].shape == (10, evaluate.NUM_SAMPLES_PER_COMPONENT, 8, 8)
    assert sorted(arrays["y_true"][arrays["recon_index"]].tolist()) == list(range(10))  # one image per class
    evaluate.write_evaluation(tmp_path / "run", document, arrays)
    strict_loads((tmp_path / "run" / "metrics.json").read_text())
    assert evaluate.read_predictions(tmp_path / "run")["y_prob"].shape == (len(splits.y_test), 10)


def test_evaluate_on_the_validation_split_and_without_baseline(tmp_path):
    experiment, _ = load(tmp_path, evaluation={"split": "val", "baseline": False})
    splits = datasets.load_splits(experiment.data)
    document, arrays = evaluate.evaluate(experiment, splits, CentroidModel(experiment, splits))
    assert document["split"] == "val" and document["num_examples"] == len(splits.y_val)
    assert document["baseline"]["logistic_regression"]["status"] == "disabled"
    assert "responsibilities" not in arrays and arrays["samples"].shape[0] == 1


def test_evaluate_rejects_predictions_that_break_the_contract(tmp_path):
    experiment, _ = load(tmp_path)
    splits = datasets.load_splits(experiment.data)

    class Truncating(CentroidModel):
        def predict(self, x, batch_size):
            return super().predict(x[:-1], batch_size)

    with pytest.raises(ValueError, match="Predictions contract"):
        evaluate.evaluate(experiment, splits, Truncating(experiment, splits))


def test_a_failing_sampler_is_recorded_not_hidden(tmp_path):
    experiment, _ = load(tmp_path)
    splits = datasets.load_splits(experiment.data)

    class NoSampler(CentroidModel):
        def sample(self, n_per_component, seed=0):
            raise RuntimeError("sampler exploded")

    document, arrays = evaluate.evaluate(experiment, splits, NoSampler(experiment, splits))
    assert document["artifacts"]["samples"] == {"value": None, "status": "failed",
                                                "reason": "RuntimeError: sampler exploded"}
    assert "samples" not in arrays
    assert math.isfinite(disk.jsonable(document)["metrics"]["accuracy"]["value"])
