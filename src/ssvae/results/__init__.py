"""Run folders and what is read from them: the run list and timestamp ledger, the train lock, the report, its
figures and diagnostics, the comparison across runs and which config keys matter to each.

May import `ssvae.config`, `ssvae.data` and `ssvae.evaluation`; never JAX, `ssvae.model` or `ssvae.training`.
"""
