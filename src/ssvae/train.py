"""Training: the optimiser, the jitted train step, the epoch loop, early stopping, checkpoints and history.

State is one pytree (`TrainState`: params, optimizer state, τ counts) updated by pure jitted functions. Data live
on the device for the whole run; each epoch draws its permutation and per-step keys from fold_in(key, epoch), so
an epoch's numbers depend only on the state it starts from: a run killed after epoch k and resumed from
`checkpoints/resume.msgpack` ends exactly where an uninterrupted run ends.

Loop shape: dense models run an epoch as one jitted `lax.scan` over batches; models with a conv encoder or
decoder run a Python loop over a jitted step (XLA:CPU convolutions are several times slower inside a loop body;
see benchmarks/train_throughput.py). Neither syncs with the host inside an epoch.

history.csv holds each term's contribution to the loss (losses.weighted_terms), so `loss` is the sum of the
terms. Train values are means over the epoch's steps (classification over the labeled samples seen); val values
come from one deterministic pass over the validation split after the epoch. `val_loss` sums only the
unsupervised terms: validation labels are not training labels, and early stopping must not see them unless
`monitor_metric` asks for classification_loss or accuracy.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import augment, checkpoints, classifiers, losses, priors, runs
from .config import Experiment, ModelConfig
from .data import Splits
from .model import build_model, init_params

NEVER = np.iinfo(np.int32).max
# Names of the values checked for non-finite numbers in each step.
CHECKED = losses.TERMS + ("loss", "gradients")


class TrainingDiverged(RuntimeError):
    """The loss or a term went NaN/inf; the message names the epoch and the term(s)."""


@flax.struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    tau_counts: jax.Array  # τ-classifier soft counts s [K, C]; an empty [0, 0] array without a τ-classifier


# Optimiser --------------------------------------------------------------------------------------

def _is_pseudo_input(path) -> bool:
    return any(getattr(p, "key", None) == "pseudo_inputs" for p in path)


def make_optimizer(cfg: ModelConfig) -> optax.GradientTransformation:
    """clip_by_global_norm(grad_clip_norm) → AdamW(learning_rate, weight_decay on weight matrices); VampPrior
    pseudo-inputs get their own Adam with learning_rate·vamp_pseudo_lr_scale (optax.multi_transform), a real
    per-parameter learning rate rather than a gradient scale that Adam's normalisation would cancel."""

    def decay_mask(params):
        return jax.tree_util.tree_map_with_path(lambda path, _: losses.is_weight_matrix(path), params)

    main = optax.adamw(cfg.learning_rate, weight_decay=cfg.weight_decay, mask=decay_mask)
    if cfg.is_vamp:
        def labels(params):
            return jax.tree_util.tree_map_with_path(
                lambda path, _: "pseudo" if _is_pseudo_input(path) else "main", params)

        main = optax.multi_transform(
            {"main": main, "pseudo": optax.adam(cfg.learning_rate * cfg.vamp_pseudo_lr_scale)}, labels)
    if cfg.grad_clip_norm is not None:
        return optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), main)
    return main


def default_loop(cfg: ModelConfig) -> str:
    """`scan` for dense models, `step` (Python loop over a jitted step) when a conv layer is involved."""
    return "step" if cfg.is_conv else "scan"


# The jitted program -----------------------------------------------------------------------------

class Program:
    """The jitted functions of one model config and data size: train step / epoch, validation pass."""

    def __init__(self, cfg: ModelConfig, num_train: int, seed_key, loop: str | None = None,
                 eval_chunk: int | None = None, labeled_idx: np.ndarray | None = None, augment_shift: int = 0):
        self.cfg = cfg
        self.augment_shift = augment_shift  # data.augment_shift: random translations of the training images
        self.model = build_model(cfg)
        self.optimizer = make_optimizer(cfg)
        self.num_train = num_train
        self.batch_size = min(cfg.batch_size, num_train)
        self.num_batches = -(-num_train // self.batch_size)
        self.loop = loop or default_loop(cfg)
        self.eval_chunk = eval_chunk or (256 if cfg.is_conv else 1024)
        self.init_key, self.train_key, self.eval_key = jax.random.split(seed_key, 3)
        self.use_tau = cfg.use_tau_classifier
        self.num_components = cfg.num_components if cfg.is_mixture else 0
        # Training indices of the labeled pool, drawn `labeled_batch_size` per step (none without the option).
        self.labeled_idx = np.asarray(labeled_idx if cfg.labeled_batch_size and labeled_idx is not None else [],
                                      np.int32)

    # state ---------------------------------------------------------------------------------------
    def init_state(self, x_train: np.ndarray) -> TrainState:
        cfg = self.cfg
        params = init_params(cfg, self.init_key, x_train)
        counts = (classifiers.tau_init_counts(cfg.num_components, cfg.num_classes, cfg.tau_smoothing_alpha,
                                              cfg.tau_init_counts)
                  if self.use_tau else jnp.zeros((0, 0), jnp.float32))
        return TrainState(params=params, opt_state=self.optimizer.init(params), tau_counts=counts)

    def tau(self, counts):
        return classifiers.tau_matrix(counts) if self.use_tau else None

    # schedules -----------------------------------------------------------------------------------
    def temperature(self, epoch):
        cfg = self.cfg
        return priors.gumbel_temperature(epoch, cfg.gumbel_temperature, cfg.gumbel_temperature_min,
                                         cfg.gumbel_temperature_anneal_epochs)

    # training ------------------------------------------------------------------------------------
    def zero_train_acc(self) -> dict:
        acc = {f"sum_{t}": jnp.zeros((), jnp.float32) for t in losses.TERMS}
        acc.update(n=jnp.zeros((), jnp.float32), n_labeled=jnp.zeros((), jnp.float32),
                   correct=jnp.zeros((), jnp.float32), bad=jnp.full((len(CHECKED),), NEVER, jnp.int32))
        return acc

    def epoch_plan(self, epoch):
        """The epoch's batches: sample indices [nb, B (+ L)] (a permutation, padded) and weights (0 on padding).
        With `labeled_batch_size` L, each row ends with L labeled images taken in turn from fresh permutations
        of the labeled pool, so every step sees labels."""
        perm_key = jax.random.fold_in(jax.random.fold_in(self.train_key, epoch), 0)
        padded = self.num_batches * self.batch_size
        order = jax.random.permutation(perm_key, self.num_train)
        order = jnp.concatenate([order, order[: padded - self.num_train]])
        weights = (jnp.arange(padded) < self.num_train).astype(jnp.float32)
        order = order.reshape(self.num_batches, self.batch_size)
        weights = weights.reshape(self.num_batches, self.batch_size)
        n_labeled = len(self.labeled_idx)
        if n_labeled:
            size = self.cfg.labeled_batch_size
            passes = -(-self.num_batches * size // n_labeled)
            keys = jax.random.split(jax.random.fold_in(perm_key, 1), passes)
            drawn = jax.vmap(lambda k: jax.random.permutation(k, n_labeled))(keys).reshape(-1)
            labeled = jnp.asarray(self.labeled_idx)[drawn[: self.num_batches * size]]
            order = jnp.concatenate([order, labeled.reshape(self.num_batches, size)], axis=1)
            weights = jnp.concatenate([weights, jnp.ones((self.num_batches, size), jnp.float32)], axis=1)
        return order, weights

    def loss_fn(self, params, counts, x, y, w, key, epoch):
        cfg = self.cfg
        key_model, key_kl = jax.random.split(key)
        outputs = self.model.apply({"params": params}, x, key_model, self.temperature(epoch))
        labeled = w * (y >= 0)
        per_sample = losses.per_sample_terms(cfg, outputs, x, y, self.tau(counts), key_kl)
        means = losses.batch_means(per_sample, w, labeled)
        means.update(losses.batch_terms(cfg, params, outputs, w))
        contributions = losses.weighted_terms(cfg, means, losses.kl_c_scale(cfg, epoch))
        probs = losses.class_probabilities(cfg, outputs, self.tau(counts))
        correct = jnp.sum(labeled * (jnp.argmax(probs, axis=-1) == y))
        return losses.total(contributions), (means, contributions, outputs, correct)

    def train_step(self, state: TrainState, acc: dict, x_all, y_all, order, weights, i, epoch):
        """One optimiser step on batch i of the epoch; the update is skipped (and recorded) if non-finite."""
        idx = jax.lax.dynamic_index_in_dim(order, i, keepdims=False)
        w = jax.lax.dynamic_index_in_dim(weights, i, keepdims=False)
        x, y = x_all[idx], y_all[idx]
        step_key = jax.random.fold_in(jax.random.fold_in(self.train_key, epoch), i + 1)
        x = augment.random_shift(jax.random.fold_in(step_key, augment.KEY_STREAM), x, self.augment_shift)
        (loss, (means, contributions, outputs, correct)), grads = jax.value_and_grad(self.loss_fn, has_aux=True)(
            state.params, state.tau_counts, x, y, w, step_key, epoch)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        counts = state.tau_counts
        if self.use_tau:
            counts = classifiers.tau_update_counts(counts, outputs.r, y, w * (y >= 0))

        def keep(new, old):
            return jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), new, old)

        state = TrainState(params=keep(params, state.params), opt_state=keep(opt_state, state.opt_state),
                           tau_counts=keep(counts, state.tau_counts))
        n = jnp.sum(w)
        n_labeled = jnp.sum(w * (y >= 0))
        acc = dict(acc)
        for t in losses.TERMS:
            acc[f"sum_{t}"] = acc[f"sum_{t}"] + means[t] * (n_labeled if t == "classification" else n)
        acc["n"] = acc["n"] + n
        acc["n_labeled"] = acc["n_labeled"] + n_labeled
        acc["correct"] = acc["correct"] + correct
        checked = jnp.stack([contributions[t] for t in losses.TERMS] + [loss, grad_norm])
        acc["bad"] = jnp.where(~jnp.isfinite(checked) & (acc["bad"] == NEVER), i, acc["bad"])
        return state, acc

    def train_epoch(self, state: TrainState, x_all, y_all, epoch):
        """A whole epoch as one `lax.scan` over the batches."""
        order, weights = self.epoch_plan(epoch)

        def body(carry, i):
            return self.train_step(*carry, x_all, y_all, order, weights, i, epoch), None

        (state, acc), _ = jax.lax.scan(body, (state, self.zero_train_acc()), jnp.arange(self.num_batches))
        return state, acc

    def step_epoch(self, step, plan, state: TrainState, x_all, y_all, epoch):
        """An epoch as a Python loop over the compiled `step` (batches from the compiled `plan`), no host sync."""
        order, weights = plan(epoch)
        acc = self.zero_train_acc()
        for i in range(self.num_batches):
            state, acc = step(state, acc, x_all, y_all, order, weights, np.int32(i), epoch)
        return state, acc

    def train_summary(self, acc: dict, epoch):
        """Epoch means of the train terms, their contributions and the loss, labeled-train accuracy."""
        means = {t: acc[f"sum_{t}"] / jnp.maximum(acc["n_labeled"] if t == "classification" else acc["n"], 1.0)
                 for t in losses.TERMS}
        contributions = losses.weighted_terms(self.cfg, means, losses.kl_c_scale(self.cfg, epoch))
        accuracy = jnp.where(acc["n_labeled"] > 0, acc["correct"] / jnp.maximum(acc["n_labeled"], 1.0), jnp.nan)
        return {"terms": contributions, "loss": losses.total(contributions), "accuracy": accuracy,
                "bad": acc["bad"]}

    # validation ----------------------------------------------------------------------------------
    def zero_eval_acc(self) -> dict:
        acc = {f"sum_{t}": jnp.zeros((), jnp.float32) for t in losses.PER_SAMPLE_TERMS}
        acc.update(n=jnp.zeros((), jnp.float32), correct=jnp.zeros((), jnp.float32),
                   usage=jnp.zeros((max(self.num_components, 1),), jnp.float32))
        return acc

    def eval_chunk_step(self, params, counts, acc, x, y, w, epoch):
        """Add one chunk of the validation split (deterministic pass) to the running sums."""
        cfg = self.cfg
        outputs = self.model.apply({"params": params}, x, None, self.temperature(epoch))
        tau = self.tau(counts)
        per_sample = losses.per_sample_terms(cfg, outputs, x, y, tau, self.eval_key)
        probs = losses.class_probabilities(cfg, outputs, tau)
        acc = dict(acc)
        for t in losses.PER_SAMPLE_TERMS:
            acc[f"sum_{t}"] = acc[f"sum_{t}"] + jnp.sum(w * per_sample[t])
        acc["n"] = acc["n"] + jnp.sum(w)
        acc["correct"] = acc["correct"] + jnp.sum(w * (jnp.argmax(probs, axis=-1) == y))
        if outputs.r is not None:
            acc["usage"] = acc["usage"] + jnp.sum(w[:, None] * outputs.r, axis=0)
        return acc

    def log_pi(self, params):
        cfg = self.cfg
        if cfg.has_component_embeddings:
            return self.model.apply({"params": params}, method="log_pi")
        if cfg.is_vamp:
            return jnp.full((cfg.num_components,), -math.log(cfg.num_components), jnp.float32)
        return None

    def eval_summary(self, params, acc: dict, epoch):
        """Validation means, contributions, loss (unsupervised terms), accuracy, π and usage."""
        cfg = self.cfg
        n = jnp.maximum(acc["n"], 1.0)
        means = {t: acc[f"sum_{t}"] / n for t in losses.PER_SAMPLE_TERMS}
        usage = acc["usage"] / n
        log_pi = self.log_pi(params)
        zero = jnp.zeros((), jnp.float32)
        means["diversity"] = -jnp.sum(usage * jnp.log(jnp.clip(usage, 1e-12, 1.0))) if cfg.is_mixture else zero
        means["dirichlet"] = (priors.dirichlet_penalty(log_pi, cfg.dirichlet_alpha, 1.0)
                              if cfg.uses_dirichlet
                              else zero)
        means["l1"] = losses.l1_penalty(params) if cfg.l1_weight > 0 else zero
        contributions = losses.weighted_terms(cfg, means, losses.kl_c_scale(cfg, epoch))
        return {"terms": contributions, "loss": losses.total(contributions, losses.UNSUPERVISED_TERMS),
                "classification_raw": means["classification"], "accuracy": acc["correct"] / n,
                "usage": usage, "pi": jnp.exp(log_pi) if log_pi is not None else None}


# The loop ---------------------------------------------------------------------------------------

def _monitor(cfg: ModelConfig) -> tuple[str, str]:
    """(history column, 'min' | 'max') that early stopping watches."""
    return {
        "auto": ("val_loss", "min"),
        "loss": ("val_loss", "min"),
        "classification_loss": ("val_classification_raw", "min"),
        "accuracy": ("val_accuracy", "max"),
    }[cfg.monitor_metric]


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def history_columns(cfg: ModelConfig) -> list[str]:
    """history.csv's columns, in order."""
    cols = ["epoch", "train_loss"] + [f"train_{t}" for t in losses.TERMS]
    cols += ["val_loss"] + [f"val_{t}" for t in losses.TERMS]
    cols += ["train_accuracy", "val_accuracy", "kl_c_scale", "gumbel_temperature", "epoch_seconds"]
    if cfg.is_mixture:
        cols += [f"pi_{k}" for k in range(cfg.num_components)] + [f"usage_{k}" for k in range(cfg.num_components)]
    return cols


def history_csv(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row[c]) for c in columns])
    return out.getvalue()


def _csv_value(value):
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _nonfinite(names_values: dict) -> list[str]:
    return [name for name, value in names_values.items() if not math.isfinite(value)]


def fit(experiment: Experiment, splits: Splits, run_dir: str | Path, *, resume_tag: str,
        log: Callable[[str], None] = print, loop: str | None = None) -> dict:
    """Train the experiment's model on `splits` into `run_dir`; resume from checkpoints/resume.msgpack when it
    was written under the same `resume_tag`. Writes checkpoints/best.msgpack and history.csv; returns a summary.
    Raises TrainingDiverged (after saving checkpoints/diverged.msgpack) if the loss goes non-finite."""
    cfg = experiment.model
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    resume_path = ckpt_dir / "resume.msgpack"
    start_wall = time.perf_counter()

    num_train = len(splits.x_train)
    base_key = jax.random.PRNGKey(cfg.random_seed)
    program = Program(cfg, num_train, base_key, loop=loop, labeled_idx=np.flatnonzero(splits.labeled),
                      augment_shift=experiment.data.augment_shift)
    monitor_column, monitor_mode = _monitor(cfg)

    # Labels the model may use; -1 hides the rest, so no code path can read them.
    y_train = np.where(splits.labeled, splits.y_train, -1).astype(np.int32)
    x_train = jax.device_put(np.asarray(splits.x_train, np.float32))
    y_train = jax.device_put(y_train)
    chunk = min(program.eval_chunk, len(splits.x_val))
    num_chunks = -(-len(splits.x_val) // chunk)
    pad = num_chunks * chunk - len(splits.x_val)
    x_val = jax.device_put(np.concatenate([splits.x_val, np.zeros((pad, *splits.x_val.shape[1:]), np.float32)])
                           .reshape(num_chunks, chunk, *splits.x_val.shape[1:]))
    y_val = jax.device_put(np.concatenate([splits.y_val, np.zeros(pad, np.int32)]).astype(np.int32)
                           .reshape(num_chunks, chunk))
    w_val = jax.device_put((np.arange(num_chunks * chunk) < len(splits.x_val)).astype(np.float32)
                           .reshape(num_chunks, chunk))

    state = program.init_state(splits.x_train)
    best = {"params": state.params, "tau_counts": state.tau_counts}
    meta = {"epochs_completed": 0, "best_epoch": None, "best_value": None, "wait": 0, "stopped_early": False,
            "history": [], "train_seconds": [], "monitor": monitor_column}
    resumed_from = None
    restored = checkpoints.load_resume(resume_path, resume_tag=resume_tag, state_template=state, best_template=best)
    if restored is not None:
        meta, state, best, _ = restored
        state = jax.device_put(state)
        best = jax.device_put(best)
        resumed_from = meta["epochs_completed"]
        log(f"resuming from {resume_path} after epoch {resumed_from}")
    elif resume_path.exists():
        log(f"ignoring {resume_path}: written for another run (resume tag differs)")

    finished = meta["stopped_early"] or meta["epochs_completed"] >= cfg.max_epochs
    compile_seconds = 0.0
    if not finished:
        compile_start = time.perf_counter()
        epoch0 = np.int32(meta["epochs_completed"])
        if program.loop == "scan":
            run_epoch = jax.jit(program.train_epoch).lower(state, x_train, y_train, epoch0).compile()
        else:
            plan = jax.jit(program.epoch_plan).lower(epoch0).compile()
            order0, weights0 = plan(epoch0)
            step = jax.jit(program.train_step).lower(state, program.zero_train_acc(), x_train, y_train, order0,
                                                     weights0, np.int32(0), epoch0).compile()
        train_summary = jax.jit(program.train_summary).lower(program.zero_train_acc(), epoch0).compile()
        eval_step = jax.jit(program.eval_chunk_step).lower(state.params, state.tau_counts, program.zero_eval_acc(),
                                                           x_val[0], y_val[0], w_val[0], epoch0).compile()
        eval_summary = jax.jit(program.eval_summary).lower(state.params, program.zero_eval_acc(), epoch0).compile()
        compile_seconds = time.perf_counter() - compile_start
        log(f"compiled in {compile_seconds:.1f} s ({program.loop} loop, {program.num_batches} batches of "
            f"{program.batch_size}, {num_train} training / {len(splits.x_val)} validation images)")

    columns = history_columns(cfg)
    writer = checkpoints.BackgroundWriter()
    try:
        while not finished:
            epoch = meta["epochs_completed"]  # 0-based index of the epoch being run
            e32 = np.int32(epoch)
            t0 = time.perf_counter()
            if program.loop == "scan":
                state, acc = run_epoch(state, x_train, y_train, e32)
            else:
                state, acc = program.step_epoch(step, plan, state, x_train, y_train, e32)
            train_out = jax.block_until_ready(train_summary(acc, e32))
            train_seconds = time.perf_counter() - t0
            vacc = program.zero_eval_acc()
            for c in range(num_chunks):
                vacc = eval_step(state.params, state.tau_counts, vacc, x_val[c], y_val[c], w_val[c], e32)
            val_out = eval_summary(state.params, vacc, e32)
            train_out, val_out = jax.device_get((train_out, val_out))
            epoch_seconds = time.perf_counter() - t0

            row = {"epoch": epoch + 1, "train_loss": float(train_out["loss"])}
            row.update({f"train_{t}": float(v) for t, v in train_out["terms"].items()})
            row["val_loss"] = float(val_out["loss"])
            row.update({f"val_{t}": float(v) for t, v in val_out["terms"].items()})
            row.update(train_accuracy=float(train_out["accuracy"]), val_accuracy=float(val_out["accuracy"]),
                       kl_c_scale=float(losses.kl_c_scale(cfg, epoch)),
                       gumbel_temperature=float(program.temperature(epoch)), epoch_seconds=epoch_seconds)
            if cfg.is_mixture:
                row.update({f"pi_{k}": float(v) for k, v in enumerate(val_out["pi"])})
                row.update({f"usage_{k}": float(v) for k, v in enumerate(val_out["usage"])})

            bad_steps = np.asarray(train_out["bad"])
            bad_val = _nonfinite({f"val_{t}": row[f"val_{t}"] for t in losses.TERMS + ("loss",)})
            if (bad_steps < NEVER).any() or bad_val:
                _diverged(ckpt_dir, resume_tag, state, best, base_key, meta, epoch, bad_steps, bad_val, log)

            meta["history"].append(row)
            meta["train_seconds"].append(train_seconds)
            meta["epochs_completed"] = epoch + 1
            value = float(val_out["classification_raw"]) if monitor_column == "val_classification_raw" \
                else row[monitor_column]
            best_value = meta["best_value"]
            improved = best_value is None or (value < best_value if monitor_mode == "min" else value > best_value)
            if improved:
                meta.update(best_epoch=epoch + 1, best_value=value, wait=0)
                best = {"params": state.params, "tau_counts": state.tau_counts}
            else:
                meta["wait"] += 1
            if meta["wait"] >= cfg.patience and meta["epochs_completed"] < cfg.max_epochs:
                meta["stopped_early"] = True
            finished = meta["stopped_early"] or meta["epochs_completed"] >= cfg.max_epochs
            writer.submit(checkpoints.save_resume, path=resume_path, resume_tag=resume_tag, state=state,
                          best=best, rng=np.asarray(base_key), meta=json.dumps(meta))

            remaining = cfg.max_epochs - meta["epochs_completed"]
            recent = meta["history"][-5:]
            per_epoch = sorted(r["epoch_seconds"] for r in recent)[len(recent) // 2]
            log(f"epoch {epoch + 1}/{cfg.max_epochs}  train loss {row['train_loss']:.4f}"
                f"  val loss {row['val_loss']:.4f}  val acc {row['val_accuracy']:.4f}"
                f"  {num_train / train_seconds:,.0f} samples/s"
                f"  {epoch_seconds:.2f} s/epoch  ETA {_format_seconds(0 if finished else remaining * per_epoch)}"
                + ("  *" if improved else ""))
            if meta["stopped_early"]:
                log(f"early stopping: {meta['monitor']} has not improved for {cfg.patience} epochs "
                    f"(best {meta['best_value']:.4f} at epoch {meta['best_epoch']})")
    finally:
        writer.wait()

    best_row = meta["history"][meta["best_epoch"] - 1]
    checkpoints.save_best(ckpt_dir / "best.msgpack", params=best["params"],
                          tau_counts=best["tau_counts"] if cfg.use_tau_classifier else None,
                          meta={"epoch": meta["best_epoch"], "monitor_metric": meta["monitor"],
                                "best_value": meta["best_value"],
                                "gumbel_temperature": best_row["gumbel_temperature"],
                                "resume_tag": resume_tag})
    runs.write_text(run_dir / "history.csv", history_csv(meta["history"], columns))
    train_seconds = meta["train_seconds"]
    result = {
        "status": "success",
        "epochs_completed": meta["epochs_completed"],
        "best_epoch": meta["best_epoch"],
        "monitor_metric": meta["monitor"],
        "best_value": meta["best_value"],
        "stopped_early": meta["stopped_early"],
        "training_time_sec": float(sum(r["epoch_seconds"] for r in meta["history"])),
        "wall_time_sec": time.perf_counter() - start_wall,
        "compile_time_sec": compile_seconds,
        "samples_per_sec": float(num_train / np.median(train_seconds)) if train_seconds else None,
        "loop": program.loop,
        "resumed_from_epoch": resumed_from,
        "final": best_row,
    }
    log(f"training done: {meta['epochs_completed']} epochs, best {meta['monitor']} = {meta['best_value']:.4f} "
        f"at epoch {meta['best_epoch']}")
    return result


def _diverged(ckpt_dir: Path, resume_tag, state, best, base_key, meta, epoch, bad_steps, bad_val, log):
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
    checkpoints.save_resume(path, resume_tag=resume_tag, state=state, best=best, rng=np.asarray(base_key),
                            meta={**meta, "diverged": message})
    log(f"training diverged at {message}; state saved to {path}")
    raise TrainingDiverged(f"{message}; state saved to {path}")
