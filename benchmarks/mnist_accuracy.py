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
from pathlib import Path

from mnist5k_accuracy import REPO, score, shown

from ssvae.pipeline import validation

BEST = REPO / "configs" / "mnist" / "mnist_best.yaml"

# Kingma et al. 2014 (arXiv 1406.5298), Table 1, and Maaløe et al. 2016, MNIST with 100 labels: test accuracy
# (100 - error %, ± the published standard deviation of the error).
PUBLISHED = [("M2 (Kingma et al. 2014)", "88.03 ± 1.71"), ("M1+M2 (Kingma et al. 2014)", "96.67 ± 0.14"),
             ("ADGM (Maaløe et al. 2016)", "99.04 ± 0.04")]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", type=Path, help=f"default: {shown(str(BEST))}")
    parser.add_argument("--data-path", required=True, help="folder of the four MNIST IDX files (or an .npz)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 1, 2],
                        help="each sets model.random_seed and data.seed (the draw of the labeled images)")
    parser.add_argument("--max-epochs", type=int, help="override model.max_epochs (for short probes)")
    args = parser.parse_args(argv)

    rows = []
    for path in args.configs or [BEST]:
        for plan in validation.load_plans(path):
            base = plan.experiment()
            if base.data.dataset != "mnist":
                parser.error(f"{shown(str(path))} trains on {base.data.dataset}, not mnist")
            scores = []
            for seed in args.seeds:
                model = dataclasses.replace(base.model, random_seed=seed)
                if args.max_epochs is not None:
                    model = dataclasses.replace(model, max_epochs=args.max_epochs)
                exp = dataclasses.replace(base, model=model,
                                          data=dataclasses.replace(base.data, seed=seed, path=args.data_path))
                scores.append(score(exp))
                s = scores[-1]
                print(f"  {plan.key} seed {seed}: accuracy {s['accuracy']:.4f} (logistic regression "
                      f"{s['baseline']:.4f}), best epoch {s['best_epoch']}/{s['epochs']}, {s['seconds']:.0f} s",
                      file=sys.stderr, flush=True)
            rows.append((plan, scores, path))

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
