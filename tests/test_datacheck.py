"""Damaged or foreign dataset files at data.path are rejected by validation, before any work, naming the file."""

import gzip
import shutil

import numpy as np
import pytest

from ssvae.data import checks as datacheck
from ssvae.pipeline import validation

STEMS = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
         "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def idx_bytes(array, kind=8):
    return bytes([0, 0, kind, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()


def arrays(n_train=200, n_test=50):
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
            "y_train": (np.arange(n_train) % 10).astype(np.uint8),
            "x_test": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
            "y_test": (np.arange(n_test) % 10).astype(np.uint8)}


def idx_folder(folder, content=None, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in (content or arrays()).items():
        raw = array if isinstance(array, bytes) else idx_bytes(array)
        if gz:
            with gzip.open(folder / f"{STEMS[key]}.gz", "wb") as handle:
                handle.write(raw)
        else:
            (folder / STEMS[key]).write_bytes(raw)
    return folder


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SSVAE_CACHE", str(tmp_path / "cache"))
    datacheck._memory.clear()


def errors(write_config, path):
    cfg = write_config(f"data: {{dataset: mnist, path: '{path}', num_samples: 150, num_labeled: 20}}\n"
                       "model: {hidden_dims: [16], latent_dim: 2, max_epochs: 1}\n")
    (plan,) = validation.load_plans(cfg)
    return [str(e) for e in plan.errors]


def test_intact_files_pass(write_config, tmp_path):
    assert errors(write_config, idx_folder(tmp_path / "gz")) == []
    assert errors(write_config, idx_folder(tmp_path / "raw", gz=False)) == []
    npz = tmp_path / "m.npz"
    np.savez(npz, **arrays())
    assert errors(write_config, npz) == []
    floats = tmp_path / "f.npz"
    np.savez(floats, **{**arrays(), "x_train": arrays()["x_train"].astype(np.float32) / 255})
    assert errors(write_config, floats) == []


def _truncated_gz(folder):
    path = folder / f"{STEMS['x_train']}.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _not_gz(folder):
    (folder / f"{STEMS['y_test']}.gz").write_bytes(b"<html>404 Not Found</html>")


def _wrong_magic(folder):
    with gzip.open(folder / f"{STEMS['y_train']}.gz", "wb") as handle:
        handle.write(b"\x01\x02\x08\x01" + (200).to_bytes(4, "big") + bytes(200))


def _float_idx(folder):
    with gzip.open(folder / f"{STEMS['x_test']}.gz", "wb") as handle:
        handle.write(idx_bytes(np.zeros((50, 28, 28), np.float32), kind=0x0D))


def _short_idx(folder):
    raw = idx_bytes(arrays()["x_train"])
    with gzip.open(folder / f"{STEMS['x_train']}.gz", "wb") as handle:
        handle.write(raw[:-100])


def _counts_disagree(folder):
    with gzip.open(folder / f"{STEMS['y_train']}.gz", "wb") as handle:
        handle.write(idx_bytes((np.arange(190) % 10).astype(np.uint8)))


def _wrong_shape(folder):
    with gzip.open(folder / f"{STEMS['x_train']}.gz", "wb") as handle:
        handle.write(idx_bytes(np.zeros((200, 32, 32), np.uint8)))


def _labels_outside(folder):
    with gzip.open(folder / f"{STEMS['y_test']}.gz", "wb") as handle:
        handle.write(idx_bytes(np.full(50, 12, np.uint8)))


@pytest.mark.parametrize("damage, fragment", [
    (_truncated_gz, "the .gz file ends early (truncated"),
    (_not_gz, "not a readable .gz file"),
    (_wrong_magic, "not an IDX file"),
    (_float_idx, "an IDX file of floats"),
    (_short_idx, "promises"),
    (_counts_disagree, "holds 200 images but"),
    (_wrong_shape, "images of shape 32 x 32"),
    (_labels_outside, "labels outside the 10 classes (e.g. 12)"),
])
def test_a_damaged_idx_folder_is_rejected_naming_the_file(write_config, tmp_path, damage, fragment):
    folder = idx_folder(tmp_path / "idx")
    damage(folder)
    found = errors(write_config, folder)
    assert found and any(fragment in e for e in found), found
    assert all("data.path" in e and str(folder) in e for e in found), found


@pytest.mark.parametrize("change, fragment", [
    ({"x_train": arrays()["x_train"].astype(np.float32)}, "float pixels from 0 to 255; floats must lie in 0..1"),
    ({"y_train": np.arange(200) % 10 + 1}, "labels outside the 10 classes (e.g. 10)"),
    ({"x_test": np.where(np.arange(50)[:, None, None] == 3, np.nan, np.full((50, 28, 28), 0.5, np.float32))},
     "784 pixel(s) are NaN"),
    ({"y_test": np.arange(40) % 10}, "holds 50 images but"),
    ({"x_train": np.zeros((200, 28, 27), np.uint8)}, "images of shape 28 x 27"),
    ({"y_train": (np.arange(200) % 10) + 0.5}, "not whole numbers"),
])
def test_a_bad_npz_is_rejected_naming_the_file_and_array(write_config, tmp_path, change, fragment):
    npz = tmp_path / "bad.npz"
    np.savez(npz, **{**arrays(), **change})
    found = errors(write_config, npz)
    assert any(fragment in e for e in found), found
    assert all(str(npz) in e for e in found), found


def test_a_truncated_npz_is_rejected(write_config, tmp_path):
    npz = tmp_path / "half.npz"
    np.savez(npz, **arrays())
    npz.write_bytes(npz.read_bytes()[:1000])
    found = errors(write_config, npz)
    assert found and "not a readable .npz file" in found[0] and str(npz) in found[0]


def test_files_are_read_once_per_fingerprint(write_config, tmp_path, monkeypatch):
    folder = idx_folder(tmp_path / "idx")
    reads = []
    original = datacheck.read_idx
    monkeypatch.setattr(datacheck, "read_idx", lambda path: reads.append(path) or original(path))
    assert errors(write_config, folder) == [] and len(reads) == 4
    datacheck._memory.clear()  # a new process: the verdict comes from the cache folder
    assert errors(write_config, folder) == [] and len(reads) == 4
    _truncated_gz(folder)  # a changed file is read again
    assert any("ends early" in e for e in errors(write_config, folder))
    shutil.rmtree(folder)
    assert any("no such file" in e for e in errors(write_config, folder))
