"""Run folders and what is read from them: the run list and timestamp ledger, the train lock, the report, its
figures and diagnostics, the comparison across runs and which config keys matter to each.

May import `ssvae.config`, `ssvae.data`, `ssvae.evaluation` and the top-level `naming`, `disk`, `document` and
`text`; never JAX, `ssvae.model`, `ssvae.training` or `ssvae.runtime`.
"""
