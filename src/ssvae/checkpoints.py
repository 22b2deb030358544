"""Checkpoint files (flax.serialization msgpack, written atomically).

- `checkpoints/resume.msgpack`: everything a killed run needs to continue exactly: params, optimizer state,
  τ counts, RNG key, the epoch reached, early-stopping state, best params, history and the resume tag.
- `checkpoints/best.msgpack`: what inference needs: the best epoch's params and τ counts, and a little metadata.
- `checkpoints/diverged.msgpack`: the resume layout, written when the loss goes non-finite (for inspection).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from . import runs

RESUME_FORMAT = "ssvae-resume/1"
BEST_FORMAT = "ssvae-best/1"


def _host(tree):
    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


def resume_bytes(*, resume_tag: str, state: Any, best: Any, rng: np.ndarray, meta: dict | str) -> bytes:
    """Serialise a training snapshot; `meta` (epoch, early-stopping state, history, ...) goes in as exact JSON
    (a dict, or its json.dumps text)."""
    payload = {
        "format": RESUME_FORMAT,
        "resume_tag": resume_tag,
        "meta": meta if isinstance(meta, str) else json.dumps(meta),
        "rng": np.asarray(rng),
        "state": serialization.to_state_dict(_host(state)),
        "best": serialization.to_state_dict(_host(best)),
    }
    return serialization.msgpack_serialize(payload)


def save_resume(path: str | Path, **snapshot) -> None:
    runs.write_bytes(path, resume_bytes(**snapshot))


def load_resume(path: str | Path, *, resume_tag: str, state_template: Any, best_template: Any):
    """(meta, state, best, rng) from a resume file written with the same tag; None if absent or another run's."""
    path = Path(path)
    if not path.exists():
        return None
    raw = serialization.msgpack_restore(path.read_bytes())
    if raw.get("format") != RESUME_FORMAT or raw.get("resume_tag") != resume_tag:
        return None
    state = serialization.from_state_dict(state_template, raw["state"])
    best = serialization.from_state_dict(best_template, raw["best"])
    return json.loads(raw["meta"]), state, best, np.asarray(raw["rng"])


def save_best(path: str | Path, *, params: Any, tau_counts: Any, meta: dict) -> None:
    """The best epoch's params and τ counts (None without a τ-classifier), plus metadata as JSON."""
    payload = {
        "format": BEST_FORMAT,
        "meta": json.dumps(meta),
        "params": serialization.to_state_dict(_host(params)),
        "tau_counts": np.asarray(jax.device_get(tau_counts)) if tau_counts is not None else np.zeros((0,), np.float32),
    }
    runs.write_bytes(path, serialization.msgpack_serialize(payload))


def load_best(path: str | Path, *, params_template: Any):
    """(params, tau_counts or None, meta) from best.msgpack."""
    raw = serialization.msgpack_restore(Path(path).read_bytes())
    if raw.get("format") != BEST_FORMAT:
        raise ValueError(f"{path} is not a best-model checkpoint (format {raw.get('format')!r})")
    params = serialization.from_state_dict(params_template, raw["params"])
    counts = np.asarray(raw["tau_counts"])
    return params, (counts if counts.size else None), json.loads(raw["meta"])


class BackgroundWriter:
    """Writes one checkpoint at a time on a worker thread, so saving overlaps the next epoch's computation.

    `submit` waits for the previous write first; `wait` (call it before reading what was written, and before
    returning) re-raises a failed write. A process killed mid-write leaves the previous file (atomic rename)."""

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _run(self, fn, kwargs):
        try:
            fn(**kwargs)
        except BaseException as exc:  # re-raised in the caller's thread by wait()
            self._error = exc

    def submit(self, fn, **kwargs) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(fn, kwargs), daemon=False)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
