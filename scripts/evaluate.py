"""evaluate: score the best checkpoint on the held-out split (metrics.json, predictions.npz)."""

import _stage

args = _stage.jax_parser(__doc__).parse_args()
_stage.setup_jax(args)

from ssvae.model import checkpoints  # noqa: E402  (after the thread limit)
from ssvae.pipeline import stages  # noqa: E402

with stages.outcome("evaluate", args.run_dir):
    validated, _ = _stage.planned(args)
    try:
        stages.evaluate(validated, args.run_dir)
    except checkpoints.CheckpointError as exc:
        stages.fail(f"cannot evaluate: {exc}")
