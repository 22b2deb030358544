"""Held-out test accuracy of shipped configs over several seeds, beside logistic regression on the same labels.

Each (config, seed) is trained with `ssvae.training.fit.fit` into a temporary folder, exactly as the `train` rule does,
and scored on the held-out test split with the best checkpoint (`ssvae.model.inference.load_model(...).predict`), as
`evaluate` does. `--seeds` sets `model.random_seed` (what a config's `sweep: seeds:` varies); `--data-seeds`
also redraws the labeled examples (`data.seed`), and the baseline is refitted on each labeled set.

    python benchmarks/mnist5k_accuracy.py configs/mnist5k/mnist5k_mixture_tau.yaml [...] --seeds 42 1 2
    python benchmarks/mnist5k_accuracy.py --tuned --seeds 42 1 2 --data-seeds     # configs/mnist5k/*.yaml
    python benchmarks/mnist5k_accuracy.py --minimal --seeds 42 1 2 --data-seeds   # configs/mnist5k/minimal/
    python benchmarks/mnist5k_accuracy.py --minimal --dataset digits --seeds 42 1 2 --data-seeds   # on the 8x8 digits

`--minimal` is the structure-only set (prior, K, classifier, decoder conditioning; every other key at its
default), which must beat logistic regression by 5 points on every seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from ssvae import config
from ssvae.data import datasets
from ssvae.evaluation import metrics
from ssvae.model import inference
from ssvae.pipeline import validation
from ssvae.results import diagnostics
from ssvae.training import fit

REPO = Path(__file__).resolve().parents[1]
TUNED = REPO / "configs" / "mnist5k"
MINIMAL = TUNED / "minimal"


def shown(source: str) -> str:
    """A config path as the README shows it: relative to the repository when inside it."""
    path = Path(source).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else source


def score(exp: config.Experiment) -> dict:
    splits = datasets.load_splits(exp.data)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = fit.fit(exp, splits, folder, resume_tag="benchmark", log=lambda message: None)
        seconds = time.perf_counter() - start
        predictions = inference.load_model(folder, exp).predict(splits.x_test)
    baseline = metrics.logistic_regression_baseline(splits.x_train[splits.labeled], splits.y_train[splits.labeled],
                                                    splits.x_test, splits.y_test)
    accuracy = float(np.mean(predictions.y_pred == splits.y_test))
    base = baseline.value["accuracy"] if baseline.ok else float("nan")
    return {"accuracy": accuracy, "baseline": base, "n": len(splits.y_test),
            "gain_se": diagnostics.gain_se(accuracy, base, len(splits.y_test)),
            "epochs": result["epochs_completed"], "best_epoch": result["best_epoch"],
            "stopped_early": bool(result.get("stopped_early")), "seconds": seconds}


def score_seeds(key: str, base: config.Experiment, seeds, seeded, digits: int) -> list[dict]:
    """score() of `seeded(base, seed)` for every seed, each result also printed to stderr as it comes."""
    scores = []
    for seed in seeds:
        s = score(seeded(base, seed))
        scores.append(s)
        gain = 100 * (s["accuracy"] - s["baseline"])
        print(f"  {key} seed {seed}: accuracy {s['accuracy']:.{digits}f} (logistic regression "
              f"{s['baseline']:.{digits}f}, gain {gain:+.1f} ± {100 * s['gain_se']:.1f} SE on {s['n']} images), "
              f"best epoch {s['best_epoch']}/{s['epochs']}{' (stopped early)' if s['stopped_early'] else ''}, "
              f"{s['seconds']:.0f} s", file=sys.stderr, flush=True)
    return scores


def on_dataset(path: Path, dataset: str | None, scratch: Path) -> Path:
    """`path` itself, or (with --dataset) a copy of it under `scratch` with data.dataset replaced, planned anew so
    that image-size defaults (input size, augmentation shift) follow the new dataset."""
    if dataset is None:
        return path
    raw = yaml.safe_load(path.read_text()) or {}
    raw.setdefault("data", {})["dataset"] = dataset
    raw["data"].pop("path", None)
    copy = scratch / path.name
    copy.write_text(yaml.safe_dump(raw, sort_keys=False))
    return copy


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", type=Path)
    parser.add_argument("--minimal", action="store_true", help=f"add the structure-only configs in {MINIMAL}")
    parser.add_argument("--tuned", action="store_true", help=f"add the tuned configs in {TUNED}")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42], help="model.random_seed values")
    parser.add_argument("--data-seeds", action="store_true", help="set data.seed to the same value as the model seed")
    parser.add_argument("--dataset", help="train every config on this dataset instead (e.g. digits); the defaults "
                                          "that follow the image size are resolved for it")
    args = parser.parse_args(argv)
    paths = list(args.configs)
    paths += sorted(TUNED.glob("*.yaml")) if args.tuned else []
    paths += sorted(MINIMAL.glob("*.yaml")) if args.minimal else []
    if not paths:
        parser.error("name configs, or --minimal / --tuned")

    rows = []
    scratch = tempfile.TemporaryDirectory()
    for path in paths:
        for plan in validation.load_plans(on_dataset(path, args.dataset, Path(scratch.name))):
            def seeded(exp: config.Experiment, seed: int) -> config.Experiment:
                exp = dataclasses.replace(exp, model=dataclasses.replace(exp.model, random_seed=seed))
                if args.data_seeds:
                    exp = dataclasses.replace(exp, data=dataclasses.replace(exp.data, seed=seed))
                return exp

            rows.append((plan, score_seeds(plan.key, plan.experiment(), args.seeds, seeded, digits=3), path))

    command = "python " + " ".join(["benchmarks/mnist5k_accuracy.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"`{command}`\n")
    print("| config | arch | " + " | ".join(f"seed {s}" for s in args.seeds)
          + " | mean ± std | logistic regression (mean) | gain (points) | train s (median) |")
    print("|---|---|" + "---|" * len(args.seeds) + "---|---|---|---|")
    for plan, scores, path in rows:
        acc = [s["accuracy"] for s in scores]
        base = statistics.mean(s["baseline"] for s in scores)
        spread = statistics.stdev(acc) if len(acc) > 1 else 0.0
        gains = [100 * (s["accuracy"] - s["baseline"]) for s in scores]
        print(f"| `{shown(str(path))}` | `{plan.arch}` | " + " | ".join(f"{a:.3f}" for a in acc)
              + f" | {statistics.mean(acc):.3f} ± {spread:.3f} | {base:.3f} | {min(gains):+.1f} to {max(gains):+.1f}"
              f" | {statistics.median(s['seconds'] for s in scores):.0f} |")


if __name__ == "__main__":
    main()
