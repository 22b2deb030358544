"""The headline numbers of one run, read from its train.json and metrics.json: what REPORT.md shows first,
summary.json records, and the comparison and `ssvae runs` rank and list."""

from __future__ import annotations

from typing import Any

from ssvae.evaluation.metrics import BASELINE_NAME
from ssvae.results import diagnostics


def success_value(entry: Any, key: str | None = None):
    """The value of a metric entry that succeeded (one field of it with `key`); None otherwise."""
    if not isinstance(entry, dict) or entry.get("status") != "success":
        return None
    value = entry.get("value")
    return value.get(key) if key is not None and isinstance(value, dict) else value


def _mapping(value: Any) -> dict:
    """A part of a document that should be a mapping, or an empty one (a damaged file lists no numbers)."""
    return value if isinstance(value, dict) else {}


def headline(training: dict, evaluation: dict) -> dict:
    """The handful of numbers a reader looks at first: accuracy with its binomial standard error on the n
    evaluated images, the baseline, the gain over it (points as a fraction) with its error."""
    m = _mapping(evaluation.get("metrics"))
    baseline = _mapping(evaluation.get("baseline")).get(BASELINE_NAME)
    n = evaluation.get("num_examples")
    accuracy, base = success_value(m.get("accuracy")), success_value(baseline, "accuracy")
    return {
        "split": evaluation.get("split"),
        "num_examples": n,
        "accuracy": accuracy,
        "accuracy_se": diagnostics.binomial_se(accuracy, n),
        "baseline_accuracy": base,
        "gain": accuracy - base if accuracy is not None and base is not None else None,
        "gain_se": diagnostics.gain_se(accuracy, base, n),
        "elbo": success_value(m.get("elbo"), "elbo"),
        "likelihood": success_value(m.get("elbo"), "likelihood"),
        "k_eff": success_value(m.get("k_eff")),
        "clustering_accuracy": success_value(m.get("clustering_accuracy")),
        "nmi": success_value(m.get("nmi")),
        "ece": success_value(m.get("calibration"), "ece"),
        "best_epoch": training.get("best_epoch"),
        "epochs_completed": training.get("epochs_completed"),
        "stopped_early": training.get("stopped_early"),
        "training_time_sec": training.get("training_time_sec"),
    }
