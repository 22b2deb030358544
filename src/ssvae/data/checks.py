"""Checks of the image files at `data.path`, made by validate_config before any work starts.

MNIST and Fashion-MNIST come as four IDX files (each optionally gzipped) in a folder, or as one `.npz` with the
arrays x_train, y_train, x_test, y_test. Everything a damaged or foreign file can get wrong is looked for here,
so that it never reaches training: a wrong IDX header (magic number, element type, dimensions), a truncated or
corrupt `.gz`, a file shorter or longer than its header says, images that are not 28x28, images and labels that
disagree in count, labels outside the classes, pixels outside 0..255 (bytes) or 0..1 (floats), NaN or infinite
pixels. Every problem names the file and what is wrong with it.

A file is read once per fingerprint (its path, size and modification time): the verdict is kept in memory and
in a small cache folder (`$XDG_CACHE_HOME/ssvae/data-checks`, `SSVAE_CACHE` overrides), so planning thousands of
configs on one large dataset reads it once, and again only after the file changes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from pathlib import Path

import numpy as np

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IMAGE_HW = (28, 28)
CHECK_VERSION = 1  # raise when the checks change: cached verdicts of an earlier version are not used

# IDX element types (the third byte of the magic number): only unsigned bytes hold MNIST pixels and labels.
_IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float",
              0x0E: "double"}

_memory: dict[str, list[str]] = {}


def _cache_dir() -> Path:
    root = os.environ.get("SSVAE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ssvae")
    return Path(root) / "data-checks"


def fingerprint(paths: list[Path]) -> str:
    """Path, size and modification time of each file: changes whenever a file is replaced or rewritten."""
    digest = hashlib.sha256(f"v{CHECK_VERSION}".encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _cached(key: str, compute) -> list[str]:
    if key in _memory:
        return _memory[key]
    cache = _cache_dir() / f"{key}.json"
    try:
        problems = json.loads(cache.read_text())["problems"]
        if isinstance(problems, list):
            _memory[key] = problems
            return problems
    except (OSError, ValueError, KeyError, TypeError):
        pass
    problems = compute()
    _memory[key] = problems
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"problems": problems}))
        os.replace(tmp, cache)
    except OSError:
        pass  # no cache folder: the check just runs again next time
    return problems


def _read_raw(path: Path) -> tuple[bytes | None, str | None]:
    """The file's bytes (decompressed for .gz), or why they cannot be read."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read(), None
        return path.read_bytes(), None
    except EOFError:
        return None, f"{path}: the .gz file ends early (truncated: an interrupted download?); download it again"
    except (gzip.BadGzipFile, zlib.error) as exc:
        return None, f"{path}: not a readable .gz file ({exc}); download it again"
    except OSError as exc:
        return None, f"{path}: cannot be read ({exc.strerror or exc})"


def read_idx(path: Path) -> tuple[np.ndarray | None, str | None]:
    """An IDX file's array of unsigned bytes, or the problem with the file."""
    raw, problem = _read_raw(path)
    if raw is None:
        return None, problem or f"{path}: cannot be read"
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        return None, f"{path}: not an IDX file (it does not start with the IDX magic number 00 00 08 0N)"
    kind, ndim = raw[2], raw[3]
    if kind != 0x08:
        return None, (f"{path}: an IDX file of {_IDX_TYPES.get(kind, f'unknown type 0x{kind:02x}')}s; MNIST files "
                      "hold unsigned bytes (magic 00 00 08 0N)")
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        return None, f"{path}: the IDX header is cut short ({len(raw)} bytes, {ndim} dimensions)"
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        how = "truncated" if len(raw) < expected else f"{len(raw) - expected:,} bytes too many"
        return None, (f"{path}: holds {len(raw):,} bytes, but its header (dimensions {' x '.join(map(str, dims))}) "
                      f"promises {expected:,} ({how})")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims), None


def _idx_file(folder: Path, stem: str) -> Path | None:
    return next((c for c in (folder / f"{stem}.gz", folder / stem) if c.is_file()), None)


def _check_images(where: str, x: np.ndarray) -> list[str]:
    problems: list[str] = []
    if x.ndim == 2 and x.shape[1] == IMAGE_HW[0] * IMAGE_HW[1]:
        pass
    elif x.ndim != 3 or tuple(x.shape[1:]) != IMAGE_HW:
        return [f"{where}: images of shape {' x '.join(map(str, x.shape[1:])) or 'scalar'} "
                f"({x.ndim} dimensions); expected N x 28 x 28 (or N x 784)"]
    if len(x) == 0:
        return [f"{where}: holds no images"]
    if x.dtype.kind == "u" and x.dtype.itemsize == 1:
        return problems
    if x.dtype.kind in "iu":
        low, high = int(x.min()), int(x.max())
        if low < 0 or high > 255:
            problems.append(f"{where}: integer pixels from {low} to {high}; expected 0..255")
        return problems
    if x.dtype.kind != "f":
        return [f"{where}: pixels of type {x.dtype}; expected unsigned bytes (0..255) or floats in 0..1"]
    finite = np.isfinite(x)
    if not finite.all():
        bad = int((~finite).sum())
        kinds = " and ".join(k for k, m in (("NaN", np.isnan(x).any()), ("infinite", np.isinf(x).any())) if m)
        return [f"{where}: {bad:,} pixel(s) are {kinds}; every pixel must be a finite number"]
    lowest, highest = float(x.min()), float(x.max())
    if lowest < 0 or highest > 1:
        problems.append(f"{where}: float pixels from {lowest:g} to {highest:g}; floats must lie in 0..1 (store bytes "
                        "0..255, or divide by 255)")
    return problems


def _check_labels(where: str, y: np.ndarray, classes: int) -> list[str]:
    if y.ndim != 1:
        return [f"{where}: labels of shape {' x '.join(map(str, y.shape))}; expected one label per image (N)"]
    if len(y) == 0:
        return [f"{where}: holds no labels"]
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            return [f"{where}: labels that are not whole numbers; expected class labels 0..{classes - 1}"]
    elif y.dtype.kind not in "iu":
        return [f"{where}: labels of type {y.dtype}; expected class labels 0..{classes - 1}"]
    low, high = y.min(), y.max()
    if low < 0 or high >= classes:
        outside = np.unique(y[(y < 0) | (y >= classes)])[:5]
        return [f"{where}: labels outside the {classes} classes (e.g. {', '.join(str(v) for v in outside.tolist())}); "
                f"expected 0..{classes - 1}"]
    return []


def _check_arrays(arrays: dict[str, np.ndarray], where: dict[str, str], classes: int) -> list[str]:
    problems = []
    for split in ("train", "test"):
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        image_problems = _check_images(where[f"x_{split}"], x) if x is not None else []
        label_problems = _check_labels(where[f"y_{split}"], y, classes) if y is not None else []
        problems += image_problems + label_problems
        if x is not None and y is not None and not image_problems and not label_problems and len(x) != len(y):
            problems.append(f"{where[f'x_{split}']} holds {len(x):,} images but {where[f'y_{split}']} holds "
                            f"{len(y):,} labels; they must agree")
    return problems


def _check_folder(folder: Path, files: dict[str, Path], classes: int) -> list[str]:
    arrays: dict[str, np.ndarray] = {}
    problems: list[str] = []
    for key, path in files.items():
        array, problem = read_idx(path)
        if array is None:
            problems.append(problem or f"{path}: cannot be read")
        else:
            arrays[key] = array
    return problems + _check_arrays(arrays, {key: str(path) for key, path in files.items()}, classes)


def _check_npz(path: Path, classes: int) -> list[str]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in IDX_FILES if key not in npz.files]
            if missing:
                return [f"{path}: lacks {', '.join(missing)} (an .npz needs the arrays x_train, y_train, x_test, "
                        "y_test)"]
            arrays = {key: npz[key] for key in IDX_FILES}
    except Exception as exc:  # noqa: BLE001 - numpy and zipfile raise many types for a damaged archive
        return [f"{path}: not a readable .npz file ({type(exc).__name__}: {exc}); write it again with numpy.savez"]
    return _check_arrays(arrays, {key: f"{path} [{key}]" for key in IDX_FILES}, classes)


def problems(path: str | Path, classes: int = 10) -> list[str]:
    """Everything wrong with the dataset files at `path` (a folder of IDX files or an .npz); [] when they are fine.

    Missing files are reported by name; the files that exist are read (once per fingerprint) and checked."""
    location = Path(path).expanduser()
    if location.is_dir():
        found = {key: _idx_file(location, stem) for key, stem in IDX_FILES.items()}
        missing = [f"{IDX_FILES[key]}[.gz]" for key, path in found.items() if path is None]
        if missing:
            return [f"{location}: lacks {', '.join(missing)}"]
        files = {key: path for key, path in found.items() if path is not None}
        return _cached(fingerprint(list(files.values())) + f"-{classes}",
                       lambda: _check_folder(location, files, classes))
    if location.is_file() and location.suffix == ".npz":
        return _cached(fingerprint([location]) + f"-{classes}", lambda: _check_npz(location, classes))
    if not location.exists():
        return [f"{location}: no such file or folder"]
    return [f"{location}: neither a folder of IDX files nor an .npz file"]
