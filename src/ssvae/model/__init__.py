"""The JAX model: networks, priors, classifiers, the assembled SSVAE, its losses and parameters, the
deterministic pass, checkpoints, inference from the best checkpoint and the run's random keys.

May import `ssvae.config`, `ssvae.data`, `ssvae.evaluation` (the `Predictions` contract), `ssvae.runtime` and
`ssvae.disk`; never `ssvae.training`, `ssvae.results` or `ssvae.pipeline`.
"""
