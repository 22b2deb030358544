"""Run one stage script as `python -X importtime _stage_probe.py SCRIPT ARGS...` and record where its time went.

Used by run_overhead.py, for any checkout (it needs nothing from the library): JAX's own monitoring events give
the time spent tracing, lowering and compiling (persistent-cache loads included, they happen in the same
call; wall time, programs compiled side by side counted once), and at exit the totals and the list of imported
top-level packages are written as JSON to the file named by $SSVAE_PROBE_OUT. Import times come from
`-X importtime` on stderr (parsed by run_overhead.py).
"""

import atexit
import builtins
import json
import os
import runpy
import sys
import time

COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
totals = {event: 0.0 for event in COMPILE_EVENTS}
counts = {event: 0 for event in COMPILE_EVENTS}
intervals: list[tuple[float, float]] = []  # (start, end) of every event: compilations may run side by side
start = time.perf_counter()
_original_import = builtins.__import__
_registered = False


def _listener(event, duration, **_):
    if event in totals:
        totals[event] += duration
        counts[event] += 1
        end = time.perf_counter()
        intervals.append((end - duration, end))


def _union(spans) -> float:
    """Seconds covered by at least one interval (wall time spent compiling)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _import(name, *args, **kwargs):
    """Register the listener as soon as JAX's monitoring module exists (before anything can compile)."""
    global _registered
    module = _original_import(name, *args, **kwargs)
    if not _registered and "jax._src.monitoring" in sys.modules:
        monitoring = sys.modules["jax._src.monitoring"]
        if hasattr(monitoring, "register_event_duration_secs_listener"):
            monitoring.register_event_duration_secs_listener(_listener)
            _registered = True
            builtins.__import__ = _original_import
    return module


def _write():
    out = os.environ.get("SSVAE_PROBE_OUT")
    if not out:
        return
    document = {
        "wall_in_process_s": time.perf_counter() - start,
        "compile_s": _union(intervals),
        "compile_summed_s": sum(totals.values()),
        "compile_events": totals,
        "compile_counts": counts,
        "packages": sorted({name.split(".")[0] for name in sys.modules}),
    }
    with open(out, "w") as handle:
        json.dump(document, handle)


builtins.__import__ = _import
atexit.register(_write)
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
runpy.run_path(script, run_name="__main__")
