"""The `ssvae` command answers questions: which runs, sorted how, what differs, which folder a config trained into."""

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_run import write_config, write_summary_folder

from ssvae import cli, config, disk
from ssvae.results import runs

SSVAE = str(Path(sys.executable).with_name("ssvae"))


@pytest.fixture
def results(tmp_path, template):
    results = tmp_path / "results"
    sweep = {"group": "lr", "config_source": "configs/lr.yaml"}
    write_summary_folder(results, template, "lr-s0__mix10_tau_ca__20250102_090000", accuracy=0.81, baseline=0.76,
                         elbo=-100.0, prior="mixture", seed=0, tags=["mixture", "sweep"],
                         sweep_point={"model.random_seed": 0}, **sweep)
    write_summary_folder(results, template, "lr-s1__mix10_tau_ca__20250102_090001", accuracy=0.86, baseline=0.76,
                         elbo=-98.0, prior="mixture", seed=1, tags=["mixture", "sweep"],
                         sweep_point={"model.random_seed": 1}, **sweep)
    write_summary_folder(results, template, "wide__mix10-dir_head_plain__20250105_120000", accuracy=0.72,
                         baseline=0.76, elbo=-110.0, prior="mixture", seed=0, model={"hidden_dims": [512, 256],
                                                                                     "dirichlet_alpha": 2.0},
                         diagnostics=[{"code": "below_baseline", "message": "below", "value": -0.04,
                                       "threshold": 0.0}])
    write_summary_folder(results, template, "plain__std_head_plain__20250110_080000", accuracy=0.78, baseline=0.76,
                         elbo=-105.0, seed=0, dataset="mnist5k", model={"learning_rate": 0.0003})
    # the config of `plain` changed since this run: superseded
    write_summary_folder(results, template, "plain__std_head_plain__20250101_080000", accuracy=0.95, baseline=0.76,
                         elbo=-90.0, seed=0)
    return results


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def ids(text):
    return [line.split()[0] for line in text.splitlines()[1:] if "__" in line.split()[0]]


def test_runs_sorts_by_accuracy_and_hides_superseded_runs(results, capsys):
    code, out, _ = run_cli(capsys, "runs", "--results", str(results), "--sort", "accuracy")
    assert code == 0
    # ranked within each dataset: the mnist5k run (78 %) is not ranked above or between the digits runs
    assert ids(out) == ["lr-s1__mix10_tau_ca__20250102_090001", "lr-s0__mix10_tau_ca__20250102_090000",
                        "wide__mix10-dir_head_plain__20250105_120000", "plain__std_head_plain__20250110_080000"]
    assert "(ranked within each dataset and test split: digits/test, mnist5k/test;" in out
    assert "(1 superseded run(s) hidden" in out
    wide = next(line for line in out.splitlines() if line.startswith("wide__"))
    assert "-4.0±" in wide and "▼" in wide and "below_baseline" in wide  # gain over the baseline, warnings
    _, out, _ = run_cli(capsys, "runs", "--results", str(results), "--sort", "date", "--all")
    assert ids(out)[0] == "plain__std_head_plain__20250110_080000"
    old = next(line for line in out.splitlines() if line.startswith("plain__std_head_plain__20250101_080000"))
    assert old.split()[1:3] == ["success", "(superseded)"]


def test_runs_json_and_csv(results, capsys):
    _, out, _ = run_cli(capsys, "runs", "--results", str(results), "--sort", "gain", "--json")
    rows = json.loads(out)
    assert [r["run_id"] for r in rows][:2] == ["lr-s1__mix10_tau_ca__20250102_090001",
                                               "lr-s0__mix10_tau_ca__20250102_090000"]
    first = rows[0]
    assert first["accuracy"] == 0.86 and first["gain"] == pytest.approx(0.10) and first["n"] == 360
    assert first["sweep"] == "lr" and first["tags"] == ["mixture", "sweep"] and first["status"] == "success"
    _, out, _ = run_cli(capsys, "runs", "--results", str(results), "--csv")
    table = list(csv.DictReader(io.StringIO(out)))
    assert {r["run_id"] for r in table} == {r["run_id"] for r in rows}
    assert next(r for r in table if r["run_id"].startswith("wide"))["warnings"] == "below_baseline"


@pytest.mark.parametrize("filters, expected", [
    (["--arch", "mix10"], {"lr-s0", "lr-s1", "wide"}),  # a prefix: mix10-dir too
    (["--arch", "mix10_"], {"lr-s0", "lr-s1"}),
    (["--arch", "*_head_*"], {"wide", "plain"}),  # a glob
    (["--tag", "sweep"], {"lr-s0", "lr-s1"}),
    (["--dataset", "mnist5k"], {"plain"}),
    (["--sweep", "lr"], {"lr-s0", "lr-s1"}),
    (["--since", "2025-01-03"], {"wide", "plain"}),
    (["--since", "2025-01-02", "--until", "2025-01-05T11:00"], {"lr-s0", "lr-s1"}),
    (["--status", "superseded"], {"plain"}),
    (["--name", "lr-s"], {"lr-s0", "lr-s1"}),
])
def test_runs_filters(results, capsys, filters, expected):
    _, out, _ = run_cli(capsys, "runs", "--results", str(results), "--json", *filters)
    assert {r["name"] for r in json.loads(out)} == expected


def test_a_bad_date_is_a_clear_error(results):
    with pytest.raises(SystemExit, match="cannot read the date 'yesterday'"):
        cli.main(["runs", "--results", str(results), "--since", "yesterday"])


def test_show_prints_the_headline_warnings_and_where_the_figures_are(results, capsys):
    code, out, _ = run_cli(capsys, "show", "wide", "--results", str(results))
    assert code == 0
    assert out.startswith("wide__mix10-dir_head_plain__20250105_120000\n")
    assert "72.0% ± 2.4 (binomial SE, n=360)" in out and "-4.0±3.3 points (below the baseline)" in out
    assert "warnings (1):\n  - below" in out
    assert "report: " + str(results / "wide__mix10-dir_head_plain__20250105_120000" / "REPORT.md") in out
    assert "per_class_accuracy: " + str(results / "wide__mix10-dir_head_plain__20250105_120000" / "figures"
                                         / "per_class_accuracy.png") in out
    with pytest.raises(SystemExit, match="matches 2 runs"):
        cli.main(["show", "lr-s", "--results", str(results)])
    with pytest.raises(SystemExit, match="no run 'nothing'"):
        cli.main(["show", "nothing", "--results", str(results)])


def test_diff_prints_only_the_keys_and_metrics_that_differ(results, capsys):
    code, out, _ = run_cli(capsys, "diff", "wide", "lr-s1__mix10_tau_ca__20250102_090001", "--results", str(results))
    assert code == 0
    keys = [line.split()[0] for line in out.split("\n\n")[1].splitlines()[1:]]
    assert keys == ["experiment.name", "experiment.tags", "model.dirichlet_alpha", "model.hidden_dims",
                    "model.random_seed"]
    row = next(line for line in out.splitlines() if line.startswith("model.hidden_dims"))
    assert row.split(None, 1)[1].split("  ")[0] == "[512, 256]"
    assert "model.learning_rate" not in out and "data.dataset" not in out
    metrics = out.split("\n\n")[2]
    assert metrics.startswith("metric")
    assert "accuracy " in metrics and "+0.14" in metrics and "arch" in metrics
    assert "baseline_accuracy" not in metrics  # the same for both
    _, out, _ = run_cli(capsys, "diff", "wide", "wide", "--results", str(results), "--json")
    same = json.loads(out)
    assert same["config"] == {} and same["metrics"] == {}


def test_arch_takes_many_configs_and_names_the_real_run_when_it_exists(tmp_path, capsys):
    first = write_config(tmp_path, name="first")
    second = write_config(tmp_path, name="second", model={"prior_type": "mixture", "num_components": 10})
    results = tmp_path / "results"
    plan = config.load_plans(first)[0]
    ts = runs.mint_timestamp(results, plan.name, plan.arch, plan.identity)
    (results / f"first__std_head_plain__{ts}").mkdir(parents=True)
    code, out, _ = run_cli(capsys, "arch", str(first), str(second), "--results", str(results))
    assert code == 0
    assert out.splitlines() == [f"std_head_plain\tfirst__std_head_plain__{ts}",
                                "mix10_head_plain\tsecond__mix10_head_plain__<YYYYmmdd_HHMMSS>"]
    # no ledger (results copied without its dot-folders): the folder's config.yaml records the identity
    (results / ".ledger" / "first.json").unlink()
    disk.write_yaml(results / f"first__std_head_plain__{ts}" / "config.yaml", {"identity": plan.identity})
    _, out, _ = run_cli(capsys, "arch", str(first), "--results", str(results))
    assert out == f"std_head_plain\tfirst__std_head_plain__{ts}\n"


def test_the_command_line_entry_point(results):
    done = subprocess.run([SSVAE, "runs", "--results", str(results), "--arch", "std"], capture_output=True,
                          text=True, check=True)
    assert ids(done.stdout) == ["plain__std_head_plain__20250110_080000"]


def test_listing_and_comparing_runs_import_neither_jax_nor_scikit_learn_nor_matplotlib():
    """`ssvae runs` stays quick at hundreds of runs; matplotlib loads only when compare draws."""
    done = subprocess.run([sys.executable, "-c", "import sys, ssvae.cli, ssvae.results.compare; "
                           "print(sorted(m for m in ('jax', 'sklearn', 'flax', 'optax', 'matplotlib') "
                           "if m in sys.modules))"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    done = subprocess.run([sys.executable, "-c", "import sys, ssvae.results.report; "
                           "print(sorted(m for m in ('jax', 'sklearn', 'flax', 'optax') if m in sys.modules))"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_diff_says_when_two_runs_were_scored_on_different_test_images(results, capsys):
    _, out, _ = run_cli(capsys, "diff", "wide", "plain", "--results", str(results))
    assert ("note: A and B were scored on different test images (digits/test, n=360 vs mnist5k/test, n=360): "
            "their accuracies are not comparable") in out
    _, out, _ = run_cli(capsys, "diff", "wide", "lr-s0__mix10_tau_ca__20250102_090000", "--results", str(results))
    assert "note:" not in out


def test_show_takes_a_sweep_name(results, capsys):
    code, out, _ = run_cli(capsys, "show", "lr", "--results", str(results))
    assert code == 0
    assert out.startswith("sweep lr: 2 run(s), 2 finished")
    assert "varies: model.random_seed" in out
    assert "digits · test split · 360 images: ranked by accuracy" in out
    line = next(line for line in out.splitlines() if line.startswith("1 "))
    assert "lr (2 seeds: model seeds 0, 1; data seed 42)" in line and "83.5\u00a0±\u00a03.5\u00a0sd" in line
    _, out, _ = run_cli(capsys, "show", "lr", "--json", "--results", str(results))
    document = json.loads(out)
    assert document["varied"] == ["model.random_seed"] and len(document["runs"]) == 2
    assert document["blocks"][0]["entries"][0]["vs_best"]["best"] is True


def test_json_and_csv_carry_the_config_keys_that_differ_and_both_seeds(results, capsys):
    _, out, _ = run_cli(capsys, "runs", "--results", str(results), "--json")
    rows = {r["run_id"]: r for r in json.loads(out)}
    wide = rows["wide__mix10-dir_head_plain__20250105_120000"]
    assert wide["config"]["model.hidden_dims"] == [512, 256] and wide["config"]["model.dirichlet_alpha"] == 2.0
    assert "model.learning_rate" in wide["config"] and "model.latent_dim" not in wide["config"]  # the same everywhere
    assert (wide["seed"], wide["data_seed"]) == (0, 42)
    _, out, _ = run_cli(capsys, "runs", "--results", str(results), "--csv")
    table = {r["run_id"]: r for r in csv.DictReader(io.StringIO(out))}
    assert table["wide__mix10-dir_head_plain__20250105_120000"]["model.hidden_dims"] == "[512, 256]"
    _, out, _ = run_cli(capsys, "show", "wide", "--results", str(results))
    assert "seeds" in out and "model 0, data 42" in out


def test_piping_into_head_ends_cleanly(results):
    # `true` stops reading before ssvae writes (as `head` does once it has its lines): a closed pipe
    for command in ("runs --all", "runs --json", "show lr", "watch --once"):
        done = subprocess.run(["bash", "-o", "pipefail", "-c", f"{SSVAE} {command} --results {results} | true"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stderr == "", (command, done.stderr)
