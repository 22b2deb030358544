"""compare: one ranked table and plots across every run folder under the results directory.

A run folder that cannot be read is skipped with a warning naming it; it never fails the job (Snakemake would
then delete COMPARISON.md).
"""

import argparse

import _stage  # noqa: F401  (puts the repository's src/ on the import path)

from ssvae.pipeline import stages
from ssvae.results import compare

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--results", required=True)
parser.add_argument("--sort", default="accuracy", choices=tuple(compare.RANK_METRICS))
parser.add_argument("--pages", help="a folder for every listed run's REPORT.html (the Snakemake report's run pages)")
args = parser.parse_args()

result = compare.compare_runs(args.results, metric=args.sort, warn=lambda m: stages.log_line(f"warning: {m}"),
                              pages=args.pages)
stages.log_line(f"compared {len(result['rows'])} run folders, {len(result['ranked'])} ranked entries")
