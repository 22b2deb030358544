"""The one linear schedule behind both anneals (KL_c scale, Gumbel temperature) and their final values."""

import jax
import jax.numpy as jnp
import pytest

from ssvae import config
from ssvae.training import schedules


def model_config(**overrides):
    model = {**config.defaults()["model"], "input_hw": [8, 8], **overrides}
    return config.ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in model.items()})


def test_linear_schedule_starts_at_the_start_value_and_reaches_the_end_after_n_epochs():
    values = [schedules.linear_schedule(e, 2.0, 0.5, 3) for e in range(6)]
    assert values == pytest.approx([2.0, 1.5, 1.0, 0.5, 0.5, 0.5])
    assert schedules.linear_schedule(7, 2.0, 0.5, 0) == 0.5
    # the traced form (inside a compiled step) gives the same values
    traced = jax.jit(lambda e: schedules.linear_schedule(e, 2.0, 0.5, 3))
    assert [float(traced(jnp.int32(e))) for e in range(6)] == pytest.approx(values)


def test_both_anneals_use_it_and_name_their_final_values():
    cfg = model_config(kl_c_anneal_epochs=4, gumbel_temperature=2.0, gumbel_temperature_min=0.5,
                       gumbel_temperature_anneal_epochs=3)
    assert [schedules.kl_c_scale(cfg, e) for e in range(6)] == pytest.approx([0, 0.25, 0.5, 0.75, 1, 1])
    assert [schedules.gumbel_temperature(cfg, e) for e in range(5)] == pytest.approx([2.0, 1.5, 1.0, 0.5, 0.5])
    assert schedules.final_kl_c_scale(cfg) == 1.0 and schedules.final_gumbel_temperature(cfg) == 0.5
    still = model_config(kl_c_anneal_epochs=0, gumbel_temperature=2.0, gumbel_temperature_anneal_epochs=0)
    assert schedules.kl_c_scale(still, 0) == 1.0
    assert schedules.gumbel_temperature(still, 9) == schedules.final_gumbel_temperature(still) == 2.0


def test_run_keys_are_the_seeds_prng_keys():
    from ssvae.model import rng

    for seed in (0, 42, 2**31, 2**32 - 1):
        keys = rng.run_keys(seed)
        expected = jax.random.split(jax.random.PRNGKey(seed), 3)
        for i, name in enumerate(("init", "train", "eval")):
            assert (keys[name] == expected[i]).all()
        assert (rng.key(seed) == jax.random.PRNGKey(seed)).all()
