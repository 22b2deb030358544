"""Atomic file writes, strict JSON, what to say when a write fails (a full disk, an unwritable folder), and the
length-and-checksum frame of checkpoint files."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

_UMASK = os.umask(0)
os.umask(_UMASK)


def jsonable(obj: Any) -> Any:
    """Plain JSON types only: numpy scalars and arrays become Python values, NaN and inf become None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_bytes(path: str | Path, data: bytes, durable: bool = True) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file.

    On any failure the temp file is removed and the file at `path` is as it was; an OSError names `path`.
    `durable=False` skips the fsync, for files that are recomputed whenever they are lost (planning files).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, exc.filename or str(path)) from exc
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for colleagues too
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not exc.filename:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def write_text(path: str | Path, text: str, durable: bool = True) -> None:
    write_bytes(path, text.encode(), durable=durable)


def write_json(path: str | Path, obj: Any, durable: bool = True) -> None:
    """Strict JSON (no bare NaN), indented, written atomically."""
    write_text(path, json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n", durable=durable)


def write_yaml(path: str | Path, obj: Any) -> None:
    write_text(path, yaml.safe_dump(jsonable(obj), sort_keys=False, default_flow_style=None, width=100))


# Write failures that come from outside the program, and what the user does about each.
_FULL = "free space on that file system (or give results/ a roomier home), then run snakemake again"
_LOCKED = "make results/ writable (its owner, permissions or mount), then run snakemake again"
WRITE_FAULTS = {
    errno.ENOSPC: ("the disk is full", _FULL),
    errno.EDQUOT: ("the disk quota is used up", _FULL),
    errno.EFBIG: ("the file is larger than the file system allows", _FULL),
    errno.EROFS: ("the file system is read-only", _LOCKED),
    errno.EACCES: ("permission denied", _LOCKED),
    errno.EPERM: ("operation not permitted", _LOCKED),
}


def write_fault(exc: BaseException | None) -> OSError | None:
    """The full-disk or unwritable-folder OSError behind `exc` (itself, or one it was raised from)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in WRITE_FAULTS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def write_fault_message(exc: OSError) -> str:
    """One paragraph: which path could not be written, why, that nothing was half-written, what to do."""
    reason, remedy = WRITE_FAULTS[exc.errno or 0]
    where = exc.filename or "a file under results/"
    return (f"cannot write {where}: {reason} ({exc.strerror}). Nothing was half-written: files are written "
            f"to a temp file and renamed, and finished run folders are untouched. To recover: {remedy}; "
            "training resumes from its last checkpoint.")


def report_write_faults(previous_hook=sys.excepthook):
    """An excepthook (for the stage scripts) that turns a write fault into its message instead of a traceback."""

    def hook(kind, exc, tb):
        fault = write_fault(exc)
        if fault is None:
            previous_hook(kind, exc, tb)
            return
        print(write_fault_message(fault), file=sys.stderr, flush=True)

    return hook


# The JSON files the tools read back (summaries, metrics, plans, ledgers) are far smaller than this.
MAX_READ_BYTES = 64 * 2**20


def read_regular(path: str | Path, limit: int = MAX_READ_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Anything else under results/ (a FIFO, a device, a
    symlink to one, a huge file) is an OSError naming the path: never waited on, never read into memory."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if info.st_size > limit:
            raise OSError(errno.EINVAL, f"over {limit:,} bytes", str(path))
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise OSError(errno.EINVAL, f"over {limit:,} bytes", str(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_json(path: str | Path) -> Any:
    return json.loads(read_regular(path).decode("utf-8"))


def read_json_or_reason(path: str | Path) -> tuple[Any, str | None]:
    """(document, None), or (None, why it cannot be read) for a file that is not readable, UTF-8, JSON."""
    try:
        return json.loads(read_regular(path).decode("utf-8")), None
    except FileNotFoundError:
        return None, f"{Path(path).name} is missing"
    except OSError as exc:
        return None, f"{Path(path).name} cannot be read ({exc.strerror or exc})"
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, f"{Path(path).name} is not valid JSON ({type(exc).__name__}: {str(exc)[:120]})"


# The frame around every checkpoint file: MAGIC, the payload's length (8 bytes, big-endian), its SHA-256. Here,
# below the model and the results, so that reading a run's state (results.runstate) never loads JAX.

MAGIC = b"SSVAE-CHECKPOINT\n"
HEADER = len(MAGIC) + 8 + 32


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used: truncated, corrupted, or not a checkpoint; the message names it."""


def framed(payload: bytes) -> bytes:
    """MAGIC + len(payload) + sha256(payload) + payload."""
    return MAGIC + len(payload).to_bytes(8, "big") + hashlib.sha256(payload).digest() + payload


def unframed(data: bytes, path: str | Path) -> bytes:
    """The payload of a framed file after checking its length and checksum; unframed data (files written before
    the frame existed) is returned as it is."""
    if not data.startswith(MAGIC):
        return data
    if len(data) < HEADER:
        raise CheckpointError(f"{path} is truncated ({len(data)} bytes, not even a complete header)")
    length = int.from_bytes(data[len(MAGIC):len(MAGIC) + 8], "big")
    digest = data[len(MAGIC) + 8:HEADER]
    payload = data[HEADER:]
    if len(payload) != length:
        raise CheckpointError(f"{path} is truncated ({len(payload)} of {length} bytes)"
                              if len(payload) < length else f"{path} has {len(payload) - length} bytes too many")
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(f"{path} is corrupted (its checksum does not match its contents)")
    return payload
