"""Train/test splits drawn exactly as scikit-learn's `train_test_split(..., random_state=seed)` draws them.

Every run's test, validation and training images come from these splits, so they must stay what they have
always been (a different split would put an old run's training images into its test split). scikit-learn is
not imported for them: importing `sklearn.model_selection` pulls in scipy and pandas, about a second in every
train and evaluate job. tests/test_splitting.py checks these functions against scikit-learn's on many cases.

The algorithm (scikit-learn 1.x, `ShuffleSplit` and `StratifiedShuffleSplit`):
- n_test = ceil(test_size·n) for a fraction, test_size itself for a count; n_train = n − n_test;
- unstratified: p = rng.permutation(n); test = p[:n_test], train = p[n_test:];
- stratified: per-class train and test counts by the approximate mode of the multivariate hypergeometric
  (ties broken with rng.choice), then per class a permutation of its members (in stable order) gives
  train then test, and both index lists are permuted once more;
with rng = numpy.random.RandomState(seed).
"""

from __future__ import annotations

import math

import numpy as np


def _sizes(n: int, test_size: float | int) -> tuple[int, int]:
    """(n_train, n_test); refusals in scikit-learn's words."""
    fraction = isinstance(test_size, float)
    if (fraction and not 0 < test_size < 1) or (not fraction and not 0 < test_size < n):
        raise ValueError(f"test_size={test_size} should be either positive and smaller than the number of samples "
                         f"{n} or a float in the (0, 1) range")
    n_test = math.ceil(test_size * n) if fraction else int(test_size)
    n_train = n - n_test
    if n_train == 0:
        raise ValueError(f"With n_samples={n}, test_size={test_size} and train_size=None, the resulting train set "
                         "will be empty. Adjust any of the aforementioned parameters.")
    return n_train, n_test


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Per-class draws closest to class_counts·n_draws/Σ class_counts, summing to n_draws."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def split_indices(n: int, test_size: float | int, seed: int, stratify: np.ndarray | None = None):
    """(train indices, test indices) of `n` samples, as train_test_split(test_size, stratify, random_state=seed)."""
    n_train, n_test = _sizes(n, test_size)
    rng = np.random.RandomState(seed)
    if stratify is None:
        permutation = rng.permutation(n)
        return permutation[n_test:n_test + n_train], permutation[:n_test]
    classes, y_indices, class_counts = np.unique(np.asarray(stratify), return_inverse=True, return_counts=True)
    if class_counts.min() < 2:
        raise ValueError("The least populated classes in y have only 1 member, which is too few. The minimum number "
                         "of groups for any class cannot be less than 2. Classes with too few members are: "
                         f"{classes[class_counts < 2].tolist()}")
    for name, size in (("train_size", n_train), ("test_size", n_test)):
        if size < len(classes):
            raise ValueError(f"The {name} = {size} should be greater or equal to the number of classes = "
                             f"{len(classes)}")
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for i in range(len(classes)):
        members = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.extend(members[:n_i[i]])
        test.extend(members[n_i[i]:n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)


def train_test_split(x: np.ndarray, y: np.ndarray, *, test_size: float | int, seed: int, stratify=None):
    """(x_train, x_test, y_train, y_test), as scikit-learn's train_test_split with random_state=seed."""
    train, test = split_indices(len(x), test_size, seed, stratify)
    return x[train], x[test], y[train], y[test]
