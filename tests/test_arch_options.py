"""Every part of an arch code changes what is computed: the model built with and without it, at the same seed,
has a different loss and different gradients.

Configs go through the real loader (validation, resolved defaults) so each pair is two valid configs whose arch
codes differ in that one part. Parameters are drawn per parameter path from a seed, so the parts the two models
share start equal and only the option differs. Forward and backward passes run op by op on tiny shapes.
"""

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from ssvae import config, naming
from ssvae.model import classifiers, priors
from ssvae.model.vae import build_model
from ssvae.training import step

pytestmark = pytest.mark.jax

BASE = {"hidden_dims": [8], "latent_dim": 3, "component_embedding_dim": 3, "num_components": 10}
MIX = {"prior_type": "mixture"}
GEO = {"prior_type": "geometric_mog"}
VAMP = {"prior_type": "vamp"}
TAU = {"use_tau_classifier": True}

# part of the arch code -> (config without it, config with it); both valid, codes differ in that part only.
PAIRS = {
    "-dir": (MIX, {**MIX, "dirichlet_alpha": 3.0}),
    "-dec (mixture)": (MIX | TAU, {**MIX, **TAU, "latent_layout": "decentralized"}),
    "-dec (geometric)": (GEO, {**GEO, "latent_layout": "decentralized"}),
    "-gbl (shared, conditioned)": ({**MIX, "decoder_conditioning": "concat"},
                                   {**MIX, "decoder_conditioning": "concat", "use_gumbel_softmax": True}),
    "-gbl (decentralized)": ({**GEO, "latent_layout": "decentralized"},
                             {**GEO, "latent_layout": "decentralized", "use_gumbel_softmax": True}),
    "km/rand": ({**VAMP, **TAU, "vamp_pseudo_init_method": "random"},
                {**VAMP, **TAU, "vamp_pseudo_init_method": "kmeans"}),
    "circle/grid": ({**GEO, "num_components": 9, "geometric_arrangement": "circle"},
                    {**GEO, "num_components": 9, "geometric_arrangement": "grid"}),
    "tau/head (mixture)": (MIX, MIX | TAU),
    "tau/head (vamp)": (VAMP, VAMP | TAU),
    "tau/head (geometric)": (GEO, GEO | TAU),
    "ca": (MIX | TAU, {**MIX, **TAU, "decoder_conditioning": "concat"}),
    "film": (MIX | TAU, {**MIX, **TAU, "decoder_conditioning": "film"}),
    "cin": (GEO | TAU, {**GEO, **TAU, "decoder_conditioning": "cin"}),
    "het": ({"reconstruction_loss": "mse"}, {"reconstruction_loss": "mse", "use_heteroscedastic_decoder": True}),
}

X = np.random.default_rng(1).random((12, 8, 8)).astype(np.float32)
Y = jnp.asarray([0, 1, 2, 3, -1, -1, 4, 5, -1, 6, 7, -1], jnp.int32)


def load_model_config(write_config, model: dict, name: str) -> config.ModelConfig:
    text = yaml.safe_dump({"data": {"dataset": "digits"}, "model": model})
    (plan,) = config.load_plans(write_config(text, name=f"{name}.yaml"))
    assert plan.ok, plan.errors
    return plan.experiment().model


def seeded_params(cfg: config.ModelConfig):
    """Weights drawn per path (crc32 of the path seeds each leaf), so leaves two models share are equal, and
    nothing starts at an identity that hides an option (FiLM's zero kernel); biases keep their initial values."""
    initial = build_model(cfg).init(jax.random.PRNGKey(0), jnp.zeros((2, 8, 8)))["params"]

    def draw(path, leaf):
        if getattr(path[-1], "key", None) == "bias":
            return leaf
        seed = zlib.crc32(jax.tree_util.keystr(path).encode())
        return jnp.asarray(np.random.default_rng(seed).normal(0.0, 0.3, leaf.shape).astype(np.float32))

    params = jax.tree_util.tree_map_with_path(draw, initial)
    if cfg.is_vamp:  # the pseudo-inputs start from training images, as init_params does
        pseudo = priors.vamp_init_pseudo_inputs(X, cfg.num_components, cfg.vamp_pseudo_init_method, 0)
        params["pseudo"]["pseudo_inputs"] = jnp.asarray(pseudo)
    return params


def loss_and_grads(cfg: config.ModelConfig):
    program = step.TrainProgram(cfg, len(X))
    counts = (classifiers.tau_init_counts(cfg.num_components, cfg.num_classes, cfg.tau_smoothing_alpha,
                                          cfg.tau_init_counts) if cfg.use_tau_classifier else jnp.zeros((0, 0)))
    params = seeded_params(cfg)
    (loss, _), grads = jax.value_and_grad(program.loss_fn, has_aux=True)(
        params, counts, jnp.asarray(X), Y, jnp.ones(len(X)), jax.random.PRNGKey(3), 1)
    return float(loss), grads


def flat(tree) -> dict:
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in jax.tree_util.tree_leaves_with_path(tree)}


@pytest.mark.parametrize("part", list(PAIRS))
def test_each_arch_code_part_changes_the_loss_and_its_gradients(write_config, part):
    without, with_ = PAIRS[part]
    cfg_without = load_model_config(write_config, {**BASE, **without}, "without")
    cfg_with = load_model_config(write_config, {**BASE, **with_}, "with")
    code_without, code_with = naming.arch_code(cfg_without), naming.arch_code(cfg_with)
    assert code_without != code_with
    loss_without, grads_without = loss_and_grads(cfg_without)
    loss_with, grads_with = loss_and_grads(cfg_with)
    assert np.isfinite(loss_without) and np.isfinite(loss_with)
    assert abs(loss_with - loss_without) > 1e-5 * max(1.0, abs(loss_without)), (code_without, code_with)
    g0, g1 = flat(grads_without), flat(grads_with)
    shared = sorted(set(g0) & set(g1))
    differs = [p for p in shared
               if g0[p].shape != g1[p].shape or not np.allclose(g0[p], g1[p], rtol=1e-4, atol=1e-7)]
    only_with = [p for p in set(g1) - set(g0) if np.abs(g1[p]).max() > 0]
    assert differs or only_with, f"{code_with} has the gradients of {code_without}"
    # every parameter the option adds is trained (receives a gradient)
    for path in set(g1) - set(g0):
        assert np.abs(g1[path]).max() > 0, f"{code_with}: {path} gets no gradient"


def test_a_dirichlet_alpha_alone_learns_pi(write_config):
    cfg = load_model_config(write_config, {**BASE, **MIX, "dirichlet_alpha": 3.0}, "dir")
    assert cfg.learnable_pi is True and naming.arch_code(cfg) == "mix10-dir_head_plain"
    _, grads = loss_and_grads(cfg)
    assert np.abs(np.asarray(grads["prior"]["pi_logits"])).max() > 0
    fixed = load_model_config(write_config, {**BASE, **MIX}, "fixed")
    assert fixed.learnable_pi is False
    _, grads = loss_and_grads(fixed)
    assert np.abs(np.asarray(grads["prior"]["pi_logits"])).max() == 0


@pytest.mark.parametrize("layout", ["shared", "decentralized"])
def test_the_gumbel_sample_is_what_the_decoder_sees(write_config, layout):
    """Same parameters and key, two temperatures: the soft Gumbel-softmax sample y = softmax((ℓ + g)/T) changes,
    and so must the reconstruction (through Σ_k y_k e_k, or Σ_k y_k z_k when decentralized)."""
    model = {**BASE, **MIX, "use_gumbel_softmax": True, "use_straight_through_gumbel": False,
             "latent_layout": layout, "decoder_conditioning": "concat" if layout == "shared" else "none"}
    cfg = load_model_config(write_config, model, f"gumbel-{layout}")
    params, net = seeded_params(cfg), build_model(cfg)
    cold, hot = (net.apply({"params": params}, jnp.asarray(X), jax.random.PRNGKey(3), t) for t in (0.3, 3.0))
    assert not np.allclose(cold.selection, hot.selection)
    assert not np.allclose(cold.recon, hot.recon, atol=1e-6)
