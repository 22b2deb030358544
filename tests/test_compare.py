"""The comparison across run folders: one row per summary.json, grouped by arch, mean ± std over seeds."""

import copy
import csv
import json

import pytest
from matplotlib.image import imread

from ssvae import compare, report, runs

from synthetic_run import load, make_run, metadata

TEMPLATE_ID = "template__std_head_plain__20250101_000000"


@pytest.fixture(scope="module")
def template_summary(tmp_path_factory):
    """One summary.json exactly as the report stage writes it, for a standard-prior run."""
    tmp = tmp_path_factory.mktemp("template")
    experiment, effective = load(tmp, name="template", report={"skip_plots": ["loss_curves", "latent_by_label",
                                                                            "reconstructions", "samples",
                                                                            "calibration", "confusion_matrix"]})
    run_dir, splits, _ = make_run(tmp / "results", TEMPLATE_ID, experiment)
    summary, _ = report.build_report(run_dir, experiment, effective,
                                     metadata(experiment, TEMPLATE_ID, splits.fingerprint), [])
    return json.loads(json.dumps(summary))


def write_summary(results, template, run_id, *, accuracy, baseline, elbo, k_eff=None, group=None, seed=0,
                  prior="standard", k=10, train_time=10.0, learning_rate=None):
    name, arch, ts = run_id.split("__")
    summary = copy.deepcopy(template)
    summary["metadata"].update(run_id=run_id, architecture_code=arch, timestamp=ts, group=group, seed=seed)
    summary["config"]["model"].update(prior_type=prior, num_components=k, random_seed=seed)
    if learning_rate is not None:
        summary["config"]["model"]["learning_rate"] = learning_rate
    metrics = summary["evaluation"]["metrics"]
    metrics["accuracy"]["value"] = accuracy
    metrics["elbo"]["value"]["elbo"] = elbo
    if k_eff is not None:
        metrics["k_eff"] = {"value": k_eff, "status": "success", "reason": None}
    summary["evaluation"]["baseline"]["logistic_regression"]["value"]["accuracy"] = baseline
    summary["training"]["training_time_sec"] = train_time
    runs.write_json(results / run_id / "summary.json", summary)


@pytest.fixture
def results(tmp_path, template_summary):
    results = tmp_path / "results"
    write_summary(results, template_summary, "sweep-s0__std_head_plain__20250102_000000", accuracy=0.8, baseline=0.7,
                  elbo=-100.0, group="sweep", seed=0, train_time=10.0)
    write_summary(results, template_summary, "sweep-s1__std_head_plain__20250102_000001", accuracy=0.9, baseline=0.7,
                  elbo=-110.0, group="sweep", seed=1, train_time=14.0)
    write_summary(results, template_summary, "mixy__mix10_head_plain__20250103_000000", accuracy=0.7, baseline=0.65,
                  elbo=-120.0, k_eff=6.5, prior="mixture", seed=3)
    # a run still training and a folder that is not a run: listed / ignored, never compared
    (results / "busy__std_head_plain__20250104_000000" / "checkpoints").mkdir(parents=True)
    (results / "not-a-run").mkdir()
    return results


def test_three_runs_give_three_rows_with_their_values(results):
    out = compare.compare_runs(results)
    rows = {r["run_id"]: r for r in out["rows"]}
    assert len(rows) == 3
    mix = rows["mixy__mix10_head_plain__20250103_000000"]
    assert (mix["arch"], mix["prior"], mix["num_components"], mix["accuracy"], mix["baseline_accuracy"],
            mix["elbo"], mix["k_eff"], mix["seed"]) == ("mix10_head_plain", "mixture", 10, 0.7, 0.65, -120.0, 6.5, 3)
    std = rows["sweep-s0__std_head_plain__20250102_000000"]
    assert std["num_components"] is None and std["k_eff"] is None  # no components for a standard prior
    assert (std["dataset"], std["latent_dim"], std["num_labeled"], std["split"]) == ("digits", 2, 50, "test")
    assert std["training_time_sec"] == 10.0 and std["best_epoch"] == 4
    assert std["likelihood"] == "bernoulli_nll"  # ELBOs are comparable only between equal likelihoods


def test_runs_sharing_group_and_arch_get_mean_and_std(results):
    groups = compare.compare_runs(results)["groups"]
    assert len(groups) == 1  # the mixture run has no group: no aggregate for a single run
    group = groups[0]
    assert (group["group"], group["arch"], group["runs"], group["seeds"]) == ("sweep", "std_head_plain", 2, [0, 1])
    assert group["accuracy"]["mean"] == pytest.approx(0.85)
    assert group["accuracy"]["std"] == pytest.approx(0.0707107, rel=1e-5)  # sample std, ddof 1
    assert group["elbo"]["mean"] == pytest.approx(-105.0)
    assert group["training_time_sec"]["mean"] == pytest.approx(12.0)
    assert group["k_eff"] == {"mean": None, "std": None, "n": 0}


def test_an_edited_config_under_the_same_name_is_not_averaged_as_a_seed(results, template_summary):
    write_summary(results, template_summary, "sweep-s0__std_head_plain__20250105_000000", accuracy=0.1, baseline=0.7,
                  elbo=-300.0, group="sweep", seed=0, learning_rate=0.1)
    out = compare.compare_runs(results)
    assert len(out["rows"]) == 4
    assert [g["runs"] for g in out["groups"]] == [2]
    assert out["groups"][0]["accuracy"]["mean"] == pytest.approx(0.85)


def test_comparison_files(results):
    compare.compare_runs(results)
    text = (results / "COMPARISON.md").read_text()
    assert "| sweep | `std_head_plain` | 2 | 0, 1 | 0.85 ± 0.07071 |" in text
    assert text.index("## `mix10_head_plain`") < text.index("## `std_head_plain`")  # grouped by arch
    assert "[mixy__mix10_head_plain__20250103_000000](mixy__mix10_head_plain__20250103_000000/REPORT.md)" in text
    assert "| busy__std_head_plain__20250104_000000 | training |" in text
    with open(results / "comparison.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["run_id"] for r in rows] == ["mixy__mix10_head_plain__20250103_000000",
                                           "sweep-s0__std_head_plain__20250102_000000",
                                           "sweep-s1__std_head_plain__20250102_000001"]
    assert rows[0]["accuracy"] == "0.7" and rows[1]["k_eff"] == ""
    for name in ("comparison_accuracy.png", "comparison_elbo.png"):
        image = imread(results / name)
        assert image.shape[0] > 200 and image[..., :3].std() > 0.01
    before = {p.name: p.read_bytes() for p in results.iterdir() if p.is_file()}
    compare.compare_runs(results)
    assert {p.name: p.read_bytes() for p in results.iterdir() if p.is_file()} == before  # deterministic


def test_run_rows_lists_every_run_folder_with_its_stage(results):
    rows = compare.run_rows(results)
    assert [r["run_id"] for r in rows] == ["mixy__mix10_head_plain__20250103_000000",
                                           "busy__std_head_plain__20250104_000000",
                                           "sweep-s0__std_head_plain__20250102_000000",
                                           "sweep-s1__std_head_plain__20250102_000001"]
    busy = rows[1]
    assert busy["status"] == "training" and busy["accuracy"] is None
    assert rows[0]["status"] == "success" and rows[0]["accuracy"] == 0.7


def test_an_empty_results_folder_still_writes_every_output(tmp_path):
    out = compare.compare_runs(tmp_path)
    assert out["rows"] == [] and out["groups"] == []
    assert "No run folder has a summary.json yet." in (tmp_path / "COMPARISON.md").read_text()
    assert (tmp_path / "comparison.csv").read_text().startswith("run_id,")
    assert (tmp_path / "comparison_accuracy.png").exists() and (tmp_path / "comparison_elbo.png").exists()
