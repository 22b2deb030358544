"""Run folders: atomic writes, strict JSON, provenance, the timestamp ledger and the list of existing runs."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import math
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from . import __version__, naming

SCHEMA_VERSION = 1
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

    `durable=False` skips the fsync, for files that are recomputed whenever they are lost (planning files).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for colleagues too
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | Path, text: str, durable: bool = True) -> None:
    write_bytes(path, text.encode(), durable=durable)


def write_json(path: str | Path, obj: Any, durable: bool = True) -> None:
    """Strict JSON (no bare NaN), indented, written atomically."""
    write_text(path, json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n", durable=durable)


def write_yaml(path: str | Path, obj: Any) -> None:
    write_text(path, yaml.safe_dump(jsonable(obj), sort_keys=False, default_flow_style=None, width=100))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def provenance(code_dir: str | Path | None = None) -> dict:
    """Where and with what code a stage ran: git commit and dirty flag, package versions, host, device."""
    code_dir = Path(code_dir or Path(__file__).resolve().parent)
    commit = _git(["rev-parse", "HEAD"], code_dir)
    status = _git(["status", "--porcelain", "--untracked-files=no"], code_dir)
    device = None
    if "jax" in sys.modules:
        import jax

        device = str(jax.devices()[0].platform)
    return {
        "git_commit": commit,
        "git_dirty": bool(status) if status is not None else None,
        "ssvae_version": __version__,
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in ("jax", "jaxlib", "flax", "optax", "numpy", "snakemake")},
        "host": socket.gethostname(),
        "device": device,
    }


# The ledger maps a run identity (hash of data + model) to the timestamp it was first planned with, per name.
# It is deliberately not a Snakemake output: outputs are deleted before their job reruns. It can always be
# rebuilt from the run folders, whose config.yaml records the identity they were trained for.

def _ledger_path(results: Path, name: str) -> Path:
    return results / ".ledger" / f"{name}.json"


@contextlib.contextmanager
def locked(path: str | Path):
    """An exclusive lock on `path` + `.lock` (other processes and invocations wait for it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


_IDENTITY_LINE = re.compile(r"^identity: ['\"]?([0-9a-f]+)['\"]?\s*$", re.M)


def recorded_identity(run_dir: str | Path) -> str | None:
    """The identity a run folder was trained for, from the top-level `identity:` of its config.yaml."""
    try:
        text = (Path(run_dir) / "config.yaml").read_text()
    except (OSError, UnicodeDecodeError):
        return None
    match = _IDENTITY_LINE.search(text)
    return match.group(1) if match else None


def ledger_from_folders(results: str | Path, name: str) -> dict:
    """The ledger of one name as its run folders record it: identity -> {ts, arch} (the latest folder wins)."""
    ledger = {}
    for folder in sorted(Path(results).glob(f"{name}__*__*")):
        try:
            run_id = naming.RunId.parse(folder.name)
        except naming.NamingError:
            continue
        identity = recorded_identity(folder) if run_id.name == name else None
        if identity:
            ledger[identity] = {"ts": run_id.ts, "arch": run_id.arch, "recovered_from": folder.name}
    return ledger


def rebuild_ledger(results: str | Path) -> dict[str, int]:
    """Write every name's ledger from the run folders' config.yaml (entries already there are kept)."""
    results = Path(results)
    names = set()
    for folder in results.glob("*__*__*"):
        with contextlib.suppress(naming.NamingError):
            names.add(naming.RunId.parse(folder.name).name)
    counts = {}
    for name in sorted(names):
        path = _ledger_path(results, name)
        with locked(path):
            ledger = _read_ledger(path)
            recovered = {k: v for k, v in ledger_from_folders(results, name).items() if k not in ledger}
            if recovered:
                write_json(path, {**ledger, **recovered})
            counts[name] = len(recovered)
    return counts


def _read_ledger(path: Path) -> dict:
    try:
        ledger = read_json(path)
    except FileNotFoundError:
        return {}
    return ledger if isinstance(ledger, dict) else {}


def mint_timestamp(results: str | Path, name: str, arch: str, identity: str, now: dt.datetime | None = None) -> str:
    """The run's timestamp: the one recorded for this identity, or a new one (local time) recorded now.

    An identity missing from the ledger (lost, or `results/*` copied without its dot-folders) is first looked
    for in the run folders of the same name, so an existing run is found again instead of trained anew.
    """
    results = Path(results)
    path = _ledger_path(results, name)
    with locked(path):
        ledger = _read_ledger(path)
        if identity in ledger:
            return ledger[identity]["ts"]
        recovered = {k: v for k, v in ledger_from_folders(results, name).items() if k not in ledger}
        if identity in recovered:
            write_json(path, {**ledger, **recovered})
            return recovered[identity]["ts"]
        moment = (now or dt.datetime.now()).replace(microsecond=0)
        taken = {entry["ts"] for entry in ledger.values()}
        while True:
            ts = moment.strftime(naming.TS_FORMAT)
            if ts not in taken and not (results / str(naming.RunId(name, arch, ts))).exists():
                break
            moment += dt.timedelta(seconds=1)
        ledger[identity] = {"ts": ts, "arch": arch, "planned": dt.datetime.now().isoformat(timespec="seconds")}
        write_json(path, ledger)
        return ts


def list_runs(results: str | Path) -> list[dict]:
    """Every run folder under `results`, parsed from its name and, where present, its summary and metrics."""
    rows = []
    for folder in sorted(Path(results).glob("*__*__*")):
        if not folder.is_dir():
            continue
        try:
            run_id = naming.RunId.parse(folder.name)
        except naming.NamingError:
            continue
        row = {"run_id": folder.name, "name": run_id.name, "arch": run_id.arch, "ts": run_id.ts,
               "path": str(folder), "status": "planned"}
        summary_path = folder / "summary.json"
        if (folder / "train_failed.json").exists():
            row["status"] = "failed"
            row["reason"] = read_json(folder / "train_failed.json").get("reason")
        elif summary_path.exists():
            summary = read_json(summary_path)
            row["status"] = summary.get("status", "unknown")
            row["summary"] = summary
        elif (folder / "metrics.json").exists():
            row["status"] = "evaluated"
        elif (folder / "train.json").exists():
            row["status"] = "trained"
        elif (folder / "checkpoints").exists():
            row["status"] = "training"
        rows.append(row)
    return rows
