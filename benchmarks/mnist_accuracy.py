"""Full-MNIST test accuracy with 100 labels, beside the published table and logistic regression on the same labels.

Each config is trained once per seed with `ssvae.training.fit.fit` (as the `train` rule does) and scored on the official
10,000 test images with its best checkpoint (as `evaluate` does). A seed sets both `model.random_seed` and
`data.seed`, so each seed is its own draw of the 100 labeled images (10 a class), and logistic regression on raw
pixels is refitted on each draw.

    python benchmarks/mnist_accuracy.py --data-path data/mnist                         # configs/mnist/mnist_best.yaml
    python benchmarks/mnist_accuracy.py configs/mnist/mnist_mixture_tau.yaml --data-path data/mnist --seeds 42 1 2
    python benchmarks/mnist_accuracy.py --data-path data/mnist --max-epochs 5 --seeds 42   # a short probe

`--data-path` is a folder of the four MNIST IDX files (see docs/datasets.md); `--max-epochs` overrides the
configs' (the table says so).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
from pathlib import Path

import yaml
from mnist5k_accuracy import REPO, score_seeds, shown

from ssvae.pipeline import validation

BEST = REPO / "configs" / "mnist" / "mnist_best.yaml"

# Kingma et al. 2014 (arXiv 1406.5298), Table 1, and Maaløe et al. 2016, MNIST with 100 labels: test accuracy
# (100 - error %, ± the published standard deviation of the error).
PUBLISHED = [("M2 (Kingma et al. 2014)", "88.03 ± 1.71"), ("M1+M2 (Kingma et al. 2014)", "96.67 ± 0.14"),
             ("ADGM (Maaløe et al. 2016)", "99.04 ± 0.04")]


def reading(path: Path, data_path: str, max_epochs: int | None, scratch: Path) -> Path:
    """A copy of the config under `scratch` that reads `data_path` (and trains `max_epochs`, if given), so that
    planning checks the folder the benchmark reads rather than the config's own `data.path`."""
    raw = yaml.safe_load(path.read_text()) or {}
    raw.setdefault("data", {})["path"] = str(Path(data_path).resolve())
    if max_epochs is not None:
        raw.setdefault("model", {})["max_epochs"] = max_epochs
    copy = scratch / path.name
    copy.write_text(yaml.safe_dump(raw, sort_keys=False))
    return copy


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", type=Path, help=f"default: {shown(str(BEST))}")
    parser.add_argument("--data-path", required=True, help="folder of the four MNIST IDX files (or an .npz)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 1, 2],
                        help="each sets model.random_seed and data.seed (the draw of the labeled images)")
    parser.add_argument("--max-epochs", type=int, help="override model.max_epochs (for short probes)")
    args = parser.parse_args(argv)

    rows = []
    scratch = tempfile.TemporaryDirectory()
    for path in args.configs or [BEST]:
        for plan in validation.load_plans(reading(path, args.data_path, args.max_epochs, Path(scratch.name))):
            base = plan.experiment()
            if base.data.dataset != "mnist":
                parser.error(f"{shown(str(path))} trains on {base.data.dataset}, not mnist")

            def seeded(exp, seed: int):
                return dataclasses.replace(exp, model=dataclasses.replace(exp.model, random_seed=seed),
                                           data=dataclasses.replace(exp.data, seed=seed))

            rows.append((plan, score_seeds(plan.key, base, args.seeds, seeded, digits=4), path))

    command = "python " + " ".join(["benchmarks/mnist_accuracy.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"`{command}`\n")
    print("| model | arch | " + " | ".join(f"seed {s}" for s in args.seeds)
          + " | test accuracy % (mean ± std) | logistic regression % (mean) | best epoch / epochs | train s (median) |")
    print("|---|---|" + "---|" * len(args.seeds) + "---|---|---|---|")
    for name, published in PUBLISHED:
        print(f"| {name} | published | " + " | ".join("" for _ in args.seeds) + f" | {published} | | | |")
    for plan, scores, path in rows:
        acc = [100 * s["accuracy"] for s in scores]
        spread = statistics.stdev(acc) if len(acc) > 1 else 0.0
        print(f"| `{shown(str(path))}` | `{plan.arch}` | " + " | ".join(f"{a:.2f}" for a in acc)
              + f" | {statistics.mean(acc):.2f} ± {spread:.2f}"
              f" | {100 * statistics.mean(s['baseline'] for s in scores):.2f}"
              f" | {', '.join(str(s['best_epoch']) + '/' + str(s['epochs']) for s in scores)}"
              f" | {statistics.median(s['seconds'] for s in scores):.0f} |")


if __name__ == "__main__":
    main()
