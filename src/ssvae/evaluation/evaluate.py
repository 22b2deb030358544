"""The evaluate stage: one predictions pass of the best checkpoint over the held-out split, every metric from it.

`evaluate` returns the `metrics.json` document and the arrays that `predictions.npz` keeps, so that the
report draws every figure from files, without JAX and without running the model again.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np

from ssvae import disk
from ssvae.config import Experiment
from ssvae.data.datasets import Splits
from ssvae.evaluation import metrics as metrics_mod
from ssvae.evaluation.predictions import Predictions, read_predictions  # noqa: F401  (read_predictions: the reader, next to the type)
from ssvae.evaluation.status import Status

SCHEMA_VERSION = 1
NUM_RECONSTRUCTIONS = 10
NUM_SAMPLES_PER_COMPONENT = 8
NUM_SIGMA_EXAMPLES = 8
# Fixed, so every run on the same split plots the same points.
PLOT_SUBSAMPLE_SEED = 0


def evaluated_split(experiment: Experiment, splits: Splits) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of the split that `evaluation.split` names (test by default)."""
    if experiment.evaluation.split == "test":
        return splits.x_test, splits.y_test
    if experiment.evaluation.split == "val":
        return splits.x_val, splits.y_val
    raise ValueError(f"evaluation.split must be test or val, got {experiment.evaluation.split!r}")


def _check_predictions(preds: Predictions, n: int, num_classes: int) -> None:
    """The Predictions contract, checked once so no metric works on misshapen arrays."""
    problems = []
    if preds.y_prob.shape != (n, num_classes):
        problems.append(f"y_prob has shape {preds.y_prob.shape}, expected {(n, num_classes)}")
    if preds.z.ndim != 2 or len(preds.z) != n:
        problems.append(f"z has shape {preds.z.shape}, expected ({n}, latent_dim)")
    if preds.responsibilities is not None and (preds.responsibilities.ndim != 2 or len(preds.responsibilities) != n):
        problems.append(f"responsibilities has shape {preds.responsibilities.shape}, expected ({n}, K)")
    if preds.sigma is not None and preds.sigma.shape != (n,):
        problems.append(f"sigma has shape {preds.sigma.shape}, expected ({n},)")
    if len(preds.recon) != n:
        problems.append(f"recon has {len(preds.recon)} images, expected {n}")
    for name, values in preds.terms.items():
        if np.shape(values) != (n,):
            problems.append(f"terms[{name!r}] has shape {np.shape(values)}, expected ({n},)")
    if problems:
        raise ValueError("model.predict broke the Predictions contract: " + "; ".join(problems))


def example_indices(y: np.ndarray, count: int) -> np.ndarray:
    """The first example of each class in label order, then the next unused ones, `count` in all."""
    chosen = [int(np.flatnonzero(y == c)[0]) for c in np.unique(y)][:count]
    taken = set(chosen)
    rest = [i for i in range(min(len(y), 2 * count)) if i not in taken]
    return np.array(chosen + rest[: count - len(chosen)], dtype=np.int64)


def plot_subsample(n: int, size: int) -> np.ndarray:
    """Sorted indices of at most `size` examples, drawn without replacement with a fixed seed."""
    if size >= n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(PLOT_SUBSAMPLE_SEED)
    return np.sort(rng.choice(n, size=size, replace=False)).astype(np.int64)


def _prediction_arrays(experiment: Experiment, x: np.ndarray, y: np.ndarray, preds: Predictions) -> dict:
    """The parts of a predictions pass that the report draws."""
    arrays: dict[str, np.ndarray] = {
        "y_true": y.astype(np.int64),
        "y_prob": preds.y_prob.astype(np.float32),
    }
    plot_index = plot_subsample(len(y), experiment.evaluation.num_plot_samples)
    arrays["plot_index"] = plot_index
    arrays["z"] = preds.z[plot_index].astype(np.float32)
    if preds.responsibilities is not None:
        arrays["responsibilities"] = preds.responsibilities.astype(np.float32)
    recon_index = example_indices(y, NUM_RECONSTRUCTIONS)
    arrays["recon_index"] = recon_index
    arrays["originals"] = x[recon_index].astype(np.float32)
    arrays["reconstructions"] = np.asarray(preds.recon)[recon_index].astype(np.float32)
    if preds.sigma is not None:
        sigma = preds.sigma.astype(np.float32)
        arrays["sigma"] = sigma
        order = np.argsort(sigma, kind="stable")
        m = min(NUM_SIGMA_EXAMPLES, len(sigma))
        extremes = np.stack([order[:m], order[::-1][:m]])
        arrays["sigma_extreme_index"] = extremes.astype(np.int64)
        arrays["sigma_extreme_originals"] = x[extremes].astype(np.float32)
        arrays["sigma_extreme_reconstructions"] = np.asarray(preds.recon)[extremes].astype(np.float32)
    return arrays


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, round(time.perf_counter() - start, 4)


def evaluate(experiment: Experiment, splits: Splits, model: Any) -> tuple[dict, dict]:
    """Score `model` (the best checkpoint) on `evaluation.split`: the metrics.json document and the npz arrays.

    `model` is an `inference.TrainedModel`: `.predict(x, batch_size)`, `.sample(n_per_component, seed)`, `.pi`,
    `.tau`. It is run once over the split; every metric and stored array comes from that one pass.
    """
    ev = experiment.evaluation
    cfg = experiment.model
    x, y = evaluated_split(experiment, splits)
    timings = {}
    preds, timings["predict_sec"] = _timed(lambda: model.predict(x, ev.batch_size))
    _check_predictions(preds, len(y), splits.num_classes)
    pi = None if getattr(model, "pi", None) is None else np.asarray(model.pi, dtype=np.float64)
    tau = None if getattr(model, "tau", None) is None else np.asarray(model.tau, dtype=np.float64)

    notes = []
    unknown = sorted(set(ev.skip_metrics) - set(metrics_mod.METRIC_NAMES) - {metrics_mod.BASELINE_NAME})
    if unknown:
        notes.append(f"evaluation.skip_metrics names unknown metrics {unknown}; known: "
                     f"{', '.join(metrics_mod.METRIC_NAMES + (metrics_mod.BASELINE_NAME,))}")

    inputs = metrics_mod.MetricInputs(preds, y, splits.num_classes, pi=pi, tau=tau, sigma_min=cfg.sigma_min,
                                      sigma_max=cfg.sigma_max, likelihood=metrics_mod.likelihood(cfg))
    results, timings["metrics_sec"] = _timed(lambda: metrics_mod.compute_metrics(inputs, cfg, ev.skip_metrics))

    if not ev.baseline:
        baseline = Status.disabled("evaluation.baseline is false")
    elif metrics_mod.BASELINE_NAME in ev.skip_metrics:
        baseline = Status.skipped("skipped by evaluation.skip_metrics")
    else:
        labeled = splits.labeled
        baseline, timings["baseline_sec"] = _timed(lambda: metrics_mod.guarded(
            lambda: metrics_mod.logistic_regression_baseline(
                splits.x_train[labeled], splits.y_train[labeled], x, y, seed=cfg.random_seed)))

    arrays = _prediction_arrays(experiment, x, y, preds)
    if pi is not None:
        arrays["pi"] = pi.astype(np.float32)
    if tau is not None:
        arrays["tau"] = tau.astype(np.float32)

    def draw_samples():
        samples = np.asarray(model.sample(NUM_SAMPLES_PER_COMPONENT, seed=cfg.random_seed), dtype=np.float32)
        if samples.ndim != 4 or samples.shape[1] != NUM_SAMPLES_PER_COMPONENT:
            raise ValueError(f"model.sample returned shape {samples.shape}, expected [K or 1, "
                             f"{NUM_SAMPLES_PER_COMPONENT}, H, W]")
        if not np.all(np.isfinite(samples)):
            raise ValueError("model.sample returned non-finite pixels")
        arrays["samples"] = samples
        return Status.success(list(samples.shape))

    samples_status, timings["sample_sec"] = _timed(lambda: metrics_mod.guarded(draw_samples))
    timings["total_sec"] = round(sum(timings.values()), 4)
    meta = getattr(model, "meta", None)
    checkpoint = {k: meta.get(k) for k in ("epoch", "monitor_metric", "best_value")} if isinstance(meta, dict) else {}

    document = {
        "schema_version": SCHEMA_VERSION,
        "split": ev.split,
        "num_examples": int(len(y)),
        "dataset": splits.dataset,
        "dataset_fingerprint": splits.fingerprint,
        "num_labeled_train": int(splits.labeled.sum()),
        "checkpoint": checkpoint,
        "metrics": {name: status.to_dict() for name, status in results.items()},
        "baseline": {metrics_mod.BASELINE_NAME: baseline.to_dict()},
        "artifacts": {"samples": samples_status.to_dict()},
        "notes": notes,
        "timings": timings,
    }
    return document, arrays


def write_evaluation(run_dir: str | Path, metrics_doc: dict, arrays: dict) -> None:
    """Write predictions.npz, then metrics.json (the stage's declared output), each atomically."""
    run_dir = Path(run_dir)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    disk.write_bytes(run_dir / "predictions.npz", buffer.getvalue())
    disk.write_json(run_dir / "metrics.json", metrics_doc)
