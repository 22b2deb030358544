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

Because a trial that reaches a rung has exactly the history it would have trained straight to `max_epochs`, the
full search's histories also say what every other halving schedule would have chosen: replaying the early stopper
over a history gives a trial's value at any rung. The script saves the full search (`--save`) and prints that
table for several min_epochs, eta and metrics; `--replay FILE` prints it again from a saved search without
training. The replay of the schedule trained here must agree with the halving search trained here (checked).

    python benchmarks/search_efficiency.py --save search.json    # 27 trials, max_epochs 50
    python benchmarks/search_efficiency.py --replay s0.json s1.json  # the tables again, and one schedule over them
    python benchmarks/search_efficiency.py --trials 9 --max-epochs 15 --min-epochs 5   # a quick look
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
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
from ssvae.training.early_stopping import EarlyStopping

REPO = Path(__file__).resolve().parents[1]


def search_config(trials: int, max_epochs: int, min_epochs: int, eta: int, metric: str, seed: int) -> dict:
    return {
        "experiment": {"name": "search_efficiency"},
        "data": {"dataset": "mnist5k", "num_labeled": 100},
        "model": {"max_epochs": max_epochs},
        "search": {"method": "halving", "proposals": "random", "trials": trials, "seed": seed, "metric": metric,
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


def read_history(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def at_horizon(trial: dict, horizon: int) -> tuple[int, dict, bool]:
    """(epochs trained, the best row, finished) of a trial trained to `horizon` epochs: the stopper replayed."""
    stopper = EarlyStopping(**trial["stopper"])
    rows = trial["history"]
    epochs = 0
    for row in rows[:horizon]:
        epochs += 1
        stopper.update(epochs, row[stopper.column], row.get("val_kl_z", math.inf))
        if stopper.finished(epochs):
            break
    return epochs, rows[stopper.best_epoch - 1], stopper.finished(epochs)


def replay(saved: dict, rungs: list[int], eta: int, column: str, mode: str) -> tuple[int, int]:
    """(winner, epochs spent) of a halving search with these rungs, from the full search's histories."""
    alive, reached, values = list(saved), {}, {}
    for rung, epochs in enumerate(rungs):
        values, finished = {}, set()
        for t in alive:
            reached[t], row, done = at_horizon(saved[t], epochs)
            values[t] = row[column]
            if done:
                finished.add(t)
        if rung < len(rungs) - 1:
            decisions = halving.promote(values, eta, mode, finished=finished)
            alive = [t for t, up in decisions.items() if up]
    return winner(values, mode), sum(reached.values())


METRICS = (("val_accuracy", "max"), ("val_objective", "min"))


def meets_goal(gap: float, share: float) -> bool:
    """The benchmark's goal: within 1 point of the full search's winner, with at most a third of its epochs."""
    return gap <= 1.0 and 3 * share <= 1


def against_full(saved: dict, max_epochs: int, min_epochs: int, eta: int, metric: str, mode: str
                 ) -> tuple[int, int, float, float]:
    """(full winner, halving winner, points behind, share of the full search's epochs) of one replayed schedule."""
    best_full = winner({t: at_horizon(r, max_epochs)[1][metric] for t, r in saved.items()}, mode)
    best, spent = replay(saved, halving.rung_epochs(min_epochs, eta, max_epochs), eta, metric, mode)
    gap = 100 * (saved[best_full]["test"] - saved[best]["test"])
    return best_full, best, gap, spent / sum(len(t["history"]) for t in saved.values())


def pair(saved: dict, best_full: int, best: int) -> str:
    return f"{best_full} ({100 * saved[best_full]['test']:.1f}) | {best} ({100 * saved[best]['test']:.1f})"


def schedule_table(saved: dict, max_epochs: int) -> None:
    """Every halving schedule's winner against the full search's, by metric: the goal met or not, for each."""
    print("| metric | eta | min_epochs | rungs | full winner (test %) | halving winner (test %) | points behind "
          "| epochs % | goal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for metric, mode in METRICS:
        for eta in (2, 3, 4):
            for min_epochs in (1, 2, 3, 5, 7, 10):
                rungs = halving.rung_epochs(min_epochs, eta, max_epochs)
                if len(rungs) < 2:
                    continue
                best_full, best, gap, share = against_full(saved, max_epochs, min_epochs, eta, metric, mode)
                print(f"| {metric} | {eta} | {min_epochs} | {', '.join(map(str, rungs))} | "
                      f"{pair(saved, best_full, best)} | {gap:+.1f} | {100 * share:.0f} | "
                      f"{'met' if meets_goal(gap, share) else 'not met'} |")


def over_searches(searches: dict[Path, dict], min_epochs: int, eta: int) -> None:
    """One schedule over several saved full searches (other seeds): each one's gap and the mean, by metric."""
    print(f"eta {eta}, min_epochs {min_epochs}, over {len(searches)} saved full searches:")
    print()
    print("| metric | search | full winner (test %) | halving winner (test %) | points behind | epochs % | goal |")
    print("|---|---|---|---|---|---|---|")
    for metric, mode in METRICS:
        gaps, shares = [], []
        for path, document in searches.items():
            saved = {int(t): r for t, r in document["trials"].items()}
            best_full, best, gap, share = against_full(saved, document["max_epochs"], min_epochs, eta, metric, mode)
            gaps.append(gap)
            shares.append(share)
            print(f"| {metric} | {path.name} | {pair(saved, best_full, best)} | {gap:+.1f} | {100 * share:.0f} | "
                  f"{'met' if meets_goal(gap, share) else 'not met'} |")
        mean_gap, mean_share = sum(gaps) / len(gaps), sum(shares) / len(shares)
        print(f"| {metric} | mean | | | {mean_gap:+.2f} | {100 * mean_share:.0f} | "
              f"{'met' if meets_goal(mean_gap, mean_share) else 'not met'} |")


def header(args: argparse.Namespace, rungs: list[int], mode: str) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True, check=False).stdout.strip()
    print(f"command: python benchmarks/search_efficiency.py --trials {args.trials} --max-epochs {args.max_epochs} "
          f"--min-epochs {args.min_epochs} --eta {args.eta} --metric {args.metric} --seed {args.seed}"
          + (" --skip-halving" if args.skip_halving else ""))
    print(f"commit {commit}, {platform.node()}, {len(os.sched_getaffinity(0))} CPU(s)")
    print(f"rungs {rungs}; metric {args.metric} ({mode}); mnist5k, 100 labels")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=27)
    parser.add_argument("--max-epochs", type=int, default=50)
    parser.add_argument("--min-epochs", type=int, default=5)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--metric", default="val_accuracy", choices=("val_accuracy", "val_objective"))
    parser.add_argument("--seed", type=int, default=0, help="the search's seed (which trials it proposes)")
    parser.add_argument("--save", type=Path, help="write the full search (histories, test accuracies) here")
    parser.add_argument("--skip-halving", action="store_true",
                        help="train the full search only; the schedule table replays every halving search")
    parser.add_argument("--replay", type=Path, nargs="+",
                        help="the schedule tables of saved full searches, and the schedule of --min-epochs and --eta "
                             "over them; no training")
    args = parser.parse_args()
    if args.replay:
        searches = {path: json.loads(path.read_text()) for path in args.replay}
        for path, saved in searches.items():
            print(f"{path}:")
            print()
            schedule_table({int(t): r for t, r in saved["trials"].items()}, saved["max_epochs"])
            print()
        over_searches(searches, args.min_epochs, args.eta)
        return

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        path = scratch / "search_efficiency.yaml"
        path.write_text(yaml.safe_dump(search_config(args.trials, args.max_epochs, args.min_epochs, args.eta,
                                                     args.metric, args.seed)))
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
                       "test": test_accuracy(folder, exp, splits), "history": read_history(folder),
                       "stopper": EarlyStopping.for_config(exp.model.monitor_metric, exp.model.patience,
                                                           exp.model.max_epochs, exp.model.num_classes,
                                                           exp.model.classifier_reads_z).to_dict()}
        full_seconds = time.perf_counter() - start
        if args.save:
            args.save.write_text(json.dumps({"max_epochs": args.max_epochs, "trials": full}))
        if args.skip_halving:
            header(args, rungs, mode)
            best_full = winner({t: r["value"] for t, r in full.items()}, mode)
            print(f"every trial to {args.max_epochs} epochs: winner trial {best_full}, test accuracy "
                  f"{100 * full[best_full]['test']:.1f} %, {sum(r['epochs'] for r in full.values())} epochs, "
                  f"{full_seconds:.0f} s")
            print()
            schedule_table(full, args.max_epochs)
            return

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
    header(args, rungs, mode)
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
          f"{'met' if meets_goal(gap, halving_epochs / full_epochs) else 'NOT met'}")
    replayed = replay(full, rungs, args.eta, column, mode)
    if replayed != (best_halving, halving_epochs):
        raise SystemExit(f"the replay of rungs {rungs} chose trial {replayed[0]} with {replayed[1]} epochs; the "
                         f"halving search trained here chose trial {best_halving} with {halving_epochs}")
    print()
    print("Every schedule, replayed from the full search's histories:")
    print()
    schedule_table(full, args.max_epochs)


if __name__ == "__main__":
    main()
