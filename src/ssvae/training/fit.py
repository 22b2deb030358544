"""Training: the fit loop. Data on the device, compiled programs, resume, early stopping, checkpoints, history.

The pieces it drives: step.py (the pure step / epoch / validation functions), forward.py (the deterministic
pass shared with evaluate), early_stopping.py (the fixed objective and patience), checkpoints.py (resume and
best files), history.py (history.csv), schedules.py (the KL_c and temperature anneals).

Resuming: checkpoints/resume.msgpack is written after every epoch; a run killed after epoch k continues from it
and ends exactly where an uninterrupted run ends. A resume file of a finished training is never resumed: a train
job that runs again over a finished run (`--forcerun train`) trains from scratch. On SIGTERM (a scheduler's time
limit or preemption, `install_sigterm_handler`) training stops at the next step, waits for the last finished
epoch's checkpoint to be on disk and raises TrainingInterrupted: at most the running epoch is lost.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from ssvae import disk
from ssvae.config import Experiment
from ssvae.data.datasets import Splits
from ssvae.evaluation.evaluate import NUM_SAMPLES_PER_COMPONENT
from ssvae.model import checkpoints, forward, inference
from ssvae.model.rng import run_keys
from ssvae.runtime import compiling
from ssvae.runtime.compiling import CompileClock, fast_compile_options, training_compile_options
from ssvae.training import history, schedules
from ssvae.training.early_stopping import EarlyStopping
from ssvae.training.step import CHECKED, NEVER, TrainProgram, default_loop  # noqa: F401  (public names)


class TrainingDiverged(RuntimeError):
    """The loss or a term went NaN/inf; the message names the epoch and the term(s)."""


class TrainingInterrupted(RuntimeError):
    """Training stopped on request (SIGTERM); the last finished epoch's checkpoint is on disk."""


_stop_requested = threading.Event()


def request_stop(*_) -> None:
    """Ask a running `fit` to stop after saving its last finished epoch (a signal handler)."""
    _stop_requested.set()


def install_sigterm_handler() -> None:
    """On SIGTERM, stop training cleanly instead of dying mid-write (call from the main thread)."""
    signal.signal(signal.SIGTERM, request_stop)


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _nonfinite(names_values: dict) -> list[str]:
    return [name for name, value in names_values.items() if not math.isfinite(value)]


class _Run:
    """What one `fit` holds on the device and has compiled: the data, the programs and the validation pass."""

    def __init__(self, experiment: Experiment, splits: Splits, loop: str | None, clock: CompileClock):
        cfg = experiment.model
        self.cfg = cfg
        self.program = TrainProgram(cfg, len(splits.x_train), loop=loop, augment_shift=experiment.data.augment_shift)
        self.keys = run_keys(cfg.random_seed)
        # Labels the model may use; -1 hides the rest, so no code path can read them.
        y_train = np.where(splits.labeled, splits.y_train, -1).astype(np.int32)
        pool = np.flatnonzero(splits.labeled).astype(np.int32) if cfg.labeled_batch_size else np.zeros(0, np.int32)
        self.x_train, self.y_train, self.pool, self.train_key = jax.device_put(
            (np.asarray(splits.x_train, np.float32), y_train, pool, self.keys["train"]))
        chunk = forward.chunk_size(cfg, experiment.evaluation.batch_size)
        self.val_pass = forward.ChunkPass(cfg, chunk, self.program.layout)
        xs, ys, ws = forward.split_chunks(splits.x_val, splits.y_val, chunk)
        self.val_x = [jax.device_put(x) for x in xs]
        self.val_y = [jax.device_put(y) for y in ys]
        self.val_labels, self.val_weights = jax.device_put((ys, ws))
        self.clock = clock
        self.num_val = len(splits.x_val)

    def compile(self, state, epoch: int) -> None:
        """Every program the loop runs, lowered, then compiled side by side (or loaded from the persistent
        cache) before the first epoch. The training programs of a small training compile fast
        (compiling.small_training); passes and summaries always do."""
        p, clock, e = self.program, self.clock, np.int32(epoch)
        fast = fast_compile_options()
        data = (self.x_train, self.y_train, self.pool, self.train_key)
        programs = []
        options = training_compile_options(p.small)
        if p.loop == "scan":
            programs.append((clock.lower(p.run_epoch, state, *data, e), options))
        else:
            order, weights = jax.eval_shape(p.epoch_plan, self.train_key, self.pool, e)
            programs += [(clock.lower(p.train_step, state, p.zero_train_acc(), self.x_train, self.y_train, order,
                                      weights, self.train_key, np.int32(0), e), options),
                         (clock.lower(p.epoch_plan, self.train_key, self.pool, e), fast),
                         (clock.lower(p.train_summary, p.zero_train_acc(), e), fast)]
        with clock.timing():
            programs.append(self.val_pass.lower(state.params, state.tau_counts, self.keys["eval"]))
        outputs = [jax.eval_shape(self.val_pass.outputs, state.params, state.tau_counts, x, y, np.float32(1.0),
                                  self.keys["eval"]) for x, y in zip(self.val_x, self.val_y)]
        programs.append((clock.lower(p.validation_summary, state.params, outputs, self.val_labels,
                                     self.val_weights, np.float32(1.0)), fast))
        # evaluate's own programs, compiled beside these into the persistent cache (evaluate then loads them)
        extra = []
        if compiling.installed() is not None:
            with clock.timing():
                extra = inference.EvaluationPrograms(self.cfg).lowered(
                    p.layout.template, state.tau_counts, NUM_SAMPLES_PER_COMPONENT)
        self.options = programs[0][1]
        compiled = clock.compile_all(programs + extra)[:len(programs)]
        if p.loop == "scan":
            self.run_epoch = compiled[0]
        else:
            self.step, self.plan, self.train_summary = compiled[:3]
        self.val_pass.use(compiled[-2])
        self.val_summary = compiled[-1]

    def train_one_epoch(self, state, epoch: int, should_stop: Callable[[], bool]):
        """(state, train summary) of epoch `epoch` (0-based), or None if a stop was requested during it."""
        e = np.int32(epoch)
        data = (self.x_train, self.y_train, self.pool, self.train_key)
        if self.program.loop == "scan":
            return self.run_epoch(state, *data, e)
        order, weights = self.plan(self.train_key, self.pool, e)
        acc = self.program.zero_train_acc()
        for i in range(self.program.num_batches):
            if should_stop():
                return None
            state, acc = self.step(state, acc, self.x_train, self.y_train, order, weights, self.train_key,
                                   np.int32(i), e)
        return state, self.train_summary(acc, e)

    def validation_outputs(self, state, temperature: float) -> list:
        """The deterministic pass over the validation chunks at Gumbel temperature `temperature` (device)."""
        return self.val_pass.run(state.params, state.tau_counts, self.val_x, self.val_y, temperature,
                                 self.keys["eval"])

    def validation_summary(self, state, outputs: list, c_scale: float) -> dict:
        return self.val_summary(state.params, outputs, self.val_labels, self.val_weights, np.float32(c_scale))

    def validate(self, state, epoch: int):
        """(the epoch's validation summary at its annealed scales, the same at the final scales)."""
        cfg = self.cfg
        temperature = schedules.gumbel_temperature(cfg, epoch)
        final_temperature = schedules.final_gumbel_temperature(cfg)
        outputs = self.validation_outputs(state, temperature)
        annealed = self.validation_summary(state, outputs, schedules.kl_c_scale(cfg, epoch))
        # The temperature only acts through Gumbel routing; the KL_c scale only in the summary.
        if cfg.use_gumbel_softmax and temperature != final_temperature:
            outputs = self.validation_outputs(state, final_temperature)
        elif schedules.kl_c_scale(cfg, epoch) == schedules.final_kl_c_scale(cfg):
            return annealed, annealed
        return annealed, self.validation_summary(state, outputs, schedules.final_kl_c_scale(cfg))


def fit(experiment: Experiment, splits: Splits, run_dir: str | Path, *, resume_tag: str,
        log: Callable[[str], None] = print, loop: str | None = None,
        should_stop: Callable[[], bool] = _stop_requested.is_set, epochs: int | None = None) -> dict:
    """Train the experiment's model on `splits` into `run_dir`; resume from checkpoints/resume.msgpack when it
    holds an unfinished training written under the same `resume_tag`. Writes checkpoints/best.msgpack and
    history.csv; returns a summary. Raises TrainingDiverged (after saving checkpoints/diverged.msgpack) if the
    loss goes non-finite, TrainingInterrupted when `should_stop()` turns true (after the last checkpoint is
    written).

    `epochs` (a rung of a search, ssvae.results.halving) stops the training after that many of its `max_epochs`: the
    training is the same as one towards `max_epochs` (no schedule depends on where it stops), and a later call
    with more epochs continues it from its resume file, so a trial trained in parts ends exactly where the same
    trial trained straight ends. With `epochs` set a resume file is always continued, also one that holds a
    finished training (then nothing is left to train: the outputs are written from it)."""
    cfg = experiment.model
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    resume_path = ckpt_dir / "resume.msgpack"
    start_wall = time.perf_counter()
    clock = CompileClock()
    run = _Run(experiment, splits, loop, clock)
    program = run.program
    num_train = program.num_train

    with clock.timing():
        state = program.init_state(run.keys["init"], splits.x_train,
                                   (splits.x_train[splits.labeled], splits.y_train[splits.labeled]))
    best = {"params": state.params, "tau_counts": state.tau_counts}
    stopper = EarlyStopping.for_config(cfg.monitor_metric, cfg.patience, cfg.max_epochs, cfg.num_classes,
                                         cfg.classifier_reads_z)
    target = cfg.max_epochs if epochs is None else min(epochs, cfg.max_epochs)
    meta = {"epochs_completed": 0, "history": [], "train_seconds": [], "early_stopping": stopper.to_dict()}
    resumed_from = None
    restored = checkpoints.load_resume(resume_path, resume_tag=resume_tag, state_template=state,
                                       best_template=best, log=log)
    if restored is not None:
        saved_meta, saved_state, saved_best, used = restored
        saved_stopper = EarlyStopping.from_dict(saved_meta["early_stopping"])
        if epochs is None and saved_stopper.finished(saved_meta["epochs_completed"]):
            log(f"{used} holds a finished training ({saved_meta['epochs_completed']} epochs): training again from "
                "scratch, as a train job that runs again (--forcerun train) asks for")
        elif saved_meta["epochs_completed"] > target:
            log(f"{used} holds {saved_meta['epochs_completed']} epochs, more than the {target} asked for: training "
                "again from scratch")
        else:
            meta, stopper = saved_meta, saved_stopper
            state, best = jax.device_put((saved_state, saved_best))
            resumed_from = meta["epochs_completed"]
            log(f"resuming from {used} after epoch {resumed_from}")

    def done() -> bool:
        return stopper.finished(meta["epochs_completed"]) or meta["epochs_completed"] >= target

    finished = done()
    live = history.LiveRecord(run_dir, target, meta["epochs_completed"],
                              write=lambda path, doc: disk.write_json(path, doc, durable=False))
    if not finished:
        try:
            run.compile(state, meta["epochs_completed"])
        except BaseException:
            live.close("stopped")
            raise
        log(f"compiled in {clock.seconds:.1f} s ({program.loop} loop, {program.num_batches} batches of "
            f"{program.batch_size}, {num_train} training / {run.num_val} validation images)")

    columns = history.history_columns(cfg)
    writer = checkpoints.BackgroundWriter()
    final_temperature = schedules.final_gumbel_temperature(cfg)
    try:
        while not finished and not should_stop():
            epoch = meta["epochs_completed"]  # 0-based index of the epoch being run
            t0 = time.perf_counter()
            trained = run.train_one_epoch(state, epoch, should_stop)
            if trained is None:
                break
            state, train_out = trained
            train_out = jax.block_until_ready(train_out)
            train_seconds = time.perf_counter() - t0
            val_out, fixed_out = run.validate(state, epoch)
            train_out, val_out, fixed_out = jax.device_get((train_out, val_out, fixed_out))
            epoch_seconds = time.perf_counter() - t0

            row = history.epoch_row(cfg, epoch + 1, train_out, val_out, fixed_out["loss"],
                                    schedules.kl_c_scale(cfg, epoch), schedules.gumbel_temperature(cfg, epoch),
                                    epoch_seconds)
            bad_steps = np.asarray(train_out["bad"])
            bad_val = _nonfinite({f"val_{t}": row[f"val_{t}"] for t in ("loss",) + tuple(train_out["terms"])})
            if (bad_steps < NEVER).any() or bad_val:
                _diverged(ckpt_dir, resume_tag, state, best, meta, epoch, bad_steps, bad_val, log)

            monitored = {"val_objective": row["val_objective"], "val_accuracy": row["val_accuracy"],
                         "val_classification_raw": float(fixed_out["classification_raw"])}[stopper.column]
            improved = stopper.update(epoch + 1, monitored, row.get("val_kl_z", math.inf))
            if improved:
                best = {"params": state.params, "tau_counts": state.tau_counts}
            # the history of a training stopped at a rung is the same as that of one trained straight on
            history.add_mixture(cfg, row, val_out, history.mixture_logged(cfg, epoch + 1, stopper.finished(epoch + 1)))
            meta["history"].append(row)
            meta["train_seconds"].append(train_seconds)
            meta["epochs_completed"] = epoch + 1
            meta["early_stopping"] = stopper.to_dict()
            finished = done()
            writer.submit(checkpoints.save_resume, path=resume_path, resume_tag=resume_tag, state=state,
                          best=best, meta=json.dumps(meta))

            remaining = target - meta["epochs_completed"]
            recent = meta["history"][-5:]
            per_epoch = sorted(r["epoch_seconds"] for r in recent)[len(recent) // 2]
            live.epoch(row, seconds_per_epoch=per_epoch, finished=finished, best_epoch=stopper.best_epoch,
                       monitor=stopper.column, best_value=stopper.best_value)
            log(f"epoch {epoch + 1}/{target}  train loss {row['train_loss']:.4f}"
                f"  val loss {row['val_loss']:.4f}  val acc {row['val_accuracy']:.4f}"
                f"  {num_train / train_seconds:,.0f} samples/s"
                f"  {epoch_seconds:.2f} s/epoch  ETA {_format_seconds(0 if finished else remaining * per_epoch)}"
                + ("  *" if improved else ""))
            if stopper.stopped_early:
                log(f"early stopping: {stopper.column} has not improved for {cfg.patience} epochs "
                    f"(best {stopper.best_value:.4f} at epoch {stopper.best_epoch})")
    finally:
        writer.wait()
        live.close(None if finished else "stopped")
    if not finished:
        completed = meta["epochs_completed"]
        where = (f"{resume_path} holds epoch {completed}; the next run of the train job resumes from it" if completed
                 else "no epoch had finished; the next run of the train job starts from scratch")
        log(f"stopped on request: {where}")
        raise TrainingInterrupted(f"stopped on request after {completed} of {target} epochs; {where}")

    best_row = meta["history"][stopper.best_epoch - 1]
    layout = program.layout
    checkpoints.save_best(ckpt_dir / "best.msgpack", params=layout.host_tree(best["params"]),
                          tau_counts=best["tau_counts"] if cfg.use_tau_classifier else None,
                          meta={"epoch": stopper.best_epoch, "monitor_metric": stopper.column,
                                "best_value": stopper.best_value, "gumbel_temperature": final_temperature,
                                "resume_tag": resume_tag, "layout": layout.name})
    disk.write_text(run_dir / "history.csv", history.history_csv(meta["history"], columns))
    train_seconds = meta["train_seconds"]
    result = {
        "status": "success",
        "epochs_completed": meta["epochs_completed"],
        "best_epoch": stopper.best_epoch,
        "monitor_metric": stopper.column,
        "best_value": stopper.best_value,
        "stopped_early": stopper.stopped_early,
        "training_time_sec": float(sum(r["epoch_seconds"] for r in meta["history"])),
        "wall_time_sec": time.perf_counter() - start_wall,
        "compile_time_sec": clock.seconds,
        "samples_per_sec": float(num_train / np.median(train_seconds)) if train_seconds else None,
        "loop": program.loop,
        "resumed_from_epoch": resumed_from,
        "horizon_reached": stopper.finished(meta["epochs_completed"]),
        "final": best_row,
    }
    log(f"training done: {meta['epochs_completed']} epochs, best {stopper.column} = {stopper.best_value:.4f} "
        f"at epoch {stopper.best_epoch}")
    return result


def _diverged(ckpt_dir: Path, resume_tag, state, best, meta, epoch, bad_steps, bad_val, log):
    """Save the state for inspection and raise TrainingDiverged naming the epoch and the term(s)."""
    parts = []
    if (bad_steps < NEVER).any():
        first = int(bad_steps.min())
        names = [CHECKED[j] for j in np.flatnonzero(bad_steps == first)]
        parts.append(f"train {', '.join(names)} non-finite first at batch {first + 1} "
                     "(that update and later non-finite ones were skipped)")
    if bad_val:
        parts.append(f"{', '.join(bad_val)} non-finite on the validation split")
    message = f"epoch {epoch + 1}: {'; '.join(parts)}"
    path = ckpt_dir / "diverged.msgpack"
    checkpoints.save_resume(path, keep_previous=False, resume_tag=resume_tag, state=state, best=best,
                            meta={**meta, "diverged": message})
    log(f"training diverged at {message}; state saved to {path}")
    raise TrainingDiverged(f"{message}; state saved to {path}")
