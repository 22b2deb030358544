"""Evaluation: the metrics (pure numpy functions, each returning a `Status`), the `Predictions` a trained model
hands over, and the evaluate stage that scores one run folder.

May import `ssvae.config`, `ssvae.data` and `ssvae.disk`; never JAX, `ssvae.model`, `ssvae.training`
or `ssvae.results`.
"""
