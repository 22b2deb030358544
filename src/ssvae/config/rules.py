"""The semantic rules a schema cannot say (SPEC section 3): one named function per rule, run in order.

Each rule reads the effective config (every default resolved) and reports through a `Findings`; `RULES`
lists them in the order their messages appear.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import json
import math
from pathlib import Path
from typing import Callable

import numpy as np

from .. import naming
from .legacy import UNSUPPORTED_UNLESS_OFF
from .types import CONDITIONABLE_PRIORS, DATASETS, MIXTURE_PRIORS, ConfigError


@dataclasses.dataclass
class Findings:
    """What the rules found in one config: errors (the run cannot go ahead) and warnings (it can)."""

    file: str
    errors: list[ConfigError] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    def error(self, key: str, value, message: str, allowed: str | None = None) -> None:
        self.errors.append(ConfigError(self.file, key, value, message, allowed=allowed))

    def warn(self, text: str) -> None:
        self.warnings.append(f"{self.file}: {text}")


Rule = Callable[[dict, Findings], None]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    """Register a semantic rule (in definition order)."""
    RULES.append(fn)
    return fn


@rule
def tau_classifier_needs_mixture_prior(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["use_tau_classifier"] and m["prior_type"] not in MIXTURE_PRIORS:
        out.error("model.use_tau_classifier", True,
                  f"the tau-classifier needs a mixture-based prior, not {m['prior_type']!r}",
                  allowed=f"prior_type in {', '.join(MIXTURE_PRIORS)}")


@rule
def tau_classifier_needs_a_component_per_class(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["use_tau_classifier"] and m["prior_type"] in MIXTURE_PRIORS and m["num_components"] < m["num_classes"]:
        out.error("model.num_components", m["num_components"], "the tau-classifier needs num_components >= num_classes",
                  allowed=f">= {m['num_classes']}")


@rule
def tau_init_counts_need_tau_classifier(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["tau_init_counts"] > 0 and not m["use_tau_classifier"]:
        out.error("model.tau_init_counts", m["tau_init_counts"], "only the tau-classifier has counts to initialise",
                  allowed="0 or null, or set model.use_tau_classifier: true")


@rule
def decoder_conditioning_needs_component_embeddings(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["decoder_conditioning"] != "none" and m["prior_type"] not in CONDITIONABLE_PRIORS:
        out.error("model.decoder_conditioning", m["decoder_conditioning"],
                  f"decoder conditioning needs a mixture or geometric_mog prior, not {m['prior_type']!r}",
                  allowed="none")


@rule
def decentralized_layout_needs_components(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["latent_layout"] != "decentralized":
        return
    if m["prior_type"] not in CONDITIONABLE_PRIORS:
        out.error("model.latent_layout", "decentralized",
                  f"the decentralized layout needs a mixture or geometric_mog prior, not {m['prior_type']!r}",
                  allowed="shared")
    elif m["num_components"] < 2:
        out.error("model.num_components", m["num_components"], "the decentralized layout needs at least 2 components",
                  allowed=">= 2")


@rule
def gumbel_routing_needs_components(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["use_gumbel_softmax"] and m["prior_type"] not in CONDITIONABLE_PRIORS:
        out.error("model.use_gumbel_softmax", True,
                  f"Gumbel-softmax routing needs a mixture or geometric_mog prior, not {m['prior_type']!r}",
                  allowed="false")


@rule
def learnable_pi_needs_components(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["learnable_pi"] and m["prior_type"] not in CONDITIONABLE_PRIORS:
        out.error("model.learnable_pi", True,
                  f"a learnable pi needs a mixture or geometric_mog prior, not {m['prior_type']!r}", allowed="false")


@rule
def dirichlet_alpha_means_learned_pi(eff: dict, out: Findings) -> None:
    """A Dirichlet α is a prior on a learned π (its MAP estimate): with π fixed the penalty is a constant.
    `learnable_pi: null` resolves to true beside α, so a false here was written."""
    m = eff["model"]
    if m["dirichlet_alpha"] is not None and m["prior_type"] in CONDITIONABLE_PRIORS and not m["learnable_pi"]:
        out.error("model.learnable_pi", False,
                  "a Dirichlet alpha is a prior on the learned mixture weights pi (its MAP estimate); with pi fixed "
                  "the penalty is a constant", allowed="true or null (learned), or set model.dirichlet_alpha: null")


@rule
def learned_pi_enters_the_loss(eff: dict, out: Findings) -> None:
    """A learned π acts only through KL(q(c|x) ‖ π) (and the Dirichlet penalty on itself): with that term off it
    would change nothing the model computes."""
    m = eff["model"]
    if not (m["learnable_pi"] and m["prior_type"] in CONDITIONABLE_PRIORS):
        return
    dirichlet = m["dirichlet_alpha"] is not None
    key, value = ("model.dirichlet_alpha", m["dirichlet_alpha"]) if dirichlet else ("model.learnable_pi", True)
    if m["c_regularizer"] == "logit_mog":
        out.error(key, value, "pi enters the loss only through KL(q(c|x) || pi), which c_regularizer 'logit_mog' "
                  "leaves out, so a learned pi would change nothing", allowed="c_regularizer categorical or both")
    elif m["kl_c_weight"] == 0:
        out.error(key, value, "pi enters the loss only through KL(q(c|x) || pi), which kl_c_weight 0 switches "
                  "off, so a learned pi would change nothing", allowed="kl_c_weight > 0")


@rule
def shared_layout_gumbel_needs_conditioning(eff: dict, out: Findings) -> None:
    """With the shared latent layout the Gumbel-softmax sample y reaches the loss only through the decoder's
    embedding Σ_k y_k e_k; without decoder conditioning it would be computed and dropped."""
    m = eff["model"]
    if (m["use_gumbel_softmax"] and m["prior_type"] in CONDITIONABLE_PRIORS and m["latent_layout"] == "shared"
            and m["decoder_conditioning"] == "none"):
        out.error("model.use_gumbel_softmax", True,
                  "Gumbel-softmax routing with the shared latent layout acts only through decoder conditioning, "
                  "and decoder_conditioning is none",
                  allowed="false, or set decoder_conditioning (concat, film, cin) or latent_layout: decentralized")


@rule
def vamp_has_no_free_component_logits(eff: dict, out: Findings) -> None:
    """The logit-MoG penalty is a prior on free encoder logits; the VampPrior's q(c|x) comes from its
    pseudo-inputs, log r_k = log π_k + log q(z|u_k) − log Σ_j (·), log-density differences with no scale of
    their own (they reach −10⁸ for a latent far from every pseudo-input), so the penalty has nothing to act on."""
    m = eff["model"]
    if m["prior_type"] == "vamp" and m["c_regularizer"] in ("logit_mog", "both"):
        out.error("model.c_regularizer", m["c_regularizer"],
                  "the VampPrior has no component logits of its own: its q(c|x) is the pseudo-inputs' posterior "
                  "at z (log-density differences), which a Gaussian-mixture penalty on logits does not fit",
                  allowed="categorical")


def interchangeable_components(m: dict) -> bool:
    """Nothing in the loss can tell one mixture component from another: every p(z|c) = N(0, I), the layout is
    shared, the decoder is not conditioned on c, and no τ assignment names the components."""
    return (m["prior_type"] == "mixture" and m["latent_layout"] == "shared" and m["decoder_conditioning"] == "none"
            and not (m["use_tau_classifier"] and m["tau_init_counts"] > 0))


@rule
def interchangeable_components_warning(eff: dict, out: Findings) -> None:
    """Warn when nothing in the loss can tell one mixture component from another (they stay interchangeable)."""
    m = eff["model"]
    if not interchangeable_components(m):
        return
    why = ("every component has the same p(z|c) = N(0, I), the latent layout is shared and the decoder is not "
           "conditioned on c")
    if m["use_tau_classifier"]:
        effect = ("and the tau-classifier starts uniform (tau_init_counts 0), so no term of the loss can tell one "
                  "component from another: usage stays uniform and the tau-classifier stays near chance")
    else:
        effect = ("so no term of the loss can tell one component from another: the components stay "
                  "interchangeable (uniform usage, meaningless clustering metrics); the classifier head on z "
                  "still learns")
    out.warn(f"model: the mixture components cannot specialise: {why}, {effect}. Set decoder_conditioning "
             "(concat, film, cin), latent_layout: decentralized, a tau-classifier with tau_init_counts > 0, or "
             "prior_type geometric_mog or vamp")


@rule
def augment_shift_within_the_image(eff: dict, out: Findings) -> None:
    shift = eff["data"]["augment_shift"]
    side = min(eff["model"]["input_hw"])
    if shift >= side:
        out.error("data.augment_shift", shift, f"a shift of the whole image side ({side} pixels) or more leaves "
                  "nothing of the image", allowed=f"0 to {side - 1}")


@rule
def grid_needs_perfect_square(eff: dict, out: Findings) -> None:
    m = eff["model"]
    k = m["num_components"]
    if m["prior_type"] == "geometric_mog" and m["geometric_arrangement"] == "grid" and math.isqrt(k) ** 2 != k:
        out.error("model.num_components", k, "the grid arrangement needs a perfect-square number of components",
                  allowed="4, 9, 16, 25, ...")


@rule
def geometric_needs_two_latent_dims(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["prior_type"] == "geometric_mog" and m["latent_dim"] < 2:
        out.error("model.latent_dim", m["latent_dim"], "geometric_mog places centres in 2 dimensions", allowed=">= 2")


@rule
def sigma_min_positive(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if not m["sigma_min"] > 0:
        out.error("model.sigma_min", m["sigma_min"], "must be positive", allowed="> 0")


@rule
def sigma_max_exceeds_sigma_min(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if not m["sigma_max"] > m["sigma_min"]:
        out.error("model.sigma_max", m["sigma_max"], "must exceed sigma_min", allowed=f"> {m['sigma_min']}")


@rule
def heteroscedastic_needs_gaussian_likelihood(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["use_heteroscedastic_decoder"] and m["reconstruction_loss"] != "mse":
        out.error("model.reconstruction_loss", m["reconstruction_loss"],
                  "the heteroscedastic decoder has a Gaussian likelihood; it does not pair with bce", allowed="mse")


@rule
def dirichlet_alpha_positive(eff: dict, out: Findings) -> None:
    alpha = eff["model"]["dirichlet_alpha"]
    if alpha is not None and not alpha > 0:
        out.error("model.dirichlet_alpha", alpha, "must be null or positive", allowed="null or > 0")


@rule
def dirichlet_alpha_needs_pi(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["dirichlet_alpha"] is not None and m["prior_type"] not in CONDITIONABLE_PRIORS:
        out.warn(f"model.dirichlet_alpha has no effect with prior_type {m['prior_type']!r}")


@rule
def gumbel_temperature_min_positive(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if not m["gumbel_temperature_min"] > 0:
        out.error("model.gumbel_temperature_min", m["gumbel_temperature_min"], "must be positive", allowed="> 0")


@rule
def gumbel_temperature_at_least_min(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if not m["gumbel_temperature"] >= m["gumbel_temperature_min"]:
        out.error("model.gumbel_temperature", m["gumbel_temperature"], "must be >= gumbel_temperature_min",
                  allowed=f">= {m['gumbel_temperature_min']}")


@rule
def unimplemented_legacy_keys_off(eff: dict, out: Findings) -> None:
    m = eff["model"]
    for key, off in UNSUPPORTED_UNLESS_OFF.items():
        if m[key] != off:
            out.error(f"model.{key}", m[key],
                      "not supported (accepted only at its off value for the earlier system's configs)",
                      allowed=json.dumps(off))


@rule
def input_hw_matches_dataset(eff: dict, out: Findings) -> None:
    hw = tuple(eff["model"]["input_hw"])
    dataset = eff["data"]["dataset"]
    expected_hw = DATASETS[dataset]["hw"]
    if hw != expected_hw:
        out.error("model.input_hw", list(hw), f"does not match the {dataset} images", allowed=str(list(expected_hw)))


@rule
def conv_needs_sides_divisible_by_4(eff: dict, out: Findings) -> None:
    m = eff["model"]
    hw = tuple(m["input_hw"])
    if "conv" in (m["encoder_type"], m["decoder_type"]) and (hw[0] % 4 or hw[1] % 4):
        out.error("model.encoder_type", m["encoder_type"], "conv layers need image sides divisible by 4",
                  allowed="dense")


@rule
def num_classes_matches_dataset(eff: dict, out: Findings) -> None:
    m, d = eff["model"], eff["data"]
    classes = DATASETS[d["dataset"]]["classes"]
    if m["num_classes"] != classes:
        out.error("model.num_classes", m["num_classes"], f"{d['dataset']} has {classes} classes",
                  allowed=str(classes))


FILE_DATASETS = ("mnist", "fashion_mnist")


@rule
def data_path_holds_the_dataset(eff: dict, out: Findings) -> None:
    """mnist / fashion_mnist read every file they need from data.path, intact; the embedded datasets read none."""
    from .. import datacheck

    d = eff["data"]
    if d["dataset"] not in FILE_DATASETS:
        if d["path"] is not None:
            out.error("data.path", d["path"], f"{d['dataset']} is embedded and reads no files; data.path is read "
                      "only for mnist and fashion_mnist", allowed="null")
        return
    if d["path"] is None:
        out.error("data.path", None, f"{d['dataset']} is read from files; set data.path to a folder of IDX .gz files "
                  "or an .npz file (the embedded datasets are digits and mnist5k)")
        return
    if not Path(d["path"]).expanduser().exists():
        out.error("data.path", d["path"], "no such file or folder")
        return
    # every file is read and checked here (once per fingerprint), so that a damaged one never reaches training
    for problem in datacheck.problems(d["path"], DATASETS[d["dataset"]]["classes"]):
        out.error("data.path", d["path"], problem,
                  allowed="intact MNIST-format files: a folder of train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                  "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (IDX of unsigned bytes, each optionally .gz: "
                  "N x 28 x 28 images, N labels 0..9), or an .npz with x_train, y_train, x_test, y_test (images as "
                  "bytes 0..255 or floats 0..1, labels 0..9)")


_SPLIT_KEYS = {
    "test": "data.test_split (raise it)",
    "validation": "data.val_split or data.num_samples (raise it)",
    "training": "data.val_split or data.test_split (lower it) or data.num_samples (raise it)",
}


@rule
def splits_hold_every_class(eff: dict, out: Findings) -> None:
    """The draws `load_splits` will make, computed from the labels alone: the pool is big enough for
    num_samples and num_labeled, and test, validation and training each hold an image of every class."""
    from .. import data
    from .types import DataConfig

    if any(e.key == "data.path" for e in out.errors):
        return
    d = eff["data"]
    cfg = DataConfig(**d)
    official = DATASETS[cfg.dataset]["official_test"]
    num_classes = DATASETS[cfg.dataset]["classes"]
    try:
        y, y_test = data.labels(cfg.dataset, cfg.path)
        if data.surely_holds_every_class(np.bincount(y, minlength=num_classes), cfg, official) and (
                y_test is None or np.bincount(y_test, minlength=num_classes).min() > 0) and (
                eff["model"]["prior_type"] != "vamp"
                or eff["model"]["num_components"] <= data.training_size(len(y), cfg, official)):
            return
        index = data.split_index(y, cfg, official)
    except data.DataError as exc:
        out.error(exc.key or "data.path", exc.value if exc.key else d["path"], str(exc).removeprefix("data.path: "),
                  allowed=exc.allowed)
        return
    if eff["model"]["prior_type"] == "vamp" and eff["model"]["num_components"] > len(index.train):
        out.error("model.num_components", eff["model"]["num_components"], "the VampPrior's pseudo-inputs start as "
                  f"distinct training images, and there are {len(index.train)}", allowed=f"<= {len(index.train)}")
    for split, classes in data.missing_classes(y, y_test, index, num_classes).items():
        if split == "test" and official:
            out.error("data.path", d["path"], f"the official test split holds no image of class(es) "
                      f"{', '.join(map(str, classes))}")
            continue
        key = "data.test_split" if split == "test" else "data.val_split"
        out.error(key, d["test_split" if split == "test" else "val_split"],
                  f"the {split} split holds no image of class(es) {', '.join(map(str, classes))} "
                  f"(num_samples={d['num_samples']}, val_split={d['val_split']}, test_split={d['test_split']})",
                  allowed=f"splits with every class; change {_SPLIT_KEYS[split]}")


MAX_PARAMETERS = 100_000_000


def dense_parameter_count(m: dict) -> int:
    """About how many weights the dense networks hold: encoder and mirrored decoder over hidden_dims, the
    latent heads (one per component in the decentralized layout), the classifier head, the pseudo-inputs."""
    pixels = m["input_hw"][0] * m["input_hw"][1]
    chain = [pixels, *m["hidden_dims"]]
    trunk = sum(a * b for a, b in zip(chain, chain[1:]))
    copies = m["num_components"] if m["latent_layout"] == "decentralized" else 1
    last = chain[-1]
    heads = last * (2 * copies * m["latent_dim"] + m["num_components"])
    decoder_in = (m["latent_dim"] + (m["component_embedding_dim"] or 0)) * last
    classifier = last * last * 2 + last * m["num_classes"]
    pseudo = m["num_components"] * pixels if m["prior_type"] == "vamp" else 0
    return 2 * trunk + heads + decoder_in + classifier + pseudo


@rule
def networks_fit_in_memory(eff: dict, out: Findings) -> None:
    m = eff["model"]
    count = dense_parameter_count(m)
    if count > MAX_PARAMETERS:
        out.error("model.hidden_dims", m["hidden_dims"], f"the networks would hold about {count:,} weights "
                  "(from hidden_dims, latent_dim, num_components and the layout); training could not fit them",
                  allowed=f"settings that give at most {MAX_PARAMETERS:,} weights")


@rule
def skip_lists_name_known_metrics_and_plots(eff: dict, out: Findings) -> None:
    """A misspelt name in skip_metrics / skip_plots would silently skip nothing."""
    for key, module, names in (("evaluation.skip_metrics", "metrics", ("METRIC_NAMES", "BASELINE_NAME")),
                               ("report.skip_plots", "plots", ("PLOT_NAMES",))):
        section, leaf = key.split(".")
        wanted = eff[section][leaf]
        if not wanted:
            continue
        registry = importlib.import_module(f"ssvae.{module}")  # only now: plots loads matplotlib
        known = []
        for name in names:
            value = getattr(registry, name)
            known += [value] if isinstance(value, str) else list(value)
        for i, name in enumerate(wanted):
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
                out.errors.append(ConfigError(out.file, f"{key}.{i}", name, f"no {module[:-1]} of this name",
                                              allowed=", ".join(known),
                                              suggestion=close[0] if close else None))


@rule
def few_labels_warning(eff: dict, out: Findings) -> None:
    d, m = eff["data"], eff["model"]
    if 0 < d["num_labeled"] < m["num_classes"]:
        out.warn(f"data.num_labeled={d['num_labeled']} is fewer than num_classes; some classes have no label")


@rule
def label_metrics_need_labels(eff: dict, out: Findings) -> None:
    d, m = eff["data"], eff["model"]
    if d["num_labeled"] == 0 and m["monitor_metric"] in ("classification_loss", "accuracy"):
        out.error("model.monitor_metric", m["monitor_metric"], "needs labeled data (data.num_labeled is 0)",
                  allowed="auto, loss")


@rule
def labeled_batches_need_labels(eff: dict, out: Findings) -> None:
    d, m = eff["data"], eff["model"]
    if m["labeled_batch_size"] > 0 and d["num_labeled"] == 0:
        out.error("model.labeled_batch_size", m["labeled_batch_size"], "there is no labeled pool to draw from "
                  "(data.num_labeled is 0)", allowed="0")


@rule
def label_monitor_warning(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["monitor_metric"] in ("classification_loss", "accuracy"):
        out.warn(f"model.monitor_metric={m['monitor_metric']!r} early-stops on validation labels, "
                 "which are labels beyond data.num_labeled")


@rule
def no_supervision_warning(eff: dict, out: Findings) -> None:
    d, m = eff["data"], eff["model"]
    if d["num_labeled"] == 0 or m["label_weight"] == 0:
        out.warn(f"no supervision (num_labeled={d['num_labeled']}, label_weight={m['label_weight']}); "
                 "classification accuracy will be at chance level")


@rule
def name_survives_sanitising(eff: dict, out: Findings) -> None:
    name = eff["experiment"]["name"]
    try:
        naming.sanitize_name(name)
    except naming.NamingError as exc:
        out.error("experiment.name", name, str(exc))


def semantic_errors(eff: dict, file: str, warnings: list[str]) -> list[ConfigError]:
    """Run every rule on the effective config; append its warnings to `warnings`, return its errors."""
    findings = Findings(file)
    for check in RULES:
        check(eff, findings)
    warnings.extend(findings.warnings)
    return findings.errors
