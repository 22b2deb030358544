"""End to end on a real trained model: fit.fit (2 epochs on digits) -> inference.load_model -> evaluate ->
build_report. Checks the pieces agree: the best checkpoint is what was scored, every metric and plot is a success
for a model that enables them all, and the numbers in summary.json are the ones in metrics.json."""

import pytest
from synthetic_run import load, metadata, strict_loads

from ssvae import disk, naming
from ssvae.data import datasets
from ssvae.evaluation import evaluate, metrics
from ssvae.model import inference
from ssvae.results import plots, report
from ssvae.training import fit

pytestmark = pytest.mark.jax


@pytest.mark.parametrize("model", [
    {"prior_type": "mixture", "num_components": 10, "use_tau_classifier": True, "use_heteroscedastic_decoder": True,
     "reconstruction_loss": "mse", "hidden_dims": [32], "latent_dim": 2, "max_epochs": 2},
    {"prior_type": "standard", "hidden_dims": [32], "latent_dim": 4, "max_epochs": 2},
], ids=["mix10_tau_het", "std_head_plain"])
def test_trained_model_through_evaluate_and_report(tmp_path, model):
    experiment, effective = load(tmp_path, model=model, name="integration")
    splits = datasets.load_splits(experiment.data)
    run_id = f"integration__{naming.arch_code(experiment.model)}__20250101_000000"
    run_dir = tmp_path / "results" / run_id
    result = fit.fit(experiment, splits, run_dir, resume_tag="integration", log=lambda message: None)
    disk.write_json(run_dir / "train.json", {**result, "data": splits.describe()})

    trained = inference.load_model(run_dir, experiment)
    document, arrays = evaluate.evaluate(experiment, splits, trained)
    evaluate.write_evaluation(run_dir, document, arrays)
    assert document["checkpoint"]["epoch"] == result["best_epoch"]
    applicable = {spec.name for spec in metrics.METRICS if spec.applies(experiment.model) is None}
    statuses = {name: m["status"] for name, m in document["metrics"].items()}
    assert statuses == {name: "success" if name in applicable else "disabled" for name in metrics.METRIC_NAMES}, \
        document["metrics"]
    assert document["baseline"]["logistic_regression"]["status"] == "success"
    rows = experiment.model.num_components if experiment.model.is_mixture else 1
    assert arrays["samples"].shape[:2] == (rows, evaluate.NUM_SAMPLES_PER_COMPONENT)

    summary, text = report.build_report(run_dir, experiment, effective,
                                        metadata(experiment, run_id, splits.fingerprint), [])
    report.write_report(run_dir, summary, text)
    summary = strict_loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "success", summary["failures"]
    drawn = plots.applicable_plots(experiment.model)
    assert {name: p["status"] for name, p in summary["plots"].items()} == \
        {n: "success" if n in drawn else "disabled" for n in plots.PLOT_NAMES}
    # split, fingerprint and evaluated epoch all consistent: the only warnings are the run's diagnostics
    assert summary["warnings"] == [d["message"] for d in summary["diagnostics"]]
    assert summary["headline"]["accuracy"] == document["metrics"]["accuracy"]["value"]
    assert summary["training"]["best_epoch"] == result["best_epoch"]
    assert sorted(p.name for p in (run_dir / "figures").iterdir()) == sorted(f"{n}.png" for n in drawn)
    for name in drawn:
        assert (run_dir / "figures" / f"{name}.png").stat().st_size > 5000
    assert "## Figures" in (run_dir / "REPORT.md").read_text()
