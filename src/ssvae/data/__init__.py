"""Datasets and splits: the embedded digits and mnist5k sets, MNIST-format files, and the seeded splits.

Owns `datasets` (loading, `Splits`), `splitting` (the train/test split draw) and the shipped label files in
`labels/`. Imports numpy and `ssvae.config`; never JAX.
"""
