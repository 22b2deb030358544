"""The frame around every checkpoint file: MAGIC, the payload's length (8 bytes, big-endian), its SHA-256.

JAX-free, so that reading a run's state (runstate) never loads JAX.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

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
