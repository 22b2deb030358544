"""The configs we ship: every one is valid, the digits ones cover every option the arch code names, and each
digits run trains (one epoch, real data, real JAX) to finite numbers and a loadable best checkpoint. The
full-MNIST configs read `data/mnist`, which a clone lacks: they are checked on a small IDX folder in its place,
and the default experiment list leaves them out."""

import dataclasses
import glob
import gzip
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from ssvae import config
from ssvae.data import datasets
from ssvae.model import inference
from ssvae.training import fit

pytestmark = pytest.mark.jax

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
FULL_MNIST = sorted((CONFIGS / "mnist").glob("*.yaml"))
SHIPPED = sorted(set(CONFIGS.rglob("*.yaml")) - set(FULL_MNIST))
PLANS = [plan for path in SHIPPED for plan in config.load_plans(path)]
DIGITS = [plan for plan in PLANS if plan.ok and plan.effective["data"]["dataset"] == "digits"]


def test_every_shipped_config_is_valid():
    assert len(SHIPPED) >= 6
    assert [(p.key, p.errors) for p in PLANS if not p.ok] == []


def _idx_folder(folder: Path, n_train: int = 300, n_test: int = 60) -> Path:
    """MNIST's four IDX .gz files, of random images with every class."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        arrays = {"images-idx3": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                  "labels-idx1": (np.arange(n) % 10).astype(np.uint8)}
        for kind, array in arrays.items():
            header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
            with gzip.open(folder / f"{prefix}-{kind}-ubyte.gz", "wb") as handle:
                handle.write(header + array.tobytes())
    return folder


def test_the_full_mnist_configs_are_valid_on_idx_files(tmp_path):
    assert {p.name for p in FULL_MNIST} >= {"mnist_best.yaml", "mnist_standard.yaml", "mnist_mixture_tau.yaml",
                                            "mnist_vamp_tau.yaml", "mnist_geometric_tau.yaml"}
    folder = _idx_folder(tmp_path / "mnist")
    for path in FULL_MNIST:
        raw = yaml.safe_load(path.read_text())
        assert (raw["data"]["dataset"], raw["data"]["path"]) == ("mnist", "data/mnist"), path
        raw["data"]["path"] = str(folder)
        copy = tmp_path / path.name
        copy.write_text(yaml.safe_dump(raw))
        plans = config.load_plans(copy)
        assert [(p.key, p.errors) for p in plans if not p.ok] == []


def test_the_default_experiment_list_needs_no_data_files():
    """`snakemake --cores all` runs configs/*.yaml (workflow/config.yaml): none of them may need a download."""
    default = yaml.safe_load((REPO / "workflow" / "config.yaml").read_text())["experiments"]
    files = glob.glob(str(REPO / default))
    assert files and not set(map(Path, files)) & set(FULL_MNIST)
    for path in files:
        assert all(plan.effective["data"]["path"] is None for plan in config.load_plans(path)), path


def test_the_digits_configs_cover_every_option():
    models = [plan.effective["model"] for plan in DIGITS]
    seen = {
        "prior": {m["prior_type"] for m in models},
        "classifier": {m["use_tau_classifier"] for m in models},
        "conditioning": {m["decoder_conditioning"] for m in models},
        "heteroscedastic": {m["use_heteroscedastic_decoder"] for m in models},
        "gumbel": {m["use_gumbel_softmax"] for m in models},
        "layout": {m["latent_layout"] for m in models},
        "encoder": {m["encoder_type"] for m in models},
        "decoder": {m["decoder_type"] for m in models},
        "vamp init": {m["vamp_pseudo_init_method"] for m in models if m["prior_type"] == "vamp"},
        "arrangement": {m["geometric_arrangement"] for m in models if m["prior_type"] == "geometric_mog"},
        "dirichlet": {m["dirichlet_alpha"] is not None for m in models if m["prior_type"] == "mixture"},
        "c_regularizer": {m["c_regularizer"] for m in models if m["prior_type"] != "standard"},
    }
    assert seen == {
        "prior": {"standard", "mixture", "vamp", "geometric_mog"},
        "classifier": {True, False},
        "conditioning": {"none", "concat", "film", "cin"},
        "heteroscedastic": {True, False},
        "gumbel": {True, False},
        "layout": {"shared", "decentralized"},
        "encoder": {"dense", "conv"},
        "decoder": {"dense", "conv"},
        "vamp init": {"kmeans", "random"},
        "arrangement": {"circle", "grid"},
        "dirichlet": {True, False},
        "c_regularizer": {"categorical", "both"},
    }


def test_the_default_list_shows_every_arch_code_part():
    """The first command's runs (configs/*.yaml) show every part an arch code can name (benchmarks/RESULTS.md,
    "The demo", says which runs beat their baseline); the conv options live in configs/extra/, too slow on a CPU
    to learn within the demo's two minutes."""
    default = [plan for path in sorted(CONFIGS.glob("*.yaml")) if not path.name.startswith("_")
               for plan in config.load_plans(path)]
    assert len(default) == 7 and all(plan.ok for plan in default)
    assert all(plan.effective["data"]["dataset"] == "digits" for plan in default)
    codes = [plan.arch for plan in default]
    priors, classifiers, decoders = zip(*(code.split("_") for code in codes))
    parts = {part.rstrip("0123456789") for prior in priors for part in prior.split("-")}
    assert parts == {"std", "mix", "vamp", "geo", "dir", "dec", "gbl", "km", "rand", "circle", "grid"}
    assert set(classifiers) == {"tau", "head"}
    assert {part for decoder in decoders for part in decoder.split("-")} == {"plain", "ca", "film", "cin", "het"}
    assert all(plan.effective["model"]["encoder_type"] == "dense" for plan in default)
    extra = [plan for plan in DIGITS if Path(plan.source).parent.name == "extra"]
    assert {plan.effective["model"]["encoder_type"] for plan in extra} == {"conv"}


@pytest.mark.parametrize("plan", DIGITS, ids=[plan.key for plan in DIGITS])
def test_each_digits_config_trains(tmp_path, plan):
    exp = plan.experiment()
    exp = dataclasses.replace(exp, model=dataclasses.replace(exp.model, max_epochs=1))
    splits = datasets.load_splits(exp.data)
    result = fit.fit(exp, splits, tmp_path, resume_tag="t", log=lambda m: None)
    assert result["status"] == "success" and result["epochs_completed"] == 1
    assert math.isfinite(result["final"]["train_loss"]) and math.isfinite(result["final"]["val_loss"])
    predictions = inference.load_model(tmp_path, exp).predict(splits.x_test[:64])
    assert predictions.y_prob.shape == (64, exp.model.num_classes)
    np.testing.assert_allclose(predictions.y_prob.sum(axis=1), 1.0, rtol=1e-4)
