"""Every plot draws from synthetic arrays; failures and skips are placeholders that say so, never success."""

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread
from synthetic_run import MIXTURE, CentroidModel, history_rows, load, train_document

from ssvae.data import datasets
from ssvae.evaluation import evaluate
from ssvae.results import plots

REPO = Path(__file__).resolve().parents[1]


def inputs_for(tmp_path, model=None, report=None, epochs=5, latent_dim=2):
    experiment, _ = load(tmp_path, model={"latent_dim": latent_dim, **(model or {})}, report=report)
    splits = datasets.load_splits(experiment.data)
    document, arrays = evaluate.evaluate(experiment, splits, CentroidModel(experiment, splits))
    k = experiment.model.num_components if experiment.model.is_mixture else None
    rows = history_rows(epochs, k)
    history = {key: np.array([row[key] for row in rows], dtype=float) for key in rows[0]}
    return plots.PlotInputs(experiment, history, arrays, document, train_document(epochs, best=3))


def assert_real_image(path: Path):
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.01, f"{path} is blank"


def test_every_plot_draws_for_a_model_that_enables_them_all(tmp_path):
    inputs = inputs_for(tmp_path, MIXTURE, report={"formats": ["png", "svg"]})
    assert plots.applicable_plots(inputs.experiment.model) == list(plots.PLOT_NAMES)
    statuses = plots.draw_plots(inputs, tmp_path / "run")
    assert list(statuses) == list(plots.PLOT_NAMES)
    for name, status in statuses.items():
        assert status.status == "success", (name, status.reason)
        assert status.value["files"] == [f"figures/{name}.png", f"figures/{name}.svg"]
        assert_real_image(tmp_path / "run" / "figures" / f"{name}.png")
        assert (tmp_path / "run" / "figures" / f"{name}.svg").read_text().startswith("<?xml")
    written = sorted(p.relative_to(tmp_path / "run").as_posix() for p in (tmp_path / "run" / "figures").iterdir())
    assert written == sorted(plots.figure_paths(inputs.experiment))


def test_a_standard_prior_disables_mixture_tau_and_sigma_plots_and_writes_no_file_for_them(tmp_path):
    inputs = inputs_for(tmp_path)
    run = tmp_path / "run"
    (run / "figures").mkdir(parents=True)
    (run / "figures" / "tau_heatmap.png").write_bytes(b"stale")  # from an earlier report: must go
    statuses = plots.draw_plots(inputs, run)
    disabled = {n for n, s in statuses.items() if s.status == "disabled"}
    assert disabled == {"latent_by_component", "pi_usage_evolution", "tau_heatmap", "sigma_maps"}
    assert "standard" in statuses["latent_by_component"].reason
    assert "use_tau_classifier" in statuses["tau_heatmap"].reason
    assert set(plots.applicable_plots(inputs.experiment.model)) == set(plots.PLOT_NAMES) - disabled
    for name in disabled:
        assert not list((run / "figures").glob(f"{name}.*"))
    assert all(statuses[n].ok for n in plots.applicable_plots(inputs.experiment.model))


def test_a_plot_whose_input_is_missing_fails_with_a_placeholder(tmp_path):
    inputs = inputs_for(tmp_path)
    del inputs.arrays["y_prob"]
    statuses = plots.draw_plots(inputs, tmp_path / "run")
    for name in ("per_class_accuracy", "calibration", "confusion_matrix"):
        status = statuses[name]
        assert status.status == "failed" and "y_prob" in status.reason
        assert status.value == {"files": [f"figures/{name}.png"], "placeholder": True}
        assert_real_image(tmp_path / "run" / "figures" / f"{name}.png")
    assert statuses["loss_curves"].ok  # the others still draw


def test_a_plot_that_raises_is_failed_never_success(tmp_path):
    inputs = inputs_for(tmp_path)

    def broken(_inputs):
        raise RuntimeError("axis exploded")

    status = plots.render_plot("broken", broken, inputs, tmp_path / "run")
    assert status.status == "failed" and status.reason == "RuntimeError: axis exploded"
    assert (tmp_path / "run" / "figures" / "broken.png").exists()


def test_an_empty_figure_is_failed(tmp_path):
    inputs = inputs_for(tmp_path)

    def empty(_inputs):
        fig = Figure()
        fig.subplots().set_title("nothing drawn")
        return fig

    status = plots.render_plot("empty", empty, inputs, tmp_path / "run")
    assert status.status == "failed" and "empty" in status.reason


def test_empty_history_fails_the_history_plots(tmp_path):
    inputs = inputs_for(tmp_path, {"prior_type": "mixture", "num_components": 4})
    inputs.history = {}
    statuses = plots.draw_plots(inputs, tmp_path / "run")
    assert statuses["loss_curves"].status == "failed" and "no epochs" in statuses["loss_curves"].reason
    assert statuses["pi_usage_evolution"].status == "failed"
    inputs = inputs_for(tmp_path, {"prior_type": "mixture", "num_components": 4})
    inputs.history = {k: v for k, v in inputs.history.items() if not k.startswith(("pi_", "usage_"))}
    status = plots.draw_plot("pi_usage_evolution", inputs, tmp_path / "run")
    assert status.status == "failed" and "pi_<k>" in status.reason


def test_missing_samples_fail_with_the_samplers_reason(tmp_path):
    inputs = inputs_for(tmp_path)
    del inputs.arrays["samples"]
    inputs.metrics["artifacts"]["samples"] = {"status": "failed", "value": None, "reason": "RuntimeError: boom"}
    status = plots.draw_plot("samples", inputs, tmp_path / "run")
    assert status.status == "failed" and "RuntimeError: boom" in status.reason


def test_skip_plots_gives_a_skipped_placeholder(tmp_path):
    inputs = inputs_for(tmp_path, report={"skip_plots": ["calibration"]})
    status = plots.draw_plot("calibration", inputs, tmp_path / "run")
    assert status.status == "skipped" and status.reason == "skipped by report.skip_plots"
    assert status.value["placeholder"] and (tmp_path / "run" / "figures" / "calibration.png").exists()
    assert "calibration" in plots.applicable_plots(inputs.experiment.model)


def test_placeholder_says_why():
    fig = plots.placeholder("plot failed: history.csv has no epochs")
    assert "history.csv has no epochs" in fig.texts[0].get_text().replace("\n", " ")


def test_latent_axes_say_dims_or_pca(tmp_path):
    fig = plots.plot_latent_by_label(inputs_for(tmp_path, latent_dim=2))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "latent z$_1$" and ax.get_ylabel() == "latent z$_2$"
    fig = plots.plot_latent_by_label(inputs_for(tmp_path, latent_dim=6))
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("PC 1 of z") and "PCA of 6 latent dims" in ax.get_title()


def test_latent_by_label_uses_the_class_palette(tmp_path):
    inputs = inputs_for(tmp_path)
    ax = plots.plot_latent_by_label(inputs).axes[0]
    colors = plots.class_colors(10)
    for collection, text in zip(ax.collections, ax.get_legend().get_texts()):
        assert tuple(collection.get_facecolor()[0][:3]) == pytest.approx(colors[int(text.get_text())][:3])


def test_palettes_are_distinct_and_stable():
    assert plots.class_colors(10) == plots.class_colors(10)
    for k in (5, 12, 20, 33):
        colors = plots.component_colors(k)
        assert len(colors) == k and len(set(colors)) == k
    assert not set(plots.component_colors(10)) & set(plots.class_colors(10))


def test_report_captions_exist_for_every_plot_and_match_the_registry():
    for name in plots.PLOT_NAMES:
        path = REPO / "workflow" / "report" / f"{name}.rst"
        assert path.read_text() == plots.caption_rst(name), f"regenerate {path} from plots.caption_rst"
    for extra in ("workflow.rst", "comparison.rst"):
        assert (REPO / "workflow" / "report" / extra).read_text().strip()


def test_the_figures_directory_caption_picks_each_plots_text_by_the_figure_wildcard():
    import io
    import types

    import docutils.core
    import jinja2

    path = REPO / "workflow" / "report" / "figures.rst"
    template = path.read_text()
    assert template == plots.figures_caption_rst(), f"regenerate {path} from plots.figures_caption_rst"
    for name in plots.PLOT_NAMES + ("not_a_plot",):
        snakemake = types.SimpleNamespace(wildcards=types.SimpleNamespace(figure=name))
        text = jinja2.Environment().from_string(template).render(snakemake=snakemake)
        warnings = io.StringIO()
        docutils.core.publish_parts(text, writer_name="html", settings_overrides={"warning_stream": warnings})
        assert warnings.getvalue() == ""
        expected = plots._BY_NAME[name].title if name in plots.PLOT_NAMES else "A figure of this run"
        assert expected in text and text.count("**") <= 2


def loss_history(epochs=6, val_includes_classification=False, dirichlet=2.302585):
    """history.csv columns as training writes them: val_loss without classification (unless asked)."""
    rng = np.random.default_rng(0)
    epoch = np.arange(1, epochs + 1, dtype=float)
    history = {"epoch": epoch}
    for split, offset in (("train", 0.0), ("val", 2.0)):
        terms = {"reconstruction": 60 / epoch + 20 + offset, "kl_z": 5 + 0.1 * epoch,
                 "classification": 20 / epoch + 1, "dirichlet": dirichlet + rng.normal(0, 1e-7, epochs),
                 "kl_c": np.zeros(epochs), "l1": np.zeros(epochs)}
        for t, v in terms.items():
            history[f"{split}_{t}"] = v
        summed = [t for t in terms if split == "train" or val_includes_classification or t != "classification"]
        history[f"{split}_loss"] = np.sum([terms[t] for t in summed], axis=0)
    history["train_accuracy"] = history["val_accuracy"] = np.linspace(0.3, 0.8, epochs)
    return history


def legend_texts(fig):
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_loss_curves_say_which_terms_each_total_sums(tmp_path):
    inputs = inputs_for(tmp_path)
    inputs.history = loss_history()
    fig = plots.plot_loss_curves(inputs)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles[0] == "total loss\n(train = Σ all terms; validation = Σ terms except classification)"
    inputs.history = loss_history(val_includes_classification=True)
    assert plots.plot_loss_curves(inputs).axes[0].get_title().endswith("validation = Σ all terms)")
    assert set(plots.total_terms(loss_history(), "val")) == {"reconstruction", "kl_z", "dirichlet", "kl_c", "l1"}
    broken = loss_history()
    broken["val_loss"] = broken["val_loss"] * 3
    assert plots.total_terms(broken, "val") is None
    assert "validation: as logged" in plots._total_title(broken)


def test_constant_and_zero_terms_get_no_panel_and_are_listed_with_their_value(tmp_path):
    inputs = inputs_for(tmp_path)
    inputs.history = loss_history()  # a Dirichlet penalty of 2.302585 ± 1e-7: float noise around a constant
    fig = plots.plot_loss_curves(inputs)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert not any("Dirichlet" in t for t in titles) and "classification" in titles
    texts = legend_texts(fig)
    assert "not drawn, constant in every epoch: dirichlet = 2.303" in texts
    assert "not drawn, 0 in every epoch: kl_c, l1" in texts
    inputs.history = loss_history(dirichlet=np.linspace(2.0, 2.3, 6))  # a learned π: the penalty moves
    assert any("Dirichlet" in ax.get_title() for ax in plots.plot_loss_curves(inputs).axes)
    assert plots.constant_value(np.array([1.0, 1.0 + 1e-9]), None) == pytest.approx(1.0)
    assert plots.constant_value(np.array([1.0, 1.01])) is None


def test_sigma_maps_say_when_sigma_is_clipped(tmp_path):
    inputs = inputs_for(tmp_path, {**MIXTURE, "sigma_min": 0.05, "sigma_max": 0.06})
    assert "clipped, not learned" in plots.plot_sigma_maps(inputs)._suptitle.get_text()
    (tmp_path / "spread").mkdir()
    spread = inputs_for(tmp_path / "spread", {**MIXTURE, "sigma_min": 0.01, "sigma_max": 5.0})
    assert "clipped" not in plots.plot_sigma_maps(spread)._suptitle.get_text()
