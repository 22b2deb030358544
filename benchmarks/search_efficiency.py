"""Successive halving against training every trial to max_epochs: the same trials, the same choosing metric.

The 27 trials of a halving search (eta 3, min_epochs 5; rungs of 5, 15 and max_epochs) on mnist5k with 100
labels, over learning rate, label weight and latent size, are planned from a config exactly as the workflow
plans them (`ssvae.config.load_plans`). The halving search trains each trial rung by rung with
`ssvae.fit.fit(epochs=...)`, continuing from the trial's own checkpoint, and promotes with
`ssvae.results.halving.promote`, as the `train_rung` and `promote` jobs do; the full search trains every trial straight
to max_epochs. Each search's winner is the best trial by the search metric (validation); its test accuracy comes
from the best checkpoint on the held-out test split, as `evaluate` scores it.

Goal: the halving winner's test accuracy within 1 point of the full search's winner, with at most 1/3 of its
epochs.

    python benchmarks/search_efficiency.py                       # 27 trials, max_epochs 50
    python benchmarks/search_efficiency.py --trials 9 --max-epochs 15 --min-epochs 5   # a quick look
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from ssvae import config
from ssvae.data import datasets
from ssvae.model import inference
from ssvae.results import halving
from ssvae.training import fit

REPO = Path(__file__).resolve().parents[1]


def search_config(trials: int, max_epochs: int, min_epochs: int, eta: int, metric: str) -> dict:
    return {
        "experiment": {"name": "search_efficiency"},
        "data": {"dataset": "mnist5k", "num_labeled": 100},
        "model": {"max_epochs": max_epochs},
        "search": {"method": "halving", "proposals": "random", "trials": trials, "seed": 0, "metric": metric,
                   "space": {"model.learning_rate": {"log_uniform": [1.0e-4, 1.0e-2]},
                             "model.label_weight": {"uniform": [1, 30]},
                             "model.latent_dim": {"choice": [8, 16, 32]}},
                   "halving": {"min_epochs": min_epochs, "eta": eta}},
    }


def test_accuracy(run_dir: Path, exp: config.Experiment, splits) -> float:
    predictions = inference.load_model(run_dir, exp).predict(splits.x_test)
    return float(np.mean(predictions.y_pred == splits.y_test))


def winner(values: dict[int, float], mode: str) -> int:
    return halving.ranking(values, mode)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=27)
    parser.add_argument("--max-epochs", type=int, default=50)
    parser.add_argument("--min-epochs", type=int, default=5)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--metric", default="val_accuracy", choices=("val_accuracy", "val_objective"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        path = scratch / "search_efficiency.yaml"
        path.write_text(yaml.safe_dump(search_config(args.trials, args.max_epochs, args.min_epochs, args.eta,
                                                     args.metric)))
        plans = config.load_plans(path)
        bad = [str(e) for p in plans for e in p.errors]
        if bad:
            raise SystemExit("\n".join(bad))
        trials = {p.search["trial"]: p for p in plans}
        search = halving.trial_document(plans[0].search, args.max_epochs)
        rungs, mode, column = search["rungs"], search["mode"], search["column"]
        experiments = {t: p.experiment() for t, p in trials.items()}
        splits = datasets.load_splits(experiments[0].data)

        # every trial straight to max_epochs
        full, start = {}, time.perf_counter()
        for t, exp in experiments.items():
            folder = scratch / "full" / f"t{t}"
            result = fit.fit(exp, splits, folder, resume_tag="full", log=lambda m: None)
            full[t] = {"value": result["final"][column], "epochs": result["epochs_completed"],
                       "test": test_accuracy(folder, exp, splits)}
        full_seconds = time.perf_counter() - start

        # halving: rung by rung, promoted trials continuing from their own checkpoint
        alive, reached, start = list(experiments), {}, time.perf_counter()
        values: dict[int, float] = {}
        for rung, epochs in enumerate(rungs):
            values, finished = {}, set()
            for t in alive:
                result = fit.fit(experiments[t], splits, scratch / "halving" / f"t{t}", resume_tag="halving",
                                   log=lambda m: None, epochs=epochs)
                values[t] = result["final"][column]
                reached[t] = result["epochs_completed"]
                if result["horizon_reached"]:
                    finished.add(t)
            if rung < len(rungs) - 1:
                decisions = halving.promote(values, args.eta, mode, finished=finished)
                alive = [t for t, up in decisions.items() if up]
        halving_seconds = time.perf_counter() - start
        best_halving = winner(values, mode)
        halving_test = test_accuracy(scratch / "halving" / f"t{best_halving}", experiments[best_halving], splits)

    best_full = winner({t: r["value"] for t, r in full.items()}, mode)
    full_epochs = sum(r["epochs"] for r in full.values())
    halving_epochs = sum(reached.values())
    top_test = max(r["test"] for r in full.values())
    gap = 100 * (full[best_full]["test"] - halving_test)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True, check=False).stdout.strip()
    print(f"command: python benchmarks/search_efficiency.py --trials {args.trials} --max-epochs {args.max_epochs} "
          f"--min-epochs {args.min_epochs} --eta {args.eta} --metric {args.metric}")
    print(f"commit {commit}, {platform.node()}, {len(__import__('os').sched_getaffinity(0))} CPU(s)")
    print(f"rungs {rungs}; metric {args.metric} ({mode}); mnist5k, 100 labels")
    print()
    print("| search | winner | its " + args.metric + " | its test accuracy % | epochs | wall time (s) |")
    print("|---|---|---|---|---|---|")
    print(f"| every trial to {args.max_epochs} epochs | trial {best_full} | {full[best_full]['value']:.4f} | "
          f"{100 * full[best_full]['test']:.1f} | {full_epochs} | {full_seconds:.0f} |")
    print(f"| halving (eta {args.eta}) | trial {best_halving} | {values[best_halving]:.4f} | {100 * halving_test:.1f} "
          f"| {halving_epochs} | {halving_seconds:.0f} |")
    print()
    print(f"best test accuracy of any full run: {100 * top_test:.1f} %")
    print(f"halving winner vs full winner: {gap:+.1f} points behind; epochs {halving_epochs / full_epochs:.0%} of "
          f"the full search's; wall time {halving_seconds / full_seconds:.0%}")
    print(f"goal (within 1 point, at most 1/3 of the epochs): "
          f"{'met' if gap <= 1.0 and 3 * halving_epochs <= full_epochs else 'NOT met'}")


if __name__ == "__main__":
    main()
