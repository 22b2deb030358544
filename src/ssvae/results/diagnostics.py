"""Warnings a researcher needs about a finished run, each with the number behind it.

Computed by the report stage from train.json, history.csv and metrics.json (no model, no JAX) and recorded in
summary.json as `diagnostics` (code, message, value, threshold); the messages also join summary.json's
`warnings`, REPORT.md's Warnings section and `ssvae runs`.

| code | fires when |
|---|---|
| `still_improving` | training ended at max_epochs, not by early stopping, with the best epoch among the last `window` |
| `sigma_at_bound` | the heteroscedastic σ sits at σ_min or σ_max for more than half of the evaluated images |
| `weak_class` | a class scores below half the mean accuracy of the other classes (and 20+ points below it) |
| `unused_component` | a component's mean usage mean_x q(c|x) is below 0.01 |
| `unused_tau_label` | a label is the dominant label argmax_y τ[c, y] of no component (a τ column never used) |
| `below_baseline` | accuracy is below the logistic-regression baseline on the same split and labels |
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import numpy as np

SIGMA_BOUND_FRACTION = 0.5
WEAK_CLASS_RATIO = 0.5
WEAK_CLASS_GAP = 0.2
MIN_CLASS_COUNT = 5
UNUSED_USAGE = 0.01  # the same threshold as metrics.ACTIVE_COMPONENT_THRESHOLD
IMPROVING_WINDOW_SHARE = 0.1


@dataclasses.dataclass(frozen=True)
class Diagnostic:
    """One warning: a stable `code`, a sentence with the numbers, the number itself and the bound it crossed."""

    code: str
    message: str
    value: Any = None
    threshold: Any = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def binomial_se(p: float | None, n: int | None) -> float | None:
    """Standard error of an accuracy p measured on n images: √(p(1 − p)/n)."""
    if p is None or not n:
        return None
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def gain_se(accuracy: float | None, baseline: float | None, n: int | None) -> float | None:
    """Standard error of accuracy − baseline on the same n images, √(se_a² + se_b²): the two treated as
    independent, which overstates it a little (both models find the same images easy)."""
    a, b = binomial_se(accuracy, n), binomial_se(baseline, n)
    return None if a is None or b is None else math.sqrt(a * a + b * b)


def _success(entry: Any, key: str | None = None):
    if not isinstance(entry, Mapping) or entry.get("status") != "success":
        return None
    value = entry.get("value")
    return value.get(key) if key and isinstance(value, Mapping) else value


def _list(items) -> str:
    return ", ".join(str(i) for i in items)


def still_improving(model: Mapping, train: Mapping, history: Mapping[str, np.ndarray]) -> Diagnostic | None:
    """Ended by max_epochs, not by early stopping, with the best epoch within the last
    window = max(1, min(patience, ⌈0.1 · epochs⌉)) epochs: more epochs would likely have helped."""
    epochs, best = train.get("epochs_completed"), train.get("best_epoch")
    max_epochs, patience = model.get("max_epochs"), model.get("patience") or 1
    if train.get("stopped_early") or not epochs or best is None or max_epochs is None or epochs < max_epochs:
        return None
    window = max(1, min(patience, math.ceil(IMPROVING_WINDOW_SHARE * epochs)))
    if epochs - best >= window:
        return None
    monitor = train.get("monitor_metric") or "the monitored metric"
    trend = ""
    column = history.get(monitor) if isinstance(monitor, str) else None
    if column is not None and len(column) >= epochs and epochs > window:
        before, at_best = float(column[epochs - window - 1]), float(column[best - 1])
        if math.isfinite(before) and math.isfinite(at_best) and before != 0:
            trend = (f"; it moved {100 * abs(at_best - before) / abs(before):.2g}% over the last {window} "
                     f"epoch(s) ({before:.4g} → {at_best:.4g})")
    return Diagnostic(
        "still_improving",
        f"training stopped at max_epochs = {max_epochs} while still improving: the best {monitor} came at epoch "
        f"{best} of {epochs} (early stopping never triggered, patience {patience}){trend}; "
        "raise model.max_epochs",
        value=best, threshold=epochs - window)


def sigma_at_bound(model: Mapping, metrics: Mapping, num_examples: int | None) -> Diagnostic | None:
    """σ clipped at σ_min or σ_max for more than half of the evaluated images: clipped, not learned."""
    value = _success(metrics.get("sigma"))
    if not isinstance(value, Mapping):
        return None
    for side, bound_key in (("max", "sigma_max"), ("min", "sigma_min")):
        fraction = value.get(f"fraction_at_{side}")
        if fraction is not None and fraction > SIGMA_BOUND_FRACTION:
            bound = model.get(bound_key)
            where = "upper" if side == "max" else "lower"
            of = f" of the {num_examples} evaluated images" if num_examples else " of the evaluated images"
            return Diagnostic(
                "sigma_at_bound",
                f"σ sits at its {where} bound {bound_key} = {bound:g} for {100 * fraction:.0f}%{of}: the "
                f"decoder's variance is clipped, not learned (median σ {value.get('median', float('nan')):.3g})",
                value=fraction, threshold=SIGMA_BOUND_FRACTION)
    return None


def weak_class(metrics: Mapping) -> Diagnostic | None:
    """Classes (with at least 5 examples) whose accuracy is below half the mean of the other classes' and at
    least 20 points below it."""
    value = _success(metrics.get("per_class_accuracy"))
    if not isinstance(value, Mapping):
        return None
    accuracy, count = value.get("accuracy") or [], value.get("count") or []
    scored = {c: a for c, (a, n) in enumerate(zip(accuracy, count)) if a is not None and n >= MIN_CLASS_COUNT}
    weak = []
    for c, a in scored.items():
        others = [v for k, v in scored.items() if k != c]
        if not others:
            continue
        rest = float(np.mean(others))
        if a < WEAK_CLASS_RATIO * rest and rest - a >= WEAK_CLASS_GAP:
            weak.append((a, c, rest))
    if not weak:
        return None
    weak.sort()
    flagged = {c for _, c, _ in weak}
    unflagged = [a for c, a in scored.items() if c not in flagged]
    parts = [f"class {c} {100 * a:.1f}% ({round(a * count[c])} of {count[c]})" for a, c, _ in weak]
    against = (f"{100 * float(np.mean(unflagged)):.1f}% mean accuracy over the other {len(unflagged)} classes"
               if unflagged else "the other classes")
    return Diagnostic(
        "weak_class",
        f"{'; '.join(parts)}: far below {against}",
        value=weak[0][0], threshold=WEAK_CLASS_RATIO * weak[0][2])


def unused_components(metrics: Mapping) -> Diagnostic | None:
    """Components whose mean usage mean_x q(c|x) on the evaluated split is below 0.01."""
    usage = _success(metrics.get("component_usage"))
    if not isinstance(usage, list) or len(usage) < 2:
        return None
    unused = [k for k, u in enumerate(usage) if u is not None and u < UNUSED_USAGE]
    if not unused:
        return None
    return Diagnostic(
        "unused_component",
        f"{len(unused)} of {len(usage)} components are never used (mean usage below {UNUSED_USAGE}): "
        f"component(s) {_list(unused)}",
        value=len(unused), threshold=UNUSED_USAGE)


def unused_tau_labels(metrics: Mapping) -> Diagnostic | None:
    """Labels that are the dominant label of no component: their τ column is never the argmax."""
    value = _success(metrics.get("components_per_label"))
    if not isinstance(value, Mapping) or not value.get("uncovered_labels"):
        return None
    uncovered = value["uncovered_labels"]
    return Diagnostic(
        "unused_tau_label",
        f"label(s) {_list(uncovered)} are the dominant label of no component (τ column never used): the "
        "τ-classifier can hardly predict them",
        value=len(uncovered), threshold=0)


def below_baseline(metrics: Mapping, baseline: Mapping, num_examples: int | None, split: str) -> Diagnostic | None:
    """Accuracy below the logistic regression fitted on the same labeled images, with the standard error."""
    accuracy = _success(metrics.get("accuracy"))
    base = _success(baseline, "accuracy")
    if accuracy is None or base is None or accuracy >= base:
        return None
    gain = accuracy - base
    se = gain_se(accuracy, base, num_examples)
    noise = ""
    if se:
        noise = f" (standard error of the difference ±{100 * se:.1f} points on {num_examples} images"
        noise += ": within noise)" if abs(gain) < 2 * se else ")"
    return Diagnostic(
        "below_baseline",
        f"{split} accuracy {100 * accuracy:.1f}% is {100 * -gain:.1f} points below the logistic-regression "
        f"baseline {100 * base:.1f}%{noise}",
        value=gain, threshold=0.0)


def diagnose(model: Mapping, train: Mapping, history: Mapping[str, np.ndarray],
             metrics_doc: Mapping) -> list[Diagnostic]:
    """Every warning that applies to a run, in the order of the table above."""
    metrics = metrics_doc.get("metrics") or {}
    baseline = (metrics_doc.get("baseline") or {}).get("logistic_regression") or {}
    n = metrics_doc.get("num_examples")
    split = metrics_doc.get("split") or "test"
    found = [still_improving(model, train, history), sigma_at_bound(model, metrics, n), weak_class(metrics),
             unused_components(metrics), unused_tau_labels(metrics), below_baseline(metrics, baseline, n, split)]
    return [d for d in found if d is not None]
