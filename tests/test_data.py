"""Data: embedded datasets, disjoint splits, stratified labels, no sampling with replacement, file formats."""

import gzip

import numpy as np
import pytest

from ssvae import config
from ssvae.data import datasets


def data_cfg(**overrides):
    values = {**config.defaults()["data"], "dataset": "digits", **overrides}
    return config.DataConfig(**values)


def test_digits_splits_are_disjoint_and_stratified():
    splits = datasets.load_splits(data_cfg(num_labeled=50))
    assert splits.image_hw == (8, 8)
    assert splits.x_train.dtype == np.float32 and 0 <= splits.x_train.min() and splits.x_train.max() <= 1
    n = len(splits.x_train) + len(splits.x_val) + len(splits.x_test)
    assert n == 1797
    rows = {row.tobytes() for part in (splits.x_train, splits.x_val, splits.x_test) for row in part}
    assert len(rows) >= n - 5  # digits has a handful of duplicate images; the splits themselves never repeat rows
    assert np.bincount(splits.y_train[splits.labeled], minlength=10).tolist() == [5] * 10
    assert splits.describe()["num_labeled"] == 50


def test_test_split_does_not_depend_on_data_seed():
    a = datasets.load_splits(data_cfg(seed=1))
    b = datasets.load_splits(data_cfg(seed=2))
    assert np.array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_train, b.x_train)
    assert a.fingerprint != b.fingerprint
    assert datasets.load_splits(data_cfg(seed=1)).fingerprint == a.fingerprint


def test_num_samples_draws_without_replacement():
    splits = datasets.load_splits(data_cfg(num_samples=300, val_split=0.2))
    assert len(splits.x_train) + len(splits.x_val) == 300
    with pytest.raises(datasets.DataError, match="exceeds"):
        datasets.load_splits(data_cfg(num_samples=5000))


def test_mnist5k_is_shuffled_before_splitting():
    splits = datasets.load_splits(config.DataConfig(**config.defaults()["data"]))
    assert splits.image_hw == (28, 28)
    assert len(splits.x_test) == 1000
    assert np.bincount(splits.y_test).tolist() == [100] * 10
    assert len(np.unique(splits.y_train[:50])) > 5


def _fake_mnist(rng, n):
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())


def test_idx_folder_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    x_train, y_train = _fake_mnist(rng, 200)
    x_test, y_test = _fake_mnist(rng, 50)
    folder = tmp_path / "idx"
    folder.mkdir()
    for stem, array in [("train-images-idx3-ubyte", x_train), ("train-labels-idx1-ubyte", y_train),
                        ("t10k-images-idx3-ubyte", x_test), ("t10k-labels-idx1-ubyte", y_test)]:
        _write_idx(folder / f"{stem}.gz", array)
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    for path in (folder, npz):
        splits = datasets.load_splits(data_cfg(dataset="fashion_mnist", path=str(path), num_labeled=20))
        assert len(splits.x_test) == 50 and np.allclose(splits.x_test[0], x_test[0] / 255.0)
        assert len(splits.x_train) + len(splits.x_val) == 200


def test_missing_files_give_a_clear_error(tmp_path):
    with pytest.raises(datasets.DataError, match="has no train-images-idx3-ubyte"):
        datasets.load_splits(data_cfg(dataset="mnist", path=str(tmp_path)))
