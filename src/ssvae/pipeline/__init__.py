"""What the Snakefile and the stage scripts call: a config's full validation (`validation`), planning every
experiment of an invocation (`planning`) and the five stages of one experiment as plain functions over files
(`stages`).

The top layer: may import every other package. `planning` runs inside Snakemake's process, so it never
imports JAX.
"""
