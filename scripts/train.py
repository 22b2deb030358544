"""train: fit the run's model; resumes from the last epoch's checkpoint after an interruption."""

import atexit
import sys

import _stage

# its output goes through `tee` (train.smk), which a signal to the process group may end first
sys.stdout, sys.stderr = _stage.OutlivesItsReader(sys.stdout), _stage.OutlivesItsReader(sys.stderr)

parser = _stage.jax_parser(__doc__)
parser.add_argument("--rung", type=int, default=None,
                    help="a halving trial's rung: train on to its epochs if the rung below promoted the trial")
args = parser.parse_args()

from ssvae.results import runlock  # noqa: E402  (JAX-free)

# Held from the first second (before JAX loads) to the last, so the run shows as training for as long as this job
# lives; a second job on the same folder fails here, leaving the first one's state alone.
lock = runlock.holding(args.run_dir)
try:
    lock.__enter__()
except runlock.RunFolderBusy as exc:
    print(exc, file=sys.stderr, flush=True)
    sys.exit(1)
# released when the interpreter exits, before it tears its modules down (a generator left to the garbage
# collector then would find `os` gone and print a traceback after the job's last line)
atexit.register(lock.__exit__, None, None, None)

_stage.setup_jax(args)

from ssvae.pipeline import stages  # noqa: E402  (after the thread limit)
from ssvae.training import fit  # noqa: E402

fit.install_sigterm_handler()  # a scheduler's SIGTERM: save the last epoch, then exit
with stages.outcome("train", args.run_dir):
    validated, run_json = _stage.planned(args)
    try:
        if args.rung is None:
            stages.train(validated, run_json, args.run_dir)
        else:
            stages.train_rung(validated, run_json, args.run_dir, args.rung)
    except fit.TrainingDiverged as exc:
        stages.fail(f"training diverged: {exc}\nThe state at the failing epoch is kept in "
                    f"{args.run_dir}/checkpoints/.")
    except fit.TrainingInterrupted as exc:
        stages.fail(f"training interrupted by SIGTERM: {exc}", code=stages.INTERRUPTED)
    except (stages.DeviceMissing, stages.TrialFailed) as exc:
        stages.fail(str(exc))
