"""The optimiser: clip_by_global_norm(grad_clip_norm) → AdamW(learning_rate, weight decay on weight matrices);
VampPrior pseudo-inputs get their own Adam with learning_rate·vamp_pseudo_lr_scale (optax.multi_transform).

Training applies it to the parameters' flat `params.ParamGroups` layout; the same optimiser works on the
parameter tree (the group names classify as their leaves do).
"""

from __future__ import annotations

import jax
import optax

from ssvae.config import ModelConfig
from ssvae.model import losses
from ssvae.model.params import is_pseudo_input


def make_optimizer(cfg: ModelConfig) -> optax.GradientTransformation:
    """clip_by_global_norm(grad_clip_norm) → AdamW(learning_rate, weight_decay on weight matrices); VampPrior
    pseudo-inputs get their own Adam with learning_rate·vamp_pseudo_lr_scale (optax.multi_transform), a real
    per-parameter learning rate rather than a gradient scale that Adam's normalisation would cancel. Works on
    the parameter tree and on its `ParamGroups` layout alike."""

    def decay_mask(params):
        return jax.tree_util.tree_map_with_path(lambda path, _: losses.is_weight_matrix(path), params)

    main = optax.adamw(cfg.learning_rate, weight_decay=cfg.weight_decay, mask=decay_mask)
    if cfg.is_vamp:
        def labels(params):
            return jax.tree_util.tree_map_with_path(
                lambda path, _: "pseudo" if is_pseudo_input(path) else "main", params)

        main = optax.multi_transform(
            {"main": main, "pseudo": optax.adam(cfg.learning_rate * cfg.vamp_pseudo_lr_scale)}, labels)
    if cfg.grad_clip_norm is not None:
        return optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), main)
    return main
