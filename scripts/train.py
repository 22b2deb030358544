"""train: fit the run's model; resumes from the last epoch's checkpoint after an interruption."""

import _stage

parser = _stage.jax_parser(__doc__)
parser.add_argument("--run-json", required=True)
args = parser.parse_args()
_stage.setup_jax(args)

from ssvae import stages, train  # noqa: E402  (after the thread limit)

train.install_sigterm_handler()  # a scheduler's SIGTERM: save the last epoch, then exit
try:
    stages.train(args.validated, args.run_json, args.run_dir)
except train.TrainingDiverged as exc:
    stages.fail(f"training diverged: {exc}\nThe state at the failing epoch is kept in {args.run_dir}/checkpoints/.")
except train.TrainingInterrupted as exc:
    stages.fail(f"training interrupted by SIGTERM: {exc}", code=143)
