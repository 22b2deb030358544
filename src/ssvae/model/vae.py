"""The SSVAE: encoder, prior, routing over components, decoder and classifier assembled into one Flax module.

One forward pass `SSVAE(cfg).apply({"params": p}, x, key, temperature)` returns `Outputs`; with a key it samples
(z by reparameterisation, Gumbel noise, dropout), without one it is deterministic (z = μ, no noise).

Responsibilities r = q(c|x): softmax of the encoder's component logits for mixture and geometric_mog; for the
VampPrior the components are its pseudo-inputs, r_k = softmax_k(log π_k + log q(z|u_k)) at the latent z of the
pass (the sample when training, μ when deterministic), so the τ-classifier, usage and every component metric
and figure read the same r the prior defines.

How many times the decoder runs per image:
- standard, vamp, and mixture/geometric with the shared layout and no conditioning: once;
- Gumbel-softmax routing: once, on the routed latent Σ_k y_k z_k and embedding Σ_k y_k e_k (y one-hot in the
  forward pass with straight-through);
- otherwise (conditioned decoder or decentralized layout, soft routing): K times, for the exact expectation
  Σ_k r_k log p(x|z_k, c=k) under q(c|x).
"""

from __future__ import annotations

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ssvae.config import ModelConfig
from ssvae.model import classifiers, networks, priors


@flax.struct.dataclass
class Outputs:
    """What one forward pass produces; shapes for a batch of B images, K components, D latent dims."""

    mu: jax.Array                       # [B, D], or [B, K, D] (decentralized)
    logvar: jax.Array                   # same shape as mu
    z: jax.Array                        # [B, D] latent the classifier reads (a sample when training, else the mean)
    z_mean: jax.Array                   # [B, D] posterior mean (routing-weighted for the decentralized layout)
    z_logvar: jax.Array                 # [B, D]
    recon: jax.Array                    # decoder output [B, H, W], or [B, K, H, W] with `recon_weights`
    sigma: jax.Array | None             # heteroscedastic σ [B] or [B, K]
    recon_weights: jax.Array | None     # [B, K] weights of K decoder outputs (= r), None for one output
    logits: jax.Array | None            # component logits ℓ [B, K] (vamp: log r, from the pseudo-inputs at z)
    r: jax.Array | None                 # responsibilities q(c|x) = softmax(ℓ) [B, K]
    selection: jax.Array | None         # routing weights actually used (r, or Gumbel-softmax y) [B, K]
    class_logits: jax.Array | None      # classifier head logits [B, C]
    log_pi: jax.Array | None            # log π [K]
    pseudo_mu: jax.Array | None         # VampPrior: q(z|u_k) means [K, D]
    pseudo_logvar: jax.Array | None


def _weighted(values, weights):
    """Σ_k w_k v_k over the component axis of [B, K, D] values."""
    return jnp.einsum("bk,bkd->bd", weights, values)


def eval_selection(logits, temperature, straight_through: bool):
    """Deterministic routing for evaluation: one_hot(argmax ℓ) with straight-through, else softmax(ℓ/T)."""
    if straight_through:
        return jax.nn.one_hot(jnp.argmax(logits, axis=-1), logits.shape[-1], dtype=logits.dtype)
    return jax.nn.softmax(logits / temperature, axis=-1)


class SSVAE(nn.Module):
    """Semi-supervised VAE over the whole model family described in docs/models.md."""

    cfg: ModelConfig

    def setup(self):
        cfg = self.cfg
        mixture = cfg.has_component_embeddings
        self.encoder = networks.Encoder(
            encoder_type=cfg.encoder_type,
            hidden_dims=tuple(cfg.hidden_dims),
            latent_dim=cfg.latent_dim,
            num_components=cfg.num_components if mixture else 0,  # vamp: the pseudo-inputs are the components
            decentralized=mixture and cfg.latent_layout == "decentralized",
        )
        self.decoder = networks.Decoder(
            decoder_type=cfg.decoder_type,
            hidden_dims=tuple(cfg.hidden_dims),
            image_hw=tuple(cfg.input_hw),
            conditioning=cfg.decoder_conditioning if mixture else "none",
            heteroscedastic=cfg.use_heteroscedastic_decoder,
            sigma_min=cfg.sigma_min,
            sigma_max=cfg.sigma_max,
        )
        if not cfg.use_tau_classifier:
            self.classifier = classifiers.ClassifierHead(tuple(cfg.hidden_dims), cfg.num_classes, cfg.dropout_rate)
        if mixture:
            self.prior = priors.MixturePrior(cfg.num_components, cfg.component_embedding_dim, cfg.learns_pi)
        elif cfg.is_vamp:
            self.pseudo = priors.VampPseudoInputs(cfg.num_components, tuple(cfg.input_hw))

    @property
    def _mixture(self) -> bool:
        return self.cfg.has_component_embeddings

    @property
    def _decentralized(self) -> bool:
        return self._mixture and self.cfg.latent_layout == "decentralized"

    @property
    def _conditioned(self) -> bool:
        return self._mixture and self.cfg.decoder_conditioning != "none"

    def __call__(self, x, key=None, temperature=1.0) -> Outputs:
        cfg = self.cfg
        training = key is not None
        if training:
            key_z, key_gumbel, key_dropout = jax.random.split(key, 3)
        mu, logvar, logits = self.encoder(x)
        z_all = priors.reparameterize(key_z, mu, logvar) if training else mu
        r = selection = log_pi = pseudo_mu = pseudo_logvar = recon_weights = None
        z_mean, z_logvar, z = mu, logvar, z_all
        if cfg.is_vamp:
            pseudo_mu, pseudo_logvar, _ = self.encoder(self.pseudo())
            log_pi = jnp.full((cfg.num_components,), -np.log(cfg.num_components), jnp.float32)
            logits = priors.vamp_log_responsibilities(z, log_pi, pseudo_mu, pseudo_logvar)
        if cfg.is_mixture:
            r = jax.nn.softmax(logits, axis=-1)
            selection = r
        if not self._mixture:
            recon, sigma = self.decoder(z)
        else:
            log_pi, embeddings = self.prior()
            if cfg.use_gumbel_softmax:
                if training:
                    selection = priors.gumbel_softmax(key_gumbel, logits, temperature,
                                                      cfg.use_straight_through_gumbel)
                else:
                    selection = eval_selection(logits, temperature, cfg.use_straight_through_gumbel)
            if self._decentralized:
                z = _weighted(z_all, selection)
                z_mean, z_logvar = _weighted(mu, selection), _weighted(logvar, selection)
            if cfg.use_gumbel_softmax or not (self._decentralized or self._conditioned):
                e = selection @ embeddings if self._conditioned else None
                recon, sigma = self.decoder(z, e)
            else:
                batch, k = r.shape
                z_flat = z_all if self._decentralized else jnp.broadcast_to(z[:, None], (batch, k, z.shape[-1]))
                e_flat = jnp.tile(embeddings, (batch, 1)) if self._conditioned else None
                recon, sigma = self.decoder(z_flat.reshape(batch * k, -1), e_flat)
                recon = recon.reshape(batch, k, *recon.shape[1:])
                sigma = None if sigma is None else sigma.reshape(batch, k)
                recon_weights = r
        class_logits = None
        if not cfg.use_tau_classifier:
            class_logits = self.classifier(z, key_dropout if training else None)
        return Outputs(mu=mu, logvar=logvar, z=z, z_mean=z_mean, z_logvar=z_logvar, recon=recon, sigma=sigma,
                       recon_weights=recon_weights, logits=logits, r=r, selection=selection,
                       class_logits=class_logits, log_pi=log_pi, pseudo_mu=pseudo_mu, pseudo_logvar=pseudo_logvar)

    def generate(self, z, component=None):
        """Decoder output for latents z [N, D] routed to components `component` [N] (ignored without conditioning)."""
        e = None
        if self._conditioned:
            _, embeddings = self.prior()
            e = embeddings[component]
        return self.decoder(z, e)

    def pseudo_posteriors(self):
        """VampPrior components q(z|u_k): (μ_k, logσ²_k), each [K, D]."""
        mu, logvar, _ = self.encoder(self.pseudo())
        return mu, logvar

    def log_pi(self):
        """log π [K] of a mixture or geometric prior."""
        return self.prior.log_pi()


def build_model(cfg: ModelConfig) -> SSVAE:
    """The Flax module for a model config."""
    return SSVAE(cfg)


def init_params(cfg: ModelConfig, key, x_train: np.ndarray | None = None):
    """Initial parameters; VampPrior pseudo-inputs start from training images (k-means centres or random ones)."""
    model = build_model(cfg)
    dummy = jnp.zeros((2, *cfg.input_hw), jnp.float32)
    # Initialisation runs once: compile it without backend optimisation or fusion emitters (about 5x faster).
    init = jax.jit(model.init).lower(key, dummy).compile(
        compiler_options={"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False})
    params = init(key, dummy)["params"]
    if cfg.is_vamp:
        if x_train is None:
            raise ValueError("the VampPrior initialises its pseudo-inputs from training data; pass x_train")
        pseudo = priors.vamp_init_pseudo_inputs(x_train, cfg.num_components, cfg.vamp_pseudo_init_method,
                                                cfg.random_seed)
        params = flax.core.unfreeze(params)
        params["pseudo"]["pseudo_inputs"] = jnp.asarray(pseudo)
    return params
