"""The two annealed scales of training, both one linear schedule over 0-based epochs.

    linear_schedule(e; v₀, v₁, N) = v₀ + (v₁ − v₀)·min(1, e / N)      (v₁ throughout when N ≤ 0)

Epoch e = 0 runs at the start value v₀, epoch N and later at the final value v₁; the value changes over N
epochs. Used for
- the KL_c anneal scale s_c(e) = linear_schedule(e; 0, 1, kl_c_anneal_epochs): the c-regularizers are off in the
  first epoch and fully on from epoch kl_c_anneal_epochs (1 throughout without an anneal);
- the Gumbel-softmax temperature T(e) = linear_schedule(e; gumbel_temperature, gumbel_temperature_min,
  gumbel_temperature_anneal_epochs) (gumbel_temperature throughout without an anneal).

The final values are what early stopping judges a model at (see early_stopping.py).
"""

from __future__ import annotations

import numbers

from ssvae.config import ModelConfig


def linear_schedule(epoch, start: float, end: float, epochs: int):
    """v(e) = start + (end − start)·min(1, e / epochs); `end` when epochs ≤ 0. Python numbers in, a Python float
    out (no JAX op); a traced epoch gives a traced value."""
    if epochs <= 0:
        return float(end)
    if isinstance(epoch, numbers.Real):
        return float(start + (end - start) * min(1.0, float(epoch) / epochs))
    import jax.numpy as jnp

    progress = jnp.minimum(1.0, jnp.asarray(epoch, jnp.float32) / epochs)
    return start + (end - start) * progress


def kl_c_scale(cfg: ModelConfig, epoch):
    """s_c(e): the KL_c anneal scale of epoch e (1 without an anneal)."""
    return linear_schedule(epoch, 0.0, 1.0, cfg.kl_c_anneal_epochs)


def final_kl_c_scale(cfg: ModelConfig) -> float:
    return 1.0


def gumbel_temperature(cfg: ModelConfig, epoch):
    """T(e): the Gumbel-softmax temperature of epoch e."""
    if cfg.gumbel_temperature_anneal_epochs <= 0:
        return float(cfg.gumbel_temperature)
    return linear_schedule(epoch, cfg.gumbel_temperature, cfg.gumbel_temperature_min,
                           cfg.gumbel_temperature_anneal_epochs)


def final_gumbel_temperature(cfg: ModelConfig) -> float:
    """The temperature the schedule ends at: gumbel_temperature_min, or gumbel_temperature without an anneal."""
    if cfg.gumbel_temperature_anneal_epochs <= 0:
        return float(cfg.gumbel_temperature)
    return float(cfg.gumbel_temperature_min)
