"""Early stopping's choice of the best epoch, on hand-written sequences (pure Python)."""

import math

from ssvae.training.early_stopping import EarlyStopping


def run(stopper, epochs):
    for epoch, (value, kl_z) in enumerate(epochs, start=1):
        stopper.update(epoch, value, kl_z)
        if stopper.finished(epoch):
            break
    return stopper


def test_an_epoch_with_the_latent_unused_is_not_kept_once_one_uses_it():
    # a VampPrior's shape on digits: lowest objective while KL_z is near 0, worse once the latent is used
    epochs = [(-10.4, 0.18), (-16.2, 0.23), (-16.8, 0.56), (-16.3, 1.7), (-16.0, 2.9), (-16.5, 3.8), (-16.1, 4.2)]
    stopper = run(EarlyStopping.for_config("auto", patience=10, max_epochs=50, num_classes=10), epochs)
    assert stopper.min_kl_z == math.log(10)
    assert (stopper.best_epoch, stopper.best_value) == (6, -16.5)
    assert stopper.wait == 1 and not stopper.stopped_early


def test_epochs_below_the_floor_do_not_use_up_patience():
    epochs = [(-10.0, 0.1), (-12.0, 0.1)] + [(-11.0, 0.1)] * 5 + [(-9.0, 3.0)]
    stopper = run(EarlyStopping.for_config("loss", patience=3, max_epochs=50, num_classes=10), epochs)
    assert not stopper.stopped_early and stopper.best_epoch == 8


def test_a_run_that_never_uses_the_latent_keeps_its_best_value():
    epochs = [(-10.0, 0.1), (-12.0, 0.2), (-11.0, 0.3)]
    stopper = run(EarlyStopping.for_config("auto", patience=5, max_epochs=3, num_classes=10), epochs)
    assert (stopper.best_epoch, stopper.best_value) == (2, -12.0)


def test_accuracy_and_a_saved_state_from_before_the_floor_compare_by_value_alone():
    stopper = run(EarlyStopping.for_config("accuracy", patience=5, max_epochs=9, num_classes=10),
                  [(0.5, 5.0), (0.7, 0.1), (0.6, 5.0)])
    assert stopper.best_epoch == 2
    saved = {"column": "val_objective", "mode": "min", "patience": 5, "max_epochs": 9, "best_epoch": 2,
             "best_value": -12.0, "wait": 0, "stopped_early": False}
    resumed = EarlyStopping.from_dict(saved)
    assert not resumed.update(3, -11.0, 0.1) and resumed.best_epoch == 2


def test_no_floor_where_the_classifier_reads_the_component_logits():
    # a geometric prior with a τ-classifier on digits: KL_z reaches log 10, then settles below it while the
    # objective keeps improving; the τ-classifier reads q(c|x), not z, so the later epochs count
    epochs = [(18.2, 2.25), (6.8, 2.68), (2.3, 2.66), (1.4, 2.32), (0.8, 2.08), (-0.5, 1.67), (-2.1, 1.22)]
    stopper = run(EarlyStopping.for_config("auto", patience=3, max_epochs=50, num_classes=10,
                                           classifier_reads_z=False), epochs)
    assert stopper.min_kl_z == 0.0 and stopper.best_epoch == 7
    floored = run(EarlyStopping.for_config("auto", patience=3, max_epochs=50, num_classes=10), epochs)
    assert floored.best_epoch == 4 and floored.stopped_early
