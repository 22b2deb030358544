"""Every bad config of the corpus through `ssvae validate`: exit 1, a message naming file, key and what is
allowed, no traceback, short output; plan keys never fail; the good edge cases pass.

Most run in this process (`ssvae.cli.main`); the heavy ones (bombs, huge files and sweeps, a pipe) also run
as the real `ssvae` command under a memory limit and a timeout, so a hang or a blow-up fails the test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ssvae import cli, config, naming
from ssvae.data import datasets

from .corpus import CORPUS, GOOD_EDGE_CASES, write_corpus

SSVAE = str(Path(sys.executable).with_name("ssvae"))
BY_ID = {item.id: item for item in CORPUS}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, write_corpus(folder)


def validate(path: Path, capsys) -> tuple[int, str]:
    code = cli.main(["validate", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_corpus_is_big_and_every_item_distinct():
    assert len(CORPUS) >= 80
    assert len({item.id for item in CORPUS}) == len(CORPUS)
    assert len({item.file for item in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("item_id", list(BY_ID))
def test_bad_config_is_rejected_readably(corpus, capsys, item_id):
    folder, paths = corpus
    item = BY_ID[item_id]
    code, output = validate(paths[item_id], capsys)
    assert code == 1, output
    assert "Traceback" not in output
    assert f"{paths[item_id]}" in output, output  # the file is named
    if item.key:
        assert f": {item.key}: " in output and "(got " in output, output  # the dotted key and the value
    for words in item.expect:
        assert words in output, output
    assert len(output) < 6000, f"{len(output):,} characters of output"  # long values are shortened


@pytest.mark.parametrize("item_id", list(BY_ID))
def test_plan_keys_never_fail(corpus, item_id):
    """Parse time: every file gets usable plan keys, and validating with each key reports the same file."""
    _, paths = corpus
    keys = config.plan_keys(paths[item_id])
    assert keys and len(keys) == len(set(keys))
    for key in keys[:3]:
        assert naming.re.fullmatch(r"[a-z0-9][a-z0-9._-]*", key), key
        plan = config.load_plan(paths[item_id], key)
        assert plan.key == key


def test_fallback_keys_for_names_that_sanitise_to_nothing(corpus):
    _, paths = corpus
    (key,) = config.plan_keys(paths["bang-stem"])
    assert key.startswith("unnamed-")
    (key,) = config.plan_keys(paths["empty-sweep-label"])
    assert key.startswith("empty-sweep-label.point-")


@pytest.mark.parametrize("name", list(GOOD_EDGE_CASES))
def test_odd_but_valid_configs_pass(tmp_path, capsys, name):
    path = tmp_path / name
    path.write_bytes(GOOD_EDGE_CASES[name])
    code, output = validate(path, capsys)
    assert code == 0, output


def test_spec_sweep_example_reads_numbers(tmp_path):
    path = tmp_path / "sw.yaml"
    path.write_bytes(GOOD_EDGE_CASES["spec-sweep.yaml"])
    plans = config.load_plans(path)
    assert [p.effective["model"]["learning_rate"] for p in plans] == [0.001, 0.001, 0.0003, 0.0003]


def test_every_number_key_rejects_inf_and_nan(tmp_path):
    """The schema's strict types cover every number key there is, including ones added later."""
    props = config.schema()["properties"]
    checked = 0
    for section in config.SECTIONS:
        for key, spec in props[section]["properties"].items():
            types = spec.get("type")
            if "number" not in (types if isinstance(types, list) else [types]):
                continue
            for value in (".inf", "-.inf", ".nan"):
                path = tmp_path / "n.yaml"
                path.write_text(f"{section}: {{{key}: {value}}}\n")
                (plan,) = config.load_plans(path)
                assert [e.key for e in plan.errors] == [f"{section}.{key}"], (key, value, plan.errors)
                assert "not a finite number" in plan.errors[0].message
                checked += 1
    assert checked >= 60


def test_every_integer_key_rejects_floats_and_switches(tmp_path):
    props = config.schema()["properties"]
    for section in config.SECTIONS:
        for key, spec in props[section]["properties"].items():
            types = spec.get("type")
            if "integer" not in (types if isinstance(types, list) else [types]):
                continue
            for value in ("4.0", "true"):
                path = tmp_path / "i.yaml"
                path.write_text(f"{section}: {{{key}: {value}}}\n")
                (plan,) = config.load_plans(path)
                assert f"{section}.{key}" in [e.key for e in plan.errors], (key, value, plan.errors)


def test_long_values_are_shortened(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text(f"model: {{prior_type: {'x' * 500_000}}}\nexperiment: {{wrong: [{', '.join(['1'] * 5000)}]}}\n")
    (plan,) = config.load_plans(path)
    assert len(plan.errors) == 2
    assert all(len(str(e)) < 600 for e in plan.errors), [len(str(e)) for e in plan.errors]
    assert any("500,000 characters" in str(e) for e in plan.errors)


def test_many_unknown_keys_are_capped(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text("model:\n" + "".join(f"  unknown_{i}: 1\n" for i in range(5000)))
    (plan,) = config.load_plans(path)
    assert len(plan.errors) <= config.schema_errors.__globals__["MAX_ERRORS"] + 1
    assert any("4,950 more unknown keys not shown" in str(e) for e in plan.errors)


def test_long_name_is_cut_with_a_warning(tmp_path):
    path = tmp_path / "long_name.yaml"
    path.write_text(f"experiment: {{name: {'a' * 70}-one}}\n")
    (plan,) = config.load_plans(path)
    assert plan.ok and plan.name == "a" * 64
    assert any("is cut to" in w for w in plan.warnings)
    assert plan.to_dict()["warnings"] == plan.warnings  # validated.json carries them into summary.json


def test_the_cut_name_warning_reaches_summary_json(tmp_path):
    """Through the real stages (a non-neural model stands in for training, see synthetic_run)."""
    from synthetic_run import make_run

    from ssvae import disk
    from ssvae.pipeline import stages

    path = tmp_path / "long.yaml"
    path.write_text(f"experiment: {{name: {'b' * 80}}}\ndata: {{dataset: digits, num_samples: 300, "
                    "num_labeled: 30}\nreport: {dpi: 50, skip_plots: [samples, reconstructions, latent_by_label]}\n")
    results = tmp_path / "results"
    validated, run_json = results / ".plan/long/validated.json", results / ".plan/long/run.json"
    stages.validate_config(path, "long", validated, log=lambda _: None)
    run = stages.derive_arch_code(validated, results, run_json, log=lambda _: None)
    make_run(results, run["run_id"], config.Experiment.from_effective(disk.read_json(validated)["effective"]))
    summary = stages.report(validated, run_json, results / run["run_id"], log=lambda _: None)
    assert run["run_id"].startswith("b" * 64 + "__")
    assert any("is cut to" in w for w in summary["warnings"]), summary["warnings"]
    assert any("is cut to" in w for w in disk.read_json(results / run["run_id"] / "summary.json")["warnings"])


def test_errors_name_the_line(tmp_path):
    path = tmp_path / "lines.yaml"
    path.write_text("experiment: {name: x}\n\nmodel:\n  latent_dim: 4\n  num_components: 10.0\n"
                    "sweep:\n  grid:\n    model.learning_rate: [0.1, -1]\n")
    plans = config.load_plans(path)
    errors = {str(e) for p in plans for e in p.errors}
    assert any(e.startswith(f"{path}:5: model.num_components") for e in errors), errors
    assert any(e.startswith(f"{path}:8: model.learning_rate") for e in errors), errors


@pytest.mark.parametrize("seed", range(40))
def test_the_cheap_split_check_never_passes_a_split_that_lacks_a_class(seed):
    """`surely_holds_every_class` may say no to a fine split, never yes to a bad one."""
    rng = np.random.default_rng(seed)
    dataset = ["digits", "mnist5k"][seed % 2]
    y, _ = datasets.labels(dataset)
    cfg = config.DataConfig(dataset, None, None, int(rng.integers(0, 50)), float(rng.choice([0.005, 0.01, 0.02,
                            0.05, 0.1, 0.5, 0.9])), float(rng.choice([0.003, 0.006, 0.01, 0.05, 0.2, 0.95])),
                            int(rng.integers(0, 2**32)))
    surely = datasets.surely_holds_every_class(np.bincount(y, minlength=10), cfg, official_test=False)
    try:
        index = datasets.split_index(y, cfg, official_test=False)
    except datasets.DataError:
        assert not surely
        return
    num_samples = int(rng.integers(20, 1000))
    sampled = dataclasses.replace(cfg, num_samples=num_samples, num_labeled=min(cfg.num_labeled, 10))
    with contextlib.suppress(datasets.DataError):
        assert len(datasets.split_index(y, sampled, False).train) == datasets.training_size(len(y), sampled, False)
    assert len(index.train) == datasets.training_size(len(y), cfg, official_test=False)
    if surely:
        assert datasets.missing_classes(y, None, index, 10) == {}


def test_embedded_label_tables_are_the_datasets_labels():
    assert np.array_equal(datasets.labels("digits")[0], datasets._digits()[1])
    assert np.array_equal(datasets.labels("mnist5k")[0], datasets._mnist5k()[1])


def _limited(memory_bytes: int):
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    return limit


@pytest.mark.parametrize("item_id", ["billion-laughs", "ten-mb-unknown-keys", "million-point-sweep", "fifo",
                                     "latin1", "deep-nesting", "bang-stem"])
def test_the_real_command_is_bounded(corpus, item_id):
    """The `ssvae` command itself, under 1.5 GB of address space and a 60 s timeout (a hang fails here)."""
    _, paths = corpus
    proc = subprocess.run([SSVAE, "validate", str(paths[item_id])], capture_output=True, text=True, timeout=60,
                          preexec_fn=_limited(1536 * 2**20))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert str(paths[item_id]) in proc.stderr
    assert all(words in proc.stderr for words in BY_ID[item_id].expect), proc.stderr


def test_one_point_of_a_large_sweep_is_planned_alone(tmp_path):
    """A validate_config job plans its own point (cheap names and keys of the others find collisions)."""
    path = tmp_path / "big_sweep.yaml"
    path.write_text("data: {dataset: digits}\nsweep: {grid: {model.latent_dim: [%s]}, seeds: [0, 1, 1]}\n"
                    % ", ".join(map(str, range(1, 801))))
    keys = config.plan_keys(path)
    assert len(keys) == 1600  # seed 1 twice: one key per (latent_dim, seed)
    plan = config.load_plan(path, keys[-1])
    assert not plan.ok and "same run name" in str(plan.errors[0])
    plan = config.load_plan(path, keys[0])
    assert plan.ok and plan.name == "big_sweep-z1-s0"
    every = config.load_plans(path)
    assert [p.key for p in every] == [k for k in keys for _ in range(1 + k.endswith("-s1"))]
    by_key = {p.key: p for p in every}
    for key in keys[:: len(keys) // 7]:
        assert config.load_plan(path, key).to_dict() == by_key[key].to_dict()
