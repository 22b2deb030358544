"""Process setup before JAX is imported: how many CPU threads a job may use, and the shared compilation cache."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def limit_threads(threads: int, salt: str = "") -> list[int]:
    """Pin this process to `threads` CPUs so XLA sizes its thread pool to match; returns the CPUs used.

    XLA reads the number of schedulable CPUs (the affinity mask) when JAX starts, so this must run before
    `import jax`. Jobs running side by side start at different CPUs (chosen by `salt`) to spread the load;
    under SLURM the mask is the allocation already, and a request at least that large changes nothing.
    """
    allowed = sorted(os.sched_getaffinity(0))
    threads = max(1, int(threads))
    if threads >= len(allowed):
        return allowed
    start = int(hashlib.sha256(salt.encode()).hexdigest(), 16) % len(allowed)
    chosen = [allowed[(start + i) % len(allowed)] for i in range(threads)]
    os.sched_setaffinity(0, chosen)
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()
    return chosen


def enable_compilation_cache(cache_dir: str | Path) -> None:
    """Share JAX's persistent compilation cache between jobs (each job otherwise recompiles the same model)."""
    import jax

    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
