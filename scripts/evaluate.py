"""evaluate: score the best checkpoint on the held-out split (metrics.json, predictions.npz)."""

import _stage

args = _stage.jax_parser(__doc__).parse_args()
_stage.setup_jax(args)

from ssvae import stages  # noqa: E402  (after the thread limit)

validated, _ = _stage.planned(args)
stages.evaluate(validated, args.run_dir)
