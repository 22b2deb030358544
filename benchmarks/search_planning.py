"""What planning a large search costs: the three planning steps the workflow runs for a config with a `search:`
section (reading the plan keys, validate_config for every trial, derive_arch_code naming every trial), in a
fresh `results/` each repeat, against the same steps for one plain config measured in the same run.

    python benchmarks/search_planning.py [--trials 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from ssvae.pipeline import planning

REPO = Path(__file__).resolve().parents[1]


def search_config(trials: int) -> dict:
    return {"experiment": {"name": "big"}, "data": {"dataset": "digits"}, "model": {"max_epochs": 20},
            "search": {"method": "halving", "trials": trials, "seed": 0, "metric": "val_accuracy",
                       "space": {"model.learning_rate": {"log_uniform": [1.0e-4, 1.0e-2]},
                                 "model.label_weight": {"uniform": [1, 30]},
                                 "model.latent_dim": {"choice": [8, 16, 32]}},
                       "halving": {"min_epochs": 2, "eta": 3}}}


def plan_once(config: dict) -> tuple[float, float, float]:
    """(keys, validation, naming) seconds of planning `config` in a fresh workspace."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "configs" / "big.yaml"
        path.parent.mkdir()
        path.write_text(yaml.safe_dump(config))
        results = Path(scratch) / "results"
        start = time.perf_counter()
        sources = planning.plan_sources([str(path)], results)
        keys = time.perf_counter()
        documents = planning.validate_all(sources, results)
        validated = time.perf_counter()
        planning.derive_all(list(documents), results)
        named = time.perf_counter()
    if not all(d["ok"] for d in documents.values()):
        raise SystemExit("the benchmark's config did not validate")
    return keys - start, validated - keys, named - validated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    plain = {k: v for k, v in search_config(1).items() if k != "search"}
    rows = []
    for label, config in (("one plain config", plain), (f"a {args.trials}-trial search", search_config(args.trials))):
        times = [plan_once(config) for _ in range(args.repeats)]
        medians = [statistics.median(t[i] for t in times) for i in range(3)]
        rows.append((label, *medians, statistics.median(sum(t) for t in times)))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            check=False).stdout.strip()
    print(f"command: python benchmarks/search_planning.py --trials {args.trials} --repeats {args.repeats}")
    print(f"commit {commit}, {platform.node()}, {len(os.sched_getaffinity(0))} CPU(s), "
          f"load {os.getloadavg()[0]:.1f}; medians of {args.repeats}")
    print()
    print("| plans | keys s | validation s | naming s | total s | per trial ms |")
    print("|---|---|---|---|---|---|")
    for (label, keys, validation, naming, total), count in zip(rows, (1, args.trials)):
        print(f"| {label} | {keys:.2f} | {validation:.2f} | {naming:.2f} | {total:.2f} | {1000 * total / count:.1f} |")


if __name__ == "__main__":
    main()
