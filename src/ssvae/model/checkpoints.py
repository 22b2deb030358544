"""Checkpoint files (flax.serialization msgpack, written atomically, with a length and checksum header).

- `checkpoints/resume.msgpack`: everything a killed run needs to continue exactly: parameters, optimizer state,
  τ counts, the epoch reached, early-stopping state, best parameters, history and the resume tag. Each write
  first moves the previous one to `resume.prev.msgpack`, so a damaged latest file costs one epoch, not the run.
- `checkpoints/best.msgpack`: what inference needs: the best epoch's parameters and τ counts, and a little
  metadata.
- `checkpoints/diverged.msgpack`: the resume layout, written when the loss goes non-finite (for inspection).

Every file starts with MAGIC, the payload's length (8 bytes, big-endian) and its SHA-256, so a truncated or
corrupted file is recognised and named (`CheckpointError`) instead of failing inside msgpack. Files written
before the header existed (plain msgpack) are still read.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from ssvae import disk
from ssvae.disk import CheckpointError, framed, unframed

RESUME_FORMAT = "ssvae-resume/2"  # /2: parameters in their flat ParamGroups layout
BEST_FORMAT = "ssvae-best/1"


def _host(tree):
    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


def read_checked(path: str | Path) -> dict:
    """The msgpack document of a checkpoint file, after checking its length and checksum."""
    path = Path(path)
    payload = unframed(path.read_bytes(), path)
    try:
        raw = serialization.msgpack_restore(payload)
    except Exception as exc:  # msgpack raises several types for damaged input
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path} is not a checkpoint (a {type(raw).__name__}, not a mapping)")
    return raw


def resume_bytes(*, resume_tag: str, state: Any, best: Any, meta: dict | str) -> bytes:
    """Serialise a training snapshot; `meta` (epoch, early-stopping state, history, ...) goes in as exact JSON
    (a dict, or its json.dumps text)."""
    payload = {
        "format": RESUME_FORMAT,
        "resume_tag": resume_tag,
        "meta": meta if isinstance(meta, str) else json.dumps(meta),
        "state": serialization.to_state_dict(_host(state)),
        "best": serialization.to_state_dict(_host(best)),
    }
    return framed(serialization.msgpack_serialize(payload))


def previous_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".prev" + path.suffix)


def save_resume(path: str | Path, *, keep_previous: bool = True, **snapshot) -> None:
    """Write a resume checkpoint atomically; the one it replaces becomes `<name>.prev.msgpack`."""
    path = Path(path)
    data = resume_bytes(**snapshot)
    if keep_previous and path.exists():
        os.replace(path, previous_path(path))
    disk.write_bytes(path, data)


def load_resume(path: str | Path, *, resume_tag: str, state_template: Any, best_template: Any, log=print):
    """(meta, state, best, the file used) from the newest usable resume file written under `resume_tag`, or None.

    Tries `path`, then the previous one; a damaged file is skipped with a warning naming it (resuming one epoch
    earlier gives the same final numbers). A file of another run (tag) or another format is not used."""
    path = Path(path)
    for candidate in (path, previous_path(path)):
        if not candidate.exists():
            continue
        try:
            raw = read_checked(candidate)
        except (CheckpointError, OSError) as exc:
            log(f"warning: {exc}; not resuming from it")
            continue
        if raw.get("resume_tag") != resume_tag:
            log(f"ignoring {candidate}: written for another run (resume tag differs)")
            return None
        if raw.get("format") != RESUME_FORMAT:
            log(f"ignoring {candidate}: written by another version of the training code "
                f"(format {raw.get('format')!r}, this code writes {RESUME_FORMAT!r})")
            return None
        try:
            state = serialization.from_state_dict(state_template, raw["state"])
            best = serialization.from_state_dict(best_template, raw["best"])
            meta = json.loads(raw["meta"])
        except (KeyError, ValueError, TypeError) as exc:
            log(f"warning: {candidate} does not fit this model ({type(exc).__name__}: {exc}); not resuming from it")
            continue
        return meta, state, best, candidate
    return None


def save_best(path: str | Path, *, params: Any, tau_counts: Any, meta: dict) -> None:
    """The best epoch's params (the model's tree) and τ counts (None without a τ-classifier), plus metadata."""
    payload = {
        "format": BEST_FORMAT,
        "meta": json.dumps(meta),
        "params": serialization.to_state_dict(_host(params)),
        "tau_counts": np.asarray(jax.device_get(tau_counts)) if tau_counts is not None else np.zeros((0,), np.float32),
    }
    disk.write_bytes(path, framed(serialization.msgpack_serialize(payload)))


def load_best(path: str | Path, *, params_template: Any):
    """(params, tau_counts or None, meta) from best.msgpack; CheckpointError names what is wrong with it."""
    raw = read_checked(path)
    if raw.get("format") != BEST_FORMAT:
        raise CheckpointError(f"{path} is not a best-model checkpoint (format {raw.get('format')!r})")
    try:
        params = serialization.from_state_dict(params_template, raw["params"])
        counts = np.asarray(raw["tau_counts"])
        meta = json.loads(raw["meta"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} does not hold this model's parameters ({type(exc).__name__}: {exc})") from exc
    _check_shapes(path, params, params_template)
    return params, (counts if counts.size else None), meta


def _check_shapes(path, params, template) -> None:
    got = [np.shape(a) for a in jax.tree_util.tree_leaves(params)]
    want = [tuple(t.shape) for t in jax.tree_util.tree_leaves(template)]
    if got != want:
        raise CheckpointError(f"{path} holds parameters of other shapes than this model's")


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
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread by wait()
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
