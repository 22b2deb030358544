"""The training step and epoch, and the validation objective: pure functions over explicit state.

State is one pytree (`TrainState`: parameters in their `params.ParamGroups` layout, optimizer state, τ counts)
and every random draw is a function of (train key, epoch, step): epoch e's permutation comes from
fold_in(fold_in(k, e), 0), step i's noise from fold_in(fold_in(k, e), i + 1). So an epoch's numbers depend only
on the state it starts from, and a run resumed after epoch k ends exactly where an uninterrupted run ends.

Everything that differs between runs of one architecture (seed-derived keys, the labeled pool, the data) is an
argument of the compiled functions, never a constant inside them, so runs of the same architecture and data
size (a sweep over seeds, a rerun) share one compiled executable through the persistent compilation cache.

Loop shapes: `run_epoch` is a whole epoch as one `lax.scan` over batches (dense models); `step_epoch` drives the
compiled `train_step` from Python (conv models: XLA:CPU convolutions are several times slower inside a loop
body). Neither syncs with the host inside an epoch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ssvae.config import ModelConfig
from ssvae.config.types import default_consistency_weight
from ssvae.model import classifiers, losses, priors
from ssvae.model.params import ParamGroups
from ssvae.model.vae import build_model, init_params
from ssvae.runtime.compiling import small_training
from ssvae.training import augment, schedules
from ssvae.training.optimizer import make_optimizer

NEVER = np.iinfo(np.int32).max
# Names of the values checked for non-finite numbers in each step.
CHECKED = losses.TERMS + ("loss", "gradients")


@flax.struct.dataclass
class TrainState:
    params: Any        # the parameters in their ParamGroups layout
    opt_state: Any
    tau_counts: jax.Array  # τ-classifier soft counts s [K, C]; an empty [0, 0] array without a τ-classifier


def default_loop(cfg: ModelConfig) -> str:
    """`scan` for dense models, `step` (Python loop over a jitted step) when a conv layer is involved."""
    return "step" if cfg.is_conv else "scan"


class TrainProgram:
    """The step, epoch and validation functions of one model config and training-set size (all pure)."""

    def __init__(self, cfg: ModelConfig, num_train: int, loop: str | None = None, flat: bool | None = None,
                 augment_shift: int = 0):
        """`flat`: the parameters' layout (params.ParamGroups); default: flat for a small training.
        `augment_shift`: data.augment_shift, random translations of the training images in every step."""
        if cfg.consistency_weight is None:  # a ModelConfig made without the plan's resolution (library use)
            cfg = dataclasses.replace(cfg, consistency_weight=default_consistency_weight(
                augment_shift, head=not cfg.use_tau_classifier))
        self.cfg = cfg
        self.augment_shift = augment_shift
        self.model = build_model(cfg)
        self.optimizer = make_optimizer(cfg)
        self.layout = ParamGroups.for_config(cfg)
        self.small = small_training(cfg, self.layout.num_params(), num_train)
        if not (self.small if flat is None else flat):
            self.layout = ParamGroups(self.layout.template, flat=False)
        self.num_train = num_train
        self.batch_size = min(cfg.batch_size, num_train)
        self.num_batches = -(-num_train // self.batch_size)
        self.loop = loop or default_loop(cfg)
        self.use_tau = cfg.use_tau_classifier

    # state ---------------------------------------------------------------------------------------
    def init_state(self, init_key, x_train: np.ndarray, labeled: tuple[np.ndarray, np.ndarray] | None = None
                   ) -> TrainState:
        """Initial parameters (model.init_params), their optimizer state and the initial τ counts.

        `labeled` (images, labels): with a VampPrior, τ's initial counts sit on the class each pseudo-input
        resembles (priors.vamp_class_assignment) rather than on k mod C."""
        cfg = self.cfg
        params = jax.tree_util.tree_map(np.asarray, jax.device_get(init_params(cfg, init_key, x_train)))
        assignment = None
        if self.use_tau and cfg.is_vamp and cfg.tau_init_counts and labeled is not None:
            assignment = priors.vamp_class_assignment(params["pseudo"]["pseudo_inputs"], *labeled, cfg.num_classes)
        groups = self.layout.flatten(params)
        opt_state, counts = jax.jit(self._init_optimizer_and_counts)(groups, assignment)
        return TrainState(params=jax.device_put(groups), opt_state=opt_state, tau_counts=counts)

    def _init_optimizer_and_counts(self, groups, assignment=None):
        cfg = self.cfg
        counts = (classifiers.tau_init_counts(cfg.num_components, cfg.num_classes, cfg.tau_smoothing_alpha,
                                              cfg.tau_init_counts, assignment)
                  if self.use_tau else jnp.zeros((0, 0), jnp.float32))
        return self.optimizer.init(groups), counts

    def tau(self, counts):
        return classifiers.tau_matrix(counts) if self.use_tau else None

    # the epoch's batches -------------------------------------------------------------------------
    def epoch_plan(self, train_key, labeled_pool, epoch):
        """The epoch's batches: sample indices [nb, B (+ L)] (a permutation, padded) and weights (0 on padding).
        With `labeled_batch_size` L, each row ends with L labeled images taken in turn from fresh permutations
        of the labeled pool (training indices), so every step sees labels."""
        perm_key = jax.random.fold_in(jax.random.fold_in(train_key, epoch), 0)
        padded = self.num_batches * self.batch_size
        order = jax.random.permutation(perm_key, self.num_train)
        order = jnp.concatenate([order, order[: padded - self.num_train]])
        weights = (jnp.arange(padded) < self.num_train).astype(jnp.float32)
        order = order.reshape(self.num_batches, self.batch_size)
        weights = weights.reshape(self.num_batches, self.batch_size)
        n_labeled = labeled_pool.shape[0]
        size = self.cfg.labeled_batch_size
        if size and n_labeled:
            passes = -(-self.num_batches * size // n_labeled)
            keys = jax.random.split(jax.random.fold_in(perm_key, 1), passes)
            drawn = jax.vmap(lambda k: jax.random.permutation(k, n_labeled))(keys).reshape(-1)
            labeled = labeled_pool[drawn[: self.num_batches * size]]
            order = jnp.concatenate([order, labeled.reshape(self.num_batches, size)], axis=1)
            weights = jnp.concatenate([weights, jnp.ones((self.num_batches, size), jnp.float32)], axis=1)
        return order, weights

    # one step ------------------------------------------------------------------------------------
    def loss_fn(self, params, counts, x, y, w, key, epoch, x_view=None):
        """The training objective of one batch (params: the model's parameter tree) and what the step records.
        `x_view`: the batch for the consistency term's second pass, shifted on its own (the same images without
        shifts: the pass differs in its sample of z), or None (the term is 0)."""
        cfg = self.cfg
        key_model, key_kl = jax.random.split(key)
        temperature = schedules.gumbel_temperature(cfg, epoch)
        outputs = self.model.apply({"params": params}, x, key_model, temperature)
        labeled = w * (y >= 0)
        per_sample = losses.per_sample_terms(cfg, outputs, x, y, self.tau(counts), key_kl)
        means = losses.batch_means(per_sample, w, labeled)
        means.update(losses.batch_terms(cfg, params, outputs, w))
        probs = losses.class_probabilities(cfg, outputs, self.tau(counts))
        means["consistency"] = jnp.zeros((), jnp.float32)
        if x_view is not None:
            other = self.model.apply({"params": params}, x_view, jax.random.fold_in(key_model, 1), temperature)
            means["consistency"] = losses.consistency_term(probs, losses.class_probabilities(cfg, other,
                                                                                             self.tau(counts)), w)
        contributions = losses.weighted_terms(cfg, means, schedules.kl_c_scale(cfg, epoch))
        correct = jnp.sum(labeled * (jnp.argmax(probs, axis=-1) == y))
        return losses.total(contributions), (means, contributions, outputs, correct)

    def zero_train_acc(self) -> dict:
        """The epoch's running sums, as host arrays (passing them to a compiled function costs no compile)."""
        acc = {f"sum_{t}": np.zeros((), np.float32) for t in losses.TERMS}
        acc.update(n=np.zeros((), np.float32), n_labeled=np.zeros((), np.float32),
                   correct=np.zeros((), np.float32), bad=np.full((len(CHECKED),), NEVER, np.int32))
        return acc

    def train_step(self, state: TrainState, acc: dict, x_all, y_all, order, weights, train_key, i, epoch):
        """One optimiser step on batch i of the epoch; the update is skipped (and recorded) if non-finite."""
        idx = jax.lax.dynamic_index_in_dim(order, i, keepdims=False)
        w = jax.lax.dynamic_index_in_dim(weights, i, keepdims=False)
        x, y = x_all[idx], y_all[idx]
        step_key = jax.random.fold_in(jax.random.fold_in(train_key, epoch), i + 1)
        x_view = None
        if self.cfg.consistency_weight > 0:
            x_view = augment.random_shift(jax.random.fold_in(step_key, augment.KEY_STREAM + 1), x, self.augment_shift)
        x = augment.random_shift(jax.random.fold_in(step_key, augment.KEY_STREAM), x, self.augment_shift)

        def objective(params):
            return self.loss_fn(params, state.tau_counts, x, y, w, step_key, epoch, x_view)

        # Differentiate with respect to the tree and concatenate the gradients once: the gradient of
        # `unflatten` itself would pad every layer's gradient to its group's length and add them up.
        (loss, (means, contributions, outputs, correct)), grads = jax.value_and_grad(objective, has_aux=True)(
            self.layout.unflatten(state.params))
        grads = self.layout.flatten(grads)
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
            acc[f"sum_{t}"] = acc[f"sum_{t}"] + means[t] * {"classification": n_labeled,
                                                             "entropy": n - n_labeled}.get(t, n)
        acc["n"] = acc["n"] + n
        acc["n_labeled"] = acc["n_labeled"] + n_labeled
        acc["correct"] = acc["correct"] + correct
        checked = jnp.stack([contributions[t] for t in losses.TERMS] + [loss, grad_norm])
        acc["bad"] = jnp.where(~jnp.isfinite(checked) & (acc["bad"] == NEVER), i, acc["bad"])
        return state, acc

    # one epoch -----------------------------------------------------------------------------------
    def train_epoch(self, state: TrainState, x_all, y_all, labeled_pool, train_key, epoch):
        """A whole epoch as one `lax.scan` over the batches: (state, running sums)."""
        order, weights = self.epoch_plan(train_key, labeled_pool, epoch)
        acc0 = jax.tree_util.tree_map(jnp.asarray, self.zero_train_acc())

        def body(carry, i):
            return self.train_step(*carry, x_all, y_all, order, weights, train_key, i, epoch), None

        (state, acc), _ = jax.lax.scan(body, (state, acc0), jnp.arange(self.num_batches))
        return state, acc

    def run_epoch(self, state: TrainState, x_all, y_all, labeled_pool, train_key, epoch):
        """`train_epoch` and its summary in one compiled program: (state, summary)."""
        state, acc = self.train_epoch(state, x_all, y_all, labeled_pool, train_key, epoch)
        return state, self.train_summary(acc, epoch)

    def step_epoch(self, step, plan, state: TrainState, x_all, y_all, labeled_pool, train_key, epoch):
        """An epoch as a Python loop over the compiled `step` (batches from the compiled `plan`), no host sync.
        `plan` and `step` are compiled `epoch_plan` and `train_step`."""
        order, weights = plan(train_key, labeled_pool, epoch)
        acc = self.zero_train_acc()
        for i in range(self.num_batches):
            state, acc = step(state, acc, x_all, y_all, order, weights, train_key, np.int32(i), epoch)
        return state, acc

    def train_summary(self, acc: dict, epoch):
        """Epoch means of the train terms, their contributions and the loss, labeled-train accuracy."""
        counted = {"classification": acc["n_labeled"], "entropy": acc["n"] - acc["n_labeled"]}
        means = {t: acc[f"sum_{t}"] / jnp.maximum(counted.get(t, acc["n"]), 1.0) for t in losses.TERMS}
        contributions = losses.weighted_terms(self.cfg, means, schedules.kl_c_scale(self.cfg, epoch))
        accuracy = jnp.where(acc["n_labeled"] > 0, acc["correct"] / jnp.maximum(acc["n_labeled"], 1.0), jnp.nan)
        return {"terms": contributions, "loss": losses.total(contributions), "accuracy": accuracy,
                "bad": acc["bad"]}

    # validation ----------------------------------------------------------------------------------
    def validation_summary(self, groups, chunks, labels, weights, c_scale):
        """Validation means of every term over one deterministic pass (`chunks`: the forward.ChunkPass outputs
        of the split's chunks; `labels`, `weights` [n_chunks, chunk], weight 0 on padding), their contributions
        at KL_c scale `c_scale`, the loss of the unsupervised terms, accuracy, usage (mean r) and π."""
        cfg = self.cfg
        w = weights.reshape(-1)
        n = jnp.maximum(jnp.sum(w), 1.0)

        def cat(name):
            return jnp.concatenate([chunk[name] for chunk in chunks])

        means = {t: jnp.sum(w * jnp.concatenate([c["terms"][t] for c in chunks])) / n
                 for t in losses.PER_SAMPLE_TERMS}
        zero = jnp.zeros((), jnp.float32)
        log_pi = chunks[0].get("log_pi")
        usage = None
        means["diversity"] = zero
        means["consistency"] = zero  # a training-time term: validation images are not shifted
        if cfg.is_mixture:
            r = cat("responsibilities")
            usage = jnp.sum(w[:, None] * r, axis=0) / n
            means["diversity"] = priors.usage_entropy(r, w)
        means["dirichlet"] = priors.dirichlet_penalty(log_pi, cfg.dirichlet_alpha, 1.0) if cfg.uses_dirichlet else zero
        means["l1"] = losses.l1_penalty(self.layout.unflatten(groups)) if cfg.l1_weight > 0 else zero
        contributions = losses.weighted_terms(cfg, means, c_scale)
        correct = jnp.sum(w * (jnp.argmax(cat("y_prob"), axis=-1) == labels.reshape(-1)))
        return {"terms": contributions, "loss": losses.total(contributions, losses.UNSUPERVISED_TERMS),
                "classification_raw": means["classification"], "accuracy": correct / n, "usage": usage,
                "pi": None if log_pi is None else jnp.exp(log_pi)}
