"""Training: exact resume after an interruption, determinism, divergence, early stopping, history and checkpoints."""

import csv
import dataclasses

import jax
import numpy as np
import pytest
import yaml

from ssvae import config
from ssvae.data import datasets
from ssvae.model import checkpoints, inference, losses
from ssvae.model.rng import run_keys
from ssvae.results import runs
from ssvae.runtime import compiling
from ssvae.training import fit, step

pytestmark = pytest.mark.jax


@pytest.fixture(scope="module", autouse=True)
def compilation_cache_dir(tmp_path_factory):
    """Identical configs compile once: runs of the same config reuse the executable from a persistent cache."""
    compiling.install(tmp_path_factory.mktemp("jax-cache"))
    yield
    compiling.uninstall()


SMALL = {"hidden_dims": [32, 16], "latent_dim": 4, "batch_size": 256, "max_epochs": 4, "patience": 10}

CONFIGS = {
    # Soft Gumbel routing, conditioned decoder, dropout in the head, both c-regularizers, every schedule annealing.
    "mixture-gumbel-head": {**SMALL, "prior_type": "mixture", "num_components": 10, "use_gumbel_softmax": True,
                            "use_straight_through_gumbel": False,
                            "gumbel_temperature": 2.0, "gumbel_temperature_anneal_epochs": 3,
                            "decoder_conditioning": "concat", "kl_c_anneal_epochs": 2, "c_regularizer": "both",
                            "c_logit_prior_weight": 0.05, "dirichlet_alpha": 2.0, "learnable_pi": True},
    # Monte-Carlo KL from the step's RNG, learned pseudo-inputs with their own learning rate, tau counts.
    "vamp-tau": {**SMALL, "prior_type": "vamp", "num_components": 10, "vamp_pseudo_init_method": "random",
                 "vamp_num_samples_kl": 2, "use_tau_classifier": True},
}


def experiment(tmp_path, name, **model):
    document = {"experiment": {"name": name}, "data": {"dataset": "digits", "num_labeled": 60, "num_samples": 800},
                "model": model}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return config.load_experiment(path)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return datasets.load_splits(experiment(tmp_path_factory.mktemp("data"), "data").data)


def read_history(run_dir):
    with open(run_dir / "history.csv") as handle:
        return list(csv.DictReader(handle))


def without_timing(rows):
    return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in rows]


def best_arrays(run_dir, exp):
    model = inference.load_model(run_dir, exp)
    return jax.tree_util.tree_leaves(jax.device_get(model.params)), model.tau


class Interrupted(Exception):
    pass


def interrupt_after(epoch: int):
    """A `log` that kills the run once epoch `epoch` is reported (after its checkpoint is written)."""

    def log(message):
        if message.startswith(f"epoch {epoch}/"):
            raise Interrupted(message)

    return log


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, digits):
    """One uninterrupted run per (config, loop shape), shared by the tests that compare against it."""
    cache = {}

    def run(name, loop):
        if (name, loop) not in cache:
            folder = tmp_path_factory.mktemp(f"{name}-{loop}")
            exp = experiment(folder, name, **CONFIGS[name])
            result = fit.fit(exp, digits, folder / "run", resume_tag="tag", log=lambda m: None, loop=loop)
            cache[name, loop] = (exp, folder / "run", result)
        return cache[name, loop]

    return run


@pytest.mark.parametrize("name,loop", [("mixture-gumbel-head", "scan"), ("vamp-tau", "step")])
def test_a_killed_and_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path, digits, uninterrupted, name, loop):
    exp, reference_dir, reference = uninterrupted(name, loop)
    run_dir = tmp_path / "run"
    with pytest.raises(Interrupted):
        fit.fit(exp, digits, run_dir, resume_tag="tag", log=interrupt_after(2), loop=loop)
    assert (run_dir / "checkpoints" / "resume.msgpack").exists()
    assert not (run_dir / "checkpoints" / "best.msgpack").exists()
    messages = []
    result = fit.fit(exp, digits, run_dir, resume_tag="tag", log=messages.append, loop=loop)
    assert result["resumed_from_epoch"] == 2
    assert any("resuming" in m for m in messages)
    assert sum(m.startswith("epoch ") for m in messages) == 2  # only epochs 3 and 4 ran again
    assert without_timing(read_history(run_dir)) == without_timing(read_history(reference_dir))
    got_params, got_tau = best_arrays(run_dir, exp)
    want_params, want_tau = best_arrays(reference_dir, exp)
    for got, want in zip(got_params, want_params):
        np.testing.assert_array_equal(got, want)
    if want_tau is not None:
        np.testing.assert_array_equal(got_tau, want_tau)
    for key in ("epochs_completed", "best_epoch", "best_value", "stopped_early"):
        assert result[key] == reference[key]


def test_a_trial_continued_rung_by_rung_ends_exactly_like_the_same_trial_trained_straight(tmp_path, digits,
                                                                                         uninterrupted):
    """Rungs of a halving search: 1 epoch, then on to 3, then to max_epochs (4), each a fresh call that continues
    from the trial's own checkpoint; the annealed schedules (KL_c over 2 epochs, Gumbel over 3) span the rungs."""
    exp, reference_dir, reference = uninterrupted("mixture-gumbel-head", "scan")
    run_dir = tmp_path / "run"
    first = fit.fit(exp, digits, run_dir, resume_tag="tag", log=lambda m: None, loop="scan", epochs=1)
    assert first["epochs_completed"] == 1 and first["resumed_from_epoch"] is None and not first["horizon_reached"]
    assert len(read_history(run_dir)) == 1
    messages = []
    second = fit.fit(exp, digits, run_dir, resume_tag="tag", log=messages.append, loop="scan", epochs=3)
    assert second["resumed_from_epoch"] == 1 and second["epochs_completed"] == 3
    assert sum(m.startswith("epoch ") for m in messages) == 2  # epochs 2 and 3 only: nothing trained twice
    assert without_timing(read_history(run_dir)) == without_timing(read_history(reference_dir))[:3]
    top = fit.fit(exp, digits, run_dir, resume_tag="tag", log=lambda m: None, loop="scan", epochs=4)
    assert top["horizon_reached"] and top["resumed_from_epoch"] == 3
    assert without_timing(read_history(run_dir)) == without_timing(read_history(reference_dir))
    for got, want in zip(best_arrays(run_dir, exp)[0], best_arrays(reference_dir, exp)[0]):
        np.testing.assert_array_equal(got, want)
    for key in ("epochs_completed", "best_epoch", "best_value", "stopped_early"):
        assert top[key] == reference[key]
    # asked again for a rung it has reached, the trial trains nothing and writes the same outputs
    messages = []
    again = fit.fit(exp, digits, run_dir, resume_tag="tag", log=messages.append, loop="scan", epochs=4)
    assert not any(m.startswith("epoch ") for m in messages) and again["best_value"] == reference["best_value"]
    assert without_timing(read_history(run_dir)) == without_timing(read_history(reference_dir))


def test_same_config_twice_gives_identical_history(tmp_path, digits, uninterrupted):
    exp, reference_dir, _ = uninterrupted("mixture-gumbel-head", "scan")
    fit.fit(exp, digits, tmp_path / "again", resume_tag="tag", log=lambda m: None, loop="scan")
    assert without_timing(read_history(tmp_path / "again")) == without_timing(read_history(reference_dir))


def test_a_checkpoint_of_another_run_is_not_resumed(tmp_path, digits, uninterrupted):
    exp, _, reference = uninterrupted("vamp-tau", "step")
    run_dir = tmp_path / "run"
    with pytest.raises(Interrupted):
        fit.fit(exp, digits, run_dir, resume_tag="old", log=interrupt_after(1), loop="step")
    messages = []
    result = fit.fit(exp, digits, run_dir, resume_tag="tag", log=messages.append, loop="step")
    assert result["resumed_from_epoch"] is None
    assert any("resume tag differs" in m for m in messages)
    assert result["best_value"] == reference["best_value"]


def test_history_has_every_term_train_and_val(uninterrupted):
    exp, run_dir, result = uninterrupted("mixture-gumbel-head", "scan")
    rows = read_history(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    k = exp.model.num_components
    expected = {f"{split}_{term}" for split in ("train", "val") for term in losses.TERMS + ("loss",)}
    expected |= {"train_accuracy", "val_accuracy", "kl_c_scale", "gumbel_temperature", "epoch_seconds"}
    expected |= {f"pi_{i}" for i in range(k)} | {f"usage_{i}" for i in range(k)}
    assert expected <= set(rows[0])
    for row in rows:
        assert float(row["train_loss"]) == pytest.approx(sum(float(row[f"train_{t}"]) for t in losses.TERMS),
                                                         rel=1e-5)
        unsupervised = sum(float(row[f"val_{t}"]) for t in losses.UNSUPERVISED_TERMS)
        assert float(row["val_loss"]) == pytest.approx(unsupervised, rel=1e-5)
        assert sum(float(row[f"usage_{i}"]) for i in range(k)) == pytest.approx(1.0, rel=1e-4)
        assert sum(float(row[f"pi_{i}"]) for i in range(k)) == pytest.approx(1.0, rel=1e-4)
    assert [float(r["kl_c_scale"]) for r in rows] == [0.0, 0.5, 1.0, 1.0]
    assert [float(r["gumbel_temperature"]) for r in rows] == pytest.approx([2.0, 1.5, 1.0, 0.5])
    # the fixed objective (KL_c scale 1, final temperature) is val_loss once both anneals are over, and not before
    assert float(rows[3]["val_objective"]) == pytest.approx(float(rows[3]["val_loss"]), rel=1e-6)
    assert all(float(r["val_objective"]) != pytest.approx(float(r["val_loss"]), rel=1e-6) for r in rows[:3])
    objectives = [float(r["val_objective"]) for r in rows]
    assert result["monitor_metric"] == "val_objective"
    assert result["best_value"] == pytest.approx(min(objectives))
    assert objectives.index(min(objectives)) + 1 == result["best_epoch"]
    assert float(rows[0]["train_l1"]) == 0.0  # l1_weight is 0
    assert result["final"] == {k: pytest.approx(float(v)) for k, v in rows[result["best_epoch"] - 1].items()}
    for key in ("status", "epochs_completed", "best_epoch", "monitor_metric", "best_value", "stopped_early",
                "training_time_sec", "compile_time_sec", "samples_per_sec", "resumed_from_epoch", "final"):
        assert key in result


def test_a_non_finite_loss_raises_with_the_epoch_and_term_and_keeps_the_state(tmp_path, digits):
    x_train = digits.x_train.copy()
    x_train[5, 3, 3] = np.nan
    broken = dataclasses.replace(digits, x_train=x_train)
    exp = experiment(tmp_path, "nan", **{**SMALL, "max_epochs": 2})
    with pytest.raises(fit.TrainingDiverged) as info:
        fit.fit(exp, broken, tmp_path / "run", resume_tag="tag", log=lambda m: None)
    message = str(info.value)
    assert message.startswith("epoch 1:")
    assert "reconstruction" in message and "loss" in message
    diverged = tmp_path / "run" / "checkpoints" / "diverged.msgpack"
    assert diverged.exists() and str(diverged) in message
    assert not (tmp_path / "run" / "checkpoints" / "best.msgpack").exists()
    # the saved parameters are the last finite ones: the non-finite updates were skipped
    program = step.TrainProgram(exp.model, len(x_train))
    state = program.init_state(run_keys(exp.model.random_seed)["init"], digits.x_train)
    restored = checkpoints.load_resume(diverged, resume_tag="tag", state_template=state,
                                       best_template={"params": state.params, "tau_counts": state.tau_counts})
    assert "reconstruction" in restored[0]["diverged"]
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(restored[1].params))


def test_early_stopping_keeps_and_uses_the_best_epoch(tmp_path, digits):
    # entropy minimisation off: the validation loss is then reconstruction + KL_z, recomputed below
    model = {**SMALL, "max_epochs": 60, "patience": 2, "learning_rate": 0.02, "batch_size": 64, "entropy_weight": 0.0}
    exp = experiment(tmp_path, "early", **model)
    run_dir = tmp_path / "run"
    result = fit.fit(exp, digits, run_dir, resume_tag="tag", log=lambda m: None)
    rows = read_history(run_dir)
    assert result["stopped_early"]
    assert result["epochs_completed"] == len(rows) == result["best_epoch"] + 2 < 60
    val_losses = [float(r["val_loss"]) for r in rows]
    assert result["best_value"] == pytest.approx(min(val_losses))
    assert val_losses.index(min(val_losses)) + 1 == result["best_epoch"]
    # best.msgpack holds the best epoch's weights: they reproduce that epoch's validation loss
    predictions = inference.load_model(run_dir, exp).predict(digits.x_val)
    recomputed = np.mean(predictions.terms["reconstruction"]) + np.mean(predictions.terms["kl_z"])
    assert recomputed == pytest.approx(result["best_value"], rel=1e-4)
    assert recomputed != pytest.approx(val_losses[-1], rel=1e-4)


def test_labeled_batch_size_appends_labeled_images_to_every_batch_in_fresh_passes(tmp_path, digits):
    exp = experiment(tmp_path, "lbs", **{**SMALL, "batch_size": 100, "labeled_batch_size": 25})
    pool = np.flatnonzero(digits.labeled)
    program = step.TrainProgram(exp.model, len(digits.x_train))
    key = run_keys(0)["train"]
    order, weights = (np.asarray(a) for a in program.epoch_plan(key, pool.astype(np.int32), 0))
    assert order.shape == (program.num_batches, 125) and weights.shape == order.shape
    np.testing.assert_array_equal(weights[:, 100:], 1.0)
    drawn = order[:, 100:].reshape(-1)
    assert set(drawn) <= set(pool)
    # each pass over the labeled pool is a permutation: no image twice before every image once
    for start in range(0, len(drawn) - len(pool) + 1, len(pool)):
        assert sorted(drawn[start:start + len(pool)]) == sorted(pool)
    # the unlabeled part is still one permutation of the training set
    assert sorted(order[:, :100].reshape(-1)[weights[:, :100].reshape(-1) > 0]) == list(range(len(digits.x_train)))
    # a different epoch draws differently; the same epoch draws the same
    assert not np.array_equal(order, np.asarray(program.epoch_plan(key, pool.astype(np.int32), 1)[0]))
    np.testing.assert_array_equal(order, np.asarray(program.epoch_plan(key, pool.astype(np.int32), 0)[0]))


def test_labeled_batch_size_trains_with_more_labeled_steps(tmp_path, digits):
    exp = experiment(tmp_path, "lbs", **{**SMALL, "max_epochs": 2, "prior_type": "mixture", "num_components": 10,
                                         "use_tau_classifier": True, "labeled_batch_size": 32})
    result = fit.fit(exp, digits, tmp_path / "run", resume_tag="tag", log=lambda m: None)
    counts = inference.load_model(tmp_path / "run", exp).tau_counts
    steps_per_epoch = -(-len(digits.x_train) // 256)
    # counts grow by one per labeled image seen: the 32 added per step plus those in the regular batches (the
    # best checkpoint holds the counts of epoch 1 or 2)
    assert float(np.sum(counts)) - 10 * 10 * exp.model.tau_smoothing_alpha >= steps_per_epoch * (32 + 1)
    assert result["epochs_completed"] == 2


@pytest.mark.parametrize("classifier", ["head", "tau"])
def test_entropy_weight_makes_the_unlabeled_predictions_more_confident(tmp_path, digits, classifier):
    model = {**SMALL, "max_epochs": 3, "batch_size": 64, "learning_rate": 0.01, "prior_type": "mixture",
             "num_components": 10, "use_tau_classifier": classifier == "tau"}
    entropy = {}
    for weight in (0.0, 5.0):
        exp = experiment(tmp_path, f"ent{weight:g}", **{**model, "entropy_weight": weight})
        fit.fit(exp, digits, tmp_path / f"run{weight:g}", resume_tag="tag", log=lambda m: None)
        probs = inference.load_model(tmp_path / f"run{weight:g}", exp).predict(digits.x_train[~digits.labeled]).y_prob
        entropy[weight] = float(np.mean(-np.sum(probs * np.log(np.maximum(probs, 1e-30)), axis=1)))
        rows = read_history(tmp_path / f"run{weight:g}")
        assert (float(rows[-1]["train_entropy"]) > 0) == (weight > 0)
    assert entropy[5.0] < entropy[0.0] - 0.05, entropy


def test_consistency_weight_makes_predictions_agree_under_shifts(tmp_path, digits, write_config):
    """Trained with the consistency term, p(y|x) changes less between two shifts of an image than without."""
    shifted = np.roll(digits.x_train[~digits.labeled], 1, axis=2)
    change = {}
    for weight in (0.0, 20.0):
        document = {"experiment": {"name": f"cons{weight:g}"},
                    "data": {"dataset": "digits", "num_labeled": 60, "num_samples": 800, "augment_shift": 1},
                    "model": {**SMALL, "max_epochs": 3, "batch_size": 64, "learning_rate": 0.01,
                              "consistency_weight": weight}}
        exp = config.load_experiment(write_config(yaml.safe_dump(document), name=f"cons{weight:g}.yaml"))
        fit.fit(exp, digits, tmp_path / f"run{weight:g}", resume_tag="tag", log=lambda m: None)
        model = inference.load_model(tmp_path / f"run{weight:g}", exp)
        p, q = model.predict(digits.x_train[~digits.labeled]).y_prob, model.predict(shifted).y_prob
        change[weight] = float(np.mean(np.sum((p - q) ** 2, axis=1)))
        rows = read_history(tmp_path / f"run{weight:g}")
        assert (float(rows[-1]["train_consistency"]) > 0) == (weight > 0)
        assert float(rows[-1]["val_consistency"]) == 0.0
    assert change[20.0] < 0.7 * change[0.0], change


def test_mixture_history_is_logged_every_n_epochs_and_at_the_first_and_last(tmp_path, digits):
    model = {**SMALL, "prior_type": "mixture", "num_components": 10, "max_epochs": 4, "patience": 10}
    exp = experiment(tmp_path, "every", **model, mixture_history_log_every=3)
    fit.fit(exp, digits, tmp_path / "run", resume_tag="tag", log=lambda m: None)
    rows = read_history(tmp_path / "run")
    logged = [bool(r["usage_0"]) for r in rows]
    assert logged == [True, False, True, True]
    assert all(bool(r["pi_0"]) == flag for r, flag in zip(rows, logged))
    never = experiment(tmp_path, "never", **model, mixture_history_log_every=0)
    fit.fit(never, digits, tmp_path / "run0", resume_tag="tag", log=lambda m: None)
    assert not any(c.startswith(("pi_", "usage_")) for c in read_history(tmp_path / "run0")[0])


def test_both_parameter_layouts_make_the_same_update(tmp_path, digits):
    """Flat vectors (small trainings) and one array per layer (larger ones) are two layouts of one optimiser
    step: the same parameters come out."""
    exp = experiment(tmp_path, "layouts", **{**SMALL, "prior_type": "vamp", "num_components": 10, "l1_weight": 1e-4})
    keys = run_keys(0)
    x = jax.device_put(digits.x_train)
    y = jax.device_put(np.where(digits.labeled, digits.y_train, -1).astype(np.int32))
    pool = np.zeros(0, np.int32)
    trees = []
    for flat in (True, False):
        program = step.TrainProgram(exp.model, len(digits.x_train), flat=flat)
        assert program.layout.flat == flat
        state = program.init_state(keys["init"], digits.x_train)
        order, weights = program.epoch_plan(keys["train"], pool, 0)
        train_step = jax.jit(program.train_step)
        for i in range(3):
            state, _ = train_step(state, program.zero_train_acc(), x, y, order, weights, keys["train"], i, 0)
        trees.append(program.layout.host_tree(state.params))
    for a, b in zip(jax.tree_util.tree_leaves(trees[0]), jax.tree_util.tree_leaves(trees[1])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def tensorboard_scalars(run_dir) -> dict[str, dict[int, float]]:
    """tag -> {step: value}, read back by TensorBoard's own loader (what `tensorboard --logdir` shows)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def test_progress_and_tensorboard_events_follow_a_killed_and_resumed_run(tmp_path, digits, uninterrupted):
    exp, reference_dir, _ = uninterrupted("mixture-gumbel-head", "scan")
    run_dir = tmp_path / "run"
    with pytest.raises(Interrupted):
        fit.fit(exp, digits, run_dir, resume_tag="tag", log=interrupt_after(2), loop="scan")
    progress = runs.read_progress(run_dir)
    assert (progress["phase"], progress["epoch"], progress["max_epochs"]) == ("stopped", 2, 4)
    assert progress["eta_s"] == pytest.approx(2 * progress["seconds_per_epoch"])
    assert set(progress["losses"]) >= {"train_loss", "val_loss", "train_kl_z", "val_classification"}
    assert runs.progress_text(progress).startswith("2/4, ETA ")
    assert set(tensorboard_scalars(run_dir)["val/loss"]) == {1, 2}

    fit.fit(exp, digits, run_dir, resume_tag="tag", log=lambda m: None, loop="scan")
    progress = runs.read_progress(run_dir)
    assert (progress["phase"], progress["epoch"], progress["eta_s"]) == ("finished", 4, 0)
    history = read_history(reference_dir)
    assert progress["losses"]["val_loss"] == pytest.approx(float(history[-1]["val_loss"]))
    scalars = tensorboard_scalars(run_dir)
    for column, tag in (("train_loss", "train/loss"), ("val_kl_c", "val/kl_c"), ("val_accuracy", "val/accuracy"),
                        ("kl_c_scale", "schedule/kl_c_scale")):
        assert scalars[tag] == pytest.approx({int(r["epoch"]): float(r[column]) for r in history}, rel=1e-6)
