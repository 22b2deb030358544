"""Real inputs for the evaluation/report tests, without training a network.

`CentroidModel` is a small, genuine non-neural model with the `inference.TrainedModel` interface (nearest class
centroids of the labeled images, k-means components, a tau matrix from labeled responsibilities), so that
`evaluate`, the plots and the report run on real digits data in well under a second.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import yaml

from ssvae import config, disk
from ssvae.data import datasets
from ssvae.evaluation.predictions import Predictions


def strict_loads(text: str):
    """json.loads that rejects NaN / Infinity."""
    def reject(token):
        raise ValueError(f"non-strict JSON constant {token}")

    return json.loads(text, parse_constant=reject)


def write_config(folder: Path, model: dict | None = None, evaluation: dict | None = None,
                 report: dict | None = None, data_cfg: dict | None = None, name: str = "synthetic",
                 experiment: dict | None = None) -> Path:
    document = {
        "experiment": {"name": name, "description": "synthetic run for tests", "tags": ["test"], **(experiment or {})},
        "data": {"dataset": "digits", "num_labeled": 50, **(data_cfg or {})},
        "model": {"latent_dim": 2, "max_epochs": 2, **(model or {})},
        "evaluation": {"num_plot_samples": 200, **(evaluation or {})},
        "report": {"dpi": 60, **(report or {})},
    }
    path = Path(folder) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def load(folder: Path, **kwargs) -> tuple[config.Experiment, dict]:
    """A validated Experiment and its effective config, through the real config loader."""
    plan = config.load_plans(write_config(folder, **kwargs))[0]
    assert plan.ok, [str(e) for e in plan.errors]
    return plan.experiment(), plan.effective


MIXTURE = {"prior_type": "mixture", "num_components": 10, "use_tau_classifier": True,
           "use_heteroscedastic_decoder": True, "reconstruction_loss": "mse"}


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


class CentroidModel:
    """Nearest-centroid classifier + k-means 'components' over raw pixels, with the TrainedModel interface."""

    def __init__(self, experiment: config.Experiment, splits: datasets.Splits, temperature: float = 2.0):
        cfg = experiment.model
        self.cfg = cfg
        self.hw = splits.image_hw
        self.temperature = temperature
        self.predict_calls = 0
        flat = splits.x_train.reshape(len(splits.x_train), -1).astype(np.float64)
        xl, yl = flat[splits.labeled], splits.y_train[splits.labeled]
        self.centroids = np.stack([xl[yl == c].mean(axis=0) if (yl == c).any() else flat.mean(axis=0)
                                   for c in range(splits.num_classes)])
        centred = flat - flat.mean(axis=0)
        self.mean = flat.mean(axis=0)
        self.basis = np.linalg.svd(centred, full_matrices=False)[2][: cfg.latent_dim]
        self.scale = (centred @ self.basis.T).std(axis=0) + 1e-6
        self.components = None
        self.pi = None
        self.tau = None
        if cfg.is_mixture:
            rng = np.random.default_rng(cfg.random_seed)
            centres = flat[rng.choice(len(flat), cfg.num_components, replace=False)]
            for _ in range(5):
                assign = ((flat[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
                centres = np.stack([flat[assign == k].mean(0) if (assign == k).any() else centres[k]
                                    for k in range(len(centres))])
            self.components = centres
            self.pi = np.full(cfg.num_components, 1.0 / cfg.num_components)
            if cfg.use_tau_classifier:
                counts = np.full((cfg.num_components, splits.num_classes), cfg.tau_smoothing_alpha)
                r = self._responsibilities(xl)
                np.add.at(counts.T, yl, r)
                self.tau = counts / counts.sum(axis=1, keepdims=True)

    def _responsibilities(self, flat: np.ndarray) -> np.ndarray:
        d2 = ((flat[:, None, :] - self.components[None]) ** 2).sum(-1)
        return _softmax(-d2 / self.temperature)

    def predict(self, x: np.ndarray, batch_size: int) -> Predictions:
        self.predict_calls += 1
        flat = x.reshape(len(x), -1).astype(np.float64)
        z = ((flat - self.mean) @ self.basis.T) / self.scale
        resp = self._responsibilities(flat) if self.components is not None else None
        if self.tau is not None:
            y_prob = resp @ self.tau
        else:
            d2 = ((flat[:, None, :] - self.centroids[None]) ** 2).sum(-1)
            y_prob = _softmax(-d2 / self.temperature)
        recon_flat = np.clip(self.mean + (z * self.scale) @ self.basis, 0.0, 1.0)
        sigma = None
        if self.cfg.use_heteroscedastic_decoder:
            rms = np.sqrt(((flat - recon_flat) ** 2).mean(axis=1))
            sigma = np.clip(rms, self.cfg.sigma_min, self.cfg.sigma_max)
        p = np.clip(recon_flat, 1e-4, 1 - 1e-4)
        terms = {
            "reconstruction": -(flat * np.log(p) + (1 - flat) * np.log(1 - p)).sum(axis=1),
            "kl_z": 0.5 * (z**2).sum(axis=1),
        }
        if resp is not None:
            terms["kl_c"] = (resp * np.log(np.clip(resp, 1e-12, 1) * len(self.pi))).sum(axis=1)
        return Predictions(z=z.astype(np.float32), z_logvar=np.zeros_like(z, dtype=np.float32),
                           y_prob=y_prob.astype(np.float32),
                           responsibilities=None if resp is None else resp.astype(np.float32),
                           recon=recon_flat.reshape(len(x), *self.hw).astype(np.float32),
                           sigma=None if sigma is None else sigma.astype(np.float32), terms=terms)

    def sample(self, n_per_component: int, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        centres = self.components if self.components is not None else self.mean[None]
        noise = rng.normal(0, 0.1, size=(len(centres), n_per_component, centres.shape[1]))
        return np.clip(centres[:, None, :] + noise, 0, 1).reshape(len(centres), n_per_component, *self.hw)


def history_rows(epochs: int, num_components: int | None = None, seed: int = 0) -> list[dict]:
    """history.csv rows with the columns training writes (decreasing losses, some all-zero terms)."""
    rng = np.random.default_rng(seed)
    rows = []
    for epoch in range(1, epochs + 1):
        row = {"epoch": epoch}
        for split, offset in (("train", 0.0), ("val", 3.0)):
            recon = 60.0 / epoch + 20 + offset + rng.normal(0, 0.2)
            kl_z = 5.0 + 0.1 * epoch
            classification = 2.0 / epoch + 0.1
            row.update({f"{split}_reconstruction": recon, f"{split}_kl_z": kl_z,
                        f"{split}_kl_c": 0.5 if num_components else 0.0, f"{split}_logit_mog": 0.0,
                        f"{split}_dirichlet": 0.0, f"{split}_diversity": 0.0,
                        f"{split}_classification": classification, f"{split}_l1": 0.0,
                        f"{split}_loss": recon + kl_z + classification,
                        f"{split}_accuracy": min(0.95, 0.3 + 0.1 * epoch)})
        row.update({"kl_c_scale": 1.0, "gumbel_temperature": 1.0, "epoch_seconds": 0.1})
        if num_components:
            usage = rng.dirichlet(np.full(num_components, 5.0))
            for k in range(num_components):
                row[f"pi_{k}"] = 1.0 / num_components
                row[f"usage_{k}"] = usage[k]
        rows.append(row)
    return rows


def write_history(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def train_document(epochs: int = 6, best: int = 4) -> dict:
    return {"status": "success", "epochs_completed": epochs, "best_epoch": best, "monitor_metric": "val_loss",
            "best_value": 101.5, "stopped_early": False, "training_time_sec": 3.2, "samples_per_sec": 4000.0,
            "final": {"train_loss": 95.0, "val_loss": float("nan")}}


def metadata(experiment: config.Experiment, run_id: str, fingerprint: str | None = None, group: str | None = None,
             seed: int | None = None) -> dict:
    name, arch, ts = run_id.split("__")
    return {"run_id": run_id, "architecture_code": arch, "timestamp": ts,
            "experiment_name": experiment.experiment.name, "description": experiment.experiment.description,
            "tags": list(experiment.experiment.tags), "group": group,
            "seed": experiment.model.random_seed if seed is None else seed, "dataset": experiment.data.dataset,
            "dataset_fingerprint": fingerprint, "git_commit": "0" * 40, "git_dirty": False,
            "versions": {"python": "3.x"}, "host": "test", "device": "cpu"}


def make_run(results: Path, run_id: str, experiment: config.Experiment, *, history: bool = True,
             epochs: int = 6) -> tuple[Path, datasets.Splits, CentroidModel]:
    """A run folder as train + evaluate leave it: train.json, history.csv, metrics.json, predictions.npz."""
    from ssvae.evaluation import evaluate

    run_dir = Path(results) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    splits = datasets.load_splits(experiment.data)
    model = CentroidModel(experiment, splits)
    disk.write_json(run_dir / "train.json", {**train_document(epochs), "data": splits.describe()})
    if history:
        k = experiment.model.num_components if experiment.model.is_mixture else None
        write_history(run_dir / "history.csv", history_rows(epochs, k))
    document, arrays = evaluate.evaluate(experiment, splits, model)
    evaluate.write_evaluation(run_dir, document, arrays)
    return run_dir, splits, model


def write_summary_folder(results: Path, template: dict, run_id: str, *, accuracy: float, baseline: float,
                         elbo: float, likelihood: str | None = None, k_eff: float | None = None,
                         group: str | None = None, seed: int = 0, prior: str = "standard", k: int = 10,
                         train_time: float = 10.0, model: dict | None = None, n: int | None = None,
                         tags: list | None = None, dataset: str | None = None, sweep_point: dict | None = None,
                         config_source: str | None = None, diagnostics: list | None = None,
                         report_md: bool = True) -> Path:
    """A finished run folder (summary.json, metrics.json, predictions.npz from a template summary.json as the
    report stage writes it, with the given headline values; the other outputs of every stage as small
    placeholders, since a run is `success` only with all of them): fast enough for hundreds of runs."""
    import copy

    name, arch, ts = run_id.split("__")
    summary = copy.deepcopy(template)
    summary["metadata"].update(run_id=run_id, architecture_code=arch, timestamp=ts, experiment_name=name,
                               group=group, seed=seed, sweep_point=sweep_point,
                               config_source=config_source or f"configs/{name}.yaml")
    if tags is not None:
        summary["metadata"]["tags"] = summary["config"]["experiment"]["tags"] = tags
    if dataset is not None:
        summary["metadata"]["dataset"] = dataset
        summary["config"]["data"]["dataset"] = dataset
    summary["config"]["experiment"]["name"] = name
    summary["config"]["model"].update(prior_type=prior, num_components=k, random_seed=seed, **(model or {}))
    metrics = summary["evaluation"]["metrics"]
    metrics["accuracy"]["value"] = accuracy
    metrics["elbo"]["value"]["elbo"] = elbo
    if likelihood is not None:
        metrics["elbo"]["value"]["likelihood"] = likelihood
    if k_eff is not None:
        metrics["k_eff"] = {"value": k_eff, "status": "success", "reason": None}
    if n is not None:
        summary["evaluation"]["num_examples"] = n
    summary["evaluation"]["baseline"]["logistic_regression"]["value"]["accuracy"] = baseline
    summary["training"]["training_time_sec"] = train_time
    summary["diagnostics"] = diagnostics or []
    summary["warnings"] = [d["message"] for d in summary["diagnostics"]]
    folder = Path(results) / run_id
    disk.write_json(folder / "summary.json", summary)
    if report_md:
        from ssvae.results import report

        disk.write_text(folder / "REPORT.md", report.render_markdown(summary))
    else:
        disk.write_text(folder / "REPORT.md", f"# {run_id}\n")
    disk.write_json(folder / "train.json", {"status": "success"})
    disk.write_text(folder / "history.csv", "epoch\n")
    disk.write_bytes(folder / "checkpoints" / "best.msgpack", b"")
    disk.write_text(folder / "REPORT.html", "<html></html>\n")
    disk.write_yaml(folder / "config.yaml", {"run_id": run_id})
    (folder / "figures").mkdir(exist_ok=True)
    disk.write_json(folder / "metrics.json", {"split": "test", "metrics": metrics})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, y_true=np.zeros(3, dtype=np.int64))
    disk.write_bytes(folder / "predictions.npz", buffer.getvalue())
    return folder


def template_summary(folder: Path) -> dict:
    """One summary.json exactly as the report stage writes it, for a standard-prior digits run (few plots)."""
    experiment, effective = load(folder, name="template",
                                 report={"skip_plots": ["loss_curves", "latent_by_label", "reconstructions",
                                                        "samples", "calibration", "confusion_matrix"]})
    run_id = "template__std_head_plain__20250101_000000"
    from ssvae.results import report

    run_dir, splits, _ = make_run(Path(folder) / "results", run_id, experiment)
    summary, _ = report.build_report(run_dir, experiment, effective, metadata(experiment, run_id, splits.fingerprint),
                                     [])
    return json.loads(json.dumps(summary))
