"""evaluate: score the best checkpoint on the held-out split (metrics.json, predictions.npz)."""

import _jobsetup

args = _jobsetup.parser(__doc__).parse_args()
_jobsetup.setup(args)

from ssvae import stages  # noqa: E402  (after the thread limit)

stages.evaluate(args.validated, args.run_dir)
