"""The model's parameters: their shapes, and the flat layout that training and the deterministic pass use.

`ParamGroups`: a small training keeps the parameters as a few flat vectors, one per optimiser treatment (weight
matrices, VampPrior pseudo-inputs, the rest), instead of one array per layer. Adam, weight decay and clipping
act elementwise or on the global norm, so the update is the same as on the per-layer tree; but the compiled step
then holds a handful of optimiser updates instead of one per layer and optimiser slot, which is most of what XLA
spends compiling a small model (benchmarks/RESULTS.md has the measurement). The model sees the usual tree:
`unflatten` inside the compiled functions (slices and reshapes), on the host for checkpoints.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ssvae.config import ModelConfig
from ssvae.model import losses
from ssvae.model.vae import build_model

# Group names are chosen so that the path rules (weight decay on "kernel", the pseudo-inputs' own learning rate)
# classify a whole group as they classify its leaves.
KERNEL = "kernel"
PSEUDO = "pseudo_inputs"
OTHER = "other"


def is_pseudo_input(path) -> bool:
    return any(getattr(p, "key", None) == PSEUDO for p in path)


def _group_of(path) -> str:
    if is_pseudo_input(path):
        return PSEUDO
    return KERNEL if losses.is_weight_matrix(path) else OTHER


def template(cfg: ModelConfig):
    """Shapes and dtypes of the model's parameter tree (traced abstractly: no computation, no compilation)."""
    return jax.eval_shape(build_model(cfg).init, jax.ShapeDtypeStruct((2,), jnp.uint32),
                          jax.ShapeDtypeStruct((1, *cfg.input_hw), jnp.float32))["params"]


class ParamGroups:
    """The layout of the parameters in training: {group: flat float32 vector} (flat), or one array per layer
    under its group's name (per layer), and back to the model's tree.

    flat:      {"kernel": [n_k], "other": [n_o], ("pseudo_inputs": [n_p])}, leaves in tree order;
    per layer: {"000": {"kernel": W}, "001": {"other": b}, ...};
    unflatten(groups) -> the tree (on JAX arrays inside a compiled function, or on NumPy arrays).

    The flat layout compiles faster for a small model; for a larger one its steps are slower, so training picks
    it for small trainings only (`compiling.small_training`).
    """

    @classmethod
    def for_config(cls, cfg: ModelConfig, flat: bool = True) -> "ParamGroups":
        return cls(template(cfg), flat)

    def __init__(self, params_template, flat: bool = True):
        self.template = params_template
        self.flat = flat
        leaves, self.treedef = jax.tree_util.tree_flatten_with_path(params_template)
        self.shapes = [tuple(leaf.shape) for _, leaf in leaves]
        self.kinds = [_group_of(path) for path, _ in leaves]
        self.groups: dict[str, list[int]] = {}
        for index, kind in enumerate(self.kinds):
            self.groups.setdefault(kind, []).append(index)

    @property
    def name(self) -> str:
        return "flat" if self.flat else "per_layer"

    def flatten(self, params):
        leaves = jax.tree_util.tree_leaves(params)
        if not self.flat:
            return {f"{i:03d}": {kind: leaf} for i, (kind, leaf) in enumerate(zip(self.kinds, leaves))}
        xp = np if all(isinstance(leaf, np.ndarray) for leaf in leaves) else jax.numpy
        return {group: xp.concatenate([xp.reshape(leaves[i], (-1,)) for i in indices])
                for group, indices in self.groups.items()}

    def unflatten(self, groups):
        if not self.flat:
            leaves = [groups[f"{i:03d}"][kind] for i, kind in enumerate(self.kinds)]
            return jax.tree_util.tree_unflatten(self.treedef, leaves)
        leaves = [None] * len(self.shapes)
        for group, indices in self.groups.items():
            vector = groups[group]
            offset = 0
            for i in indices:
                size = math.prod(self.shapes[i])
                leaves[i] = vector[offset:offset + size].reshape(self.shapes[i])
                offset += size
        return jax.tree_util.tree_unflatten(self.treedef, leaves)

    def host_tree(self, groups):
        """The parameter tree as NumPy arrays, from groups on the device or the host."""
        return self.unflatten(jax.tree_util.tree_map(np.asarray, jax.device_get(groups)))

    def num_params(self) -> int:
        return sum(math.prod(shape) for shape in self.shapes)
