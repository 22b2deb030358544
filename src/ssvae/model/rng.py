"""The run's random keys, all from `model.random_seed`.

split(PRNGKey(seed), 3) = (init, train, eval): init for the parameters, train for every epoch's permutation and
step noise (step.py), eval for the VampPrior's Monte-Carlo KL in the deterministic pass (forward.py). They are
host arrays passed to the compiled functions as arguments, so runs that differ only in their seed share the
compiled executables.
"""

from __future__ import annotations

import jax
import numpy as np


@jax.jit
def _keys(seed):
    # one small compiled program (cached) instead of a few op-by-op ones; the seed is an argument, so one
    # executable serves every seed (PRNGKey of a uint32 seed equals PRNGKey of the same Python int)
    key = jax.random.PRNGKey(seed)
    return key, jax.random.split(key, 3)


def run_keys(seed: int) -> dict[str, np.ndarray]:
    """{"init", "train", "eval"}: split(PRNGKey(seed), 3) as uint32 host arrays."""
    keys = np.asarray(_keys(np.uint32(seed))[1])
    return {"init": keys[0], "train": keys[1], "eval": keys[2]}


def key(seed: int) -> np.ndarray:
    """PRNGKey(seed) as a host array."""
    return np.asarray(_keys(np.uint32(seed))[0])
