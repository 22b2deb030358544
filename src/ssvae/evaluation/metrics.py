"""Evaluation metrics (docs/models.md, "Metrics"): pure functions over numpy arrays, each returning a `Status`.

Every metric is computed from one `Predictions` pass over the evaluated split plus the true labels. A metric
that does not apply to the model is `disabled` with the reason, one whose inputs are missing is `skipped`,
one that raises or produces a non-finite number is `failed`; success always carries a finite value.
Units: ELBO terms are nats per image; accuracies are fractions in [0, 1].
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Callable

import numpy as np

from ssvae.config import ModelConfig
from ssvae.evaluation.predictions import Predictions
from ssvae.evaluation.status import Status

ACTIVE_COMPONENT_THRESHOLD = 0.01
ACTIVE_UNIT_THRESHOLD = 0.01
TAU_SPARSE_THRESHOLD = 0.05
CALIBRATION_BINS = 15


# classification -----------------------------------------------------------------------------------

def accuracy(y_true: np.ndarray, y_prob: np.ndarray) -> Status:
    """Fraction of examples whose argmax_y p(y|x) equals the true label."""
    if len(y_true) == 0:
        return Status.skipped("no examples to score")
    return Status.success(float(np.mean(y_prob.argmax(axis=1) == y_true)))


def per_class_accuracy(y_true: np.ndarray, y_prob: np.ndarray, num_classes: int) -> Status:
    """Accuracy within each true class (null for a class absent from the split), with the class counts."""
    if len(y_true) == 0:
        return Status.skipped("no examples to score")
    correct = y_prob.argmax(axis=1) == y_true
    counts = np.bincount(y_true, minlength=num_classes)
    hits = np.bincount(y_true, weights=correct, minlength=num_classes)
    values = [float(h / n) if n else None for h, n in zip(hits, counts)]
    return Status.success({"accuracy": values, "count": counts.tolist()})


def confusion_matrix(y_true: np.ndarray, y_prob: np.ndarray, num_classes: int) -> Status:
    """Counts M[true, predicted]."""
    if len(y_true) == 0:
        return Status.skipped("no examples to score")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_prob.argmax(axis=1)), 1)
    return Status.success(matrix.tolist())


def certainty(y_true: np.ndarray, y_prob: np.ndarray) -> Status:
    """Statistics of the confidence max_y p(y|x), overall and split by correct / wrong predictions."""
    if len(y_true) == 0:
        return Status.skipped("no examples to score")
    confidence = y_prob.max(axis=1)
    correct = y_prob.argmax(axis=1) == y_true
    return Status.success({
        "mean": float(confidence.mean()),
        "std": float(confidence.std()),
        "min": float(confidence.min()),
        "max": float(confidence.max()),
        "mean_when_correct": float(confidence[correct].mean()) if correct.any() else None,
        "mean_when_wrong": float(confidence[~correct].mean()) if (~correct).any() else None,
    })


def calibration(y_true: np.ndarray, y_prob: np.ndarray, num_bins: int = CALIBRATION_BINS) -> Status:
    """Expected calibration error ECE = Σ_b (n_b/N)·|acc_b − conf_b| over equal-width confidence bins.

    The value also lists each bin (edges, count, mean confidence, accuracy; null for empty bins): the data
    of the reliability diagram.
    """
    if len(y_true) == 0:
        return Status.skipped("no examples to score")
    confidence = y_prob.max(axis=1)
    correct = (y_prob.argmax(axis=1) == y_true).astype(float)
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    # Bins are (lower, upper]; a confidence of exactly 0 joins the first bin.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, num_bins - 1)
    bins, ece = [], 0.0
    for b in range(num_bins):
        mask = which == b
        n = int(mask.sum())
        conf_b = float(confidence[mask].mean()) if n else None
        acc_b = float(correct[mask].mean()) if n else None
        if n:
            ece += n / len(y_true) * abs(acc_b - conf_b)
        bins.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": n,
                     "confidence": conf_b, "accuracy": acc_b})
    return Status.success({"ece": float(ece), "num_bins": num_bins, "bins": bins})


# ELBO ---------------------------------------------------------------------------------------------

def likelihood(model: ModelConfig) -> str:
    """What the reconstruction term is: a Bernoulli or Gaussian NLL in nats, or a plain squared error."""
    if model.use_heteroscedastic_decoder:
        return "gaussian_nll"
    return "bernoulli_nll" if model.reconstruction_loss == "bce" else "squared_error"


def elbo(terms: dict[str, np.ndarray], likelihood: str | None = None) -> Status:
    """ELBO = −(reconstruction NLL + KL_z [+ KL_c]) per image, unweighted (β = 1), with each term's mean.

    With a squared-error reconstruction (`likelihood` = squared_error) the result is not a bound in nats.
    """
    if not terms:
        return Status.skipped("the predictions carry no loss terms")
    means = {}
    for name, values in terms.items():
        values = np.asarray(values, dtype=np.float64)
        bad = int((~np.isfinite(values)).sum())
        if bad:
            return Status.failed(f"{bad} of {values.size} examples have a non-finite {name} term")
        means[name] = float(values.mean())
    total = np.sum([np.asarray(v, dtype=np.float64) for v in terms.values()], axis=0)
    value = {"elbo": float(-total.mean()), "neg_elbo_std": float(total.std()), **means}
    if likelihood is not None:
        value["likelihood"] = likelihood
    return Status.success(value)


# mixture ------------------------------------------------------------------------------------------

def _usage(responsibilities: np.ndarray) -> np.ndarray:
    usage = np.asarray(responsibilities, dtype=np.float64).mean(axis=0)
    return usage / usage.sum()


def component_usage(responsibilities: np.ndarray | None) -> Status:
    """Mean responsibility per component, mean_x q(c|x) (sums to 1)."""
    if responsibilities is None:
        return Status.skipped("the predictions carry no responsibilities")
    return Status.success(_usage(responsibilities).tolist())


def mixture_weights(pi: np.ndarray | None) -> Status:
    """The prior's mixture weights π."""
    if pi is None:
        return Status.skipped("the model exposes no mixture weights pi")
    return Status.success(np.asarray(pi, dtype=np.float64).tolist())


def effective_components(responsibilities: np.ndarray | None) -> Status:
    """K_eff = exp(H(mean_x r)): K when usage is uniform, 1 when one component takes everything."""
    if responsibilities is None:
        return Status.skipped("the predictions carry no responsibilities")
    usage = _usage(responsibilities)
    nonzero = usage[usage > 0]
    return Status.success(float(np.exp(-(nonzero * np.log(nonzero)).sum())))


def active_components(responsibilities: np.ndarray | None, threshold: float = ACTIVE_COMPONENT_THRESHOLD) -> Status:
    """Number of components whose mean usage exceeds `threshold`."""
    if responsibilities is None:
        return Status.skipped("the predictions carry no responsibilities")
    return Status.success(int((_usage(responsibilities) > threshold).sum()))


def responsibility_confidence(responsibilities: np.ndarray | None) -> Status:
    """Mean of max_c q(c|x): near 1 for hard assignments, 1/K for uniform ones."""
    if responsibilities is None:
        return Status.skipped("the predictions carry no responsibilities")
    top = np.asarray(responsibilities).max(axis=1)
    return Status.success({"mean": float(top.mean()), "std": float(top.std())})


def _contingency(components: np.ndarray, y_true: np.ndarray, num_components: int, num_classes: int) -> np.ndarray:
    table = np.zeros((num_components, num_classes), dtype=np.int64)
    np.add.at(table, (components, y_true), 1)
    return table


def clustering_accuracy(y_true: np.ndarray, responsibilities: np.ndarray | None, num_classes: int) -> Status:
    """Accuracy of argmax_c q(c|x) after the best one-to-one component→label matching (Hungarian algorithm).

    With more components than classes only min(K, C) components get a label; the rest count as wrong.
    """
    from scipy.optimize import linear_sum_assignment

    if responsibilities is None:
        return Status.skipped("the predictions carry no responsibilities")
    if len(y_true) == 0:
        return Status.skipped("no examples to score")
    components = np.asarray(responsibilities).argmax(axis=1)
    table = _contingency(components, y_true, responsibilities.shape[1], num_classes)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return Status.success(float(table[rows, cols].sum() / len(y_true)))


def nmi(y_true: np.ndarray, responsibilities: np.ndarray | None) -> Status:
    """Normalised mutual information between argmax_c q(c|x) and the true labels (arithmetic normalisation)."""
    from sklearn.metrics import normalized_mutual_info_score

    if responsibilities is None:
        return Status.skipped("the predictions carry no responsibilities")
    if len(y_true) == 0:
        return Status.skipped("no examples to score")
    return Status.success(float(normalized_mutual_info_score(y_true, np.asarray(responsibilities).argmax(axis=1))))


def ari(y_true: np.ndarray, responsibilities: np.ndarray | None) -> Status:
    """Adjusted Rand index between argmax_c q(c|x) and the true labels."""
    from sklearn.metrics import adjusted_rand_score

    if responsibilities is None:
        return Status.skipped("the predictions carry no responsibilities")
    if len(y_true) == 0:
        return Status.skipped("no examples to score")
    return Status.success(float(adjusted_rand_score(y_true, np.asarray(responsibilities).argmax(axis=1))))


# τ-classifier -------------------------------------------------------------------------------------

def tau_matrix(tau: np.ndarray | None) -> Status:
    """τ[c, y] = p(y | c), rows summing to 1."""
    if tau is None:
        return Status.skipped("the model exposes no tau matrix")
    return Status.success(np.asarray(tau, dtype=np.float64).tolist())


def tau_sparsity(tau: np.ndarray | None, threshold: float = TAU_SPARSE_THRESHOLD) -> Status:
    """Fraction of τ entries below `threshold`: 0 for uniform rows (C <= 20), near 1 − 1/C for one-hot rows."""
    if tau is None:
        return Status.skipped("the model exposes no tau matrix")
    return Status.success(float((np.asarray(tau) < threshold).mean()))


def components_per_label(tau: np.ndarray | None) -> Status:
    """For each label y, how many components have y as their dominant label argmax_y τ[c, y]."""
    if tau is None:
        return Status.skipped("the model exposes no tau matrix")
    tau = np.asarray(tau)
    counts = np.bincount(tau.argmax(axis=1), minlength=tau.shape[1])
    uncovered = [int(y) for y in np.flatnonzero(counts == 0)]
    return Status.success({"counts": counts.tolist(), "labels_covered": int((counts > 0).sum()),
                           "uncovered_labels": uncovered})


# heteroscedastic decoder --------------------------------------------------------------------------

def sigma_statistics(sigma: np.ndarray | None, sigma_min: float | None = None,
                     sigma_max: float | None = None) -> Status:
    """Per-image σ of the heteroscedastic decoder: mean, spread, and the fraction pinned at either clip bound."""
    if sigma is None:
        return Status.skipped("the predictions carry no sigma")
    sigma = np.asarray(sigma, dtype=np.float64)
    if sigma.size == 0:
        return Status.skipped("no examples to score")
    value = {"mean": float(sigma.mean()), "std": float(sigma.std()), "min": float(sigma.min()),
             "median": float(np.median(sigma)), "max": float(sigma.max())}
    if sigma_min is not None:
        value["fraction_at_min"] = float(np.isclose(sigma, sigma_min, rtol=1e-4, atol=1e-7).mean())
    if sigma_max is not None:
        value["fraction_at_max"] = float(np.isclose(sigma, sigma_max, rtol=1e-4, atol=1e-7).mean())
    return Status.success(value)


# latent -------------------------------------------------------------------------------------------

def active_units(z: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD) -> Status:
    """Latent dimensions d with Var_x(E_q[z_d | x]) > `threshold` (Burda et al., 2016)."""
    z = np.asarray(z, dtype=np.float64)
    if len(z) < 2:
        return Status.skipped("need at least two examples for a variance")
    variance = z.var(axis=0)
    return Status.success({"count": int((variance > threshold).sum()), "latent_dim": int(z.shape[1]),
                           "variance": variance.tolist()})


# baseline -----------------------------------------------------------------------------------------

def logistic_regression_baseline(x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray,
                                 y_eval: np.ndarray, seed: int = 0) -> Status:
    """Accuracy of a logistic regression on raw pixels, fitted on the given (labeled) examples only."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if len(y_train) == 0:
        return Status.skipped("no labeled training examples (data.num_labeled is 0)")
    classes = np.unique(y_train)
    if len(classes) < 2:
        return Status.skipped(f"the labeled examples cover a single class ({int(classes[0])})")
    model = LogisticRegression(max_iter=2000, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x_train.reshape(len(x_train), -1), y_train)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    predicted = model.predict(x_eval.reshape(len(x_eval), -1))
    return Status.success({"accuracy": float(np.mean(predicted == y_eval)), "num_train": int(len(y_train)),
                           "classes_seen": int(len(classes)), "converged": converged})


# registry -----------------------------------------------------------------------------------------

@dataclasses.dataclass
class MetricInputs:
    """Everything the metrics read: one predictions pass, the true labels and the model's prior parameters."""

    predictions: Predictions
    y_true: np.ndarray
    num_classes: int
    pi: np.ndarray | None = None
    tau: np.ndarray | None = None
    sigma_min: float | None = None
    sigma_max: float | None = None
    likelihood: str | None = None


def _always(model: ModelConfig) -> str | None:
    return None


def requires_components(model: ModelConfig) -> str | None:
    """Why component metrics and plots do not apply (None when they do)."""
    if not model.is_mixture:
        return (f"prior_type {model.prior_type!r} has no component channel "
                "(mixture metrics need mixture, vamp or geometric_mog)")
    if model.num_components < 2:
        return "num_components is 1: a single component has no usage, routing or clustering to measure"
    return None


def requires_tau(model: ModelConfig) -> str | None:
    """Why τ metrics and plots do not apply (None when they do)."""
    return None if model.use_tau_classifier else "use_tau_classifier is false"


def requires_sigma(model: ModelConfig) -> str | None:
    """Why σ metrics and plots do not apply (None when they do)."""
    return None if model.use_heteroscedastic_decoder else "use_heteroscedastic_decoder is false"


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    name: str
    description: str
    applies: Callable[[ModelConfig], str | None]
    compute: Callable[[MetricInputs], Status]


def _resp(inputs: MetricInputs):
    return inputs.predictions.responsibilities


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("elbo", "ELBO per image (unweighted, beta = 1; nats unless the likelihood is squared_error) and "
               "the mean of each term", _always,
               lambda i: elbo(i.predictions.terms, i.likelihood)),
    MetricSpec("accuracy", "classification accuracy of argmax p(y|x)", _always,
               lambda i: accuracy(i.y_true, i.predictions.y_prob)),
    MetricSpec("per_class_accuracy", "accuracy within each true class", _always,
               lambda i: per_class_accuracy(i.y_true, i.predictions.y_prob, i.num_classes)),
    MetricSpec("confusion_matrix", "counts [true label, predicted label]", _always,
               lambda i: confusion_matrix(i.y_true, i.predictions.y_prob, i.num_classes)),
    MetricSpec("certainty", "confidence max_y p(y|x): overall, when right, when wrong", _always,
               lambda i: certainty(i.y_true, i.predictions.y_prob)),
    MetricSpec("calibration", f"expected calibration error over {CALIBRATION_BINS} equal-width confidence bins",
               _always, lambda i: calibration(i.y_true, i.predictions.y_prob)),
    MetricSpec("active_units", f"latent dimensions with Var_x(E[z|x]) > {ACTIVE_UNIT_THRESHOLD}", _always,
               lambda i: active_units(i.predictions.z)),
    MetricSpec("component_usage", "mean responsibility per component, mean_x q(c|x)", requires_components,
               lambda i: component_usage(_resp(i))),
    MetricSpec("pi", "mixture weights pi of the prior", requires_components, lambda i: mixture_weights(i.pi)),
    MetricSpec("k_eff", "effective number of components exp(H(mean_x q(c|x)))", requires_components,
               lambda i: effective_components(_resp(i))),
    MetricSpec("active_components", f"components with mean usage > {ACTIVE_COMPONENT_THRESHOLD}",
               requires_components, lambda i: active_components(_resp(i))),
    MetricSpec("responsibility_confidence", "mean of max_c q(c|x)", requires_components,
               lambda i: responsibility_confidence(_resp(i))),
    MetricSpec("clustering_accuracy", "accuracy of argmax_c q(c|x) after Hungarian component-to-label matching",
               requires_components, lambda i: clustering_accuracy(i.y_true, _resp(i), i.num_classes)),
    MetricSpec("nmi", "normalised mutual information of argmax_c q(c|x) and the true labels", requires_components,
               lambda i: nmi(i.y_true, _resp(i))),
    MetricSpec("ari", "adjusted Rand index of argmax_c q(c|x) and the true labels", requires_components,
               lambda i: ari(i.y_true, _resp(i))),
    MetricSpec("tau_matrix", "tau[c, y] = p(y | c)", requires_tau, lambda i: tau_matrix(i.tau)),
    MetricSpec("tau_sparsity", f"fraction of tau entries < {TAU_SPARSE_THRESHOLD}", requires_tau,
               lambda i: tau_sparsity(i.tau)),
    MetricSpec("components_per_label", "components whose dominant label (argmax_y tau[c, y]) is each label",
               requires_tau, lambda i: components_per_label(i.tau)),
    MetricSpec("sigma", "per-image sigma of the heteroscedastic decoder", requires_sigma,
               lambda i: sigma_statistics(i.predictions.sigma, i.sigma_min, i.sigma_max)),
)

METRIC_NAMES: tuple[str, ...] = tuple(spec.name for spec in METRICS)
BASELINE_NAME = "logistic_regression"
DESCRIPTIONS: dict[str, str] = {spec.name: spec.description for spec in METRICS} | {
    BASELINE_NAME: "logistic regression on raw pixels, fitted on the same labeled training examples"}


def _finite(value: Any) -> bool:
    """True when every number inside `value` is finite (None entries are allowed: they mean 'not defined')."""
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    if isinstance(value, np.ndarray):
        return bool(np.all(np.isfinite(value)))
    if isinstance(value, (float, np.floating)):
        return math.isfinite(float(value))
    return True


def guarded(compute: Callable[[], Status]) -> Status:
    """Run one metric: an exception or a non-finite value becomes `failed`, never a silent success."""
    try:
        result = compute()
    except Exception as exc:  # noqa: BLE001 - every failure is recorded as the metric's status
        return Status.failed(f"{type(exc).__name__}: {exc}")
    if not isinstance(result, Status):
        return Status.failed(f"metric returned {type(result).__name__}, not a Status")
    if result.ok and not _finite(result.value):
        return Status.failed("the value is not finite (NaN or inf)")
    return result


def compute_metrics(inputs: MetricInputs, model: ModelConfig,
                    skip: tuple[str, ...] | list[str] = ()) -> dict[str, Status]:
    """Every metric of `METRICS` in order: disabled when it does not apply, skipped when asked, else computed."""
    results = {}
    for spec in METRICS:
        reason = spec.applies(model)
        if reason is not None:
            results[spec.name] = Status.disabled(reason)
        elif spec.name in skip:
            results[spec.name] = Status.skipped("skipped by evaluation.skip_metrics")
        else:
            results[spec.name] = guarded(lambda spec=spec: spec.compute(inputs))
    return results
