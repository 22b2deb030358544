"""derive_arch_code: the run id of a validated config (arch code + timestamp minted once per identity)."""

import _stage  # noqa: F401  (puts the repository's src/ on the import path)

import argparse

from ssvae import stages

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("validated")
parser.add_argument("--results", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()

stages.derive_arch_code(args.validated, args.results, args.out)
