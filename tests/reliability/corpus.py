"""A corpus of bad configs, each with the key and the words its error message must hold.

Every item is a whole config file as a researcher could write it. `{here}` in a text stands for the folder
the corpus is written to (`write_corpus` also puts the data fixtures there). Items marked `workflow=False`
are not files Snakemake can be handed as a config at all (a folder, a pipe); they go through
`ssvae validate` only.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path
from typing import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Bad:
    id: str
    text: str | bytes | Callable[[], bytes]
    key: str  # the dotted key the message names ("" for a file-level error)
    expect: tuple[str, ...]  # words the message holds
    filename: str | None = None
    workflow: bool = True
    kind: str = "file"  # "file", "folder" or "fifo"

    @property
    def file(self) -> str:
        return self.filename or f"{self.id}.yaml"


def bad(id, text, key, *expect, **kw) -> Bad:
    return Bad(id, text, key, tuple(expect), **kw)


def _billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _too_big() -> bytes:
    return b"# padding\n" * 110_000 + b"model: {}\n"


def _ten_mb_of_unknown_keys() -> bytes:
    return b"model:\n" + b"".join(b"  unknown_key_%07d: %s\n" % (i, b"x" * 80) for i in range(110_000))


def _grid(n: int) -> str:
    values = ", ".join(str(i) for i in range(1, n + 1))
    return (f"sweep: {{grid: {{model.latent_dim: [{values}], model.batch_size: [{values}], "
            f"model.max_epochs: [{values}]}}}}\n")


CORPUS: list[Bad] = [
    # --- the file itself ------------------------------------------------------------------------------------
    bad("latin1", b'experiment: {description: "caf\xe9 au lait"}\n', "", "not UTF-8", ":1:", "Latin-1"),
    bad("utf16", "model: {latent_dim: 4}\n".encode("utf-16"), "", "not UTF-8"),
    bad("empty", "", "", "empty", "{}"),
    bad("comments-only", "# TODO: fill in\n# model: {}\n", "", "empty"),
    bad("blank-lines", "\n\n   \n", "", "empty"),
    bad("scalar-document", "mixture\n", "", "must be a mapping of sections"),
    bad("list-document", "- model\n- data\n", "", "must be a mapping of sections"),
    bad("null-document", "null\n", "", "must be a mapping of sections"),
    bad("two-documents", "model: {latent_dim: 4}\n---\ndata: {dataset: digits}\n", "", "one YAML document", ":2:"),
    bad("document-markers", "---\nmodel: {}\n...\n---\nmodel: {}\n", "", "one YAML document"),
    bad("python-tag", "model: !!python/object/apply:os.system [echo hi]\n", "", "tags are not allowed", ":1:"),
    bad("custom-tag", "model: {latent_dim: !int 4}\n", "", "tags are not allowed"),
    bad("float-tag", "model: {learning_rate: !!float 1}\n", "", "tags are not allowed"),
    bad("billion-laughs", _billion_laughs(), "", "aliases expand to more than"),
    bad("recursive-alias", "model: &m {hidden_dims: *m}\n", "", "refers to a node that contains it"),
    bad("undefined-alias", "model: *defaults\n", "", "not valid YAML", "undefined alias"),
    bad("deep-nesting", "model: {hidden_dims: " + "[" * 120 + "]" * 120 + "}\n", "", "nested more than 50"),
    bad("duplicate-section", "model: {latent_dim: 4}\nmodel: {prior_type: mixture}\n", "", "duplicate key", ":2:"),
    bad("duplicate-key", "model:\n  latent_dim: 4\n  latent_dim: 8\n", "", "duplicate key", ":3:"),
    bad("unclosed-list", "model:\n  prior_type: [mixture\n", "", "not valid YAML"),
    bad("tab-indent", "model:\n\tlatent_dim: 4\n", "", "not valid YAML"),
    bad("bad-indent", "model:\n  latent_dim: 4\n   batch_size: 8\n", "", "not valid YAML"),
    bad("nul-byte", b"model: {latent_dim: 4}\x00\n", "", "not valid YAML"),
    bad("unterminated-quote", 'experiment: {description: "half a sentence}\n', "", "not valid YAML"),
    bad("too-big", _too_big, "", "at most 1,000,000 bytes"),
    bad("ten-mb-unknown-keys", _ten_mb_of_unknown_keys, "", "at most 1,000,000 bytes"),
    bad("complex-key", "? [model, data]\n: {}\n", "", "mapping keys must be plain words"),
    bad("integer-key", "model: {1: 2}\n", "model.1", "a key must be text"),
    bad("null-key", "model: {null: 2}\n", "model.None", "a key must be text"),
    bad("boolean-key", "true: 1\n", "True", "a key must be text"),
    bad("folder", "", "", "not a regular file", kind="folder", workflow=False),
    bad("fifo", "", "", "not a regular file", kind="fifo", workflow=False),
    # --- sections and keys --------------------------------------------------------------------------------
    bad("section-typo", "modle: {latent_dim: 4}\n", "modle", "unknown key", "did you mean 'model'"),
    bad("key-outside-section", "prior_type: mixture\n", "prior_type", "did you mean 'model.prior_type'"),
    bad("dotted-top-level-key", "model.learning_rate: 0.01\n", "model.learning_rate", "nested, not dotted"),
    bad("key-in-wrong-section", "data: {learning_rate: 0.01}\n", "data.learning_rate",
        "did you mean 'model.learning_rate'"),
    bad("section-as-word", "model: mixture\n", "model", "must be a mapping"),
    bad("section-as-list", "data: [digits]\n", "data", "must be a mapping"),
    bad("experiment-as-word", "experiment: my_run\n", "experiment", "must be a mapping"),
    bad("key-typo", "model: {use_tau_classifer: true}\n", "model.use_tau_classifer",
        "did you mean 'model.use_tau_classifier'"),
    bad("camel-case-key", "model: {latentDim: 4}\n", "model.latentDim", "unknown key"),
    # --- types ----------------------------------------------------------------------------------------------
    bad("float-components", "model: {num_components: 10.0}\n", "model.num_components", "whole number", "10.0"),
    bad("float-latent-dim", "model: {latent_dim: 2.0}\n", "model.latent_dim", "whole number"),
    bad("exponent-batch-size", "model: {batch_size: 1e3}\n", "model.batch_size", "whole number", "1000.0"),
    bad("quoted-epochs", "model: {max_epochs: '10'}\n", "model.max_epochs", "is text, not a number"),
    bad("quoted-learning-rate", "model: {learning_rate: '1e-3'}\n", "model.learning_rate", "is text, not a number"),
    bad("word-learning-rate", "model: {learning_rate: fast}\n", "model.learning_rate", "wrong type"),
    bad("yes-switch", "model: {use_tau_classifier: yes}\n", "model.use_tau_classifier", "YAML 1.2",
        "true or false"),
    bad("quoted-true", "model: {use_heteroscedastic_decoder: 'true'}\n", "model.use_heteroscedastic_decoder",
        "true or false"),
    bad("number-switch", "model: {learnable_pi: 1}\n", "model.learnable_pi", "wrong type", "boolean"),
    bad("switch-count", "model: {num_components: true}\n", "model.num_components", "is not a number"),
    bad("scalar-hidden-dims", "model: {hidden_dims: 256}\n", "model.hidden_dims", "must be a list"),
    bad("float-hidden-dim", "model: {hidden_dims: [256, 12.5]}\n", "model.hidden_dims.1", "whole number"),
    bad("empty-hidden-dims", "model: {hidden_dims: []}\n", "model.hidden_dims", "too few items"),
    bad("text-hidden-dims", "model: {hidden_dims: '256,128'}\n", "model.hidden_dims", "must be a list"),
    bad("word-tags", "experiment: {tags: mixture}\n", "experiment.tags", "must be a list"),
    bad("number-tags", "experiment: {tags: [1, 2]}\n", "experiment.tags.0", "wrong type"),
    bad("word-formats", "report: {formats: png}\n", "report.formats", "must be a list"),
    bad("jpg-format", "report: {formats: [jpg]}\n", "report.formats.0", "not an allowed value", '"png"'),
    bad("number-name", "experiment: {name: 2024}\n", "experiment.name", "wrong type", "string"),
    bad("one-side-input-hw", "model: {input_hw: [28]}\n", "model.input_hw", "too few items"),
    bad("train-split-eval", "evaluation: {split: train}\n", "evaluation.split", "not an allowed value"),
    bad("uppercase-dataset", "data: {dataset: MNIST}\n", "data.dataset", "did you mean 'mnist'"),
    bad("unknown-dataset", "data: {dataset: cifar10}\n", "data.dataset", "not an allowed value", '"digits"'),
    bad("unknown-prior", "model: {prior_type: gaussian}\n", "model.prior_type", "not an allowed value"),
    bad("switch-conditioning", "model: {decoder_conditioning: true}\n", "model.decoder_conditioning",
        "not an allowed value"),
    bad("yes-baseline", "evaluation: {baseline: no}\n", "evaluation.baseline", "true or false"),
    # --- every number finite ----------------------------------------------------------------------------------
    bad("inf-kl-weight", "model: {kl_weight: .inf}\n", "model.kl_weight", "not a finite number"),
    bad("inf-label-weight", "model: {label_weight: .inf}\n", "model.label_weight", "not a finite number"),
    bad("nan-kl-weight", "model: {kl_weight: .nan}\n", "model.kl_weight", "not a finite number"),
    bad("nan-learning-rate", "model: {learning_rate: .NaN}\n", "model.learning_rate", "not a finite number"),
    bad("nan-val-split", "data: {val_split: .nan}\n", "data.val_split", "not a finite number"),
    bad("inf-grad-clip", "model: {grad_clip_norm: .inf}\n", "model.grad_clip_norm", "null switches it off"),
    bad("inf-dirichlet", "model: {prior_type: mixture, dirichlet_alpha: .inf}\n", "model.dirichlet_alpha",
        "not a finite number"),
    bad("inf-sigma-max", "model: {sigma_max: .inf}\n", "model.sigma_max", "not a finite number"),
    bad("nan-gumbel", "model: {gumbel_temperature: .nan}\n", "model.gumbel_temperature", "not a finite number"),
    bad("overflow-kl-weight", "model: {kl_weight: 1e400}\n", "model.kl_weight", "not a finite number"),
    bad("minus-inf-diversity", "model: {component_diversity_weight: -.inf}\n", "model.component_diversity_weight",
        "not a finite number"),
    bad("inf-recon-weight", "model: {recon_weight: .Inf}\n", "model.recon_weight", "not a finite number"),
    # --- ranges ----------------------------------------------------------------------------------------------
    bad("negative-data-seed", "data: {seed: -1}\n", "data.seed", "out of range", "4294967295"),
    bad("huge-random-seed", "model: {random_seed: 1180591620717411303424}\n", "model.random_seed", "out of range"),
    bad("negative-random-seed", "model: {random_seed: -5}\n", "model.random_seed", "out of range"),
    bad("seed-2-32", "model: {random_seed: 4294967296}\n", "model.random_seed", "<= 4294967295"),
    bad("negative-sweep-seed", "sweep: {seeds: [0, -1]}\n", "sweep.seeds.1", "out of range"),
    bad("float-sweep-seed", "sweep: {seeds: [1.5]}\n", "sweep.seeds.0", "whole number"),
    bad("zero-batch-size", "model: {batch_size: 0}\n", "model.batch_size", "out of range", ">= 1"),
    bad("negative-batch-size", "model: {batch_size: -32}\n", "model.batch_size", "out of range"),
    bad("zero-latent-dim", "model: {latent_dim: 0}\n", "model.latent_dim", "out of range"),
    bad("zero-components", "model: {num_components: 0}\n", "model.num_components", "out of range"),
    bad("zero-epochs", "model: {max_epochs: 0}\n", "model.max_epochs", "out of range"),
    bad("negative-patience", "model: {patience: -1}\n", "model.patience", "out of range"),
    bad("one-sample", "data: {num_samples: 1}\n", "data.num_samples", "out of range"),
    bad("negative-labels", "data: {num_labeled: -10}\n", "data.num_labeled", "out of range"),
    bad("zero-learning-rate", "model: {learning_rate: 0}\n", "model.learning_rate", "out of range", "> 0"),
    bad("negative-learning-rate", "model: {learning_rate: -0.001}\n", "model.learning_rate", "out of range"),
    bad("dropout-one", "model: {dropout_rate: 1.0}\n", "model.dropout_rate", "out of range", "< 1"),
    bad("zero-val-split", "data: {val_split: 0}\n", "data.val_split", "out of range"),
    bad("percent-val-split", "data: {val_split: 10}\n", "data.val_split", "out of range"),
    bad("whole-test-split", "data: {test_split: 1}\n", "data.test_split", "out of range"),
    bad("tiny-dpi", "report: {dpi: 10}\n", "report.dpi", "out of range", ">= 50"),
    bad("giant-hidden-layer", "model: {hidden_dims: [1000000000]}\n", "model.hidden_dims.0", "<= 65536"),
    bad("giant-latent-dim", "model: {latent_dim: 1000000}\n", "model.latent_dim", "<= 4096"),
    bad("giant-components", "model: {prior_type: mixture, num_components: 1000000000}\n", "model.num_components",
        "<= 4096"),
    bad("huge-networks", "model: {hidden_dims: [65536, 65536, 65536]}\n", "model.hidden_dims",
        "would hold about", "at most 100,000,000 weights"),
    bad("huge-decentralized", "model: {prior_type: mixture, latent_layout: decentralized, num_components: 4096, "
        "latent_dim: 4096}\n", "model.hidden_dims", "would hold about"),
    bad("vamp-more-components-than-images", "data: {dataset: digits, num_samples: 100, num_labeled: 20}\n"
        "model: {prior_type: vamp, num_components: 200}\n", "model.num_components", "pseudo-inputs", "<= 90"),
    bad("negative-kl-weight", "model: {kl_weight: -1}\n", "model.kl_weight", "out of range"),
    # --- splits and data files ----------------------------------------------------------------------------------
    bad("tiny-test-split", "data: {dataset: digits, test_split: 0.001}\n", "data.test_split", "test split",
        "number of classes = 10"),
    bad("tiny-val-split", "data: {dataset: digits, val_split: 0.001}\n", "data.val_split",
        "validation split holds no image of class"),
    bad("huge-val-split", "data: {dataset: digits, val_split: 0.999, num_labeled: 0}\n", "data.val_split",
        "cannot be split off"),
    bad("twelve-samples", "data: {dataset: digits, num_samples: 12, num_labeled: 0}\n", "data.val_split",
        "holds no image of class"),
    bad("too-many-samples", "data: {dataset: digits, num_samples: 5000}\n", "data.num_samples",
        "never drawn twice", "<= 1437"),
    bad("too-many-labels", "data: {dataset: digits, num_labeled: 5000}\n", "data.num_labeled",
        "remain after the validation split"),
    bad("mnist-without-path", "data: {dataset: mnist}\n", "data.path", "set data.path"),
    bad("mnist-missing-path", "data: {dataset: mnist, path: /nonexistent/mnist}\n", "data.path", "no such file"),
    bad("mnist-empty-folder", "data: {dataset: mnist, path: '{here}/data_empty'}\n", "data.path",
        "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    bad("mnist-half-folder", "data: {dataset: fashion_mnist, path: '{here}/data_half'}\n", "data.path",
        "lacks t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]"),
    bad("npz-missing-arrays", "data: {dataset: mnist, path: '{here}/partial.npz'}\n", "data.path",
        "lacks y_train, x_test, y_test"),
    bad("path-to-text-file", "data: {dataset: mnist, path: '{here}/notes.txt'}\n", "data.path",
        "neither a folder of IDX files nor an .npz file"),
    bad("truncated-idx", "data: {dataset: mnist, path: '{here}/data_truncated'}\n", "data.path", "truncated"),
    bad("path-for-digits", "data: {dataset: digits, path: '{here}/data_empty'}\n", "data.path",
        "embedded and reads no files"),
    bad("wrong-input-hw", "data: {dataset: digits}\nmodel: {input_hw: [28, 28]}\n", "model.input_hw",
        "does not match"),
    bad("wrong-num-classes", "model: {num_classes: 5}\n", "model.num_classes", "has 10 classes"),
    bad("unknown-skip-metric", "evaluation: {skip_metrics: [acuracy]}\n", "evaluation.skip_metrics.0",
        "no metric of this name", "did you mean 'accuracy'"),
    bad("unknown-skip-plot", "report: {skip_plots: [loss_curve]}\n", "report.skip_plots.0", "no plot of this name",
        "did you mean 'loss_curves'"),
    # --- semantic rules ----------------------------------------------------------------------------------------
    bad("tau-without-mixture", "model: {use_tau_classifier: true}\n", "model.use_tau_classifier",
        "needs a mixture-based prior"),
    bad("tau-few-components", "model: {prior_type: mixture, num_components: 5, use_tau_classifier: true}\n",
        "model.num_components", "num_components >= num_classes"),
    bad("vamp-conditioning", "model: {prior_type: vamp, decoder_conditioning: concat}\n",
        "model.decoder_conditioning", "not 'vamp'"),
    bad("grid-not-square", "model: {prior_type: geometric_mog, geometric_arrangement: grid, num_components: 10}\n",
        "model.num_components", "perfect-square"),
    bad("heteroscedastic-bce", "model: {use_heteroscedastic_decoder: true}\n", "model.reconstruction_loss",
        "does not pair with bce"),
    bad("zero-sigma-min", "model: {sigma_min: 0}\n", "model.sigma_min", "must be positive"),
    bad("cold-gumbel", "model: {gumbel_temperature: 0.1, gumbel_temperature_min: 0.5}\n",
        "model.gumbel_temperature", ">= gumbel_temperature_min"),
    bad("top-m-gating", "model: {top_m_gating: 3}\n", "model.top_m_gating", "not supported"),
    bad("accuracy-without-labels", "data: {num_labeled: 0}\nmodel: {monitor_metric: accuracy}\n",
        "model.monitor_metric", "needs labeled data"),
    bad("learnable-pi-standard", "model: {learnable_pi: true}\n", "model.learnable_pi", "learnable pi"),
    # --- names -------------------------------------------------------------------------------------------------
    bad("bang-name", "experiment: {name: '!!!'}\n", "experiment.name", "empty after sanitising"),
    bad("empty-name", "experiment: {name: ''}\n", "experiment.name", "empty after sanitising"),
    bad("underscore-name", "experiment: {name: ___}\n", "experiment.name", "empty after sanitising"),
    bad("unicode-name", "experiment: {name: 日本語}\n", "experiment.name", "empty after sanitising"),
    bad("bang-stem", "data: {dataset: digits}\n", "experiment.name", "'!!!' is empty after sanitising",
        filename="!!!.yaml"),
    bad("at-stem", "data: {dataset: digits}\n", "experiment.name", "empty after sanitising", filename="@@@.yaml"),
    bad("empty-sweep-label", "sweep: {grid: {experiment.description: ['!!!']}}\n", "sweep",
        "label is empty after sanitising"),
    # --- sweeps ------------------------------------------------------------------------------------------------
    bad("scalar-grid-values", "sweep: {grid: {model.learning_rate: 0.001}}\n", "sweep.grid.model.learning_rate",
        "must be a list"),
    bad("empty-grid-values", "sweep: {grid: {model.learning_rate: []}}\n", "sweep.grid.model.learning_rate",
        "too few items"),
    bad("scalar-seeds", "sweep: {seeds: 3}\n", "sweep.seeds", "must be a list"),
    bad("sweep-as-list", "sweep: [1, 2]\n", "sweep", "must be a mapping"),
    bad("sweep-typo", "sweep: {grids: {model.latent_dim: [2, 4]}}\n", "sweep.grids", "did you mean 'sweep.grid'"),
    bad("grid-key-without-section", "sweep: {grid: {learning_rate: [0.1, 0.01]}}\n",
        "sweep.grid.learning_rate", "dotted config key"),
    bad("nested-sweep", "sweep: {grid: {sweep.seeds: [[1, 2]]}}\n", "sweep.grid.sweep.seeds", "dotted config key"),
    bad("grid-key-typo", "sweep: {grid: {model.lerning_rate: [0.1, 0.01]}}\n", "model.lerning_rate",
        "did you mean 'model.learning_rate'"),
    bad("two-seed-axes", "sweep: {grid: {model.random_seed: [1, 2]}, seeds: [3, 4]}\n",
        "sweep.grid.model.random_seed", "use one of the two"),
    bad("repeated-seed", "sweep: {seeds: [1, 1]}\n", "sweep", "same run name"),
    bad("million-point-sweep", _grid(100), "sweep", "1,000,000 runs", "at most 10,000"),
    bad("labels-alike", "sweep: {grid: {experiment.description: ['a b', 'a_b']}}\n", "sweep", "same run name"),
    bad("bad-grid-value", "sweep: {grid: {model.prior_type: [mixtur]}}\n", "model.prior_type",
        "not an allowed value"),
    bad("bad-grid-list-value", "sweep: {grid: {model.hidden_dims: [[0]]}}\n", "model.hidden_dims.0",
        "out of range"),
    bad("grid-into-scalar-section", "model: 5\nsweep: {grid: {model.latent_dim: [2]}}\n",
        "sweep.grid.model.latent_dim", "cannot set this key", "not a mapping"),
    # --- the earlier system's keys -------------------------------------------------------------------------------
    bad("unknown-dataset-variant", "data: {dataset_variant: cifar}\n", "data.dataset_variant",
        "unknown dataset variant"),
    bad("legacy-val-split-range", "model: {val_split: 2}\n", "data.val_split", "out of range"),
    bad("legacy-contrastive", "model: {use_contrastive: true}\n", "model.use_contrastive", "not supported"),
]

# Configs that look odd but are fine: each must validate.
GOOD_EDGE_CASES = {
    "bom.yaml": "\ufeffdata: {dataset: digits}\n".encode("utf-8"),
    "crlf.yaml": b"data:\r\n  dataset: digits\r\nmodel:\r\n  latent_dim: 4\r\n",
    "small-alias.yaml": b"model: {hidden_dims: &h [64, 32]}\nsweep: {grid: {model.hidden_dims: [*h, [32]]}}\n",
    "spec-sweep.yaml": b"sweep: {grid: {model.learning_rate: [1e-3, 3e-4], model.prior_type: [standard, mixture]}}\n",
    "empty-mapping.yaml": b"{}\n",
    "explicit-name-odd-stem!.yaml": b"experiment: {name: fine}\n",
}


def _write_idx(path: Path, array: np.ndarray, truncate: int = 0) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + array.tobytes()
    with gzip.open(path, "wb") as handle:
        handle.write(payload[: len(payload) - truncate])


def write_fixtures(folder: Path) -> None:
    """The data files the data.path items point at."""
    (folder / "data_empty").mkdir(exist_ok=True)
    half = folder / "data_half"
    half.mkdir(exist_ok=True)
    images, labels = np.zeros((20, 28, 28), np.uint8), (np.arange(20) % 10).astype(np.uint8)
    _write_idx(half / "train-images-idx3-ubyte.gz", images)
    _write_idx(half / "train-labels-idx1-ubyte.gz", labels)
    truncated = folder / "data_truncated"
    truncated.mkdir(exist_ok=True)
    for stem, array in [("train-images-idx3-ubyte", images), ("t10k-images-idx3-ubyte", images),
                        ("train-labels-idx1-ubyte", labels), ("t10k-labels-idx1-ubyte", labels)]:
        _write_idx(truncated / f"{stem}.gz", array, truncate=5 if "labels" in stem else 0)
    np.savez(folder / "partial.npz", x_train=images)
    (folder / "notes.txt").write_text("MNIST lives on the other server\n")


def content(item: Bad, folder: Path) -> bytes:
    text = item.text() if callable(item.text) else item.text
    if isinstance(text, str):
        text = text.replace("{here}", str(folder)).encode("utf-8")
    return text


def write_corpus(folder: Path, items: list[Bad] = CORPUS) -> dict[str, Path]:
    """Every item (and the data fixtures) into `folder`; item id -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    write_fixtures(folder)
    paths = {}
    for item in items:
        path = folder / item.file
        if item.kind == "folder":
            path.mkdir(exist_ok=True)
        elif item.kind == "fifo":
            if not path.exists():
                os.mkfifo(path)
        else:
            path.write_bytes(content(item, folder))
        paths[item.id] = path
    return paths
