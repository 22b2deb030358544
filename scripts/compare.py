"""compare: one table and plots across every run folder under the results directory."""

import _stage  # noqa: F401  (puts the repository's src/ on the import path)

import argparse

from ssvae import compare, stages

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--results", required=True)
args = parser.parse_args()

result = compare.compare_runs(args.results)
stages.log_line(f"compared {len(result.get('rows', []))} runs")
