"""What a trained model says about a split: one jitted, batched, deterministic pass whose outputs every metric
and plot reuses."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from . import checkpoints, classifiers, losses, priors
from .config import Experiment, ModelConfig
from .model import build_model
from .predictions import Predictions
from .train import Program


class TrainedModel:
    """The best checkpoint of a run, ready to predict and sample.

    pi:  π [K] of a mixture-based prior (uniform for vamp), else None
    tau: τ [K, C] of the τ-classifier, else None
    """

    def __init__(self, cfg: ModelConfig, params, tau_counts: np.ndarray | None, meta: dict):
        self.cfg = cfg
        self.params = jax.device_put(params)
        self.tau_counts = None if tau_counts is None else jnp.asarray(tau_counts)
        self.meta = meta
        self.temperature = float(meta.get("gumbel_temperature", cfg.gumbel_temperature))
        self.model = build_model(cfg)
        self._program = Program(cfg, 1, jax.random.PRNGKey(cfg.random_seed))
        self._chunk = jax.jit(self._predict_chunk)
        self._sample = jax.jit(self._sample_all, static_argnums=(1,))
        log_pi = self._program.log_pi(self.params)
        self.pi = None if log_pi is None else np.asarray(jnp.exp(log_pi))
        self.tau = None if self.tau_counts is None else np.asarray(classifiers.tau_matrix(self.tau_counts))

    def _predict_chunk(self, params, counts, x):
        cfg = self.cfg
        outputs = self.model.apply({"params": params}, x, None, self.temperature)
        tau = None if counts is None else classifiers.tau_matrix(counts)
        terms = losses.per_sample_terms(cfg, outputs, x, jnp.full(x.shape[0], -1, jnp.int32), tau,
                                        self._program.eval_key)
        mean = losses.likelihood_mean(cfg, outputs.recon)
        sigma = outputs.sigma
        if outputs.recon_weights is not None:
            mean = jnp.einsum("bk,bkhw->bhw", outputs.recon_weights, mean)
            if sigma is not None:
                sigma = jnp.sum(outputs.recon_weights * sigma, axis=-1)
        result = {
            "z": outputs.z_mean,
            "z_logvar": outputs.z_logvar,
            "y_prob": losses.class_probabilities(cfg, outputs, tau),
            "responsibilities": outputs.r,
            "recon": mean,
            "sigma": sigma,
            "terms": {"reconstruction": terms["reconstruction"], "kl_z": terms["kl_z"]}
                     | ({"kl_c": terms["kl_c"]} if cfg.is_mixture else {}),
        }
        return result

    def predict(self, x: np.ndarray, batch_size: int = 1024) -> Predictions:
        """One jitted, batched, deterministic pass over images x [N, H, W] (z = μ, no noise, no dropout)."""
        x = np.asarray(x, np.float32)
        n = len(x)
        batch_size = max(1, min(batch_size, n))
        num_chunks = -(-n // batch_size)
        padded = np.concatenate([x, np.zeros((num_chunks * batch_size - n, *x.shape[1:]), np.float32)])
        chunks = [self._chunk(self.params, self.tau_counts, padded[i * batch_size:(i + 1) * batch_size])
                  for i in range(num_chunks)]
        chunks = jax.device_get(chunks)

        def cat(*parts):
            return None if parts[0] is None else np.concatenate(parts)[:n]

        merged = jax.tree_util.tree_map(cat, *chunks, is_leaf=lambda v: v is None)
        return Predictions(z=merged["z"], z_logvar=merged["z_logvar"], y_prob=merged["y_prob"],
                           responsibilities=merged["responsibilities"], recon=merged["recon"],
                           sigma=merged["sigma"], terms=merged["terms"])

    def _sample_all(self, params, n, key):
        cfg = self.cfg
        if not cfg.is_mixture:
            z = jax.random.normal(key, (1, n, cfg.latent_dim))
            components = None
        else:
            k = cfg.num_components
            eps = jax.random.normal(key, (k, n, cfg.latent_dim))
            if cfg.is_vamp:
                mu, logvar = self.model.apply({"params": params}, method="pseudo_posteriors")
                z = mu[:, None] + jnp.exp(0.5 * logvar)[:, None] * eps
            elif cfg.prior_type == "geometric_mog":
                centres = priors.geometric_centres(k, cfg.latent_dim, cfg.geometric_arrangement,
                                                   cfg.geometric_radius)
                z = jnp.asarray(centres)[:, None] + eps
            else:
                z = eps
            components = jnp.repeat(jnp.arange(k), n)
        rows = z.shape[0]
        out, _ = self.model.apply({"params": params}, z.reshape(rows * n, -1), components, method="generate")
        return losses.likelihood_mean(cfg, out).reshape(rows, n, *cfg.input_hw)

    def sample(self, n_per_component: int, seed: int = 0) -> np.ndarray:
        """Images drawn from the prior, decoded to their mean in [0, 1]: [K, n, H, W] for mixture-based priors
        (row k from component k: N(0, I) or N(m_k, I) routed to e_k, or q(z|u_k) for vamp), [1, n, H, W] else."""
        return np.asarray(self._sample(self.params, int(n_per_component), jax.random.PRNGKey(seed)))


def load_model(run_dir: str | Path, experiment: Experiment) -> TrainedModel:
    """The run's best model from `run_dir/checkpoints/best.msgpack`."""
    cfg = experiment.model
    # shapes only: an eager init would compile every initializer op by op (seconds per layer on CPU)
    template = jax.eval_shape(build_model(cfg).init, jax.random.PRNGKey(0),
                              jnp.zeros((1, *cfg.input_hw), jnp.float32))["params"]
    params, counts, meta = checkpoints.load_best(Path(run_dir) / "checkpoints" / "best.msgpack",
                                                 params_template=template)
    return TrainedModel(cfg, params, counts, meta)
