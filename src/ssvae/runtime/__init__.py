"""Process setup: CPU threads chosen before JAX loads (`compute`), and compiling once with a shared
persistent compilation cache (`compiling`).

Imports nothing else from `ssvae`; `compute` must stay importable without numpy or JAX.
"""
