"""A config's full validation: the config package's own rules, then the checks that need more than the config.

Those checks read the dataset's label files (the splits the config asks for hold every class) and the metric
and plot registries (skip lists name known entries). They live here, above `ssvae.data`, `ssvae.evaluation`
and `ssvae.results`, so that `ssvae.config` imports none of them. Every command that validates a config for
running it (planning, `ssvae validate`, `ssvae run`) loads it through this module.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from ssvae import config
from ssvae.config.rules import Findings, Rule
from ssvae.config.types import DATASETS, ConfigError, DataConfig
from ssvae.data import checks, datasets


def _metric_names() -> list[str]:
    from ssvae.evaluation import metrics

    return [*metrics.METRIC_NAMES, metrics.BASELINE_NAME]


def _plot_names() -> list[str]:
    from ssvae.results import plots  # only now: it loads matplotlib

    return list(plots.PLOT_NAMES)


def data_path_holds_the_dataset(eff: dict, out: Findings) -> None:
    """mnist / fashion_mnist read every file they need from data.path, intact; the embedded datasets read none."""
    d = eff["data"]
    if d["dataset"] not in datasets.FILE_DATASETS:
        if d["path"] is not None:
            out.error("data.path", d["path"], f"{d['dataset']} is embedded and reads no files; data.path is read "
                      "only for mnist and fashion_mnist", allowed="null")
        return
    if d["path"] is None:
        out.error("data.path", None, f"{d['dataset']} is read from files; set data.path to a folder of IDX .gz files "
                  "or an .npz file (the embedded datasets are digits and mnist5k)")
        return
    if not Path(d["path"]).expanduser().exists():
        out.error("data.path", d["path"], "no such file or folder")
        return
    # every file is read and checked here (once per fingerprint), so that a damaged one never reaches training
    for problem in checks.problems(d["path"], DATASETS[d["dataset"]]["classes"]):
        out.error("data.path", d["path"], problem,
                  allowed="intact MNIST-format files: a folder of train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                  "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (IDX of unsigned bytes, each optionally .gz: "
                  "N x 28 x 28 images, N labels 0..9), or an .npz with x_train, y_train, x_test, y_test (images as "
                  "bytes 0..255 or floats 0..1, labels 0..9)")


_SPLIT_KEYS = {
    "test": "data.test_split (raise it)",
    "validation": "data.val_split or data.num_samples (raise it)",
    "training": "data.val_split or data.test_split (lower it) or data.num_samples (raise it)",
}


def splits_hold_every_class(eff: dict, out: Findings) -> None:
    """The draws `load_splits` will make, computed from the labels alone: the pool is big enough for
    num_samples and num_labeled, and test, validation and training each hold an image of every class."""
    if any(e.key == "data.path" for e in out.errors):
        return
    d = eff["data"]
    cfg = DataConfig(**d)
    official = DATASETS[cfg.dataset]["official_test"]
    num_classes = DATASETS[cfg.dataset]["classes"]
    try:
        y, y_test = datasets.labels(cfg.dataset, cfg.path)
        if datasets.surely_holds_every_class(np.bincount(y, minlength=num_classes), cfg, official) and (
                y_test is None or np.bincount(y_test, minlength=num_classes).min() > 0) and (
                eff["model"]["prior_type"] != "vamp"
                or eff["model"]["num_components"] <= datasets.training_size(len(y), cfg, official)):
            return
        index = datasets.split_index(y, cfg, official)
    except datasets.DataError as exc:
        out.error(exc.key or "data.path", exc.value if exc.key else d["path"], str(exc).removeprefix("data.path: "),
                  allowed=exc.allowed)
        return
    if eff["model"]["prior_type"] == "vamp" and eff["model"]["num_components"] > len(index.train):
        out.error("model.num_components", eff["model"]["num_components"], "the VampPrior's pseudo-inputs start as "
                  f"distinct training images, and there are {len(index.train)}", allowed=f"<= {len(index.train)}")
    for split, classes in datasets.missing_classes(y, y_test, index, num_classes).items():
        if split == "test" and official:
            out.error("data.path", d["path"], f"the official test split holds no image of class(es) "
                      f"{', '.join(map(str, classes))}")
            continue
        key = "data.test_split" if split == "test" else "data.val_split"
        out.error(key, d["test_split" if split == "test" else "val_split"],
                  f"the {split} split holds no image of class(es) {', '.join(map(str, classes))} "
                  f"(num_samples={d['num_samples']}, val_split={d['val_split']}, test_split={d['test_split']})",
                  allowed=f"splits with every class; change {_SPLIT_KEYS[split]}")


def skip_lists_name_known_metrics_and_plots(eff: dict, out: Findings) -> None:
    """A misspelt name in skip_metrics / skip_plots would silently skip nothing."""
    for key, kind, registry in (("evaluation.skip_metrics", "metric", _metric_names),
                                ("report.skip_plots", "plot", _plot_names)):
        section, leaf = key.split(".")
        wanted = eff[section][leaf]
        if not wanted:
            continue
        known = registry()
        for i, name in enumerate(wanted):
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
                out.errors.append(ConfigError(out.file, f"{key}.{i}", name, f"no {kind} of this name",
                                              allowed=", ".join(known),
                                              suggestion=close[0] if close else None))


RULES: tuple[Rule, ...] = (*config.RULES, data_path_holds_the_dataset, splits_hold_every_class,
                           skip_lists_name_known_metrics_and_plots)


def load_plans(path: str | Path) -> list[config.Plan]:
    """`config.load_plans` with every rule: one Plan per run the file asks for."""
    return config.load_plans(path, RULES)


def load_plan(path: str | Path, key: str) -> config.Plan:
    """`config.load_plan` with every rule: the plan with this key."""
    return config.load_plan(path, key, RULES)


def load_experiment(path: str | Path) -> config.Experiment:
    """`config.load_experiment` with every rule: a single-run config as a validated Experiment."""
    return config.load_experiment(path, RULES)
