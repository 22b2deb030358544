"""Shared by the stage scripts: import the library next to them, and set up JAX jobs before JAX loads.

The scripts put this repository's `src/` first on the import path, so a workflow always runs the library
version it was checked out with (also in a `--sdm conda` environment, which carries only the dependencies).
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ssvae.runtime import compute


def _report_write_faults(kind, exc, tb, previous=sys.excepthook):
    """A full disk or an unwritable results/ ends a stage with one readable paragraph, not a traceback."""
    from ssvae import disk  # only now: numpy must not load before a JAX job has set its threads

    disk.report_write_faults(previous)(kind, exc, tb)


sys.excepthook = _report_write_faults


class OutlivesItsReader:
    """A text stream that goes on when the process reading it is gone: writes after the reader closed its end of the
    pipe go to /dev/null instead of raising BrokenPipeError. A train job writes through `tee`, and a signal to the
    whole process group (`kill -- -PGID`, a scheduler's SIGTERM) can end `tee` first; the job must still save its
    epoch and end as interrupted."""

    def __init__(self, stream):
        self._stream = stream

    def _to_devnull(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return self._stream.write(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()
            self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def run_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--run-dir", required=True, help="results/<name>__<arch>__<ts>: its plan is found from the name")
    return p


def jax_parser(description: str) -> argparse.ArgumentParser:
    p = run_parser(description)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jax-cache", default="auto",
                   help="JAX's persistent compilation cache: a folder, `auto` or `none` (see stages.jax_cache_dir)")
    return p


def setup_jax(args) -> None:
    compute.limit_threads(args.threads, salt=args.run_dir)
    from ssvae.pipeline import stages  # after the thread limit: it imports numpy

    cache = stages.jax_cache_dir(args.jax_cache, results=Path(args.run_dir).parent)
    if cache:
        compute.enable_compilation_cache(cache)


def planned(args) -> tuple[Path, Path]:
    """(validated.json, run.json) of the run folder's plan; a readable message and exit 1 if there is none."""
    from ssvae.pipeline import planning, stages

    run_dir = Path(args.run_dir)
    try:
        return planning.plan_of_run(run_dir.parent, run_dir.name)
    except planning.PlanNotFound as exc:
        stages.fail(str(exc))
