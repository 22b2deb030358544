"""validate_config: check one run of a config; write its effective config, or print every error and exit 1.

Errors go to stderr as well as the log, so they show in Snakemake's own output next to the failed job.
"""

import _stage  # noqa: F401  (puts the repository's src/ on the import path)

import argparse
import sys

from ssvae import config, stages

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("config")
parser.add_argument("--key", required=True, help="the run's plan key (config stem, plus sweep point label)")
parser.add_argument("--out", required=True)
parser.add_argument("--log", required=True)
args = parser.parse_args()

with open(args.log, "w") as log_file:
    def log(message: str) -> None:
        print(message, file=log_file, flush=True)

    try:
        stages.validate_config(args.config, args.key, args.out, log=log)
    except config.ConfigErrors as exc:
        message = f"{args.config}: invalid config, {len(exc.errors)} error(s):\n" + "\n".join(
            f"  - {error}" for error in exc.errors)
        log(message)
        print(message, file=sys.stderr, flush=True)
        sys.exit(1)
