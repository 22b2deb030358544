"""The report's figures: a small registry of plots drawn from files (history, predictions.npz, metrics).

Each plot has an applicability rule on the model config. Not applicable: `disabled`, and no file. Applicable:
drawn into `figures/<name>.png` (+ `.svg` when `report.formats` asks), `success` only when the figure was
really drawn and holds data; a plot that raises or comes out empty is `failed`, and one listed in
`report.skip_plots` is `skipped` — both leave a placeholder image that says so, so the files the workflow
declares always exist and never pretend to be a result.

Figures are built on `matplotlib.figure.Figure` with the Agg canvas (no pyplot state, no display needed).
Colours: classes use tab10 (tab20 beyond 10 classes), components their own palette, the same in every figure.
"""

from __future__ import annotations

import dataclasses
import io
import math
import textwrap
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ssvae import disk
from ssvae.config import Experiment, ModelConfig
from ssvae.evaluation import metrics as metrics_mod
from ssvae.evaluation.status import Status

FIGURES_DIR = "figures"
STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.titlesize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
TRAIN_STYLE = {"color": "tab:blue", "linestyle": "-", "linewidth": 1.6}
VAL_STYLE = {"color": "tab:orange", "linestyle": "--", "linewidth": 1.6}
MAX_SAMPLE_ROWS = 30


class PlotEmpty(Exception):
    """The inputs hold nothing to draw; the plot is reported failed with this reason."""


@dataclasses.dataclass
class PlotInputs:
    """Everything a plot may draw from: all of it read from the run folder, nothing from a live model.

    history: history.csv as column -> array (empty dict when missing)
    arrays:  predictions.npz (empty dict when missing)
    metrics: metrics.json document (empty dict when missing)
    train:   train.json document (empty dict when missing)
    """

    experiment: Experiment
    history: dict[str, np.ndarray]
    arrays: dict[str, np.ndarray]
    metrics: dict
    train: dict

    def array(self, key: str) -> np.ndarray:
        if key not in self.arrays:
            raise PlotEmpty(f"predictions.npz has no {key!r} array")
        return self.arrays[key]

    def metric_value(self, name: str, section: str = "metrics"):
        entry = (self.metrics.get(section) or {}).get(name) or {}
        return entry.get("value") if entry.get("status") == "success" else None

    @property
    def split(self) -> str:
        return self.metrics.get("split") or self.experiment.evaluation.split


# palettes -----------------------------------------------------------------------------------------

def class_colors(num_classes: int) -> list:
    """One colour per class: tab10, or tab20 beyond 10 classes."""
    cmap = colormaps["tab10" if num_classes <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(num_classes)]


def component_colors(num_components: int) -> list:
    """One colour per component, distinct from the class palette: Dark2, then Set1 (no yellow or grey), then
    the darkest tab20b shades; turbo beyond 20 components."""
    set1 = colormaps["Set1"]
    tab20b = colormaps["tab20b"]
    ordered = [colormaps["Dark2"](i) for i in range(8)]
    ordered += [set1(i) for i in (0, 1, 2, 3, 4, 6, 7)]
    ordered += [tab20b(i) for i in (0, 4, 8, 12, 16)]
    if num_components <= len(ordered):
        return ordered[:num_components]
    turbo = colormaps["turbo"]
    return [turbo(x) for x in np.linspace(0.05, 0.95, num_components)]


# shared helpers -----------------------------------------------------------------------------------

def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def projection(z: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str, str, str]:
    """2-D coordinates of latent points: the dims themselves for D <= 2, else the first two principal components.

    Returns (xy [n, 2], x label, y label, how it was made).
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) == 0:
        raise PlotEmpty("no latent points to plot")
    d = z.shape[1]
    if d == 1:
        jitter = np.random.default_rng(seed).uniform(-1, 1, size=len(z))
        return np.stack([z[:, 0], jitter], 1), "latent z$_1$", "random jitter (no meaning)", "latent_dim 1"
    if d == 2:
        return z, "latent z$_1$", "latent z$_2$", "latent dims 1-2"
    centred = z - z.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    share = singular**2 / max((singular**2).sum(), 1e-12)
    xy = centred @ vt[:2].T
    return (xy, f"PC 1 of z ({100 * share[0]:.0f}% of variance)", f"PC 2 of z ({100 * share[1]:.0f}% of variance)",
            f"PCA of {d} latent dims")


def _legend_outside(ax, **kwargs) -> None:
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, **kwargs)


def _image_grid(fig, rows: list[np.ndarray], row_labels: list[str], col_titles: list[list[str]] | None = None):
    """Rows of grey images in [0, 1] as one mosaic on one axes (one imshow, fast at any K); returns the axes."""
    h, w = rows[0].shape[1:3]
    ncols = max(len(r) for r in rows)
    gap_x = max(1, round(w * 0.08))
    gap_y = max(1, round(h * (0.4 if col_titles else 0.08)))
    top = gap_y if col_titles else 0
    canvas = np.full((top + len(rows) * (h + gap_y) - gap_y, ncols * (w + gap_x) - gap_x), np.nan)
    for i, images in enumerate(rows):
        for j, image in enumerate(images):
            y0, x0 = top + i * (h + gap_y), j * (w + gap_x)
            canvas[y0:y0 + h, x0:x0 + w] = image
    ax = fig.subplots()
    ax.imshow(canvas, cmap=colormaps["gray"].with_extremes(bad="white"), vmin=0.0, vmax=1.0,
              interpolation="nearest")
    if col_titles is not None:
        for i, titles in enumerate(col_titles):
            for j, title in enumerate(titles):
                if title:
                    ax.text(j * (w + gap_x) + (w - 1) / 2, top + i * (h + gap_y) - 1.0, title, ha="center",
                            va="bottom", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([top + i * (h + gap_y) + (h - 1) / 2 for i in range(len(rows))], row_labels)
    ax.tick_params(left=False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return ax


# plots --------------------------------------------------------------------------------------------

# history.csv holds each term's weighted contribution to the objective (weight × term), and a total per split.
LOSS_TERMS = (
    ("loss", "total loss"),
    ("reconstruction", "reconstruction"),
    ("kl_z", "KL(q(z|x) || p(z))"),
    ("kl_c", "KL(q(c|x) || π)"),
    ("logit_mog", "logit-MoG penalty"),
    ("dirichlet", "Dirichlet penalty on π"),
    ("diversity", "usage entropy H(mean r)"),
    ("classification", "classification"),
    ("entropy", "prediction entropy H(p(y|x))"),
    ("consistency", "consistency of p(y|x) under shifts"),
    ("l1", "L1 penalty"),
)
TERM_NAMES = tuple(term for term, _ in LOSS_TERMS if term != "loss")
# A term whose epochs differ by less than this (relative to its size) is constant: float noise, not a curve.
CONSTANT_RTOL = 1e-5


def _finite(values: np.ndarray | None) -> np.ndarray:
    return np.array([]) if values is None else values[np.isfinite(values)]


def constant_value(*columns: np.ndarray | None) -> float | None:
    """The value every finite entry of the columns shares (to CONSTANT_RTOL), or None when they vary or are
    empty."""
    values = np.concatenate([_finite(c) for c in columns])
    if values.size == 0:
        return None
    scale = max(float(np.max(np.abs(values))), 1e-12)
    return float(np.mean(values)) if float(np.ptp(values)) <= CONSTANT_RTOL * scale else None


def total_terms(history: dict, split: str) -> tuple[str, ...] | None:
    """Which terms `{split}_loss` in history.csv is the sum of: every term, or every term but classification
    (what training logs as val_loss: validation labels steer neither training nor early stopping). None when
    the total matches neither."""
    total = history.get(f"{split}_loss")
    if total is None or not np.isfinite(total).any():
        return None
    columns = {t: np.nan_to_num(history[f"{split}_{t}"]) for t in TERM_NAMES if f"{split}_{t}" in history}
    for terms in (tuple(columns), tuple(t for t in columns if t != "classification")):
        summed = np.sum([columns[t] for t in terms], axis=0) if terms else np.zeros_like(total)
        ok = np.isfinite(total)
        if np.allclose(summed[ok], total[ok], rtol=1e-4, atol=1e-4):
            return terms
    return None


def _total_title(history: dict) -> str:
    parts = []
    for split, name in (("train", "train"), ("val", "validation")):
        terms = total_terms(history, split)
        if f"{split}_loss" not in history:
            continue
        if terms is None:
            parts.append(f"{name}: as logged")
        elif "classification" in terms or f"{split}_classification" not in history:
            parts.append(f"{name} = Σ all terms")
        else:
            parts.append(f"{name} = Σ terms except classification")
    return "total loss\n(" + "; ".join(parts) + ")"


def plot_loss_curves(inputs: PlotInputs) -> Figure:
    history = inputs.history
    epoch = history.get("epoch")
    if epoch is None or len(epoch) == 0:
        raise PlotEmpty("history.csv has no epochs")
    recon = {"bernoulli_nll": "reconstruction (Bernoulli NLL)", "gaussian_nll": "reconstruction (Gaussian NLL)",
             "squared_error": "reconstruction (squared error)"}[metrics_mod.likelihood(inputs.experiment.model)]
    panels, zero, constant, empty = [], [], [], []
    for term, title in LOSS_TERMS:
        train, val = history.get(f"train_{term}"), history.get(f"val_{term}")
        if train is None and val is None:
            continue
        title = {"reconstruction": recon, "loss": _total_title(history)}.get(term, title)
        value = constant_value(train, val)
        if not _finite(train).size and not _finite(val).size:
            empty.append(term)
        elif value == 0:
            zero.append(term)
        elif value is not None and term != "loss":
            constant.append(f"{term} = {value:.4g}")
        else:
            panels.append((term, title, "weight × term, per image", train, val, 1.0))
    train_acc, val_acc = history.get("train_accuracy"), history.get("val_accuracy")
    if _finite(train_acc).size or _finite(val_acc).size:
        panels.append(("accuracy", "classification accuracy", "accuracy (%)", train_acc, val_acc, 100.0))
    if not panels:
        raise PlotEmpty("history.csv has no finite, varying loss column")
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = _new_figure(4.3 * ncols, 3.1 * nrows + 0.8)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    best = inputs.train.get("best_epoch")
    for ax, (term, title, unit, train, val, scale) in zip(axes, panels):
        plotted = []
        for values, style, label in ((train, TRAIN_STYLE, "train"), (val, VAL_STYLE, "validation")):
            if values is not None and np.isfinite(values).any():
                ax.plot(epoch, values * scale, label=label, **style)
                plotted.append(values[np.isfinite(values)])
        if best is not None:
            ax.axvline(best, color="0.35", linestyle=":", linewidth=1.2)
        values = np.concatenate(plotted) if plotted else np.array([])
        if term != "accuracy" and values.size and values.min() > 0 and values.max() / values.min() > 30:
            ax.set_yscale("log")
            unit += ", log scale"
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(unit)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    handles = [Line2D([], [], label="train", **TRAIN_STYLE), Line2D([], [], label="validation", **VAL_STYLE)]
    if best is not None:
        handles.append(Line2D([], [], color="0.35", linestyle=":", label=f"best epoch {best} (evaluated)"))
    notes = []
    if zero:
        notes.append(f"not drawn, 0 in every epoch: {', '.join(zero)}")
    if constant:
        notes.append(f"not drawn, constant in every epoch: {', '.join(constant)}")
    if empty:
        notes.append(f"not drawn, no finite value: {', '.join(empty)}")
    for note in notes:
        handles.append(Line2D([], [], linestyle="none", label=note))
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 3), frameon=False)
    return fig


def _latent_points(inputs: PlotInputs):
    z = inputs.array("z")
    index = inputs.array("plot_index")
    y = inputs.array("y_true")
    if len(z) != len(index):
        raise ValueError(f"z has {len(z)} rows but plot_index has {len(index)}")
    xy, xlabel, ylabel, how = projection(z)
    return xy, index, y, xlabel, ylabel, how


def _scatter_by(ax, xy, groups, colors, names, title):
    size = float(np.clip(4000 / max(len(xy), 1), 5, 24))  # visible for a few hundred points, no blob for thousands
    for g in np.unique(groups):
        mask = groups == g
        ax.scatter(xy[mask, 0], xy[mask, 1], s=size, alpha=0.7, color=colors[int(g)], label=names[int(g)],
                   linewidths=0, rasterized=True)
    ax.set_title(title)


def plot_latent_by_label(inputs: PlotInputs) -> Figure:
    xy, index, y, xlabel, ylabel, how = _latent_points(inputs)
    num_classes = inputs.experiment.model.num_classes
    fig = _new_figure(6.6, 5.0)
    ax = fig.subplots()
    labels = y[index]
    _scatter_by(ax, xy, labels, class_colors(num_classes), [str(c) for c in range(num_classes)],
                f"Latent means E[z|x] by true label\n{inputs.split} split, {len(index)} of {len(y)} examples, {how}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _legend_outside(ax, title="true label", markerscale=2.5)
    return fig


def plot_latent_by_component(inputs: PlotInputs) -> Figure:
    xy, index, y, xlabel, ylabel, how = _latent_points(inputs)
    resp = inputs.array("responsibilities")
    k = resp.shape[1]
    components = resp[index].argmax(axis=1)
    fig = _new_figure(6.8 if k <= 20 else 7.6, 5.0)
    ax = fig.subplots()
    _scatter_by(ax, xy, components, component_colors(k), [f"c = {c}" for c in range(k)],
                f"Latent means E[z|x] by component argmax q(c|x)\n{inputs.split} split, {len(index)} of {len(y)} "
                f"examples, {how}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _legend_outside(ax, title="component", markerscale=2.5, ncols=1 if k <= 20 else 2)
    return fig


def plot_reconstructions(inputs: PlotInputs) -> Figure:
    originals = inputs.array("originals")
    recons = inputs.array("reconstructions")
    if len(originals) == 0:
        raise PlotEmpty("no examples to reconstruct")
    y = inputs.array("y_true")[inputs.array("recon_index")]
    n = len(originals)
    fig = _new_figure(1.05 * n + 1.4, 2.9)
    titles = [[f"label {label}" for label in y], [""] * n]
    _image_grid(fig, [originals, recons], ["original", "reconstruction\n(mean)"], titles)
    fig.suptitle(f"Reconstructions of {inputs.split} images (pixel intensity 0 = black, 1 = white)")
    return fig


def plot_samples(inputs: PlotInputs) -> Figure:
    if "samples" not in inputs.arrays:
        reason = ((inputs.metrics.get("artifacts") or {}).get("samples") or {}).get("reason")
        raise PlotEmpty(f"no samples in predictions.npz ({reason or 'model.sample was not run'})")
    samples = inputs.arrays["samples"]
    model = inputs.experiment.model
    rows = list(range(len(samples)))
    pi = inputs.arrays.get("pi")
    note = ""
    if len(rows) > MAX_SAMPLE_ROWS:
        weight = pi if pi is not None else np.ones(len(rows))
        rows = sorted(np.argsort(-weight, kind="stable")[:MAX_SAMPLE_ROWS].tolist())
        note = f" ({MAX_SAMPLE_ROWS} of {len(samples)} components with the largest π)"
    if model.is_mixture and len(samples) > 1:
        labels = [f"c = {c}" + (f"\nπ = {pi[c]:.2f}" if pi is not None and c < len(pi) else "") for c in rows]
        title = f"Samples from the prior, one row per component: z ~ p(z|c), x = decoder mean{note}"
    else:
        labels = ["z ~ p(z)"]
        title = "Samples from the prior: z ~ p(z), x = decoder mean"
    n = samples.shape[1]
    fig = _new_figure(1.0 * n + 1.6, 1.0 * len(rows) + 0.9)
    _image_grid(fig, [np.clip(samples[r], 0, 1) for r in rows], labels)
    fig.suptitle(title)
    return fig


def _history_matrix(history: dict, prefix: str) -> np.ndarray | None:
    columns = sorted((int(k[len(prefix):]), k) for k in history if k.startswith(prefix) and k[len(prefix):].isdigit())
    if not columns:
        return None
    return np.stack([history[k] for _, k in columns], axis=1)


def plot_pi_usage_evolution(inputs: PlotInputs) -> Figure:
    history = inputs.history
    epoch = history.get("epoch")
    pi = _history_matrix(history, "pi_")
    usage = _history_matrix(history, "usage_")
    if epoch is None or len(epoch) == 0 or (pi is None and usage is None):
        raise PlotEmpty("history.csv has no pi_<k> / usage_<k> columns")
    # epochs that recorded π/usage (model.mixture_history_log_every leaves the others empty)
    logged = np.isfinite(usage if usage is not None else pi).all(axis=1)
    epoch, pi, usage = epoch[logged], None if pi is None else pi[logged], None if usage is None else usage[logged]
    panels = [(m, t) for m, t in ((pi, "prior weights π$_c$"), (usage, "usage: mean q(c|x), validation split"))
              if m is not None]
    keff = None
    if usage is not None:
        u = np.clip(usage / usage.sum(axis=1, keepdims=True), 1e-300, 1)
        keff = np.exp(-(u * np.log(u)).sum(axis=1))
    k = max(m.shape[1] for m, _ in panels)
    colors = component_colors(k)
    ncols = len(panels) + (keff is not None)
    fig = _new_figure(4.4 * ncols + (1.3 if k <= 12 else 0), 3.6)
    axes = fig.subplots(1, ncols, squeeze=False).ravel()
    for ax, (matrix, title) in zip(axes, panels):
        for c in range(matrix.shape[1]):
            ax.plot(epoch, matrix[:, c], color=colors[c], linewidth=1.3, label=f"c = {c}")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel("probability")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
    if keff is not None:
        ax = axes[len(panels)]
        ax.plot(epoch, keff, color="black", linewidth=1.6)
        ax.axhline(k, color="0.5", linestyle=":", linewidth=1, label=f"K = {k}")
        ax.set_title("effective components K$_{eff}$ = exp(H(usage))")
        ax.set_xlabel("epoch")
        ax.set_ylabel("K$_{eff}$ (components)")
        ax.set_ylim(0, k * 1.05)
        ax.legend(frameon=False, loc="lower right")
    if k <= 12:
        _legend_outside(axes[len(panels) - 1], title="component")
    best = inputs.train.get("best_epoch")
    if best is not None:
        for ax in axes:
            ax.axvline(best, color="0.35", linestyle=":", linewidth=1.0)
    return fig


def plot_tau_heatmap(inputs: PlotInputs) -> Figure:
    tau = inputs.array("tau")
    k, c = tau.shape
    fig = _new_figure(0.55 * c + 2.8, 0.32 * k + 1.6)
    ax = fig.subplots()
    image = ax.imshow(tau, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(c))
    ax.set_yticks(range(k))
    ax.set_xlabel("label y")
    ax.set_ylabel("component c")
    if k * c <= 400:
        for i in range(k):
            for j in range(c):
                if tau[i, j] >= 0.1:
                    ax.text(j, i, f"{tau[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="black" if tau[i, j] > 0.6 else "white")
    sparsity = inputs.metric_value("tau_sparsity")
    extra = f", sparsity {sparsity:.2f}" if sparsity is not None else ""
    ax.set_title(f"τ matrix: p(y | c) from labeled responsibilities{extra}")
    fig.colorbar(image, ax=ax, label="τ[c, y] = p(y | c)")
    return fig


def plot_per_class_accuracy(inputs: PlotInputs) -> Figure:
    y = inputs.array("y_true")
    prob = inputs.array("y_prob")
    num_classes = prob.shape[1]
    status = metrics_mod.per_class_accuracy(y, prob, num_classes)
    if not status.ok:
        raise PlotEmpty(status.reason)
    acc = [np.nan if a is None else 100 * a for a in status.value["accuracy"]]
    counts = status.value["count"]
    fig = _new_figure(max(5.5, 0.55 * num_classes + 2.5), 3.8)
    ax = fig.subplots()
    ax.bar(range(num_classes), np.nan_to_num(acc), color=class_colors(num_classes), edgecolor="0.2", linewidth=0.5)
    for c, (a, n) in enumerate(zip(acc, counts)):
        ax.text(c, (0 if np.isnan(a) else a) + 1.5, f"n={n}", ha="center", va="bottom", fontsize=7)
    overall = 100 * float(np.mean(prob.argmax(axis=1) == y))
    ax.axhline(overall, color="black", linestyle="--", linewidth=1.2, label=f"model, all classes: {overall:.1f}%")
    baseline = inputs.metric_value(metrics_mod.BASELINE_NAME, section="baseline")
    if baseline is not None:
        ax.axhline(100 * baseline["accuracy"], color="0.5", linestyle=":", linewidth=1.4,
                   label=f"logistic regression on pixels: {100 * baseline['accuracy']:.1f}%")
    ax.set_xticks(range(num_classes))
    ax.set_xlabel("true label")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 112)
    ax.set_title(f"Per-class accuracy on the {inputs.split} split")
    fig.legend(loc="outside lower center", ncols=2, frameon=False)
    return fig


def plot_calibration(inputs: PlotInputs) -> Figure:
    y = inputs.array("y_true")
    prob = inputs.array("y_prob")
    status = metrics_mod.calibration(y, prob)
    if not status.ok:
        raise PlotEmpty(status.reason)
    bins = status.value["bins"]
    width = bins[0]["upper"] - bins[0]["lower"]
    centres = np.array([(b["lower"] + b["upper"]) / 2 for b in bins])
    filled = [i for i, b in enumerate(bins) if b["count"]]
    fig = _new_figure(5.2, 5.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], color="0.4", linestyle="--", linewidth=1, label="perfect calibration")
    top.bar(centres[filled], [bins[i]["accuracy"] for i in filled], width=width * 0.95, color="tab:blue",
            edgecolor="0.2", linewidth=0.5, label="accuracy in bin")
    top.scatter([bins[i]["confidence"] for i in filled], [bins[i]["accuracy"] for i in filled], color="tab:red",
                s=14, zorder=3, label="(mean confidence, accuracy)")
    top.set_ylabel("accuracy (fraction correct)")
    top.set_ylim(0, 1)
    top.set_title(f"Reliability diagram, {inputs.split} split: ECE = {status.value['ece']:.3f}")
    top.legend(frameon=False, loc="upper left", fontsize=8)
    bottom.bar(centres[filled], [bins[i]["count"] for i in filled], width=width * 0.95, color="0.6")
    bottom.set_xlabel("confidence max$_y$ p(y|x)")
    bottom.set_ylabel("examples")
    bottom.set_xlim(0, 1)
    return fig


def plot_confusion_matrix(inputs: PlotInputs) -> Figure:
    y = inputs.array("y_true")
    prob = inputs.array("y_prob")
    c = prob.shape[1]
    status = metrics_mod.confusion_matrix(y, prob, c)
    if not status.ok:
        raise PlotEmpty(status.reason)
    counts = np.array(status.value)
    rows = counts.sum(axis=1, keepdims=True)
    percent = np.divide(100 * counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    fig = _new_figure(0.5 * c + 3.2, 0.45 * c + 1.8)
    ax = fig.subplots()
    image = ax.imshow(percent, cmap="Blues", vmin=0, vmax=100, interpolation="nearest")
    if c <= 20:
        for i in range(c):
            for j in range(c):
                if counts[i, j]:
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if percent[i, j] > 60 else "black")
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(f"Confusion matrix, {inputs.split} split (numbers: counts)")
    fig.colorbar(image, ax=ax, label="% of the true class")
    return fig


def plot_sigma_maps(inputs: PlotInputs) -> Figure:
    sigma = inputs.array("sigma")
    index = inputs.array("plot_index")
    y = inputs.array("y_true")
    model = inputs.experiment.model
    xy, xlabel, ylabel, how = projection(inputs.array("z"))
    extremes = inputs.array("sigma_extreme_index")
    images = inputs.array("sigma_extreme_originals")
    m = extremes.shape[1]
    fig = _new_figure(max(10.0, 1.0 * m + 1.6), 8.0)
    fig.get_layout_engine().set(wspace=0.12)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.5, 1])
    scatter_ax, box_ax = top.subplots(1, 2)
    points = scatter_ax.scatter(xy[:, 0], xy[:, 1], c=sigma[index], cmap="viridis", s=6, linewidths=0,
                                rasterized=True)
    top.colorbar(points, ax=scatter_ax, label="σ")
    scatter_ax.set_xlabel(xlabel)
    scatter_ax.set_ylabel(ylabel)
    scatter_ax.set_title(f"σ over the latent space ({how})")
    classes = np.arange(inputs.array("y_prob").shape[1])
    data = [sigma[y == c] for c in classes]
    keep = [i for i, d in enumerate(data) if len(d)]
    parts = box_ax.boxplot([data[i] for i in keep], positions=classes[keep], widths=0.6, patch_artist=True,
                           showfliers=False, medianprops={"color": "black"})
    for patch, c in zip(parts["boxes"], keep):
        patch.set_facecolor(class_colors(len(classes))[c])
    box_ax.axhline(model.sigma_min, color="0.4", linestyle=":", linewidth=1, label=f"σ_min = {model.sigma_min:g}")
    box_ax.axhline(model.sigma_max, color="0.4", linestyle="--", linewidth=1, label=f"σ_max = {model.sigma_max:g}")
    box_ax.set_xlabel("true label")
    box_ax.set_ylabel("σ (per image)")
    box_ax.set_title("σ by true label")
    box_ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2)
    titles = [[f"σ={sigma[i]:.3f}" for i in row] for row in extremes]
    _image_grid(bottom, [images[0], images[1]], ["lowest σ", "highest σ"], titles)
    title = f"Heteroscedastic decoder: per-image σ on the {inputs.split} split"
    for bound, name in ((model.sigma_max, "σ_max"), (model.sigma_min, "σ_min")):
        share = float(np.isclose(sigma, bound, rtol=1e-4, atol=1e-7).mean())
        if share > 0.5:  # a near-uniform colour map is clipping, not an empty plot
            title += f"\nσ = {name} = {bound:g} for {100 * share:.0f}% of the images: clipped, not learned"
    fig.suptitle(title)
    return fig


# registry -----------------------------------------------------------------------------------------

def _always(model: ModelConfig) -> str | None:
    return None


@dataclasses.dataclass(frozen=True)
class PlotSpec:
    name: str
    title: str
    applies: Callable[[ModelConfig], str | None]
    draw: Callable[[PlotInputs], Figure]
    caption: str


PLOTS: tuple[PlotSpec, ...] = (
    PlotSpec("loss_curves", "Loss curves", _always, plot_loss_curves,
             "Every loss term per epoch, training (solid) and validation (dashed), each as its weighted "
             "contribution to the objective (weight × term). The training total is the sum of every term; the "
             "validation total leaves classification out (validation labels steer neither training nor early "
             "stopping), so it sits below the training total by about the classification term: the total panel's "
             "title says which terms each total sums, as checked against history.csv. Terms that are 0 or constant "
             "in every epoch get no panel; the legend lists them with their value. The dotted line marks the best "
             "epoch, whose weights were evaluated. Look for a validation curve that turns up while training keeps "
             "falling (overfitting), terms that collapse to zero (e.g. KL(q(z|x) || p(z)) -> 0: posterior collapse), "
             "and whether training stopped early."),
    PlotSpec("latent_by_label", "Latent space by true label", _always, plot_latent_by_label,
             "Posterior means E[z|x] of held-out images, coloured by their true label (first two latent dims, or "
             "the first two principal components when latent_dim > 2, as the axis labels say). Well-separated "
             "colour clusters mean the latent space organises the classes even where labels were scarce."),
    PlotSpec("latent_by_component", "Latent space by component", metrics_mod.requires_components,
             plot_latent_by_component,
             "The same points as the label plot, coloured by the component the encoder assigns (argmax q(c|x)). "
             "Compare with the label plot: components that line up with classes are what clustering accuracy, "
             "NMI and ARI measure; one colour everywhere means the components collapsed."),
    PlotSpec("reconstructions", "Reconstructions", _always, plot_reconstructions,
             "One held-out image per class (top) and the decoder's mean reconstruction (bottom). Blurry or "
             "class-swapped reconstructions point to a too-small latent space or a too-strong KL weight."),
    PlotSpec("samples", "Samples per component", _always, plot_samples,
             "Images decoded from z drawn from the prior, one row per component (mixture-based priors) or one row "
             "from p(z) (standard prior). Each row should look like one consistent kind of digit when the "
             "components specialise; rows of noise reveal unused components."),
    PlotSpec("pi_usage_evolution", "π and usage over training", metrics_mod.requires_components,
             plot_pi_usage_evolution,
             "Per epoch: the prior weights π, the mean responsibility (usage) of each component on the validation "
             "split, and the effective number of components K_eff = exp(H(usage)). A K_eff falling towards 1 means "
             "the model routes everything through few components."),
    PlotSpec("tau_heatmap", "τ matrix", metrics_mod.requires_tau, plot_tau_heatmap,
             "τ[c, y] = p(y | c), learned from the responsibilities of labeled training images. Sharp rows (one "
             "bright cell) mean each component stands for one label; every column should have at least one bright "
             "cell, or that label has no component to predict it."),
    PlotSpec("per_class_accuracy", "Per-class accuracy", _always, plot_per_class_accuracy,
             "Accuracy within each true class on the evaluated split, with the number of examples per class, the "
             "overall accuracy (dashed) and the logistic-regression-on-pixels baseline (dotted). Look for classes "
             "the model systematically misses."),
    PlotSpec("calibration", "Certainty calibration", _always, plot_calibration,
             "Reliability diagram: held-out predictions grouped by their confidence max_y p(y|x); each bar is the "
             "accuracy within the group. Bars below the diagonal mean over-confidence, above it under-confidence; "
             "ECE summarises the gap. The lower panel shows how many predictions fall in each bin."),
    PlotSpec("confusion_matrix", "Confusion matrix", _always, plot_confusion_matrix,
             "Counts of true label (rows) against predicted label (columns), shaded by the share of the true "
             "class. Off-diagonal cells show which classes the model confuses."),
    PlotSpec("sigma_maps", "σ maps", metrics_mod.requires_sigma, plot_sigma_maps,
             "The heteroscedastic decoder's per-image σ: over the latent space, by true label (dotted and dashed "
             "lines: the clip bounds σ_min and σ_max), and the held-out images with the lowest and highest σ. "
             "Mass at a bound means σ is clipped rather than learned."),
)

PLOT_NAMES: tuple[str, ...] = tuple(spec.name for spec in PLOTS)
_BY_NAME = {spec.name: spec for spec in PLOTS}


def applicable_plots(model_cfg: ModelConfig) -> list[str]:
    """Names of the plots this model gets a file for (skipped ones included: they get a placeholder)."""
    return [spec.name for spec in PLOTS if spec.applies(model_cfg) is None]


def figure_paths(experiment: Experiment) -> list[str]:
    """Files (relative to the run folder) the report writes for this experiment: one PNG per applicable plot,
    plus an SVG each when report.formats has svg."""
    paths = []
    for name in applicable_plots(experiment.model):
        paths += [f"{FIGURES_DIR}/{name}.{fmt}" for fmt in _formats(experiment)]
    return paths


# drawing ------------------------------------------------------------------------------------------

def _formats(experiment: Experiment) -> list[str]:
    """PNG always (the workflow declares it), SVG in addition when asked."""
    return ["png"] + [f for f in experiment.report.formats if f != "png"]


def _has_data(fig: Figure) -> bool:
    return any(ax.has_data() for ax in fig.get_axes())


def _save(fig: Figure, run_dir: Path, name: str, experiment: Experiment) -> list[str]:
    written = []
    for fmt in _formats(experiment):
        buffer = io.BytesIO()
        # No date in the SVG, so identical figures give identical files.
        metadata = {"Date": None} if fmt == "svg" else None
        fig.savefig(buffer, format=fmt, dpi=experiment.report.dpi, metadata=metadata)
        relative = f"{FIGURES_DIR}/{name}.{fmt}"
        disk.write_bytes(run_dir / relative, buffer.getvalue())
        written.append(relative)
    for fmt in ("png", "svg"):
        if fmt not in _formats(experiment):
            (run_dir / FIGURES_DIR / f"{name}.{fmt}").unlink(missing_ok=True)
    return written


def placeholder(message: str) -> Figure:
    """A figure that only says why there is no plot."""
    fig = Figure(figsize=(6.0, 2.2))
    fig.text(0.5, 0.5, textwrap.fill(message, 70), ha="center", va="center", fontsize=11, color="0.25")
    return fig


def render_plot(name: str, draw: Callable[[PlotInputs], Figure], inputs: PlotInputs, run_dir: str | Path) -> Status:
    """Draw one applicable plot into figures/: success with the files, or failed with a placeholder."""
    run_dir = Path(run_dir)
    experiment = inputs.experiment
    try:
        with matplotlib.rc_context(STYLE):
            fig = draw(inputs)
            if not isinstance(fig, Figure):
                raise TypeError(f"the plot function returned {type(fig).__name__}, not a Figure")
            if not _has_data(fig):
                raise PlotEmpty("the figure came out empty")
            files = _save(fig, run_dir, name, experiment)
        return Status.success({"files": files})
    except Exception as exc:  # noqa: BLE001 - every failure is recorded as the plot's status
        reason = str(exc) if isinstance(exc, PlotEmpty) else f"{type(exc).__name__}: {exc}"
        files = _save(placeholder(f"plot failed: {reason}"), run_dir, name, experiment)
        return Status("failed", {"files": files, "placeholder": True}, reason)


def draw_plot(name: str, inputs: PlotInputs, run_dir: str | Path) -> Status:
    """One registered plot, with its applicability rule and report.skip_plots honoured."""
    spec = _BY_NAME[name]
    run_dir = Path(run_dir)
    experiment = inputs.experiment
    reason = spec.applies(experiment.model)
    if reason is not None:
        for fmt in ("png", "svg"):
            (run_dir / FIGURES_DIR / f"{name}.{fmt}").unlink(missing_ok=True)
        return Status.disabled(reason)
    if name in experiment.report.skip_plots:
        reason = "skipped by report.skip_plots"
        files = _save(placeholder(f"plot skipped: {reason}"), run_dir, name, experiment)
        return Status("skipped", {"files": files, "placeholder": True}, reason)
    return render_plot(name, spec.draw, inputs, run_dir)


def draw_plots(inputs: PlotInputs, run_dir: str | Path) -> dict[str, Status]:
    """Every registered plot, in registry order."""
    return {name: draw_plot(name, inputs, run_dir) for name in PLOT_NAMES}


def caption_rst(name: str) -> str:
    """The Snakemake report caption of a plot (workflow/report/<name>.rst), from the same text REPORT.md uses."""
    spec = _BY_NAME[name]
    when = {
        "requires_components": "Drawn for mixture-based priors (mixture, vamp, geometric_mog) with at least two "
                               "components.",
        "requires_tau": "Drawn when the tau-classifier is on (model.use_tau_classifier).",
        "requires_sigma": "Drawn for the heteroscedastic decoder (model.use_heteroscedastic_decoder).",
    }.get(spec.applies.__name__, "Drawn for every model.")
    footer = (f"{when} The plot's status (success, skipped or failed, with the reason) is in the run's "
              "``summary.json`` and ``REPORT.md``; a skipped or failed plot is a placeholder image that says why.")
    caption = spec.caption.replace("|", "\\|")  # a bare | starts an RST substitution reference
    return "\n\n".join([f"**{spec.title}.**", textwrap.fill(caption, 100), textwrap.fill(footer, 100)]) + "\n"


def figures_caption_rst() -> str:
    """workflow/report/figures.rst: one Jinja-templated caption for the figures/ directory marked for the Snakemake
    report, choosing each figure's caption by the `figure` wildcard of its `{figure}.png` pattern."""
    parts = []
    for i, name in enumerate(PLOT_NAMES):
        keyword = "if" if i == 0 else "elif"
        parts += [f'{{% {keyword} snakemake.wildcards.figure == "{name}" %}}', "", caption_rst(name).strip(), ""]
    parts += ["{% else %}", "",
              "A figure of this run; what it shows and its status are in the run's ``REPORT.md``.", "",
              "{% endif %}", ""]
    return "\n".join(parts)
