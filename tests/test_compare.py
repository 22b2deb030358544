"""The comparison across run folders: one ranked table, standard errors, gain over each run's own baseline, seed
groups as mean ± std, differing-key columns, ELBO per likelihood, superseded runs apart."""

import csv
import json
import math

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import imread

from ssvae import compare, runs

from synthetic_run import write_summary_folder

SWEEP = {"group": "sweep", "config_source": "configs/sweep.yaml"}


@pytest.fixture
def results(tmp_path, template):
    results = tmp_path / "results"
    write_summary_folder(results, template, "sweep-s0__std_head_plain__20250102_000000", accuracy=0.8, baseline=0.7,
                         elbo=-100.0, seed=0, train_time=10.0, sweep_point={"model.random_seed": 0}, **SWEEP)
    write_summary_folder(results, template, "sweep-s1__std_head_plain__20250102_000001", accuracy=0.9, baseline=0.7,
                         elbo=-110.0, seed=1, train_time=14.0, sweep_point={"model.random_seed": 1}, **SWEEP)
    write_summary_folder(results, template, "mixy__mix10_head_plain__20250103_000000", accuracy=0.7, baseline=0.75,
                         elbo=-120.0, k_eff=6.5, prior="mixture", seed=3, model={"hidden_dims": [64]})
    # a run whose training stopped and a folder that is not a run: listed / ignored, never compared
    (results / "busy__std_head_plain__20250104_000000" / "logs").mkdir(parents=True)
    (results / "busy__std_head_plain__20250104_000000" / "logs" / "train.log").write_text("epoch 1/5\n")
    (results / "not-a-run").mkdir()
    return results


def by_id(rows):
    return {r["run_id"]: r for r in rows}


def test_rows_carry_accuracy_with_its_binomial_error_and_the_gain_over_the_runs_own_baseline(results):
    rows = by_id(compare.compare_runs(results)["rows"])
    mix = rows["mixy__mix10_head_plain__20250103_000000"]
    assert (mix["arch"], mix["prior"], mix["num_components"], mix["accuracy"], mix["baseline_accuracy"],
            mix["elbo"], mix["k_eff"], mix["seed"], mix["n"]) == ("mix10_head_plain", "mixture", 10, 0.7, 0.75,
                                                                  -120.0, 6.5, 3, 360)
    assert mix["accuracy_se"] == pytest.approx(math.sqrt(0.7 * 0.3 / 360))
    assert mix["gain"] == pytest.approx(-0.05)
    assert mix["gain_se"] == pytest.approx(math.sqrt((0.7 * 0.3 + 0.75 * 0.25) / 360))
    std = rows["sweep-s0__std_head_plain__20250102_000000"]
    assert std["num_components"] is None and std["k_eff"] is None  # no components for a standard prior
    assert (std["dataset"], std["latent_dim"], std["num_labeled"], std["split"]) == ("digits", 2, 50, "test")
    assert std["likelihood"] == "bernoulli_nll" and std["sweep"] == "sweep"
    assert mix["sweep"] is None
    assert rows["busy__std_head_plain__20250104_000000"]["status"] == "interrupted"


def test_the_seeds_of_a_sweep_point_are_one_entry_with_mean_std_and_n(results):
    out = compare.compare_runs(results)
    (group,) = out["groups"]
    assert (group["group"], group["arch"], group["runs"], group["seeds"]) == ("sweep", "std_head_plain", 2, [0, 1])
    assert group["accuracy"]["mean"] == pytest.approx(0.85)
    assert group["accuracy"]["std"] == pytest.approx(0.0707107, rel=1e-5)  # sample std, ddof 1
    assert group["accuracy"]["n"] == 2
    assert group["elbo"]["mean"] == pytest.approx(-105.0)
    assert group["k_eff"] == {"mean": None, "std": None, "n": 0}
    assert [len(e["members"]) for e in out["ranked"]] == [2, 1]


def test_one_ranked_table_best_first_with_runs_below_their_baseline_marked(results):
    compare.compare_runs(results)
    text = (results / "COMPARISON.md").read_text()
    assert text.count("## Ranking by accuracy") == 1 and "## `" not in text  # one table, not one per arch
    table = text[text.index("## Ranking by accuracy"):]
    first = next(line for line in table.splitlines() if line.startswith("| 1 |"))
    second = next(line for line in table.splitlines() if line.startswith("| 2 |"))
    assert "sweep (2 seeds)" in first and "85.0\u00a0±\u00a07.1 (n=2)" in first and "+15.0" in first
    assert "[mixy](mixy__mix10_head_plain__20250103_000000/REPORT.md)" in second
    assert "70.0\u00a0±\u00a02.4" in second  # 100·√(0.7·0.3/360) = 2.4 points
    assert "▼\u00a0-5.0\u00a0±\u00a03.3" in second and "▼" not in first
    assert "| busy__std_head_plain__20250104_000000 | interrupted |" in text  # not ranked, listed apart


def test_ranking_by_a_chosen_metric(results):
    assert [e["label"] for e in compare.compare_runs(results, metric="gain")["ranked"]] == ["sweep", "mixy"]
    assert [e["label"] for e in compare.compare_runs(results, metric="training_time")["ranked"]] == ["mixy", "sweep"]
    assert "## Ranking by training time" in (results / "COMPARISON.md").read_text()
    with pytest.raises(ValueError, match="cannot rank by 'speed'"):
        compare.compare_runs(results, metric="speed")


def test_columns_only_for_the_config_keys_that_differ_and_act(results, template):
    write_summary_folder(results, template, "tauy__mix10_tau_plain__20250103_000001", accuracy=0.6, baseline=0.7,
                         elbo=-130.0, prior="mixture", seed=3, model={"use_tau_classifier": True, "dropout_rate": 0.3,
                                                                      "tau_smoothing_alpha": 2.0})
    write_summary_folder(results, template, "heady__std_head_plain__20250103_000002", accuracy=0.65, baseline=0.7,
                         elbo=-125.0, seed=3, model={"dropout_rate": 0.3})
    out = compare.compare_runs(results)
    keys = out["keys"]
    assert "model.hidden_dims" in keys  # [64] for mixy, the default elsewhere
    assert "model.dropout_rate" in keys  # 0.3 for heady against the default for the sweep (both heads)
    assert "model.random_seed" in keys  # the seeds of the group, 3 elsewhere
    assert "model.learning_rate" not in keys  # the same everywhere
    assert "model.tau_smoothing_alpha" not in keys  # 2.0 vs the default, but it acts on one run only
    assert "model.prior_type" not in keys and "model.use_tau_classifier" not in keys  # named by the arch code
    tau = next(e for e in out["ranked"] if e["label"] == "tauy")
    assert compare._key_cell(tau, "model.dropout_rate") == "n/a"  # a τ-classifier has no head to drop out
    header = next(line for line in (results / "COMPARISON.md").read_text().splitlines() if line.startswith("| # |"))
    assert "| hidden_dims |" in header and "| dropout_rate |" in header and "learning_rate" not in header


def test_kl_c_weight_is_a_column_once_it_differs_between_two_runs_it_acts_on(results, template):
    for name, weight in (("ka", 0.3), ("kb", 1.0)):
        write_summary_folder(results, template, f"{name}__mix10_head_plain__20250105_000000", accuracy=0.6,
                             baseline=0.7, elbo=-130.0, prior="mixture", seed=3, model={"kl_c_weight": weight})
    assert "model.kl_c_weight" in compare.compare_runs(results)["keys"]


def test_elbo_is_compared_only_within_one_likelihood(results, template):
    write_summary_folder(results, template, "gauss__std_head_het__20250105_000000", accuracy=0.75, baseline=0.7,
                         elbo=23.7, likelihood="gaussian_nll", seed=3)
    out = compare.compare_runs(results)
    text = (results / "COMPARISON.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| # |"))
    assert "ELBO (Bernoulli)" in header and "ELBO (Gaussian)" in header
    columns = [c.strip() for c in header.strip("|").split("|")]
    gauss = next(line for line in text.splitlines() if "[gauss]" in line)
    cells = [c.strip() for c in gauss.strip("|").split("|")]
    assert cells[columns.index("ELBO (Gaussian)")] == "23.7" and cells[columns.index("ELBO (Bernoulli)")] == ""
    current = [r for r in out["rows"] if r["status"] == "success"]
    fig = compare._elbo_plot(current)
    titles = sorted(ax.get_title() for ax in fig.axes)
    assert titles == ["Bernoulli likelihood", "Gaussian likelihood"]


def test_legends_sit_outside_the_data(results):
    out = compare.compare_runs(results)
    current = [r for r in out["rows"] if r["status"] == "success"]
    for fig in (compare._accuracy_plot(current, out["groups"]), compare._elbo_plot(current)):
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        assert legends
        for ax, legend in ((ax, ax.get_legend()) for ax in fig.axes if ax.get_legend() is not None):
            assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1


def test_superseded_runs_are_listed_apart_and_never_ranked(results, template):
    old = "mixy__mix10_head_plain__20250101_000000"
    write_summary_folder(results, template, old, accuracy=0.95, baseline=0.75, elbo=-90.0, prior="mixture", seed=3,
                         model={"learning_rate": 0.01})
    out = compare.compare_runs(results)
    assert by_id(out["rows"])[old]["superseded_by"] == "mixy__mix10_head_plain__20250103_000000"
    assert all(old not in [m["run_id"] for m in e["members"]] for e in out["ranked"])
    text = (results / "COMPARISON.md").read_text()
    assert f"| {old} | mixy__mix10_head_plain__20250103_000000 |" in text.split("## Superseded runs")[1]
    # the config's latest plan names the run that is current, whatever the timestamps say
    runs.write_json(results / ".plan" / "mixy" / "run.json", {"run_id": old})
    out = compare.compare_runs(results)
    assert by_id(out["rows"])["mixy__mix10_head_plain__20250103_000000"]["superseded_by"] == old
    assert out["ranked"][0]["label"] == "mixy"


def test_comparison_files(results):
    compare.compare_runs(results)
    with open(results / "comparison.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["run_id"] for r in rows] == ["mixy__mix10_head_plain__20250103_000000",
                                           "busy__std_head_plain__20250104_000000",
                                           "sweep-s0__std_head_plain__20250102_000000",
                                           "sweep-s1__std_head_plain__20250102_000001"]
    assert rows[0]["rank"] == "2" and rows[2]["rank"] == "1" and rows[1]["rank"] == ""
    assert float(rows[0]["gain"]) == pytest.approx(-0.05) and rows[0]["model.hidden_dims"] == "[64]"
    assert rows[0]["accuracy"] == "0.7" and rows[2]["k_eff"] == ""
    html = (results / "COMPARISON.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html and "Ranking by accuracy" in html
    assert "REPORT.md" not in html and "<img" not in html  # no relative links inside the Snakemake report
    for name in ("comparison_accuracy.png", "comparison_elbo.png"):
        image = imread(results / name)
        assert image.shape[0] > 200 and image[..., :3].std() > 0.01
    before = {p.name: p.read_bytes() for p in results.iterdir() if p.is_file()}
    compare.compare_runs(results)
    assert {p.name: p.read_bytes() for p in results.iterdir() if p.is_file()} == before  # deterministic


def test_a_sweep_of_many_points_stays_readable(tmp_path, template):
    results = tmp_path / "results"
    for point in range(30):
        for seed in range(3):
            write_summary_folder(results, template, f"big-lr{point}-s{seed}__std_head_plain__20250102_00{point:02d}0{seed}",
                                 accuracy=0.5 + point / 100 + seed / 1000, baseline=0.6, elbo=-100.0, seed=seed,
                                 group=f"big-lr{point}", config_source="configs/big.yaml",
                                 sweep_point={"model.learning_rate": point, "model.random_seed": seed},
                                 model={"learning_rate": 0.001 * (point + 1)}, report_md=False)
    for i in range(25):
        write_summary_folder(results, template, f"solo{i}__mix10_head_plain__20250103_0000{i:02d}", accuracy=0.4,
                             baseline=0.6, elbo=-100.0, prior="mixture", seed=i, report_md=False)
    out = compare.compare_runs(results)
    assert len(out["ranked"]) == 55 and len(out["rows"]) == 115
    text = (results / "COMPARISON.md").read_text()
    ranking = text.split("## Ranking by accuracy")[1].split("<details>")[0]
    assert sum(line.startswith("| ") and line[2].isdigit() for line in ranking.splitlines()) == 50
    assert ranking.splitlines()[4].startswith("| 1 | big-lr29 (3 seeds)")
    assert "5 more entries (ranks 51–55)" in text
    sweep = text.split("## By sweep and arch")[1]
    assert "| big | `std_head_plain` | 30 | 90 | big-lr29 |" in sweep


def test_an_empty_results_folder_still_writes_every_output(tmp_path):
    out = compare.compare_runs(tmp_path)
    assert out["rows"] == [] and out["groups"] == []
    assert "No run has a readable summary.json yet." in (tmp_path / "COMPARISON.md").read_text()
    assert (tmp_path / "comparison.csv").read_text().startswith("rank,run_id,")
    for name in ("comparison_accuracy.png", "comparison_elbo.png", "COMPARISON.html"):
        assert (tmp_path / name).exists()
    assert json.loads(json.dumps(out["files"]))
