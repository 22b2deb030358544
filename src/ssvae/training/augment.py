"""Training-time image augmentation (`data.augment_shift`), applied inside the jitted train step."""

from __future__ import annotations

import jax
import jax.numpy as jnp

# fold_in constant that derives the shifts' key from a step's key, apart from the model's own draws.
KEY_STREAM = 0x5A1F7


def random_shift(key, x, max_shift: int):
    """Each image of x [B, H, W] translated by its own (dy, dx) ~ U{−s, …, s}², s = max_shift, zero fill:
    x'[i, j] = x[i − dy, j − dx] where that pixel exists, else 0. s = 0 (or None) returns x."""
    if not max_shift:
        return x
    batch, height, width = x.shape
    offsets = jax.random.randint(key, (batch, 2), 0, 2 * max_shift + 1)
    padded = jnp.pad(x, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1]), (height, width))

    return jax.vmap(crop)(padded, offsets)
