"""Classifiers p(y|x): an MLP head on z, or the τ-classifier that reads labels off the component channel.

Both losses are means over the labeled samples of a batch (zero when a batch has none); `weights` marks the
samples that count (0 for padding) and `labeled` those whose label the model may use.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ssvae.model.networks import leaky_relu

EPS = 1e-8


class ClassifierHead(nn.Module):
    """MLP on z: (Dense(h) + leaky ReLU + dropout) ×2, h = hidden_dims[-1], then Dense(C) logits."""

    hidden_dims: Sequence[int]
    num_classes: int
    dropout_rate: float

    @nn.compact
    def __call__(self, z, dropout_key=None):
        width = self.hidden_dims[-1]
        h = z
        for i in range(2):
            h = leaky_relu(nn.Dense(width)(h))
            if dropout_key is not None and self.dropout_rate > 0:
                h = nn.Dropout(self.dropout_rate, deterministic=False)(h, rng=jax.random.fold_in(dropout_key, i))
        return nn.Dense(self.num_classes, name="logits")(h)


def masked_mean(values, mask):
    """Σ_b m_b v_b / max(1, Σ_b m_b)."""
    return jnp.sum(mask * values) / jnp.maximum(jnp.sum(mask), 1.0)


def head_nll(class_logits, y):
    """Per-sample cross-entropy −log softmax(head(z))_y (y < 0 for unknown labels gives 0)."""
    log_p = jax.nn.log_softmax(class_logits, axis=-1)
    return -jnp.take_along_axis(log_p, jnp.maximum(y, 0)[:, None], axis=-1)[:, 0] * (y >= 0)


# τ-classifier -----------------------------------------------------------------------------------

def tau_init_counts(num_components: int, num_classes: int, alpha: float, assigned: float = 0.0,
                    assignment=None):
    """Soft counts s ∈ ℝ^{K×C}, every entry initialised to α₀ = tau_smoothing_alpha, plus `assigned`
    (tau_init_counts) on the assignment of component k to class `assignment[k]` (default k mod C: the components
    of a mixture or geometric prior are interchangeable at initialisation)."""
    counts = jnp.full((num_components, num_classes), alpha, jnp.float32)
    if assigned:
        if assignment is None:
            assignment = jnp.arange(num_components) % num_classes
        counts = counts + assigned * jax.nn.one_hot(jnp.asarray(assignment), num_classes)
    return counts


def tau_matrix(counts):
    """τ = row-normalised s: τ_{c,y} = s_{c,y} / Σ_{y'} s_{c,y'}."""
    return counts / jnp.sum(counts, axis=-1, keepdims=True)


def tau_update_counts(counts, r, y, mask):
    """s ← s + Σ_b m_b r_bᵀ onehot(y_b): responsibilities of the labeled samples (m_b = 1), no gradient."""
    onehot = jax.nn.one_hot(jnp.maximum(y, 0), counts.shape[-1], dtype=counts.dtype)
    return counts + jax.lax.stop_gradient((mask[:, None] * r).T @ onehot)


def tau_predict(r, tau):
    """p(y|x) = r · τ."""
    return r @ tau


def tau_nll(r, tau, y):
    """Per-sample τ loss −log(r · τ_y), τ stop-gradient (y < 0 for unknown labels gives 0)."""
    p_y = jnp.take_along_axis(tau_predict(r, jax.lax.stop_gradient(tau)), jnp.maximum(y, 0)[:, None], axis=-1)[:, 0]
    return -jnp.log(p_y + EPS) * (y >= 0)
