"""report: figures, REPORT.md, summary.json and the current config.yaml of one run."""

import _stage

from ssvae.pipeline import stages

args = _stage.run_parser(__doc__).parse_args()
with stages.outcome("report", args.run_dir):
    validated, run_json = _stage.planned(args)
    stages.report(validated, run_json, args.run_dir)
