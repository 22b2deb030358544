"""report: figures, REPORT.md, summary.json and the current config.yaml of one run."""

import _stage  # noqa: F401  (puts the repository's src/ on the import path)

import argparse

from ssvae import stages

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--validated", required=True)
parser.add_argument("--run-json", required=True)
parser.add_argument("--run-dir", required=True)
args = parser.parse_args()

stages.report(args.validated, args.run_json, args.run_dir)
