"""naming_legend: write results/NAMING_LEGEND.md from the code that names runs."""

import argparse

import _stage  # noqa: F401  (puts the repository's src/ on the import path)

from ssvae import config, disk, naming

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--out", required=True)
args = parser.parse_args()

disk.write_text(args.out, naming.naming_legend(config.defaults()["model"]))
