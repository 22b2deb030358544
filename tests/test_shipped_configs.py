"""The configs we ship: every one is valid, the digits ones cover every option the arch code names, and each
digits run trains (one epoch, real data, real JAX) to finite numbers and a loadable best checkpoint."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from ssvae import config
from ssvae.data import datasets
from ssvae.model import inference
from ssvae.training import loop

pytestmark = pytest.mark.jax

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SHIPPED = sorted(CONFIGS.rglob("*.yaml"))
PLANS = [plan for path in SHIPPED for plan in config.load_plans(path)]
DIGITS = [plan for plan in PLANS if plan.ok and plan.effective["data"]["dataset"] == "digits"]


def test_every_shipped_config_is_valid():
    assert len(SHIPPED) >= 6
    assert [(p.key, p.errors) for p in PLANS if not p.ok] == []


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


@pytest.mark.parametrize("plan", DIGITS, ids=[plan.key for plan in DIGITS])
def test_each_digits_config_trains(tmp_path, plan):
    exp = plan.experiment()
    exp = dataclasses.replace(exp, model=dataclasses.replace(exp.model, max_epochs=1))
    splits = datasets.load_splits(exp.data)
    result = loop.fit(exp, splits, tmp_path, resume_tag="t", log=lambda m: None)
    assert result["status"] == "success" and result["epochs_completed"] == 1
    assert math.isfinite(result["final"]["train_loss"]) and math.isfinite(result["final"]["val_loss"])
    predictions = inference.load_model(tmp_path, exp).predict(splits.x_test[:64])
    assert predictions.y_prob.shape == (64, exp.model.num_classes)
    np.testing.assert_allclose(predictions.y_prob.sum(axis=1), 1.0, rtol=1e-4)
